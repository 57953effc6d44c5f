//! The publisher task: drains the bounded queue of outgoing events in
//! order, many per round trip, and recovers after losing some (rewrite this
//! node's presence set, broadcast `Resync`, tell the local hub).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{registry, Shared};
use crate::{Event, Inbound};

/// Commands sent per round trip at most.
const PIPELINE_MAX: usize = 256;

/// What the publisher is asked to do, in queue order.
pub(crate) enum Outgoing {
    /// An envelope for one node's channel (its full name).
    Node(String, Bytes),
    /// An envelope for every node.
    All(Bytes),
    /// Signals once everything queued before it has been sent (or lost).
    Flush(oneshot::Sender<()>),
    /// Redis answers again after an outage: recover now, even if nothing
    /// else is published.
    Recover,
}

/// Runs until cancelled or until every sender is gone.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut queue: mpsc::Receiver<Outgoing>,
    cancel: CancellationToken,
) {
    let mut batch = Vec::with_capacity(PIPELINE_MAX);
    loop {
        let first = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            item = queue.recv() => item,
        };
        let Some(first) = first else { return };
        batch.push(first);
        while batch.len() < PIPELINE_MAX {
            match queue.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            () = send_batch(&shared, &mut batch) => {}
        }
    }
}

/// Sends `batch` as one pipeline (SPUBLISH to a node's shard channel,
/// PUBLISH to the broadcast channel), then answers its flushes.
async fn send_batch(shared: &Shared, batch: &mut Vec<Outgoing>) {
    let mut pipe = redis::pipe();
    let mut count = 0u64;
    let mut flushes = Vec::new();
    let mut recover = false;
    let all = shared.keys.all();
    for item in batch.drain(..) {
        match item {
            // Sharded pub/sub for the per-node channels, so the layout
            // carries over to Redis Cluster (each channel lives on one
            // shard). On one Redis both kinds reach a subscriber in the
            // order they were executed, which keeps a node's events in
            // publish order across the two channels.
            Outgoing::Node(channel, payload) => {
                pipe.cmd("SPUBLISH").arg(channel).arg(&payload[..]).ignore();
                count += 1;
            }
            Outgoing::All(payload) => {
                pipe.cmd("PUBLISH").arg(&all).arg(&payload[..]).ignore();
                count += 1;
            }
            Outgoing::Flush(done) => flushes.push(done),
            Outgoing::Recover => recover = true,
        }
    }
    if count > 0 {
        match pipe.exec_async(&mut shared.conn()).await {
            Ok(()) => recover = true,
            Err(e) => {
                metrics::counter!("tern_cluster_publish_failed_total").increment(count);
                tracing::debug!(error = %e, count, "cluster publish failed");
                shared.mark_lost("publish failed");
                recover = false;
            }
        }
    }
    if recover && shared.lost.load(Ordering::Acquire) {
        recover_after_loss(shared).await;
    }
    for done in flushes {
        let _ = done.send(());
    }
}

/// The cluster may have missed this node's events (or forgotten it after
/// its TTL lapsed): rewrite its presence set, announce its online users,
/// broadcast `Resync`, and tell the local hub that it may have missed
/// traffic too.
async fn recover_after_loss(shared: &Shared) {
    shared.lost.store(false, Ordering::Release);
    let online = match registry::rewrite_presence(shared).await {
        Ok(online) => online,
        Err(e) => {
            tracing::debug!(error = %e, "presence rewrite failed; retrying later");
            shared.lost.store(true, Ordering::Release);
            return;
        }
    };
    let all = shared.keys.all();
    let mut pipe = redis::pipe();
    for chunk in online.chunks(registry::CHUNK) {
        let changes = chunk.iter().map(|u| (u.clone(), true)).collect();
        let payload = Event::Presence { changes }.encode(&shared.id);
        pipe.cmd("PUBLISH").arg(&all).arg(&payload[..]).ignore();
    }
    let resync = Event::Resync.encode(&shared.id);
    pipe.cmd("PUBLISH").arg(&all).arg(&resync[..]).ignore();
    if let Err(e) = pipe.exec_async(&mut shared.conn()).await {
        tracing::debug!(error = %e, "resync broadcast failed; retrying later");
        shared.lost.store(true, Ordering::Release);
        return;
    }
    tracing::info!(node = %shared.id, "cluster traffic flows again; resync sent");
    shared.inbound.deliver(Inbound::Lost);
}
