//! Every scenario at tiny scale against a real in-process server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tern_bench::cli::{ChurnArgs, ConnectArgs, DirectArgs, FanoutArgs, HistoryArgs, IdleArgs};
use tern_bench::{procs, scenario};
use tern_bench::{Common, Scenario, Transport};
use tern_server::app;
use tern_server::Config;

const SECRET: &str = "bench-secret-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_at_tiny_scale() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        http_addr: "127.0.0.1:0".into(),
        tcp_addr: "127.0.0.1:0".into(),
        data_dir: dir.path().to_string_lossy().into_owned(),
        jwt_secret: SECRET.into(),
        ..Config::default()
    };
    cfg.limits.send_rate = 1_000_000;
    cfg.limits.send_burst = 1_000_000;
    cfg.limits.max_connections_per_ip = 1_000_000;
    cfg.limits.connects_per_sec_per_ip = 1_000_000;
    let server = app::start(cfg).await.unwrap();
    let mut common = Common::new(server.http_addr.to_string(), SECRET);
    common.server_pid = Some(std::process::id());

    let r = scenario::idle::run(
        &common,
        &IdleArgs {
            count: 20,
            concurrency: 5,
            hold: 0,
            settle: 0,
        },
    )
    .await
    .unwrap();
    println!("{}", r.json_line());
    assert_eq!(r.counter("connected"), 20, "{}", r.table());
    assert_eq!(r.counter("failed"), 0);
    assert!(r.gauges.contains_key("server_kib_per_conn"));
    assert_eq!(
        r.memory_source.as_deref(),
        Some(format!("/proc/{}/status", std::process::id()).as_str())
    );

    // Without --server-pid the memory comes from /admin/stats (rss_kib).
    let mut no_pid = common.clone();
    no_pid.server_pid = None;
    let r = scenario::idle::run(
        &no_pid,
        &IdleArgs {
            count: 10,
            concurrency: 5,
            hold: 0,
            settle: 0,
        },
    )
    .await
    .unwrap();
    println!("{}", r.json_line());
    assert_eq!(r.counter("connected"), 10, "{}", r.table());
    let source = r.memory_source.clone().unwrap_or_default();
    assert!(source.contains("/api/v1/admin/stats"), "{source}");
    assert!(r.gauges["server_rss_held_kib"] > 0.0, "{}", r.table());

    let r = scenario::connect::run(
        &common,
        &ConnectArgs {
            count: 20,
            concurrency: 5,
        },
    )
    .await
    .unwrap();
    println!("{}", r.json_line());
    assert_eq!(r.counter("connected"), 20, "{}", r.table());
    assert_eq!(r.latencies["connect"].len(), 20);

    let r = scenario::direct::run(
        &common,
        &DirectArgs {
            pairs: 2,
            window: 4,
            duration: 1,
            grace: 5,
            body_bytes: 32,
        },
    )
    .await
    .unwrap();
    println!("{}", r.json_line());
    assert!(r.counter("acked") > 0, "{}", r.table());
    assert_eq!(r.counter("acked"), r.counter("sent"), "{}", r.table());
    assert_eq!(r.counter("delivered"), r.counter("acked"), "{}", r.table());
    assert_eq!(r.counter("lost"), 0);
    assert_eq!(r.counter("duplicated"), 0);
    assert_eq!(r.latencies["delivery"].len(), r.counter("delivered"));
    // One host: no host list, no per-node figures, as before.
    assert!(r.hosts.is_empty());
    assert!(!r.params.contains_key("hosts"));
    assert!(!r.counters.contains_key("pairs_cross_node"));
    assert!(!r.json_line().contains("\"hosts\""));

    let r = scenario::fanout::run(
        &common,
        &FanoutArgs {
            members: 20,
            messages: 10,
            senders: 1,
            rate: 0.0,
            window: 5,
            grace: 5,
        },
    )
    .await
    .unwrap();
    println!("{}", r.json_line());
    assert_eq!(r.counter("acked"), 10, "{}", r.table());
    assert_eq!(r.counter("delivered"), 200, "{}", r.table());
    assert_eq!(r.counter("lost"), 0);
    assert_eq!(r.counter("duplicated"), 0);

    // Two paced senders.
    let r = scenario::fanout::run(
        &common,
        &FanoutArgs {
            members: 5,
            messages: 5,
            senders: 2,
            rate: 50.0,
            window: 5,
            grace: 5,
        },
    )
    .await
    .unwrap();
    println!("{}", r.json_line());
    assert_eq!(r.counter("delivered"), 50, "{}", r.table());
    assert_eq!(r.counter("lost") + r.counter("duplicated"), 0);

    // Fanout over two worker processes (the tern-bench binary), bound to
    // 127.0.0.1 and 127.0.0.2; new users, so the workers provision them.
    let mut two = common.clone();
    two.procs = 2;
    two.prefix = "bench2".into();
    two.worker_exe = Some(env!("CARGO_BIN_EXE_tern-bench").into());
    let fanout = FanoutArgs {
        members: 20,
        messages: 10,
        senders: 2,
        rate: 0.0,
        window: 5,
        grace: 5,
    };
    let r = procs::run_parent(
        &two,
        &Scenario::Fanout(fanout.clone()),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    println!("{}", r.json_line());
    assert_eq!(r.procs, 2, "{}", r.table());
    assert_eq!(r.counter("acked"), 20, "{}", r.table());
    assert_eq!(r.counter("members_connected"), 20, "{}", r.table());
    assert_eq!(r.counter("delivered"), 20 * 20, "{}", r.table());
    assert_eq!(r.counter("expected"), 20 * 20);
    assert_eq!(r.counter("lost"), 0, "{}", r.table());
    assert_eq!(r.counter("duplicated"), 0, "{}", r.table());
    assert_eq!(r.latencies["delivery"].len(), 400);
    assert!(r.gauges.contains_key("provision_s"), "{}", r.table());
    assert!(r.rates["deliveries"] > 0.0);
    // Direct over two workers: the report states the whole run (5 pairs),
    // not one worker's share.
    let r = procs::run_parent(
        &two,
        &Scenario::Direct(DirectArgs {
            pairs: 5,
            window: 2,
            duration: 1,
            grace: 5,
            body_bytes: 16,
        }),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    println!("{}", r.json_line());
    assert_eq!(r.params["pairs"], 5, "{}", r.table());
    assert!(r.counter("delivered") > 0, "{}", r.table());
    assert_eq!(r.counter("lost") + r.counter("duplicated"), 0);
    // Again: the users exist now, no provisioning; an odd split (7 + 6).
    let r = procs::run_parent(
        &two,
        &Scenario::Fanout(FanoutArgs {
            members: 13,
            ..fanout
        }),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    println!("{}", r.json_line());
    assert_eq!(r.counter("acked"), 20, "{}", r.table());
    assert_eq!(r.counter("delivered"), 20 * 13, "{}", r.table());
    assert_eq!(r.counter("lost") + r.counter("duplicated"), 0);
    assert!(!r.gauges.contains_key("provision_s"), "{}", r.table());

    let r = scenario::churn::run(
        &common,
        &ChurnArgs {
            duration: 2,
            concurrency: 4,
            hold_ms: 0,
            settle: 0,
            warmup: 1,
        },
    )
    .await
    .unwrap();
    println!("{}", r.json_line());
    assert!(r.counter("cycles") > 0, "{}", r.table());
    assert_eq!(r.counter("failed"), 0, "{}", r.table());
    assert!(r.gauges.contains_key("server_rss_after_kib"));
    assert!(r.gauges.contains_key("server_rss_before_kib"));
    assert!(r.gauges.contains_key("server_rss_start_kib"));

    let r = scenario::history::run(
        &common,
        &HistoryArgs {
            messages: 200,
            window: 20,
            page: 50,
            rounds: 2,
        },
    )
    .await
    .unwrap();
    println!("{}", r.json_line());
    assert_eq!(r.counter("written"), 200, "{}", r.table());
    assert_eq!(r.counter("read"), 400, "{}", r.table());
    assert_eq!(r.counter("rounds"), 2);

    // The other transports: WebSocket with protobuf, and the TCP door.
    let door = server.tcp_addr.unwrap().to_string();
    for transport in [Transport::WsProto, Transport::Tcp] {
        let mut other = common.clone();
        other.transport = transport;
        other.tcp_hosts = vec![door.clone()];
        let r = scenario::direct::run(
            &other,
            &DirectArgs {
                pairs: 2,
                window: 4,
                duration: 1,
                grace: 5,
                body_bytes: 32,
            },
        )
        .await
        .unwrap();
        println!("{}", r.json_line());
        assert!(r.counter("delivered") > 0, "{}", r.table());
        assert_eq!(r.counter("lost"), 0, "{}", r.table());
        assert_eq!(r.params["transport"], transport.name());
        let r = scenario::idle::run(
            &other,
            &IdleArgs {
                count: 10,
                concurrency: 5,
                hold: 0,
                settle: 0,
            },
        )
        .await
        .unwrap();
        assert_eq!(r.counter("connected"), 10, "{}", r.table());
    }

    server.shutdown().await;
}

/// Two hosts that are the same server (cross-node delivery needs cluster
/// mode): the load spreads over both names and every figure holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_same_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        http_addr: "127.0.0.1:0".into(),
        tcp_addr: "off".into(),
        data_dir: dir.path().to_string_lossy().into_owned(),
        jwt_secret: SECRET.into(),
        ..Config::default()
    };
    cfg.limits.send_rate = 1_000_000;
    cfg.limits.send_burst = 1_000_000;
    cfg.limits.max_connections_per_ip = 1_000_000;
    cfg.limits.connects_per_sec_per_ip = 1_000_000;
    let server = app::start(cfg).await.unwrap();
    let port = server.http_addr.port();
    // "localhost" where it resolves to 127.0.0.1 first (the server listens
    // there only); else the same address twice.
    let localhost = tokio::net::lookup_host(("localhost", port))
        .await
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| a.ip() == std::net::Ipv4Addr::LOCALHOST);
    let second = if localhost { "localhost" } else { "127.0.0.1" };
    let hosts = format!("127.0.0.1:{port},{second}:{port}");
    let mut common = Common::new(hosts.clone(), SECRET);
    common.prefix = "two".into();
    let listed = vec![format!("127.0.0.1:{port}"), format!("{second}:{port}")];

    let r = scenario::direct::run(
        &common,
        &DirectArgs {
            pairs: 3,
            window: 4,
            duration: 1,
            grace: 5,
            body_bytes: 16,
        },
    )
    .await
    .unwrap();
    println!("{}\n{}", r.json_line(), r.table());
    assert!(r.counter("acked") > 0, "{}", r.table());
    assert_eq!(r.counter("delivered"), r.counter("acked"), "{}", r.table());
    assert_eq!(r.counter("lost") + r.counter("duplicated"), 0);
    assert_eq!(r.counter("pairs_cross_node"), 3, "{}", r.table());
    assert_eq!(r.params["hosts"], 2);
    assert_eq!(r.hosts, listed);
    let json: serde_json::Value = serde_json::from_str(&r.json_line()).unwrap();
    assert_eq!(json["hosts"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["counters"]["pairs_cross_node"], 3);
    assert!(r.table().contains("hosts (2): node0=127.0.0.1:"));

    let r = scenario::fanout::run(
        &common,
        &FanoutArgs {
            members: 9,
            messages: 10,
            senders: 2,
            rate: 0.0,
            window: 5,
            grace: 5,
        },
    )
    .await
    .unwrap();
    println!("{}", r.json_line());
    assert_eq!(r.counter("acked"), 20, "{}", r.table());
    assert_eq!(r.counter("members_connected"), 9, "{}", r.table());
    assert_eq!(r.counter("delivered"), 20 * 9, "{}", r.table());
    assert_eq!(r.counter("lost") + r.counter("duplicated"), 0);
    // Members 0, 2, 4, 6, 8 on host 0; 1, 3, 5, 7 on host 1.
    assert_eq!(r.counter("node0_connected"), 5, "{}", r.table());
    assert_eq!(r.counter("node1_connected"), 4, "{}", r.table());
    assert_eq!(r.hosts, listed);

    // The same over two worker processes: each has both hosts and places
    // members by their global index.
    let mut two = common.clone();
    two.procs = 2;
    two.worker_exe = Some(env!("CARGO_BIN_EXE_tern-bench").into());
    let r = procs::run_parent(
        &two,
        &Scenario::Fanout(FanoutArgs {
            members: 7,
            messages: 5,
            senders: 1,
            rate: 0.0,
            window: 5,
            grace: 5,
        }),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    println!("{}", r.json_line());
    assert_eq!(r.counter("acked"), 5, "{}", r.table());
    assert_eq!(r.counter("delivered"), 5 * 7, "{}", r.table());
    assert_eq!(r.counter("lost") + r.counter("duplicated"), 0);
    assert_eq!(r.counter("node0_connected"), 4, "{}", r.table());
    assert_eq!(r.counter("node1_connected"), 3, "{}", r.table());
    assert_eq!(r.hosts, listed);

    // Memory per node from each host's /admin/stats: both names answer
    // with the same node id, so they count as one node.
    let r = scenario::idle::run(
        &common,
        &IdleArgs {
            count: 10,
            concurrency: 5,
            hold: 0,
            settle: 0,
        },
    )
    .await
    .unwrap();
    println!("{}", r.table());
    assert_eq!(r.counter("connected"), 10, "{}", r.table());
    assert_eq!(r.counter("node0_connected"), 5);
    assert_eq!(r.counter("node1_connected"), 5);
    let source = r.memory_source.clone().unwrap_or_default();
    assert!(source.contains("each of the 2 hosts"), "{source}");
    assert!(
        source.contains("host 1 is the same node as host 0"),
        "{source}"
    );
    assert!(r.gauges["node0_rss_held_kib"] > 0.0, "{}", r.table());
    assert!(r.gauges.contains_key("node0_kib_per_conn"), "{}", r.table());
    assert!(
        !r.gauges.contains_key("node1_rss_held_kib"),
        "{}",
        r.table()
    );
    assert!(
        r.gauges["server_connections_total"] >= 10.0,
        "{}",
        r.table()
    );

    server.shutdown().await;
}

#[test]
fn worker_reports_merge() {
    let mut a = tern_bench::Report::new("direct");
    a.count("delivered", 3);
    a.latency("delivery").record(1500);
    let line = serde_json::to_string(&a).unwrap();
    let b: tern_bench::Report = serde_json::from_str(&line).unwrap();
    let mut m = tern_bench::Report::default();
    m.merge(&a);
    m.merge(&b);
    assert_eq!(m.procs, 2);
    assert_eq!(m.counter("delivered"), 6);
    assert_eq!(m.latencies["delivery"].len(), 2);
}
