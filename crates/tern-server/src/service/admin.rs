//! Operator actions: bans, kicks, system broadcasts and node statistics.

use std::sync::Arc;
use std::time::Instant;

use tern_cluster::Event;
use tern_proto::ids::{is_reserved_username, validate_username};
use tern_proto::{CloseCode, ConvId, MessageKind};
use tern_store::{Appended, NewMessage};
use tokio::sync::oneshot;

use super::writer::{ReplyTo, WriteRequest};
use super::{now_ms, Hub, ServiceError, ServiceResult};

/// The sender of broadcasts.
pub const SYSTEM_USER: &str = "system";

impl Hub {
    /// Bans or unbans `user`, in this order: the store, the ban cache of
    /// every node, then (a ban) every session of the user on every node is
    /// closed with 4011. Returns once every other node confirmed it.
    /// `not_found` for an unknown user.
    pub async fn set_banned(&self, user: &str, banned: bool) -> ServiceResult<()> {
        if !self.store.set_banned(user, banned).await? {
            return Err(ServiceError::NotFound(format!("no such user: {user}")));
        }
        self.cache_ban(user, banned);
        self.tell_nodes(Event::Banned {
            user: user.to_owned(),
            banned,
        });
        if banned {
            let closed = self.registry.close_user(user, CloseCode::Kicked);
            tracing::info!(user, closed_here = closed, "user banned");
        } else {
            tracing::info!(user, "user unbanned");
        }
        self.reach_every_node().await;
        Ok(())
    }

    /// Closes every live session of `user` with 4011, on every node (the
    /// others confirm before this returns). `not_found` for an unknown
    /// user. Returns the sessions closed here.
    pub async fn kick(&self, user: &str) -> ServiceResult<usize> {
        self.require_user(user).await?;
        for node in self.cluster.directory.remote_nodes(user) {
            self.cluster.bus.send_to(
                &node,
                Event::CloseUser {
                    user: user.to_owned(),
                    code: CloseCode::Kicked.code(),
                },
            );
        }
        let closed = self.registry.close_user(user, CloseCode::Kicked);
        tracing::info!(user, closed_here = closed, "user kicked");
        self.reach_every_node().await;
        Ok(closed)
    }

    /// Stores a `system` message from `system` in `conv` and pushes it to
    /// every online session of every member.
    pub async fn broadcast(&self, conv: &ConvId, body: String) -> ServiceResult<Appended> {
        self.require_conversation(conv).await?;
        let max_body = self.config().limits.max_body_bytes;
        if body.len() > max_body || body.contains('\0') {
            return Err(ServiceError::TooLarge(format!(
                "body must be at most {max_body} bytes without NUL"
            )));
        }
        let message = NewMessage {
            conv: conv.clone(),
            from: SYSTEM_USER.to_owned(),
            body,
            kind: MessageKind::System,
            cmid: ulid::Ulid::new().to_string(),
            meta: None,
            mid: ulid::Ulid::new().to_string(),
            ts: now_ms(),
        };
        let (tx, rx) = oneshot::channel();
        self.submit(WriteRequest {
            message,
            reply: ReplyTo::Waiter(tx),
            accepted: Instant::now(),
        })
        .await?;
        rx.await
            .map_err(|_| ServiceError::Unavailable("server is shutting down".into()))?
    }

    /// `not_found` unless `conv` is a direct conversation of two existing
    /// users or an existing group.
    async fn require_conversation(&self, conv: &ConvId) -> ServiceResult<()> {
        // Groups are answered from the membership cache (no query).
        match conv {
            ConvId::Direct { a, b } => {
                self.require_user(a).await?;
                self.require_user(b).await
            }
            ConvId::Group(id) => match self.groups.members(id) {
                Some(_) => Ok(()),
                None => Err(ServiceError::NotFound(format!(
                    "no such conversation: {conv}"
                ))),
            },
        }
    }

    /// Creates `user` (no password) if it does not exist yet, for
    /// `POST /admin/tokens`.
    pub async fn ensure_user(&self, user: &str) -> ServiceResult<()> {
        if validate_username(user).is_err() || is_reserved_username(user) {
            return Err(ServiceError::BadRequest(format!(
                "invalid username: {user}"
            )));
        }
        self.store.create_user(user, None, now_ms()).await?;
        Ok(())
    }

    /// This node's figures for `/admin/stats`.
    pub fn node_stats(&self, connections: usize) -> NodeStats {
        NodeStats {
            id: self.node_id().clone(),
            addr: None,
            connections,
            sessions: self.registry.len(),
            users_online: Some(self.registry.users_online()),
            rss_kib: process_rss_kib(),
        }
    }

    /// Every node of the cluster, this one first with its full figures,
    /// the others as their last heartbeat in the node registry said.
    pub async fn cluster_stats(&self, connections: usize) -> Vec<NodeStats> {
        let mut nodes = vec![self.node_stats(connections)];
        match self.cluster.directory.nodes().await {
            Ok(others) => nodes.extend(
                others
                    .into_iter()
                    .filter(|n| *n.id != **self.node_id())
                    .map(|n| NodeStats {
                        id: Arc::from(n.id),
                        addr: Some(n.addr),
                        connections: usize::try_from(n.connections).unwrap_or(usize::MAX),
                        sessions: usize::try_from(n.sessions).unwrap_or(usize::MAX),
                        users_online: None,
                        rss_kib: None,
                    }),
            ),
            Err(e) => tracing::warn!(error = %e, "cannot list the cluster's nodes"),
        }
        nodes
    }
}

/// One node in `/admin/stats`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeStats {
    pub id: Arc<str>,
    /// The address another node serves on (from the node registry);
    /// absent for the node answering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    pub connections: usize,
    pub sessions: usize,
    /// Users with a session on this node; `null` for other nodes.
    pub users_online: Option<usize>,
    /// Resident set size of the server process in KiB (`VmRSS` of
    /// `/proc/self/status`); `None` (JSON `null`) off Linux or if unreadable.
    pub rss_kib: Option<u64>,
}

/// This process's resident set size in KiB, from `/proc/self/status`.
#[cfg(target_os = "linux")]
pub fn process_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    vm_rss_kib(&status)
}

/// This process's resident set size: not known off Linux.
#[cfg(not(target_os = "linux"))]
pub fn process_rss_kib() -> Option<u64> {
    None
}

/// The `VmRSS:` line of a `/proc/<pid>/status` text, in KiB.
fn vm_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut parts = line.split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    // The kernel always writes "kB" (KiB).
    match parts.next() {
        Some("kB") | None => Some(value),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_from_the_status_text() {
        let status = "Name:\ttern\nVmPeak:\t  200 kB\nVmRSS:\t   51234 kB\nThreads:\t4\n";
        assert_eq!(vm_rss_kib(status), Some(51234));
        assert_eq!(vm_rss_kib("Name:\ttern\n"), None);
        assert_eq!(vm_rss_kib("VmRSS:\tlots kB\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_resident_set() {
        assert!(process_rss_kib().is_some_and(|kib| kib > 0));
    }
}
