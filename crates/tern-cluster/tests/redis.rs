//! The Redis bus and directory against the real Redis at
//! TERN_TEST_REDIS_URL: several nodes in one process, each test under its
//! own key prefix; a TCP proxy the test controls cuts Redis connections.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use tern_cluster::redis::{RedisCluster, RedisOptions};
use tern_cluster::{Bus, Directory, Event, GroupChange, Inbound, NodeStatsSource, PushTarget};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::Receiver;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

fn redis_url() -> Option<String> {
    match std::env::var("TERN_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!("CI needs TERN_TEST_REDIS_URL"),
        _ => {
            eprintln!("skipped: TERN_TEST_REDIS_URL is not set");
            None
        }
    }
}

fn opts(heartbeat_ms: u64, node_ttl_ms: u64) -> RedisOptions {
    let suffix: u64 = rand::thread_rng().gen();
    RedisOptions {
        key_prefix: format!("tern-test:{suffix:x}:"),
        heartbeat_ms,
        node_ttl_ms,
        ..RedisOptions::default()
    }
}

struct Stats(u64, u64);
impl NodeStatsSource for Stats {
    fn connections(&self) -> u64 {
        self.0
    }
    fn sessions(&self) -> u64 {
        self.1
    }
}

async fn node(url: &str, id: &str, opts: &RedisOptions) -> (Arc<RedisCluster>, Receiver<Inbound>) {
    let stats = Arc::new(Stats(id.len() as u64, 1));
    let node = RedisCluster::connect(url, id, &format!("{id}:8080"), stats, opts.clone())
        .await
        .unwrap();
    let rx = node.take_inbound().unwrap();
    (node, rx)
}

/// The next inbound item.
async fn next(rx: &mut Receiver<Inbound>) -> Inbound {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap()
}

/// Waits for the first inbound item matching `want`, skipping others.
async fn wait_for(rx: &mut Receiver<Inbound>, want: impl Fn(&Inbound) -> bool) -> Inbound {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let item = tokio::time::timeout(left, rx.recv()).await;
        let item = item
            .expect("timed out waiting for an inbound item")
            .unwrap();
        if want(&item) {
            return item;
        }
    }
}

async fn poll(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn push(n: usize) -> Event {
    Event::Push {
        target: PushTarget::Users {
            users: vec!["u".into()],
        },
        frame: Bytes::from(n.to_string()),
    }
}

fn is_event(item: &Inbound, event: &Event) -> bool {
    matches!(item, Inbound::Event { event: e, .. } if e == event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_to_reaches_one_node_and_broadcast_every_other() {
    let Some(url) = redis_url() else { return };
    let o = opts(2000, 10_000);
    let (a, mut ra) = node(&url, "a", &o).await;
    let (b, mut rb) = node(&url, "b", &o).await;
    let (c, mut rc) = node(&url, "c", &o).await;
    a.send_to("b", push(1));
    a.broadcast(Event::Resync);
    assert_eq!(
        next(&mut rb).await,
        Inbound::Event {
            from: "a".into(),
            event: push(1)
        }
    );
    assert!(is_event(&next(&mut rb).await, &Event::Resync));
    assert!(
        is_event(&next(&mut rc).await, &Event::Resync),
        "c gets only the broadcast"
    );
    let deleted = Event::Group(GroupChange::Deleted { group: "g".into() });
    c.broadcast(deleted.clone());
    let first = next(&mut ra).await;
    assert!(
        is_event(&first, &deleted),
        "a never hears its own broadcast: {first:?}"
    );
    assert!(is_event(&next(&mut rb).await, &deleted));

    // Garbage on either channel is counted and skipped, never fatal.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let node_b = format!("{}node:b", o.key_prefix);
    let all = format!("{}all", o.key_prefix);
    let _: () = redis::cmd("SPUBLISH")
        .arg(&node_b)
        .arg("no header")
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("PUBLISH")
        .arg(&all)
        .arg(&b"\xff\n"[..])
        .query_async(&mut raw)
        .await
        .unwrap();
    a.send_to("b", push(5));
    assert!(is_event(&next(&mut rb).await, &push(5)));
    for n in [&a, &b, &c] {
        n.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_holds_over_ten_thousand_events() {
    let Some(url) = redis_url() else { return };
    let o = opts(2000, 10_000);
    let (a, _ra) = node(&url, "a", &o).await;
    let (b, mut rb) = node(&url, "b", &o).await;
    let group = |i: usize| {
        Event::Group(GroupChange::Deleted {
            group: i.to_string(),
        })
    };
    // Alternates the node channel and the broadcast channel: a group change
    // published before a push must arrive before it.
    for i in 0..10_000 {
        if i % 2 == 0 {
            a.send_to("b", push(i));
        } else {
            a.broadcast(group(i));
        }
    }
    for i in 0..10_000 {
        let want = if i % 2 == 0 { push(i) } else { group(i) };
        let got = next(&mut rb).await;
        assert!(is_event(&got, &want), "event {i}: got {got:?}");
    }
    a.leave().await;
    b.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_replicates_and_coalesces() {
    let Some(url) = redis_url() else { return };
    let o = RedisOptions {
        presence_flush_ms: 200,
        ..opts(2000, 10_000)
    };
    let (a, _ra) = node(&url, "a", &o).await;
    let (b, mut rb) = node(&url, "b", &o).await;
    a.set_local("alice", true);
    let got = wait_for(&mut rb, |i| {
        matches!(
            i,
            Inbound::Event {
                event: Event::Presence { .. },
                ..
            }
        )
    })
    .await;
    let Inbound::Event {
        from,
        event: Event::Presence { changes },
    } = got
    else {
        unreachable!()
    };
    assert_eq!(changes, vec![("alice".to_owned(), true)]);
    assert!(b.apply_remote(&from, "alice", true));
    assert_eq!(
        b.remote_nodes("alice"),
        vec![tern_cluster::NodeId::from("a")]
    );

    // A node that joins later loads the directory from Redis.
    let (c, _rc) = node(&url, "c", &o).await;
    assert_eq!(
        c.remote_nodes("alice"),
        vec![tern_cluster::NodeId::from("a")]
    );

    for i in 0..100 {
        a.set_local("bob", i % 2 == 0);
    }
    a.set_local("bob", true);
    let mut events = 0;
    let mut last = None;
    let deadline = Instant::now() + Duration::from_millis(1500);
    while let Ok(Some(item)) = tokio::time::timeout_at(deadline.into(), rb.recv()).await {
        if let Inbound::Event {
            event: Event::Presence { changes },
            ..
        } = item
        {
            events += 1;
            last = changes.into_iter().find(|(u, _)| u == "bob");
        }
    }
    assert!(
        (1..=3).contains(&events),
        "101 changes cost {events} broadcasts"
    );
    assert_eq!(last, Some(("bob".to_owned(), true)));
    c.rebuild().await.unwrap();
    assert_eq!(c.remote_nodes("bob"), vec![tern_cluster::NodeId::from("a")]);
    for n in [&a, &b, &c] {
        n.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_lists_every_node_and_leave_is_seen_at_once() {
    let Some(url) = redis_url() else { return };
    let o = opts(200, 10_000);
    let (a, mut ra) = node(&url, "a", &o).await;
    let (b, _rb) = node(&url, "bb", &o).await;
    let nodes = a.nodes().await.unwrap();
    let ids: Vec<_> = nodes
        .iter()
        .map(|n| (n.id.as_str(), n.addr.as_str(), n.connections, n.sessions))
        .collect();
    assert_eq!(ids, vec![("a", "a:8080", 1, 1), ("bb", "bb:8080", 2, 1)]);
    assert!(nodes.iter().all(|n| n.started_at > 1_600_000_000_000));

    let started = Instant::now();
    b.leave().await;
    assert_eq!(next(&mut ra).await, Inbound::NodeLeft { node: "bb".into() });
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "left at once, not after the TTL"
    );
    assert_eq!(a.nodes().await.unwrap().len(), 1);
    // The heartbeats that follow do not report it a second time.
    let again = tokio::time::timeout(Duration::from_millis(800), ra.recv()).await;
    assert!(again.is_err(), "unexpected {again:?}");
    a.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_node_dies_with_its_ttl() {
    let Some(url) = redis_url() else { return };
    let o = opts(300, 1500);
    let (a, mut ra) = node(&url, "a", &o).await;
    let (b, _rb) = node(&url, "b", &o).await;
    b.set_local("carol", true);
    let got = wait_for(&mut ra, |i| {
        matches!(
            i,
            Inbound::Event {
                event: Event::Presence { .. },
                ..
            }
        )
    })
    .await;
    assert!(is_event(
        &got,
        &Event::Presence {
            changes: vec![("carol".into(), true)]
        }
    ));
    assert!(a.apply_remote("b", "carol", true));

    let crashed = Instant::now();
    b.abort().await;
    assert_eq!(
        wait_for(&mut ra, |i| matches!(i, Inbound::NodeDied { .. })).await,
        Inbound::NodeDied { node: "b".into() }
    );
    let took = crashed.elapsed();
    assert!(
        took >= Duration::from_millis(1000),
        "declared dead before its TTL: {took:?}"
    );
    assert!(
        took < Duration::from_millis(4000),
        "declared dead too late: {took:?}"
    );
    assert_eq!(a.forget_node("b"), vec!["carol".to_owned()]);
    assert!(a.remote_nodes("carol").is_empty());
    assert_eq!(a.nodes().await.unwrap().len(), 1);
    // Its presence set lapsed with it.
    a.rebuild().await.unwrap();
    assert!(!a.any_remote());
    a.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_fails_fast_when_redis_is_unreachable() {
    let Some(_url) = redis_url() else { return };
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let started = Instant::now();
    let url = format!("redis://{closed}");
    let result =
        RedisCluster::connect(&url, "x", "x", Arc::new(Stats(0, 0)), opts(2000, 10_000)).await;
    assert!(matches!(
        result,
        Err(tern_cluster::ClusterError::Unreachable(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_heals_by_itself_and_reports_the_loss() {
    let Some(url) = redis_url() else { return };
    let target = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let proxy = Proxy::start(&target).await;
    let o = opts(200, 10_000);
    let (a, mut ra) = node(&format!("redis://{}", proxy.addr), "a", &o).await;
    let (b, mut rb) = node(&url, "b", &o).await;
    assert!(a.is_healthy());

    proxy.cut(Duration::from_millis(1000));
    poll("a notices the cut", || !a.is_healthy()).await;
    a.send_to("b", push(1)); // lost (or delivered late): either way a resync follows
    poll("a heals", || a.is_healthy()).await;
    wait_for(&mut ra, |i| *i == Inbound::Lost).await;
    wait_for(&mut rb, |i| is_event(i, &Event::Resync)).await;

    b.send_to("a", push(2));
    wait_for(&mut ra, |i| is_event(i, &push(2))).await;
    a.send_to("b", push(3));
    wait_for(&mut rb, |i| is_event(i, &push(3))).await;
    a.leave().await;
    b.leave().await;
}

/// A TCP proxy in front of Redis whose connections the test can cut.
struct Proxy {
    addr: SocketAddr,
    refusing: Arc<AtomicBool>,
    conns: Arc<Mutex<CancellationToken>>,
}

impl Proxy {
    async fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            refusing: Arc::new(AtomicBool::new(false)),
            conns: Arc::new(Mutex::new(CancellationToken::new())),
        };
        let (refusing, conns, target) = (
            proxy.refusing.clone(),
            proxy.conns.clone(),
            target.to_owned(),
        );
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if refusing.load(Ordering::Acquire) {
                    continue; // dropped at once
                }
                let cut = conns.lock().unwrap().clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = cut.cancelled() => {}
                    }
                });
            }
        });
        proxy
    }

    /// Closes every proxied connection and refuses new ones for `refuse`.
    fn cut(&self, refuse: Duration) {
        self.refusing.store(true, Ordering::Release);
        let old = std::mem::take(&mut *self.conns.lock().unwrap());
        old.cancel();
        let refusing = self.refusing.clone();
        tokio::spawn(async move {
            tokio::time::sleep(refuse).await;
            refusing.store(false, Ordering::Release);
        });
    }
}
