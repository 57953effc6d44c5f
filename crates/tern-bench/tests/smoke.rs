//! Every scenario at tiny scale against a real in-process server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tern_bench::cli::{ChurnArgs, ConnectArgs, DirectArgs, FanoutArgs, HistoryArgs, IdleArgs};
use tern_bench::scenario;
use tern_bench::Common;
use tern_server::app;
use tern_server::Config;

const SECRET: &str = "bench-secret-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_at_tiny_scale() {
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

    let r = scenario::churn::run(
        &common,
        &ChurnArgs {
            duration: 2,
            concurrency: 4,
            hold_ms: 0,
            settle: 0,
        },
    )
    .await
    .unwrap();
    println!("{}", r.json_line());
    assert!(r.counter("cycles") > 0, "{}", r.table());
    assert_eq!(r.counter("failed"), 0, "{}", r.table());
    assert!(r.gauges.contains_key("server_rss_after_kib"));

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
