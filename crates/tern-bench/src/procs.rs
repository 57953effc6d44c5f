//! `--procs K`: the parent starts K worker processes of this same binary
//! (`tern-bench __worker`, or [`Common::worker_exe`]); worker i binds its
//! sockets to 127.0.0.(i+1) when the server is on loopback.
//!
//! The parent and a worker talk in lines:
//!
//! - parent → worker stdin: first the worker's configuration as one JSON
//!   line ([`WorkerConfig`]); then, for `fanout`, commands (see below).
//! - worker → parent stdout: protocol words (`READY …`, `PROVISIONED …`),
//!   and at the end the worker's [`Report`] as one JSON line (histograms
//!   included), which the parent merges.
//!
//! `idle`: each worker prints `READY` once its connections are up; when all
//! are, the parent reads the server's memory (of each node, with several
//! hosts). Other scenarios just report. Every worker has the whole `--host`
//! list and places its users as one process would (user i at host i mod n).
//!
//! `fanout` (driven by [`crate::scenario::fanout`]): the parent sends
//! `PROVISION` (create your members' users: connect and close each; answer
//! `PROVISIONED <failed>`) only if the server does not know some member;
//! `CONNECT <conv>` (connect your members and receive the messages of
//! `<conv>`; answer `READY <connected>`); `DONE <acked>` (the senders are
//! done and `<acked>` messages were acked: finish once each member has them
//! all or `--grace` has passed, then print the report). Every wait on both
//! sides is bounded by the run's deadline; a worker whose stdin closes
//! stops.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::cli::{Common, Scenario};
use crate::report::Report;
use crate::server::{per_conn_by_node, record_nodes, MemSource, RssSampler};

/// First argument of a worker process (before any clap parsing).
pub const WORKER_ARG: &str = "__worker";
/// A worker's connections are up (idle; fanout: `READY <connected>`).
pub const READY: &str = "READY";
/// Fanout, parent → worker: create the users of your members.
pub const PROVISION: &str = "PROVISION";
/// Fanout, worker → parent: `PROVISIONED <failed>`.
pub const PROVISIONED: &str = "PROVISIONED";
/// Fanout, parent → worker: `CONNECT <conv>`.
pub const CONNECT: &str = "CONNECT";
/// Fanout, parent → worker: `DONE <acked>`.
pub const DONE: &str = "DONE";

/// What a worker is told on its first stdin line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerConfig {
    pub index: usize,
    pub common: Common,
    pub scenario: Scenario,
    /// The run's deadline, milliseconds from the worker's start.
    pub deadline_ms: u64,
}

/// A running worker process and its pipes.
pub struct Worker {
    pub index: usize,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

/// Starts `common.procs` workers for `scenario`, each told its
/// configuration; they are killed if dropped.
pub async fn spawn(
    common: &Common,
    scenario: &Scenario,
    deadline: Duration,
) -> anyhow::Result<Vec<Worker>> {
    let k = common.procs.max(1);
    let exe = match &common.worker_exe {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("locating tern-bench")?,
    };
    let mut workers = Vec::with_capacity(k);
    for index in 0..k {
        let mut child = Command::new(&exe)
            .arg(WORKER_ARG)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting worker {index} ({})", exe.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("worker {index}: no stdout"))?;
        let (tx, lines) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut r = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = r.next_line().await {
                if tx.send(line).await.is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut w = Worker {
            index,
            child,
            stdin,
            lines,
        };
        let config = WorkerConfig {
            index,
            common: common.clone(),
            scenario: scenario.clone(),
            deadline_ms: deadline.as_millis() as u64,
        };
        let line = serde_json::to_string(&config)?;
        let until = Instant::now() + Duration::from_secs(10);
        w.send(&line, until).await?;
        workers.push(w);
    }
    Ok(workers)
}

impl Worker {
    /// Writes one line to the worker's stdin, by `until`.
    pub async fn send(&mut self, line: &str, until: Instant) -> anyhow::Result<()> {
        let i = self.index;
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("worker {i}: stdin closed"))?;
        let write = async {
            stdin.write_all(line.as_bytes()).await?;
            stdin.write_all(b"\n").await?;
            stdin.flush().await
        };
        match tokio::time::timeout_at(until, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow!("worker {i}: writing to its stdin: {e}")),
            Err(_) => Err(anyhow!("worker {i}: its stdin is blocked")),
        }
    }

    /// The worker's next stdout line, by `until`.
    pub async fn next_line(&mut self, until: Instant) -> anyhow::Result<String> {
        match tokio::time::timeout_at(until, self.lines.recv()).await {
            Ok(Some(line)) => Ok(line),
            Ok(None) => {
                let status =
                    match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await {
                        Ok(Ok(s)) => s.to_string(),
                        Ok(Err(e)) => e.to_string(),
                        Err(_) => "still running".to_owned(),
                    };
                Err(anyhow!(
                    "worker {} closed its output ({status}); see its errors above",
                    self.index
                ))
            }
            Err(_) => Err(anyhow!(
                "worker {}: no answer before the deadline",
                self.index
            )),
        }
    }

    /// Waits for a line `<word> …` and returns the rest of it (split on
    /// whitespace). Any other line is an error.
    pub async fn expect(&mut self, word: &str, until: Instant) -> anyhow::Result<Vec<String>> {
        let line = self.next_line(until).await?;
        let mut parts = line.split_whitespace();
        if parts.next() != Some(word) {
            bail!(
                "worker {}: expected {word}, got {}",
                self.index,
                crate::net::truncate(&line)
            );
        }
        Ok(parts.map(str::to_owned).collect())
    }

    /// Waits for `<word> <number>` and returns the number.
    pub async fn expect_number(&mut self, word: &str, until: Instant) -> anyhow::Result<u64> {
        let rest = self.expect(word, until).await?;
        rest.first()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| anyhow!("worker {}: {word} without a number", self.index))
    }

    /// Reads the worker's report (its last JSON line), then waits for it to
    /// exit; all by `until`.
    pub async fn report(mut self, until: Instant) -> anyhow::Result<Report> {
        loop {
            let line = self.next_line(until).await?;
            if line.starts_with('{') {
                let report: Report = serde_json::from_str(&line)
                    .with_context(|| format!("worker {}: unreadable report", self.index))?;
                self.stdin = None;
                let _ = tokio::time::timeout_at(until, self.child.wait()).await;
                return Ok(report);
            }
        }
    }
}

/// Runs `scenario` in `common.procs` worker processes and merges their
/// reports; everything ends by `deadline` (+ 5 s for the parent to collect).
pub async fn run_parent(
    common: &Common,
    scenario: &Scenario,
    deadline: Duration,
) -> anyhow::Result<Report> {
    let end = Instant::now() + deadline + Duration::from_secs(5);
    let workers = spawn(common, scenario, deadline).await?;
    if let Scenario::Fanout(a) = scenario {
        return crate::scenario::fanout::run_with_workers(common, a, workers, end).await;
    }
    let k = workers.len();
    let (mem, source) = MemSource::detect(common).await;
    let start_rss = match &mem {
        Some(m) => m.snapshot().await,
        None => None,
    };
    let sampler = mem
        .clone()
        .map(|m| RssSampler::start(m, Duration::from_secs(1)));
    let work = async {
        let mut workers = workers;
        // Idle: once every worker holds its connections, read the RSS.
        let mut held = None;
        if let Scenario::Idle(a) = scenario {
            let mut ready = 0;
            for w in &mut workers {
                match w.next_line(end).await {
                    Ok(line) if line.trim() == READY => ready += 1,
                    Ok(line) => bail!(
                        "worker {}: expected {READY}, got {}",
                        w.index,
                        crate::net::truncate(&line)
                    ),
                    Err(e) => return Err(e),
                }
            }
            if ready == k {
                tokio::time::sleep(Duration::from_secs(a.settle)).await;
                if let Some(m) = &mem {
                    held = m.snapshot().await;
                }
            }
        }
        let mut merged = Report::default();
        for w in workers {
            let r = w.report(end).await?;
            merged.merge(&r);
        }
        Ok::<_, anyhow::Error>((merged, held))
    };
    let (mut merged, held) = tokio::time::timeout_at(end, work)
        .await
        .map_err(|_| anyhow!("workers passed the deadline of {deadline:?}; killed"))??;
    // The workers report their share of what `Scenario::share` splits; the
    // merged report states the whole run.
    match scenario {
        Scenario::Idle(a) => merged.param("count", a.count),
        Scenario::Connect(a) => {
            merged.param("count", a.count);
            merged.param("concurrency", a.concurrency);
        }
        Scenario::Direct(a) => merged.param("pairs", a.pairs),
        Scenario::Churn(a) => merged.param("concurrency", a.concurrency),
        Scenario::Fanout(_) | Scenario::History(_) => {}
    }
    let during = match sampler {
        Some(s) => s.finish().await,
        None => Vec::new(),
    };
    merged.memory_source = source;
    if let (Some(mem), Some((start, start_nodes))) = (mem, start_rss) {
        merged.gauge("server_rss_start_kib", start as f64);
        record_nodes(&mut merged, "start", &start_nodes);
        if let Some(peak) = during.iter().max() {
            merged.gauge("server_rss_peak_kib", *peak as f64);
        }
        if let Some((h, held_nodes)) = held {
            merged.gauge("server_rss_held_kib", h as f64);
            let n = merged.counter("connected");
            if n > 0 {
                merged.gauge("server_kib_per_conn", (h as f64 - start as f64) / n as f64);
            }
            if mem.per_node() {
                record_nodes(&mut merged, "held", &held_nodes);
                per_conn_by_node(&mut merged, &start_nodes, &held_nodes);
            }
        }
        if let Scenario::Churn(a) = scenario {
            tokio::time::sleep(Duration::from_secs(a.settle)).await;
            if let Some((after, after_nodes)) = mem.snapshot().await {
                record_nodes(&mut merged, "after", &after_nodes);
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
    c.worker_index = Some(index);
    // The parent reads the server's memory.
    c.server_pid = None;
    c
}

/// The body of a worker process (`tern-bench __worker`): reads its
/// configuration from stdin, runs its share, prints its report. Returns
/// the process exit code.
pub async fn worker_main() -> std::process::ExitCode {
    use std::process::ExitCode;
    let (tx, mut commands) = mpsc::channel::<String>(16);
    // Stdin lines, forwarded; the channel closes when the parent's end does.
    tokio::spawn(async move {
        let mut r = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = r.next_line().await {
            if tx.send(line).await.is_err() {
                break;
            }
        }
    });
    let config = match tokio::time::timeout(Duration::from_secs(30), commands.recv()).await {
        Ok(Some(line)) => match serde_json::from_str::<WorkerConfig>(&line) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("tern-bench worker: bad configuration line: {e}");
                return ExitCode::FAILURE;
            }
        },
        _ => {
            eprintln!("tern-bench worker: no configuration on stdin (started by hand?)");
            return ExitCode::FAILURE;
        }
    };
    let i = config.index;
    let deadline = Duration::from_millis(config.deadline_ms);
    let end = Instant::now() + deadline;
    let k = config.common.procs.max(1);
    let run = async {
        match &config.scenario {
            Scenario::Fanout(a) => {
                let mut c = config.common.clone();
                c.worker_index = Some(i);
                c.server_pid = None;
                crate::scenario::fanout::worker(&c, a, i, &mut commands, end).await
            }
            s => {
                let c = worker_common(&config.common, i);
                crate::run_scenario(&c, &s.share(k, i)).await
            }
        }
    };
    match tokio::time::timeout_at(end, run).await {
        Ok(Ok(report)) => match serde_json::to_string(&report) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("tern-bench worker {i}: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(Err(e)) => {
            eprintln!("tern-bench worker {i}: {e:#}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("tern-bench worker {i}: deadline of {deadline:?} reached");
            ExitCode::FAILURE
        }
    }
}
