//! The NATS adapter (async-nats, core NATS over plain TCP): one client
//! connection per sender and per receiver. Core NATS acknowledges no
//! publish, so a sender's window is freed by deliveries (see [`super`]).

use std::sync::Arc;

use anyhow::anyhow;
use async_nats::{Client, ConnectOptions, RequestErrorKind, Subject};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Acks, Broker, Tally};
use crate::report::Latency;

/// A subject nobody subscribes to: a request on it is answered "no
/// responders" by the server itself.
const ROUND_TRIP_SUBJECT: &str = "_tern_bench.round_trip";

async fn connect(broker: &Broker, id: &str) -> anyhow::Result<Client> {
    let addr = if broker.host.contains(':') {
        format!("[{}]:{}", broker.host, broker.port)
    } else {
        format!("{}:{}", broker.host, broker.port)
    };
    ConnectOptions::new()
        .name(id)
        .connect(addr)
        .await
        .map_err(|e| anyhow!("{e}"))
}

/// Returns once the server has processed everything `client` sent before
/// (it handles a connection's operations in order, and answers a request
/// to a subject without subscribers itself).
async fn round_trip(client: &Client) -> anyhow::Result<()> {
    match client.request(ROUND_TRIP_SUBJECT, Bytes::new()).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == RequestErrorKind::NoResponders => Ok(()),
        Err(e) => Err(anyhow!("round trip: {e}")),
    }
}

/// Connects as `id` and subscribes to `subject`, in effect on the server
/// once this returns; the returned task counts the deliveries into `tally`.
pub async fn subscribe(
    broker: &Broker,
    id: &str,
    subject: &str,
    tally: Arc<Tally>,
) -> anyhow::Result<JoinHandle<String>> {
    let client = connect(broker, id).await?;
    let mut messages = client
        .subscribe(subject.to_owned())
        .await
        .map_err(|e| anyhow!("subscribing: {e}"))?;
    round_trip(&client).await?;
    Ok(tokio::spawn(async move {
        let _client = client;
        let mut batch = tally.batch();
        while let Some(m) = messages.next().await {
            tally.deliver(&m.payload, &mut batch);
        }
        "receiver: subscription closed".to_owned()
    }))
}

/// A sender's client and subject.
pub struct Publisher {
    client: Client,
    subject: Subject,
}

impl Publisher {
    pub async fn open(broker: &Broker, id: &str, subject: &str) -> anyhow::Result<Self> {
        Ok(Self {
            client: connect(broker, id).await?,
            subject: Subject::from(subject),
        })
    }

    pub async fn publish(&mut self, body: Bytes) -> anyhow::Result<()> {
        self.client
            .publish(self.subject.clone(), body)
            .await
            .map_err(|e| anyhow!("{e}"))
    }

    /// Writes out the `sent` messages (until `hard` at most) and closes:
    /// all of them count as acked, as NATS has no acks.
    pub async fn finish(self, sent: u64, hard: Instant) -> Acks {
        let error = match tokio::time::timeout_at(hard, self.client.flush()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("flush: {e}")),
            Err(_) => Some("flush: timed out".into()),
        };
        Acks {
            acked: sent,
            latency: Latency::new(),
            error,
        }
    }
}
