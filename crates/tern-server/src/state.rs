//! [`AppState`]: the cheap, cloneable handle every request handler and
//! connection task gets, and [`Lifecycle`], the shutdown state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tern_store::Store;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::gateway::AbuseLimits;
use crate::service::Hub;

/// The cheap handle on one server's shared state: one pointer, so each
/// connection's future holds 8 bytes for it however many parts it names.
/// Fields are reached through `Deref` (`state.hub`).
#[derive(Clone)]
pub struct AppState(Arc<ServerState>);

impl AppState {
    pub fn new(state: ServerState) -> Self {
        Self(Arc::new(state))
    }
}

impl std::ops::Deref for AppState {
    type Target = ServerState;

    fn deref(&self) -> &ServerState {
        &self.0
    }
}

/// Shared state of one server.
pub struct ServerState {
    /// The configuration at start. Reloadable keys are read through
    /// `hub.config()`, the configuration in effect.
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub auth: Arc<Authenticator>,
    pub hub: Arc<Hub>,
    pub lifecycle: Arc<Lifecycle>,
    /// Per-address and per-username limits on connects and logins.
    pub abuse_limits: Arc<AbuseLimits>,
    /// The TLS certificate in use (re-read on reload), when TLS is on.
    pub tls: Option<Arc<crate::tls::CertStore>>,
}

/// Where the server is in its life, and the one shutdown tree: a root
/// token whose children tell each part when to stop, and one tracker for
/// the server's own background tasks (reload watcher, limiter sweeper).
/// The hub stops its tasks in order in `Hub::shutdown`.
pub struct Lifecycle {
    draining: AtomicBool,
    /// Cancelled last: every background task stops.
    pub root: CancellationToken,
    /// Background tasks of the server (not connections, not the hub's).
    pub tasks: TaskTracker,
    /// Cancelled when draining starts: tells sessions (`goaway`); from then
    /// on `/readyz` and upgrades answer 503.
    pub drain: CancellationToken,
    /// Cancelled when the drain is over: the listeners close their ports.
    pub listeners: CancellationToken,
    /// Every connection task, so shutdown can wait for them (axum does not
    /// track upgraded WebSocket connections).
    pub connections: TaskTracker,
}

impl Default for Lifecycle {
    fn default() -> Self {
        let root = CancellationToken::new();
        Self {
            draining: AtomicBool::new(false),
            drain: root.child_token(),
            listeners: root.child_token(),
            connections: TaskTracker::new(),
            tasks: TaskTracker::new(),
            root,
        }
    }
}

impl Lifecycle {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Stops every background task and waits for them (end of shutdown).
    pub async fn stop_background(&self) {
        self.root.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Starts draining: `/readyz` answers 503 from now on.
    pub fn start_drain(&self) {
        self.draining.store(true, Ordering::Release);
        self.drain.cancel();
    }
}
