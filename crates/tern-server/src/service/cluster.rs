//! [`ClusterLink`]: the service layer's handle on the bus and the presence
//! directory. It decides which other nodes get an encoded push (only those
//! holding sessions of a recipient, one event per node however many
//! recipients it holds) and sends control events. On a single node the
//! directory knows no other node and every call returns at once.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tern_cluster::{Bus, Directory, Event, NodeId, PushTarget};
use tern_proto::ConvId;

/// The bus and the directory of this node.
#[derive(Clone)]
pub struct ClusterLink {
    pub bus: Arc<dyn Bus>,
    pub directory: Arc<dyn Directory>,
}

impl ClusterLink {
    pub fn new(bus: Arc<dyn Bus>, directory: Arc<dyn Directory>) -> Self {
        Self { bus, directory }
    }

    /// This node's id.
    pub fn node_id(&self) -> &NodeId {
        self.directory.node_id()
    }

    /// Whether `user` has sessions on another node.
    pub fn online_elsewhere(&self, user: &str) -> bool {
        self.directory.any_remote() && self.directory.online_elsewhere(user)
    }

    /// Sends `frame` for the members of `conv` (all but `skip`) to every
    /// other node that holds a session of one of `members`.
    pub fn forward_conv<'a>(
        &self,
        conv: &ConvId,
        members: impl IntoIterator<Item = &'a str>,
        skip: Option<&str>,
        frame: &Bytes,
    ) {
        if !self.directory.any_remote() {
            return;
        }
        let mut nodes: Vec<NodeId> = Vec::new();
        for user in members {
            if Some(user) == skip {
                continue;
            }
            for node in self.directory.remote_nodes(user) {
                if !nodes.contains(&node) {
                    nodes.push(node);
                }
            }
        }
        for node in nodes {
            self.bus.send_to(
                &node,
                Event::Push {
                    target: PushTarget::Conv {
                        conv: conv.to_string(),
                        skip: skip.map(str::to_owned),
                    },
                    frame: frame.clone(),
                },
            );
        }
    }

    /// Sends `frame` for every session of `users` to the other nodes that
    /// hold them, one event per node.
    pub fn forward_users<'a>(&self, users: impl IntoIterator<Item = &'a str>, frame: &Bytes) {
        if !self.directory.any_remote() {
            return;
        }
        let mut by_node: HashMap<NodeId, Vec<String>> = HashMap::new();
        for user in users {
            for node in self.directory.remote_nodes(user) {
                by_node.entry(node).or_default().push(user.to_owned());
            }
        }
        for (node, users) in by_node {
            self.bus.send_to(
                &node,
                Event::Push {
                    target: PushTarget::Users { users },
                    frame: frame.clone(),
                },
            );
        }
    }

    /// Sends a control event to every other node.
    pub fn broadcast(&self, event: Event) {
        self.bus.broadcast(event);
    }
}
