//! One chat scenario (auth, send, ack, push, sync, ping) through the client
//! library over each transport against a real in-process server: WebSocket
//! with JSON, WebSocket with protobuf, the raw TCP door, and both TLS
//! doors (`wss://`, `tls://`) with a self-signed certificate. A server-side
//! close code (4011, a session over the per-user limit) reaches the app
//! the same way over every transport.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::json;
use tern_client::tern_proto::{ConvId, ErrorCode, Message};
use tern_client::{
    Client, ClientConfig, ClientError, Codec, Push, PushStream, ReconnectPolicy, TlsRoots,
};
use tern_server::app::{self, RunningServer};
use tern_server::Config;

const SECRET: &str = "test-secret-0123456789abcdef";
const WAIT: Duration = Duration::from_secs(5);

struct Server {
    running: RunningServer,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config {
            http_addr: "127.0.0.1:0".into(),
            tcp_addr: "127.0.0.1:0".into(),
            data_dir: dir.path().to_string_lossy().into_owned(),
            jwt_secret: SECRET.into(),
            ..Config::default()
        };
        cfg.http.drain_grace_ms = 0;
        tweak(&mut cfg);
        let running = app::start(cfg).await.unwrap();
        Self { running, _dir: dir }
    }

    /// The URL of transport `kind`: `ws-json`, `ws-proto`, `tcp`, `wss`, `tls`.
    fn url(&self, kind: &str) -> String {
        let http = self.running.http_addr;
        let tcp = self.running.tcp_addr.expect("tcp door on");
        match kind {
            "ws-json" => format!("ws://{http}/ws"),
            "ws-proto" => format!("ws://{http}/ws?codec=proto"),
            "tcp" => format!("tcp://{tcp}"),
            "wss" => format!("wss://127.0.0.1:{}/ws", http.port()),
            "tls" => format!("tls://127.0.0.1:{}", tcp.port()),
            other => panic!("unknown transport {other}"),
        }
    }
}

fn token(user: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": user, "iat": now, "exp": now + 3600}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn config(url: &str, user: &str) -> ClientConfig {
    ClientConfig::new(url, token(user))
        .with_request_timeout(WAIT)
        .with_reconnect(ReconnectPolicy::disabled())
}

async fn next_push(pushes: &mut PushStream) -> Push {
    tokio::time::timeout(WAIT, pushes.recv())
        .await
        .expect("no push in time")
        .expect("push stream ended")
}

/// The next message push, skipping presence and the like.
async fn next_msg(pushes: &mut PushStream) -> Message {
    loop {
        if let Push::Msg(m) = next_push(pushes).await {
            return m;
        }
    }
}

/// The `Closed` push, after any other.
async fn closed(pushes: &mut PushStream) -> (u16, bool) {
    loop {
        if let Push::Closed {
            code, reconnecting, ..
        } = next_push(pushes).await
        {
            return (code, reconnecting);
        }
    }
}

/// Alice and Bob chat, each over the transport of their configuration;
/// `tag` keeps the `cmid`s of several runs apart.
async fn chat(alice: ClientConfig, bob: ClientConfig, tag: &str) {
    let (alice, mut alice_pushes) = Client::connect(alice).await.unwrap();
    let (bob, mut bob_pushes) = Client::connect(bob).await.unwrap();
    assert_eq!(
        (alice.user().as_str(), bob.user().as_str()),
        ("alice", "bob")
    );
    let conv = ConvId::direct("alice", "bob");

    let ack = alice
        .send_to("bob", &format!("{tag}-1"), "hello bob")
        .await
        .unwrap();
    assert_eq!(ack.conv, conv);
    let m = next_msg(&mut bob_pushes).await;
    assert_eq!(
        (m.seq, m.body.as_str(), m.from.as_str()),
        (ack.seq, "hello bob", "alice")
    );

    let reply = bob
        .send_conv(&conv, &format!("{tag}-2"), "hi alice")
        .await
        .unwrap();
    assert_eq!(reply.seq, ack.seq + 1);
    assert_eq!(next_msg(&mut alice_pushes).await.body, "hi alice");

    let page = alice.sync_after(&conv, ack.seq - 1, 10).await.unwrap();
    let bodies: Vec<_> = page.items.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["hello bob", "hi alice"]);
    assert!(!page.more);
    assert!(alice.ping().await.unwrap() < WAIT);
    alice.close().await.unwrap();
    bob.close().await.unwrap();
}

#[tokio::test]
async fn the_chat_scenario_over_every_transport() {
    for kind in ["ws-json", "ws-proto", "tcp"] {
        let server = Server::start(|_| {}).await;
        let url = server.url(kind);
        chat(config(&url, "alice"), config(&url, "bob"), kind).await;
        server.running.shutdown().await;
    }
}

#[tokio::test]
async fn protobuf_over_websocket_by_option_and_mixed_transports() {
    let server = Server::start(|_| {}).await;
    let ws = server.url("ws-json");
    let alice = config(&ws, "alice").with_codec(Codec::Proto);
    chat(alice, config(&server.url("tcp"), "bob"), "mixed").await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_close_code_surfaces_alike_over_every_transport() {
    let server = Server::start(|c| c.limits.max_sessions_per_user = 1).await;
    for kind in ["ws-json", "ws-proto", "tcp"] {
        let url = server.url(kind);
        let (_first, mut pushes) = Client::connect(config(&url, "alice")).await.unwrap();
        let (second, _) = Client::connect(config(&url, "alice")).await.unwrap();
        assert_eq!(closed(&mut pushes).await, (4011, false), "{kind}");
        second.close().await.unwrap();
    }
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_bad_token_is_refused_alike_over_every_transport() {
    let server = Server::start(|_| {}).await;
    for kind in ["ws-json", "ws-proto", "tcp"] {
        let cfg = ClientConfig::new(server.url(kind), "not-a-jwt").with_request_timeout(WAIT);
        match Client::connect(cfg).await {
            Err(ClientError::Server { code, .. }) => {
                assert_eq!(code, ErrorCode::Unauthorized, "{kind}")
            }
            other => panic!("{kind}: {other:?}"),
        }
    }
    server.running.shutdown().await;
}

#[tokio::test]
async fn tls_and_wss_with_a_self_signed_certificate() {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    let server = Server::start(|c| {
        c.tls.cert_file = cert.to_string_lossy().into_owned();
        c.tls.key_file = key.to_string_lossy().into_owned();
    })
    .await;
    let pem = made.cert.pem();
    let trusting =
        |kind: &str, user: &str| config(&server.url(kind), user).with_ca_pem(pem.clone());
    chat(trusting("tls", "alice"), trusting("tls", "bob"), "tls").await;
    chat(
        trusting("wss", "alice").with_codec(Codec::Proto),
        trusting("tls", "bob"),
        "wss",
    )
    .await;

    // The compiled-in roots do not know a self-signed certificate.
    let cfg = config(&server.url("tls"), "alice");
    assert_eq!(cfg.tls_roots, TlsRoots::WebPki);
    match Client::connect(cfg).await {
        Err(e @ ClientError::Io(_)) => assert!(e.to_string().contains("certificate"), "{e}"),
        other => panic!("{other:?}"),
    }
    server.running.shutdown().await;
}
