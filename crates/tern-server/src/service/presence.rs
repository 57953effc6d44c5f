//! Presence: who watches whom, last-seen times, and the pushes sent when a
//! user comes online (first session anywhere) or goes offline (last session
//! anywhere ends). Each node tells its own watchers; what other nodes hold
//! comes from the cluster's presence directory.
//! Last-seen times are written to the store in coalesced batches (one
//! statement per flush, one row per user however often it flapped), so a
//! reconnect storm costs memory bounded by the users involved and a few
//! writes, not one database write per connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tern_proto::{PresenceItem, ServerFrame};
use tern_store::Store;

use super::cluster::ClusterLink;
use super::registry::{Session, SessionRegistry};
use super::shared_frame::SharedFrame;

/// Presence subscriptions and last-seen times of this node.
pub struct Presence {
    registry: Arc<SessionRegistry>,
    store: Arc<dyn Store>,
    cluster: ClusterLink,
    /// watched user → sessions watching it.
    watchers: Mutex<HashMap<String, Vec<Arc<Session>>>>,
    /// Last-seen times learned since start (the store has older ones).
    /// Bounded by the users online: an offline user's entry is dropped once
    /// its last_seen is stored.
    last_seen: Mutex<HashMap<Arc<str>, i64>>,
    /// Last-seen times not yet written: the newest per user.
    unsaved: Mutex<HashMap<Arc<str>, i64>>,
}

/// Most users written by one statement of a flush.
const FLUSH_CHUNK: usize = 1000;

impl Presence {
    pub fn new(
        registry: Arc<SessionRegistry>,
        store: Arc<dyn Store>,
        cluster: ClusterLink,
    ) -> Self {
        Self {
            registry,
            store,
            cluster,
            watchers: Mutex::default(),
            last_seen: Mutex::default(),
            unsaved: Mutex::default(),
        }
    }

    /// Writes the unsaved last-seen times every `every` until `stop`, then
    /// once more.
    pub async fn run_flusher(
        self: Arc<Self>,
        every: Duration,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.flush().await,
                _ = stop.cancelled() => break,
            }
        }
        self.flush().await;
    }

    /// Writes every unsaved last-seen time. On failure they stay unsaved
    /// (unless a newer time came meanwhile) for the next flush.
    pub async fn flush(&self) {
        let batch: Vec<(Arc<str>, i64)> = lock(&self.unsaved).drain().collect();
        for chunk in batch.chunks(FLUSH_CHUNK) {
            let items: Vec<(&str, i64)> = chunk.iter().map(|(u, ts)| (&**u, *ts)).collect();
            if let Err(e) = self.store.set_last_seen_many(&items).await {
                tracing::warn!(error = %e, users = chunk.len(), "could not store last_seen");
                let mut unsaved = lock(&self.unsaved);
                for (user, ts) in chunk {
                    unsaved.entry(user.clone()).or_insert(*ts);
                }
                continue;
            }
            // Stored: an offline user's time is now the store's to answer.
            let mut map = lock(&self.last_seen);
            for (user, ts) in chunk {
                if map.get(user) == Some(ts) && !self.registry.is_online(user) {
                    map.remove(user);
                }
            }
        }
    }

    /// The current presence of `user`.
    pub async fn get(&self, user: &str) -> PresenceItem {
        let online = self.registry.is_online(user) || self.cluster.online_elsewhere(user);
        let known = lock(&self.last_seen).get(user).copied();
        let last_seen = match known {
            Some(ts) => Some(ts),
            None => match self.store.get_user(user).await {
                Ok(rec) => rec.and_then(|r| r.last_seen),
                Err(e) => {
                    tracing::warn!(error = %e, "presence: last_seen lookup failed");
                    None
                }
            },
        };
        PresenceItem {
            user: user.to_owned(),
            online,
            last_seen,
        }
    }

    /// `session` starts watching `users`.
    pub fn subscribe(&self, session: &Arc<Session>, users: &[String]) {
        let mut w = lock(&self.watchers);
        for user in users {
            let list = w.entry(user.clone()).or_default();
            if !list.iter().any(|s| s.id == session.id) {
                list.push(session.clone());
            }
        }
    }

    /// `session` stops watching `users`.
    pub fn unsubscribe(&self, session_id: u64, users: &[String]) {
        let mut w = lock(&self.watchers);
        for user in users {
            if let Some(list) = w.get_mut(user) {
                list.retain(|s| s.id != session_id);
                if list.is_empty() {
                    w.remove(user);
                }
            }
        }
    }

    /// A session started; `came_online` if it is the user's first here.
    pub fn session_started(&self, user: &Arc<str>, came_online: bool, now: i64) {
        lock(&self.last_seen).insert(user.clone(), now);
        if came_online {
            self.cluster.directory.set_local(user, true);
            // Only transitions are persisted: a reconnect storm must not turn
            // into one database write per connection.
            self.persist_last_seen(user, now);
            if !self.cluster.online_elsewhere(user) {
                self.announce(user, true, now);
            }
        }
    }

    /// A session ended; `went_offline` if it was the user's last here.
    pub fn session_ended(&self, user: &Arc<str>, went_offline: bool, now: i64) {
        if went_offline {
            self.cluster.directory.set_local(user, false);
            lock(&self.last_seen).insert(user.clone(), now);
            self.persist_last_seen(user, now);
            if !self.cluster.online_elsewhere(user) {
                self.announce(user, false, now);
            }
        }
    }

    /// Node `node` reported `user` online or offline there. Watchers here
    /// hear of it when the user's state across the cluster changed.
    pub fn remote_change(&self, node: &str, user: &str, online: bool, now: i64) {
        let flipped = self.cluster.directory.apply_remote(node, user, online);
        tracing::debug!(
            node,
            user,
            online,
            flipped,
            "presence change on another node"
        );
        if flipped && !self.registry.is_online(user) {
            if online {
                lock(&self.last_seen).insert(Arc::from(user), now);
            } else {
                lock(&self.last_seen).remove(user);
            }
            self.announce(user, online, now);
        }
    }

    /// The node that held `user`'s last remote sessions is gone.
    pub fn remote_gone(&self, user: &str, now: i64) {
        if !self.registry.is_online(user) {
            lock(&self.last_seen).remove(user);
            self.announce(user, false, now);
        }
    }

    fn announce(&self, user: &str, online: bool, last_seen: i64) {
        let watchers: Vec<Arc<Session>> = match lock(&self.watchers).get(user) {
            Some(list) => list.clone(),
            None => return,
        };
        let frame = SharedFrame::new(&ServerFrame::Presence {
            id: None,
            items: vec![PresenceItem {
                user: user.to_owned(),
                online,
                last_seen: Some(last_seen),
            }],
        });
        for s in watchers {
            s.push(&frame);
        }
    }

    /// Marks `ts` as the user's last_seen to store at the next flush. Once
    /// stored, an offline user's in-memory entry is dropped (the store
    /// answers from then on), so the map does not grow with every user ever
    /// seen.
    fn persist_last_seen(&self, user: &Arc<str>, ts: i64) {
        lock(&self.unsaved).insert(user.clone(), ts);
    }

    /// Users with an in-memory last_seen (for tests and stats).
    pub fn cached_len(&self) -> usize {
        lock(&self.last_seen).len()
    }

    /// Users whose last_seen is not stored yet (for tests and stats).
    pub fn unsaved_len(&self) -> usize {
        lock(&self.unsaved).len()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
