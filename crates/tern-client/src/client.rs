//! [`Client`]: the cheap, clonable handle an app or a bot uses, with one typed
//! method per request of PROTOCOL.md §4.2.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tern_proto::frame::{SendFrame, SyncFrame};
use tern_proto::{ClientFrame, ConvId, ConvSummary, MessageKind, PresenceItem, ServerFrame};
use tokio::sync::{mpsc, oneshot};

use crate::config::ClientConfig;
use crate::connection::ConnTask;
use crate::delivery::{lock, Delivery};
use crate::error::Result;
use crate::open::{open, SessionInfo};
use crate::push::PushStream;
use crate::requests::{unexpected, Ack, Page, Requester};
use crate::seq::SeqTracker;

/// Capacity of the handle → connection task queue.
const COMMAND_QUEUE: usize = 64;

/// A handle to one logical connection (which survives reconnects). Clones
/// share it; when the last clone is dropped the connection is closed.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    requester: Requester,
    session: Arc<RwLock<SessionInfo>>,
    tracker: Arc<Mutex<SeqTracker>>,
    /// Dropped with the last handle, which stops the connection task.
    _alive: oneshot::Sender<()>,
}

impl Client {
    /// Connects and authenticates once (no retry: a bad URL or token is
    /// reported here), then starts the background tasks. Must be called
    /// inside a tokio runtime.
    pub async fn connect(cfg: ClientConfig) -> Result<(Client, PushStream)> {
        cfg.validate()?;
        let cfg = Arc::new(cfg);
        let (link, info) = open(&cfg).await?;
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let (inbox_tx, inbox_rx) = mpsc::channel(cfg.push_buffer);
        let (out_tx, out_rx) = mpsc::channel(cfg.push_buffer);
        let (alive_tx, alive_rx) = oneshot::channel();
        let heartbeat_ms = info.heartbeat_ms;
        let session = Arc::new(RwLock::new(info));
        let tracker = Arc::new(Mutex::new(SeqTracker::new()));
        let requester = Requester::new(cmd_tx, cfg.request_timeout);
        let conn = ConnTask::new(
            Arc::clone(&cfg),
            cmd_rx,
            alive_rx,
            inbox_tx,
            Arc::clone(&session),
        );
        let delivery = Delivery::new(
            inbox_rx,
            out_tx,
            Arc::clone(&tracker),
            requester.clone(),
            cfg.sync_page,
        );
        tokio::spawn(conn.run(link, heartbeat_ms));
        tokio::spawn(delivery.run());
        let inner = Inner {
            requester,
            session,
            tracker,
            _alive: alive_tx,
        };
        let client = Client {
            inner: Arc::new(inner),
        };
        Ok((client, PushStream::new(out_rx)))
    }

    fn info(&self) -> SessionInfo {
        let guard = self.inner.session.read();
        guard.unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The authenticated username.
    pub fn user(&self) -> String {
        self.info().user
    }

    /// The current session id (changes on reconnect).
    pub fn session(&self) -> String {
        self.info().session
    }

    /// The server's suggested heartbeat interval of the current session.
    pub fn heartbeat_ms(&self) -> u64 {
        self.info().heartbeat_ms
    }

    /// Any request; the client sets a fresh numeric `id` (replacing one the
    /// frame had). An `error` reply is `Err(ClientError::Server{..})`. Use
    /// [`Client::typing`] for `typing`, which has no reply.
    pub async fn request(&self, frame: ClientFrame) -> Result<ServerFrame> {
        self.inner.requester.request(frame).await
    }

    /// A direct message to `to`.
    pub async fn send_to(&self, to: &str, cmid: &str, body: &str) -> Result<Ack> {
        self.send(send_frame(Some(to.to_owned()), None, cmid, body))
            .await
    }

    /// A message to a conversation the user belongs to.
    pub async fn send_conv(&self, conv: &ConvId, cmid: &str, body: &str) -> Result<Ack> {
        self.send(send_frame(None, Some(conv.clone()), cmid, body))
            .await
    }

    /// Any `send` (kind, meta). After `Disconnected` or `Timeout` it may be
    /// retried with the same `cmid`: the server stores it at most once.
    pub async fn send(&self, frame: SendFrame) -> Result<Ack> {
        match self.request(ClientFrame::Send(frame)).await? {
            ServerFrame::Ack {
                conv, seq, mid, ts, ..
            } => {
                lock(&self.inner.tracker).record_own(&conv, seq);
                Ok(Ack { conv, seq, mid, ts })
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Messages with seq > `after`, ascending.
    pub async fn sync_after(&self, conv: &ConvId, after: u64, limit: u32) -> Result<Page> {
        self.sync(conv, Some(after), None, limit).await
    }

    /// The `limit` messages just below seq `before`, ascending.
    pub async fn sync_before(&self, conv: &ConvId, before: u64, limit: u32) -> Result<Page> {
        self.sync(conv, None, Some(before), limit).await
    }

    /// The newest `limit` messages, ascending.
    pub async fn sync_latest(&self, conv: &ConvId, limit: u32) -> Result<Page> {
        self.sync(conv, None, None, limit).await
    }

    async fn sync(
        &self,
        conv: &ConvId,
        after: Option<u64>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Page> {
        let frame = SyncFrame {
            id: None,
            conv: conv.clone(),
            after,
            before,
            limit: Some(i64::from(limit)),
        };
        self.inner.requester.sync(frame).await
    }

    /// The user's conversations, most recent activity first.
    pub async fn convs(&self) -> Result<Vec<ConvSummary>> {
        match self.request(ClientFrame::Convs { id: None }).await? {
            ServerFrame::Convs { items, .. } => Ok(items),
            other => Err(unexpected(&other)),
        }
    }

    /// Moves the read pointer of `conv` to `seq`.
    pub async fn read(&self, conv: &ConvId, seq: u64) -> Result<()> {
        let frame = ClientFrame::Read {
            id: None,
            conv: conv.clone(),
            seq,
        };
        self.expect_ok(frame).await
    }

    /// Tells the other members the user is typing. No reply; a refusal comes
    /// back as a [`crate::Push::Error`].
    pub async fn typing(&self, conv: &ConvId) -> Result<()> {
        let frame = ClientFrame::Typing {
            id: None,
            conv: conv.clone(),
        };
        self.inner.requester.notify(frame).await
    }

    /// Subscribes to users' presence (renewed after every reconnect) and
    /// returns their current presence.
    pub async fn presence_sub<I, S>(&self, users: I) -> Result<Vec<PresenceItem>>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let users = users.into_iter().map(Into::into).collect();
        match self
            .request(ClientFrame::PresenceSub { id: None, users })
            .await?
        {
            ServerFrame::Presence { items, .. } => Ok(items),
            other => Err(unexpected(&other)),
        }
    }

    /// Ends presence subscriptions.
    pub async fn presence_unsub<I, S>(&self, users: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let users = users.into_iter().map(Into::into).collect();
        self.expect_ok(ClientFrame::PresenceUnsub { id: None, users })
            .await
    }

    /// An application-level ping; returns the round-trip time.
    pub async fn ping(&self) -> Result<Duration> {
        let start = Instant::now();
        match self.request(ClientFrame::Ping { id: None }).await? {
            ServerFrame::Pong { .. } => Ok(start.elapsed()),
            other => Err(unexpected(&other)),
        }
    }

    async fn expect_ok(&self, frame: ClientFrame) -> Result<()> {
        match self.request(frame).await? {
            ServerFrame::Ok { .. } => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Seeds gap detection: every message of `conv` up to `last_seq` counts
    /// as seen (e.g. from a local store or `convs()`), so pushes above it are
    /// checked for gaps and the conversation is resynced after reconnects.
    /// Pages the app fetches itself with `sync_*` do not move the tracker.
    pub fn track(&self, conv: ConvId, last_seq: u64) {
        lock(&self.inner.tracker).track(conv, last_seq);
    }

    /// The highest contiguous seq delivered or seeded for `conv`.
    pub fn last_seen(&self, conv: &ConvId) -> Option<u64> {
        lock(&self.inner.tracker).last_seen(conv)
    }

    /// Closes the connection (close code 1000) and stops reconnecting; the
    /// push stream ends once the pushes already received are delivered.
    /// Later requests fail with [`ClientError::Shutdown`].
    pub async fn close(&self) -> Result<()> {
        self.inner.requester.close().await;
        Ok(())
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let info = self.info();
        f.debug_struct("Client")
            .field("user", &info.user)
            .field("session", &info.session)
            .finish()
    }
}

fn send_frame(to: Option<String>, conv: Option<ConvId>, cmid: &str, body: &str) -> SendFrame {
    SendFrame {
        id: None,
        to,
        conv,
        cmid: cmid.to_owned(),
        body: body.to_owned(),
        kind: MessageKind::Text,
        meta: None,
    }
}
