//! The service layer: sessions, delivery, conversations, presence. No I/O
//! details: the gateway and the HTTP API both call into [`Hub`].

pub mod admin;
mod barrier;
pub mod chat;
pub mod cluster;
pub mod delivery;
pub mod error;
pub mod fanout;
pub mod groups;
mod inbound;
pub mod moderation;
pub mod outbox;
pub mod presence;
pub mod push;
pub mod queues;
pub mod registry;
pub mod shared_frame;
pub mod user_limits;
pub mod writer;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tern_cluster::local::LocalNode;
use tern_cluster::{Event, NodeStatsSource};
use tern_store::Store;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

pub use error::{ServiceError, ServiceResult};
pub use registry::{Session, SessionRegistry};

use crate::config::live::LiveConfig;
use crate::config::Config;
use cluster::ClusterLink;
use delivery::Delivery;
use groups::GroupDirectory;
use moderation::WordFilter;
use outbox::Outbox;
use presence::Presence;
use writer::WriteRequest;

/// The heart of one node: live sessions, the write path and fan-out, and
/// its link to the other nodes of a cluster.
pub struct Hub {
    /// The configuration in effect, swapped whole on reload.
    live: LiveConfig,
    store: Arc<dyn Store>,
    registry: Arc<SessionRegistry>,
    presence: Arc<Presence>,
    delivery: Arc<Delivery>,
    /// Group memberships, in memory for the send path and fan-out.
    groups: Arc<GroupDirectory>,
    /// The bus and the presence directory (in-process on a single node).
    cluster: ClusterLink,
    /// Where bans are cached besides the store (the authenticator).
    ban_cache: RwLock<Option<Arc<dyn BanCache>>>,
    /// Changes waiting for every other node to confirm them.
    barriers: barrier::Barriers,
    /// Caches are being rebuilt after lost cluster traffic (not ready).
    recovering: AtomicBool,
    /// A `resync` to every session is due (coalesces several losses).
    resync_scheduled: AtomicBool,
    /// The hub's own background tasks that run until told to stop (the
    /// last_seen flusher, which flushes once more on the way out, and the
    /// loop applying what other nodes send). The write path (writer and
    /// fan-out workers) ends by itself once the writer's queue closes, in
    /// that order, so it is awaited by handle.
    tasks: TaskTracker,
    stop: tokio_util::sync::CancellationToken,
    writer: RwLock<Option<mpsc::Sender<writer::Queued>>>,
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
}

/// Keeps a cache of banned users current (implemented by the authenticator).
pub trait BanCache: Send + Sync {
    fn set_banned_cached(&self, user: &str, banned: bool);
    /// Forgets every cached state (a ban made elsewhere may have been
    /// missed): the next check reads the store.
    fn forget_all(&self);
}

/// This node's live figures, for the cluster's node registry.
pub struct LiveFigures {
    pub registry: Arc<SessionRegistry>,
    /// The connection tasks (`Lifecycle::connections`).
    pub connections: TaskTracker,
}

impl NodeStatsSource for LiveFigures {
    fn connections(&self) -> u64 {
        self.connections.len() as u64
    }

    fn sessions(&self) -> u64 {
        self.registry.len() as u64
    }
}

impl Hub {
    /// A single node: builds the hub on an in-process bus of its own and
    /// starts its tasks (needs a Tokio runtime). `filter` is built from
    /// `config.moderation` by the caller, since loading its word file can
    /// fail.
    pub fn new(config: Arc<Config>, store: Arc<dyn Store>, filter: WordFilter) -> Arc<Self> {
        let registry = Arc::new(SessionRegistry::new(config.limits.max_sessions_per_user));
        let figures = Arc::new(LiveFigures {
            registry: registry.clone(),
            connections: TaskTracker::new(),
        });
        let node = LocalNode::single(&node_id(&config.node_id), figures, now_ms());
        let link = ClusterLink::new(node.clone(), node);
        Self::assemble(config, store, filter, registry, link)
    }

    /// Builds the hub around `registry` with `cluster` as its link to the
    /// other nodes, and starts its tasks (needs a Tokio runtime).
    pub fn assemble(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        filter: WordFilter,
        registry: Arc<SessionRegistry>,
        cluster: ClusterLink,
    ) -> Arc<Self> {
        let notifier = push::PushNotifier::spawn(&config.push);
        let groups = Arc::new(GroupDirectory::new());
        let delivery = Arc::new(Delivery::new(
            registry.clone(),
            notifier,
            groups.clone(),
            cluster.clone(),
        ));
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
        let presence = Arc::new(Presence::new(
            registry.clone(),
            store.clone(),
            cluster.clone(),
        ));
        let tasks = TaskTracker::new();
        let stop = tokio_util::sync::CancellationToken::new();
        tasks.spawn(presence.clone().run_flusher(
            std::time::Duration::from_millis(config.store.last_seen_flush_ms),
            stop.clone(),
        ));
        let inbound_rx = cluster.bus.take_inbound();
        let hub = Arc::new(Self {
            http_sends,
            presence,
            live: LiveConfig::new(config),
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
            cluster,
            ban_cache: RwLock::new(None),
            barriers: barrier::Barriers::default(),
            recovering: AtomicBool::new(false),
            resync_scheduled: AtomicBool::new(false),
            tasks,
            stop,
        });
        match inbound_rx {
            Some(rx) => {
                let stop = hub.stop.clone();
                hub.tasks
                    .spawn(inbound::run(Arc::downgrade(&hub), rx, stop));
            }
            None => tracing::error!("the bus's inbound stream was already taken"),
        }
        hub
    }

    /// This node's id (`node_id`, or host name + random suffix).
    pub fn node_id(&self) -> &Arc<str> {
        self.cluster.node_id()
    }

    /// The store behind the hub.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The live sessions of this node.
    pub fn registry(&self) -> &Arc<SessionRegistry> {
        &self.registry
    }

    /// Presence: subscriptions and last-seen times.
    pub fn presence(&self) -> &Arc<Presence> {
        &self.presence
    }

    /// The bus and the presence directory.
    pub fn cluster(&self) -> &ClusterLink {
        &self.cluster
    }

    /// Whether this node can reach the other nodes (`/readyz`).
    pub fn cluster_healthy(&self) -> bool {
        self.cluster.bus.is_healthy() && !self.recovering.load(Ordering::Acquire)
    }

    /// Where bans are cached besides the store; set once at start.
    pub fn set_ban_cache(&self, cache: Arc<dyn BanCache>) {
        *self.ban_cache.write().unwrap_or_else(|e| e.into_inner()) = Some(cache);
    }

    fn cache_ban(&self, user: &str, banned: bool) {
        if let Some(cache) = self.ban_cache() {
            cache.set_banned_cached(user, banned);
        }
    }

    fn forget_cached_bans(&self) {
        if let Some(cache) = self.ban_cache() {
            cache.forget_all();
        }
    }

    fn ban_cache(&self) -> Option<Arc<dyn BanCache>> {
        self.ban_cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Tells every other node (in publish order, before any later push).
    pub(crate) fn tell_nodes(&self, event: Event) {
        self.cluster.broadcast(event);
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
        self.open_session_with(user, tern_proto::Codec::Json)
    }

    /// Like [`Hub::open_session`], for a connection speaking `codec`.
    pub fn open_session_with(&self, user: &str, codec: tern_proto::Codec) -> Arc<Session> {
        let config = self.config();
        let limits = &config.limits;
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let outbox = Outbox::new(limits.outbound_queue_frames, limits.outbound_queue_bytes);
        let session = Session::with_codec(id, Arc::from(user), outbox, codec)
            .idle_after(limits.idle_timeout_ms);
        let session = Arc::new(session);
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
    /// answered, then flushes the push webhook, stops the inbound loop and
    /// leaves the cluster. Call once no connection can submit any more.
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
        // Sessions are gone by now: their last_seen times get written, and
        // nothing more from other nodes is applied.
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        self.cluster.directory.leave().await;
    }

    async fn submit(&self, req: WriteRequest) -> ServiceResult<()> {
        let tx = self
            .writer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let closed = || ServiceError::Unavailable("server is shutting down".into());
        // Queued with the current span, so the commit is traced in it.
        let queued = writer::Queued::from(req);
        tx.ok_or_else(closed)?
            .send(queued)
            .await
            .map_err(|_| closed())
    }
}

/// The configured node id, or the host name with a random suffix.
pub fn node_id(configured: &str) -> Arc<str> {
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
