//! Three `tern serve` processes on one PostgreSQL (a fresh schema per test)
//! and one Redis (a fresh key prefix per test), under concurrent traffic:
//! senders on every node into one direct conversation and one group (each
//! message stored once, gap-free, pushed once to every other session); a
//! node killed with -9 and another drained with SIGTERM mid-traffic, their
//! clients moving through nginx configured as docs/cluster.md shows; Redis
//! and PostgreSQL cut off through proxies and back. Nothing acknowledged may
//! be lost, and every client ends up with every message.
#![allow(clippy::unwrap_used)]

mod cluster;
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::nginx::Nginx;
use cluster::peer::{Acked, Frame, Peer};
use cluster::{check_history, history, wait_status, Cluster, Opts};
use common::proxy::{CUT, PASS};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Pause between two sends of one sender.
const PACE: Duration = Duration::from_millis(15);

/// Senders and listeners running in their own tasks.
struct Traffic {
    acked: Arc<AtomicUsize>,
    stop_senders: watch::Sender<bool>,
    stop_listeners: watch::Sender<bool>,
    senders: Vec<JoinHandle<(Peer, Vec<Acked>)>>,
    listeners: Vec<JoinHandle<Peer>>,
}

impl Traffic {
    fn new() -> Self {
        Self {
            acked: Arc::default(),
            stop_senders: watch::channel(false).0,
            stop_listeners: watch::channel(false).0,
            senders: Vec::new(),
            listeners: Vec::new(),
        }
    }

    /// `peer` sends to `targets` in turn, `count` messages or until stopped.
    fn sender(&mut self, mut peer: Peer, targets: Vec<Value>, count: Option<usize>) {
        let (acked, stop) = (self.acked.clone(), self.stop_senders.subscribe());
        self.senders.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for k in 0..count.unwrap_or(usize::MAX) {
                if *stop.borrow() {
                    break;
                }
                let cmid = format!("{}-{k}", peer.user);
                out.push(peer.send(&targets[k % targets.len()], &cmid).await);
                acked.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(PACE).await;
            }
            (peer, out)
        }));
    }

    /// `peer` reads (moving and catching up as needed) until stopped.
    fn listener(&mut self, mut peer: Peer) {
        let stop = self.stop_listeners.subscribe();
        self.listeners.push(tokio::spawn(async move {
            peer.listen(&stop).await;
            peer
        }));
    }

    /// Waits until `more` further sends are acknowledged after `from`.
    async fn wait_acks(&self, from: usize, more: usize, why: &str) -> usize {
        let started = Instant::now();
        loop {
            let now = self.acked.load(Ordering::SeqCst);
            if now >= from + more {
                return now;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{why}: only {} of {more} sends acknowledged",
                now - from
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn acked(&self) -> usize {
        self.acked.load(Ordering::SeqCst)
    }

    /// Stops the senders, lets the pushes arrive, stops the listeners.
    async fn finish(self) -> (Vec<Peer>, Vec<Acked>, Vec<Peer>) {
        let _ = self.stop_senders.send(true);
        let (mut senders, mut acked) = (Vec::new(), Vec::new());
        for t in self.senders {
            let (peer, a) = t.await.unwrap();
            senders.push(peer);
            acked.extend(a);
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let _ = self.stop_listeners.send(true);
        let mut listeners = Vec::new();
        for t in self.listeners {
            let mut peer = t.await.unwrap();
            peer.drain(Duration::from_millis(300)).await;
            listeners.push(peer);
        }
        (senders, acked, listeners)
    }
}

/// Every (conv, seq) of `convs`, read from node `via` as `user`, after
/// checking each history against `acked`.
async fn all_messages(c: &Cluster, via: usize, user: &str, convs: &[String], acked: &[Acked]) -> Vec<(String, u64)> {
    let mut all = Vec::new();
    for conv in convs {
        let items = history(c.nodes[via].addr, user, conv).await;
        let n = check_history(conv, &items, acked);
        all.extend((1..=n).map(|seq| (conv.clone(), seq)));
    }
    all
}

/// Asserts that `peer` has every message of `all` (pushed or synced) and
/// no duplicate push.
fn assert_complete(peer: &Peer, all: &[(String, u64)], what: &str) {
    let missing = peer.missing(all);
    let unpushed = peer.unpushed(all).len();
    assert!(
        missing.is_empty() && peer.duplicates() == 0,
        "{what} ({}): {} of {} messages missing {missing:?}, {} duplicate pushes, \
         {unpushed} not pushed, {} reconnects, {} resyncs",
        peer.user,
        missing.len(),
        all.len(),
        peer.duplicates(),
        peer.reconnects,
        peer.resyncs,
    );
}

/// (conv, seq) of the messages in `acked` that match `pick`.
fn keys(acked: &[Acked], pick: impl Fn(&Acked) -> bool) -> Vec<(String, u64)> {
    acked
        .iter()
        .filter(|a| pick(a))
        .map(|a| (a.conv.clone(), a.seq))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_on_every_node_store_and_push_each_message_once() {
    let Some(c) = Cluster::start(3, Opts::default()).await else {
        return;
    };
    let u = c.urls();
    let at = |i: usize| vec![u[i].clone()];
    // Direct d:a:b: a sends from nodes 0 and 2, b from node 1; a reads on
    // node 1, b on nodes 0 and 2. Group: g0, g1, g2 send from nodes 0, 1,
    // 2 and read on nodes 1, 2, 0.
    let mut readers = vec![
        Peer::connect("a", at(1)).await,
        Peer::connect("b", at(0)).await,
        Peer::connect("b", at(2)).await,
    ];
    for (user, node) in [("g1", 2), ("g2", 0), ("g0", 1)] {
        readers.push(Peer::connect(user, at(node)).await);
    }
    let direct = [("a", 0, "b"), ("b", 1, "a"), ("a", 2, "b")];
    let mut senders = Vec::new();
    for (user, node, to) in direct {
        senders.push((Peer::connect(user, at(node)).await, json!({ "to": to })));
    }
    let group = c.group(0, "g0", &["g1", "g2"]).await;
    for i in 0..3 {
        let peer = Peer::connect(&format!("g{i}"), at(i)).await;
        senders.push((peer, json!({ "conv": group })));
    }
    let _markers = c.settle("c").await;

    const EACH: usize = 30;
    let mut t = Traffic::new();
    for (peer, target) in senders {
        t.sender(peer, vec![target], Some(EACH));
    }
    for peer in readers {
        t.listener(peer);
    }
    let (senders, acked, readers) = t.finish().await;
    assert_eq!(acked.len(), 6 * EACH);
    let dm = vec!["d:a:b".to_owned()];
    let gm = vec![group.clone()];
    let direct_all = all_messages(&c, 0, "a", &dm, &acked).await;
    let group_all = all_messages(&c, 0, "g0", &gm, &acked).await;
    assert_eq!((direct_all.len(), group_all.len()), (3 * EACH, 3 * EACH));
    for (i, r) in readers.iter().enumerate() {
        let all = if i < 3 { &direct_all } else { &group_all };
        assert_complete(r, all, "reader");
        assert_eq!(r.synced.len(), 0, "no reader had to sync");
    }
    // Each sending session also gets every message but its own by push.
    for s in &senders {
        let conv = if s.user.starts_with('g') { &group } else { "d:a:b" };
        let own: Vec<_> = keys(&acked, |a| a.from == s.user && a.conv == conv);
        let others: Vec<_> = if s.user.starts_with('g') { &group_all } else { &direct_all }
            .iter()
            .filter(|k| !own.contains(k) || s.user == "a")
            .cloned()
            .collect();
        // `a` sends from two sessions: each gets the other's by push.
        let want: Vec<_> = others
            .into_iter()
            .filter(|k| !s.pushes.contains_key(k))
            .filter(|k| !(s.user == "a" && own.contains(k)))
            .collect();
        assert!(want.is_empty(), "sender {}: not pushed {want:?}", s.user);
        assert_eq!(s.duplicates(), 0, "sender {}: duplicate pushes", s.user);
    }
    c.stop().await;
}

/// Reads `watcher`'s frames until a presence push says `user` is offline.
async fn wait_offline_push(watcher: &mut Peer, user: &str) -> Duration {
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no presence push: {user} offline"
        );
        if let Frame::Json(v) = watcher.frame(Duration::from_millis(200)).await {
            let items = v["items"].as_array().cloned().unwrap_or_default();
            if v["type"] == "presence"
                && items.iter().any(|i| i["user"] == user && i["online"] == false)
            {
                return started.elapsed();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_and_a_node_drained_mid_traffic_lose_nothing() {
    let Some(mut c) = Cluster::start(3, Opts::default()).await else {
        return;
    };
    let addrs: Vec<_> = c.nodes.iter().map(|n| n.addr).collect();
    // Clients leaving a node reconnect through nginx when it is installed
    // (the load balancer must skip the dead and the draining node), to node
    // 0 otherwise.
    let nginx = Nginx::start(&addrs).await;
    let u = c.urls();
    let fallback = nginx.as_ref().map_or(u[0].clone(), Nginx::url);
    let urls = |i: usize| vec![u[i].clone(), fallback.clone()];

    let mut watcher = Peer::connect("w", urls(0)).await;
    let _idle = [
        Peer::connect("o1", vec![u[1].clone()]).await,
        Peer::connect("o2", vec![u[2].clone()]).await,
    ];
    let mut readers = Vec::new();
    for i in 0..3 {
        readers.push(Peer::connect("r", urls(i)).await);
    }
    let mut senders = Vec::new();
    for i in 0..3 {
        senders.push(Peer::connect(&format!("s{i}"), urls(i)).await);
    }
    let group = c.group(0, "s0", &["s1", "s2", "r"]).await;
    let mut convs = vec![group.clone()];
    convs.extend((0..3).map(|i| format!("d:r:s{i}")));
    let _markers = c.settle("k").await;
    let sub = watcher.send_raw_request(json!({"type":"presence_sub","users":["o1","o2"]})).await;
    assert_eq!(sub["items"][0]["online"], true, "{sub}");
    assert_eq!(sub["items"][1]["online"], true, "{sub}");

    let mut t = Traffic::new();
    for (i, peer) in senders.into_iter().enumerate() {
        let targets = vec![json!({ "conv": group }), json!({ "to": "r" })];
        t.sender(peer, targets, None);
        let _ = i;
    }
    for mut peer in readers {
        peer.convs = convs.clone();
        t.listener(peer);
    }
    let n = t.wait_acks(0, 30, "before the kill").await;

    // kill -9 node 1: it vanishes from the registry and presence within
    // the TTL (1.5 s), its clients move on.
    c.signal(1, "-KILL");
    let _ = c.wait_exit(1, Duration::from_secs(5)).await;
    let gone = c.wait_registry(0, &["n1".into(), "n3".into()]).await;
    let offline = wait_offline_push(&mut watcher, "o1").await;
    assert!(!c.online(2, "o1").await, "n3 still sees o1 online");
    assert!(gone < Duration::from_secs(6) && offline < Duration::from_secs(6),
        "dead node forgotten after {gone:?} (registry), {offline:?} (presence)");
    let n = t.wait_acks(n, 30, "after the kill").await;

    // SIGTERM node 2: goaway, exit 0, gone from the registry at once.
    c.signal(2, "-TERM");
    let status = c.wait_exit(2, Duration::from_secs(10)).await;
    assert!(status.success(), "drained node exit: {status:?}");
    c.wait_registry(0, &["n1".into()]).await;
    wait_offline_push(&mut watcher, "o2").await;
    t.wait_acks(n, 30, "after the drain").await;

    let (senders, acked, readers) = t.finish().await;
    let all = all_messages(&c, 0, "r", &convs, &acked).await;
    for r in &readers {
        assert_complete(r, &all, "reader");
    }
    assert_eq!(readers[0].reconnects, 0, "the reader on node 0 stayed");
    assert!(readers[1].reconnects >= 1 && readers[2].reconnects >= 1, "readers moved");
    assert!(readers[2].goaways >= 1, "the drained node's reader got goaway");
    assert!(senders[1].reconnects >= 1 && senders[2].reconnects >= 1, "senders moved");
    assert!(senders[2].goaways >= 1, "the drained node's sender got goaway");
    // Messages sent on node 0 never left it: pushed to its reader.
    let local = keys(&acked, |a| a.from == "s0");
    assert!(readers[0].unpushed(&local).is_empty(), "node 0's own pushes");
    if let Some(nginx) = &nginx {
        eprintln!("nginx error log:\n{}", nginx.errors());
    }
    c.stop().await;
}

/// Three senders into one group, one per node, and a second session of
/// each group member on another node.
async fn group_traffic(c: &Cluster, tag: &str) -> (Traffic, String) {
    let u = c.urls();
    let user = |i: usize| format!("{tag}{i}");
    let mut readers = Vec::new();
    for i in 0..3 {
        readers.push(Peer::connect(&user(i), vec![u[(i + 1) % 3].clone()]).await);
    }
    let mut senders = Vec::new();
    for i in 0..3 {
        senders.push(Peer::connect(&user(i), vec![u[i].clone()]).await);
    }
    let group = c.group(0, &user(0), &[&user(1), &user(2)]).await;
    // Markers stay connected through the test (their tasks hold them).
    let mut t = Traffic::new();
    for marker in c.settle(tag).await {
        t.listener(marker);
    }
    for peer in senders {
        t.sender(peer, vec![json!({ "conv": group })], None);
    }
    for mut peer in readers {
        peer.convs = vec![group.clone()];
        t.listener(peer);
    }
    (t, group)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cut_mid_traffic_resyncs_and_loses_nothing() {
    let opts = Opts {
        redis_proxy: true,
        ..Opts::default()
    };
    let Some(c) = Cluster::start(3, opts).await else {
        return;
    };
    let (t, group) = group_traffic(&c, "p").await;
    let n = t.wait_acks(0, 20, "before the cut").await;

    c.redis_proxy.as_ref().unwrap().set(CUT);
    for node in &c.nodes {
        wait_status(node.addr, "/readyz", 503, Duration::from_secs(15)).await;
    }
    // Every send is still stored and acknowledged while Redis is away.
    let n = t.wait_acks(n, 20, "while Redis is cut").await;

    c.redis_proxy.as_ref().unwrap().set(PASS);
    for node in &c.nodes {
        wait_status(node.addr, "/readyz", 200, Duration::from_secs(20)).await;
    }
    // Give the nodes a moment to rebuild their caches and resync.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let recovered = Instant::now();
    t.wait_acks(n, 30, "after Redis is back").await;

    let (_, acked, listeners) = t.finish().await;
    let readers = &listeners[3..];
    let all = all_messages(&c, 0, "p0", &[group.clone()], &acked).await;
    let after = keys(&acked, |a| a.at > recovered);
    for (i, r) in readers.iter().enumerate() {
        assert_complete(r, &all, "reader");
        assert!(r.resyncs >= 1, "reader {}: no resync", r.user);
        // Local delivery never stopped: the sender on the reader's node.
        let local = keys(&acked, |a| a.from == format!("p{}", (i + 1) % 3));
        assert_eq!(r.unpushed(&local), vec![], "reader {}: local pushes", r.user);
        // Cross-node delivery resumed.
        assert_eq!(r.unpushed(&after), vec![], "reader {}: pushes after recovery", r.user);
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_mid_traffic_answers_unavailable_and_recovers() {
    let opts = Opts {
        db_proxy: true,
        ..Opts::default()
    };
    let Some(c) = Cluster::start(3, opts).await else {
        return;
    };
    let (t, group) = group_traffic(&c, "q").await;
    let n = t.wait_acks(0, 20, "before the cut").await;

    c.db_proxy.as_ref().unwrap().set(CUT);
    for node in &c.nodes {
        wait_status(node.addr, "/readyz", 503, Duration::from_secs(15)).await;
    }
    // Longer than store.op_timeout_ms (1.5 s): every sender was answered
    // `unavailable` at least once (a hang fails inside the sender).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = t.acked();
    c.db_proxy.as_ref().unwrap().set(PASS);
    for node in &c.nodes {
        wait_status(node.addr, "/readyz", 200, Duration::from_secs(20)).await;
    }
    t.wait_acks(during, 30, "after PostgreSQL is back").await;

    let (senders, acked, listeners) = t.finish().await;
    let all = all_messages(&c, 0, "q0", &[group.clone()], &acked).await;
    for s in &senders {
        assert!(s.unavailable >= 1, "sender {}: never told unavailable", s.user);
        assert!(
            s.slowest < Duration::from_secs(6),
            "sender {}: an answer took {:?}",
            s.user,
            s.slowest
        );
    }
    for r in &listeners[3..] {
        assert_complete(r, &all, "reader");
    }
    let _ = n;
    c.stop().await;
}
