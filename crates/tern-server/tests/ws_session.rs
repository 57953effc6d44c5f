//! Whole-server tests of the session lifecycle over a raw WebSocket client:
//! the three ways to authenticate, every auth failure, timeouts, bad input,
//! size and rate limits, slow consumers, session limits and draining.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{now_s, token, token_with, TestServer, Ws, SECRET};
use serde_json::json;
use tokio_websockets::Message;

#[tokio::test]
async fn auth_by_header_query_and_frame() {
    let srv = TestServer::start().await;
    let mut ws = Ws::open(&srv.ws_url(), Some(&token("alice"))).await;
    let ok = ws.recv().await;
    assert_eq!(ok["type"], "auth_ok");
    assert_eq!(ok["user"], "alice");
    assert!(ok.get("id").is_none(), "unprompted auth_ok has no id");
    // Derived: 40 % of the default idle timeout (60 s).
    assert_eq!(ok["heartbeat_ms"], 24000);
    assert!(ok["session"].as_str().unwrap().starts_with("s-"));
    assert!(ok["server_time"].as_i64().unwrap() > 1_700_000_000_000);

    let url = format!("{}?token={}", srv.ws_url(), token("bob"));
    let mut ws = Ws::open(&url, None).await;
    assert_eq!(ws.recv().await["user"], "bob");

    let mut ws = Ws::open(&srv.ws_url(), None).await;
    ws.send(json!({"type":"auth","id":"a1","token":token("carol"),"device":"laptop"}))
        .await;
    let ok = ws.recv().await;
    assert_eq!(ok["type"], "auth_ok");
    assert_eq!(ok["id"], "a1", "reply echoes a string id");
    let pong = ws.request(json!({"type":"ping","id":7})).await;
    assert_eq!(pong, json!({"type":"pong","id":7}));
}

#[tokio::test]
async fn bad_tokens_get_unauthorized_and_4001() {
    let srv = TestServer::start().await;
    let expired = token_with(json!({"sub":"alice","exp": now_s() - 3600}), SECRET);
    let wrong_key = token_with(
        json!({"sub":"alice","exp": now_s() + 3600}),
        "another-secret-0123456789",
    );
    // alg none: header {"alg":"none"}, no signature.
    let none = {
        use base64::Engine;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let h = e.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let c = e.encode(format!(r#"{{"sub":"alice","exp":{}}}"#, now_s() + 3600));
        format!("{h}.{c}.")
    };
    let reserved = token("system");
    for bad in [expired, wrong_key, none, reserved, "garbage".to_owned()] {
        let mut ws = Ws::open(&srv.ws_url(), None).await;
        ws.send(json!({"type":"auth","id":1,"token":bad})).await;
        let (code, frames) = ws.expect_close().await;
        assert_eq!(code, 4001, "token {bad}");
        assert_eq!(frames[0]["type"], "error");
        assert_eq!(frames[0]["code"], "unauthorized");
        assert_eq!(frames[0]["id"], 1);
        // At the upgrade: the upgrade succeeds, then error + 4001.
        let mut ws = Ws::open(&srv.ws_url(), Some(&bad)).await;
        let (code, frames) = ws.expect_close().await;
        assert_eq!(code, 4001);
        assert_eq!(frames[0]["code"], "unauthorized");
    }
}

#[tokio::test]
async fn auto_provision_off_refuses_unknown_users() {
    let srv = TestServer::with(|c| c.auth.auto_provision = false).await;
    let mut ws = Ws::open(&srv.ws_url(), Some(&token("nobody"))).await;
    assert_eq!(ws.expect_close().await.0, 4001);
    let (status, _) = srv
        .http(
            "POST",
            "/api/v1/register",
            None,
            Some(json!({"username":"known","password":"password123"})),
        )
        .await;
    assert_eq!(status, 201);
    let mut ws = Ws::open(&srv.ws_url(), Some(&token("known"))).await;
    assert_eq!(ws.recv().await["type"], "auth_ok");
}

#[tokio::test]
async fn auth_timeout_closes_4002_and_requests_before_auth_are_refused() {
    let srv = TestServer::with(|c| c.limits.auth_timeout_ms = 300).await;
    let mut ws = Ws::open(&srv.ws_url(), None).await;
    let r = ws.request(json!({"type":"ping","id":3})).await;
    assert_eq!(r["code"], "unauthorized");
    let (code, _) = ws.expect_close().await;
    assert_eq!(code, 4002);
}

#[tokio::test]
async fn idle_timeout_closes_4003_and_any_frame_keeps_alive() {
    let srv = TestServer::with(|c| {
        c.limits.idle_timeout_ms = 400;
        c.limits.heartbeat_ms = 100;
    })
    .await;
    let mut ws = srv.connect("alice").await;
    for i in 0..4 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        ws.request(json!({"type":"ping","id":i})).await;
    }
    let started = std::time::Instant::now();
    let (code, _) = ws.expect_close().await;
    assert_eq!(code, 4003);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn bad_frames_keep_the_connection_but_garbage_closes_4000() {
    let srv = TestServer::start().await;
    let mut ws = srv.connect("alice").await;
    for (frame, what) in [
        (json!({"type":"frobnicate","id":1}), "unknown type"),
        (
            json!({"type":"send","id":1,"to":"bob","body":"x"}),
            "missing cmid",
        ),
        (
            json!({"type":"read","id":1,"conv":"d:alice:bob","seq":"x"}),
            "ill-typed seq",
        ),
        (json!({"type":"sync","id":1,"conv":"nope"}), "bad conv id"),
        (json!({"id":1}), "no type"),
        (
            json!({"type":"send","id":1,"to":"bob","cmid":"x".repeat(65),"body":"x"}),
            "cmid too long",
        ),
        (
            json!({"type":"sync","id":1,"conv":"d:alice:bob","limit":0}),
            "limit 0",
        ),
        (
            json!({"type":"sync","id":1,"conv":"d:alice:bob","after":1,"before":5}),
            "after and before",
        ),
        (
            json!({"type":"send","id":1,"to":"alice","conv":"d:alice:alice","cmid":"c","body":"x"}),
            "to and conv",
        ),
        (json!({"type":"auth","id":1,"token":"x"}), "second auth"),
    ] {
        let r = ws.request(frame).await;
        assert_eq!(r["type"], "error", "{what}");
        assert_eq!(r["code"], "bad_request", "{what}: {r}");
    }
    assert_eq!(
        ws.request(json!({"type":"ping","id":2})).await["type"],
        "pong"
    );
    ws.send_raw(Message::text("this is not json")).await;
    let (code, frames) = ws.expect_close().await;
    assert_eq!(code, 4000);
    assert_eq!(frames[0]["code"], "bad_request");

    let mut ws = srv.connect("alice").await;
    ws.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    assert_eq!(ws.expect_close().await.0, 4000);
}

#[tokio::test]
async fn oversized_frame_closes_1009_and_oversized_body_is_too_large() {
    let srv = TestServer::with(|c| {
        c.limits.max_frame_bytes = 8192;
        c.limits.max_body_bytes = 512;
    })
    .await;
    let _bob = srv.connect("bob").await;
    let mut ws = srv.connect("alice").await;
    let r = ws
        .request(json!({"type":"send","id":1,"to":"bob","cmid":"c1","body":"x".repeat(513)}))
        .await;
    assert_eq!(r["code"], "too_large");
    let meta: serde_json::Map<String, serde_json::Value> =
        (0..600).map(|i| (format!("k{i}"), json!(i))).collect();
    let r = ws
        .request(json!({"type":"send","id":2,"to":"bob","cmid":"c2","body":"x","meta":meta}))
        .await;
    assert_eq!(r["code"], "too_large", "meta over 4096 bytes: {r}");
    ws.send(json!({"type":"ping","pad":"y".repeat(9000)})).await;
    assert_eq!(ws.expect_close().await.0, 1009);
}

#[tokio::test]
async fn send_rate_limit_then_abuse_close_4008() {
    let srv = TestServer::with(|c| {
        c.limits.send_rate = 1;
        c.limits.send_burst = 2;
        c.limits.rate_abuse_limit = 3;
    })
    .await;
    let _bob = srv.connect("bob").await;
    let mut ws = srv.connect("alice").await;
    for i in 0..2 {
        let r = ws
            .request(json!({"type":"send","id":i,"to":"bob","cmid":format!("c{i}"),"body":"hi"}))
            .await;
        assert_eq!(r["type"], "ack");
    }
    let r = ws
        .request(json!({"type":"send","id":10,"to":"bob","cmid":"c10","body":"hi"}))
        .await;
    assert_eq!(r["code"], "rate_limited");
    let retry = r["retry_after_ms"].as_u64().unwrap();
    assert!((1..=1000).contains(&retry), "{retry}");
    // Nothing was stored for the refused send.
    let page = ws
        .request(json!({"type":"sync","id":11,"conv":"d:alice:bob"}))
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    for i in 12..15 {
        ws.send(json!({"type":"send","id":i,"to":"bob","cmid":format!("c{i}"),"body":"hi"}))
            .await;
    }
    let (code, frames) = ws.expect_close().await;
    assert_eq!(code, 4008);
    assert!(frames.iter().all(|f| f["code"] == "rate_limited"));
}

#[tokio::test]
async fn too_many_sessions_closes_the_oldest_4011() {
    let srv = TestServer::with(|c| c.limits.max_sessions_per_user = 2).await;
    let mut first = srv.connect("alice").await;
    let _second = srv.connect("alice").await;
    let mut third = srv.connect("alice").await;
    assert_eq!(first.expect_close().await.0, 4011);
    assert_eq!(
        third.request(json!({"type":"ping","id":1})).await["type"],
        "pong"
    );
}

#[tokio::test]
async fn slow_consumer_is_closed_4010() {
    let srv = TestServer::with(|c| {
        c.limits.outbound_queue_frames = 64;
        c.limits.outbound_queue_bytes = 256 * 1024;
    })
    .await;
    let mut bob = srv.connect("bob").await; // never reads while alice floods
    let mut alice = srv.connect("alice").await;
    let body = "z".repeat(16_000);
    // Alice reads her acks as she goes (she is no slow consumer herself).
    for chunk in 0..75 {
        for i in chunk * 20..(chunk + 1) * 20 {
            let send = json!({"type":"send","id":i,"to":"bob","cmid":format!("c{i}"),"body":body});
            alice.send(send).await;
        }
        for _ in 0..20 {
            let f = alice.recv().await;
            assert_eq!(f["type"], "ack", "chunk {chunk}: {f}");
        }
    }
    let (code, _) = bob.expect_close().await;
    assert_eq!(code, 4010);
    // Nothing lost: bob catches up from history.
    let mut bob = srv.connect("bob").await;
    let page = bob
        .request(json!({"type":"sync","id":1,"conv":"d:alice:bob","before":1501,"limit":5}))
        .await;
    assert_eq!(page["items"][4]["seq"], 1500);
}

#[tokio::test]
async fn drain_sends_goaway_then_closes_1001() {
    let srv = TestServer::with(|c| c.limits.drain_timeout_ms = 300).await;
    let mut ws = srv.connect("alice").await;
    let addr = srv.addr;
    let server = tokio::spawn(srv.shutdown());
    let goaway = ws.recv().await;
    assert_eq!(goaway, json!({"type":"goaway","reconnect_ms":2000}));
    let (code, _) = ws.expect_close().await;
    assert_eq!(code, 1001);
    server.await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}
