//! `churn`: C loops connect, authenticate, (hold) and disconnect
//! continuously for T seconds. The server's RSS (from `/proc/<pid>` with
//! `--server-pid`, else from `/admin/stats`) is read before the churn, after
//! `--warmup` seconds of it (the reference), every second during it, and
//! `--settle` seconds after it: memory must come back to the reference.
//! With several hosts, loop l connects to host l mod n, and the RSS figures
//! are summed over the nodes (each node's reference and final RSS are
//! reported too).

use std::time::{Duration, Instant};

use crate::cli::{ChurnArgs, Common};
use crate::hosts::Hosts;
use crate::report::{Latency, Report};
use crate::scenario::per_sec;
use crate::server::{record_nodes, MemSource, RssSampler};

pub async fn run(common: &Common, args: &ChurnArgs) -> anyhow::Result<Report> {
    let hosts = Hosts::resolve(common).await?;
    let mut report = Report::new("churn");
    report.param("duration_s", args.duration);
    report.param("concurrency", args.concurrency);
    report.param("hold_ms", args.hold_ms);
    let warmup = Duration::from_secs(args.warmup.min(args.duration));
    report.param("warmup_s", warmup.as_secs());
    hosts.describe(&mut report);
    let (mem, source) = MemSource::detect(common).await;
    report.memory_source = source;
    let cold_rss = match &mem {
        Some(m) => m.rss_kib().await,
        None => None,
    };
    // The reference RSS, read once the churn has warmed up.
    let warm_rss = mem.clone().map(|m| {
        tokio::spawn(async move {
            tokio::time::sleep(warmup).await;
            m.snapshot().await
        })
    });
    let sampler = mem
        .clone()
        .map(|m| RssSampler::start(m, Duration::from_secs(1)));
    let pb = crate::progress::bar(common.progress(), args.duration, "seconds");
    let ticker = {
        let pb = pb.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                pb.inc(1);
            }
        })
    };
    let started = Instant::now();
    let stop = tokio::time::Instant::now() + Duration::from_secs(args.duration);
    let limit = common.setup_timeout().min(Duration::from_secs(10));
    let mut loops = Vec::new();
    for l in 0..args.concurrency.max(1) {
        let t = hosts.get(l).clone();
        let user = format!("{}-churn-{l}", common.prefix);
        let hold = Duration::from_millis(args.hold_ms);
        loops.push(tokio::spawn(async move {
            let (mut ok, mut failed, mut lat, mut errors) =
                (0u64, 0u64, Latency::new(), Vec::new());
            while tokio::time::Instant::now() < stop {
                let t0 = Instant::now();
                match tokio::time::timeout_at(stop + limit, t.connect(&user)).await {
                    Ok(Ok(mut conn)) => {
                        lat.record(t0.elapsed().as_micros() as u64);
                        ok += 1;
                        if !hold.is_zero() {
                            tokio::time::sleep(hold).await;
                        }
                        conn.close(Duration::from_secs(1)).await;
                    }
                    Ok(Err(e)) => {
                        failed += 1;
                        if errors.len() < 3 {
                            errors.push(format!("{e:#}"));
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(_) => {
                        failed += 1;
                        break;
                    }
                }
            }
            (ok, failed, lat, errors)
        }));
    }
    for l in loops {
        match l.await {
            Ok((ok, failed, lat, errors)) => {
                report.count("cycles", ok);
                report.count("failed", failed);
                report.latency("connect").add(&lat);
                for e in errors {
                    report.error(e);
                }
            }
            Err(e) => report.error(format!("churn task: {e}")),
        }
    }
    ticker.abort();
    pb.finish_and_clear();
    let elapsed = started.elapsed();
    report.elapsed_s = elapsed.as_secs_f64();
    report.rate("cycles", per_sec(report.counter("cycles"), elapsed));
    report.count("failed", 0);
    let start = match warm_rss {
        Some(task) => task.await.ok().flatten(),
        None => None,
    };
    if let Some(cold) = cold_rss {
        report.gauge("server_rss_before_kib", cold as f64);
    }
    if let (Some(mem), Some(sampler), Some((start, start_nodes))) = (mem, sampler, start) {
        let during = sampler.finish().await;
        tokio::time::sleep(Duration::from_secs(args.settle)).await;
        report.gauge("server_rss_start_kib", start as f64);
        if let Some(peak) = during.iter().max() {
            report.gauge("server_rss_peak_kib", *peak as f64);
        }
        if let Some(last) = during.last() {
            report.gauge("server_rss_end_of_churn_kib", *last as f64);
        }
        if let Some((after, after_nodes)) = mem.snapshot().await {
            record_nodes(&mut report, "start", &start_nodes);
            record_nodes(&mut report, "after", &after_nodes);
            report.gauge("server_rss_after_kib", after as f64);
            if start > 0 {
                report.gauge(
                    "server_rss_growth_pct",
                    (after as f64 - start as f64) * 100.0 / start as f64,
                );
            }
        }
    }
    Ok(report)
}
