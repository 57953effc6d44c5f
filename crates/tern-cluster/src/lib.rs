//! The seams that let several tern nodes act as one service: a [`Bus`]
//! that carries already-encoded pushes and control events between nodes,
//! and a presence [`Directory`] that says which nodes hold sessions of
//! which users. The service layer only ever sees these two traits; a single
//! node uses the in-process implementation ([`local`]), a cluster the
//! Redis one.
#![forbid(unsafe_code)]

pub mod event;
pub mod local;
pub mod redis;
pub mod replica;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;

pub use event::{EnvelopeError, Event, GroupChange, PushTarget};
pub use replica::Replica;

/// A node's id (`--node-id`), shared cheaply.
pub type NodeId = Arc<str>;

/// What a node receives from the others.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// An event another node sent (to this node or to all).
    Event { from: NodeId, event: Event },
    /// Traffic may have been lost (the bus was unreachable, or a publish
    /// failed): caches must be rebuilt and every local session told to
    /// resync.
    Lost,
    /// A node left (clean shutdown): its users' sessions there are gone.
    NodeLeft { node: NodeId },
    /// A node died (its heartbeat lapsed): its users' sessions there are
    /// gone, and the pushes of the last messages it stored may never have
    /// been published.
    NodeDied { node: NodeId },
}

/// Why a cluster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster bus unreachable: {0}")]
    Unreachable(String),
    #[error("bad cluster data: {0}")]
    Corrupt(String),
}

/// Delivery between nodes. Publishing never blocks the caller: events are
/// queued (bounded) and sent in order; what cannot be sent is counted and
/// reported to every node as [`Inbound::Lost`] once the bus works again.
pub trait Bus: Send + Sync + 'static {
    /// Sends `event` to one other node.
    fn send_to(&self, node: &str, event: Event);
    /// Sends `event` to every other node.
    fn broadcast(&self, event: Event);
    /// This node's inbound traffic, in the order it was published. Taken
    /// once, by the hub's inbound loop; later calls get `None`.
    fn take_inbound(&self) -> Option<mpsc::Receiver<Inbound>>;
    /// Whether the bus is usable right now (`/readyz` is 503 otherwise).
    fn is_healthy(&self) -> bool;
}

/// A node as the registry knows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeInfo {
    pub id: String,
    /// The address clients and load balancers reach it on.
    pub addr: String,
    /// Start time, ms since the Unix epoch.
    pub started_at: i64,
    pub connections: u64,
    pub sessions: u64,
}

/// Which nodes hold sessions of which users. Every node keeps an in-memory
/// [`Replica`] of it, so a delivery never waits for a lookup.
#[async_trait]
pub trait Directory: Send + Sync + 'static {
    /// This node's id.
    fn node_id(&self) -> &NodeId;
    /// The other nodes where `user` has sessions now.
    fn remote_nodes(&self, user: &str) -> Vec<NodeId>;
    /// Whether `user` has sessions on another node.
    fn online_elsewhere(&self, user: &str) -> bool {
        !self.remote_nodes(user).is_empty()
    }
    /// Whether any other node holds sessions at all (a single node never
    /// does): a false answer lets delivery skip every per-user lookup.
    fn any_remote(&self) -> bool {
        true
    }
    /// `user` came online on this node (its first session here) or went
    /// offline here (its last session ended). Recorded where the other
    /// nodes see it, coalesced with other changes; never blocks.
    fn set_local(&self, user: &str, online: bool);
    /// Applies a change another node reported. True if the user's
    /// cluster-wide state (online anywhere but here) changed.
    fn apply_remote(&self, node: &str, user: &str, online: bool) -> bool;
    /// Forgets a node that left or died; returns the users that were online
    /// there and nowhere else any more.
    fn forget_node(&self, node: &str) -> Vec<String>;
    /// The live nodes, this one included (node registry).
    async fn nodes(&self) -> Result<Vec<NodeInfo>, ClusterError>;
    /// Reloads the replica from the source of truth (after an outage).
    async fn rebuild(&self) -> Result<(), ClusterError>;
    /// Says goodbye: this node's entries are removed at once (clean
    /// shutdown) instead of lapsing with their TTL.
    async fn leave(&self);
}

/// Reports this node's figures to the node registry's heartbeat.
pub trait NodeStatsSource: Send + Sync + 'static {
    fn connections(&self) -> u64;
    fn sessions(&self) -> u64;
}
