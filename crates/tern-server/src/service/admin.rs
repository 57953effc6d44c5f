//! Operator actions: bans, kicks, system broadcasts and node statistics.

use std::sync::Arc;
use std::time::Instant;

use tern_proto::ids::{is_reserved_username, validate_username};
use tern_proto::{CloseCode, ConvId, MessageKind};
use tern_store::{Appended, NewMessage};
use tokio::sync::oneshot;

use super::writer::{ReplyTo, WriteRequest};
use super::{now_ms, Hub, ServiceError, ServiceResult};

/// The sender of broadcasts.
pub const SYSTEM_USER: &str = "system";

impl Hub {
    /// Bans or unbans `user`; a ban closes its live sessions with 4011.
    /// `not_found` for an unknown user.
    pub async fn set_banned(&self, user: &str, banned: bool) -> ServiceResult<()> {
        if !self.store.set_banned(user, banned).await? {
            return Err(ServiceError::NotFound(format!("no such user: {user}")));
        }
        if banned {
            let closed = self.registry.close_user(user, CloseCode::Kicked);
            tracing::info!(user, closed, "user banned");
        } else {
            tracing::info!(user, "user unbanned");
        }
        Ok(())
    }

    /// Closes every live session of `user` with 4011. `not_found` for an
    /// unknown user.
    pub async fn kick(&self, user: &str) -> ServiceResult<usize> {
        self.require_user(user).await?;
        let closed = self.registry.close_user(user, CloseCode::Kicked);
        tracing::info!(user, closed, "user kicked");
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
            id: self.node_id.clone(),
            connections,
            sessions: self.registry.len(),
            users_online: self.registry.users_online(),
            rss_kib: process_rss_kib(),
        }
    }
}

/// One node in `/admin/stats`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeStats {
    pub id: Arc<str>,
    pub connections: usize,
    pub sessions: usize,
    pub users_online: usize,
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
