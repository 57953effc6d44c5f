//! The subscriber: a dedicated RESP3 connection subscribed to this node's
//! shard channel and to the broadcast channel. Messages are decoded as they
//! arrive (in publish order) into the hub's bounded inbound queue; when the
//! connection is lost the task reconnects with backoff, rebuilds the
//! presence replica and reports [`Inbound::Lost`].
//!
//! redis-rs' async `PubSub` has no `SSUBSCRIBE`; a multiplexed RESP3
//! connection does (any command, with subscription messages delivered as
//! push messages), so that is what it uses.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use redis::aio::{AsyncPushSender, MultiplexedConnection, SendError};
use redis::{AsyncConnectionConfig, Msg, PushInfo, PushKind};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::{registry, Shared};
use crate::{Event, Inbound, NodeId};

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The hub's inbound queue. Never blocks: when it is full the event is
/// dropped and an [`Inbound::Lost`] is delivered as soon as there is room.
pub(crate) struct InboundTx {
    tx: mpsc::Sender<Inbound>,
    overflow: AtomicBool,
}

impl InboundTx {
    pub(crate) fn new(tx: mpsc::Sender<Inbound>) -> Self {
        Self {
            tx,
            overflow: AtomicBool::new(false),
        }
    }

    pub(crate) fn deliver(&self, inbound: Inbound) {
        if !self.flush_lost() {
            metrics::counter!("tern_cluster_inbound_dropped_total").increment(1);
            return;
        }
        match self.tx.try_send(inbound) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("tern_cluster_inbound_dropped_total").increment(1);
                if !self.overflow.swap(true, Ordering::AcqRel) {
                    tracing::warn!("cluster inbound queue full; events dropped");
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Delivers the `Lost` owed after an overflow; false while still full.
    pub(crate) fn flush_lost(&self) -> bool {
        if !self.overflow.load(Ordering::Acquire) {
            return true;
        }
        match self.tx.try_send(Inbound::Lost) {
            Err(mpsc::error::TrySendError::Full(_)) => false,
            _ => {
                self.overflow.store(false, Ordering::Release);
                true
            }
        }
    }
}

/// Receives the push messages of one subscription connection, on its
/// driver task: must never block.
struct PushHandler {
    shared: Arc<Shared>,
    gone: Arc<Notify>,
}

impl AsyncPushSender for PushHandler {
    fn send(&self, info: PushInfo) -> Result<(), SendError> {
        match info.kind {
            PushKind::Disconnection => self.gone.notify_one(),
            PushKind::Message | PushKind::SMessage => match Msg::from_push_info(info) {
                Some(msg) => receive(
                    &self.shared,
                    Bytes::copy_from_slice(msg.get_payload_bytes()),
                ),
                None => bad_envelope("malformed pub/sub message"),
            },
            _ => {}
        }
        Ok(())
    }
}

fn bad_envelope(error: &str) {
    metrics::counter!("tern_cluster_bad_envelope_total").increment(1);
    tracing::warn!(error, "bad cluster envelope ignored");
}

fn receive(shared: &Shared, payload: Bytes) {
    let (from, event) = match Event::decode(&payload) {
        Ok(decoded) => decoded,
        Err(e) => return bad_envelope(&e.to_string()),
    };
    if from == *shared.id {
        return; // our own broadcast
    }
    let inbound = if event == Event::Left {
        shared
            .lock_departed()
            .insert(from.clone(), std::time::Instant::now());
        Inbound::NodeLeft {
            node: NodeId::from(from),
        }
    } else {
        Inbound::Event {
            from: NodeId::from(from),
            event,
        }
    };
    shared.inbound.deliver(inbound);
}

/// An open subscription and the signal of its loss.
pub(crate) struct Subscription {
    conn: MultiplexedConnection,
    gone: Arc<Notify>,
}

/// Opens the subscription connection and subscribes to both channels.
pub(crate) async fn subscribe(shared: &Arc<Shared>) -> redis::RedisResult<Subscription> {
    let gone = Arc::new(Notify::new());
    let handler = PushHandler {
        shared: shared.clone(),
        gone: gone.clone(),
    };
    let timeout = shared.opts.command_timeout();
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_push_sender(handler);
    let mut conn = shared
        .sub_client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    // One channel per command: each confirmation is one reply.
    redis::cmd("SSUBSCRIBE")
        .arg(shared.keys.node(&shared.id))
        .exec_async(&mut conn)
        .await?;
    redis::cmd("SUBSCRIBE")
        .arg(shared.keys.all())
        .exec_async(&mut conn)
        .await?;
    Ok(Subscription { conn, gone })
}

/// Watches the subscription and restores it when lost, until cancelled.
pub(crate) async fn run(shared: Arc<Shared>, mut sub: Subscription, cancel: CancellationToken) {
    loop {
        watch(&shared, &mut sub, &cancel).await;
        shared.sub_up.store(false, Ordering::Release);
        drop(sub);
        if cancel.is_cancelled() {
            return;
        }
        tracing::warn!(node = %shared.id, "cluster subscription lost; reconnecting");
        let Some(fresh) = reconnect(&shared, &cancel).await else {
            return;
        };
        sub = fresh;
        // Messages may have been missed while unsubscribed.
        if let Err(e) = registry::rebuild(&shared).await {
            tracing::warn!(error = %e, "presence replica not rebuilt");
        }
        shared.sub_up.store(true, Ordering::Release);
        shared.inbound.deliver(Inbound::Lost);
        tracing::info!(node = %shared.id, "cluster subscription restored");
    }
}

/// Returns when the connection is gone (or stops answering pings), or
/// when cancelled.
async fn watch(shared: &Shared, sub: &mut Subscription, cancel: &CancellationToken) {
    let period = Duration::from_millis(shared.opts.heartbeat_ms.max(100));
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = sub.gone.notified() => return,
            () = tokio::time::sleep(period) => {}
        }
        shared.inbound.flush_lost();
        let ping = redis::cmd("PING");
        if let Err(e) = ping.query_async::<redis::Value>(&mut sub.conn).await {
            tracing::debug!(error = %e, "subscription ping failed");
            return;
        }
    }
}

/// Exponential backoff with jitter, 100 ms .. 5 s, until subscribed again.
async fn reconnect(shared: &Arc<Shared>, cancel: &CancellationToken) -> Option<Subscription> {
    let mut delay = BACKOFF_MIN;
    loop {
        let jittered = delay.mul_f64(rand::thread_rng().gen_range(0.5..1.0));
        tokio::select! {
            () = cancel.cancelled() => return None,
            () = tokio::time::sleep(jittered) => {}
        }
        match subscribe(shared).await {
            Ok(sub) => return Some(sub),
            Err(e) => tracing::debug!(error = %e, "cluster resubscribe failed"),
        }
        delay = (delay * 2).min(BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_full_inbound_queue_drops_and_owes_a_lost() {
        let (tx, mut rx) = mpsc::channel(2);
        let inbound = InboundTx::new(tx);
        for _ in 0..3 {
            inbound.deliver(Inbound::Event {
                from: "a".into(),
                event: Event::Resync,
            });
        }
        assert!(!inbound.flush_lost(), "still full");
        rx.try_recv().unwrap();
        inbound.deliver(Inbound::NodeLeft { node: "b".into() });
        assert!(matches!(rx.try_recv(), Ok(Inbound::Event { .. })));
        assert_eq!(rx.try_recv().unwrap(), Inbound::Lost);
        assert!(
            rx.try_recv().is_err(),
            "the event after the Lost found no room"
        );
        inbound.deliver(Inbound::NodeLeft { node: "c".into() });
        assert_eq!(rx.try_recv().unwrap(), Inbound::Lost, "owed for b's");
        assert_eq!(
            rx.try_recv().unwrap(),
            Inbound::NodeLeft { node: "c".into() }
        );
    }
}
