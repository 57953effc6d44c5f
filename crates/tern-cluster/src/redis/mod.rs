//! The Redis implementation of [`Bus`] and [`Directory`]: one
//! [`RedisCluster`] per node shares a connection manager (publishes, node
//! registry, presence sets) and a dedicated subscription connection, and
//! owns the background tasks that drive them.
//!
//! What lives in Redis, every name starting with `key_prefix`:
//! - `{p}node:{id}`: JSON [`NodeInfo`] with a TTL, refreshed by the heartbeat;
//!   `{p}nodes`: the set of node ids (pruned of ids whose key lapsed);
//! - `{p}users:{id}`: the users online on node `id`, expiring with it;
//! - channels `{p}node:{id}` (sharded, `SPUBLISH`) for [`Bus::send_to`] and
//!   `{p}all` (`PUBLISH`) for [`Bus::broadcast`].

mod publisher;
mod registry;
mod subscriber;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ProtocolVersion};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{
    Bus, ClusterError, Directory, Event, Inbound, NodeId, NodeInfo, NodeStatsSource, Replica,
};
use publisher::Outgoing;
use subscriber::InboundTx;

/// Events queued for this node's hub before further ones are dropped (and
/// reported as [`Inbound::Lost`]).
const INBOUND_CAPACITY: usize = 65_536;

/// How long [`Directory::leave`] waits for queued events to be published
/// and for the tasks to stop before giving up on them.
const LEAVE_DEADLINE: Duration = Duration::from_secs(5);

/// Tuning of a [`RedisCluster`]; config section `cluster`.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisOptions {
    /// Prefix of every key and channel, so several clusters (or test runs)
    /// share one Redis. Default `tern:`.
    pub key_prefix: String,
    /// Period of the heartbeat that refreshes this node's registry entry
    /// and presence set, and notices dead nodes. It is also the timeout of
    /// one Redis command (clamped to 0.5–10 s). Default 2000 ms.
    pub heartbeat_ms: u64,
    /// TTL of this node's registry entry and presence set: a node that
    /// stops beating is dead after it. Default 10000 ms.
    pub node_ttl_ms: u64,
    /// Events waiting to be published; beyond it they are dropped, counted
    /// (`tern_cluster_publish_failed_total`) and reported as lost.
    /// Default 65536.
    pub publish_queue: usize,
    /// Presence changes are coalesced for this long, then written as one
    /// pipeline and one broadcast. Default 50 ms.
    pub presence_flush_ms: u64,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            key_prefix: "tern:".into(),
            heartbeat_ms: 2000,
            node_ttl_ms: 10_000,
            publish_queue: 65_536,
            presence_flush_ms: 50,
        }
    }
}

impl RedisOptions {
    fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms.clamp(500, 10_000))
    }
}

/// Names of the keys and channels, all under the prefix.
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// A node's registry key, and also its channel (keys and channels are
    /// separate namespaces in Redis).
    fn node(&self, id: &str) -> String {
        format!("{}node:{id}", self.prefix)
    }
    fn nodes(&self) -> String {
        format!("{}nodes", self.prefix)
    }
    fn users(&self, id: &str) -> String {
        format!("{}users:{id}", self.prefix)
    }
    fn all(&self) -> String {
        format!("{}all", self.prefix)
    }
}

/// Presence of this node: the coalescing window and a mirror of the set in
/// Redis, to rewrite it whole after an outage.
#[derive(Default)]
pub(crate) struct LocalPresence {
    pending: HashMap<String, bool>,
    online: HashSet<String>,
}

/// State shared by the handle and its tasks.
pub(crate) struct Shared {
    id: NodeId,
    addr: String,
    started_at: i64,
    opts: RedisOptions,
    keys: Keys,
    /// RESP3 client for the subscription connection (push messages).
    sub_client: Client,
    conn: ConnectionManager,
    stats: Arc<dyn NodeStatsSource>,
    replica: Replica,
    inbound: InboundTx,
    queue: mpsc::Sender<Outgoing>,
    presence: Mutex<LocalPresence>,
    /// Nodes that said goodbye, and when, so the heartbeat does not report
    /// them again.
    departed: Mutex<HashMap<String, Instant>>,
    sub_up: AtomicBool,
    heartbeat_ok: AtomicBool,
    /// The cluster may have missed something from this node (a publish
    /// failed or was dropped, or the heartbeat failed): recover once Redis
    /// answers again.
    lost: AtomicBool,
    /// Wakes the presence flusher at once: a user coming online is
    /// announced without waiting for the coalescing window, so other nodes
    /// route its pushes here as soon as possible.
    flush_now: tokio::sync::Notify,
}

impl Shared {
    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Queues an outgoing item without waiting; a full queue loses it.
    fn enqueue(&self, item: Outgoing) {
        match self.queue.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("tern_cluster_publish_failed_total").increment(1);
                self.mark_lost("publish queue full");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::debug!("cluster publish after shutdown ignored");
            }
        }
    }

    fn publish_all(&self, event: &Event) {
        self.enqueue(Outgoing::All(event.encode(&self.id)));
    }

    fn mark_lost(&self, why: &str) {
        if !self.lost.swap(true, Ordering::AcqRel) {
            tracing::warn!(node = %self.id, why, "cluster traffic lost; will resync");
        }
    }

    fn lock_presence(&self) -> std::sync::MutexGuard<'_, LocalPresence> {
        self.presence.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_departed(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.departed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One node of a cluster on Redis: its [`Bus`] and its [`Directory`].
pub struct RedisCluster {
    shared: Arc<Shared>,
    inbound_rx: Mutex<Option<mpsc::Receiver<Inbound>>>,
    /// Stops the heartbeat, the presence flusher and the subscriber.
    cancel: CancellationToken,
    workers: TaskTracker,
    /// Stops the publisher at once (it normally drains the queue first).
    publisher_cancel: CancellationToken,
    publisher: TaskTracker,
    left: AtomicBool,
}

impl RedisCluster {
    /// Connects to Redis at `url` as node `node_id` (reachable by clients
    /// at `addr`): registers the node, subscribes, loads the presence
    /// replica and starts the background tasks. Fails at once if Redis
    /// cannot be reached.
    pub async fn connect(
        url: &str,
        node_id: &str,
        addr: &str,
        stats: Arc<dyn NodeStatsSource>,
        opts: RedisOptions,
    ) -> Result<Arc<RedisCluster>, ClusterError> {
        let unreachable = |e: redis::RedisError| ClusterError::Unreachable(e.to_string());
        let client = Client::open(url).map_err(unreachable)?;
        let info = client.get_connection_info().clone();
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let sub_client = Client::open(info.set_redis_settings(resp3)).map_err(unreachable)?;
        let timeout = opts.command_timeout();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| ClusterError::Unreachable(format!("cannot reach Redis: {e}")))?;
        let (queue, queue_rx) = mpsc::channel(opts.publish_queue.max(1));
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_CAPACITY);
        let shared = Arc::new(Shared {
            id: NodeId::from(node_id),
            addr: addr.to_owned(),
            started_at: now_ms(),
            keys: Keys {
                prefix: opts.key_prefix.clone(),
            },
            opts,
            sub_client,
            conn,
            stats,
            replica: Replica::new(),
            inbound: InboundTx::new(inbound_tx),
            queue,
            presence: Mutex::new(LocalPresence::default()),
            departed: Mutex::new(HashMap::new()),
            sub_up: AtomicBool::new(false),
            heartbeat_ok: AtomicBool::new(false),
            lost: AtomicBool::new(false),
            flush_now: tokio::sync::Notify::new(),
        });
        registry::beat(&shared).await.map_err(unreachable)?;
        shared.heartbeat_ok.store(true, Ordering::Release);
        let subscription = subscriber::subscribe(&shared).await.map_err(unreachable)?;
        shared.sub_up.store(true, Ordering::Release);
        registry::rebuild(&shared).await?;
        let known = registry::live_ids(&shared).await?;

        let cluster = Arc::new(RedisCluster {
            shared: shared.clone(),
            inbound_rx: Mutex::new(Some(inbound_rx)),
            cancel: CancellationToken::new(),
            workers: TaskTracker::new(),
            publisher_cancel: CancellationToken::new(),
            publisher: TaskTracker::new(),
            left: AtomicBool::new(false),
        });
        let (s, c) = (shared.clone(), cluster.publisher_cancel.clone());
        cluster.publisher.spawn(publisher::run(s, queue_rx, c));
        let (s, c) = (shared.clone(), cluster.cancel.clone());
        cluster.workers.spawn(subscriber::run(s, subscription, c));
        let (s, c) = (shared.clone(), cluster.cancel.clone());
        cluster.workers.spawn(registry::heartbeat(s, known, c));
        let (s, c) = (shared, cluster.cancel.clone());
        cluster.workers.spawn(registry::flush_presence(s, c));
        tracing::info!(node = node_id, "joined the cluster on Redis");
        Ok(cluster)
    }

    /// Stops every task at once without saying goodbye: the other nodes see
    /// this node die when its TTL lapses. For fatal errors (and tests that
    /// simulate a crash); a clean shutdown calls [`Directory::leave`].
    pub async fn abort(&self) {
        self.left.store(true, Ordering::Release);
        self.cancel.cancel();
        self.publisher_cancel.cancel();
        self.workers.close();
        self.publisher.close();
        self.workers.wait().await;
        self.publisher.wait().await;
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.publisher_cancel.cancel();
    }
}

impl Bus for RedisCluster {
    fn send_to(&self, node: &str, event: Event) {
        let channel = self.shared.keys.node(node);
        let payload: Bytes = event.encode(&self.shared.id);
        self.shared.enqueue(Outgoing::Node(channel, payload));
    }

    fn broadcast(&self, event: Event) {
        self.shared.publish_all(&event);
    }

    fn take_inbound(&self) -> Option<mpsc::Receiver<Inbound>> {
        self.inbound_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    fn is_healthy(&self) -> bool {
        self.shared.sub_up.load(Ordering::Acquire)
            && self.shared.heartbeat_ok.load(Ordering::Acquire)
    }
}

#[async_trait]
impl Directory for RedisCluster {
    fn node_id(&self) -> &NodeId {
        &self.shared.id
    }

    fn remote_nodes(&self, user: &str) -> Vec<NodeId> {
        self.shared.replica.nodes_of(user)
    }

    fn any_remote(&self) -> bool {
        self.shared.replica.any()
    }

    fn set_local(&self, user: &str, online: bool) {
        let mut presence = self.shared.lock_presence();
        if online {
            presence.online.insert(user.to_owned());
        } else {
            presence.online.remove(user);
        }
        presence.pending.insert(user.to_owned(), online);
        drop(presence);
        if online {
            self.shared.flush_now.notify_one();
        }
    }

    fn apply_remote(&self, node: &str, user: &str, online: bool) -> bool {
        self.shared.replica.apply(node, user, online)
    }

    fn forget_node(&self, node: &str) -> Vec<String> {
        self.shared.replica.forget_node(node)
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, ClusterError> {
        registry::nodes(&self.shared).await
    }

    async fn rebuild(&self) -> Result<(), ClusterError> {
        registry::rebuild(&self.shared).await
    }

    async fn leave(&self) {
        if self.left.swap(true, Ordering::AcqRel) {
            return;
        }
        // The heartbeat must be stopped before the keys go, or it would
        // write them again.
        self.cancel.cancel();
        self.workers.close();
        if tokio::time::timeout(LEAVE_DEADLINE, self.workers.wait())
            .await
            .is_err()
        {
            tracing::warn!("cluster tasks did not stop in time");
        }
        if let Err(e) = registry::deregister(&self.shared).await {
            tracing::warn!(error = %e, "could not remove this node from Redis; its TTL will");
        }
        // After every event queued before it, so the others apply them all.
        self.shared.publish_all(&Event::Left);
        let (done, flushed) = tokio::sync::oneshot::channel();
        let queued = self.shared.queue.send(Outgoing::Flush(done));
        let drained = tokio::time::timeout(LEAVE_DEADLINE, async {
            if queued.await.is_ok() {
                let _ = flushed.await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("cluster publish queue not drained before leaving");
        }
        self.publisher_cancel.cancel();
        self.publisher.close();
        self.publisher.wait().await;
        tracing::info!(node = %self.shared.id, "left the cluster");
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
