//! Wiring: builds the state from a validated [`Config`], binds the listener,
//! serves, and runs the one shutdown tree: stop accepting → `/readyz` 503 →
//! `goaway` → drain with a deadline → close 1001 → flush the store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::auth::Authenticator;
use crate::cli::ServeArgs;
use crate::config::Config;
use crate::http::client_ip::TrustedProxies;
use crate::listener::{ListenerParams, SocketCaps};
use crate::logging::LogHandle;
use crate::reload::{ReloadError, Reloaded};
use crate::service::cluster::ClusterLink;
use crate::service::moderation::WordFilter;
use crate::service::{Hub, LiveFigures, SessionRegistry};
use crate::state::{AppState, Lifecycle, ServerState};
use tern_cluster::local::LocalNode;
use tern_cluster::redis::{RedisCluster, RedisOptions};

/// A server that is up and serving.
pub struct RunningServer {
    /// The bound HTTP/WebSocket address (useful with port 0).
    pub http_addr: SocketAddr,
    /// The bound raw TCP address, unless `tcp_addr` is `off`.
    pub tcp_addr: Option<SocketAddr>,
    pub state: AppState,
    serve: JoinHandle<()>,
}

/// Opens the store, joins the cluster (or makes a network of one) and
/// builds the shared state. `advertised` is the address this node serves
/// on, for the cluster's node registry.
pub async fn build_state(config: Config, advertised: SocketAddr) -> anyhow::Result<AppState> {
    // Install the recorder before anything records a metric.
    crate::metrics::handle();
    let config = Arc::new(config);
    // Before opening the store: a missing word file fails fast.
    let filter = WordFilter::from_config(&config.moderation)
        .context("loading the banned-word filter ([moderation])")?;
    if !filter.is_empty() {
        tracing::info!(
            words = filter.len(),
            action = %config.moderation.action,
            "banned-word filter loaded"
        );
    }
    let url = config.effective_database_url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir))?;
    }
    let opts = tern_store::OpenOptions {
        max_connections: config.store.max_connections,
        sqlite_cache_kib: config.store.sqlite_cache_kib,
        sqlite_mmap_mib: config.store.sqlite_mmap_mib,
        sqlite_checkpoint_pages: config.store.sqlite_checkpoint_pages,
        sqlite_checkpoint_ms: config.store.sqlite_checkpoint_ms,
    };
    let store = tern_store::open(&url, opts)
        .await
        .with_context(|| format!("opening database {}", redact(&url)))?;
    let op_timeout = Duration::from_millis(config.store.op_timeout_ms);
    let store = tern_store::Bounded::wrap(store, op_timeout);
    let auth = Authenticator::new(&config, store.clone())
        .await
        .context("setting up authentication")?;
    let auth = Arc::new(auth);
    let lifecycle = Arc::new(Lifecycle::default());
    let registry = Arc::new(SessionRegistry::new(config.limits.max_sessions_per_user));
    let figures = Arc::new(LiveFigures {
        registry: registry.clone(),
        connections: lifecycle.connections.clone(),
    });
    let link = join_cluster(&config, figures, advertised).await?;
    let hub = Hub::assemble(config.clone(), store.clone(), filter, registry, link);
    hub.set_ban_cache(auth.clone());
    hub.load_groups()
        .await
        .context("loading group memberships")?;
    let proxies = TrustedProxies::parse(&config.http.trusted_proxies)
        .map_err(|e| anyhow::anyhow!("http.trusted_proxies: {e}"))?;
    let abuse_limits = crate::gateway::AbuseLimits::with_proxies(&config.limits, proxies);
    let every = Duration::from_millis(config.limits.limiter_sweep_ms);
    lifecycle
        .tasks
        .spawn(abuse_limits.sweeper(every, lifecycle.root.clone()));
    let tls = match (config.tls.cert_file.as_str(), config.tls.key_file.as_str()) {
        ("", _) | (_, "") => None,
        (cert, key) => Some(crate::tls::CertStore::load(cert, key).context("loading TLS files")?),
    };
    Ok(AppState::new(ServerState {
        tls,
        abuse_limits,
        config,
        store,
        auth,
        hub,
        lifecycle,
    }))
}

/// The bus and directory of this node: Redis in cluster mode, else an
/// in-process network of one.
async fn join_cluster(
    config: &Config,
    figures: Arc<LiveFigures>,
    advertised: SocketAddr,
) -> anyhow::Result<ClusterLink> {
    let node_id = crate::service::node_id(&config.node_id);
    if config.redis_url.is_empty() {
        let node = LocalNode::single(&node_id, figures, crate::service::now_ms());
        return Ok(ClusterLink::new(node.clone(), node));
    }
    let c = &config.cluster;
    let opts = RedisOptions {
        key_prefix: c.key_prefix.clone(),
        heartbeat_ms: c.heartbeat_ms,
        node_ttl_ms: c.node_ttl_ms,
        publish_queue: c.publish_queue,
        presence_flush_ms: c.presence_flush_ms,
    };
    let cluster = RedisCluster::connect(
        &config.redis_url,
        &node_id,
        &advertised.to_string(),
        figures,
        opts,
    )
    .await
    .with_context(|| format!("joining the cluster at {}", redact(&config.redis_url)))?;
    tracing::info!(node = %node_id, prefix = %c.key_prefix, "joined the cluster");
    Ok(ClusterLink::new(cluster.clone(), cluster))
}

/// Every route: the HTTP API plus `/ws`.
pub fn router(state: AppState) -> Router {
    let ws = Router::new()
        .route("/ws", get(crate::gateway::ws_handler))
        .merge(crate::http::groups::routes())
        .merge(crate::http::chat::routes())
        .merge(crate::http::admin::routes())
        .merge(crate::http::ui::routes());
    crate::http::router_with(state, ws)
}

/// A listener on `addr` with room for `backlog` connections not accepted
/// yet (the kernel caps it at `net.core.somaxconn`). A connect burst beyond
/// the backlog is dropped by the kernel and retried by the client a second
/// later, so the default is well above tokio's 1024.
pub(crate) async fn listen(addr: &str, backlog: u32) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(backlog)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the address resolves to nothing")))
}

/// Builds, binds and starts serving.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    let addr = config.http_addr.clone();
    let backlog = config.limits.listen_backlog;
    // Bound first: the cluster's node registry announces the real address.
    let listener = listen(&addr, backlog)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let http_addr = listener.local_addr()?;
    let tcp = crate::gateway::tcp::bind(&config.tcp_addr, backlog)
        .await
        .with_context(|| format!("binding the TCP gateway {}", config.tcp_addr))?;
    let state = build_state(config, http_addr).await?;
    state
        .lifecycle
        .tasks
        .spawn(crate::gateway::sweep::run(state.clone()));
    let http = &state.config.http;
    let caps = SocketCaps::new(state.abuse_limits.clone(), http.max_connections);
    let tls = match &state.tls {
        Some(store) => Some(store.acceptor().context("setting up TLS")?),
        None => None,
    };
    let params = ListenerParams {
        router: router(state.clone()),
        caps: caps.clone(),
        header_read_timeout: Duration::from_millis(http.header_read_timeout_ms),
        tls: tls.clone(),
        stop: state.lifecycle.listeners.clone(),
    };
    let serve = tokio::spawn(crate::listener::serve(listener, params));
    let tcp_addr = match tcp {
        Some(tcp) => {
            let bound = tcp.local_addr()?;
            let stop = state.lifecycle.listeners.clone();
            let door = crate::gateway::tcp::serve(tcp, state.clone(), caps, tls, stop);
            state.lifecycle.tasks.spawn(door);
            tracing::info!(tcp_addr = %bound, "raw TCP gateway listening");
            Some(bound)
        }
        None => None,
    };
    let scheme = if state.tls.is_some() { "https" } else { "http" };
    tracing::info!(%http_addr, scheme, database = %redact(&state.config.effective_database_url()), "tern is serving");
    tracing::info!(url = %crate::http::ui::open_url(http_addr), "open the chat UI in a browser");
    Ok(RunningServer {
        http_addr,
        tcp_addr,
        state,
        serve,
    })
}

impl RunningServer {
    /// Applies `new` as a reload would (SIGHUP, file change): reloadable
    /// keys at once, restart-only keys kept; an error changes nothing.
    pub fn reload_now(&self, new: Config) -> Result<Reloaded, ReloadError> {
        crate::reload::apply(&self.state, new, None)
    }

    /// Graceful shutdown; returns when the store is flushed.
    ///
    /// The port stays open while sessions drain, and at least
    /// `http.drain_grace_ms`: `/readyz` answers 503 and upgrades are refused
    /// meanwhile, so a load balancer sees the node leave.
    pub async fn shutdown(self) {
        let state = self.state;
        let lifecycle = &state.lifecycle;
        tracing::info!(sessions = state.hub.registry().len(), "draining");
        let config = state.hub.config();
        let grace = tokio::time::sleep(Duration::from_millis(config.http.drain_grace_ms));
        lifecycle.start_drain();
        lifecycle.connections.close();
        // Sessions get `drain_timeout_ms` to leave, then a little time to
        // receive their last acks and the 1001 close.
        let budget = Duration::from_millis(config.limits.drain_timeout_ms)
            + Duration::from_millis(config.limits.close_timeout_ms)
            + Duration::from_secs(5);
        if tokio::time::timeout(budget, lifecycle.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not finish in time");
        }
        grace.await;
        lifecycle.listeners.cancel();
        if let Err(e) = self.serve.await {
            tracing::warn!(error = %e, "the listener task failed");
        }
        state.hub.shutdown().await;
        lifecycle.stop_background().await;
        state.store.close().await;
        tracing::info!("shutdown complete");
    }
}

/// Runs until SIGTERM or SIGINT, then shuts down gracefully. Meanwhile
/// SIGHUP or a change of the config file reloads it (`args` are loaded
/// again; `log` is the subscriber's handle, for `log.filter`).
pub async fn run(config: Config, args: ServeArgs, log: Option<LogHandle>) -> anyhow::Result<()> {
    let server = start(config).await?;
    crate::reload::spawn(server.state.clone(), args, log);
    wait_for_signal().await;
    server.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
        _ => {
            tracing::warn!("cannot install signal handlers; stopping on ctrl-c only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// A database URL without its password, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
