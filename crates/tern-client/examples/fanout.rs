//! Measures group fan-out: M online members of one group, one sender
//! sending N messages as fast as the server acks them (W in flight).
//! Reports deliveries/s, send→delivery latency percentiles, and lost and
//! duplicated deliveries. Tokens are minted from the server's HS256 secret;
//! the server must allow the sender's rate (e.g. TERN_LIMITS_SEND_RATE=1000000).
//!
//! ```sh
//! cargo run --release -p tern-client --example fanout -- \
//!     --host 127.0.0.1:8080 --secret "$SECRET" --members 1000 --messages 200
//! ```

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_websockets::{ClientBuilder, Message};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

fn token(secret: &str, user: &str) -> Result<String, String> {
    let exp = (now_us() / 1_000_000) as u64 + 3600;
    let claims = serde_json::json!({"sub": user, "exp": exp});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| e.to_string())
}

type Ws =
    tokio_websockets::WebSocketStream<tokio_websockets::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(host: &str, secret: &str, user: &str) -> Result<Ws, String> {
    let uri: http::Uri = format!("ws://{host}/ws?token={}", token(secret, user)?)
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    let (mut ws, _) = ClientBuilder::from_uri(uri)
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    ws.next()
        .await
        .ok_or("closed before auth_ok")?
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

async fn create_group(host: &str, token: &str, members: &[String]) -> Result<String, String> {
    let body = serde_json::json!({"name": "fanout", "members": members}).to_string();
    let req = format!(
        "POST /api/v1/groups HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut s = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .await
        .map_err(|e| e.to_string())?;
    let json = out.split("\r\n\r\n").nth(1).ok_or("no body")?;
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("{e}: {out}"))?;
    v["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or(format!("no group id: {v}"))
}

/// Per member: (seqs seen, duplicates, latencies in µs).
async fn receive(mut ws: Ws, expect: usize, deadline: Instant) -> (usize, usize, Vec<u64>) {
    let (mut seen, mut dups, mut lat) = (HashSet::new(), 0, Vec::with_capacity(expect));
    while seen.len() < expect {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(Ok(m))) = tokio::time::timeout(left, ws.next()).await else {
            break;
        };
        let Some(text) = m.as_text() else { continue };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
            continue;
        };
        if v["type"] != "msg" {
            continue;
        }
        let sent: u128 = v["body"].as_str().and_then(|b| b.parse().ok()).unwrap_or(0);
        lat.push((now_us().saturating_sub(sent)) as u64);
        if !seen.insert(v["seq"].as_u64().unwrap_or(0)) {
            dups += 1;
        }
    }
    (seen.len(), dups, lat)
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let host = arg("--host", "127.0.0.1:8080");
    let secret = arg("--secret", "");
    let members: usize = arg("--members", "1000").parse().map_err(|_| "--members")?;
    let messages: usize = arg("--messages", "200").parse().map_err(|_| "--messages")?;
    let window: usize = arg("--window", "50").parse().map_err(|_| "--window")?;
    let names: Vec<String> = (0..members).map(|i| format!("fan-{i}")).collect();
    let mut socks = Vec::with_capacity(members);
    for chunk in names.chunks(100) {
        let conns =
            futures_util::future::join_all(chunk.iter().map(|n| connect(&host, &secret, n))).await;
        for c in conns {
            socks.push(c?);
        }
    }
    let mut sender = connect(&host, &secret, "fan-sender").await?;
    let group = create_group(&host, &token(&secret, "fan-sender")?, &names).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let receivers: Vec<_> = socks
        .into_iter()
        .map(|ws| tokio::spawn(receive(ws, messages, deadline)))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await; // group pushes settle
    let started = Instant::now();
    let (mut sent, mut acked) = (0, 0);
    while acked < messages {
        while sent < messages && sent - acked < window {
            let f = serde_json::json!({"type":"send","id":sent,"conv":format!("g:{group}"),"cmid":format!("f{}-{sent}", now_us()),"body":now_us().to_string()});
            sender
                .send(Message::text(f.to_string()))
                .await
                .map_err(|e| e.to_string())?;
            sent += 1;
        }
        match sender.next().await {
            Some(Ok(m)) if m.as_text().is_some_and(|t| t.contains("\"ack\"")) => acked += 1,
            Some(Ok(m)) if m.as_text().is_some_and(|t| t.contains("\"error\"")) => {
                return Err(format!("{:?}", m.as_text()))
            }
            Some(Ok(_)) => {}
            other => return Err(format!("sender: {other:?}")),
        }
    }
    let send_secs = started.elapsed().as_secs_f64();
    let (mut got, mut dups, mut lat) = (0, 0, Vec::new());
    for r in receivers {
        let (g, d, l) = r.await.map_err(|e| e.to_string())?;
        got += g;
        dups += d;
        lat.extend(l);
    }
    let total_secs = started.elapsed().as_secs_f64();
    lat.sort_unstable();
    let p = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let expected = members * messages;
    println!(
        "members={members} messages={messages} deliveries={got}/{expected} lost={} dup={dups} send_secs={send_secs:.3} total_secs={total_secs:.3} deliveries_per_s={:.0} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        expected - got,
        got as f64 / total_secs,
        p(0.5), p(0.9), p(0.99), p(1.0)
    );
    Ok(())
}
