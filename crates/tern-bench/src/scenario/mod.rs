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

use crate::codec::Out;
use crate::hosts::Hosts;
use crate::net::{Conn, Incoming};
use crate::report::{Latency, SharedLatency};

/// The result of opening many connections.
pub struct Opened {
    /// Open connections, in the order of `users` (`None`: failed).
    pub conns: Vec<Option<Conn>>,
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
/// `limit`, the whole within `limit` too. User `users[i]` connects to host
/// `host_of(i)` (mod the number of hosts).
pub async fn connect_many(
    hosts: &Hosts,
    users: &[String],
    host_of: impl Fn(usize) -> usize,
    concurrency: usize,
    limit: Duration,
    pb: &ProgressBar,
) -> Opened {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + limit;
    let mut conns: Vec<Option<Conn>> = Vec::with_capacity(users.len());
    let mut latency = Latency::new();
    let mut errors = Vec::new();
    let multi = hosts.multi();
    let mut stream = futures_util::stream::iter(users.iter().enumerate().map(|(i, u)| {
        let t = hosts.get(host_of(i)).clone();
        let u = u.clone();
        async move {
            let t0 = Instant::now();
            let r = tokio::time::timeout_at(deadline, t.connect(&u)).await;
            let r = r.unwrap_or_else(|_| Err(anyhow::anyhow!("connect timed out")));
            // With several hosts, say which one failed.
            let r = r.map_err(|e| if multi { e.context(t.host.clone()) } else { e });
            (r, t0.elapsed())
        }
    }))
    .buffered(concurrency.max(1));
    while let Some((r, took)) = stream.next().await {
        pb.inc(1);
        match r {
            Ok(conn) => {
                latency.record(took.as_micros() as u64);
                conns.push(Some(conn));
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

/// Makes sure every user in `users` exists on the server (a valid token
/// creates its user): connects and closes each, `concurrency` at a time,
/// the whole within `limit`, `users[i]` at host `host_of(i)`. Returns how
/// many failed and the first errors.
pub async fn provision_many(
    hosts: &Hosts,
    users: &[String],
    host_of: impl Fn(usize) -> usize,
    concurrency: usize,
    limit: Duration,
) -> (u64, Vec<String>) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut stream = futures_util::stream::iter(users.iter().enumerate().map(|(i, u)| {
        let t = hosts.get(host_of(i)).clone();
        let u = u.clone();
        async move {
            match tokio::time::timeout_at(deadline, t.connect(&u)).await {
                Ok(Ok(mut conn)) => {
                    conn.close(Duration::from_secs(1)).await;
                    Ok(())
                }
                Ok(Err(e)) => Err(format!("provisioning {u}: {e:#}")),
                Err(_) => Err(format!("provisioning {u}: timed out")),
            }
        }
    }))
    .buffer_unordered(concurrency.max(1));
    let (mut failed, mut errors) = (0, Vec::new());
    while let Some(r) = stream.next().await {
        if let Err(e) = r {
            failed += 1;
            if errors.len() < 10 {
                errors.push(e);
            }
        }
    }
    (failed, errors)
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

impl Sent {
    pub fn new() -> Self {
        Self {
            sent: 0,
            acked: 0,
            ack_latency: Latency::new(),
            errors: Vec::new(),
            error_count: 0,
        }
    }

    /// Adds this sender's counts, ack latencies and errors to `report`;
    /// returns how many of its messages were acked.
    pub fn record(self, report: &mut crate::report::Report) -> u64 {
        report.count("sent", self.sent);
        report.count("acked", self.acked);
        report.count("send_errors", self.error_count);
        report.latency("ack").add(&self.ack_latency);
        for e in self.errors {
            report.error(e);
        }
        self.acked
    }
}

/// Waits for every sender task and records each in `report`; returns how
/// many messages were acked in all.
pub async fn record_senders(
    tasks: Vec<tokio::task::JoinHandle<Sent>>,
    report: &mut crate::report::Report,
) -> u64 {
    let mut acked = 0;
    for t in tasks {
        match t.await {
            Ok(s) => acked += s.record(report),
            Err(e) => report.error(format!("sender task: {e}")),
        }
    }
    acked
}

impl Default for Sent {
    fn default() -> Self {
        Self::new()
    }
}

/// Sends bench messages on `conn` with `window` in flight, paced at one per
/// `pace` if given, until `until`; then waits for the outstanding acks until
/// `hard`. Every frame the sender receives that is not an ack or an error
/// (pushes of other senders) is ignored.
#[allow(clippy::too_many_arguments)]
pub async fn send_loop(
    mut conn: Conn,
    dest: Dest,
    cmid_prefix: String,
    window: usize,
    until: Until,
    pace: Option<Duration>,
    body_bytes: usize,
    hard: tokio::time::Instant,
    pb: ProgressBar,
) -> Sent {
    use std::collections::HashMap;

    let mut out = Sent::new();
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
            let cmid = format!("{cmid_prefix}-{id}");
            let frame = Out::Send {
                id,
                dest: &dest,
                cmid: &cmid,
                body: &body,
            };
            if let Err(e) = conn.send(&frame).await {
                out.errors.push(format!("send: {e:#}"));
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
        let payload = tokio::select! {
            m = conn.recv() => match m {
                Incoming::Frame(p) => p,
                Incoming::Gone(why) => {
                    out.errors.push(format!("sender: {why}"));
                    break;
                }
            },
            _ = tokio::time::sleep_until(wake) => continue,
        };
        let Some(f) = conn.codec().decode(&payload) else {
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
                    out.errors.push(format!("server: {}", payload.preview()));
                }
            }
            _ => {}
        }
    }
    out
}

/// What a receiver got (its latencies went to the shared histogram).
pub struct Received {
    pub unique: u64,
    pub dups: u64,
    /// Wall-clock µs of the last new message (0: none).
    pub last_us: u64,
    pub error: Option<String>,
}

/// The seqs one receiver has seen: a bitmap from the first seq seen (the
/// seqs of a conversation are dense), a set for the rest. Exact, and a few
/// bytes per receiver instead of a hash set's tens of bytes per message.
#[derive(Debug, Default)]
pub struct SeqSet {
    base: Option<u64>,
    bits: Vec<u64>,
    others: std::collections::HashSet<u64>,
}

impl SeqSet {
    /// Seqs further than this from the first one go to the set.
    const SPAN: u64 = 1 << 24;

    /// Whether `seq` is new.
    pub fn insert(&mut self, seq: u64) -> bool {
        let base = *self.base.get_or_insert(seq);
        match seq.checked_sub(base).filter(|d| *d < Self::SPAN) {
            Some(d) => {
                let (word, bit) = ((d / 64) as usize, d % 64);
                if self.bits.len() <= word {
                    self.bits.resize(word + 1, 0);
                }
                let fresh = self.bits[word] & (1 << bit) == 0;
                self.bits[word] |= 1 << bit;
                fresh
            }
            None => self.others.insert(seq),
        }
    }
}

/// When a receiver is done: once it has `total` distinct messages, or at
/// `until` at the latest (set once the senders know how many were acked).
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    pub total: u64,
    pub until: tokio::time::Instant,
}

/// Receives bench messages (`msg` pushes, of conversation `conv` if given)
/// on `conn`, counting distinct seqs and duplicates and recording the
/// send→delivery latency into `latency`, until `expect` holds and is met,
/// or until its `until`, or until `hard`.
pub async fn recv_loop(
    mut conn: Conn,
    conv: Option<Arc<str>>,
    mut expect: tokio::sync::watch::Receiver<Option<Expect>>,
    hard: tokio::time::Instant,
    latency: SharedLatency,
    pb: ProgressBar,
) -> Received {
    let mut seen = SeqSet::default();
    let mut latency = latency.batch();
    let mut out = Received {
        unique: 0,
        dups: 0,
        last_us: 0,
        error: None,
    };
    let mut watching = true;
    loop {
        let mut stop = hard;
        if let Some(e) = *expect.borrow() {
            if out.unique >= e.total {
                break;
            }
            stop = stop.min(e.until);
        }
        let payload = tokio::select! {
            m = conn.recv() => match m {
                Incoming::Frame(p) => p,
                Incoming::Gone(why) => {
                    out.error = Some(format!("receiver: {why}"));
                    break;
                }
            },
            r = expect.changed(), if watching => {
                if r.is_err() {
                    watching = false;
                }
                continue;
            }
            _ = tokio::time::sleep_until(stop) => break,
        };
        let Some(f) = conn.codec().decode(&payload) else {
            continue;
        };
        if f.kind != "msg" {
            continue;
        }
        if let Some(want) = &conv {
            if f.conv.as_deref() != Some(want.as_ref()) {
                continue;
            }
        }
        let Some(seq) = f.seq else { continue };
        if seen.insert(seq) {
            out.unique += 1;
            pb.inc(1);
            let now = crate::token::now_us();
            out.last_us = now;
            if let Some(sent) = f.sent_us() {
                latency.record(now.saturating_sub(sent));
            }
        } else {
            out.dups += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::SeqSet;

    #[test]
    fn seq_set_is_exact() {
        let mut s = SeqSet::default();
        assert!(s.insert(1000));
        assert!(s.insert(1002));
        assert!(!s.insert(1000));
        assert!(s.insert(1001));
        assert!(!s.insert(1002));
        // Below the first seq, and far above it: the set.
        assert!(s.insert(5));
        assert!(!s.insert(5));
        assert!(s.insert(1000 + (1 << 30)));
        assert!(!s.insert(1000 + (1 << 30)));
        assert!(s.insert(1000 + 64 * 3 + 1));
        assert!(!s.insert(1000 + 64 * 3 + 1));
    }
}
