//! [`SessionRegistry`]: who is online, as user → live sessions, sharded so
//! that connects, disconnects and fan-out lookups rarely contend.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use smallvec::SmallVec;
use tern_proto::CloseCode;

use super::outbox::{Outbox, Pushed};
use super::shared_frame::SharedFrame;
use tern_proto::Codec;

const SHARDS: usize = 64;

/// One shard: user → that user's live sessions, oldest first (most users
/// have one: it is kept inline, without an allocation of its own).
type Shard = HashMap<Arc<str>, SmallVec<[Arc<Session>; 1]>>;

/// One authenticated connection, as the rest of the server sees it.
pub struct Session {
    /// Process-unique number; `auth_ok.session` is derived from it.
    pub id: u64,
    pub user: Arc<str>,
    pub outbox: Outbox,
    /// Sends accepted but not yet acknowledged (drained before closing).
    pub pending_sends: AtomicU32,
    /// The codec of the session's connection: what its outbox holds.
    pub codec: Codec,
    /// Whether this session was sent `goaway` (a drain tells each once).
    told_goaway: AtomicBool,
    /// `limits.idle_timeout_ms` when the session opened (a reload changes
    /// it for new sessions only).
    idle_ms: u64,
    /// When the connection last read a frame, on [`clock_ms`]'s clock.
    last_read_ms: AtomicU64,
}

/// Milliseconds on a monotonic clock that starts with the process (what
/// idle times are measured on).
pub fn clock_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let ms = EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX)
}

impl Session {
    /// A JSON session.
    pub fn new(id: u64, user: Arc<str>, outbox: Outbox) -> Self {
        Self::with_codec(id, user, outbox, Codec::Json)
    }

    pub fn with_codec(id: u64, user: Arc<str>, outbox: Outbox, codec: Codec) -> Self {
        Self {
            id,
            user,
            outbox,
            pending_sends: AtomicU32::new(0),
            codec,
            told_goaway: AtomicBool::new(false),
            idle_ms: u64::MAX,
            last_read_ms: AtomicU64::new(clock_ms()),
        }
    }

    /// Closes the session after `ms` without a frame from its connection
    /// (see [`Session::touch`] and [`SessionRegistry::sweep`]).
    pub fn idle_after(mut self, ms: u64) -> Self {
        self.idle_ms = ms;
        self
    }

    /// A frame was read: the idle time starts again.
    pub fn touch(&self) {
        self.last_read_ms.store(clock_ms(), Ordering::Relaxed);
    }

    /// Whether the connection has been silent past its idle timeout at `now`
    /// ([`clock_ms`]).
    pub fn is_idle(&self, now: u64) -> bool {
        now.saturating_sub(self.last_read_ms.load(Ordering::Relaxed)) >= self.idle_ms
    }

    /// Queues `goaway` unless this session was already told; true if it
    /// was queued now.
    pub fn tell_goaway(&self, reconnect_ms: u64) -> bool {
        if self.told_goaway.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.push_frame(&tern_proto::ServerFrame::Goaway { reconnect_ms });
        true
    }

    /// `frame` in this session's codec.
    pub fn encode(&self, frame: &tern_proto::ServerFrame) -> Bytes {
        self.codec.encode_server(frame)
    }

    /// Queues a frame of the session's own (an answer, an ack) in its codec.
    pub fn push_frame(&self, frame: &tern_proto::ServerFrame) -> Pushed {
        self.push_encoded(self.encode(frame))
    }

    /// The public session id.
    pub fn public_id(&self) -> String {
        format!("s-{:x}", self.id)
    }

    /// Queues a push shared with other sessions, in this session's codec
    /// (encoded at most once per codec for all of them).
    pub fn push(&self, frame: &SharedFrame) -> Pushed {
        match frame.bytes(self.codec) {
            Some(bytes) => self.push_encoded(bytes),
            None => Pushed::Closed,
        }
    }

    /// Queues bytes already in the session's codec; on overflow the session
    /// closes itself (4010).
    pub fn push_encoded(&self, frame: Bytes) -> Pushed {
        let pushed = self.outbox.push(frame);
        if pushed == Pushed::Overflow {
            metrics::counter!(crate::metrics::SLOW_CONSUMER_CLOSES).increment(1);
            tracing::info!(user = %self.user, session = %self.public_id(), "slow consumer, closing");
        }
        pushed
    }
}

/// What registering a session changed.
pub struct Registered {
    /// True if the user had no session before (it just came online).
    pub came_online: bool,
    /// Sessions closed to respect `max_sessions_per_user` (oldest first).
    pub evicted: Vec<Arc<Session>>,
}

/// All live sessions of this node.
pub struct SessionRegistry {
    shards: Vec<Mutex<Shard>>,
    hasher: std::collections::hash_map::RandomState,
    sessions: AtomicUsize,
    /// `limits.max_sessions_per_user`; changed by a reload, applied at the
    /// next session a user opens.
    max_per_user: AtomicUsize,
}

impl SessionRegistry {
    pub fn new(max_per_user: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: Default::default(),
            sessions: AtomicUsize::new(0),
            max_per_user: AtomicUsize::new(max_per_user.max(1)),
        }
    }

    /// Changes the sessions one user may hold (on reload).
    pub fn set_max_per_user(&self, max: usize) {
        self.max_per_user.store(max.max(1), Ordering::Relaxed);
    }

    /// Adds a session; evicts the user's oldest ones beyond the limit.
    pub fn register(&self, session: Arc<Session>) -> Registered {
        let mut shard = self.shard(&session.user);
        let list = shard.entry(session.user.clone()).or_default();
        let came_online = list.is_empty();
        list.push(session);
        let max = self.max_per_user.load(Ordering::Relaxed);
        let excess = list.len().saturating_sub(max);
        let evicted: Vec<_> = list.drain(..excess).collect();
        drop(shard);
        self.sessions.fetch_add(1, Ordering::Relaxed);
        self.sessions.fetch_sub(evicted.len(), Ordering::Relaxed);
        for old in &evicted {
            old.outbox.close(CloseCode::Kicked);
        }
        Registered {
            came_online,
            evicted,
        }
    }

    /// Removes a session. Returns true if the user has no session left
    /// (it just went offline). Removing an evicted session is a no-op.
    pub fn unregister(&self, session: &Session) -> bool {
        let mut shard = self.shard(&session.user);
        let Some(list) = shard.get_mut(&session.user) else {
            return false;
        };
        let before = list.len();
        list.retain(|s| s.id != session.id);
        if list.len() == before {
            return false;
        }
        self.sessions.fetch_sub(1, Ordering::Relaxed);
        if list.is_empty() {
            shard.remove(&session.user);
            true
        } else {
            false
        }
    }

    pub fn is_online(&self, user: &str) -> bool {
        self.shard(user).contains_key(user)
    }

    /// Calls `f` on every live session of `user` (under the shard lock: `f`
    /// must be quick and must not touch the registry). Returns whether the
    /// user is online (has a session here).
    pub fn for_each_session(&self, user: &str, mut f: impl FnMut(&Arc<Session>)) -> bool {
        match self.shard(user).get(user) {
            Some(list) => {
                list.iter().for_each(&mut f);
                true
            }
            None => false,
        }
    }

    /// Closes every session of `user` with `code`. Returns how many.
    pub fn close_user(&self, user: &str, code: CloseCode) -> usize {
        let mut n = 0;
        self.for_each_session(user, |s| {
            s.outbox.close(code);
            n += 1;
        });
        n
    }

    /// Calls `f` on every live session, one shard at a time under its lock
    /// (`f` must be quick and must not touch the registry).
    pub fn for_each(&self, mut f: impl FnMut(&Arc<Session>)) {
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            shard.values().flatten().for_each(&mut f);
        }
    }

    /// A snapshot of every live session (for `goaway` and shutdown).
    pub fn all(&self) -> Vec<Arc<Session>> {
        let mut out = Vec::with_capacity(self.len());
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            out.extend(shard.values().flatten().cloned());
        }
        out
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.sessions.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of users online.
    pub fn users_online(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    fn shard(&self, user: &str) -> MutexGuard<'_, Shard> {
        let idx = (self.hasher.hash_one(user) as usize) % SHARDS;
        self.shards[idx].lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: u64, user: &str) -> Arc<Session> {
        Arc::new(Session::new(id, user.into(), Outbox::new(8, 1024)))
    }

    #[test]
    fn online_transitions_and_eviction() {
        let reg = SessionRegistry::new(2);
        let (a1, a2, a3) = (
            session(1, "alice"),
            session(2, "alice"),
            session(3, "alice"),
        );
        assert!(reg.register(a1.clone()).came_online);
        assert!(!reg.register(a2.clone()).came_online);
        let r = reg.register(a3.clone());
        assert_eq!(r.evicted.len(), 1);
        assert_eq!(r.evicted[0].id, 1);
        assert!(a1.outbox.is_closing());
        assert_eq!(reg.len(), 2);
        assert!(!reg.unregister(&a1), "evicted session is already gone");
        assert!(!reg.unregister(&a2));
        assert!(reg.is_online("alice"));
        assert!(reg.unregister(&a3));
        assert!(!reg.is_online("alice"));
        assert_eq!(reg.len(), 0);
    }
}
