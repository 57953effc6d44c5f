//! Hot reload of the configuration. On SIGHUP, and when the config file
//! changes (debounced), the file, environment and flags are loaded again
//! exactly as at start; the reloadable keys are swapped in at once,
//! restart-only keys that changed are reported and left as they are, and a
//! file that does not load keeps the old configuration whole.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

use crate::cli::ServeArgs;
use crate::config::live::{changed_keys, keep_restart_only, restart_needed};
use crate::config::load::ConfigError;
use crate::config::Config;
use crate::logging::{LogError, LogHandle};
use crate::service::moderation::{ModerationError, WordFilter};
use crate::state::AppState;

/// A changed file is reloaded once it has been left alone this long, so an
/// editor's truncate-then-write (or a burst of saves) gives one reload.
pub const DEBOUNCE: Duration = Duration::from_millis(300);
/// How often the config file is looked at.
const POLL: Duration = Duration::from_millis(100);

/// Why a reload was refused; the old configuration stays in effect.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("banned-word filter: {0}")]
    Moderation(#[from] ModerationError),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// What a reload did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Dotted keys now in effect with a new value.
    pub applied: Vec<String>,
    /// Restart-only keys whose new value was not applied.
    pub restart_needed: Vec<&'static str>,
}

/// Puts `new` in effect: its reloadable keys apply, its restart-only keys
/// keep their running values. Nothing changes on error. `log` is the
/// subscriber's handle, when there is one, for `log.filter`.
pub fn apply(
    state: &AppState,
    new: Config,
    log: Option<&LogHandle>,
) -> Result<Reloaded, ReloadError> {
    let hub = &state.hub;
    let _updating = hub.live_config().lock_updates();
    let old = hub.config();
    let restart_needed = restart_needed(&old, &new);
    let new = keep_restart_only(&old, new);
    // Both parts were valid alone; the checks across keys stay within one
    // part, but checking the result costs nothing.
    new.validate()?;
    // The word file may have changed even if no key did: always rebuilt.
    let filter = WordFilter::from_config(&new.moderation)?;
    // The last step that can fail, so an error leaves everything as it was.
    if new.log.filter != old.log.filter {
        if let Some(log) = log {
            log.set_filter(&new.log.filter)?;
        }
    }
    let applied = changed_keys(&old, &new);
    state.auth.apply_reload(&new.auth);
    let max_conns = new.limits.max_connections_per_ip;
    state.abuse_limits.set_max_connections_per_ip(max_conns);
    hub.apply_config(new, filter);
    // The certificate files are read again on every reload; a bad file
    // keeps the certificate in use (and is said, but fails nothing else).
    if let Some(tls) = &state.tls {
        if let Err(e) = tls.reload() {
            tracing::warn!(error = %e, "TLS certificate not reloaded; keeping the one in use");
        }
    }
    Ok(Reloaded {
        applied,
        restart_needed,
    })
}

/// Loads the configuration again as at start (file, environment, flags)
/// and applies it, logging the outcome.
pub fn reload(state: &AppState, args: &ServeArgs, log: Option<&LogHandle>, trigger: &str) {
    // Small synchronous reads (the config file, the word file); done
    // inline, as at start.
    let result = crate::config::load::load(args)
        .map_err(ReloadError::from)
        .and_then(|new| apply(state, new, log));
    match result {
        Ok(done) => {
            for key in &done.restart_needed {
                tracing::warn!(
                    trigger,
                    "{key} changed: restart needed (keeping the running value)"
                );
            }
            if done.applied.is_empty() {
                tracing::info!(trigger, "config reloaded: no reloadable key changed");
            } else {
                let changed = done.applied.join(", ");
                tracing::info!(trigger, %changed, "config reloaded");
            }
        }
        Err(e) => tracing::warn!(
            trigger,
            "config reload refused, keeping the old config: {e}"
        ),
    }
}

/// Starts the reloader: SIGHUP, and changes of the config file named by
/// `args.config` (or `TERN_CONFIG`). Ends when the server starts draining.
/// The file is read once before returning: a change made after `spawn`
/// returns is never missed.
pub fn spawn(state: AppState, args: ServeArgs, log: Option<LogHandle>) -> JoinHandle<()> {
    let path = args.config.clone().or_else(|| {
        std::env::var_os("TERN_CONFIG")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    });
    let watch = path.map(FileWatch::new);
    let tasks = state.lifecycle.tasks.clone();
    tasks.spawn(async move { run(state, args, watch, log).await })
}

async fn run(
    state: AppState,
    args: ServeArgs,
    mut watch: Option<FileWatch>,
    log: Option<LogHandle>,
) {
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload on file change only");
            None
        }
    };
    let drain = state.lifecycle.drain.clone();
    loop {
        let trigger = tokio::select! {
            () = drain.cancelled() => return,
            () = hangup(&mut hup) => "SIGHUP",
            () = changed(&mut watch) => "config file change",
        };
        if watch.is_none() {
            tracing::info!(
                trigger,
                "no config file: environment and flags cannot change while running, nothing to reload"
            );
            continue;
        }
        reload(&state, &args, log.as_ref(), trigger);
        // What was just loaded is not a change for the watcher any more.
        if let Some(w) = &mut watch {
            w.seen = fingerprint(&w.path).await;
        }
    }
}

/// Waits for SIGHUP; never completes without a handler.
async fn hangup(hup: &mut Option<Signal>) {
    match hup {
        Some(s) => {
            if s.recv().await.is_none() {
                *hup = None;
            }
        }
        None => std::future::pending().await,
    }
}

/// Waits for the watched file to change; never completes without one.
async fn changed(watch: &mut Option<FileWatch>) {
    match watch {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}

/// Watches one file by polling its contents. Polling, rather than inotify,
/// sees every way a file gets replaced (editors' rename-over, Kubernetes'
/// symlink swap of a ConfigMap) and needs no extra dependency; a config
/// file is small, so reading it ten times a second costs nothing.
struct FileWatch {
    path: PathBuf,
    /// Hash of the contents last reloaded; `None` when unreadable.
    seen: Option<u64>,
}

impl FileWatch {
    fn new(path: PathBuf) -> Self {
        // Once, at start: a blocking read of a small file is fine here.
        let seen = std::fs::read(&path).ok().map(|b| hash(&b));
        Self { path, seen }
    }

    /// Returns once the contents differ from the last reload and have then
    /// stayed the same for [`DEBOUNCE`]. Cancel-safe: if dropped midway, the
    /// change is seen again on the next call.
    async fn changed(&mut self) {
        let mut now = self.seen;
        while now == self.seen {
            sleep(POLL).await;
            now = fingerprint(&self.path).await;
        }
        let mut quiet_since = Instant::now();
        while quiet_since.elapsed() < DEBOUNCE {
            sleep(POLL).await;
            let next = fingerprint(&self.path).await;
            if next != now {
                now = next;
                quiet_since = Instant::now();
            }
        }
        self.seen = now;
    }
}

/// A hash of the file's contents; `None` when it cannot be read.
async fn fingerprint(path: &std::path::Path) -> Option<u64> {
    let bytes = tokio::fs::read(path).await.ok()?;
    Some(hash(&bytes))
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}
