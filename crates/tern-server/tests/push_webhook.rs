//! Whole-server tests of the offline push webhook: a small HTTP receiver in
//! the test records the POSTed batches (and can fail the first few), while
//! real WebSocket clients send messages.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use common::{TestServer, Ws, WAIT};
use futures_util::SinkExt;
use serde_json::{json, Value};
use tern_server::Config;

/// The webhook receiver: answers 500 to the first `fail_first` POSTs and
/// records the JSON bodies of the others.
#[derive(Default)]
struct Hook {
    fail_first: usize,
    attempts: AtomicUsize,
    batches: Mutex<Vec<Value>>,
}

impl Hook {
    async fn start(fail_first: usize) -> (SocketAddr, Arc<Hook>) {
        let hook = Arc::new(Hook {
            fail_first,
            ..Hook::default()
        });
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(hook.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (addr, hook)
    }

    fn batches(&self) -> Vec<Value> {
        self.batches.lock().unwrap().clone()
    }

    /// Every event received so far, in order.
    fn events(&self) -> Vec<Value> {
        self.batches()
            .iter()
            .flat_map(|b| b["events"].as_array().unwrap().clone())
            .collect()
    }

    /// Waits until at least `n` events have arrived.
    async fn wait_events(&self, n: usize) -> Vec<Value> {
        let give_up = tokio::time::Instant::now() + WAIT;
        loop {
            let events = self.events();
            if events.len() >= n {
                return events;
            }
            assert!(
                tokio::time::Instant::now() < give_up,
                "timed out waiting for {n} events, got {events:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn receive(State(hook): State<Arc<Hook>>, body: Bytes) -> StatusCode {
    if hook.attempts.fetch_add(1, Ordering::SeqCst) < hook.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let v: Value = serde_json::from_slice(&body).unwrap();
    hook.batches.lock().unwrap().push(v);
    StatusCode::NO_CONTENT
}

/// A server whose webhook points at `addr`, with short delays for tests.
async fn server(addr: SocketAddr, tweak: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::with(|c| {
        c.push.webhook_url = format!("http://{addr}/hook");
        c.push.batch_delay_ms = 50;
        c.push.retry_initial_ms = 20;
        tweak(c);
    })
    .await
}

/// Makes `user` exist (users appear on first connect), then leaves and
/// waits until the server has unregistered the session.
async fn make_offline_user(srv: &TestServer, user: &str) {
    let mut ws = srv.connect(user).await;
    ws.inner.close().await.unwrap();
    drop(ws);
    let registry = &srv.server.as_ref().unwrap().state.hub.registry();
    let give_up = tokio::time::Instant::now() + WAIT;
    while registry.is_online(user) {
        assert!(tokio::time::Instant::now() < give_up, "{user} still online");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn send(ws: &mut Ws, id: u64, to: &str, body: &str) -> Value {
    let ack = ws
        .request(json!({"type":"send","id":id,"to":to,"cmid":format!("c{id}"),"body":body}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    ack
}

#[tokio::test]
async fn offline_member_gets_batched_events_with_a_preview() {
    let (addr, hook) = Hook::start(0).await;
    let srv = server(addr, |c| {
        c.push.batch_delay_ms = 300;
        c.push.preview_chars = 5;
    })
    .await;
    make_offline_user(&srv, "bob").await;
    let mut alice = srv.connect("alice").await;
    let mut acks = Vec::new();
    for (i, body) in ["hello world", "héllo wörld", "hi"].into_iter().enumerate() {
        acks.push(send(&mut alice, i as u64 + 1, "bob", body).await);
    }
    let events = hook.wait_events(3).await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        hook.batches().len() < 3,
        "expected batching, got {:?}",
        hook.batches()
    );
    for ((ev, ack), preview) in events.iter().zip(&acks).zip(["hello", "héllo", "hi"]) {
        assert_eq!(
            *ev,
            json!({
                "user": "bob", "conv": "d:alice:bob", "seq": ack["seq"], "from": "alice",
                "kind": "text", "mid": ack["mid"], "ts": ack["ts"], "body": preview
            })
        );
    }
    drop(alice);
    srv.shutdown().await;
}

#[tokio::test]
async fn online_member_and_sender_get_no_event() {
    let (addr, hook) = Hook::start(0).await;
    let srv = server(addr, |_| {}).await;
    make_offline_user(&srv, "carol").await;
    let mut bob = srv.connect("bob").await;
    let mut alice = srv.connect("alice").await;
    send(&mut alice, 1, "bob", "you are online").await;
    assert_eq!(bob.recv().await["body"], "you are online");
    // Notes to self: the sender is never notified.
    send(&mut alice, 2, "alice", "note to self").await;
    // An event for offline carol marks that everything before was handled.
    send(&mut alice, 3, "carol", "marker").await;
    let events = hook.wait_events(1).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(hook.events(), events);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["user"], "carol");
    assert_eq!(events[0]["conv"], "d:alice:carol");
    drop((alice, bob));
    srv.shutdown().await;
}

#[tokio::test]
async fn failed_posts_are_retried() {
    let (addr, hook) = Hook::start(2).await;
    let srv = server(addr, |_| {}).await;
    make_offline_user(&srv, "bob").await;
    let mut alice = srv.connect("alice").await;
    let ack = send(&mut alice, 1, "bob", "are you there").await;
    let events = hook.wait_events(1).await;
    assert_eq!(events[0]["mid"], ack["mid"]);
    assert_eq!(hook.attempts.load(Ordering::SeqCst), 3);
    // The server counts a batch as sent once the POST's answer is back,
    // which may be just after the receiver has recorded it.
    wait_metric("tern_push_retries_total").await;
    wait_metric("tern_push_events_sent_total").await;
    drop(alice);
    srv.shutdown().await;
}

#[tokio::test]
async fn no_body_when_previews_are_off() {
    let (addr, hook) = Hook::start(0).await;
    let srv = server(addr, |c| c.push.include_body = false).await;
    make_offline_user(&srv, "bob").await;
    let mut alice = srv.connect("alice").await;
    send(&mut alice, 1, "bob", "private").await;
    let events = hook.wait_events(1).await;
    assert!(events[0].get("body").is_none(), "{events:?}");
    assert_eq!(events[0]["kind"], "text");
    drop(alice);
    srv.shutdown().await;
}

#[tokio::test]
async fn no_body_for_e2e_messages() {
    let (addr, hook) = Hook::start(0).await;
    let srv = server(addr, |_| {}).await;
    make_offline_user(&srv, "bob").await;
    let mut alice = srv.connect("alice").await;
    let ack = alice
        .request(
            json!({"type":"send","id":1,"to":"bob","cmid":"e1","body":"Y2lwaGVy","kind":"e2e"}),
        )
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let events = hook.wait_events(1).await;
    assert!(events[0].get("body").is_none(), "{events:?}");
    assert_eq!(events[0]["kind"], "e2e");
    drop(alice);
    srv.shutdown().await;
}

#[tokio::test]
async fn shutdown_flushes_queued_events() {
    let (addr, hook) = Hook::start(0).await;
    let srv = server(addr, |c| c.push.batch_delay_ms = 60_000).await;
    make_offline_user(&srv, "bob").await;
    let mut alice = srv.connect("alice").await;
    send(&mut alice, 1, "bob", "before shutdown").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(hook.events().is_empty());
    drop(alice);
    srv.shutdown().await;
    let events = hook.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["body"], "before shutdown");
}

/// Polls the metrics text until it contains `needle`.
/// Waits until the series `needle` (name and labels) is above zero: every
/// family is registered at zero from the start.
async fn wait_metric(needle: &str) {
    let give_up = tokio::time::Instant::now() + WAIT;
    loop {
        let text = tern_server::metrics::render();
        let positive = text.lines().any(|l| {
            l.strip_prefix(needle)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .is_some_and(|v| v > 0.0)
        });
        if positive {
            return;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "no {needle} in {text}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_batch_is_dropped_after_max_retries() {
    let (addr, hook) = Hook::start(usize::MAX).await;
    let srv = server(addr, |c| c.push.max_retries = 1).await;
    make_offline_user(&srv, "bob").await;
    let mut alice = srv.connect("alice").await;
    send(&mut alice, 1, "bob", "lost").await;
    // The first POST and one retry, then nothing more: not even at shutdown.
    let give_up = tokio::time::Instant::now() + WAIT;
    while hook.attempts.load(Ordering::SeqCst) < 2 {
        assert!(tokio::time::Instant::now() < give_up, "no retry seen");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Metrics are shared by every test of this process: presence only.
    wait_metric(r#"tern_push_events_dropped_total{reason="retries_exhausted"}"#).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    drop(alice);
    srv.shutdown().await;
    assert_eq!(hook.attempts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_full_queue_drops_new_events_without_blocking_sends() {
    let (addr, _hook) = Hook::start(usize::MAX).await;
    let srv = server(addr, |c| {
        c.push.batch_max = 1;
        c.push.queue_capacity = 1;
        c.push.retry_initial_ms = 60_000;
        c.push.timeout_ms = 500;
    })
    .await;
    make_offline_user(&srv, "bob").await;
    let mut alice = srv.connect("alice").await;
    for i in 1..=5 {
        send(&mut alice, i, "bob", "flood").await;
    }
    wait_metric(r#"tern_push_events_dropped_total{reason="queue_full"}"#).await;
    drop(alice);
    srv.shutdown().await;
}

#[test]
fn https_and_other_schemes_are_refused_at_validation() {
    let mut c = Config::default();
    c.push.webhook_url = "https://push.example/hook".into();
    let err = c.validate().unwrap_err().to_string();
    assert!(
        err.contains("https webhooks need TLS support, not built yet"),
        "{err}"
    );
    c.push.webhook_url = "ftp://push.example/hook".into();
    let err = c.validate().unwrap_err().to_string();
    assert!(
        err.contains("webhook_url must be empty or start with http://"),
        "{err}"
    );
    c.push.webhook_url = "http://127.0.0.1:9/hook".into();
    c.validate().unwrap();
}

#[tokio::test]
async fn offline_group_members_get_one_event_each() {
    let (addr, hook) = Hook::start(0).await;
    let srv = server(addr, |_| {}).await;
    make_offline_user(&srv, "bob").await;
    make_offline_user(&srv, "carol").await;
    let dave = srv.connect("dave").await; // online: no event
    let mut alice = srv.connect("alice").await;
    let (status, group) = srv
        .http(
            "POST",
            "/api/v1/groups",
            Some(&common::token("alice")),
            Some(json!({"name":"team","members":["bob","carol","dave"]})),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    let conv = format!("g:{}", group["id"].as_str().unwrap());
    let ack = alice
        .request(json!({"type":"send","id":1,"conv":conv,"cmid":"g1","body":"standup"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let events = hook.wait_events(2).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut users: Vec<_> = hook.events().iter().map(|e| e["user"].clone()).collect();
    users.sort_by_key(|u| u.to_string());
    assert_eq!(users, vec![json!("bob"), json!("carol")], "{events:?}");
    assert!(hook.events().iter().all(|e| e["conv"] == conv.as_str()));
    drop((alice, dave));
    srv.shutdown().await;
}
