//! `idle`: open N authenticated connections at a given concurrency, hold
//! them, report the connect rate and the server's memory per connection
//! (RSS delta / N; RSS from `/proc/<pid>` with `--server-pid`, else from
//! `/admin/stats`).

use std::time::Duration;

use crate::cli::{Common, IdleArgs};
use crate::net::Target;
use crate::report::Report;
use crate::scenario::{connect_many, per_sec};
use crate::server::MemSource;

pub async fn run(common: &Common, args: &IdleArgs) -> anyhow::Result<Report> {
    let target = Target::resolve(common).await?;
    let mut report = Report::new("idle");
    report.param("count", args.count);
    report.param("concurrency", args.concurrency);
    report.param("hold_s", args.hold);
    let (mem, source) = MemSource::detect(common).await;
    report.memory_source = source;
    let base = match &mem {
        Some(m) => m.rss_kib().await,
        None => None,
    };
    let users: Vec<String> = (0..args.count)
        .map(|i| format!("{}-idle-{i}", common.prefix))
        .collect();
    let pb = crate::progress::bar(common.progress(), args.count as u64, "connecting");
    let opened = connect_many(
        &target,
        &users,
        args.concurrency,
        common.setup_timeout(),
        &pb,
    )
    .await;
    pb.finish_and_clear();
    let ok = opened.ok() as u64;
    report.count("connected", ok);
    report.count("failed", args.count as u64 - ok);
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
    if let (Some(mem), Some(base)) = (mem, base) {
        tokio::time::sleep(Duration::from_secs(args.settle)).await;
        if let Some(held) = mem.rss_kib().await {
            report.gauge("server_rss_base_kib", base as f64);
            report.gauge("server_rss_held_kib", held as f64);
            if ok > 0 {
                report.gauge(
                    "server_kib_per_conn",
                    (held as f64 - base as f64) / ok as f64,
                );
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    drop(opened);
    Ok(report)
}
