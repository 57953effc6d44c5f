//! The inbound loop: applies what other nodes send, in the order they sent
//! it. Pushes go to local sessions; group changes update the membership
//! cache before any later push is fanned out; bans and kicks close local
//! sessions; presence changes update the directory and tell local watchers;
//! lost traffic rebuilds the caches (groups, bans, the presence directory)
//! and tells every session to resync, once for all the losses reported
//! within `cluster.resync_delay_ms`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tern_cluster::{Event, GroupChange, Inbound};
use tern_proto::{CloseCode, ServerFrame};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::shared_frame::SharedFrame;
use super::{now_ms, Hub};

/// Runs until `stop`, or until the bus or the hub is gone.
pub(super) async fn run(hub: Weak<Hub>, mut rx: mpsc::Receiver<Inbound>, stop: CancellationToken) {
    loop {
        let inbound = tokio::select! {
            () = stop.cancelled() => return,
            next = rx.recv() => match next {
                Some(inbound) => inbound,
                None => return,
            },
        };
        let Some(hub) = hub.upgrade() else { return };
        match inbound {
            // Another node may have lost its own events (group changes,
            // bans, presence): rebuild as after a loss here.
            Inbound::Event {
                event: Event::Resync,
                ..
            } => hub.recover_lost_traffic().await,
            Inbound::Event { from, event } => hub.apply_event(&from, event),
            Inbound::Lost => hub.recover_lost_traffic().await,
            Inbound::NodeLeft { node } => hub.forget_node(&node),
            // Its last messages may be stored but never pushed: every
            // session fetches what it missed.
            Inbound::NodeDied { node } => {
                hub.forget_node(&node);
                hub.schedule_resync();
            }
        }
    }
}

impl Hub {
    /// One event from node `from`.
    fn apply_event(self: &Arc<Self>, from: &str, event: Event) {
        match event {
            Event::Push { target, frame } => self
                .delivery
                .deliver_forwarded(&target, &SharedFrame::from_json(frame)),
            Event::CloseUser { user, code } => {
                let code = CloseCode::from_code(code).unwrap_or(CloseCode::Kicked);
                self.registry.close_user(&user, code);
            }
            Event::Banned { user, banned } => {
                self.cache_ban(&user, banned);
                if banned {
                    self.registry.close_user(&user, CloseCode::Kicked);
                }
            }
            Event::Group(change) => self.apply_group_change(change),
            Event::Presence { changes } => {
                let now = now_ms();
                for (user, online) in changes {
                    self.presence.remote_change(from, &user, online, now);
                }
            }
            // Handled by the loop (it rebuilds the caches first).
            Event::Resync => self.schedule_resync(),
            Event::Left => self.forget_node(from),
            // Every event `from` published before the barrier is applied.
            Event::Barrier { id } => self.cluster.bus.send_to(from, Event::BarrierAck { id }),
            Event::BarrierAck { id } => self.barriers.ack(id, from),
        }
    }

    fn apply_group_change(&self, change: GroupChange) {
        match change {
            GroupChange::Members { group, members } => self.groups.set(&group, &members),
            GroupChange::Added { group, users } => self.groups.add(&group, &users),
            GroupChange::Removed { group, users } => self.groups.remove_users(&group, &users),
            GroupChange::Deleted { group } => self.groups.remove(&group),
        }
    }

    /// Another node is gone: its users' sessions there are too.
    fn forget_node(&self, node: &str) {
        self.barriers.forget_node(node);
        let gone = self.cluster.directory.forget_node(node);
        tracing::info!(node, users = gone.len(), "node left the cluster");
        let now = now_ms();
        for user in gone {
            self.presence.remote_gone(&user, now);
        }
    }

    /// Pushes and control events may have been lost: rebuild what other
    /// nodes keep current (group memberships, bans, the presence directory)
    /// while `/readyz` says not ready, then tell every local session to
    /// resync. Runs in the inbound loop, so events that arrive meanwhile
    /// are applied after the rebuild, in order.
    async fn recover_lost_traffic(self: &Arc<Self>) {
        tracing::warn!("cluster traffic may have been lost; rebuilding caches");
        self.recovering.store(true, Ordering::Release);
        if let Err(e) = self.load_groups().await {
            tracing::error!(error = %e, "could not reload group memberships");
        }
        self.reload_bans().await;
        if let Err(e) = self.cluster.directory.rebuild().await {
            tracing::error!(error = %e, "could not reload the presence directory");
        }
        self.recovering.store(false, Ordering::Release);
        self.schedule_resync();
    }

    /// A ban made elsewhere may have been missed: forget every cached ban
    /// state and close the local sessions of every banned user.
    async fn reload_bans(&self) {
        self.forget_cached_bans();
        match self.store.banned_users().await {
            Ok(banned) => {
                let closed: usize = banned
                    .iter()
                    .map(|user| self.registry.close_user(user, CloseCode::Kicked))
                    .sum();
                if closed > 0 {
                    tracing::info!(closed, "closed sessions of users banned during the outage");
                }
            }
            Err(e) => tracing::error!(error = %e, "could not reload the banned users"),
        }
    }

    /// Sends one `resync` to every local session after
    /// `cluster.resync_delay_ms`, for every loss reported until then (after
    /// an outage each node reports one).
    fn schedule_resync(self: &Arc<Self>) {
        if self.resync_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let delay = Duration::from_millis(self.config().cluster.resync_delay_ms);
        let hub = Arc::downgrade(self);
        let stop = self.stop.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = tokio::time::sleep(delay) => {}
            }
            if let Some(hub) = hub.upgrade() {
                hub.resync_scheduled.store(false, Ordering::Release);
                hub.resync_everyone();
            }
        });
    }

    /// Sends `resync` to every local session.
    fn resync_everyone(&self) {
        let frame = SharedFrame::new(&ServerFrame::Resync);
        let sessions = self.registry.all();
        for session in &sessions {
            session.push(&frame);
        }
        metrics::counter!(crate::metrics::RESYNCS_SENT).increment(sessions.len() as u64);
    }
}
