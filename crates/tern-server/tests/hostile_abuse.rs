//! Abuse: the per-IP connection cap, ping floods, send-rate abuse over the
//! WebSocket and HTTP, a reader that never reads, idle and silent sockets,
//! too many sessions (docs/protocol.md 8.1, 8.3, 8.4, 8.7). Each case
//! asserts the documented answer, that others are still served, and that
//! every acked message is in history.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod hostile;

use std::time::{Duration, Instant};

use common::{token, TestServer, Ws};
use futures_util::{SinkExt, StreamExt};
use hostile::{assert_acked_stored, assert_healthy, assert_open, history, next_event, Event};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_websockets::Message;

async fn open(url: &str, user: &str) -> Ws {
    let mut ws = Ws::open(url, Some(&token(user))).await;
    assert_eq!(ws.recv().await["type"], "auth_ok");
    ws
}

fn upgrade_request() -> Vec<u8> {
    b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
      Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_ip_cap_refuses_the_next_and_serves_the_rest() {
    let s = TestServer::with(|c| c.limits.max_connections_per_ip = 4).await;
    let mut held = Vec::new();
    for i in 0..4 {
        held.push(open(&s.ws_url(), &format!("capped{i}")).await);
    }
    let a = hostile::raw_http(s.addr, upgrade_request()).await;
    a.assert_error(429, "rate_limited", "fifth connection");
    let ms = a.json()["error"]["retry_after_ms"].as_u64().unwrap();
    let secs: u64 = a.header("retry-after").unwrap().parse().unwrap();
    assert_eq!(secs, ms.div_ceil(1000));
    for (i, ws) in held.iter_mut().enumerate() {
        assert_open(ws, &format!("held {i}")).await;
    }
    // Another address is served meanwhile.
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = sock.connect(s.addr).await.unwrap();
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    other.read_to_end(&mut buf).await.unwrap();
    assert!(
        buf.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    drop(held);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_is_answered_in_full_and_others_keep_sending() {
    let s = TestServer::start().await;
    let (mut tx, mut rx) = open(&s.ws_url(), "flooder").await.inner.split();
    const N: usize = 2_000;
    let reader = tokio::spawn(async move {
        let mut pongs = 0;
        while pongs < N {
            let m = tokio::time::timeout(Duration::from_secs(20), rx.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            if let Some(t) = m.as_text() {
                let f: Value = serde_json::from_str(t).unwrap();
                assert_eq!(
                    (f["type"].as_str(), f["id"].as_u64()),
                    (Some("pong"), Some(pongs as u64)),
                    "{f}"
                );
                pongs += 1;
            }
        }
    });
    for i in 0..N {
        tx.feed(Message::ping(vec![7u8; 125])).await.unwrap();
        tx.feed(Message::text(json!({"type":"ping","id":i}).to_string()))
            .await
            .unwrap();
    }
    tx.flush().await.unwrap();
    // Meanwhile another user's sends are acked promptly.
    let mut bystander = open(&s.ws_url(), "bystander").await;
    let started = Instant::now();
    let mut acks = Vec::new();
    for i in 0..20 {
        let ack = bystander
            .request(
                json!({"type":"send","id":i,"to":"bystander","cmid":format!("b{i}"),"body":"x"}),
            )
            .await;
        assert_eq!(ack["type"], "ack", "{ack}");
        acks.push(ack);
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    reader.await.unwrap();
    assert_acked_stored(s.addr, "bystander", "d:bystander:bystander", &acks).await;
    assert_healthy(s.addr).await;
    drop((tx, bystander));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_abuse_is_refused_then_closed_4008_and_http_gets_429() {
    let s = TestServer::with(|c| {
        c.limits.send_rate = 1;
        c.limits.send_burst = 3;
        c.limits.rate_abuse_limit = 5;
    })
    .await;
    let mut ws = open(&s.ws_url(), "spammer").await;
    for i in 0..20 {
        ws.send(json!({"type":"send","id":i,"to":"spammer","cmid":format!("s{i}"),"body":"spam"}))
            .await;
    }
    let (mut acks, mut refused) = (Vec::new(), 0);
    let code = loop {
        match next_event(&mut ws, Duration::from_secs(10)).await {
            Event::Frame(f) if f["type"] == "ack" => acks.push(f),
            Event::Frame(f) => {
                assert_eq!(f["code"], "rate_limited", "{f}");
                assert!(f["retry_after_ms"].as_u64().unwrap() > 0, "{f}");
                refused += 1;
                // The refusal over the limit announces the close. (Sends
                // already read may get more such refusals before the close:
                // see the report of issue 8 item 14.)
                assert_eq!(f.get("close").is_some(), refused > 5, "{f}");
                if refused > 5 {
                    assert_eq!(f["close"], 4008, "{f}");
                }
            }
            Event::Close(code) => break code,
            Event::End => panic!("ended without close"),
        }
    };
    assert_eq!((code, acks.len()), (4008, 3));
    assert!(refused >= 6, "{refused}");
    drop(ws);
    // Nothing refused was stored.
    assert_acked_stored(s.addr, "spammer", "d:spammer:spammer", &acks).await;
    assert_eq!(
        history(s.addr, "spammer", "d:spammer:spammer").await.len(),
        3
    );

    // HTTP sends share the bucket sizes per user: 429 with Retry-After.
    let t = token("httpspam");
    let mut statuses = Vec::new();
    for i in 0..5 {
        let body = json!({"to":"httpspam","cmid":format!("h{i}"),"body":"x"}).to_string();
        let req = hostile::request(
            "POST",
            "/api/v1/messages",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &format!("Bearer {t}")),
            ],
            body.as_bytes(),
        );
        let a = hostile::raw_http(s.addr, req).await;
        if a.status == 429 {
            a.assert_error(429, "rate_limited", "http send");
            assert!(a.header("retry-after").is_some());
        }
        statuses.push(a.status);
    }
    assert_eq!(&statuses[..3], &[201, 201, 201]);
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    let stored = history(s.addr, "httpspam", "d:httpspam:httpspam")
        .await
        .len();
    assert_eq!(stored, statuses.iter().filter(|&&c| c == 201).count());
    assert_healthy(s.addr).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_never_reads_is_closed_and_loses_nothing() {
    let s = TestServer::with(|c| {
        c.limits.outbound_queue_bytes = 128 * 1024;
        c.limits.write_timeout_ms = 1_000;
    })
    .await;
    let mut sleeper = open(&s.ws_url(), "sleeper").await;
    let mut writer = open(&s.ws_url(), "writer1").await;
    const N: usize = 300;
    let body = "z".repeat(8 * 1024);
    let started = Instant::now();
    for i in 0..N {
        writer
            .send(json!({"type":"send","id":i,"to":"sleeper","cmid":format!("w{i}"),"body":body}))
            .await;
    }
    let mut acks = Vec::new();
    while acks.len() < N {
        let f = writer.recv().await;
        assert_eq!(f["type"], "ack", "{f}");
        acks.push(f);
    }
    // The writer is never held back by the sleeper.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let state = s.server.as_ref().unwrap().state.clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while state.hub.registry().len() > 1 {
        assert!(Instant::now() < deadline, "the sleeper's session was kept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // When it finally reads: some messages, then 4010 (or a dropped socket
    // if even the close could not be written in time).
    let end = loop {
        match next_event(&mut sleeper, Duration::from_secs(10)).await {
            Event::Frame(f) => assert_eq!(f["type"], "msg", "{f}"),
            other => break other,
        }
    };
    assert!(matches!(end, Event::Close(4010) | Event::End), "{end:?}");
    assert_acked_stored(s.addr, "sleeper", "d:sleeper:writer1", &acks).await;
    assert_eq!(
        history(s.addr, "sleeper", "d:sleeper:writer1").await.len(),
        N
    );
    assert_healthy(s.addr).await;
    drop((writer, sleeper));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_silent_and_surplus_connections_are_closed() {
    let s = TestServer::with(|c| {
        c.limits.idle_timeout_ms = 600;
        c.limits.max_sessions_per_user = 2;
        c.http.header_read_timeout_ms = 600;
    })
    .await;
    // Silent TCP sockets (no HTTP at all) are closed; others are served.
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(s.addr).await.unwrap());
    }
    assert_eq!(
        common::http(s.addr, "GET", "/healthz", None, None).await.0,
        200
    );
    for mut sock in silent {
        let mut buf = [0u8; 256];
        let r = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf)).await;
        assert!(
            matches!(r, Ok(Ok(_)) | Ok(Err(_))),
            "silent socket kept open"
        );
    }
    // An idle session: 4003. One session too many: the oldest gets 4011.
    let mut idle = open(&s.ws_url(), "idler").await;
    assert_eq!(idle.expect_close().await.0, 4003);
    let mut oldest = open(&s.ws_url(), "many").await;
    let mut second = open(&s.ws_url(), "many").await;
    let mut third = open(&s.ws_url(), "many").await;
    assert_eq!(oldest.expect_close().await.0, 4011);
    assert_open(&mut second, "second").await;
    assert_open(&mut third, "third").await;
    drop((idle, oldest, second, third));
    assert_healthy(s.addr).await;
    s.shutdown().await;
}
