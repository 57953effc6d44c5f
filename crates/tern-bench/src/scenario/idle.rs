//! `idle`: open N authenticated connections at a given concurrency, hold
//! them, report the connect rate and the server's memory per connection
//! (RSS delta / N; RSS from `/proc/<pid>` with `--server-pid`, else from
//! `/admin/stats`). With several hosts, connection i goes to host i mod n,
//! and each node's RSS and RSS per connection are reported too.

use std::time::Duration;

use crate::cli::{Common, IdleArgs};
use crate::hosts::{count_per_host, Hosts};
use crate::report::Report;
use crate::scenario::{connect_many, per_sec};
use crate::server::{per_conn_by_node, record_nodes, MemSource};

pub async fn run(common: &Common, args: &IdleArgs) -> anyhow::Result<Report> {
    let hosts = Hosts::resolve(common).await?;
    let mut report = Report::new("idle");
    report.param("count", args.count);
    report.param("concurrency", args.concurrency);
    report.param("hold_s", args.hold);
    hosts.describe(&mut report);
    let (mem, source) = MemSource::detect(common).await;
    report.memory_source = source;
    let base = match &mem {
        Some(m) => m.snapshot().await,
        None => None,
    };
    let users: Vec<String> = (0..args.count)
        .map(|i| format!("{}-idle-{i}", common.prefix))
        .collect();
    let pb = crate::progress::bar(common.progress(), args.count as u64, "connecting");
    let opened = connect_many(
        &hosts,
        &users,
        |i| i,
        args.concurrency,
        common.setup_timeout(),
        &pb,
    )
    .await;
    pb.finish_and_clear();
    let ok = opened.ok() as u64;
    report.count("connected", ok);
    report.count("failed", args.count as u64 - ok);
    count_per_host(
        &mut report,
        &hosts,
        opened.conns.iter().map(Option::is_some),
        |i| i,
    );
    report.rate("connects", per_sec(ok, opened.elapsed));
    report.elapsed_s = opened.elapsed.as_secs_f64();
    *report.latency("connect") = opened.latency.clone();
    for e in &opened.errors {
        report.error(e);
    }
    // Workers tell the parent they hold their connections: it reads the RSS.
    if common.worker_index.is_some() {
        println!("{}", crate::procs::READY);
    }
    if let (Some(mem), Some((base, base_nodes))) = (mem, base) {
        tokio::time::sleep(Duration::from_secs(args.settle)).await;
        if let Some((held, held_nodes)) = mem.snapshot().await {
            report.gauge("server_rss_base_kib", base as f64);
            report.gauge("server_rss_held_kib", held as f64);
            if ok > 0 {
                report.gauge(
                    "server_kib_per_conn",
                    (held as f64 - base as f64) / ok as f64,
                );
            }
            if mem.per_node() {
                record_nodes(&mut report, "base", &base_nodes);
                record_nodes(&mut report, "held", &held_nodes);
                per_conn_by_node(&mut report, &base_nodes, &held_nodes);
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    drop(opened);
    Ok(report)
}
