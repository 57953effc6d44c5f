//! The webhook's background task: gathers queued events into batches, POSTs
//! each batch with retries and exponential backoff, and flushes what is left
//! once at shutdown.

use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_util::sync::CancellationToken;

use super::event::{encode_batch, PushEvent};
use crate::metrics as m;

/// The bounds of the task, all from `[push]`.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    pub url: Uri,
    pub batch_max: usize,
    pub batch_delay: Duration,
    pub max_retries: u32,
    pub retry_initial: Duration,
    pub timeout: Duration,
}

/// Why one POST failed (logged, then retried).
#[derive(Debug, thiserror::Error)]
enum PostError {
    #[error("request failed: {0}")]
    Request(#[from] hyper_util::client::legacy::Error),
    #[error("building the request: {0}")]
    Build(#[from] http::Error),
    #[error("reading the response: {0}")]
    Response(#[from] hyper::Error),
    #[error("answered {0}")]
    Status(http::StatusCode),
    #[error("timed out")]
    Timeout,
}

/// POSTs batches to the webhook.
struct Webhook {
    client: Client<HttpConnector, Full<Bytes>>,
    cfg: SenderConfig,
}

/// Runs until `stop` is cancelled (or every sender is gone), then makes one
/// last attempt to send whatever is still queued, within `cfg.timeout`.
/// `settings` are read again when a batch begins, so a reload applies to
/// the batches begun after it (the connect timeout stays the one at start).
pub async fn run(
    mut rx: mpsc::Receiver<PushEvent>,
    mut settings: watch::Receiver<SenderConfig>,
    stop: CancellationToken,
) {
    let cfg = settings.borrow_and_update().clone();
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(cfg.timeout));
    let client = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .build(connector);
    let mut hook = Webhook { client, cfg };
    let mut batch = Vec::with_capacity(hook.cfg.batch_max);
    while gather(&mut rx, &mut batch, &mut hook.cfg, &mut settings, &stop).await {
        hook.deliver(&batch, &stop).await;
        batch.clear();
    }
    hook.flush(rx, batch).await;
}

/// Waits for a first event, then (with the settings in effect then) for
/// more until the batch is full or `batch_delay` has passed. False when it
/// is time to stop (`batch` may still hold events then).
async fn gather(
    rx: &mut mpsc::Receiver<PushEvent>,
    batch: &mut Vec<PushEvent>,
    cfg: &mut SenderConfig,
    settings: &mut watch::Receiver<SenderConfig>,
    stop: &CancellationToken,
) -> bool {
    let first = tokio::select! {
        _ = stop.cancelled() => return false,
        ev = rx.recv() => ev,
    };
    let Some(first) = first else { return false };
    batch.push(first);
    if settings.has_changed().unwrap_or(false) {
        *cfg = settings.borrow_and_update().clone();
    }
    let deadline = Instant::now() + cfg.batch_delay;
    while batch.len() < cfg.batch_max {
        tokio::select! {
            _ = stop.cancelled() => return false,
            _ = sleep_until(deadline) => break,
            ev = rx.recv() => match ev {
                Some(ev) => batch.push(ev),
                None => return false,
            },
        }
    }
    true
}

impl Webhook {
    /// Sends one batch, retrying up to `max_retries` times; drops it (counted)
    /// after that. A shutdown cuts the backoff short for one last attempt.
    async fn deliver(&self, batch: &[PushEvent], stop: &CancellationToken) {
        let Some(body) = encode(batch) else { return };
        let mut attempt = 0;
        loop {
            match self.post(body.clone(), self.cfg.timeout).await {
                Ok(()) => return sent(batch.len()),
                Err(e) if attempt >= self.cfg.max_retries => {
                    tracing::warn!(error = %e, events = batch.len(), "push webhook failed, batch dropped");
                    return dropped(batch.len(), "retries_exhausted");
                }
                Err(e) => tracing::debug!(error = %e, attempt, "push webhook failed, retrying"),
            }
            attempt += 1;
            metrics::counter!(m::PUSH_RETRIES).increment(1);
            tokio::select! {
                _ = sleep(backoff(self.cfg.retry_initial, attempt)) => {}
                _ = stop.cancelled() => attempt = self.cfg.max_retries,
            }
        }
    }

    /// At shutdown: one attempt per batch for everything left, all within
    /// one `timeout`; what does not fit is dropped (counted).
    async fn flush(&self, mut rx: mpsc::Receiver<PushEvent>, mut batch: Vec<PushEvent>) {
        rx.close();
        let deadline = Instant::now() + self.cfg.timeout;
        loop {
            while batch.len() < self.cfg.batch_max {
                match rx.try_recv() {
                    Ok(ev) => batch.push(ev),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let posted = match encode(&batch) {
                Some(body) if !left.is_zero() => self.post(body, left).await,
                Some(_) => Err(PostError::Timeout),
                None => Ok(()),
            };
            match posted {
                Ok(()) => sent(batch.len()),
                Err(e) => {
                    tracing::warn!(error = %e, events = batch.len(), "push webhook failed at shutdown, batch dropped");
                    dropped(batch.len(), "shutdown");
                }
            }
            batch.clear();
        }
    }

    /// One POST; any 2xx is success. The response body is read (and
    /// discarded) so the connection can be reused.
    async fn post(&self, body: Bytes, limit: Duration) -> Result<(), PostError> {
        let req = Request::post(self.cfg.url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        let exchange = async {
            let resp = self.client.request(req).await?;
            let status = resp.status();
            resp.into_body().collect().await?;
            if status.is_success() {
                Ok(())
            } else {
                Err(PostError::Status(status))
            }
        };
        timeout(limit, exchange)
            .await
            .unwrap_or(Err(PostError::Timeout))
    }
}

fn encode(batch: &[PushEvent]) -> Option<Bytes> {
    match encode_batch(batch) {
        Ok(body) => Some(body),
        Err(e) => {
            // Cannot happen with these plain fields; never retry it anyway.
            tracing::error!(error = %e, "cannot encode push events");
            None
        }
    }
}

fn sent(n: usize) {
    metrics::counter!(m::PUSH_EVENTS_SENT).increment(n as u64);
}

fn dropped(n: usize, reason: &'static str) {
    metrics::counter!(m::PUSH_EVENTS_DROPPED, "reason" => reason).increment(n as u64);
}

/// Delay before retry number `attempt` (1-based): `initial` doubled each
/// time, plus up to half of it again at random so that many nodes failing
/// together do not retry in lockstep.
fn backoff(initial: Duration, attempt: u32) -> Duration {
    let base = initial.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    base.saturating_add(base.mul_f64(rand::random::<f64>() / 2.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        let initial = Duration::from_millis(100);
        for attempt in 1..=5u32 {
            let base = Duration::from_millis(100 << (attempt - 1));
            for _ in 0..50 {
                let d = backoff(initial, attempt);
                assert!(d >= base && d <= base.mul_f64(1.5), "{attempt}: {d:?}");
            }
        }
    }

    #[test]
    fn backoff_never_overflows() {
        let d = backoff(Duration::from_secs(3600), u32::MAX);
        assert!(d >= Duration::from_secs(3600));
    }
}
