//! [`Peer`]: a raw WebSocket client of the cluster tests that behaves like
//! a real one. It holds a list of URLs (its home node first); when its
//! connection ends or it is told `goaway` it reconnects to the next one and
//! catches up with `sync`; on `resync` it syncs too. It records every `msg`
//! push (to count missing and duplicate pushes) and every synced message.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_websockets::{ClientBuilder, Message};

use crate::common::{token, Ws};

/// Longest wait for the answer to one request: beyond it the server hangs.
pub const ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// A send the server acknowledged.
#[derive(Debug, Clone)]
pub struct Acked {
    pub conv: String,
    pub seq: u64,
    pub from: String,
    pub cmid: String,
    /// When the ack arrived.
    pub at: Instant,
}

/// What reading one frame gave.
pub enum Frame {
    Json(Value),
    Timeout,
    /// The connection ended (or the server said `goaway`).
    Gone,
}

pub struct Peer {
    pub user: String,
    urls: Vec<String>,
    next: usize,
    ws: Option<Ws>,
    /// Conversations to catch up on after a reconnect or a `resync`.
    pub convs: Vec<String>,
    /// `msg` pushes received, by (conv, seq).
    pub pushes: BTreeMap<(String, u64), usize>,
    /// Messages fetched by `sync` while catching up.
    pub synced: BTreeSet<(String, u64)>,
    pub resyncs: usize,
    pub goaways: usize,
    /// `goaway`s already acted on (by moving to another node).
    moved: usize,
    pub reconnects: usize,
    /// `unavailable` answers to sends (each retried with the same cmid).
    pub unavailable: usize,
    /// The slowest answer to any request.
    pub slowest: Duration,
    req: u64,
}

/// Opens `url` as `user` and waits for `auth_ok`; `None` if refused.
async fn open(url: &str, user: &str) -> Option<Ws> {
    let bearer = http::HeaderValue::from_str(&format!("Bearer {}", token(user))).ok()?;
    let builder = ClientBuilder::new()
        .uri(url)
        .ok()?
        .add_header(http::header::AUTHORIZATION, bearer)
        .ok()?;
    let (inner, _) = tokio::time::timeout(Duration::from_secs(5), builder.connect())
        .await
        .ok()?
        .ok()?;
    let mut ws = Ws { inner };
    let first = tokio::time::timeout(Duration::from_secs(5), ws.inner.next())
        .await
        .ok()??
        .ok()?;
    let v: Value = serde_json::from_str(first.as_text()?).ok()?;
    (v["type"] == "auth_ok").then_some(ws)
}

impl Peer {
    /// Connects to the first URL that accepts (30 s at most).
    pub async fn connect(user: &str, urls: Vec<String>) -> Self {
        let mut p = Self {
            user: user.into(),
            urls,
            next: 0,
            ws: None,
            convs: Vec::new(),
            pushes: BTreeMap::new(),
            synced: BTreeSet::new(),
            resyncs: 0,
            goaways: 0,
            moved: 0,
            reconnects: 0,
            unavailable: 0,
            slowest: Duration::ZERO,
            req: 0,
        };
        p.ensure().await;
        p
    }

    /// A connection, opened on the current URL or the ones after it.
    async fn ensure(&mut self) {
        let started = Instant::now();
        while self.ws.is_none() {
            let url = self.urls[self.next % self.urls.len()].clone();
            self.ws = open(&url, &self.user).await;
            if self.ws.is_none() {
                self.next += 1;
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "{}: no node accepts a connection",
                    self.user
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Leaves the current node for the next URL, then catches up.
    pub async fn reconnect(&mut self) {
        self.ws = None;
        self.moved = self.goaways;
        self.next += 1;
        self.reconnects += 1;
        self.ensure().await;
        self.catch_up().await;
    }

    pub fn connected(&self) -> bool {
        self.ws.is_some()
    }

    /// The next frame within `wait`, recording pushes.
    pub async fn frame(&mut self, wait: Duration) -> Frame {
        loop {
            let Some(ws) = self.ws.as_mut() else {
                return Frame::Gone;
            };
            let m = match tokio::time::timeout(wait, ws.inner.next()).await {
                Err(_) => return Frame::Timeout,
                Ok(Some(Ok(m))) => m,
                Ok(_) => {
                    self.ws = None;
                    return Frame::Gone;
                }
            };
            if m.is_close() {
                self.ws = None;
                return Frame::Gone;
            }
            let Some(text) = m.as_text() else { continue };
            let v: Value = serde_json::from_str(text).unwrap();
            match v["type"].as_str() {
                Some("msg") => {
                    let key = (v["conv"].as_str().unwrap().to_owned(), seq(&v));
                    *self.pushes.entry(key).or_default() += 1;
                }
                Some("resync") => self.resyncs += 1,
                Some("goaway") => self.goaways += 1,
                _ => {}
            }
            return Frame::Json(v);
        }
    }

    /// Sends `frame` with a fresh id and returns the answer carrying it;
    /// `None` if the connection ended first. No answer within
    /// [`ANSWER_LIMIT`] fails the test (a hang).
    async fn request(&mut self, mut frame: Value) -> Option<Value> {
        self.req += 1;
        let id = format!("{}-{}", self.user, self.req);
        frame["id"] = json!(id);
        let ws = self.ws.as_mut()?;
        if ws.inner.send(Message::text(frame.to_string())).await.is_err() {
            self.ws = None;
            return None;
        }
        let sent = Instant::now();
        loop {
            match self.frame(ANSWER_LIMIT).await {
                Frame::Json(v) if v["id"] == id.as_str() => {
                    self.slowest = self.slowest.max(sent.elapsed());
                    return Some(v);
                }
                Frame::Json(_) => {}
                Frame::Timeout => panic!("{}: no answer to {frame} within 10 s", self.user),
                Frame::Gone => return None,
            }
        }
    }

    /// Sends until acknowledged: `unavailable` is retried, and a lost
    /// connection is replaced by one to another node, with the same cmid
    /// (a repeat returns the original ack). `target` is `{"to":…}` or
    /// `{"conv":…}`.
    pub async fn send(&mut self, target: &Value, cmid: &str) -> Acked {
        let started = Instant::now();
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{}: {cmid} never acknowledged",
                self.user
            );
            // Told to go away: the sends in flight were answered; the next
            // goes to another node.
            if self.ws.is_none() || self.goaways > self.moved {
                self.reconnect().await;
            }
            let mut f = json!({"type":"send","cmid":cmid,"body":cmid});
            for (k, v) in target.as_object().unwrap() {
                f[k] = v.clone();
            }
            let Some(answer) = self.request(f).await else {
                continue;
            };
            if answer["type"] == "ack" {
                return Acked {
                    conv: answer["conv"].as_str().unwrap().to_owned(),
                    seq: seq(&answer),
                    from: self.user.clone(),
                    cmid: cmid.to_owned(),
                    at: Instant::now(),
                };
            }
            assert_eq!(answer["code"], "unavailable", "{}: {answer}", self.user);
            self.unavailable += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Reads and records frames until `stop` says so; a lost connection or
    /// `goaway` moves to another node, `resync` syncs.
    pub async fn listen(&mut self, stop: &tokio::sync::watch::Receiver<bool>) {
        while !*stop.borrow() {
            match self.frame(Duration::from_millis(100)).await {
                Frame::Json(v) if v["type"] == "goaway" => self.reconnect().await,
                Frame::Json(v) if v["type"] == "resync" => self.catch_up().await,
                Frame::Json(_) | Frame::Timeout => {}
                Frame::Gone => self.reconnect().await,
            }
        }
    }

    /// Reads and records frames until none came for `quiet`.
    pub async fn drain(&mut self, quiet: Duration) {
        while let Frame::Json(_) = self.frame(quiet).await {}
    }

    /// Syncs every conversation of [`Peer::convs`] from the start, as a
    /// client does after a reconnect or a `resync`.
    pub async fn catch_up(&mut self) {
        for conv in self.convs.clone() {
            let mut after = 0;
            loop {
                let f = json!({"type":"sync","conv":conv,"after":after,"limit":500});
                let Some(page) = self.request(f).await else {
                    return; // gone again: the next reconnect syncs
                };
                if page["type"] == "error" {
                    assert_eq!(page["code"], "unavailable", "{}: {page}", self.user);
                    return;
                }
                let items = page["items"].as_array().unwrap();
                for m in items {
                    after = seq(m);
                    self.synced.insert((conv.clone(), after));
                }
                if page["more"] != true {
                    break;
                }
            }
        }
    }

    /// (conv, seq) pairs of `all` neither pushed nor synced.
    pub fn missing(&self, all: &[(String, u64)]) -> Vec<(String, u64)> {
        all.iter()
            .filter(|k| !self.pushes.contains_key(*k) && !self.synced.contains(*k))
            .cloned()
            .collect()
    }

    /// (conv, seq) pairs of `all` that were never pushed.
    pub fn unpushed(&self, all: &[(String, u64)]) -> Vec<(String, u64)> {
        all.iter()
            .filter(|k| !self.pushes.contains_key(*k))
            .cloned()
            .collect()
    }

    /// Pushes received more than once.
    pub fn duplicates(&self) -> usize {
        self.pushes.values().map(|n| n - 1).sum()
    }

    pub fn close(&mut self) {
        self.ws = None;
    }
}

fn seq(v: &Value) -> u64 {
    v["seq"].as_u64().unwrap()
}
