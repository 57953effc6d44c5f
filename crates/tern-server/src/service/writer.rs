//! The group-commit writer: one task takes every send waiting in its queue
//! (up to `store.batch_max`), stores them in ONE transaction, then answers
//! each sender and fans the new messages out. Under load the queue fills
//! while a commit runs, so batches grow by themselves; when idle a lone send
//! is committed at once (no fixed linger). Answering a committed batch runs
//! in a second task, overlapping the next commit.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tern_proto::{RequestId, ServerFrame};
use tern_store::{Appended, NewMessage, Store, StoreResult};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::error::{ServiceError, ServiceResult};
use super::fanout::FanOut;
use super::registry::Session;
use crate::metrics as m;

/// Who waits for the outcome of a send.
pub enum ReplyTo {
    /// A WebSocket session: its `ack`/`error` goes into its outbox.
    Session {
        session: Arc<Session>,
        id: Option<RequestId>,
    },
    /// An in-process caller (HTTP): gets the result on a channel.
    Waiter(oneshot::Sender<ServiceResult<Appended>>),
}

/// One queued send.
pub struct WriteRequest {
    pub message: NewMessage,
    pub reply: ReplyTo,
    pub accepted: Instant,
}

/// Starts the writer task. It ends once every sender is dropped and the
/// queue is empty, so every accepted send gets its answer.
pub fn spawn(
    store: Arc<dyn Store>,
    fanout: FanOut,
    capacity: usize,
    batch_max: usize,
) -> (mpsc::Sender<WriteRequest>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let task = tokio::spawn(run(rx, store, fanout, batch_max.max(1)));
    (tx, task)
}

async fn run(
    mut rx: mpsc::Receiver<WriteRequest>,
    store: Arc<dyn Store>,
    fanout: FanOut,
    batch_max: usize,
) {
    // Answering and fanning out a committed batch overlaps the next commit:
    // a second task takes committed batches in commit order (so pushes keep
    // seq order), while this one goes straight back to the store.
    let (done_tx, done_rx) = mpsc::channel(FINISHED_BATCHES_IN_FLIGHT);
    let finisher = tokio::spawn(finish_batches(done_rx, fanout));
    let mut batch = Vec::with_capacity(batch_max);
    while rx.recv_many(&mut batch, batch_max).await > 0 {
        let (messages, waiting): (Vec<_>, Vec<_>) = batch
            .drain(..)
            .map(|r| (r.message, (r.reply, r.accepted)))
            .unzip();
        let n = messages.len();
        let started = Instant::now();
        let results = store.append(messages).await;
        metrics::histogram!(m::STORE_COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        metrics::histogram!(m::STORE_BATCH_SIZE).record(n as f64);
        if done_tx.send((waiting, results)).await.is_err() {
            tracing::error!("the writer's finishing task is gone; {n} committed sends unanswered");
        }
    }
    drop(done_tx);
    if let Err(e) = finisher.await {
        tracing::error!(error = %e, "the writer's finishing task failed");
    }
}

/// Committed batches waiting to be answered while the next one commits.
const FINISHED_BATCHES_IN_FLIGHT: usize = 2;

type Committed = (Vec<(ReplyTo, Instant)>, Vec<StoreResult<Appended>>);

/// Answers every sender of each committed batch and fans the new messages
/// out, batch after batch in commit order.
async fn finish_batches(mut rx: mpsc::Receiver<Committed>, fanout: FanOut) {
    while let Some((waiting, results)) = rx.recv().await {
        for ((reply, accepted), result) in waiting.into_iter().zip(results) {
            finish(&fanout, reply, accepted, result).await;
        }
    }
}

/// Answers one sender, then fans a new message out (persist → ack → fan out).
async fn finish(fanout: &FanOut, reply: ReplyTo, accepted: Instant, result: StoreResult<Appended>) {
    let result = result.map_err(ServiceError::from);
    if let Ok(a) = &result {
        if !a.duplicate {
            metrics::counter!(m::MESSAGES_STORED).increment(1);
        }
    }
    match reply {
        ReplyTo::Session { session, id } => {
            let frame = match &result {
                Ok(a) => super::chat::ack_of(id, &a.message),
                Err(e) => ServerFrame::error(id, e.code(), e.public_message()),
            };
            session.push_frame(&frame);
            if session.pending_sends.fetch_sub(1, Ordering::AcqRel) == 1 {
                // A closing connection may be waiting for its last ack.
                session.outbox.nudge();
            }
            metrics::histogram!(m::SEND_ACK_SECONDS).record(accepted.elapsed().as_secs_f64());
            if let Ok(a) = result {
                if !a.duplicate {
                    fanout.submit(a.message, Some(session.id)).await;
                }
            }
        }
        ReplyTo::Waiter(tx) => {
            if let Ok(a) = &result {
                if !a.duplicate {
                    fanout.submit(a.message.clone(), None).await;
                }
            }
            let _ = tx.send(result);
        }
    }
}
