//! Peer brokers (`--peer`): the `direct` and `fanout` loads against an MQTT
//! broker (QoS 0 or 1, [`mqtt`]) or a NATS server ([`nats`]) instead of
//! tern, for the side-by-side figures of `scripts/bench-peers.sh`.
//!
//! How tern's loads map onto a broker:
//!
//! - Every tern connection is one broker connection with its own client
//!   id. A direct message to user r is a publish on r's topic (subject),
//!   which only r's receiver subscribes to. A group is one topic that its
//!   M members subscribe to. Receivers subscribe at the publishers' QoS.
//! - The body is tern's ([`crate::net::body`]: the send time in µs, padded
//!   to `--body-bytes`), and the latency is send → receipt, as for tern.
//! - The window (messages in flight per sender): tern counts a message in
//!   flight until its ack, MQTT QoS 1 until its PUBACK. QoS 0 and core
//!   NATS acknowledge nothing, so there a message is in flight until it is
//!   delivered (in `fanout`: one slot frees per M deliveries, i.e. once
//!   every member has had a message on average). That window is stricter
//!   than an ack.
//! - `acked` is "PUBACKed" at QoS 1 and "written to the broker" at QoS 0
//!   and on NATS; `lost` = acked − delivered. The body carries no sequence
//!   number (to keep tern's size), so duplicates are not told apart: none
//!   are expected, as nothing reconnects.

pub mod direct;
pub mod fanout;
pub mod mqtt;
pub mod nats;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::cli::{Common, Peer, Scenario};
use crate::report::{Latency, LatencyBatch, Report, SharedLatency};
use crate::scenario::{Sent, Until};

/// Runs `scenario` (`direct` or `fanout`) against the `peer` broker at
/// `--peer-host`.
pub async fn run(common: &Common, scenario: &Scenario, peer: Peer) -> anyhow::Result<Report> {
    let addr = common
        .peer_host
        .as_deref()
        .ok_or_else(|| anyhow!("--peer needs --peer-host"))?;
    let broker = Broker::new(peer, addr)?;
    match scenario {
        Scenario::Direct(a) => direct::run(common, a, &broker).await,
        Scenario::Fanout(a) => fanout::run(common, a, &broker).await,
        other => bail!("--peer runs direct and fanout only, not {}", other.name()),
    }
}

/// The broker of a run: its kind and address.
#[derive(Debug, Clone)]
pub struct Broker {
    pub peer: Peer,
    pub host: String,
    pub port: u16,
}

impl Broker {
    /// `addr` is `host:port`.
    pub fn new(peer: Peer, addr: &str) -> anyhow::Result<Self> {
        let (host, port) = addr
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse().ok()?)))
            .ok_or_else(|| anyhow!("--peer-host {addr}: expected HOST:PORT"))?;
        Ok(Self {
            peer,
            host: host.trim_start_matches('[').trim_end_matches(']').into(),
            port,
        })
    }

    /// Whether the broker acknowledges each publish (MQTT QoS 1).
    pub fn acks(&self) -> bool {
        self.peer == Peer::Mqtt1
    }

    /// A topic (MQTT, `a/b`) or subject (NATS, `a.b`) made of `parts`.
    pub fn topic(&self, parts: &[&str]) -> String {
        let sep = if self.peer == Peer::Nats { "." } else { "/" };
        parts.join(sep)
    }

    /// Opens a connection as client `id` subscribed to `topic`, whose
    /// deliveries go to `tally`.
    pub async fn subscribe(
        &self,
        id: &str,
        topic: &str,
        tally: Arc<Tally>,
    ) -> anyhow::Result<Subscription> {
        let task = match self.peer {
            Peer::Mqtt0 | Peer::Mqtt1 => mqtt::subscribe(self, id, topic, tally).await?,
            Peer::Nats => nats::subscribe(self, id, topic, tally).await?,
        };
        Ok(Subscription(task))
    }

    /// Opens a connection as client `id` that publishes on `topic`. With
    /// acks, each one frees a slot of `window`.
    pub async fn publisher(
        &self,
        id: &str,
        topic: &str,
        window: &Window,
        size: usize,
    ) -> anyhow::Result<Publisher> {
        Ok(match self.peer {
            Peer::Mqtt0 | Peer::Mqtt1 => {
                Publisher::Mqtt(mqtt::Publisher::open(self, id, topic, window, size).await?)
            }
            Peer::Nats => Publisher::Nats(nats::Publisher::open(self, id, topic).await?),
        })
    }
}

/// The messages in flight a sender may still add. Taken by the sender,
/// freed by an ack (QoS 1) or by deliveries ([`Tally`]).
#[derive(Debug, Clone)]
pub struct Window {
    slots: Arc<Semaphore>,
    size: usize,
}

impl Window {
    pub fn new(size: usize) -> Self {
        let size = size.max(1);
        Self {
            slots: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// The most messages in flight.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Takes a slot, waiting until `until` at most: false if none was free.
    pub async fn take(&self, until: Instant) -> bool {
        match tokio::time::timeout_at(until, self.slots.acquire()).await {
            Ok(Ok(permit)) => {
                permit.forget();
                true
            }
            _ => false,
        }
    }

    pub fn free(&self) {
        self.slots.add_permits(1);
    }
}

/// Deliveries of one pair (`direct`) or of the whole group (`fanout`).
#[derive(Debug)]
pub struct Tally {
    delivered: AtomicU64,
    /// Wall-clock µs of the last delivery.
    last_us: AtomicU64,
    latency: SharedLatency,
    /// Without acks: the window freed once per `per` deliveries.
    frees: Option<Window>,
    per: AtomicU64,
}

impl Tally {
    pub fn new(latency: SharedLatency, frees: Option<Window>) -> Self {
        Self {
            delivered: AtomicU64::new(0),
            last_us: AtomicU64::new(0),
            latency,
            frees,
            per: AtomicU64::new(1),
        }
    }

    /// Each message is delivered to `n` receivers (the window frees one
    /// slot per `n` deliveries).
    pub fn set_receivers(&self, n: u64) {
        self.per.store(n.max(1), Ordering::Relaxed);
    }

    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    pub fn last_us(&self) -> u64 {
        self.last_us.load(Ordering::Relaxed)
    }

    /// A receiver's batch of latencies.
    pub fn batch(&self) -> LatencyBatch {
        self.latency.batch()
    }

    /// Counts one delivery of `payload` (a body starting with its send
    /// time in µs).
    pub fn deliver(&self, payload: &[u8], batch: &mut LatencyBatch) {
        let now = crate::token::now_us();
        if let Some(sent) = sent_us(payload) {
            batch.record(now.saturating_sub(sent));
        }
        self.last_us.fetch_max(now, Ordering::Relaxed);
        let n = self.delivered.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(w) = &self.frees {
            // `is_multiple_of` needs Rust 1.87; the workspace supports 1.85.
            #[allow(clippy::manual_is_multiple_of)]
            if n % self.per.load(Ordering::Relaxed) == 0 {
                w.free();
            }
        }
    }
}

/// The send time at the start of a body, as [`crate::codec`] reads it.
fn sent_us(payload: &[u8]) -> Option<u64> {
    let digits = payload
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(payload.len());
    std::str::from_utf8(payload.get(..digits)?)
        .ok()?
        .parse()
        .ok()
}

/// A receiver's task: runs until stopped, or ends with its error.
pub struct Subscription(JoinHandle<String>);

impl Subscription {
    /// Stops the receiver; its error if it had ended by itself. Its
    /// latencies are in the shared histogram once this returns.
    pub async fn stop(self) -> Option<String> {
        if self.0.is_finished() {
            return self.0.await.ok();
        }
        self.0.abort();
        let _ = self.0.await;
        None
    }
}

/// A sender's connection.
pub enum Publisher {
    Mqtt(mqtt::Publisher),
    Nats(nats::Publisher),
}

/// What a publisher's acks were.
pub struct Acks {
    pub acked: u64,
    pub latency: Latency,
    pub error: Option<String>,
}

impl Publisher {
    async fn publish(&mut self, body: Bytes) -> anyhow::Result<()> {
        match self {
            Self::Mqtt(p) => p.publish(body).await,
            Self::Nats(p) => p.publish(body).await,
        }
    }

    /// Waits until the `sent` messages are written (and acked, with acks)
    /// or until `hard`, then closes.
    async fn finish(self, sent: u64, hard: Instant) -> Acks {
        match self {
            Self::Mqtt(p) => p.finish(sent, hard).await,
            Self::Nats(p) => p.finish(sent, hard).await,
        }
    }
}

/// Publishes bodies of `body_bytes` with at most `window` in flight, paced
/// at one per `pace` if given, until `until`; then waits for the writes
/// and acks until `hard`.
pub async fn send_loop(
    mut publisher: Publisher,
    window: Window,
    until: Until,
    pace: Option<Duration>,
    body_bytes: usize,
    hard: Instant,
) -> Sent {
    let mut out = Sent::new();
    let mut next_at = Instant::now();
    loop {
        let (more, wait) = match until {
            Until::Time(t) => (Instant::now() < t, t.min(hard)),
            Until::Count(n) => (out.sent < n, hard),
        };
        if !more {
            break;
        }
        if !window.take(wait).await {
            if matches!(until, Until::Count(_)) {
                out.errors
                    .push("no window slot freed before the deadline".into());
            }
            break;
        }
        if let Some(p) = pace {
            tokio::time::sleep_until(next_at.min(hard)).await;
            next_at += p;
        }
        let body = Bytes::from(crate::net::body(body_bytes));
        if let Err(e) = publisher.publish(body).await {
            out.errors.push(format!("publish: {e:#}"));
            out.error_count += 1;
            break;
        }
        out.sent += 1;
    }
    let acks = publisher.finish(out.sent, hard).await;
    out.acked = acks.acked;
    out.ack_latency = acks.latency;
    out.errors.extend(acks.error);
    out
}

/// Opens `n` connections with `open(i)`, `concurrency` at a time, the
/// whole within `limit`: the connections (`None`: failed) in order, and
/// the first errors.
pub async fn open_all<T, F, Fut>(
    n: usize,
    concurrency: usize,
    limit: Duration,
    open: F,
) -> (Vec<Option<T>>, Vec<String>)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let deadline = Instant::now() + limit;
    let mut stream = futures_util::stream::iter((0..n).map(|i| {
        let opening = open(i);
        async move {
            tokio::time::timeout_at(deadline, opening)
                .await
                .unwrap_or_else(|_| Err(anyhow!("connect timed out")))
        }
    }))
    .buffered(concurrency.max(1));
    let (mut opened, mut errors) = (Vec::with_capacity(n), Vec::new());
    while let Some(r) = stream.next().await {
        match r {
            Ok(c) => opened.push(Some(c)),
            Err(e) => {
                if errors.len() < 10 {
                    errors.push(format!("connect: {e:#}"));
                }
                opened.push(None);
            }
        }
    }
    (opened, errors)
}

/// Waits until `delivered()` reaches `want` or until `until`.
pub async fn wait_deliveries(delivered: impl Fn() -> u64, want: u64, until: Instant) {
    while delivered() < want && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_the_send_time() {
        assert_eq!(sent_us(b"1700000000000123"), Some(1_700_000_000_000_123));
        assert_eq!(sent_us(b"17 xxxx"), Some(17));
        assert_eq!(sent_us(b"x17"), None);
        assert_eq!(sent_us(b""), None);
    }

    #[test]
    fn broker_addresses_and_topics() {
        let b = Broker::new(Peer::Nats, "127.0.0.1:14222").unwrap();
        assert_eq!((b.host.as_str(), b.port), ("127.0.0.1", 14222));
        assert_eq!(b.topic(&["a", "b"]), "a.b");
        let b = Broker::new(Peer::Mqtt1, "[::1]:18830").unwrap();
        assert_eq!((b.host.as_str(), b.port, b.acks()), ("::1", 18830, true));
        assert_eq!(b.topic(&["a", "b"]), "a/b");
        assert!(Broker::new(Peer::Mqtt0, "localhost").is_err());
    }

    #[tokio::test]
    async fn deliveries_free_the_window_once_per_receiver_set() {
        let w = Window::new(1);
        let soon = || Instant::now() + Duration::from_millis(20);
        assert!(w.take(soon()).await);
        assert!(!w.take(soon()).await);
        let tally = Tally::new(SharedLatency::new(), Some(w.clone()));
        tally.set_receivers(2);
        let mut batch = tally.batch();
        tally.deliver(b"1", &mut batch);
        assert!(!w.take(soon()).await);
        tally.deliver(b"1", &mut batch);
        assert!(w.take(soon()).await);
        assert_eq!(tally.delivered(), 2);
    }
}
