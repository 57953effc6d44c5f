//! The delivery task: between the connection task and the app's
//! [`crate::PushStream`]. It drops duplicate messages, fills gaps with `sync`
//! and, after a reconnect, fetches what every tracked conversation missed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tern_proto::{ConvId, Message};
use tokio::sync::mpsc;

use crate::error::{ClientError, Result};
use crate::push::Push;
use crate::requests::Requester;
use crate::seq::{SeqCheck, SeqTracker};

/// Locks the shared tracker; a panic elsewhere cannot corrupt a seq map.
pub(crate) fn lock(tracker: &Mutex<SeqTracker>) -> MutexGuard<'_, SeqTracker> {
    tracker.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) struct Delivery {
    inbox: mpsc::Receiver<Push>,
    /// Pushes that arrived while a `sync` was in flight. Reading them on
    /// (rather than letting the connection task wait) lets the `sync` reply
    /// through; it holds at most what arrives during one round trip.
    backlog: VecDeque<Push>,
    out: mpsc::Sender<Push>,
    tracker: Arc<Mutex<SeqTracker>>,
    requester: Requester,
    page: u32,
}

impl Delivery {
    pub fn new(
        inbox: mpsc::Receiver<Push>,
        out: mpsc::Sender<Push>,
        tracker: Arc<Mutex<SeqTracker>>,
        requester: Requester,
        page: u32,
    ) -> Self {
        Self {
            inbox,
            backlog: VecDeque::new(),
            out,
            tracker,
            requester,
            page,
        }
    }

    /// Runs until the connection task is gone and everything is delivered.
    pub async fn run(mut self) {
        loop {
            let next = match self.backlog.pop_front() {
                Some(push) => Some(push),
                None => self.inbox.recv().await,
            };
            let Some(push) = next else { return };
            match push {
                Push::Msg(m) => self.on_msg(m).await,
                Push::Reconnected { .. } | Push::Resync => {
                    self.emit(push).await;
                    self.resync_all().await;
                }
                other => self.emit(other).await,
            }
        }
    }

    /// Waits while the app's stream is full (backpressure). A dropped stream
    /// just discards.
    async fn emit(&mut self, push: Push) {
        let _ = self.out.send(push).await;
    }

    /// Delivers `m` if new and next in line; returns the gap otherwise.
    async fn offer(&mut self, m: Message) -> Option<(Message, u64)> {
        let verdict = lock(&self.tracker).accept(&m.conv, m.seq);
        match verdict {
            SeqCheck::Untracked | SeqCheck::Next => self.emit(Push::Msg(m)).await,
            SeqCheck::Duplicate => {
                tracing::trace!(conv = %m.conv, seq = m.seq, "duplicate dropped")
            }
            SeqCheck::Gap { after } => return Some((m, after)),
        }
        None
    }

    /// Offers a message after its gap was fetched. A gap left then means the
    /// server has no such messages: step over it rather than ask forever.
    async fn offer_filled(&mut self, m: Message) {
        if let Some((m, after)) = self.offer(m).await {
            tracing::warn!(conv = %m.conv, after, seq = m.seq, "server could not fill gap");
            lock(&self.tracker).track(m.conv.clone(), m.seq - 1);
            self.offer(m).await;
        }
    }

    async fn on_msg(&mut self, m: Message) {
        let Some((m, after)) = self.offer(m).await else {
            return;
        };
        let conv = m.conv.clone();
        match self.fill(&conv, after, Some(m.seq)).await {
            Ok(()) => self.offer_filled(m).await,
            // Not delivered and not recorded: the next gap or the resync
            // after a reconnect fetches it again from the last seen seq.
            Err(e) => tracing::warn!(%conv, error = %e, "could not fill gap"),
        }
    }

    /// Fetches `after+1 ..` page by page (up to `upto` when given) and offers
    /// every message in order.
    async fn fill(&mut self, conv: &ConvId, mut after: u64, upto: Option<u64>) -> Result<()> {
        loop {
            let requester = self.requester.clone();
            let fetch = requester.sync_after(conv.clone(), after, self.page);
            let page = self.read_inbox_while(fetch).await?;
            let last = page.items.last().map(|m| m.seq);
            for item in page.items {
                self.offer_filled(item).await;
            }
            match last {
                Some(seq) if page.more && seq > after && upto.is_none_or(|u| seq < u) => {
                    after = seq
                }
                _ => return Ok(()),
            }
        }
    }

    /// After a reconnect or a `resync` push: every tracked conversation from
    /// its last seen seq.
    async fn resync_all(&mut self) {
        let convs = lock(&self.tracker).snapshot();
        for (conv, seen) in convs {
            match self.fill(&conv, seen, None).await {
                Ok(()) => {}
                // Dropped again: the next `Reconnected` starts over.
                Err(ClientError::Disconnected | ClientError::Shutdown) => return,
                Err(e) => tracing::warn!(%conv, error = %e, "resync failed"),
            }
        }
    }

    /// Awaits `fut` while moving arriving pushes to the backlog.
    async fn read_inbox_while<F: std::future::Future>(&mut self, fut: F) -> F::Output {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                biased;
                out = &mut fut => return out,
                Some(push) = self.inbox.recv() => self.backlog.push_back(push),
            }
        }
    }
}
