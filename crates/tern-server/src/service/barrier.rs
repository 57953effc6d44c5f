//! Cluster barriers: a change that other nodes keep in their caches (a
//! group's members, a ban) returns to its caller only once every other live
//! node has applied it. The node broadcasts `Barrier{id}` after the change,
//! on the same ordered channel; each node answers `BarrierAck{id}` once it
//! got there, so by then it has applied the change too. A later message,
//! sent on any node, is checked and fanned out with the new state.
//!
//! A node that does not answer within `cluster.barrier_timeout_ms` (dead but
//! not yet expired, or cut off) does not block the caller longer than that;
//! it is counted and logged, and a cut-off node resyncs when it is back.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tern_cluster::Event;
use tokio::sync::oneshot;

use super::Hub;
use crate::metrics as m;

/// The barriers this node waits for.
#[derive(Default)]
pub struct Barriers {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Waiting>>,
}

/// One barrier: the nodes that have not answered yet.
struct Waiting {
    pending: HashSet<String>,
    done: Option<oneshot::Sender<()>>,
}

impl Waiting {
    fn settle_if_done(&mut self) -> bool {
        if !self.pending.is_empty() {
            return false;
        }
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
        true
    }
}

impl Barriers {
    /// Opens a barrier waiting for `nodes`.
    fn open(&self, nodes: HashSet<String>) -> (u64, oneshot::Receiver<()>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (done, rx) = oneshot::channel();
        self.lock().insert(
            id,
            Waiting {
                pending: nodes,
                done: Some(done),
            },
        );
        (id, rx)
    }

    /// Node `from` answered barrier `id`.
    pub fn ack(&self, id: u64, from: &str) {
        let mut open = self.lock();
        if let Some(w) = open.get_mut(&id) {
            w.pending.remove(from);
            if w.settle_if_done() {
                open.remove(&id);
            }
        }
    }

    /// Node `node` is gone: no barrier waits for it any more.
    pub fn forget_node(&self, node: &str) {
        self.lock().retain(|_, w| {
            w.pending.remove(node);
            !w.settle_if_done()
        });
    }

    /// Gives up on barrier `id`: the nodes that never answered.
    fn close(&self, id: u64) -> Vec<String> {
        self.lock()
            .remove(&id)
            .map(|w| w.pending.into_iter().collect())
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Waiting>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Hub {
    /// Waits until every other live node has applied the events this node
    /// published so far (at most `cluster.barrier_timeout_ms`). Returns at
    /// once on a single node.
    pub(crate) async fn reach_every_node(&self) {
        let timeout = Duration::from_millis(self.config().cluster.barrier_timeout_ms);
        if tokio::time::timeout(timeout, self.barrier()).await.is_err() {
            metrics::counter!(m::CLUSTER_BARRIER_TIMEOUTS).increment(1);
            tracing::warn!("cluster barrier timed out: not every node confirmed a change");
        }
    }

    async fn barrier(&self) {
        let me = self.cluster.node_id().to_string();
        let nodes = match self.cluster.directory.nodes().await {
            Ok(nodes) => nodes,
            Err(e) => {
                // Unreachable bus: the change is lost for the others, who
                // reload their caches once it is back.
                tracing::warn!(error = %e, "cluster barrier skipped: node list unavailable");
                metrics::counter!(m::CLUSTER_BARRIER_TIMEOUTS).increment(1);
                return;
            }
        };
        let others: HashSet<String> = nodes
            .into_iter()
            .map(|n| n.id)
            .filter(|id| *id != me)
            .collect();
        if others.is_empty() {
            return;
        }
        let (id, done) = self.barriers.open(others);
        // Closed (and its silent nodes logged) however this ends.
        let guard = CloseOnDrop {
            barriers: &self.barriers,
            id,
        };
        self.cluster.bus.broadcast(Event::Barrier { id });
        let _ = done.await;
        drop(guard);
    }
}

/// Closes a barrier when its waiter is done or gives up (timeout).
struct CloseOnDrop<'a> {
    barriers: &'a Barriers,
    id: u64,
}

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        let missing = self.barriers.close(self.id);
        if !missing.is_empty() {
            tracing::warn!(?missing, "these nodes did not confirm a change in time");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(nodes: &[&str]) -> HashSet<String> {
        nodes.iter().map(|n| (*n).to_owned()).collect()
    }

    #[tokio::test]
    async fn settles_when_every_node_answered_or_left() {
        let b = Barriers::default();
        let (id, mut done) = b.open(set(&["a", "b", "c"]));
        b.ack(id, "a");
        b.ack(id + 1, "b"); // another barrier: ignored
        assert!(done.try_recv().is_err());
        b.forget_node("b");
        assert!(done.try_recv().is_err());
        b.ack(id, "c");
        assert!(done.await.is_ok());
        assert!(b.lock().is_empty());
    }

    #[test]
    fn closing_names_the_silent_nodes() {
        let b = Barriers::default();
        let (id, _done) = b.open(set(&["a", "b"]));
        b.ack(id, "a");
        assert_eq!(b.close(id), vec!["b".to_owned()]);
        assert!(b.lock().is_empty());
    }
}
