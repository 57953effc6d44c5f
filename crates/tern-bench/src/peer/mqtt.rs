//! The MQTT adapter (rumqttc, MQTT 3.1.1 over plain TCP with `TCP_NODELAY`,
//! as tern's sockets): one connection per sender and per receiver, each
//! driven by its own event-loop task, publishing and subscribing at QoS 0
//! (`--peer mqtt0`) or QoS 1 (`--peer mqtt1`, every publish PUBACKed).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail};
use bytes::Bytes;
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, NetworkOptions, Outgoing, Packet, QoS,
    SubscribeReasonCode,
};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Acks, Broker, Tally, Window};
use crate::cli::Peer;
use crate::report::Latency;

/// Room for the topic and headers beside the body in a packet.
const PACKET_HEADROOM: usize = 1024;

fn qos(broker: &Broker) -> QoS {
    match broker.peer {
        Peer::Mqtt1 => QoS::AtLeastOnce,
        _ => QoS::AtMostOnce,
    }
}

/// Connects as client `id` (clean session) and waits for the CONNACK.
/// `inflight`: the most unacknowledged QoS 1 publishes rumqttc allows.
async fn connect(
    broker: &Broker,
    id: &str,
    inflight: usize,
    packet: usize,
) -> anyhow::Result<(AsyncClient, EventLoop)> {
    let mut options = MqttOptions::new(id, broker.host.clone(), broker.port);
    options.set_max_packet_size(packet, packet);
    options.set_inflight(inflight.clamp(1, usize::from(u16::MAX)) as u16);
    // The request channel: a sender never has more than its window queued.
    let (client, mut events) = AsyncClient::new(options, inflight.max(10));
    let mut network = NetworkOptions::new();
    network.set_tcp_nodelay(true);
    events.set_network_options(network);
    match events.poll().await {
        Ok(Event::Incoming(Packet::ConnAck(_))) => Ok((client, events)),
        Ok(other) => bail!("expected CONNACK, got {other:?}"),
        Err(e) => Err(anyhow!("{e}")),
    }
}

/// Connects as `id`, subscribes to `topic` and waits for the SUBACK; the
/// returned task counts the deliveries into `tally`.
pub async fn subscribe(
    broker: &Broker,
    id: &str,
    topic: &str,
    tally: Arc<Tally>,
) -> anyhow::Result<JoinHandle<String>> {
    let (client, mut events) = connect(broker, id, 100, 1 << 20).await?;
    client.subscribe(topic, qos(broker)).await?;
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack.return_codes.contains(&SubscribeReasonCode::Failure) {
                    bail!("subscription to {topic} refused");
                }
                break;
            }
            Ok(_) => {}
            Err(e) => bail!("subscribing: {e}"),
        }
    }
    Ok(tokio::spawn(receive(client, events, tally)))
}

/// Polls a receiver's event loop (which PUBACKs QoS 1 deliveries) until an
/// error; runs until aborted.
async fn receive(client: AsyncClient, mut events: EventLoop, tally: Arc<Tally>) -> String {
    let _client = client;
    let mut batch = tally.batch();
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => tally.deliver(&p.payload, &mut batch),
            Ok(_) => {}
            Err(e) => return format!("receiver: {e}"),
        }
    }
}

/// A sender: the client that queues publishes, and the task that drives
/// its event loop (writes them, reads the PUBACKs).
pub struct Publisher {
    client: AsyncClient,
    topic: String,
    qos: QoS,
    progress: Arc<Progress>,
    driver: JoinHandle<()>,
}

/// What a sender's event loop has done so far.
#[derive(Default)]
struct Progress {
    /// Publishes written to the socket.
    written: AtomicU64,
    acked: AtomicU64,
    changed: Notify,
    ack_latency: Mutex<Latency>,
    error: Mutex<Option<String>>,
}

impl Publisher {
    /// Connects as `id` to publish bodies of `size` bytes on `topic`; at
    /// QoS 1 each PUBACK frees a slot of `window`.
    pub async fn open(
        broker: &Broker,
        id: &str,
        topic: &str,
        window: &Window,
        size: usize,
    ) -> anyhow::Result<Self> {
        let (client, events) = connect(broker, id, window.size(), size + PACKET_HEADROOM).await?;
        let progress = Arc::new(Progress::default());
        let qos = qos(broker);
        let acks = (qos == QoS::AtLeastOnce).then(|| window.clone());
        let driver = tokio::spawn(drive(events, acks, progress.clone()));
        Ok(Self {
            client,
            topic: topic.into(),
            qos,
            progress,
            driver,
        })
    }

    pub async fn publish(&mut self, body: Bytes) -> anyhow::Result<()> {
        self.client
            .publish_bytes(self.topic.as_str(), self.qos, false, body)
            .await?;
        Ok(())
    }

    /// Waits until the `sent` publishes are written (and PUBACKed at QoS 1)
    /// or until `hard`, then drops the connection.
    pub async fn finish(self, sent: u64, hard: Instant) -> Acks {
        let p = &self.progress;
        let qos1 = self.qos == QoS::AtLeastOnce;
        let done = || {
            p.written.load(Ordering::Relaxed) >= sent
                && (!qos1 || p.acked.load(Ordering::Relaxed) >= sent)
        };
        while !done() && !self.driver.is_finished() {
            if tokio::time::timeout_at(hard, p.changed.notified())
                .await
                .is_err()
            {
                break;
            }
        }
        self.driver.abort();
        let _ = self.driver.await;
        let written = p.written.load(Ordering::Relaxed).min(sent);
        let acked = if qos1 {
            p.acked.load(Ordering::Relaxed)
        } else {
            written
        };
        let mut error = lock(&p.error).take();
        if error.is_none() && acked < sent {
            error = Some(format!("{} acks missing at the deadline", sent - acked));
        }
        Acks {
            acked,
            latency: lock(&p.ack_latency).clone(),
            error,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Polls a sender's event loop until an error: counts the publishes
/// written and, with `acks`, the PUBACKs (each frees a window slot; the ack
/// latency runs from the write).
async fn drive(mut events: EventLoop, acks: Option<Window>, p: Arc<Progress>) {
    let mut written_at: HashMap<u16, std::time::Instant> = HashMap::new();
    loop {
        match events.poll().await {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                if acks.is_some() {
                    written_at.insert(pkid, std::time::Instant::now());
                }
                p.written.fetch_add(1, Ordering::Relaxed);
                p.changed.notify_one();
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                if let Some(t0) = written_at.remove(&ack.pkid) {
                    lock(&p.ack_latency).record(t0.elapsed().as_micros() as u64);
                }
                p.acked.fetch_add(1, Ordering::Relaxed);
                if let Some(w) = &acks {
                    w.free();
                }
                p.changed.notify_one();
            }
            Ok(_) => {}
            Err(e) => {
                *lock(&p.error) = Some(format!("sender: {e}"));
                p.changed.notify_one();
                return;
            }
        }
    }
}
