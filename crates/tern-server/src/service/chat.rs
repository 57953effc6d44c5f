//! The requests of a session, shared by the WebSocket gateway and the HTTP
//! API: send, sync, conversations, read pointers, typing and presence.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tern_proto::frame::{SendFrame, SyncFrame};
use tern_proto::ids::{is_reserved_username, validate_cmid, validate_username};
use tern_proto::{ConvId, ConvSummary, Message, MessageKind, PresenceItem, RequestId, ServerFrame};
use tern_store::{Appended, HistoryPage, NewMessage, Page};
use tokio::sync::oneshot;

use super::moderation::Verdict;
use super::writer::{ReplyTo, WriteRequest};
use super::{now_ms, Hub, ServiceError, ServiceResult, Session};

impl Hub {
    /// Validates a WebSocket `send` and queues it; the `ack` (or `error`)
    /// reaches the session's outbox once the message is committed. Runs in
    /// the send's span, which the commit, ack and fan-out are traced under.
    pub async fn submit_send(
        &self,
        session: &Arc<Session>,
        id: Option<RequestId>,
        frame: SendFrame,
    ) -> ServiceResult<()> {
        let message = match self.prepare_or_repeat(&session.user, frame).await? {
            Prepared::New(m) => m,
            Prepared::Repeat(original) => {
                session.push_frame(&ack_of(id, &original));
                return Ok(());
            }
        };
        tracing::Span::current().record("conv", tracing::field::display(&message.conv));
        session.pending_sends.fetch_add(1, Ordering::AcqRel);
        let reply = ReplyTo::Session {
            session: session.clone(),
            id,
        };
        let req = WriteRequest {
            message,
            reply,
            accepted: Instant::now(),
        };
        self.submit(req).await.inspect_err(|_| {
            session.pending_sends.fetch_sub(1, Ordering::AcqRel);
        })
    }

    /// Sends and waits for the commit (the HTTP API's send). Pushes go to
    /// every online session of every member.
    pub async fn send_and_wait(&self, user: &str, frame: SendFrame) -> ServiceResult<Appended> {
        let message = match self.prepare_or_repeat(user, frame).await? {
            Prepared::New(m) => m,
            Prepared::Repeat(message) => {
                return Ok(Appended {
                    message,
                    duplicate: true,
                })
            }
        };
        let (tx, rx) = oneshot::channel();
        let req = WriteRequest {
            message,
            reply: ReplyTo::Waiter(tx),
            accepted: Instant::now(),
        };
        self.submit(req).await?;
        rx.await
            .map_err(|_| ServiceError::Unavailable("server is shutting down".into()))?
    }

    /// Like [`Self::prepare_send`], but a send that fails its checks and
    /// repeats a stored (sender, cmid) is answered with the original: a
    /// repeat gets the original ack "whatever its body or target".
    #[tracing::instrument(target = "tern::trace", name = "validate", skip_all)]
    async fn prepare_or_repeat(&self, user: &str, f: SendFrame) -> ServiceResult<Prepared> {
        let cmid = f.cmid.clone();
        let err = match self.prepare_send(user, f).await {
            Ok(m) => return Ok(Prepared::New(m)),
            Err(e) => e,
        };
        if validate_cmid(&cmid).is_err() || matches!(err, ServiceError::Unavailable(_)) {
            return Err(err);
        }
        match self.store.find_sent(user, &cmid).await {
            Ok(Some(original)) => Ok(Prepared::Repeat(original)),
            _ => Err(err),
        }
    }

    /// Checks a send against the protocol's rules and builds the message.
    async fn prepare_send(&self, user: &str, f: SendFrame) -> ServiceResult<NewMessage> {
        validate_cmid(&f.cmid).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        let max_body = self.config().limits.max_body_bytes;
        if f.body.len() > max_body {
            return Err(ServiceError::TooLarge(format!(
                "body is {} bytes, the limit is {max_body}",
                f.body.len()
            )));
        }
        if f.body.contains('\0') || f.cmid.contains('\0') {
            return Err(ServiceError::BadRequest(
                "body and cmid must not contain NUL characters".into(),
            ));
        }
        if let Some(meta) = &f.meta {
            if meta.len() > tern_proto::MAX_META_BYTES {
                return Err(ServiceError::TooLarge("meta is over 4096 bytes".into()));
            }
        }
        if f.kind == MessageKind::System {
            return Err(ServiceError::Forbidden(
                "kind system is reserved for the server".into(),
            ));
        }
        let conv = self.target_conv(user, f.to, f.conv).await?;
        let body = self.moderate(f.kind, f.body)?;
        Ok(NewMessage {
            conv,
            from: user.to_owned(),
            body,
            kind: f.kind,
            cmid: f.cmid,
            meta: f.meta,
            mid: ulid::Ulid::new().to_string(),
            ts: now_ms(),
        })
    }

    /// Applies the banned-word filter: the body to store, or `forbidden`.
    /// End-to-end encrypted bodies are ciphertext and never inspected.
    fn moderate(&self, kind: MessageKind, body: String) -> ServiceResult<String> {
        if kind == MessageKind::E2e {
            return Ok(body);
        }
        match self.word_filter().check(&body) {
            Verdict::Clean => Ok(body),
            Verdict::Reject => {
                metrics::counter!(crate::metrics::MODERATION, "action" => "reject").increment(1);
                Err(ServiceError::Forbidden(
                    "message contains a banned word".into(),
                ))
            }
            Verdict::Masked(masked) => {
                metrics::counter!(crate::metrics::MODERATION, "action" => "mask").increment(1);
                Ok(masked)
            }
        }
    }

    /// Resolves `to` / `conv` into a conversation `user` may write to.
    async fn target_conv(
        &self,
        user: &str,
        to: Option<String>,
        conv: Option<ConvId>,
    ) -> ServiceResult<ConvId> {
        let conv = match (to, conv) {
            (Some(to), None) => {
                self.require_user(&to).await?;
                ConvId::direct(user, &to)
            }
            (None, Some(conv)) => conv,
            _ => {
                return Err(ServiceError::BadRequest(
                    "send needs exactly one of `to` and `conv`".into(),
                ))
            }
        };
        self.check_member(user, &conv)?;
        if let Some(peer) = conv.peer_of(user) {
            self.require_user(peer).await?;
        }
        Ok(conv)
    }

    /// `not_found` unless `name` is an existing, non-reserved user.
    pub async fn require_user(&self, name: &str) -> ServiceResult<()> {
        let missing = || ServiceError::NotFound(format!("no such user: {name}"));
        if validate_username(name).is_err() || is_reserved_username(name) {
            return Err(missing());
        }
        if self.lock_known().contains(name) {
            return Ok(());
        }
        match self.store.get_user(name).await? {
            Some(_) => {
                self.lock_known().insert(name.to_owned());
                Ok(())
            }
            None => Err(missing()),
        }
    }

    /// `forbidden` unless `user` belongs to `conv`.
    pub fn check_member(&self, user: &str, conv: &ConvId) -> ServiceResult<()> {
        match conv {
            ConvId::Direct { .. } if conv.is_direct_party(user) => Ok(()),
            ConvId::Direct { .. } => {
                Err(ServiceError::Forbidden(format!("not a member of {conv}")))
            }
            // The in-memory directory: no database query per message.
            ConvId::Group(id) => match self.groups.is_member(id, user) {
                Some(true) => Ok(()),
                Some(false) => Err(ServiceError::Forbidden(format!("not a member of {conv}"))),
                None => Err(ServiceError::NotFound(format!(
                    "no such conversation: {conv}"
                ))),
            },
        }
    }

    /// A page of history (`sync`).
    pub async fn sync(&self, user: &str, f: &SyncFrame) -> ServiceResult<HistoryPage> {
        let page = page_of(f.after, f.before, f.limit)?;
        self.history(user, &f.conv, page).await
    }

    /// A page of history of a conversation `user` belongs to.
    pub async fn history(
        &self,
        user: &str,
        conv: &ConvId,
        page: Page,
    ) -> ServiceResult<HistoryPage> {
        self.check_member(user, conv)?;
        Ok(self.store.history(conv, page).await?)
    }

    /// The user's conversations, most recent first.
    pub async fn convs(&self, user: &str) -> ServiceResult<Vec<ConvSummary>> {
        Ok(self.store.conversations(user).await?)
    }

    /// Moves the read pointer; a receipt goes out only when it moved.
    pub async fn read(
        &self,
        user: &str,
        conv: &ConvId,
        seq: u64,
        except: Option<u64>,
    ) -> ServiceResult<()> {
        self.check_member(user, conv)?;
        let outcome = self.store.mark_read(user, conv, seq).await?;
        if outcome.moved {
            self.delivery.receipt(conv, user, outcome.read_seq, except);
        }
        Ok(())
    }

    /// Relays a typing notice to the other members (never stored).
    pub fn typing(&self, user: &str, conv: &ConvId) -> ServiceResult<()> {
        self.check_member(user, conv)?;
        self.delivery.typing(conv, user);
        Ok(())
    }

    /// `session` starts watching the presence of `users`.
    pub fn watch_presence(&self, session: &Arc<Session>, users: &[String]) {
        self.presence.subscribe(session, users);
    }

    /// `session` stops watching the presence of `users`.
    pub fn unwatch_presence(&self, session_id: u64, users: &[String]) {
        self.presence.unsubscribe(session_id, users);
    }

    /// The presence of one user, on any node.
    pub async fn presence_of_user(&self, user: &str) -> PresenceItem {
        self.presence.get(user).await
    }

    /// Current presence of `users` (subscribing is the caller's part).
    pub async fn presence_of(&self, users: &[String]) -> ServiceResult<Vec<PresenceItem>> {
        let max = self.config().limits.max_presence_subs;
        if users.len() > max {
            return Err(ServiceError::TooLarge(format!(
                "at most {max} users at once"
            )));
        }
        if let Some(bad) = users.iter().find(|u| validate_username(u).is_err()) {
            return Err(ServiceError::BadRequest(format!("invalid username: {bad}")));
        }
        let mut items = Vec::with_capacity(users.len());
        for user in users {
            items.push(self.presence.get(user).await);
        }
        Ok(items)
    }

    fn lock_known(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.known_users.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A send after its checks: new, or a repeat of a stored one.
enum Prepared {
    New(NewMessage),
    Repeat(Message),
}

/// The `ack` frame of a stored message.
pub fn ack_of(id: Option<RequestId>, m: &Message) -> ServerFrame {
    ServerFrame::Ack {
        id,
        conv: m.conv.clone(),
        seq: m.seq,
        mid: m.mid.clone(),
        ts: m.ts,
    }
}

/// Turns `after` / `before` / `limit` into a [`Page`] (PROTOCOL.md §4.2).
pub fn page_of(after: Option<u64>, before: Option<u64>, limit: Option<i64>) -> ServiceResult<Page> {
    let limit = match limit {
        None => tern_proto::DEFAULT_SYNC_LIMIT,
        Some(n) if n < 1 => {
            return Err(ServiceError::BadRequest("limit must be at least 1".into()))
        }
        Some(n) => n.min(tern_proto::MAX_SYNC_LIMIT as i64) as u32,
    };
    match (after, before) {
        (Some(_), Some(_)) => Err(ServiceError::BadRequest(
            "give `after` or `before`, not both".into(),
        )),
        (Some(after), None) => Ok(Page::After { after, limit }),
        (None, Some(before)) => Ok(Page::Before { before, limit }),
        (None, None) => Ok(Page::Latest { limit }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages() {
        assert_eq!(
            page_of(None, None, None).unwrap(),
            Page::Latest { limit: 100 }
        );
        assert_eq!(
            page_of(Some(3), None, Some(900)).unwrap(),
            Page::After {
                after: 3,
                limit: 500
            }
        );
        assert_eq!(
            page_of(None, Some(9), Some(2)).unwrap(),
            Page::Before {
                before: 9,
                limit: 2
            }
        );
        assert!(page_of(Some(1), Some(2), None).is_err());
        assert!(page_of(None, None, Some(0)).is_err());
    }
}
