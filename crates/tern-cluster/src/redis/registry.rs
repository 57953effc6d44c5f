//! The node registry and the presence sets in Redis: the heartbeat that
//! keeps this node's entries alive and notices dead nodes, the coalescing
//! presence flusher, and the reads behind `nodes()` and `rebuild()`.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redis::RedisResult;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::publisher::Outgoing;
use super::Shared;
use crate::{ClusterError, Event, Inbound, NodeId, NodeInfo};

/// Users per `SADD` or per presence broadcast when a whole set is written.
pub(crate) const CHUNK: usize = 1000;

fn unreachable(e: redis::RedisError) -> ClusterError {
    ClusterError::Unreachable(e.to_string())
}

/// Writes this node's registry entry and refreshes the TTL of its
/// presence set.
pub(crate) async fn beat(shared: &Shared) -> RedisResult<()> {
    let info = NodeInfo {
        id: shared.id.to_string(),
        addr: shared.addr.clone(),
        started_at: shared.started_at,
        connections: shared.stats.connections(),
        sessions: shared.stats.sessions(),
    };
    let json = serde_json::to_string(&info).unwrap_or_default();
    let ttl = shared.opts.node_ttl_ms;
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg(shared.keys.node(&shared.id))
        .arg(json)
        .arg("PX")
        .arg(ttl)
        .ignore();
    pipe.cmd("SADD")
        .arg(shared.keys.nodes())
        .arg(&*shared.id)
        .ignore();
    pipe.cmd("PEXPIRE")
        .arg(shared.keys.users(&shared.id))
        .arg(ttl)
        .ignore();
    pipe.exec_async(&mut shared.conn()).await
}

/// Beats every `heartbeat_ms` and reports nodes that vanished from the
/// registry (their TTL lapsed) as [`Inbound::NodeDied`].
pub(crate) async fn heartbeat(
    shared: Arc<Shared>,
    mut known: HashSet<String>,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(shared.opts.heartbeat_ms.max(10)));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; connect() just beat
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        match beat(&shared).await {
            Ok(()) => {
                if !shared.heartbeat_ok.swap(true, Ordering::AcqRel) {
                    tracing::info!(node = %shared.id, "cluster heartbeat restored");
                }
                if shared.lost.load(Ordering::Acquire) {
                    shared.enqueue(Outgoing::Recover);
                }
            }
            Err(e) => {
                if shared.heartbeat_ok.swap(false, Ordering::AcqRel) {
                    tracing::warn!(node = %shared.id, error = %e, "cluster heartbeat failed");
                }
                // The TTL may lapse: the others may forget this node.
                shared.mark_lost("heartbeat failed");
                continue;
            }
        }
        if let Ok(live) = live_ids(&shared).await {
            report_departures(&shared, &known, &live);
            known = live;
        }
    }
}

fn report_departures(shared: &Shared, known: &HashSet<String>, live: &HashSet<String>) {
    // A goodbye is remembered for two beats: the beat that raced with it
    // may still have listed the node.
    let memory = Duration::from_millis(shared.opts.heartbeat_ms.saturating_mul(2));
    let mut departed = shared.lock_departed();
    departed.retain(|_, at| at.elapsed() <= memory);
    for id in known.difference(live) {
        if departed.contains_key(id) || *id == *shared.id {
            continue; // said goodbye already (or is this node)
        }
        tracing::info!(node = %id, "cluster node died (TTL lapsed)");
        shared.inbound.deliver(Inbound::NodeDied {
            node: NodeId::from(id.as_str()),
        });
    }
}

/// The live nodes' entries; ids whose key lapsed are pruned from the set.
pub(crate) async fn nodes(shared: &Shared) -> Result<Vec<NodeInfo>, ClusterError> {
    let mut conn = shared.conn();
    let ids: Vec<String> = redis::cmd("SMEMBERS")
        .arg(shared.keys.nodes())
        .query_async(&mut conn)
        .await
        .map_err(unreachable)?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in &ids {
        pipe.cmd("GET").arg(shared.keys.node(id));
    }
    let entries: Vec<Option<String>> = pipe.query_async(&mut conn).await.map_err(unreachable)?;
    let mut list = Vec::with_capacity(ids.len());
    let mut dead = Vec::new();
    for (id, entry) in ids.into_iter().zip(entries) {
        match entry.map(|json| serde_json::from_str::<NodeInfo>(&json)) {
            Some(Ok(info)) => list.push(info),
            Some(Err(e)) => tracing::warn!(node = %id, error = %e, "bad node registry entry"),
            None => dead.push(id),
        }
    }
    if !dead.is_empty() {
        let pruned: RedisResult<()> = redis::cmd("SREM")
            .arg(shared.keys.nodes())
            .arg(&dead)
            .exec_async(&mut conn)
            .await;
        if let Err(e) = pruned {
            tracing::debug!(error = %e, "dead nodes not pruned from the registry");
        }
    }
    list.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(list)
}

pub(crate) async fn live_ids(shared: &Shared) -> Result<HashSet<String>, ClusterError> {
    Ok(nodes(shared).await?.into_iter().map(|n| n.id).collect())
}

/// Reloads the replica from the live nodes' presence sets.
pub(crate) async fn rebuild(shared: &Shared) -> Result<(), ClusterError> {
    let others: Vec<String> = live_ids(shared)
        .await?
        .into_iter()
        .filter(|id| *id != *shared.id)
        .collect();
    let mut pipe = redis::pipe();
    for id in &others {
        pipe.cmd("SMEMBERS").arg(shared.keys.users(id));
    }
    let sets: Vec<Vec<String>> = if others.is_empty() {
        Vec::new()
    } else {
        pipe.query_async(&mut shared.conn())
            .await
            .map_err(unreachable)?
    };
    let entries = others
        .into_iter()
        .map(|id| NodeId::from(id.as_str()))
        .zip(sets)
        .collect();
    shared.replica.replace(entries, &shared.id);
    Ok(())
}

/// Removes this node's registry entry and presence set.
pub(crate) async fn deregister(shared: &Shared) -> RedisResult<()> {
    let mut pipe = redis::pipe();
    pipe.cmd("DEL").arg(shared.keys.node(&shared.id)).ignore();
    pipe.cmd("DEL").arg(shared.keys.users(&shared.id)).ignore();
    pipe.cmd("SREM")
        .arg(shared.keys.nodes())
        .arg(&*shared.id)
        .ignore();
    pipe.exec_async(&mut shared.conn()).await
}

/// Replaces this node's presence set with the local mirror, atomically;
/// returns the users written.
pub(crate) async fn rewrite_presence(shared: &Shared) -> RedisResult<Vec<String>> {
    let online: Vec<String> = shared.lock_presence().online.iter().cloned().collect();
    let key = shared.keys.users(&shared.id);
    let mut pipe = redis::pipe();
    pipe.atomic();
    pipe.cmd("DEL").arg(&key).ignore();
    for chunk in online.chunks(CHUNK) {
        pipe.cmd("SADD").arg(&key).arg(chunk).ignore();
    }
    pipe.cmd("PEXPIRE")
        .arg(&key)
        .arg(shared.opts.node_ttl_ms)
        .ignore();
    pipe.exec_async(&mut shared.conn()).await?;
    Ok(online)
}

/// Every `presence_flush_ms` (at once when a user comes online), writes the
/// coalesced changes as one pipeline and announces them in one broadcast.
pub(crate) async fn flush_presence(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut tick =
        tokio::time::interval(Duration::from_millis(shared.opts.presence_flush_ms.max(1)));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
            () = shared.flush_now.notified() => {}
        }
        let changes: Vec<(String, bool)> = std::mem::take(&mut shared.lock_presence().pending)
            .into_iter()
            .collect();
        if changes.is_empty() {
            continue;
        }
        let key = shared.keys.users(&shared.id);
        let mut pipe = redis::pipe();
        for (user, online) in &changes {
            pipe.cmd(if *online { "SADD" } else { "SREM" })
                .arg(&key)
                .arg(user)
                .ignore();
        }
        pipe.cmd("PEXPIRE")
            .arg(&key)
            .arg(shared.opts.node_ttl_ms)
            .ignore();
        if let Err(e) = pipe.exec_async(&mut shared.conn()).await {
            tracing::debug!(error = %e, "presence set not updated");
            shared.mark_lost("presence write failed");
        }
        shared.publish_all(&Event::Presence { changes });
    }
}
