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
use tracing::{Instrument, Span};

use super::error::{ServiceError, ServiceResult};
use super::fanout::FanOut;
use super::registry::Session;
use crate::metrics as m;
use crate::telemetry::SPAN_TARGET;

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

/// A send in the writer's queue with the span it was submitted in (the
/// `send` span of a WebSocket send, the request's span over HTTP), so its
/// commit, ack and fan-out are traced as that span's children.
pub struct Queued {
    pub request: WriteRequest,
    pub span: Span,
}

impl From<WriteRequest> for Queued {
    /// Queued in the current span.
    fn from(request: WriteRequest) -> Self {
        Self {
            request,
            span: Span::current(),
        }
    }
}

/// Starts the writer task. It ends once every sender is dropped and the
/// queue is empty, so every accepted send gets its answer.
pub fn spawn(
    store: Arc<dyn Store>,
    fanout: FanOut,
    capacity: usize,
    batch_max: usize,
) -> (mpsc::Sender<Queued>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let task = tokio::spawn(run(rx, store, fanout, batch_max.max(1)));
    (tx, task)
}

async fn run(
    mut rx: mpsc::Receiver<Queued>,
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
            .map(|q| {
                (
                    q.request.message,
                    (q.request.reply, q.request.accepted, q.span),
                )
            })
            .unzip();
        let n = messages.len();
        let (batch_span, commits) = commit_spans(&waiting, n);
        let started = Instant::now();
        let results = store.append(messages).instrument(batch_span).await;
        drop(commits);
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

type Committed = (Vec<(ReplyTo, Instant, Span)>, Vec<StoreResult<Appended>>);

/// The span of one group commit, and a `commit` span per send under each
/// send's own span, linked to the batch (which serves many traces).
fn commit_spans(waiting: &[(ReplyTo, Instant, Span)], n: usize) -> (Span, Vec<Span>) {
    let batch =
        tracing::info_span!(target: SPAN_TARGET, parent: None, "writer.batch", batch_size = n);
    if batch.is_disabled() {
        return (batch, Vec::new());
    }
    let commits = waiting
        .iter()
        .map(|(_, _, send)| {
            let commit =
                tracing::info_span!(target: SPAN_TARGET, parent: send, "commit", batch_size = n);
            commit.follows_from(&batch);
            commit
        })
        .collect();
    (batch, commits)
}

/// Answers every sender of each committed batch and fans the new messages
/// out, batch after batch in commit order.
async fn finish_batches(mut rx: mpsc::Receiver<Committed>, fanout: FanOut) {
    while let Some((waiting, results)) = rx.recv().await {
        for ((reply, accepted, span), result) in waiting.into_iter().zip(results) {
            finish(&fanout, reply, accepted, result)
                .instrument(span)
                .await;
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
            let ack = tracing::info_span!(target: SPAN_TARGET, "ack").entered();
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
            drop(ack);
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
