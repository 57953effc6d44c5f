//! The connection task: owns the socket, sends requests, routes replies to
//! their callers and pushes to the delivery task, keeps the connection alive
//! and reconnects when it drops.

use std::collections::BTreeSet;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tern_proto::{ClientFrame, DecodeError, ServerFrame};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};

use crate::backoff::{goaway_delay, Backoff};
use crate::config::ClientConfig;
use crate::error::{is_terminal_close, ClientError};
use crate::open::{open, SessionInfo};
use crate::pending::{Pending, Waiter};
use crate::push::Push;
use crate::requests::{set_id, Command};
use crate::transport::{Incoming, Link, Transport};

/// Close code reported when the connection ended without a close frame
/// (or, over TCP, without a final `error` frame carrying one).
pub(crate) const ABNORMAL_CLOSE: u16 = 1006;

/// How one connection ended.
enum End {
    /// The app closed the client (`done` then fires) or dropped every handle.
    ByApp(Option<oneshot::Sender<()>>),
    /// The connection is gone; reconnect no earlier than `not_before`.
    Lost {
        code: u16,
        reason: String,
        not_before: Option<Instant>,
    },
}

/// State of the live connection.
struct Live {
    link: Link,
    heartbeat: Duration,
    last_rx: Instant,
    close: Option<(u16, String)>,
    goaway_at: Option<Instant>,
}

impl Live {
    fn new(link: Link, heartbeat_ms: u64) -> Self {
        Self {
            link,
            // A zero interval would spin; the server suggests ~25 s.
            heartbeat: Duration::from_millis(heartbeat_ms.max(50)),
            last_rx: Instant::now(),
            close: None,
            goaway_at: None,
        }
    }

    fn lost(&mut self, fallback: impl Into<String>) -> End {
        let (code, reason) = self
            .close
            .take()
            .unwrap_or_else(|| (ABNORMAL_CLOSE, fallback.into()));
        End::Lost {
            code,
            reason,
            not_before: self.goaway_at,
        }
    }

    async fn send(&mut self, frame: &ClientFrame) -> Result<(), End> {
        match self.link.send(frame).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.lost(format!("send failed: {e}"))),
        }
    }

    /// Says goodbye (WebSocket close 1000; a TCP shutdown) and waits
    /// briefly for the server's close.
    async fn close(&mut self, reason: &str) {
        self.link.close(reason).await;
    }
}

/// The socket-owning task.
pub(crate) struct ConnTask {
    cfg: Arc<ClientConfig>,
    cmds: mpsc::Receiver<Command>,
    /// Completes when the last `Client` handle is dropped.
    alive: oneshot::Receiver<()>,
    pushes: mpsc::Sender<Push>,
    session: Arc<RwLock<SessionInfo>>,
    pending: Pending,
    presence: BTreeSet<String>,
    backoff: Backoff,
}

impl ConnTask {
    pub fn new(
        cfg: Arc<ClientConfig>,
        cmds: mpsc::Receiver<Command>,
        alive: oneshot::Receiver<()>,
        pushes: mpsc::Sender<Push>,
        session: Arc<RwLock<SessionInfo>>,
    ) -> Self {
        let backoff = Backoff::new(cfg.reconnect.clone());
        Self {
            cfg,
            cmds,
            alive,
            pushes,
            session,
            pending: Pending::default(),
            presence: BTreeSet::new(),
            backoff,
        }
    }

    /// Serves connections until the app closes or reconnecting stops.
    pub async fn run(mut self, link: Link, heartbeat_ms: u64) {
        let mut live = Live::new(link, heartbeat_ms);
        loop {
            let end = self.serve(&mut live).await;
            self.pending.fail_all();
            let End::Lost {
                code,
                reason,
                not_before,
            } = end
            else {
                return;
            };
            let reconnecting = self.cfg.reconnect.enabled && !is_terminal_close(code);
            tracing::info!(code, %reason, reconnecting, "connection lost");
            self.emit(Push::Closed {
                code,
                reason,
                reconnecting,
            })
            .await;
            if !reconnecting {
                return;
            }
            let Some((link, info)) = self.reconnect(not_before).await else {
                return;
            };
            live = Live::new(link, info.heartbeat_ms);
            // A failed send here shows up again in `serve`, which reports it.
            let _ = self.resume(&mut live, info).await;
        }
    }

    /// One connection's loop.
    async fn serve(&mut self, live: &mut Live) -> End {
        let mut beat = tokio::time::interval_at(Instant::now() + live.heartbeat, live.heartbeat);
        loop {
            let goaway_at = live.goaway_at;
            let step = tokio::select! {
                _ = &mut self.alive => Err(End::ByApp(None)),
                cmd = self.cmds.recv() => self.on_command(live, cmd).await,
                msg = live.link.recv() => self.on_socket(live, msg).await,
                _ = beat.tick() => self.on_beat(live).await,
                _ = sleep_until(goaway_at.unwrap_or_else(Instant::now)), if goaway_at.is_some() => {
                    Err(End::Lost { code: 1001, reason: "goaway".into(), not_before: None })
                }
            };
            match step {
                Ok(()) => {}
                Err(End::ByApp(done)) => {
                    live.close("bye").await;
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    return End::ByApp(None);
                }
                Err(lost) => {
                    if live.goaway_at.is_some() {
                        live.close("goaway").await;
                    }
                    return lost;
                }
            }
        }
    }

    async fn on_command(&mut self, live: &mut Live, cmd: Option<Command>) -> Result<(), End> {
        match cmd {
            Some(Command::Request { mut frame, reply }) => {
                self.note_presence(&frame);
                set_id(&mut frame, self.pending.register(Waiter::Caller(reply)));
                live.send(&frame).await
            }
            Some(Command::Notify { frame }) => live.send(&frame).await,
            Some(Command::Close { done }) => Err(End::ByApp(Some(done))),
            None => Err(End::ByApp(None)),
        }
    }

    /// Remembers presence subscriptions, to renew them after a reconnect.
    fn note_presence(&mut self, frame: &ClientFrame) {
        match frame {
            ClientFrame::PresenceSub { users, .. } => self.presence.extend(users.iter().cloned()),
            ClientFrame::PresenceUnsub { users, .. } => {
                for u in users {
                    self.presence.remove(u);
                }
            }
            _ => {}
        }
    }

    async fn on_socket(
        &mut self,
        live: &mut Live,
        incoming: Option<crate::Result<Incoming>>,
    ) -> Result<(), End> {
        let incoming = match incoming {
            None => return Err(live.lost("connection dropped")),
            Some(Err(e)) => return Err(live.lost(e.to_string())),
            Some(Ok(incoming)) => incoming,
        };
        live.last_rx = Instant::now();
        match incoming {
            // The stream ends right after; report the code then.
            Incoming::Close { code, reason } => live.close = Some((code, reason)),
            Incoming::Frame(Ok(frame)) => self.on_frame(live, frame).await,
            Incoming::Frame(Err(e)) => self.on_undecodable(e),
            Incoming::Control => {}
        }
        Ok(())
    }

    async fn on_frame(&mut self, live: &mut Live, frame: ServerFrame) {
        if let Some(id) = frame.id().cloned() {
            match self.pending.take(&id) {
                Some(Waiter::Caller(tx)) => {
                    let _ = tx.send(Ok(frame));
                }
                Some(Waiter::AsPush) => self.emit_frame(frame).await,
                None => tracing::debug!(?id, "reply to no pending request (timed out?)"),
            }
            return;
        }
        if let ServerFrame::Goaway { reconnect_ms } = frame {
            live.goaway_at = Some(Instant::now() + goaway_delay(reconnect_ms));
        }
        self.emit_frame(frame).await;
    }

    fn on_undecodable(&mut self, e: DecodeError) {
        tracing::warn!(error = %e, "undecodable frame from server");
        if let DecodeError::Invalid { id: Some(id), .. } = &e {
            if let Some(Waiter::Caller(tx)) = self.pending.take(id) {
                let _ = tx.send(Err(ClientError::Decode(e)));
            }
        }
    }

    /// Heartbeat: a WebSocket ping (a `ping` frame over TCP), unless the
    /// server has been silent for three periods (its pongs count), which
    /// means the link is dead.
    async fn on_beat(&mut self, live: &mut Live) -> Result<(), End> {
        self.pending.sweep();
        if live.last_rx.elapsed() > live.heartbeat * 3 {
            return Err(live.lost("server silent for three heartbeats"));
        }
        match live.link.ping().await {
            Ok(()) => Ok(()),
            Err(e) => Err(live.lost(format!("ping failed: {e}"))),
        }
    }

    async fn emit_frame(&mut self, frame: ServerFrame) {
        if let Some(push) = Push::from_frame(frame) {
            self.emit(push).await;
        }
    }

    /// Hands a push to the delivery task; waits when it is full
    /// (backpressure: the socket is not read meanwhile).
    async fn emit(&mut self, push: Push) {
        let _ = self.pushes.send(push).await;
    }

    /// Backoff, connect, authenticate; `None` when the app closed meanwhile
    /// or reconnecting stopped for good.
    async fn reconnect(&mut self, not_before: Option<Instant>) -> Option<(Link, SessionInfo)> {
        if let Some(at) = not_before {
            self.while_down(sleep_until(at)).await?;
        }
        loop {
            let Some(delay) = self.backoff.next_delay() else {
                let reason = format!("gave up after {} attempts", self.backoff.attempts());
                self.give_up(ABNORMAL_CLOSE, reason).await;
                return None;
            };
            self.while_down(tokio::time::sleep(delay)).await?;
            let cfg = Arc::clone(&self.cfg);
            match self.while_down(open(&cfg)).await? {
                Ok(opened) => {
                    self.backoff.reset();
                    return Some(opened);
                }
                Err(e) if e.is_terminal() => {
                    let code = match &e {
                        ClientError::Closed { code, .. } => *code,
                        _ => tern_proto::CloseCode::BadToken.code(),
                    };
                    self.give_up(code, e.to_string()).await;
                    return None;
                }
                Err(e) => {
                    tracing::info!(error = %e, attempt = self.backoff.attempts(), "reconnect failed")
                }
            }
        }
    }

    async fn give_up(&mut self, code: u16, reason: String) {
        tracing::warn!(code, %reason, "not reconnecting");
        self.emit(Push::Closed {
            code,
            reason,
            reconnecting: false,
        })
        .await;
    }

    /// Runs `fut` while disconnected: requests fail at once with
    /// `Disconnected`. `None` if the app closed the client meanwhile.
    async fn while_down<F: std::future::Future>(&mut self, fut: F) -> Option<F::Output> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return Some(out),
                _ = &mut self.alive => return None,
                cmd = self.cmds.recv() => match cmd {
                    Some(Command::Request { reply, .. }) => {
                        let _ = reply.send(Err(ClientError::Disconnected));
                    }
                    Some(Command::Notify { .. }) => {}
                    Some(Command::Close { done }) => {
                        let _ = done.send(());
                        return None;
                    }
                    None => return None,
                },
            }
        }
    }

    /// After a reconnect: publish the new session, tell the app (the delivery
    /// task then resyncs every tracked conversation) and renew presence.
    async fn resume(&mut self, live: &mut Live, info: SessionInfo) -> Result<(), End> {
        let push = Push::Reconnected {
            user: info.user.clone(),
            session: info.session.clone(),
        };
        *self.session.write().unwrap_or_else(PoisonError::into_inner) = info;
        self.emit(push).await;
        if self.presence.is_empty() {
            return Ok(());
        }
        let mut frame = ClientFrame::PresenceSub {
            id: None,
            users: self.presence.iter().cloned().collect(),
        };
        set_id(&mut frame, self.pending.register(Waiter::AsPush));
        live.send(&frame).await
    }
}
