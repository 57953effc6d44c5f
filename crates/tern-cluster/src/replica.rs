//! [`Replica`]: this node's in-memory copy of the presence directory for
//! the OTHER nodes: user → the nodes holding its sessions, and the reverse,
//! so that a node that dies can be forgotten at once.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::NodeId;

/// User → remote nodes with sessions of it. Cheap to read on every
/// delivery; updated by presence events and node departures.
#[derive(Debug, Default)]
pub struct Replica {
    inner: Mutex<Maps>,
    /// Whether any remote node holds sessions: lets a single node skip
    /// every lookup on its delivery path.
    any: AtomicBool,
}

#[derive(Debug, Default)]
struct Maps {
    by_user: HashMap<String, Vec<NodeId>>,
    by_node: HashMap<NodeId, HashSet<String>>,
}

impl Replica {
    pub fn new() -> Self {
        Self::default()
    }

    /// The remote nodes where `user` has sessions.
    pub fn nodes_of(&self, user: &str) -> Vec<NodeId> {
        if !self.any() {
            return Vec::new();
        }
        self.lock().by_user.get(user).cloned().unwrap_or_default()
    }

    /// Whether any remote node holds sessions at all.
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// Records that `user` came online (or went offline) on `node`. True
    /// if the user's "online on some remote node" state flipped.
    pub fn apply(&self, node: &str, user: &str, online: bool) -> bool {
        let mut maps = self.lock();
        let Maps { by_user, by_node } = &mut *maps;
        if online {
            let nodes = by_user.entry(user.to_owned()).or_default();
            if nodes.iter().any(|n| &**n == node) {
                return false;
            }
            let id: NodeId = by_node
                .keys()
                .find(|n| &***n == node)
                .cloned()
                .unwrap_or_else(|| NodeId::from(node));
            nodes.push(id.clone());
            by_node.entry(id).or_default().insert(user.to_owned());
            self.any.store(true, Ordering::Release);
            nodes.len() == 1
        } else {
            let Some(nodes) = by_user.get_mut(user) else {
                return false;
            };
            let before = nodes.len();
            nodes.retain(|n| &**n != node);
            if nodes.len() == before {
                return false;
            }
            if let Some(users) = by_node.get_mut(node) {
                users.remove(user);
                if users.is_empty() {
                    by_node.remove(node);
                }
            }
            self.any.store(!by_node.is_empty(), Ordering::Release);
            if nodes.is_empty() {
                by_user.remove(user);
                true
            } else {
                false
            }
        }
    }

    /// Forgets every user of `node`; returns those now on no remote node.
    pub fn forget_node(&self, node: &str) -> Vec<String> {
        let mut maps = self.lock();
        let Maps { by_user, by_node } = &mut *maps;
        let Some(users) = by_node.remove(node) else {
            return Vec::new();
        };
        self.any.store(!by_node.is_empty(), Ordering::Release);
        let mut gone = Vec::new();
        for user in users {
            if let Some(nodes) = by_user.get_mut(&user) {
                nodes.retain(|n| &**n != node);
                if nodes.is_empty() {
                    by_user.remove(&user);
                    gone.push(user);
                }
            }
        }
        gone
    }

    /// Replaces everything with `entries` (node → its users), e.g. after an
    /// outage; `self_id`'s entry, if listed, is skipped.
    pub fn replace(&self, entries: Vec<(NodeId, Vec<String>)>, self_id: &str) {
        let mut fresh = Maps::default();
        for (node, users) in entries {
            if &*node == self_id {
                continue;
            }
            for user in users {
                fresh
                    .by_user
                    .entry(user.clone())
                    .or_default()
                    .push(node.clone());
                fresh.by_node.entry(node.clone()).or_default().insert(user);
            }
        }
        let any = !fresh.by_node.is_empty();
        *self.lock() = fresh;
        self.any.store(any, Ordering::Release);
    }

    /// The remote nodes known to hold sessions.
    pub fn nodes(&self) -> Vec<NodeId> {
        self.lock().by_node.keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_flip_only_on_first_and_last_node() {
        let r = Replica::new();
        assert!(r.apply("n1", "alice", true));
        assert!(!r.apply("n1", "alice", true), "repeat is no change");
        assert!(!r.apply("n2", "alice", true), "already online elsewhere");
        assert_eq!(r.nodes_of("alice").len(), 2);
        assert!(!r.apply("n1", "alice", false));
        assert!(r.apply("n2", "alice", false));
        assert!(r.nodes_of("alice").is_empty());
        assert!(!r.apply("n2", "alice", false));
    }

    #[test]
    fn a_dead_node_is_forgotten_whole() {
        let r = Replica::new();
        r.apply("n1", "alice", true);
        r.apply("n1", "bob", true);
        r.apply("n2", "bob", true);
        let mut gone = r.forget_node("n1");
        gone.sort();
        assert_eq!(gone, vec!["alice".to_owned()]);
        assert_eq!(r.nodes_of("bob").len(), 1);
        assert!(r.forget_node("n1").is_empty());
        r.replace(vec![(NodeId::from("me"), vec!["x".into()])], "me");
        assert!(r.nodes_of("x").is_empty());
        assert!(r.nodes_of("bob").is_empty());
    }
}
