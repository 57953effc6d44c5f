//! The in-process implementation of [`Bus`] and [`Directory`]: nodes that
//! live in one process share a [`LocalNetwork`]. A single node is a network
//! of one, where every publish goes nowhere; tests put several hubs on one
//! network to check cross-node delivery without sockets or Redis.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::{
    Bus, ClusterError, Directory, Event, Inbound, NodeId, NodeInfo, NodeStatsSource, Replica,
};

/// Events queued per node before further ones are dropped (and reported
/// as [`Inbound::Lost`]).
const INBOUND_CAPACITY: usize = 65_536;

/// Nodes of one process.
#[derive(Default, Clone)]
pub struct LocalNetwork {
    nodes: Arc<Mutex<HashMap<NodeId, Member>>>,
}

#[derive(Clone)]
struct Member {
    tx: mpsc::Sender<Inbound>,
    stats: Arc<dyn NodeStatsSource>,
    started_at: i64,
}

impl LocalNetwork {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a node to the network.
    pub fn join(&self, id: &str, stats: Arc<dyn NodeStatsSource>, now_ms: i64) -> Arc<LocalNode> {
        let (tx, rx) = mpsc::channel(INBOUND_CAPACITY);
        let id: NodeId = NodeId::from(id);
        let member = Member {
            tx,
            stats,
            started_at: now_ms,
        };
        self.lock().insert(id.clone(), member);
        Arc::new(LocalNode {
            id,
            network: self.clone(),
            inbound: Mutex::new(Some(rx)),
            replica: Replica::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, Member>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One node's view of a [`LocalNetwork`]: its bus and its directory.
pub struct LocalNode {
    id: NodeId,
    network: LocalNetwork,
    inbound: Mutex<Option<mpsc::Receiver<Inbound>>>,
    replica: Replica,
}

impl LocalNode {
    /// A network of one: the default of a single node.
    pub fn single(id: &str, stats: Arc<dyn NodeStatsSource>, now_ms: i64) -> Arc<Self> {
        LocalNetwork::new().join(id, stats, now_ms)
    }

    fn deliver(&self, tx: &mpsc::Sender<Inbound>, inbound: Inbound) {
        if tx.try_send(inbound).is_err() {
            // Full or gone: the receiver resyncs, as with a lost publish.
            tracing::warn!(from = %self.id, "in-process bus queue full; event dropped");
            let _ = tx.try_send(Inbound::Lost);
        }
    }

    fn others(&self) -> Vec<mpsc::Sender<Inbound>> {
        self.network
            .lock()
            .iter()
            .filter(|(id, _)| **id != self.id)
            .map(|(_, m)| m.tx.clone())
            .collect()
    }
}

impl Bus for LocalNode {
    fn send_to(&self, node: &str, event: Event) {
        let tx = self.network.lock().get(node).map(|m| m.tx.clone());
        if let Some(tx) = tx {
            let from = self.id.clone();
            self.deliver(&tx, Inbound::Event { from, event });
        }
    }

    fn broadcast(&self, event: Event) {
        for tx in self.others() {
            let from = self.id.clone();
            self.deliver(
                &tx,
                Inbound::Event {
                    from,
                    event: event.clone(),
                },
            );
        }
    }

    fn take_inbound(&self) -> Option<mpsc::Receiver<Inbound>> {
        self.inbound
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    fn is_healthy(&self) -> bool {
        true
    }
}

#[async_trait]
impl Directory for LocalNode {
    fn node_id(&self) -> &NodeId {
        &self.id
    }

    fn remote_nodes(&self, user: &str) -> Vec<NodeId> {
        self.replica.nodes_of(user)
    }

    fn any_remote(&self) -> bool {
        self.replica.any()
    }

    fn set_local(&self, user: &str, online: bool) {
        self.broadcast(Event::Presence {
            changes: vec![(user.to_owned(), online)],
        });
    }

    fn apply_remote(&self, node: &str, user: &str, online: bool) -> bool {
        self.replica.apply(node, user, online)
    }

    fn forget_node(&self, node: &str) -> Vec<String> {
        self.replica.forget_node(node)
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, ClusterError> {
        let nodes = self.network.lock();
        let mut list: Vec<NodeInfo> = nodes
            .iter()
            .map(|(id, m)| NodeInfo {
                id: id.to_string(),
                addr: String::new(),
                started_at: m.started_at,
                connections: m.stats.connections(),
                sessions: m.stats.sessions(),
            })
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(list)
    }

    async fn rebuild(&self) -> Result<(), ClusterError> {
        Ok(())
    }

    async fn leave(&self) {
        let others = {
            let mut nodes = self.network.lock();
            nodes.remove(&self.id);
            nodes.values().map(|m| m.tx.clone()).collect::<Vec<_>>()
        };
        for tx in others {
            self.deliver(
                &tx,
                Inbound::NodeLeft {
                    node: self.id.clone(),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::PushTarget;

    struct Zero;
    impl NodeStatsSource for Zero {
        fn connections(&self) -> u64 {
            0
        }
        fn sessions(&self) -> u64 {
            0
        }
    }

    #[tokio::test]
    async fn events_reach_the_named_node_or_every_other_one() {
        let net = LocalNetwork::new();
        let a = net.join("a", Arc::new(Zero), 1);
        let b = net.join("b", Arc::new(Zero), 2);
        let c = net.join("c", Arc::new(Zero), 3);
        let (mut rb, mut rc) = (b.take_inbound().unwrap(), c.take_inbound().unwrap());
        assert!(b.take_inbound().is_none());
        let push = Event::Push {
            target: PushTarget::Users {
                users: vec!["bob".into()],
            },
            frame: bytes::Bytes::from_static(b"{}"),
        };
        a.send_to("b", push.clone());
        a.broadcast(Event::Resync);
        let first = rb.recv().await.unwrap();
        assert_eq!(
            first,
            Inbound::Event {
                from: "a".into(),
                event: push
            }
        );
        assert!(matches!(
            rb.recv().await,
            Some(Inbound::Event {
                event: Event::Resync,
                ..
            })
        ));
        assert!(matches!(
            rc.recv().await,
            Some(Inbound::Event {
                event: Event::Resync,
                ..
            })
        ));
        assert_eq!(a.nodes().await.unwrap().len(), 3);
        a.leave().await;
        assert_eq!(
            rb.recv().await,
            Some(Inbound::NodeLeft { node: "a".into() })
        );
        assert_eq!(b.nodes().await.unwrap().len(), 2);
    }
}
