//! Batches the first connects of users this node has not seen yet when
//! auto-provisioning: the names that many sockets present at once (a
//! launch, a reconnect storm after a restart) are checked and created by
//! one store call per batch, not one database write each.

use std::sync::Arc;

use tern_store::{Provisioned, Store, StoreError, StoreResult};
use tokio::sync::{mpsc, oneshot};

/// Names waiting for the next batch, at most; a connect beyond that waits
/// for room (the batches drain it).
const QUEUE: usize = 4_096;

/// One connect's question.
struct Request {
    user: String,
    reply: oneshot::Sender<StoreResult<Provisioned>>,
}

/// Handle to the batching task (which ends when the handle is dropped).
pub struct Provisioner {
    requests: mpsc::Sender<Request>,
}

impl Provisioner {
    /// Starts the task: batches of at most `batch_max` names.
    pub fn spawn(store: Arc<dyn Store>, batch_max: usize) -> Self {
        let (requests, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, rx, batch_max.max(1)));
        Self { requests }
    }

    /// Creates `user` if it does not exist; says whether it is banned.
    pub async fn provision(&self, user: &str) -> StoreResult<Provisioned> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            user: user.to_owned(),
            reply,
        };
        let gone = || StoreError::Unavailable("the provisioning task stopped".into());
        self.requests.send(request).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// Takes whatever is queued (up to `batch_max`), answers it with one store
/// call, and again: while one batch is in the store the next one queues.
async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Request>, batch_max: usize) {
    let mut batch = Vec::with_capacity(batch_max);
    while rx.recv_many(&mut batch, batch_max).await > 0 {
        let names: Vec<&str> = batch.iter().map(|r| r.user.as_str()).collect();
        let result = store
            .provision_users(&names, crate::service::now_ms())
            .await;
        drop(names);
        match result {
            Ok(found) => {
                for (request, found) in batch.drain(..).zip(found) {
                    let _ = request.reply.send(Ok(found));
                }
            }
            Err(e) => {
                for request in batch.drain(..) {
                    let _ = request.reply.send(Err(e.clone()));
                }
            }
        }
        if batch.capacity() > batch_max {
            batch.shrink_to(batch_max);
        }
    }
}
