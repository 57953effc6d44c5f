//! Whole-server tests of the abuse limits: WebSocket connections and connect
//! rate per IP address (429 at the upgrade), login attempts per username and
//! per IP address (429 before any password check). All traffic comes from
//! 127.0.0.1, so each test sets small limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{TestServer, Ws};
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_websockets::ClientBuilder;

const PASSWORD: &str = "correct horse battery";

/// A raw HTTP answer: status, lower-cased head, body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// A 429 with `Retry-After` (whole seconds, rounded up) and the error
    /// shape with `retry_after_ms`.
    fn assert_rate_limited(&self) {
        assert_eq!(self.status, 429, "{}\n{}", self.head, self.body);
        let v = self.json();
        assert_eq!(v["error"]["code"], "rate_limited", "{v}");
        assert!(v["error"]["message"].is_string(), "{v}");
        let ms = v["error"]["retry_after_ms"]
            .as_u64()
            .expect("retry_after_ms");
        assert!(ms > 0, "{v}");
        let secs: u64 = self
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert_eq!(secs, ms.div_ceil(1000), "{v}");
    }
}

/// Sends `request` on a fresh connection and reads one answer (headers,
/// then `Content-Length` bytes; a 101 has none). The stream is returned so
/// an accepted upgrade stays open as long as the caller wants.
async fn raw(addr: SocketAddr, request: &str) -> (Answer, TcpStream) {
    raw_from("127.0.0.1", addr, request).await
}

/// Like [`raw`], from another loopback address (another client).
async fn raw_from(source: &str, addr: SocketAddr, request: &str) -> (Answer, TcpStream) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let answer = loop {
        let n = tokio::time::timeout(common::WAIT, s.read(&mut chunk))
            .await
            .expect("timed out reading an answer")
            .unwrap();
        assert!(n > 0, "connection closed mid-answer");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let head = head.to_ascii_lowercase();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let answer = Answer {
            status,
            head,
            body: body.to_owned(),
        };
        let len: usize = answer
            .header("content-length")
            .map_or(0, |v| v.parse().unwrap());
        if answer.body.len() >= len {
            break answer;
        }
    };
    (answer, s)
}

async fn upgrade(addr: SocketAddr) -> (Answer, TcpStream) {
    let req = "GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
               Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    raw(addr, req).await
}

async fn login(addr: SocketAddr, user: &str, password: &str) -> Answer {
    let body = json!({"username": user, "password": password}).to_string();
    let req = format!(
        "POST /api/v1/login HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw(addr, &req).await.0
}

async fn register(server: &TestServer, user: &str) {
    let body = json!({"username": user, "password": PASSWORD});
    let (status, v) = server
        .http("POST", "/api/v1/register", None, Some(body))
        .await;
    assert_eq!(status, 201, "{v}");
}

/// The metrics text, fetched from another address than the test's clients
/// (which may be at their connection cap).
async fn metrics_text(addr: SocketAddr) -> String {
    let req = "GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    raw_from("127.0.0.9", addr, req).await.0.body
}

/// Counted when the socket is accepted: the third socket from the address
/// is answered 429 before any HTTP is read.
#[tokio::test]
async fn connections_per_ip_are_capped() {
    let server = TestServer::with(|c| c.limits.max_connections_per_ip = 2).await;
    let url = server.ws_url();
    let mut first = Ws::open(&url, None).await;
    let second = Ws::open(&url, None).await;

    let (answer, _s) = upgrade(server.addr).await;
    answer.assert_rate_limited();
    assert!(ClientBuilder::new()
        .uri(&url)
        .unwrap()
        .connect()
        .await
        .is_err());
    let metrics = metrics_text(server.addr).await;
    assert!(
        metrics
            .lines()
            .filter_map(|l| l.strip_prefix("tern_rate_limited_total{transport=\"accept\"} "))
            .any(|v| v.trim().parse::<f64>().is_ok_and(|v| v > 0.0)),
        "{metrics}"
    );

    // Closing one gives its place back once the server has seen the close.
    first.inner.close().await.unwrap();
    drop(first);
    let deadline = tokio::time::Instant::now() + common::WAIT;
    let third = loop {
        match ClientBuilder::new().uri(&url).unwrap().connect().await {
            Ok((ws, _)) => break ws,
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "still refused: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    // Gone before shutdown, which would otherwise wait for them to leave.
    drop((second, third));
    server.shutdown().await;
}

#[tokio::test]
async fn connect_rate_per_ip_is_limited() {
    let server = TestServer::with(|c| c.limits.connects_per_sec_per_ip = 3).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let (answer, s) = upgrade(server.addr).await;
        assert_eq!(answer.status, 101, "{}", answer.head);
        open.push(s);
    }
    // One token comes back every 333 ms: on a slow machine one more may
    // pass, but a refusal must come within a few tries.
    let mut refused = None;
    for _ in 0..3 {
        let (answer, s) = upgrade(server.addr).await;
        if answer.status == 429 {
            refused = Some(answer);
            break;
        }
        open.push(s);
    }
    let refused = refused.expect("no 429 past the burst");
    refused.assert_rate_limited();
    assert_eq!(refused.header("retry-after"), Some("1"));
    let ms = refused.json()["error"]["retry_after_ms"].as_u64().unwrap();
    assert!(ms <= 334, "{ms}");

    // After the suggested wait a connection is accepted again.
    tokio::time::sleep(Duration::from_millis(ms)).await;
    let (answer, last) = upgrade(server.addr).await;
    assert_eq!(answer.status, 101, "{}", answer.head);
    drop((open, last));
    server.shutdown().await;
}

#[tokio::test]
async fn logins_per_username_are_limited() {
    let server = TestServer::with(|c| {
        c.limits.login_per_user_per_min = 10;
        c.limits.login_per_ip_per_min = 1000;
    })
    .await;
    register(&server, "alice").await;
    register(&server, "bob").await;
    for _ in 0..10 {
        assert_eq!(
            login(server.addr, "alice", "wrong password").await.status,
            401
        );
    }
    // The 11th is refused before the password is looked at, even a right one.
    let answer = login(server.addr, "alice", PASSWORD).await;
    answer.assert_rate_limited();
    let ms = answer.json()["error"]["retry_after_ms"].as_u64().unwrap();
    assert!((1_000..=6_000).contains(&ms), "{ms}");
    // Another username is not affected.
    let ok = login(server.addr, "bob", PASSWORD).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.json()["token"].is_string());
    server.shutdown().await;
}

#[tokio::test]
async fn logins_per_ip_are_limited() {
    let server = TestServer::with(|c| {
        c.limits.login_per_user_per_min = 100;
        c.limits.login_per_ip_per_min = 3;
    })
    .await;
    register(&server, "carol").await;
    for user in ["nobody1", "nobody2", "carol"] {
        let answer = login(server.addr, user, "wrong password").await;
        assert_eq!(answer.status, 401, "{}", answer.body);
    }
    let answer = login(server.addr, "carol", PASSWORD).await;
    answer.assert_rate_limited();
    let ms = answer.json()["error"]["retry_after_ms"].as_u64().unwrap();
    assert!((1_000..=20_000).contains(&ms), "{ms}");
    // Registration is not a login: it is not limited by these.
    register(&server, "dave").await;
    server.shutdown().await;
}
