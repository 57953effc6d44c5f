//! Harness of the multi-process cluster tests: three `tern serve` processes
//! on one PostgreSQL schema and one Redis key prefix (both fresh per test),
//! optionally reached through TCP proxies the test controls, and
//! [`peer::Peer`], a WebSocket client that reconnects elsewhere when its
//! node goes away and records every push it gets.
#![allow(dead_code, clippy::unwrap_used)]

pub mod nginx;
pub mod peer;

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::proxy::Proxy;
use crate::common::{self, token, token_with, SECRET};

/// The services' URLs, or `None` (skip, with the reason printed) when they
/// are not set; with env CI set their absence fails the test.
pub fn services() -> Option<(String, String)> {
    let var = |k| std::env::var(k).ok().filter(|u: &String| !u.is_empty());
    match (var("TERN_TEST_POSTGRES_URL"), var("TERN_TEST_REDIS_URL")) {
        (Some(pg), Some(redis)) => Some((pg, redis)),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set: TERN_TEST_POSTGRES_URL and TERN_TEST_REDIS_URL must be set")
        }
        _ => {
            eprintln!("skipped: TERN_TEST_POSTGRES_URL and TERN_TEST_REDIS_URL are needed");
            None
        }
    }
}

/// `scheme://user@`, `host:port`, and the rest (`/db?query`) of a URL.
fn split_url(url: &str) -> (String, String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (user, host) = match authority.rfind('@') {
        Some(i) => (&authority[..=i], &authority[i + 1..]),
        None => ("", authority),
    };
    (format!("{scheme}://{user}"), host.to_owned(), tail.to_owned())
}

/// The address a URL points at (`default_port` when it names none).
fn upstream(url: &str, default_port: u16) -> SocketAddr {
    let (_, host, _) = split_url(url);
    let host = if host.contains(':') {
        host
    } else {
        format!("{host}:{default_port}")
    };
    host.to_socket_addrs().unwrap().next().unwrap()
}

/// `url` pointed at `addr` instead.
fn via(url: &str, addr: SocketAddr) -> String {
    let (head, _, tail) = split_url(url);
    format!("{head}{addr}{tail}")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An admin token minted with the shared secret.
pub fn admin() -> String {
    token_with(
        json!({"sub":"root1","exp":common::now_s() + 600,"role":"admin"}),
        SECRET,
    )
}

/// How a test wants its cluster.
#[derive(Default)]
pub struct Opts {
    /// Redis through a proxy the test controls.
    pub redis_proxy: bool,
    /// PostgreSQL through a proxy the test controls.
    pub db_proxy: bool,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub redis_proxy: Option<Proxy>,
    pub db_proxy: Option<Proxy>,
    db_url: String,
    redis_url: String,
    prefix: String,
    schema: String,
    pg_url: String,
}

pub struct Node {
    pub id: String,
    pub addr: SocketAddr,
    pub child: Option<Child>,
    /// Kept for the node's life (its generated files live there).
    _data: tempfile::TempDir,
}

impl Node {
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

impl Drop for Node {
    /// A failed test must not leave its servers running.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Cluster {
    /// `n` nodes `n1..`, every one listed in every registry; `None` (skip)
    /// without the services.
    pub async fn start(n: usize, opts: Opts) -> Option<Self> {
        let (pg, redis) = services()?;
        let schema = format!("cp_{}", ulid::Ulid::new().to_string().to_lowercase());
        tern_store::open_postgres_in_schema(&pg, &schema, Default::default())
            .await
            .unwrap()
            .close()
            .await;
        let db_proxy = match opts.db_proxy {
            true => Some(Proxy::start(upstream(&pg, 5432)).await),
            false => None,
        };
        let redis_proxy = match opts.redis_proxy {
            true => Some(Proxy::start(upstream(&redis, 6379)).await),
            false => None,
        };
        let db = match &db_proxy {
            Some(p) => via(&pg, p.addr),
            None => pg.clone(),
        };
        let sep = if db.contains('?') { '&' } else { '?' };
        let mut c = Self {
            db_url: format!("{db}{sep}options=-c%20search_path%3D{schema}"),
            redis_url: match &redis_proxy {
                Some(p) => via(&redis, p.addr),
                None => redis,
            },
            prefix: format!("tern-cp-{}:", ulid::Ulid::new()),
            schema,
            pg_url: pg,
            nodes: Vec::new(),
            redis_proxy,
            db_proxy,
        };
        // Started together, then awaited: the nodes boot in parallel.
        c.nodes = (1..=n).map(|i| c.spawn(&format!("n{i}"))).collect();
        for node in &c.nodes {
            wait_status(node.addr, "/readyz", 200, Duration::from_secs(40)).await;
        }
        let all: Vec<String> = c.nodes.iter().map(|n| n.id.clone()).collect();
        for i in 0..n {
            c.wait_registry(i, &all).await;
        }
        Some(c)
    }

    fn spawn(&self, id: &str) -> Node {
        let data = tempfile::tempdir().unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tern"))
            .args(["serve", "--http", &addr.to_string(), "--tcp", "off"])
            .args(["--jwt-secret", SECRET, "--node-id", id])
            .args(["--database-url", &self.db_url])
            .args(["--redis-url", &self.redis_url])
            .arg("--data")
            .arg(data.path())
            .env("TERN_CLUSTER_KEY_PREFIX", &self.prefix)
            .env("TERN_CLUSTER_HEARTBEAT_MS", "300")
            .env("TERN_CLUSTER_NODE_TTL_MS", "1500")
            .env("TERN_HTTP_DRAIN_GRACE_MS", "0")
            .env("TERN_LIMITS_DRAIN_TIMEOUT_MS", "2000")
            .env("TERN_LIMITS_SEND_RATE", "10000")
            .env("TERN_LIMITS_SEND_BURST", "10000")
            .env("TERN_STORE_OP_TIMEOUT_MS", "1500")
            .env(
                "TERN_LOG_FILTER",
                std::env::var("TEST_NODE_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Node {
            id: id.into(),
            addr,
            child: Some(child),
            _data: data,
        }
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::url).collect()
    }

    /// The ids in node `via`'s view of the registry (`/admin/stats`).
    pub async fn node_ids(&self, via: usize) -> Vec<String> {
        let (_, stats) = common::http(
            self.nodes[via].addr,
            "GET",
            "/api/v1/admin/stats",
            Some(&admin()),
            None,
        )
        .await;
        let mut ids: Vec<String> = stats["nodes"]
            .as_array()
            .map(|a| a.iter().filter_map(|n| n["id"].as_str()).map(str::to_owned))
            .into_iter()
            .flatten()
            .collect();
        ids.sort();
        ids
    }

    /// Waits until node `via` lists exactly `want` (sorted ids); returns
    /// how long it took.
    pub async fn wait_registry(&self, via: usize, want: &[String]) -> Duration {
        let started = Instant::now();
        loop {
            let ids = self.node_ids(via).await;
            if ids == want {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "registry on {}: {ids:?}, want {want:?}",
                self.nodes[via].id
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether node `via` sees `user` online (on any node).
    pub async fn online(&self, via: usize, user: &str) -> bool {
        let (_, p) = common::http(
            self.nodes[via].addr,
            "GET",
            &format!("/api/v1/users/{user}/presence"),
            Some(&token("observer")),
            None,
        )
        .await;
        p["online"] == true
    }

    /// Waits until node `via` sees `user` as `online`; returns how long.
    pub async fn wait_online(&self, via: usize, user: &str, online: bool) -> Duration {
        let started = Instant::now();
        while self.online(via, user).await != online {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{} never saw {user} online={online}",
                self.nodes[via].id
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        started.elapsed()
    }

    /// Waits until every node knows every session opened so far: a marker
    /// user connects to each node last, and each other node must see it.
    /// Presence changes of one node are applied in order elsewhere, so a
    /// node that sees the marker has applied the sessions before it.
    pub async fn settle(&self, tag: &str) -> Vec<peer::Peer> {
        let mut markers = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if node.child.is_none() {
                continue;
            }
            let user = format!("mark{tag}{i}");
            markers.push(peer::Peer::connect(&user, vec![node.url()]).await);
            for (j, other) in self.nodes.iter().enumerate() {
                if j != i && other.child.is_some() {
                    self.wait_online(j, &user, true).await;
                }
            }
        }
        markers
    }

    /// Creates a group on node `via` and waits until every live node knows
    /// it (a member's `sync` there stops answering `not_found`).
    pub async fn group(&self, via: usize, owner: &str, members: &[&str]) -> String {
        let (status, group) = common::http(
            self.nodes[via].addr,
            "POST",
            "/api/v1/groups",
            Some(&token(owner)),
            Some(json!({"name":"g","members":members})),
        )
        .await;
        assert_eq!(status, 201, "{group}");
        let conv = format!("g:{}", group["id"].as_str().unwrap());
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            let started = Instant::now();
            loop {
                let (status, page) = common::http(
                    node.addr,
                    "GET",
                    &format!("/api/v1/conversations/{conv}/messages?limit=1"),
                    Some(&token(owner)),
                    None,
                )
                .await;
                if status == 200 {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "{} never learned {conv}: {status} {page}",
                    node.id
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        conv
    }

    /// Sends `sig` (`-KILL`, `-TERM`) to node `i`.
    pub fn signal(&self, i: usize, sig: &str) {
        let pid = self.nodes[i].child.as_ref().unwrap().id();
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    /// Waits for node `i` to exit (`limit`); its exit status.
    pub async fn wait_exit(&mut self, i: usize, limit: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        let mut child = self.nodes[i].child.take().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                panic!("{} did not exit within {limit:?}", self.nodes[i].id);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = tern_store::PostgresStore::drop_schema(&self.pg_url, &self.schema).await;
    }
}

/// Waits until `path` on `addr` answers `status`; returns how long.
pub async fn wait_status(addr: SocketAddr, path: &str, status: u16, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let got = common::try_http(addr, "GET", path).await;
        if got == Some(status) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{addr}{path}: {got:?}, want {status} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The whole history of `conv`, read on node `addr` as `user`.
pub async fn history(addr: SocketAddr, user: &str, conv: &str) -> Vec<Value> {
    let mut items: Vec<Value> = Vec::new();
    loop {
        let after = items.last().map_or(0, |m| m["seq"].as_u64().unwrap());
        let (status, page) = common::http(
            addr,
            "GET",
            &format!("/api/v1/conversations/{conv}/messages?after={after}&limit=500"),
            Some(&token(user)),
            None,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        if page["more"] != true {
            return items;
        }
    }
}

/// Checks a conversation's history: seq 1..N without a gap, every cmid of
/// a sender stored once, every acked message stored with its acked seq.
/// Returns N.
pub fn check_history(conv: &str, items: &[Value], acked: &[peer::Acked]) -> u64 {
    let seqs: Vec<u64> = items.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    let want: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, want, "{conv}: seq 1..N without gap");
    let mut cmids = std::collections::HashMap::new();
    for m in items {
        let key = (
            m["from"].as_str().unwrap().to_owned(),
            m["cmid"].as_str().unwrap_or("").to_owned(),
        );
        let seq = m["seq"].as_u64().unwrap();
        if let Some(first) = cmids.insert(key.clone(), seq) {
            panic!("{conv}: {key:?} stored twice (seq {first} and {seq})");
        }
    }
    let mut missing = Vec::new();
    for a in acked.iter().filter(|a| a.conv == conv) {
        match cmids.get(&(a.from.clone(), a.cmid.clone())) {
            Some(seq) if *seq == a.seq => {}
            other => missing.push(format!("{} acked seq {} stored {other:?}", a.cmid, a.seq)),
        }
    }
    assert!(missing.is_empty(), "{conv}: acked but not stored: {missing:?}");
    seqs.len() as u64
}
