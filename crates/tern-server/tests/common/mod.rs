//! Shared harness of the whole-server tests: a server on 127.0.0.1:0 with a
//! temporary data directory, tokens minted with the test secret, a raw
//! WebSocket client and a minimal HTTP client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tern_server::app::{self, RunningServer};
use tern_server::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_websockets::{ClientBuilder, MaybeTlsStream, Message, WebSocketStream};

pub mod proxy;

pub const SECRET: &str = "test-secret-0123456789abcdef";
pub const WAIT: Duration = Duration::from_secs(5);

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with(|_| {}).await
    }

    pub async fn with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config {
            http_addr: "127.0.0.1:0".into(),
            tcp_addr: "off".into(),
            data_dir: dir.path().to_string_lossy().into_owned(),
            jwt_secret: SECRET.into(),
            ..Config::default()
        };
        cfg.limits.send_rate = 10_000;
        cfg.limits.send_burst = 10_000;
        // Tests shut down often: no lingering port unless a test asks.
        cfg.http.drain_grace_ms = 0;
        tweak(&mut cfg);
        let server = app::start(cfg).await.unwrap();
        let addr = server.http_addr;
        Self {
            server: Some(server),
            addr,
            _dir: dir,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Connects and authenticates with an `auth` frame.
    pub async fn connect(&self, user: &str) -> Ws {
        let mut ws = Ws::open(&self.ws_url(), None).await;
        ws.send(json!({"type":"auth","id":0,"token":token(user),"device":"test"}))
            .await;
        let ok = ws.recv().await;
        assert_eq!(ok["type"], "auth_ok", "{ok}");
        assert_eq!(ok["user"], user);
        ws
    }

    pub async fn http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        http(self.addr, method, path, token, body).await
    }

    pub async fn shutdown(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

/// A valid token for `user` (1 hour).
pub fn token(user: &str) -> String {
    token_with(
        json!({"sub": user, "exp": now_s() + 3600, "iat": now_s()}),
        SECRET,
    )
}

pub fn token_with(claims: Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A raw WebSocket client speaking JSON frames.
pub struct Ws {
    pub inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn open(url: &str, bearer: Option<&str>) -> Self {
        let mut b = ClientBuilder::new().uri(url).unwrap();
        if let Some(t) = bearer {
            b = b
                .add_header(
                    http::header::AUTHORIZATION,
                    http::HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
                )
                .unwrap();
        }
        let (inner, _) = b.connect().await.unwrap();
        Self { inner }
    }

    pub async fn send(&mut self, v: Value) {
        self.inner.send(Message::text(v.to_string())).await.unwrap();
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.inner.send(m).await.unwrap();
    }

    /// The next JSON frame (panics on close or timeout).
    pub async fn recv(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(WAIT, self.inner.next())
                .await
                .expect("timed out waiting for a frame")
                .expect("connection ended")
                .expect("websocket error");
            if let Some(t) = m.as_text() {
                return serde_json::from_str(t).unwrap();
            }
            assert!(!m.is_close(), "unexpected close {:?}", m.as_close());
        }
    }

    /// The next frame of `type`, skipping others.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] == ty {
                return v;
            }
        }
    }

    /// Sends a request and returns the reply carrying the same id.
    pub async fn request(&mut self, v: Value) -> Value {
        let id = v["id"].clone();
        self.send(v).await;
        loop {
            let r = self.recv().await;
            if r["id"] == id {
                return r;
            }
        }
    }

    /// Nothing arrives within `d` (frames other than pong fail the test).
    pub async fn expect_silence(&mut self, d: Duration) {
        if let Ok(Some(Ok(m))) = tokio::time::timeout(d, self.inner.next()).await {
            panic!(
                "expected silence, got {:?}",
                m.as_text()
                    .map(str::to_owned)
                    .or_else(|| m.as_close().map(|c| format!("{c:?}")))
            );
        }
    }

    /// Reads until the close frame; returns its code and the text frames seen.
    pub async fn expect_close(&mut self) -> (u16, Vec<Value>) {
        let mut seen = Vec::new();
        loop {
            let m = tokio::time::timeout(Duration::from_secs(15), self.inner.next())
                .await
                .expect("timed out waiting for close");
            match m {
                Some(Ok(m)) if m.is_close() => {
                    let code = m.as_close().map(|(c, _)| u16::from(c)).unwrap_or(1005);
                    return (code, seen);
                }
                Some(Ok(m)) => {
                    if let Some(t) = m.as_text() {
                        seen.push(serde_json::from_str(t).unwrap());
                    }
                }
                Some(Err(e)) => panic!("error before close frame: {e}; seen {seen:?}"),
                None => panic!("stream ended without close frame; seen {seen:?}"),
            }
        }
    }
}

/// A tiny HTTP/1.1 client (one request per connection).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let payload = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    (
        status,
        serde_json::from_str(&payload).unwrap_or(Value::Null),
    )
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// The status of one request, or `None` when the server cannot be reached
/// or answers nothing readable (a server still starting or stopping).
pub async fn try_http(addr: SocketAddr, method: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    let req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    String::from_utf8_lossy(&buf)
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}
