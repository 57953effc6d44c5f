//! Helpers of the hostile-input suite (`hostile_*.rs`, `faults.rs`): raw
//! HTTP with any bytes, WebSocket events that tell replies from closes,
//! health and durability checks, and a runner for independent cases that
//! reports every failing case by name instead of stopping at the first.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod proc;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{token, Ws};

/// A raw HTTP answer: status, lower-cased head, body bytes.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim())
        })
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The documented error shape with `code` and this status.
    pub fn assert_error(&self, status: u16, code: &str, what: &str) {
        let v = self.json();
        assert_eq!(
            (self.status, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{what}: {}\n{v}",
            self.head
        );
        assert!(v["error"]["message"].is_string(), "{what}: {v}");
    }
}

/// Sends `request` as is on a fresh connection (a writer task, so a server
/// that answers before reading a huge body is still heard) and reads one
/// answer: the head, then `Content-Length` bytes or until the socket ends.
pub async fn raw_http(addr: SocketAddr, request: Vec<u8>) -> Answer {
    let s = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        for chunk in request.chunks(64 * 1024) {
            if wr.write_all(chunk).await.is_err() {
                return;
            }
        }
        let _ = wr.flush().await;
        // Keep the write half open until the answer is read.
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let answer = loop {
        let n = match tokio::time::timeout(Duration::from_secs(10), rd.read(&mut chunk)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => 0,
            Err(_) => panic!(
                "no complete answer in time: {:?}",
                String::from_utf8_lossy(&buf)
            ),
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(a) = parse_answer(&buf, n == 0) {
            break a;
        }
        assert!(
            n > 0,
            "connection ended: {:?}",
            String::from_utf8_lossy(&buf)
        );
    };
    writer.abort();
    answer
}

fn parse_answer(buf: &[u8], ended: bool) -> Option<Answer> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let mut body = buf[end + 4..].to_vec();
    let a = |body| Answer {
        status,
        head: head.clone(),
        body,
    };
    if head.contains("transfer-encoding: chunked") {
        if !ended && !body.ends_with(b"0\r\n\r\n") {
            return None;
        }
        body = dechunk(&body);
        return Some(a(body));
    }
    let len: usize = a(Vec::new())
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap_or(0));
    (body.len() >= len || ended).then(|| a(body))
}

fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = s.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&s[..i]);
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || s.len() < i + 2 + n {
            break;
        }
        out.extend_from_slice(&s[i + 2..i + 2 + n]);
        s = &s[(i + 4 + n).min(s.len())..];
    }
    out
}

/// A request with a JSON content type (or none, or another) and any body.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = req.into_bytes();
    out.extend_from_slice(body);
    out
}

/// What the server did after a frame.
#[derive(Debug)]
pub enum Event {
    Frame(Value),
    Close(u16),
    /// The stream ended (or failed) without a Close frame.
    End,
}

/// The next text frame or close, skipping pings and pongs.
pub async fn next_event(ws: &mut Ws, limit: Duration) -> Event {
    loop {
        match tokio::time::timeout(limit, ws.inner.next()).await {
            Err(_) => panic!("nothing from the server within {limit:?}"),
            Ok(None) | Ok(Some(Err(_))) => return Event::End,
            Ok(Some(Ok(m))) => {
                if let Some(t) = m.as_text() {
                    return Event::Frame(serde_json::from_str(t).expect("server sent non-JSON"));
                }
                if let Some((code, _)) = m.as_close() {
                    return Event::Close(code.into());
                }
            }
        }
    }
}

/// The connection is still usable: a `ping` gets its `pong`.
pub async fn assert_open(ws: &mut Ws, what: &str) {
    let id = json!(format!("alive-{what}"));
    ws.send(json!({"type":"ping","id":id})).await;
    loop {
        match next_event(ws, Duration::from_secs(10)).await {
            Event::Frame(f) if f["id"] == id => {
                assert_eq!(f["type"], "pong", "{what}: {f}");
                return;
            }
            Event::Frame(_) => {}
            other => panic!("{what}: connection gone: {other:?}"),
        }
    }
}

/// The server is healthy: `/healthz` and `/readyz` answer 200 and a fresh
/// WebSocket session gets its `pong`.
pub async fn assert_healthy(addr: SocketAddr) {
    let (status, v) = crate::common::http(addr, "GET", "/healthz", None, None).await;
    assert_eq!((status, &v["status"]), (200, &json!("ok")), "healthz");
    let (status, v) = crate::common::http(addr, "GET", "/readyz", None, None).await;
    assert_eq!(status, 200, "readyz: {v}");
    let mut ws = Ws::open(&format!("ws://{addr}/ws"), Some(&token("healthcheck"))).await;
    assert_eq!(ws.recv().await["type"], "auth_ok");
    assert_open(&mut ws, "healthcheck").await;
}

/// The whole history of `conv` as `user` sees it, over HTTP.
pub async fn history(addr: SocketAddr, user: &str, conv: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut after = 0;
    loop {
        let path = format!("/api/v1/conversations/{conv}/messages?after={after}&limit=500");
        let (status, page) =
            crate::common::http(addr, "GET", &path, Some(&token(user)), None).await;
        assert_eq!(status, 200, "history of {conv}: {page}");
        let got = page["items"].as_array().unwrap().clone();
        if let Some(last) = got.last() {
            after = last["seq"].as_u64().unwrap();
        }
        items.extend(got);
        if page["more"] != true {
            return items;
        }
    }
}

/// Every ack is in the history of its conversation (same seq and mid), and
/// the history's seqs are 1, 2, 3, … without gaps or duplicates.
pub async fn assert_acked_stored(addr: SocketAddr, user: &str, conv: &str, acks: &[Value]) {
    let items = history(addr, user, conv).await;
    assert_gap_free(&items, conv);
    for ack in acks {
        let seq = ack["seq"].as_u64().expect("ack without seq") as usize;
        let m = items.get(seq.wrapping_sub(1)).unwrap_or_else(|| {
            panic!("acked seq {seq} missing in {conv} ({} stored)", items.len())
        });
        assert_eq!(m["mid"], ack["mid"], "seq {seq} of {conv}");
    }
}

/// Seqs 1..=n, each once, in order.
pub fn assert_gap_free(items: &[Value], conv: &str) {
    for (i, m) in items.iter().enumerate() {
        assert_eq!(
            m["seq"].as_u64(),
            Some(i as u64 + 1),
            "{conv}: gap or duplicate"
        );
    }
}

/// Runs independent cases concurrently, each in its own task, and fails
/// naming every case that failed.
pub async fn run_cases<F>(cases: Vec<(String, F)>)
where
    F: Future<Output = ()> + Send + 'static,
{
    let total = cases.len();
    let handles: Vec<_> = cases
        .into_iter()
        .map(|(name, f)| (name, tokio::spawn(f)))
        .collect();
    let mut failed = Vec::new();
    for (name, h) in handles {
        if let Err(e) = h.await {
            failed.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {total} cases failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
