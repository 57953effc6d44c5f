//! How full the hub's internal queues are, for the gauges a scrape of
//! `/metrics` refreshes (`tern_writer_queue_depth`, `tern_push_queue_depth`).

use super::Hub;

/// Items waiting in each bounded queue of the hub right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepths {
    /// Sends waiting for the group-commit writer (`store.queue_capacity`).
    pub writer: usize,
    /// Offline push events waiting for the webhook (`push.queue_capacity`);
    /// 0 without a webhook.
    pub push: usize,
}

impl Hub {
    /// The current depth of the writer and webhook queues.
    pub fn queue_depths(&self) -> QueueDepths {
        let writer = self
            .writer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |tx| tx.max_capacity() - tx.capacity());
        let push = self.delivery.push().map_or(0, |p| p.queued());
        QueueDepths { writer, push }
    }
}
