//! What a new user and an operator trip over (issue 8): the close
//! handshake, `/readyz` during a drain, slow and idle HTTP clients, the
//! connection caps at accept time, trusted proxies and the token modes.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{http, now_s, token, TestServer, Ws, SECRET};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_websockets::{CloseCode, Message};

const ED_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIOO/tXf58HIBF3aYNnFlYAnQpoOH5tK8w3dknFDeqjcO
-----END PRIVATE KEY-----
";
const ED_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAwA9DHK9yxpiGLp3yiB8mBQnk2eBna9EO3Ts0oah2BPY=
-----END PUBLIC KEY-----
";

/// Sends a Close and expects the server's Close with the same code, then
/// the end of the stream (RFC 6455 §5.5.1): a clean close, not 1006.
async fn close_cleanly(ws: &mut Ws) {
    ws.inner
        .send(Message::close(Some(CloseCode::NORMAL_CLOSURE), "bye"))
        .await
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), ws.inner.next())
        .await
        .expect("no answer to our Close")
        .expect("stream ended without a Close")
        .expect("error instead of a Close");
    let (code, _) = reply.as_close().expect("not a Close frame");
    assert_eq!(code, CloseCode::NORMAL_CLOSURE);
    let end = tokio::time::timeout(Duration::from_secs(5), ws.inner.next()).await;
    assert!(matches!(end, Ok(None)), "stream did not end: {end:?}");
}

#[tokio::test]
async fn a_client_close_is_answered_with_and_without_auth() {
    let s = TestServer::start().await;
    let mut anonymous = Ws::open(&s.ws_url(), None).await;
    close_cleanly(&mut anonymous).await;
    let mut bearer = Ws::open(&s.ws_url(), Some(&token("alice"))).await;
    assert_eq!(bearer.recv().await["type"], "auth_ok");
    close_cleanly(&mut bearer).await;
    let mut framed = s.connect("bob").await;
    close_cleanly(&mut framed).await;
    s.shutdown().await;
}

#[tokio::test]
async fn tern_client_close_ends_cleanly_and_the_session_is_gone() {
    let s = TestServer::start().await;
    let (client, _pushes) =
        tern_client::Client::connect(tern_client::ClientConfig::new(s.ws_url(), token("carol")))
            .await
            .unwrap();
    let state = s.server.as_ref().unwrap().state.clone();
    assert_eq!(state.hub.registry().len(), 1);
    client.close().await.unwrap();
    let started = Instant::now();
    while !state.hub.registry().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(5), "session kept");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.shutdown().await;
}

#[tokio::test]
async fn readyz_is_503_and_upgrades_refused_while_draining() {
    let s = TestServer::with(|c| {
        c.http.drain_grace_ms = 1_500;
        c.limits.drain_timeout_ms = 5_000;
    })
    .await;
    let addr = s.addr;
    assert_eq!(http(addr, "GET", "/readyz", None, None).await.0, 200);
    // A session that stays keeps the drain (and so the port) going.
    let mut staying = s.connect("dave").await;
    let shutdown = tokio::spawn(s.shutdown());
    assert_eq!(staying.recv_type("goaway").await["type"], "goaway");
    let (status, body) = http(addr, "GET", "/readyz", None, None).await;
    assert_eq!(status, 503, "{body}");
    let upgrade = raw_upgrade(addr).await;
    assert!(upgrade.starts_with("HTTP/1.1 503"), "{upgrade}");
    // The session leaves; the port stays open for the grace, then closes.
    close_cleanly(&mut staying).await;
    shutdown.await.unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "port still open");
}

#[tokio::test]
async fn the_port_stays_open_for_the_grace_without_sessions() {
    let s = TestServer::with(|c| c.http.drain_grace_ms = 1_000).await;
    let addr = s.addr;
    let started = Instant::now();
    let shutdown = tokio::spawn(s.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(http(addr, "GET", "/readyz", None, None).await.0, 503);
    shutdown.await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1_000));
}

/// The raw answer to a WebSocket upgrade request.
async fn raw_upgrade(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
               Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Reads until the server closes the socket; how long it took.
async fn time_to_close(s: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("socket still open after {limit:?}"),
        }
    }
}

#[tokio::test]
async fn a_trickling_client_is_closed_and_others_are_served() {
    let s = TestServer::with(|c| c.http.header_read_timeout_ms = 1_000).await;
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let trickle = tokio::spawn(async move {
        for i in 0..20 {
            let line = format!("X-Slow-{i}: 1\r\n");
            if slow.write_all(line.as_bytes()).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        slow
    });
    // Meanwhile the server answers everyone else.
    assert_eq!(http(s.addr, "GET", "/healthz", None, None).await.0, 200);
    let mut slow = trickle.await.unwrap();
    let waited = time_to_close(&mut slow, Duration::from_secs(10)).await;
    assert!(waited < Duration::from_secs(6), "closed after {waited:?}");
    s.shutdown().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let s = TestServer::with(|c| c.http.header_read_timeout_ms = 800).await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let waited = time_to_close(&mut conn, Duration::from_secs(10)).await;
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}");
    s.shutdown().await;
}

/// A socket from a given loopback address (127.0.0.x).
async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// The status line's code of whatever the server sent first.
async fn first_status(s: &mut TcpStream) -> u16 {
    let mut buf = vec![0; 2048];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn an_address_at_its_cap_is_refused_at_accept_and_cannot_starve_others() {
    let s = TestServer::with(|c| c.limits.max_connections_per_ip = 3).await;
    // Three silent sockets: no HTTP at all, yet they count.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.1", s.addr).await);
    }
    let mut fourth = connect_from("127.0.0.1", s.addr).await;
    assert_eq!(first_status(&mut fourth).await, 429);
    // Another address is served meanwhile.
    let mut other = connect_from("127.0.0.2", s.addr).await;
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(first_status(&mut other).await, 200);
    // A place given back is usable again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = connect_from("127.0.0.1", s.addr).await;
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(first_status(&mut again).await, 200);
    s.shutdown().await;
}

#[tokio::test]
async fn the_global_cap_sheds_new_sockets_with_503() {
    let s = TestServer::with(|c| c.http.max_connections = 2).await;
    let a = connect_from("127.0.0.3", s.addr).await;
    let _b = connect_from("127.0.0.4", s.addr).await;
    let mut c = connect_from("127.0.0.5", s.addr).await;
    assert_eq!(first_status(&mut c).await, 503);
    drop(a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(http(s.addr, "GET", "/healthz", None, None).await.0, 200);
    s.shutdown().await;
}

/// A login attempt with a wrong password, sent with `X-Forwarded-For`.
async fn login_via(addr: SocketAddr, forwarded_for: &str) -> u16 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let body = json!({"username":"nobody","password":"wrong-password"}).to_string();
    let req = format!(
        "POST /api/v1/login HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
         Content-Type: application/json\r\nX-Forwarded-For: {forwarded_for}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    first_status(&mut s).await
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client_and_a_spoofed_header_is_ignored() {
    let limit = |c: &mut tern_server::Config| {
        c.limits.login_per_ip_per_min = 2;
        c.limits.login_per_user_per_min = 1_000;
    };
    let behind = TestServer::with(|c| {
        limit(c);
        c.http.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    assert_eq!(login_via(behind.addr, "198.51.100.1").await, 401);
    assert_eq!(login_via(behind.addr, "198.51.100.1").await, 401);
    assert_eq!(login_via(behind.addr, "198.51.100.1").await, 429);
    // Another client behind the same proxy is not locked out.
    assert_eq!(login_via(behind.addr, "198.51.100.2").await, 401);
    behind.shutdown().await;

    let direct = TestServer::with(|c| {
        limit(c);
        c.http.trusted_proxies = vec!["10.0.0.0/8".into()];
    })
    .await;
    assert_eq!(login_via(direct.addr, "203.0.113.1").await, 401);
    assert_eq!(login_via(direct.addr, "203.0.113.2").await, 401);
    // A fresh forged address does not buy a fresh budget.
    assert_eq!(login_via(direct.addr, "203.0.113.3").await, 429);
    direct.shutdown().await;
}

fn ed_token(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap()
}

async fn public_key_server(tweak: impl FnOnce(&mut tern_server::Config)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("ed.pub.pem");
    std::fs::write(&key, ED_PUBLIC).unwrap();
    let s = TestServer::with(|c| {
        c.auth.jwt_algorithm = "EdDSA".into();
        c.auth.jwt_public_key_file = key.to_string_lossy().into_owned();
        tweak(c);
    })
    .await;
    // The key is read at start; the directory may go.
    drop(dir);
    s
}

#[tokio::test]
async fn public_key_mode_accepts_its_own_logins_and_refuses_key_confusion() {
    let s = public_key_server(|_| {}).await;
    let creds = json!({"username":"erin","password":"correct-horse"});
    assert_eq!(
        s.http("POST", "/api/v1/register", None, Some(creds.clone()))
            .await
            .0,
        201
    );
    let (status, login) = s.http("POST", "/api/v1/login", None, Some(creds)).await;
    assert_eq!(status, 200);
    let own = login["token"].as_str().unwrap();
    assert_eq!(s.http("GET", "/api/v1/me", Some(own), None).await.0, 200);
    // Minted by the operator's back end with its private key.
    let minted = ed_token(json!({"sub":"frank","exp": now_s() + 600}));
    let (status, me) = s.http("GET", "/api/v1/me", Some(&minted), None).await;
    assert_eq!((status, me["user"].as_str()), (200, Some("frank")));
    // HS256 "signed" with the public key as the HMAC secret: refused.
    let confused = common::token_with(json!({"sub":"mallory","exp": now_s() + 600}), ED_PUBLIC);
    assert_eq!(
        s.http("GET", "/api/v1/me", Some(&confused), None).await.0,
        401
    );
    // Another algorithm than the two accepted: refused.
    let hs384 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS384),
        &json!({"sub":"mallory","exp": now_s() + 600}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(s.http("GET", "/api/v1/me", Some(&hs384), None).await.0, 401);
    // The same rules on the WebSocket.
    let mut ws = Ws::open(&s.ws_url(), Some(own)).await;
    assert_eq!(ws.recv().await["type"], "auth_ok");
    let mut ws = Ws::open(&s.ws_url(), Some(&confused)).await;
    assert_eq!(ws.expect_close().await.0, 4001);
    s.shutdown().await;
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let s = public_key_server(|c| {
        c.auth.jwt_issuer = "https://app.example".into();
        c.auth.jwt_audience = "tern".into();
    })
    .await;
    let exp = now_s() + 600;
    let good = ed_token(json!({"sub":"gina","exp":exp,"iss":"https://app.example","aud":"tern"}));
    assert_eq!(s.http("GET", "/api/v1/me", Some(&good), None).await.0, 200);
    for claims in [
        json!({"sub":"gina","exp":exp,"aud":"tern"}),
        json!({"sub":"gina","exp":exp,"iss":"https://app.example"}),
        json!({"sub":"gina","exp":exp,"iss":"https://evil.example","aud":"tern"}),
        json!({"sub":"gina","exp":exp,"iss":"https://app.example","aud":"other"}),
    ] {
        let bad = ed_token(claims.clone());
        assert_eq!(
            s.http("GET", "/api/v1/me", Some(&bad), None).await.0,
            401,
            "{claims}"
        );
    }
    // Tokens this server issues carry both, so they pass.
    let state = &s.server.as_ref().unwrap().state;
    let (own, _) = state.auth.issue("gina", false, 60).unwrap();
    assert_eq!(s.http("GET", "/api/v1/me", Some(&own), None).await.0, 200);
    // A plain test token (no iss/aud) is refused.
    assert_eq!(
        s.http("GET", "/api/v1/me", Some(&token("gina")), None)
            .await
            .0,
        401
    );
    s.shutdown().await;
}

#[tokio::test]
async fn acks_of_sends_in_flight_arrive_before_a_kick_closes() {
    let s = TestServer::start().await;
    let _bob = s.connect("bob").await;
    let mut alice = s.connect("alice").await;
    for i in 0..50 {
        alice
            .send(json!({"type":"send","id":i,"to":"bob","cmid":format!("k{i}"),"body":"x"}))
            .await;
    }
    let admin = common::token_with(
        json!({"sub":"root1","exp": now_s() + 600, "role":"admin"}),
        SECRET,
    );
    let (status, _) = s
        .http("POST", "/api/v1/admin/users/alice/kick", Some(&admin), None)
        .await;
    assert_eq!(status, 204);
    let (code, frames) = alice.expect_close().await;
    assert_eq!(code, 4011);
    let acks = frames.iter().filter(|f| f["type"] == "ack").count();
    let (_, history) = s
        .http(
            "GET",
            "/api/v1/conversations/d:alice:bob/messages?limit=100",
            Some(&token("bob")),
            None,
        )
        .await;
    let stored = history["items"].as_array().unwrap().len();
    assert_eq!(
        acks, stored,
        "every stored message was acked before the close"
    );
    s.shutdown().await;
}
