//! The service layer: sessions, delivery, conversations, presence. No I/O
//! details: the gateway and the HTTP API both call into [`Hub`].

pub mod chat;
pub mod delivery;
pub mod error;
pub mod moderation;
pub mod outbox;
pub mod presence;
pub mod push;
pub mod registry;
pub mod writer;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tern_store::Store;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use error::{ServiceError, ServiceResult};
pub use registry::{Session, SessionRegistry};

use crate::config::Config;
use delivery::Delivery;
use moderation::WordFilter;
use outbox::Outbox;
use presence::Presence;
use writer::WriteRequest;

/// The heart of one node: live sessions, the write path and fan-out.
pub struct Hub {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub registry: Arc<SessionRegistry>,
    pub presence: Presence,
    pub delivery: Arc<Delivery>,
    writer: RwLock<Option<mpsc::Sender<WriteRequest>>>,
    writer_task: Mutex<Option<JoinHandle<()>>>,
    next_session: AtomicU64,
    /// Users known to exist (users are never deleted), so direct sends do
    /// not query the database for the recipient every time.
    known_users: Mutex<HashSet<String>>,
    /// The banned-word filter of the send path; swapped whole on reload.
    moderation: RwLock<Arc<WordFilter>>,
}

impl Hub {
    /// Builds the hub and starts its writer task (needs a Tokio runtime).
    /// `filter` is built from `config.moderation` by the caller, since
    /// loading its word file can fail.
    pub fn new(config: Arc<Config>, store: Arc<dyn Store>, filter: WordFilter) -> Arc<Self> {
        let registry = Arc::new(SessionRegistry::new(config.limits.max_sessions_per_user));
        let notifier = push::PushNotifier::spawn(&config.push);
        let delivery = Arc::new(Delivery::new(registry.clone(), notifier));
        let (tx, task) = writer::spawn(
            store.clone(),
            delivery.clone(),
            config.store.queue_capacity,
            config.store.batch_max,
        );
        Arc::new(Self {
            presence: Presence::new(registry.clone(), store.clone()),
            config,
            store,
            registry,
            delivery,
            writer: RwLock::new(Some(tx)),
            writer_task: Mutex::new(Some(task)),
            // Random start so session ids differ across restarts and nodes.
            next_session: AtomicU64::new(rand::random::<u32>() as u64),
            known_users: Mutex::default(),
            moderation: RwLock::new(Arc::new(filter)),
        })
    }

    /// Replaces the banned-word filter; sends checked from now on use it.
    pub fn set_word_filter(&self, filter: WordFilter) {
        *self.moderation.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(filter);
    }

    /// The current banned-word filter (a cheap handle; the lock is not held).
    pub fn word_filter(&self) -> Arc<WordFilter> {
        self.moderation
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Registers a new session for `user`; evicts the oldest beyond the limit.
    pub fn open_session(&self, user: &str) -> Arc<Session> {
        let limits = &self.config.limits;
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let outbox = Outbox::new(limits.outbound_queue_frames, limits.outbound_queue_bytes);
        let session = Arc::new(Session::new(id, Arc::from(user), outbox));
        let reg = self.registry.register(session.clone());
        if !reg.evicted.is_empty() {
            tracing::info!(
                user,
                evicted = reg.evicted.len(),
                "too many sessions, closed the oldest"
            );
        }
        metrics::gauge!(crate::metrics::SESSIONS).set(self.registry.len() as f64);
        self.presence
            .session_started(&session.user, reg.came_online, now_ms());
        session
    }

    /// Unregisters a session and drops its presence subscriptions.
    pub fn close_session(&self, session: &Arc<Session>, watched: &[String]) {
        self.presence.unsubscribe(session.id, watched);
        let went_offline = self.registry.unregister(session);
        metrics::gauge!(crate::metrics::SESSIONS).set(self.registry.len() as f64);
        self.presence
            .session_ended(&session.user, went_offline, now_ms());
    }

    /// Stops the writer after the sends already queued are committed and
    /// answered, then flushes the push webhook. Call once no connection can
    /// submit any more.
    pub async fn shutdown(&self) {
        let tx = self
            .writer
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop(tx);
        let task = self
            .writer_task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "writer task failed");
            }
        }
        // After the writer: its last messages may still have queued events.
        if let Some(push) = self.delivery.push() {
            push.shutdown().await;
        }
    }

    async fn submit(&self, req: WriteRequest) -> ServiceResult<()> {
        let tx = self
            .writer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let closed = || ServiceError::Unavailable("server is shutting down".into());
        tx.ok_or_else(closed)?.send(req).await.map_err(|_| closed())
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
