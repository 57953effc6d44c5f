//! `--procs K`: the parent re-executes itself as K worker processes with
//! `--worker-index i`; worker i binds its sockets to 127.0.0.(i+1) (when the
//! server is on loopback), runs its share of the load, prints
//! `{"ready":true}` once its connections are up (idle) and its report as one
//! JSON line on stdout. The parent reads the server's RSS and merges the
//! reports.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::cli::{Common, Scenario};
use crate::report::Report;
use crate::server::{rss_kib, RssSampler};

/// Runs `scenario` in `common.procs` worker processes and merges their
/// reports, within `deadline`.
pub async fn run_parent(
    common: &Common,
    scenario: &Scenario,
    deadline: Duration,
) -> anyhow::Result<Report> {
    let k = common.procs.max(1);
    let exe = std::env::current_exe().context("locating tern-bench")?;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let start_rss = common.server_pid.and_then(rss_kib);
    let sampler = common
        .server_pid
        .map(|pid| RssSampler::start(pid, Duration::from_secs(1)));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(k);
    let mut children = Vec::new();
    for i in 0..k {
        let mut child = Command::new(&exe)
            .args(&args)
            .arg("--worker-index")
            .arg(i.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting worker {i}"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("worker {i}: no stdout"))?;
        let ready = ready_tx.clone();
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let mut report = None;
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("\"ready\"") && !line.contains("\"scenario\"") {
                    let _ = ready.send(()).await;
                } else if let Ok(r) = serde_json::from_str::<Report>(&line) {
                    report = Some(r);
                }
            }
            report
        });
        children.push((child, reader));
    }
    drop(ready_tx);
    let work = async {
        // Idle: once every worker holds its connections, read the RSS.
        let mut held = None;
        if let Scenario::Idle(a) = scenario {
            let mut n = 0;
            while n < k && ready_rx.recv().await.is_some() {
                n += 1;
            }
            if n == k {
                tokio::time::sleep(Duration::from_secs(a.settle)).await;
                held = common.server_pid.and_then(rss_kib);
            }
        }
        let mut merged = Report::default();
        for (i, (mut child, reader)) in children.into_iter().enumerate() {
            let status = child.wait().await?;
            match reader.await {
                Ok(Some(r)) => merged.merge(&r),
                _ => bail!("worker {i} gave no report ({status})"),
            }
        }
        Ok::<_, anyhow::Error>((merged, held))
    };
    let (mut merged, held) = tokio::time::timeout(deadline, work)
        .await
        .map_err(|_| anyhow!("workers passed the deadline of {deadline:?}; killed"))??;
    let during = match sampler {
        Some(s) => s.finish().await,
        None => Vec::new(),
    };
    if let (Some(pid), Some(start)) = (common.server_pid, start_rss) {
        merged.gauge("server_rss_start_kib", start as f64);
        if let Some(peak) = during.iter().max() {
            merged.gauge("server_rss_peak_kib", *peak as f64);
        }
        if let Some(h) = held {
            merged.gauge("server_rss_held_kib", h as f64);
            let n = merged.counter("connected");
            if n > 0 {
                merged.gauge("server_kib_per_conn", (h as f64 - start as f64) / n as f64);
            }
        }
        if let Scenario::Churn(a) = scenario {
            tokio::time::sleep(Duration::from_secs(a.settle)).await;
            if let Some(after) = rss_kib(pid) {
                merged.gauge("server_rss_after_kib", after as f64);
                if start > 0 {
                    merged.gauge(
                        "server_rss_growth_pct",
                        (after as f64 - start as f64) * 100.0 / start as f64,
                    );
                }
            }
        }
    }
    // Rates summed over workers that did not run in lockstep are upper
    // bounds; recompute the connect rate of idle from the total.
    if let Scenario::Idle(_) = scenario {
        if merged.elapsed_s > 0.0 {
            let n = merged.counter("connected") as f64;
            merged.rate("connects", n / merged.elapsed_s);
        }
    }
    Ok(merged)
}

/// In a worker: this worker's view of the options.
pub fn worker_common(common: &Common, index: usize) -> Common {
    let mut c = common.clone();
    c.prefix = format!("{}w{index}", common.prefix);
    // The parent reads the server's memory.
    c.server_pid = None;
    c
}
