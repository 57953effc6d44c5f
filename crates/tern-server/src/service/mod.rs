//! The service layer: sessions, delivery, conversations, presence. No I/O
//! details: the gateway and the HTTP API both call into [`Hub`].

pub mod admin;
pub mod chat;
pub mod delivery;
pub mod error;
pub mod fanout;
pub mod groups;
pub mod moderation;
pub mod outbox;
pub mod presence;
pub mod push;
pub mod registry;
pub mod user_limits;
pub mod writer;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tern_store::Store;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use error::{ServiceError, ServiceResult};
pub use registry::{Session, SessionRegistry};

use crate::config::live::LiveConfig;
use crate::config::Config;
use delivery::Delivery;
use groups::GroupDirectory;
use moderation::WordFilter;
use outbox::Outbox;
use presence::Presence;
use writer::WriteRequest;

/// The heart of one node: live sessions, the write path and fan-out.
pub struct Hub {
    /// The configuration the server started with. Reloadable keys must be
    /// read through [`Hub::config`] instead.
    pub config: Arc<Config>,
    /// The configuration in effect, swapped whole on reload.
    live: LiveConfig,
    pub store: Arc<dyn Store>,
    pub registry: Arc<SessionRegistry>,
    pub presence: Arc<Presence>,
    /// Stops the last_seen flusher (it flushes once more on the way out).
    presence_stop: tokio_util::sync::CancellationToken,
    presence_task: Mutex<Option<JoinHandle<()>>>,
    pub delivery: Arc<Delivery>,
    /// Group memberships, in memory for the send path and fan-out.
    pub groups: Arc<GroupDirectory>,
    writer: RwLock<Option<mpsc::Sender<WriteRequest>>>,
    writer_task: Mutex<Option<JoinHandle<()>>>,
    /// Fan-out workers; they finish once the writer is gone and their
    /// queues are delivered.
    fanout_tasks: Mutex<Vec<JoinHandle<()>>>,
    next_session: AtomicU64,
    /// Users known to exist (users are never deleted), so direct sends do
    /// not query the database for the recipient every time.
    known_users: Mutex<HashSet<String>>,
    /// The banned-word filter of the send path; swapped whole on reload.
    moderation: RwLock<Arc<WordFilter>>,
    /// Per-user send buckets of HTTP sends.
    http_sends: user_limits::UserSendLimits,
    /// This node's id (`node_id`, or host name + random suffix).
    pub node_id: Arc<str>,
}

impl Hub {
    /// Builds the hub and starts its writer task (needs a Tokio runtime).
    /// `filter` is built from `config.moderation` by the caller, since
    /// loading its word file can fail.
    pub fn new(config: Arc<Config>, store: Arc<dyn Store>, filter: WordFilter) -> Arc<Self> {
        let registry = Arc::new(SessionRegistry::new(config.limits.max_sessions_per_user));
        let notifier = push::PushNotifier::spawn(&config.push);
        let groups = Arc::new(GroupDirectory::new());
        let delivery = Arc::new(Delivery::new(registry.clone(), notifier, groups.clone()));
        let (fanout, fanout_tasks) = fanout::FanOut::spawn(
            delivery.clone(),
            fanout::default_workers(),
            config.store.queue_capacity,
        );
        let (tx, task) = writer::spawn(
            store.clone(),
            fanout,
            config.store.queue_capacity,
            config.store.batch_max,
        );
        let http_sends =
            user_limits::UserSendLimits::new(config.limits.send_rate, config.limits.send_burst);
        let node_id = node_id(&config.node_id);
        let presence = Arc::new(Presence::new(registry.clone(), store.clone()));
        let presence_stop = tokio_util::sync::CancellationToken::new();
        let presence_task = tokio::spawn(presence.clone().run_flusher(
            std::time::Duration::from_millis(config.store.last_seen_flush_ms),
            presence_stop.clone(),
        ));
        Arc::new(Self {
            http_sends,
            node_id,
            presence,
            presence_stop,
            presence_task: Mutex::new(Some(presence_task)),
            live: LiveConfig::new(config.clone()),
            config,
            store,
            registry,
            delivery,
            groups,
            writer: RwLock::new(Some(tx)),
            writer_task: Mutex::new(Some(task)),
            fanout_tasks: Mutex::new(fanout_tasks),
            // Random start so session ids differ across restarts and nodes.
            next_session: AtomicU64::new(rand::random::<u32>() as u64),
            known_users: Mutex::default(),
            moderation: RwLock::new(Arc::new(filter)),
        })
    }

    /// The configuration in effect: take it once per operation.
    pub fn config(&self) -> Arc<Config> {
        self.live.get()
    }

    /// The live configuration, for the reloader.
    pub fn live_config(&self) -> &LiveConfig {
        &self.live
    }

    /// Applies the per-user send rate to an HTTP send.
    pub fn admit_http_send(&self, user: &str) -> ServiceResult<()> {
        self.http_sends
            .admit(user, std::time::Instant::now())
            .map_err(|retry_after_ms| {
                metrics::counter!(crate::metrics::RATE_LIMITED, "transport" => "http").increment(1);
                ServiceError::RateLimited { retry_after_ms }
            })
    }

    /// Puts a reloaded configuration in effect (the caller has validated it
    /// and kept its restart-only values): the config read per operation, the
    /// word filter built from it, and the limits held by components.
    pub fn apply_config(&self, config: Config, filter: WordFilter) {
        let limits = &config.limits;
        self.http_sends
            .set_rate(limits.send_rate, limits.send_burst);
        self.registry.set_max_per_user(limits.max_sessions_per_user);
        if let Some(push) = self.delivery.push() {
            push.reconfigure(&config.push);
        }
        self.set_word_filter(filter);
        self.live.replace(config);
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
        let config = self.config();
        let limits = &config.limits;
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
        // The writer owned the fan-out handle: the workers now deliver what
        // is queued and stop.
        let workers =
            std::mem::take(&mut *self.fanout_tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for worker in workers {
            if let Err(e) = worker.await {
                tracing::error!(error = %e, "fan-out worker failed");
            }
        }
        // After the writer and fan-out: their last messages may have queued events.
        if let Some(push) = self.delivery.push() {
            push.shutdown().await;
        }
        // Sessions are gone by now: their last_seen times get written.
        self.presence_stop.cancel();
        let task = self
            .presence_task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "last_seen flusher failed");
            }
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

/// The configured node id, or the host name with a random suffix.
fn node_id(configured: &str) -> Arc<str> {
    if !configured.is_empty() {
        return Arc::from(configured);
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let host = if host.is_empty() {
        "tern".to_owned()
    } else {
        host
    };
    Arc::from(format!("{host}-{:04x}", rand::random::<u16>()))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
