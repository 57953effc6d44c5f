//! `kill -9` of a real `tern serve` process while several clients are
//! mid-stream (sends pipelined, acks still arriving), on SQLite and, when
//! TERN_TEST_POSTGRES_URL is set, on PostgreSQL: after a restart on the same
//! data every acked message is in history with its seq and mid, seqs have
//! no gaps, and resending every cmid returns the original acks and fills
//! the rest without duplicates (docs/protocol.md 3.3 to 3.5).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod hostile;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{token, Ws};
use futures_util::{SinkExt, StreamExt};
use hostile::{assert_acked_stored, assert_healthy, history};
use serde_json::{json, Value};
use tokio_websockets::Message;

const CLIENTS: usize = 4;
const SENDS: usize = 150;

async fn open(addr: SocketAddr, user: &str) -> Ws {
    let mut ws = Ws::open(&format!("ws://{addr}/ws"), Some(&token(user))).await;
    assert_eq!(ws.recv().await["type"], "auth_ok");
    ws
}

fn send(i: usize, user: &str) -> Message {
    let f = json!({"type":"send","id":i,"to":"sink","cmid":format!("{user}-{i}"),"body":format!("{user} {i}")});
    Message::text(f.to_string())
}

/// Starts `CLIENTS` pipelining senders; kills the server once some acks
/// (not all) arrived; returns the acks each client saw, by user.
async fn stream_and_kill(p: &mut hostile::proc::Proc) -> HashMap<String, Vec<Value>> {
    drop(open(p.addr, "sink").await);
    let acks: Arc<Mutex<HashMap<String, Vec<Value>>>> = Arc::default();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let user = format!("killed{c}");
        let (mut tx, mut rx) = open(p.addr, &user).await.inner.split();
        let acks = acks.clone();
        tasks.push(tokio::spawn(async move {
            let writer = async {
                for i in 0..SENDS {
                    if tx.send(send(i, &user)).await.is_err() {
                        return;
                    }
                }
            };
            let reader = async {
                while let Some(Ok(m)) = rx.next().await {
                    let Some(t) = m.as_text() else { continue };
                    let f: Value = serde_json::from_str(t).unwrap();
                    assert_eq!(f["type"], "ack", "{f}");
                    acks.lock()
                        .unwrap()
                        .entry(user.clone())
                        .or_default()
                        .push(f);
                }
            };
            tokio::join!(writer, reader);
        }));
    }
    let started = Instant::now();
    loop {
        let seen: usize = acks.lock().unwrap().values().map(Vec::len).sum();
        if seen >= CLIENTS * SENDS / 4 {
            assert!(
                seen < CLIENTS * SENDS,
                "every send was acked before the kill"
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no acks");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    p.kill9();
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .expect("client hung")
            .unwrap();
    }
    let acks = acks.lock().unwrap().clone();
    acks
}

/// Every ack survived; resending every cmid fills the rest exactly once.
async fn check_after_restart(addr: SocketAddr, acks: &HashMap<String, Vec<Value>>) {
    let total: usize = acks.values().map(Vec::len).sum();
    eprintln!(
        "{total} of {} sends were acked before the kill",
        CLIENTS * SENDS
    );
    for c in 0..CLIENTS {
        let user = format!("killed{c}");
        let conv = format!("d:killed{c}:sink");
        let mine = acks.get(&user).cloned().unwrap_or_default();
        assert_acked_stored(addr, "sink", &conv, &mine).await;
        let mut ws = open(addr, &user).await;
        let mut resent = HashMap::new();
        for i in 0..SENDS {
            ws.inner.send(send(i, &user)).await.unwrap();
        }
        while resent.len() < SENDS {
            let f = ws.recv().await;
            assert_eq!(f["type"], "ack", "{f}");
            resent.insert(f["id"].as_u64().unwrap() as usize, f);
        }
        for a in &mine {
            let again = &resent[&(a["id"].as_u64().unwrap() as usize)];
            assert_eq!(
                (&again["seq"], &again["mid"]),
                (&a["seq"], &a["mid"]),
                "{conv}"
            );
        }
        let items = history(addr, "sink", &conv).await;
        assert_eq!(items.len(), SENDS, "{conv}: duplicates or losses");
        let cmids: std::collections::HashSet<_> = items.iter().map(|m| m["cmid"].clone()).collect();
        assert_eq!(cmids.len(), SENDS, "{conv}: a cmid stored twice");
    }
    assert_healthy(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_stream_on_sqlite_loses_nothing_acked() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = hostile::proc::spawn(dir.path(), &[]).await;
    let acks = stream_and_kill(&mut p).await;
    let p = hostile::proc::spawn(dir.path(), &[]).await;
    check_after_restart(p.addr, &acks).await;
}

/// PostgreSQL for the test, or `None` (skip) without TERN_TEST_POSTGRES_URL.
fn postgres_url() -> Option<String> {
    match std::env::var("TERN_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set but TERN_TEST_POSTGRES_URL is not")
        }
        _ => {
            eprintln!("skipped: TERN_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_stream_on_postgres_loses_nothing_acked() {
    let Some(url) = postgres_url() else { return };
    let schema = format!("kill9_{:016x}", rand::random::<u64>());
    let store = tern_store::open_postgres_in_schema(&url, &schema, Default::default())
        .await
        .unwrap();
    drop(store);
    let sep = if url.contains('?') { '&' } else { '?' };
    let db = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let dir = tempfile::tempdir().unwrap();
    let args = ["--database-url", db.as_str()];
    let mut p = hostile::proc::spawn(dir.path(), &args).await;
    let acks = stream_and_kill(&mut p).await;
    let p = hostile::proc::spawn(dir.path(), &args).await;
    check_after_restart(p.addr, &acks).await;
    drop(p);
    tern_store::PostgresStore::drop_schema(&url, &schema)
        .await
        .unwrap();
}
