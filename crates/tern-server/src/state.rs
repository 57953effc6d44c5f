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

/// Shared state of one server.
#[derive(Clone)]
pub struct AppState {
    /// The configuration at start. Reloadable keys are read through
    /// `hub.config()`, the configuration in effect.
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub auth: Arc<Authenticator>,
    pub hub: Arc<Hub>,
    pub lifecycle: Arc<Lifecycle>,
    /// Per-address and per-username limits on connects and logins.
    pub abuse_limits: Arc<AbuseLimits>,
}

/// Where the server is in its life: serving, or draining for shutdown.
#[derive(Default)]
pub struct Lifecycle {
    draining: AtomicBool,
    /// Cancelled when draining starts: tells sessions (`goaway`); from then
    /// on `/readyz` and upgrades answer 503.
    pub drain: CancellationToken,
    /// Cancelled when the drain is over: the listeners close their ports.
    pub listeners: CancellationToken,
    /// Every connection task, so shutdown can wait for them (axum does not
    /// track upgraded WebSocket connections).
    pub connections: TaskTracker,
}

impl Lifecycle {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Starts draining: `/readyz` answers 503 from now on.
    pub fn start_drain(&self) {
        self.draining.store(true, Ordering::Release);
        self.drain.cancel();
    }
}
