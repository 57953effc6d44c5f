//! The scenarios, and helpers they share.

pub mod churn;
pub mod connect;
pub mod direct;
pub mod fanout;
pub mod history;
pub mod idle;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use indicatif::ProgressBar;

use crate::net::{Target, Ws};
use crate::report::Latency;

/// The result of opening many connections.
pub struct Opened {
    /// Open connections, in the order of `users` (`None`: failed).
    pub conns: Vec<Option<Ws>>,
    pub latency: Latency,
    pub errors: Vec<String>,
    pub elapsed: Duration,
}

impl Opened {
    pub fn ok(&self) -> usize {
        self.conns.iter().filter(|c| c.is_some()).count()
    }
}

/// Connects every user in `users`, `concurrency` at a time, each within
/// `limit`, the whole within `limit` too.
pub async fn connect_many(
    target: &Target,
    users: &[String],
    concurrency: usize,
    limit: Duration,
    pb: &ProgressBar,
) -> Opened {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + limit;
    let target = Arc::new(target.clone());
    let mut conns: Vec<Option<Ws>> = Vec::with_capacity(users.len());
    let mut latency = Latency::new();
    let mut errors = Vec::new();
    let mut stream = futures_util::stream::iter(users.iter().cloned().map(|u| {
        let t = target.clone();
        async move {
            let t0 = Instant::now();
            let r = tokio::time::timeout_at(deadline, t.connect(&u)).await;
            let r = r.unwrap_or_else(|_| Err(anyhow::anyhow!("connect timed out")));
            (r, t0.elapsed())
        }
    }))
    .buffered(concurrency.max(1));
    while let Some((r, took)) = stream.next().await {
        pb.inc(1);
        match r {
            Ok(ws) => {
                latency.record(took.as_micros() as u64);
                conns.push(Some(ws));
            }
            Err(e) => {
                if errors.len() < 10 {
                    errors.push(format!("connect: {e:#}"));
                }
                conns.push(None);
            }
        }
    }
    Opened {
        conns,
        latency,
        errors,
        elapsed: started.elapsed(),
    }
}

/// Per-second rate of `n` over `d`.
pub fn per_sec(n: u64, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s > 0.0 {
        n as f64 / s
    } else {
        0.0
    }
}

/// A run id, unique enough to keep `cmid`s and user names of runs apart.
pub fn run_id() -> String {
    format!("{:x}", crate::token::now_us())
}

/// Where a sender sends.
#[derive(Debug, Clone)]
pub enum Dest {
    /// A direct message to this user.
    To(String),
    /// A conversation (`g:<id>`).
    Conv(String),
}

/// How long a sender sends.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// Until this instant.
    Time(tokio::time::Instant),
    /// This many messages.
    Count(u64),
}

/// What a sender did.
pub struct Sent {
    pub sent: u64,
    pub acked: u64,
    pub ack_latency: Latency,
    pub errors: Vec<String>,
    pub error_count: u64,
}

/// Sends bench messages on `ws` with `window` in flight, paced at one per
/// `pace` if given, until `until`; then waits for the outstanding acks until
/// `hard`. Every frame the sender receives that is not an ack or an error
/// (pushes of other senders) is ignored.
#[allow(clippy::too_many_arguments)]
pub async fn send_loop(
    mut ws: Ws,
    dest: Dest,
    cmid_prefix: String,
    window: usize,
    until: Until,
    pace: Option<Duration>,
    body_bytes: usize,
    hard: tokio::time::Instant,
    pb: ProgressBar,
) -> Sent {
    use futures_util::SinkExt;
    use std::collections::HashMap;
    use tokio_websockets::Message;

    let mut out = Sent {
        sent: 0,
        acked: 0,
        ack_latency: Latency::new(),
        errors: Vec::new(),
        error_count: 0,
    };
    let mut inflight: HashMap<u64, Instant> = HashMap::new();
    let window = window.max(1);
    let start = tokio::time::Instant::now();
    let mut next_at = start;
    loop {
        let more = match until {
            Until::Time(t) => tokio::time::Instant::now() < t,
            Until::Count(n) => out.sent < n,
        };
        if !more && inflight.is_empty() {
            break;
        }
        let now = tokio::time::Instant::now();
        if now >= hard {
            out.errors
                .push(format!("{} acks missing at the deadline", inflight.len()));
            break;
        }
        if more && inflight.len() < window && now >= next_at {
            let id = out.sent;
            let body = crate::net::body(body_bytes);
            let frame = match &dest {
                Dest::To(u) => {
                    serde_json::json!({"type":"send","id":id,"to":u,"cmid":format!("{cmid_prefix}-{id}"),"body":body})
                }
                Dest::Conv(c) => {
                    serde_json::json!({"type":"send","id":id,"conv":c,"cmid":format!("{cmid_prefix}-{id}"),"body":body})
                }
            };
            if let Err(e) = ws.send(Message::text(frame.to_string())).await {
                out.errors.push(format!("send: {e}"));
                out.error_count += 1;
                break;
            }
            inflight.insert(id, Instant::now());
            out.sent += 1;
            if let Some(p) = pace {
                next_at += p;
            }
            continue;
        }
        // Wait for a frame, or for the next send time when paced.
        let wake = if more && inflight.len() < window {
            next_at.min(hard)
        } else {
            match until {
                Until::Time(t) if more => t.min(hard),
                _ => hard,
            }
        };
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = tokio::time::sleep_until(wake) => continue,
        };
        let text = match msg {
            Some(Ok(m)) => match m.as_text() {
                Some(t) => t.to_owned(),
                None if m.is_close() => {
                    out.errors.push("sender: closed by the server".into());
                    break;
                }
                None => continue,
            },
            Some(Err(e)) => {
                out.errors.push(format!("sender: {e}"));
                break;
            }
            None => {
                out.errors.push("sender: connection ended".into());
                break;
            }
        };
        let Some(f) = crate::net::Frame::parse(&text) else {
            continue;
        };
        match f.kind.as_ref() {
            "ack" => {
                if let Some(t0) = f.id.and_then(|id| inflight.remove(&id)) {
                    out.acked += 1;
                    out.ack_latency.record(t0.elapsed().as_micros() as u64);
                    pb.inc(1);
                }
            }
            "error" => {
                if let Some(id) = f.id {
                    inflight.remove(&id);
                }
                out.error_count += 1;
                if out.errors.len() < 10 {
                    out.errors
                        .push(format!("server: {}", crate::net::truncate(&text)));
                }
            }
            _ => {}
        }
    }
    out
}

/// What a receiver got.
pub struct Received {
    pub unique: u64,
    pub dups: u64,
    pub latency: Latency,
    pub error: Option<String>,
}

/// Receives bench messages on `ws` until `expect` holds a total and that
/// many distinct seqs arrived, or until `hard`.
pub async fn recv_loop(
    mut ws: Ws,
    mut expect: tokio::sync::watch::Receiver<Option<u64>>,
    hard: tokio::time::Instant,
    pb: ProgressBar,
) -> Received {
    let mut seen = std::collections::HashSet::new();
    let mut out = Received {
        unique: 0,
        dups: 0,
        latency: Latency::new(),
        error: None,
    };
    let mut watching = true;
    loop {
        if let Some(total) = *expect.borrow() {
            if out.unique >= total {
                break;
            }
        }
        let msg = tokio::select! {
            m = ws.next() => m,
            r = expect.changed(), if watching => {
                if r.is_err() {
                    watching = false;
                }
                continue;
            }
            _ = tokio::time::sleep_until(hard) => break,
        };
        let m = match msg {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                out.error = Some(format!("receiver: {e}"));
                break;
            }
            None => {
                out.error = Some("receiver: connection ended".into());
                break;
            }
        };
        let Some(text) = m.as_text() else {
            if m.is_close() {
                out.error = Some("receiver: closed by the server".into());
                break;
            }
            continue;
        };
        let Some(f) = crate::net::Frame::parse(text) else {
            continue;
        };
        if f.kind != "msg" {
            continue;
        }
        let Some(seq) = f.seq else { continue };
        if seen.insert(seq) {
            out.unique += 1;
            pb.inc(1);
            if let Some(sent) = f.sent_us() {
                out.latency
                    .record(crate::token::now_us().saturating_sub(sent));
            }
        } else {
            out.dups += 1;
        }
    }
    out
}
