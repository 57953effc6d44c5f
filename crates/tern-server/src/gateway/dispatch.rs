//! What an authenticated session does with each client frame (PROTOCOL.md
//! §4.2). Replies are queued on the session's own outbox, behind any pushes
//! already there, so one writer path serves both.

use std::sync::Arc;
use std::time::Instant;

use tern_proto::{ClientFrame, CloseCode, RequestId, ServerFrame};
use tracing::Instrument;

use super::limiter::{SendLimiter, Verdict};
use crate::service::{ServiceError, Session};
use crate::state::AppState;

/// Whether the connection goes on after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close(CloseCode),
}

/// Per-session state owned by the connection task.
pub struct SessionCtx {
    pub state: AppState,
    pub session: Arc<Session>,
    pub limiter: SendLimiter,
    /// Users this session watches for presence (dropped on close).
    pub watched: Vec<String>,
}

impl SessionCtx {
    /// Handles one frame; its reply (if any) is queued on the outbox.
    pub async fn handle(&mut self, frame: ClientFrame) -> Flow {
        let id = frame.id().cloned();
        match self.answer(frame).await {
            Ok(Some(reply)) => {
                self.reply(reply);
                Flow::Continue
            }
            Ok(None) => Flow::Continue,
            Err((e, flow)) => {
                let frame = ServerFrame::Error {
                    id,
                    code: e.code(),
                    message: e.public_message(),
                    retry_after_ms: e.retry_after_ms(),
                    close: match flow {
                        Flow::Close(code) => Some(code.code()),
                        Flow::Continue => None,
                    },
                };
                self.reply(frame);
                flow
            }
        }
    }

    async fn answer(
        &mut self,
        frame: ClientFrame,
    ) -> Result<Option<ServerFrame>, (ServiceError, Flow)> {
        let hub = self.state.hub.clone();
        let user = self.session.user.clone();
        let go_on = |e: ServiceError| (e, Flow::Continue);
        Ok(match frame {
            ClientFrame::Auth { .. } => {
                return Err(go_on(ServiceError::BadRequest(
                    "already authenticated".into(),
                )))
            }
            ClientFrame::Send(f) => {
                self.admit_send()?;
                // A trace of its own per send (not one per connection).
                let span = tracing::info_span!(
                    target: crate::telemetry::SPAN_TARGET,
                    parent: None,
                    "send",
                    user = %user,
                    session = self.session.id,
                    conv = tracing::field::Empty,
                );
                hub.submit_send(&self.session, f.id.clone(), f)
                    .instrument(span)
                    .await
                    .map_err(go_on)?;
                None
            }
            ClientFrame::Sync(f) => {
                let page = hub.sync(&user, &f).await.map_err(go_on)?;
                Some(ServerFrame::Messages {
                    id: f.id,
                    conv: f.conv,
                    items: page.items,
                    more: page.more,
                })
            }
            ClientFrame::Convs { id } => {
                let items = hub.convs(&user).await.map_err(go_on)?;
                Some(ServerFrame::Convs { id, items })
            }
            ClientFrame::Read { id, conv, seq } => {
                hub.read(&user, &conv, seq, Some(self.session.id))
                    .await
                    .map_err(go_on)?;
                Some(ServerFrame::Ok { id })
            }
            ClientFrame::Typing { conv, .. } => {
                hub.typing(&user, &conv).map_err(go_on)?;
                None
            }
            ClientFrame::PresenceSub { id, users } => {
                Some(self.presence_sub(id, users).await.map_err(go_on)?)
            }
            ClientFrame::PresenceUnsub { id, users } => {
                hub.unwatch_presence(self.session.id, &users);
                self.watched.retain(|w| !users.contains(w));
                Some(ServerFrame::Ok { id })
            }
            ClientFrame::Ping { id } => Some(ServerFrame::Pong { id }),
        })
    }

    /// Applies the send rate limit; past the abuse limit the session closes.
    fn admit_send(&mut self) -> Result<(), (ServiceError, Flow)> {
        let (retry_after_ms, flow) = match self.limiter.check(Instant::now()) {
            Verdict::Allowed => return Ok(()),
            Verdict::Limited { retry_after_ms } => (retry_after_ms, Flow::Continue),
            Verdict::Abuse { retry_after_ms } => {
                (retry_after_ms, Flow::Close(CloseCode::RateAbuse))
            }
        };
        metrics::counter!(crate::metrics::RATE_LIMITED, "transport" => "ws").increment(1);
        Err((ServiceError::RateLimited { retry_after_ms }, flow))
    }

    async fn presence_sub(
        &mut self,
        id: Option<RequestId>,
        users: Vec<String>,
    ) -> Result<ServerFrame, ServiceError> {
        let hub = &self.state.hub;
        let items = hub.presence_of(&users).await?;
        let new: Vec<String> = users
            .into_iter()
            .filter(|u| !self.watched.contains(u))
            .collect();
        let max = self.state.hub.config().limits.max_presence_subs;
        if self.watched.len() + new.len() > max {
            return Err(ServiceError::TooLarge(format!(
                "a session may watch at most {max} users"
            )));
        }
        hub.watch_presence(&self.session, &new);
        self.watched.extend(new);
        Ok(ServerFrame::Presence { id, items })
    }

    fn reply(&self, frame: ServerFrame) {
        self.session.push_frame(&frame);
    }
}
