//! `connect`: connection + authentication rate and latency distribution.
//! Each connection is opened, waits for its `auth_ok`, and is closed. With
//! several hosts, user `<prefix>-conn-<u>` connects to host u mod n.

use std::time::Instant;

use futures_util::StreamExt;

use crate::cli::{Common, ConnectArgs};
use crate::hosts::Hosts;
use crate::report::Report;
use crate::scenario::per_sec;

pub async fn run(common: &Common, args: &ConnectArgs) -> anyhow::Result<Report> {
    let hosts = Hosts::resolve(common).await?;
    let mut report = Report::new("connect");
    report.param("count", args.count);
    report.param("concurrency", args.concurrency);
    hosts.describe(&mut report);
    let pb = crate::progress::bar(common.progress(), args.count as u64, "connecting");
    let deadline = tokio::time::Instant::now() + common.setup_timeout();
    let started = Instant::now();
    let prefix = common.prefix.clone();
    let conc = args.concurrency.max(1);
    let multi = hosts.multi();
    let mut results = futures_util::stream::iter((0..args.count).map(|i| {
        // A pool of `concurrency` users: sessions per user stay bounded.
        let t = hosts.get(i % conc).clone();
        let user = format!("{prefix}-conn-{}", i % conc);
        async move {
            let t0 = Instant::now();
            let r = tokio::time::timeout_at(deadline, t.connect(&user))
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("connect timed out")));
            let took = t0.elapsed();
            if let Ok(mut conn) = r {
                // Wait (briefly) for the server's close.
                conn.close(std::time::Duration::from_secs(1)).await;
                Ok(took)
            } else if multi {
                // With several hosts, say which one failed.
                r.map(|_| took).map_err(|e| e.context(t.host.clone()))
            } else {
                r.map(|_| took)
            }
        }
    }))
    .buffer_unordered(conc);
    while let Some(r) = results.next().await {
        pb.inc(1);
        match r {
            Ok(took) => {
                report.count("connected", 1);
                report.latency("connect").record(took.as_micros() as u64);
            }
            Err(e) => {
                report.count("failed", 1);
                report.error(format!("{e:#}"));
            }
        }
    }
    pb.finish_and_clear();
    let elapsed = started.elapsed();
    report.elapsed_s = elapsed.as_secs_f64();
    let ok = report.counter("connected");
    report.rate("sessions", per_sec(ok, elapsed));
    Ok(report)
}
