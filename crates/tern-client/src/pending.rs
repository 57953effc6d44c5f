//! Requests in flight: request id → who waits for the reply.

use std::collections::HashMap;

use tern_proto::{RequestId, ServerFrame};
use tokio::sync::oneshot;

use crate::error::ClientError;

/// Where a reply goes.
pub(crate) enum Waiter {
    /// A caller awaiting it.
    Caller(oneshot::Sender<Result<ServerFrame, ClientError>>),
    /// Requests the client makes on its own (the presence re-subscription
    /// after a reconnect): the reply is delivered as a push.
    AsPush,
}

/// The pending map of one connection, owned by the connection task.
#[derive(Default)]
pub(crate) struct Pending {
    next_id: u64,
    waiters: HashMap<RequestId, Waiter>,
}

impl Pending {
    /// A fresh numeric id, registered for `waiter`.
    pub fn register(&mut self, waiter: Waiter) -> RequestId {
        self.next_id += 1;
        let id = RequestId::from(self.next_id);
        self.waiters.insert(id.clone(), waiter);
        id
    }

    /// Removes and returns the waiter of a reply.
    pub fn take(&mut self, id: &RequestId) -> Option<Waiter> {
        self.waiters.remove(id)
    }

    /// Forgets callers that stopped waiting (timed out or dropped).
    pub fn sweep(&mut self) {
        self.waiters.retain(|_, w| match w {
            Waiter::Caller(tx) => !tx.is_closed(),
            Waiter::AsPush => true,
        });
    }

    /// The connection is gone: every caller gets `Disconnected`.
    pub fn fail_all(&mut self) {
        for (_, waiter) in self.waiters.drain() {
            if let Waiter::Caller(tx) = waiter {
                let _ = tx.send(Err(ClientError::Disconnected));
            }
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.waiters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fresh_and_replies_routed_once() {
        let mut p = Pending::default();
        let (tx, mut rx) = oneshot::channel();
        let a = p.register(Waiter::Caller(tx));
        let b = p.register(Waiter::AsPush);
        assert_ne!(a, b);
        assert!(p.take(&a).is_some());
        assert!(p.take(&a).is_none());
        assert!(rx.try_recv().is_err());
        p.fail_all();
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn fail_all_and_sweep() {
        let mut p = Pending::default();
        let (tx, rx) = oneshot::channel();
        p.register(Waiter::Caller(tx));
        let (gone, dropped) = oneshot::channel();
        drop(dropped);
        p.register(Waiter::Caller(gone));
        p.sweep();
        assert_eq!(p.len(), 1);
        p.fail_all();
        assert!(matches!(
            rx.blocking_recv(),
            Ok(Err(ClientError::Disconnected))
        ));
    }
}
