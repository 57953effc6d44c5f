//! [`FanOut`]: delivery of new messages off the write path. The writer
//! commits, acknowledges, and hands each message to a fan-out worker; the
//! workers push to recipients while the writer commits the next batch.
//!
//! Workers are sharded by conversation, so the pushes of one conversation
//! keep seq order (clients detect gaps by seq), while a 10,000-member group
//! on one shard does not hold up conversations on the others; and a large
//! group yields to other tasks every 4,096 recipients (`Delivery::message`).

use std::hash::BuildHasher;
use std::sync::Arc;

use tern_proto::Message;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{Instrument, Span};

use super::delivery::Delivery;

/// One message to deliver, and the session that already has it (its sender).
struct Job {
    message: Message,
    except: Option<u64>,
    /// The span the message was submitted in (its send's), parent of the
    /// `fanout` span.
    span: Span,
}

/// Handle to the fan-out workers.
pub struct FanOut {
    shards: Vec<mpsc::Sender<Job>>,
    hasher: std::collections::hash_map::RandomState,
}

impl FanOut {
    /// Starts `workers` workers, each with a queue of `queue` messages.
    /// They end when the [`FanOut`] is dropped and their queues are empty.
    pub fn spawn(
        delivery: Arc<Delivery>,
        workers: usize,
        queue: usize,
    ) -> (Self, Vec<JoinHandle<()>>) {
        let (shards, tasks) = (0..workers.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(queue.max(1));
                (tx, tokio::spawn(work(rx, delivery.clone())))
            })
            .unzip();
        let hasher = Default::default();
        (Self { shards, hasher }, tasks)
    }

    /// Queues a message for delivery; waits when its shard is full
    /// (backpressure on the writer rather than unbounded memory).
    pub async fn submit(&self, message: Message, except: Option<u64>) {
        let shard = (self.hasher.hash_one(&message.conv) as usize) % self.shards.len();
        if self.shards[shard]
            .send(Job {
                message,
                except,
                span: Span::current(),
            })
            .await
            .is_err()
        {
            tracing::error!("fan-out worker gone; push dropped (history has the message)");
        }
    }
}

async fn work(mut rx: mpsc::Receiver<Job>, delivery: Arc<Delivery>) {
    while let Some(job) = rx.recv().await {
        let span =
            tracing::info_span!(target: crate::telemetry::SPAN_TARGET, parent: &job.span, "fanout");
        delivery
            .message_chunked(&job.message, job.except)
            .instrument(span)
            .await;
    }
}

/// Default number of workers: one per core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
