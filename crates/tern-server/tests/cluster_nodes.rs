//! Three `tern serve` processes on one PostgreSQL (a fresh schema per test)
//! and one Redis (a fresh key prefix per test): cross-node messaging,
//! receipts, typing, presence, bans and group removals; concurrent senders
//! on every node; a node killed with -9 and one drained with SIGTERM; Redis
//! cut off and back (resync).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{token, token_with, Ws, SECRET};
use futures_util::StreamExt;
use serde_json::{json, Value};

/// The services, or `None` (skip) when their URLs are not set.
fn services() -> Option<(String, String)> {
    let pg = std::env::var("TERN_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let redis = std::env::var("TERN_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty());
    match (pg, redis) {
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

struct Cluster {
    nodes: Vec<Node>,
    db_url: String,
    redis_url: String,
    prefix: String,
    schema: String,
    pg_url: String,
    /// Extra environment of every node.
    env: Vec<(&'static str, &'static str)>,
}

struct Node {
    id: String,
    addr: SocketAddr,
    child: Option<Child>,
    /// Kept for the node's life (its generated files live there).
    _data: tempfile::TempDir,
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    async fn start(n: usize, redis_url: Option<String>) -> Option<Self> {
        Self::start_with(n, redis_url, &[]).await
    }

    /// Like [`Cluster::start`], with more environment for every node.
    async fn start_with(
        n: usize,
        redis_url: Option<String>,
        env: &[(&'static str, &'static str)],
    ) -> Option<Self> {
        Self::start_via(n, redis_url, None, env).await
    }

    /// Like [`Cluster::start_with`]; the nodes reach PostgreSQL through
    /// `pg_via` (a proxy's address) when given.
    async fn start_via(
        n: usize,
        redis_url: Option<String>,
        pg_via: Option<SocketAddr>,
        env: &[(&'static str, &'static str)],
    ) -> Option<Self> {
        let (pg, redis) = services()?;
        let schema = format!("c_{}", ulid::Ulid::new().to_string().to_lowercase());
        tern_store::open_postgres_in_schema(&pg, &schema, Default::default())
            .await
            .unwrap()
            .close()
            .await;
        let base = match pg_via {
            // postgres://user@host:port/db with the proxy as host:port.
            Some(via) => {
                let (user, rest) = pg.split_once('@').unwrap();
                let db = rest.split_once('/').map_or("test", |(_, d)| d);
                format!("{user}@{via}/{db}")
            }
            None => pg.clone(),
        };
        let db_url = format!("{base}?options=-c%20search_path%3D{schema}");
        let mut c = Self {
            nodes: Vec::new(),
            db_url,
            redis_url: redis_url.unwrap_or(redis),
            prefix: format!("tern-test-{}:", ulid::Ulid::new()),
            schema,
            pg_url: pg,
            env: env.to_vec(),
        };
        for i in 0..n {
            let node = c.spawn(&format!("n{i}")).await;
            c.nodes.push(node);
        }
        // Every node sees every other before the test starts.
        c.wait_for_nodes(n).await;
        Some(c)
    }

    async fn spawn(&self, id: &str) -> Node {
        let data = tempfile::tempdir().unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tern"))
            .args(["serve", "--http", &addr.to_string(), "--tcp", "off"])
            .args(["--jwt-secret", SECRET, "--node-id", id])
            .args([
                "--database-url",
                &self.db_url,
                "--redis-url",
                &self.redis_url,
            ])
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
                std::env::var("TEST_NODE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(self.env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let started = Instant::now();
        loop {
            if common::try_http(addr, "GET", "/readyz").await == Some(200) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{id} did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Node {
            id: id.into(),
            addr,
            child: Some(child),
            _data: data,
        }
    }

    /// Waits until node 0's registry lists `n` nodes.
    async fn wait_for_nodes(&self, n: usize) {
        let started = Instant::now();
        loop {
            let live = self.node_ids(0).await;
            if live.len() == n {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "nodes: {live:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn node_ids(&self, via: usize) -> Vec<String> {
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
            .map(|a| {
                a.iter()
                    .map(|n| n["id"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    async fn ws(&self, node: usize, user: &str) -> Ws {
        let url = format!("ws://{}/ws", self.nodes[node].addr);
        let mut ws = Ws::open(&url, Some(&token(user))).await;
        assert_eq!(ws.recv().await["type"], "auth_ok");
        ws
    }

    fn signal(&self, node: usize, sig: &str) {
        let pid = self.nodes[node].child.as_ref().unwrap().id();
        assert!(Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success());
    }

    async fn stop(mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = tern_store::PostgresStore::drop_schema(&self.pg_url, &self.schema).await;
    }
}

fn admin() -> String {
    token_with(
        json!({"sub":"root1","exp":common::now_s() + 600,"role":"admin"}),
        SECRET,
    )
}

/// Waits until node `via` sees `user` online (the presence directory has
/// replicated its session on another node).
async fn wait_online(c: &Cluster, via: usize, user: &str) {
    let started = Instant::now();
    loop {
        let (_, p) = common::http(
            c.nodes[via].addr,
            "GET",
            &format!("/api/v1/users/{user}/presence"),
            Some(&token("observer")),
            None,
        )
        .await;
        if p["online"] == true {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{user} not seen: {p}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads frames until one of `ty` arrives (5 s).
async fn expect(ws: &mut Ws, ty: &str) -> Value {
    ws.recv_type(ty).await
}

/// A send; the ack (or error) frame.
async fn send(ws: &mut Ws, id: &str, target: Value, body: &str) -> Value {
    let mut f = json!({"type":"send","id":id,"cmid":id,"body":body});
    for (k, v) in target.as_object().unwrap() {
        f[k] = v.clone();
    }
    ws.request(f).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_on_different_nodes_chat_as_on_one() {
    let Some(c) = Cluster::start(3, None).await else {
        return;
    };
    let mut alice = c.ws(0, "alice").await;
    let mut bob = c.ws(1, "bob").await;
    let mut carol = c.ws(2, "carol").await;
    // Presence across nodes (bob is on node 1, alice watches from node 0).
    // bob's arrival reaches node 0 within a presence flush or so.
    let started = Instant::now();
    let presence = loop {
        let p = alice
            .request(json!({"type":"presence_sub","id":"p","users":["bob","dave"]}))
            .await;
        if p["items"][0]["online"] == true || started.elapsed() > Duration::from_secs(5) {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(presence["items"][0]["online"], true, "{presence}");
    assert_eq!(presence["items"][1]["online"], false, "{presence}");

    let ack = send(&mut alice, "a1", json!({"to":"bob"}), "hi bob").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let msg = expect(&mut bob, "msg").await;
    assert_eq!(
        (msg["body"].as_str(), &msg["seq"]),
        (Some("hi bob"), &ack["seq"])
    );
    // Receipt and typing back to node 0.
    bob.request(json!({"type":"read","id":"r","conv":"d:alice:bob","seq":1}))
        .await;
    assert_eq!(expect(&mut alice, "receipt").await["user"], "bob");
    bob.send(json!({"type":"typing","conv":"d:alice:bob"}))
        .await;
    assert_eq!(expect(&mut alice, "typing").await["user"], "bob");

    // A group spread over the three nodes.
    let (status, group) = common::http(
        c.nodes[0].addr,
        "POST",
        "/api/v1/groups",
        Some(&token("alice")),
        Some(json!({"name":"team","members":["bob","carol"]})),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    let conv = format!("g:{}", group["id"].as_str().unwrap());
    expect(&mut carol, "group").await;
    send(&mut bob, "b1", json!({"conv":conv}), "hello team").await;
    assert_eq!(expect(&mut carol, "msg").await["body"], "hello team");
    assert_eq!(expect(&mut alice, "msg").await["body"], "hello team");

    // carol is removed on node 0: node 2 must not push to her any more.
    let (status, _) = common::http(
        c.nodes[0].addr,
        "DELETE",
        &format!(
            "/api/v1/groups/{}/members/carol",
            group["id"].as_str().unwrap()
        ),
        Some(&token("alice")),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(expect(&mut carol, "group").await["event"], "member_removed");
    send(&mut bob, "b2", json!({"conv":conv}), "after carol left").await;
    assert_eq!(expect(&mut alice, "msg").await["body"], "after carol left");
    carol.expect_silence(Duration::from_millis(500)).await;

    // A ban on node 0 closes bob's session on node 1 (4011).
    let (status, _) = common::http(
        c.nodes[0].addr,
        "POST",
        "/api/v1/admin/users/bob/ban",
        Some(&admin()),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(bob.expect_close().await.0, 4011);
    // And presence tells alice on node 0.
    let gone = expect(&mut alice, "presence").await;
    assert_eq!(gone["items"][0]["online"], false, "{gone}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_on_every_node_keep_one_gap_free_sequence() {
    let Some(c) = Cluster::start(3, None).await else {
        return;
    };
    let mut senders = Vec::new();
    for i in 0..3 {
        senders.push(c.ws(i, &format!("sender{i}")).await);
    }
    let (status, group) = common::http(
        c.nodes[0].addr,
        "POST",
        "/api/v1/groups",
        Some(&token("sender0")),
        Some(json!({"name":"load","members":["sender1","sender2"]})),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    let conv = format!("g:{}", group["id"].as_str().unwrap());
    let mut readers = Vec::new();
    for i in 0..3 {
        readers.push(c.ws(i, &format!("sender{i}")).await);
    }
    const EACH: usize = 40;
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| {
            let conv = conv.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for k in 0..EACH {
                    let id = format!("s{i}-{k}");
                    let ack = send(&mut ws, &id, json!({"conv":conv}), &id).await;
                    assert_eq!(ack["type"], "ack", "{ack}");
                    seqs.push(ack["seq"].as_u64().unwrap());
                }
                seqs
            })
        })
        .collect();
    let mut acked = BTreeSet::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    let total = 3 * EACH as u64;
    assert_eq!(acked, (1..=total).collect(), "gap-free and unique seqs");
    // Every member (a second session of each, on its own node) receives
    // every message of the others; duplicates are counted.
    for (i, reader) in readers.iter_mut().enumerate() {
        let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
        let want = total - EACH as u64; // the others' messages; own ones too (other session)
        let deadline = Instant::now() + Duration::from_secs(20);
        while (seen.len() as u64) < total && Instant::now() < deadline {
            let Ok(Some(Ok(m))) =
                tokio::time::timeout(Duration::from_secs(2), reader.inner.next()).await
            else {
                break;
            };
            if let Some(t) = m.as_text() {
                let f: Value = serde_json::from_str(t).unwrap();
                if f["type"] == "msg" {
                    *seen.entry(f["seq"].as_u64().unwrap()).or_default() += 1;
                }
            }
        }
        let dups: usize = seen.values().map(|n| n - 1).sum();
        assert!(
            seen.len() as u64 >= want && seen.len() as u64 == total,
            "reader {i}: {} of {total} messages, {dups} duplicates",
            seen.len()
        );
        assert_eq!(dups, 0, "reader {i}: duplicate pushes");
    }
    c.stop().await;
}

/// Sends until acked within `limit`, retrying the same cmid (idempotent).
async fn send_until_acked(ws: &mut Ws, id: &str, to: &str) -> Option<u64> {
    let ack = send(ws, id, json!({"to":to}), id).await;
    if ack["type"] != "ack" {
        eprintln!("not acked: {ack}");
    }
    (ack["type"] == "ack").then(|| ack["seq"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_and_a_drained_node_lose_nothing_acked() {
    let Some(mut c) = Cluster::start(3, None).await else {
        return;
    };
    // zoe exists (provisioned by her first connect) and reads at the end.
    drop(c.ws(0, "zoe").await);
    let mut watcher = c.ws(0, "watcher").await;
    watcher
        .request(json!({"type":"presence_sub","id":"w","users":["vic"]}))
        .await;
    let mut acked = Vec::new();
    for (victim, how) in [(1usize, "-KILL"), (2usize, "-TERM")] {
        let mut sender = c.ws(victim, "vic").await;
        for k in 0..10 {
            let id = format!("{how}-{k}");
            if let Some(seq) = send_until_acked(&mut sender, &id, "zoe").await {
                acked.push(seq);
            }
        }
        c.signal(victim, how);
        if how == "-TERM" {
            assert_eq!(expect(&mut sender, "goaway").await["type"], "goaway");
            let status = c.nodes[victim].child.as_mut().unwrap().wait().unwrap();
            assert!(status.success(), "drained node exit: {status:?}");
        }
        // The client reconnects to a surviving node and carries on.
        let mut moved = c.ws(0, "vic").await;
        let id = format!("{how}-after");
        acked.push(send_until_acked(&mut moved, &id, "zoe").await.unwrap());
        drop(moved);
        // The node leaves the registry within the TTL (plus heartbeats).
        let started = Instant::now();
        loop {
            let ids = c.node_ids(0).await;
            if !ids.contains(&c.nodes[victim].id) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{how}: still {ids:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Nothing acked is missing: zoe, on the last node, reads it all.
    let mut zoe = c.ws(0, "zoe").await;
    let page = zoe
        .request(json!({"type":"sync","id":"h","conv":"d:vic:zoe","after":0,"limit":500}))
        .await;
    let stored: BTreeSet<u64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    for seq in &acked {
        assert!(stored.contains(seq), "acked {seq} missing: {stored:?}");
    }
    assert_eq!(stored, (1..=stored.len() as u64).collect(), "gap-free");
    // The watcher saw vic go offline at the end (the dead node's entries
    // lapsed; the drained node left).
    drop(watcher);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cut_off_and_back_resyncs_and_delivers_again() {
    let Some((_, redis)) = services() else { return };
    let upstream: SocketAddr = redis
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|_| "127.0.0.1:6379".parse().unwrap());
    let proxy = common::proxy::Proxy::start(upstream).await;
    // A long resync delay: both nodes' losses must give one resync.
    let Some(c) = Cluster::start_with(
        2,
        Some(format!("redis://{}", proxy.addr)),
        &[("TERN_CLUSTER_RESYNC_DELAY_MS", "2500")],
    )
    .await
    else {
        return;
    };
    let mut alice = c.ws(0, "alice").await;
    let mut bob = c.ws(1, "bob").await;
    let mut eve = c.ws(1, "eve").await;
    wait_online(&c, 0, "bob").await;
    send(&mut alice, "x1", json!({"to":"bob"}), "before").await;
    assert_eq!(expect(&mut bob, "msg").await["body"], "before");

    proxy.set(common::proxy::CUT);
    // While Redis is unreachable: readyz 503, local work goes on.
    let started = Instant::now();
    loop {
        if common::try_http(c.nodes[0].addr, "GET", "/readyz").await == Some(503) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "readyz stays 200"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let during = send(&mut alice, "x2", json!({"to":"bob"}), "during").await;
    assert_eq!(
        during["type"], "ack",
        "sends are stored while Redis is down: {during}"
    );
    // A ban made on node 0 cannot reach node 1 now...
    let (status, _) = common::http(
        c.nodes[0].addr,
        "POST",
        "/api/v1/admin/users/eve/ban",
        Some(&admin()),
        None,
    )
    .await;
    assert_eq!(status, 204);

    proxy.set(common::proxy::PASS);
    // ...but node 1 reloads the bans when Redis is back and closes eve.
    let (code, _) = eve.expect_close().await;
    assert_eq!(code, 4011, "eve, banned during the outage");
    // Back by itself: both sessions are told to resync, once however many
    // nodes reported a loss, and catch up.
    assert_eq!(expect(&mut bob, "resync").await["type"], "resync");
    let mut more = 0;
    let window = Instant::now();
    while let Ok(Some(Ok(m))) =
        tokio::time::timeout(Duration::from_millis(3000), bob.inner.next()).await
    {
        if m.as_text().is_some_and(|t| t.contains("\"resync\"")) {
            more += 1;
        }
        if window.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    assert_eq!(more, 0, "one resync after one outage");
    let page = bob
        .request(json!({"type":"sync","id":"s","conv":"d:alice:bob","after":1}))
        .await;
    assert_eq!(page["items"][0]["body"], "during", "{page}");
    let started = Instant::now();
    while common::try_http(c.nodes[0].addr, "GET", "/readyz").await != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "readyz stays 503"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    send(&mut alice, "x3", json!({"to":"bob"}), "after").await;
    assert_eq!(expect(&mut bob, "msg").await["body"], "after");
    c.stop().await;
}

/// PostgreSQL cut off from every node during traffic: sends answer
/// `unavailable` in bounded time, `/readyz` is 503, nothing hangs; once the
/// database is back the nodes recover by themselves, cross-node delivery
/// works again, and every acked message is in history once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_off_from_the_cluster_and_back() {
    let Some((pg, _)) = services() else { return };
    let upstream: SocketAddr = pg
        .split_once('@')
        .and_then(|(_, r)| r.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| "127.0.0.1:5432".parse().unwrap());
    let proxy = common::proxy::Proxy::start(upstream).await;
    let Some(c) = Cluster::start_via(2, None, Some(proxy.addr), &[]).await else {
        return;
    };
    let mut alice = c.ws(0, "alice").await;
    let mut bob = c.ws(1, "bob").await;
    wait_online(&c, 0, "bob").await;
    let mut acked = Vec::new();
    for i in 0..3 {
        let ack = send(&mut alice, &format!("p{i}"), json!({"to":"bob"}), "before").await;
        acked.push(ack["seq"].as_u64().unwrap());
        expect(&mut bob, "msg").await;
    }

    proxy.set(common::proxy::CUT);
    let started = Instant::now();
    let f = send(&mut alice, "cut", json!({"to":"bob"}), "during").await;
    assert_eq!(f["code"], "unavailable", "{f}");
    assert!(started.elapsed() < Duration::from_secs(8), "hung");
    for node in &c.nodes {
        let started = Instant::now();
        while common::try_http(node.addr, "GET", "/readyz").await != Some(503) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{} ready",
                node.id
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    proxy.set(common::proxy::PASS);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let f = send(
            &mut alice,
            &format!("r{attempt}"),
            json!({"to":"bob"}),
            "after",
        )
        .await;
        if f["type"] == "ack" {
            acked.push(f["seq"].as_u64().unwrap());
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {f}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(expect(&mut bob, "msg").await["body"], "after");
    for node in &c.nodes {
        let started = Instant::now();
        while common::try_http(node.addr, "GET", "/readyz").await != Some(200) {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{} not ready",
                node.id
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let page = bob
        .request(json!({"type":"sync","id":"h","conv":"d:alice:bob","after":0}))
        .await;
    let seqs: Vec<u64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    for seq in &acked {
        assert!(seqs.contains(seq), "acked {seq} missing: {seqs:?}");
    }
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "gap-free"
    );
    c.stop().await;
}

/// A group change returns only once every node applied it: a member added
/// on node 0 can write on node 1 at once, and a member removed on node 0
/// neither writes on node 1 nor gets a later message there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_changes_are_in_effect_on_every_node_when_they_return() {
    let Some(c) = Cluster::start(2, None).await else {
        return;
    };
    let mut bob = c.ws(1, "bob").await;
    // bob's second device, on the same node, only listens.
    let mut bob_reader = c.ws(1, "bob").await;
    let mut alice = c.ws(0, "alice").await;
    let owner = token("alice");
    for round in 0..15 {
        let (status, group) = common::http(
            c.nodes[0].addr,
            "POST",
            "/api/v1/groups",
            Some(&owner),
            Some(json!({"name":format!("g{round}"),"members":["bob"]})),
        )
        .await;
        assert_eq!(status, 201, "{group}");
        let conv = format!("g:{}", group["id"].as_str().unwrap());
        // At once, on the other node: bob is a member there.
        let ack = send(&mut bob, &format!("b{round}"), json!({"conv":conv}), "hi").await;
        assert_eq!(ack["type"], "ack", "round {round}: {ack}");
        let (status, _) = common::http(
            c.nodes[0].addr,
            "DELETE",
            &format!(
                "/api/v1/groups/{}/members/bob",
                group["id"].as_str().unwrap()
            ),
            Some(&owner),
            None,
        )
        .await;
        assert_eq!(status, 204);
        // At once: bob can no longer write there...
        let refused = send(&mut bob, &format!("c{round}"), json!({"conv":conv}), "x").await;
        assert_eq!(refused["code"], "forbidden", "round {round}: {refused}");
        // ...and a message sent next never reaches him.
        let ack = send(
            &mut alice,
            &format!("a{round}"),
            json!({"conv":conv}),
            "secret",
        )
        .await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
    // Everything bob's other device got: no "secret".
    let mut leaked = Vec::new();
    while let Ok(Some(Ok(m))) =
        tokio::time::timeout(Duration::from_millis(500), bob_reader.inner.next()).await
    {
        if let Some(t) = m.as_text() {
            let f: Value = serde_json::from_str(t).unwrap();
            if f["type"] == "msg" && f["body"] == "secret" {
                leaked.push(f);
            }
        }
    }
    assert!(leaked.is_empty(), "pushes after removal: {leaked:?}");
    c.stop().await;
}

/// The nginx configuration of docs/cluster.md, run for real in front of two
/// nodes: clients connect and chat through it, and the nodes see the real
/// client address (X-Forwarded-For from a trusted proxy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_nginx_configuration_works() {
    let nginx = std::path::Path::new("/usr/sbin/nginx");
    if !nginx.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but nginx is not installed"
        );
        eprintln!("skipped: nginx is not installed (apt-get install nginx-light)");
        return;
    }
    let Some(c) = Cluster::start_with(
        2,
        None,
        &[
            ("TERN_HTTP_TRUSTED_PROXIES", "127.0.0.1"),
            ("TERN_LIMITS_LOGIN_PER_IP_PER_MIN", "2"),
        ],
    )
    .await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let doc = include_str!("../../../docs/cluster.md");
    let snippet = doc
        .split("```nginx\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    let mut servers = c
        .nodes
        .iter()
        .map(|n| format!("server {} max_fails=2 fail_timeout=5s;", n.addr));
    let mut conf = String::new();
    for line in snippet.lines() {
        let t = line.trim();
        if t.starts_with("server 10.0.0.") {
            if let Some(s) = servers.next() {
                conf.push_str(&format!("    {s}\n"));
            }
        } else if t == "listen 80;" {
            conf.push_str(&format!("    listen 127.0.0.1:{port};\n"));
        } else {
            conf.push_str(line);
            conf.push('\n');
        }
    }
    let p = dir.path().display();
    let full = format!(
        "pid {p}/nginx.pid;\nerror_log {p}/error.log;\nevents {{ worker_connections 256; }}\n\
         http {{\n access_log off;\n client_body_temp_path {p}/body;\n proxy_temp_path {p}/proxy;\n\
         fastcgi_temp_path {p}/fcgi;\n uwsgi_temp_path {p}/uwsgi;\n scgi_temp_path {p}/scgi;\n{conf}}}\n"
    );
    std::fs::write(dir.path().join("nginx.conf"), full).unwrap();
    let mut proc = Command::new(nginx)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .args(["-g", "daemon off; master_process off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let front: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let started = Instant::now();
    while common::try_http(front, "GET", "/readyz").await != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nginx did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Two clients through nginx chat (they may land on either node).
    let url = format!("ws://{front}/ws");
    let mut alice = Ws::open(&url, Some(&token("alice"))).await;
    assert_eq!(alice.recv().await["type"], "auth_ok");
    let mut bob = Ws::open(&url, Some(&token("bob"))).await;
    assert_eq!(bob.recv().await["type"], "auth_ok");
    for n in 0..2 {
        wait_online(&c, n, "bob").await;
    }
    send(&mut alice, "n1", json!({"to":"bob"}), "through nginx").await;
    assert_eq!(expect(&mut bob, "msg").await["body"], "through nginx");
    // The nodes limit logins by the client's address, not nginx's: a third
    // attempt from 127.0.0.2 is refused, another client still gets through.
    let login_from = |source: &'static str| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        let mut s = socket.connect(front).await.unwrap();
        let body = json!({"username":"nobody","password":"wrong-password"}).to_string();
        let req = format!(
            "POST /api/v1/login HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        String::from_utf8_lossy(&out)
            .split(' ')
            .nth(1)
            .unwrap_or("0")
            .to_owned()
    };
    // Each node counts on its own: two attempts per node may pass.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(login_from("127.0.0.2").await);
    }
    assert!(statuses.contains(&"429".to_owned()), "{statuses:?}");
    assert_eq!(login_from("127.0.0.3").await, "401");
    let _ = proc.kill();
    let _ = proc.wait();
    c.stop().await;
}
