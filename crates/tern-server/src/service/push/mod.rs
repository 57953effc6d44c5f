//! The offline push webhook: events for messages that reach a member with no
//! online session on this node, POSTed in batches to `push.webhook_url` so an
//! app can forward them to FCM/APNs. Best effort: bounded queue, bounded
//! retries, every loss counted. A reload changes the batch, retry and body
//! settings; the URL and the queue size are fixed at start.

mod event;
mod sender;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use http::Uri;
use tern_proto::Message;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use event::EventShape;
pub use event::{preview, PushEvent};
use sender::SenderConfig;

use crate::config::PushConfig;
use crate::metrics as m;

/// Handle of the webhook: queues events without ever blocking the caller.
pub struct PushNotifier {
    tx: mpsc::Sender<PushEvent>,
    shape: RwLock<EventShape>,
    /// The sender task's settings; replaced on reload.
    settings: watch::Sender<SenderConfig>,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl PushNotifier {
    /// Starts the background sender (needs a Tokio runtime). `None` when no
    /// webhook is configured, or when its URL does not parse (validation
    /// refuses such a config first).
    pub fn spawn(cfg: &PushConfig) -> Option<Arc<Self>> {
        if cfg.webhook_url.is_empty() {
            return None;
        }
        let url = match cfg.webhook_url.parse() {
            Ok(url) => url,
            Err(e) => {
                tracing::error!(error = %e, "push.webhook_url is not a URL; push disabled");
                return None;
            }
        };
        let (settings, settings_rx) = watch::channel(sender_config(cfg, url));
        // A zero capacity would panic in tokio; validation refuses it too.
        let (tx, rx) = mpsc::channel(cfg.queue_capacity.max(1));
        let stop = CancellationToken::new();
        let task = tokio::spawn(sender::run(rx, settings_rx, stop.clone()));
        Some(Arc::new(Self {
            tx,
            shape: RwLock::new(shape(cfg)),
            settings,
            stop,
            task: Mutex::new(Some(task)),
        }))
    }

    /// Queues an event for `user`, who has no online session. Never waits:
    /// with the queue full the event is dropped and counted.
    pub fn offline(&self, user: &str, msg: &Message) {
        let shape = *self.shape.read().unwrap_or_else(|e| e.into_inner());
        match self.tx.try_send(PushEvent::new(user, msg, shape)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                metrics::counter!(m::PUSH_EVENTS_DROPPED, "reason" => "queue_full").increment(1);
            }
            // Only after shutdown, when nothing should be sending any more.
            Err(TrySendError::Closed(_)) => {
                metrics::counter!(m::PUSH_EVENTS_DROPPED, "reason" => "shutdown").increment(1);
            }
        }
    }

    /// Events waiting to be sent.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Applies reloaded settings: event bodies from now on, batches and
    /// retries from the next batch. `webhook_url` and `queue_capacity` are
    /// not changed (restart-only).
    pub fn reconfigure(&self, cfg: &PushConfig) {
        *self.shape.write().unwrap_or_else(|e| e.into_inner()) = shape(cfg);
        let url = self.settings.borrow().url.clone();
        self.settings.send_replace(sender_config(cfg, url));
    }

    /// Stops the sender after one last attempt, bounded by `timeout_ms`, to
    /// send what is queued. Later events are dropped (counted).
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "push webhook task failed");
            }
        }
    }
}

fn shape(cfg: &PushConfig) -> EventShape {
    EventShape {
        include_body: cfg.include_body,
        preview_chars: cfg.preview_chars,
    }
}

fn sender_config(cfg: &PushConfig, url: Uri) -> SenderConfig {
    SenderConfig {
        url,
        batch_max: cfg.batch_max.max(1),
        batch_delay: Duration::from_millis(cfg.batch_delay_ms),
        max_retries: cfg.max_retries,
        retry_initial: Duration::from_millis(cfg.retry_initial_ms),
        timeout: Duration::from_millis(cfg.timeout_ms),
    }
}
