//! `fanout`: one group of M online members, S senders sending N messages
//! each, at a target rate or flat out (W in flight per sender). Reports
//! deliveries/s, send→delivery latency, ack latency, and lost and
//! duplicated deliveries (both must be 0).
//!
//! The run, in one process or with `--procs K` (members split over the K
//! workers, the senders in the parent; see [`crate::procs`] for the lines
//! the parent and the workers exchange):
//!
//! 1. The parent builds the group over HTTP while the members are offline,
//!    so that no `group` push (which carries the whole member list) goes to
//!    M members: `POST /groups` then `POST /groups/{id}/members` in chunks
//!    under the API's 64 KiB body limit. Owner: sender 0. If the server
//!    does not know some member yet (404), the members' users are created
//!    first by connecting and closing each once (`PROVISION`), and the
//!    request is retried.
//! 2. The members connect and start reading (`CONNECT <conv>` → `READY n`),
//!    then the senders connect and send.
//! 3. The parent tells how many messages were acked (`DONE <acked>`); each
//!    member's receiver stops once it has that many distinct seqs of the
//!    group, or `--grace` after. Each process reports unique deliveries,
//!    duplicates and the latency histogram (the body starts with the send
//!    time in µs); lost = acked × members connected − unique deliveries.
//!    With `--server-pid`, the server's CPU time per delivery, from the
//!    first send until the members are done.
//!
//! With several hosts, member j connects to host j mod n (in whichever
//! process holds it) and sender j to host j mod n; the group is built
//! through the first host. The report lists the hosts and the members
//! connected on each (`node<k>_connected`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use indicatif::ProgressBar;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::cli::{span, Common, FanoutArgs};
use crate::hosts::{count_per_host, Hosts};
use crate::net::{name_chunks, HttpError, MAX_NAMES_BODY};
use crate::procs::{Worker, CONNECT, DONE, PROVISION, PROVISIONED, READY};
use crate::report::{Report, SharedLatency};
use crate::scenario::{
    connect_many, per_sec, provision_many, recv_loop, run_id, send_loop, Dest, Expect, Received,
    Until,
};

type Deadline = tokio::time::Instant;

/// Extra time a parent gives workers on top of their own bounds.
const MARGIN: Duration = Duration::from_secs(5);
/// Members connected (or provisioned) at once, per process.
const CONCURRENCY: usize = 200;
/// Gauge the member side reports: wall-clock µs of its last delivery.
const LAST_DELIVERY_US: &str = "last_delivery_us";

/// Member `j` of the group (the same names whatever `--procs`).
pub fn member_name(prefix: &str, j: usize) -> String {
    format!("{prefix}-fm-{j}")
}

/// Sender `j` (sender 0 owns the group).
pub fn sender_name(prefix: &str, j: usize) -> String {
    format!("{prefix}-fs-{j}")
}

/// The run in this process (`--procs 1`).
pub async fn run(common: &Common, args: &FanoutArgs) -> anyhow::Result<Report> {
    let deadline = common
        .deadline
        .unwrap_or(args.grace + 2 * common.timeout + 10);
    let end = Deadline::now() + Duration::from_secs(deadline);
    let hosts = Hosts::resolve(common).await?;
    let names = (0..args.members)
        .map(|j| member_name(&common.prefix, j))
        .collect();
    let local = Local::new(hosts.clone(), names, 0, common, args, end);
    coordinate(common, args, hosts, Members::Local(Box::new(local)), 1, end).await
}

/// The run with the members in `workers` (the parent of `--procs K`).
pub async fn run_with_workers(
    common: &Common,
    args: &FanoutArgs,
    workers: Vec<Worker>,
    end: Deadline,
) -> anyhow::Result<Report> {
    let k = workers.len();
    // Workers use 127.0.0.1..=K; the senders (and the HTTP calls) use the
    // next address, so they do not compete for the workers' ports.
    let last = (k % 254 + 1) as u8;
    let hosts = Hosts::resolve(common)
        .await?
        .with_loopback_source(std::net::Ipv4Addr::new(127, 0, 0, last).into());
    coordinate(common, args, hosts, Members::Procs(workers), k, end).await
}

/// Worker `index` of `--procs K`: its share of the members, driven by the
/// parent's commands (one per line on `commands`); returns its report
/// after `DONE`.
pub async fn worker(
    common: &Common,
    args: &FanoutArgs,
    index: usize,
    commands: &mut mpsc::Receiver<String>,
    end: Deadline,
) -> anyhow::Result<Report> {
    let hosts = Hosts::resolve(common).await?;
    let mine = span(args.members, common.procs.max(1), index);
    let first = mine.start;
    let names = mine.map(|j| member_name(&common.prefix, j)).collect();
    let mut local = Local::new(hosts, names, first, common, args, end);
    loop {
        let line = match tokio::time::timeout_at(end, commands.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => bail!("the parent closed the pipe"),
            Err(_) => bail!("no command from the parent before the deadline"),
        };
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some(PROVISION), None) => {
                let failed = local.provision().await;
                println!("{PROVISIONED} {failed}");
            }
            (Some(CONNECT), Some(conv)) => {
                let n = local.connect(conv).await;
                println!("{READY} {n}");
            }
            (Some(DONE), Some(acked)) => {
                let acked = acked
                    .parse()
                    .map_err(|_| anyhow!("bad {DONE} line: {}", crate::net::truncate(&line)))?;
                return Ok(local.finish(acked).await);
            }
            _ => bail!(
                "unknown command from the parent: {}",
                crate::net::truncate(&line)
            ),
        }
    }
}

/// The members of this run: in this process, or in worker processes.
enum Members {
    Local(Box<Local>),
    Procs(Vec<Worker>),
}

impl Members {
    /// Creates the members' users; returns how many failed.
    async fn provision(&mut self, until: Deadline) -> anyhow::Result<u64> {
        match self {
            Self::Local(l) => tokio::time::timeout_at(until, l.provision())
                .await
                .map_err(|_| anyhow!("provisioning the members timed out")),
            Self::Procs(workers) => {
                for w in workers.iter_mut() {
                    w.send(PROVISION, until).await?;
                }
                let mut failed = 0;
                for w in workers.iter_mut() {
                    failed += w.expect_number(PROVISIONED, until).await?;
                }
                Ok(failed)
            }
        }
    }

    /// Connects the members, which start receiving `conv`; returns how
    /// many are connected.
    async fn connect(&mut self, conv: &str, until: Deadline) -> anyhow::Result<u64> {
        match self {
            Self::Local(l) => tokio::time::timeout_at(until, l.connect(conv))
                .await
                .map_err(|_| anyhow!("connecting the members timed out")),
            Self::Procs(workers) => {
                let line = format!("{CONNECT} {conv}");
                for w in workers.iter_mut() {
                    w.send(&line, until).await?;
                }
                let mut n = 0;
                for w in workers.iter_mut() {
                    n += w.expect_number(READY, until).await?;
                }
                Ok(n)
            }
        }
    }

    /// `acked` messages were acked: waits for the members' deliveries and
    /// returns their (merged) report.
    async fn finish(self, acked: u64, until: Deadline) -> anyhow::Result<Report> {
        match self {
            Self::Local(l) => tokio::time::timeout_at(until, l.finish(acked))
                .await
                .map_err(|_| anyhow!("the receivers did not finish in time")),
            Self::Procs(mut workers) => {
                let line = format!("{DONE} {acked}");
                for w in &mut workers {
                    w.send(&line, until).await?;
                }
                let mut merged = Report::new("fanout");
                for w in workers {
                    merged.merge(&w.report(until).await?);
                }
                Ok(merged)
            }
        }
    }
}

/// Members connected from this process.
struct Local {
    hosts: Hosts,
    names: Vec<String>,
    /// The index of `names[0]` among all members (its host: `first` mod n).
    first: usize,
    limit: Duration,
    grace: Duration,
    end: Deadline,
    progress: bool,
    report: Report,
    delivery: SharedLatency,
    receiving: Option<Receiving>,
}

/// The members' receivers, and how to tell them when they are done.
struct Receiving {
    tasks: Vec<JoinHandle<Received>>,
    expect: watch::Sender<Option<Expect>>,
}

impl Local {
    fn new(
        hosts: Hosts,
        names: Vec<String>,
        first: usize,
        common: &Common,
        args: &FanoutArgs,
        end: Deadline,
    ) -> Self {
        Self {
            hosts,
            names,
            first,
            limit: common.setup_timeout(),
            grace: Duration::from_secs(args.grace),
            end,
            progress: common.progress(),
            report: Report::new("fanout"),
            delivery: SharedLatency::new(),
            receiving: None,
        }
    }

    /// Connects and closes every member once (a valid token creates its
    /// user); returns how many failed.
    async fn provision(&mut self) -> u64 {
        let first = self.first;
        let (failed, errors) = provision_many(
            &self.hosts,
            &self.names,
            |i| first + i,
            CONCURRENCY,
            self.limit,
        )
        .await;
        for e in errors {
            self.report.error(e);
        }
        self.report.count("provision_failed", failed);
        failed
    }

    /// Connects the members and starts their receivers (messages of `conv`
    /// only); returns how many are connected.
    async fn connect(&mut self, conv: &str) -> u64 {
        let pb = crate::progress::bar(self.progress, self.names.len() as u64, "connecting");
        let first = self.first;
        let opened = connect_many(
            &self.hosts,
            &self.names,
            |i| first + i,
            CONCURRENCY,
            self.limit,
            &pb,
        )
        .await;
        pb.finish_and_clear();
        for e in &opened.errors {
            self.report.error(e);
        }
        let ok = opened.ok() as u64;
        self.report.count("members_connected", ok);
        self.report
            .count("members_failed", self.names.len() as u64 - ok);
        self.report.latency("member_connect").add(&opened.latency);
        count_per_host(
            &mut self.report,
            &self.hosts,
            opened.conns.iter().map(Option::is_some),
            |i| first + i,
        );
        let (tx, rx) = watch::channel(None);
        let conv: Arc<str> = conv.into();
        let tasks = opened
            .conns
            .into_iter()
            .flatten()
            .map(|c| {
                tokio::spawn(recv_loop(
                    c,
                    Some(conv.clone()),
                    rx.clone(),
                    self.end,
                    self.delivery.clone(),
                    ProgressBar::hidden(),
                ))
            })
            .collect();
        self.receiving = Some(Receiving { tasks, expect: tx });
        ok
    }

    /// Waits until every receiver has `acked` messages or `--grace` has
    /// passed; returns this side's report.
    async fn finish(mut self, acked: u64) -> Report {
        let until = (Deadline::now() + self.grace).min(self.end);
        let mut last_us = 0;
        if let Some(Receiving { tasks, expect }) = self.receiving.take() {
            let _ = expect.send(Some(Expect {
                total: acked,
                until,
            }));
            for t in tasks {
                match t.await {
                    Ok(r) => {
                        self.report.count("delivered", r.unique);
                        self.report.count("duplicated", r.dups);
                        self.report.count("lost", acked.saturating_sub(r.unique));
                        if r.unique > acked {
                            // Delivered but never acked (a sender lost
                            // its connection with sends in flight).
                            self.report
                                .count("delivered_beyond_acked", r.unique - acked);
                        }
                        last_us = last_us.max(r.last_us);
                        if let Some(e) = r.error {
                            self.report.error(e);
                        }
                    }
                    Err(e) => self.report.error(format!("receiver task: {e}")),
                }
            }
        }
        self.report
            .latency("delivery")
            .add(&self.delivery.snapshot());
        for k in ["delivered", "lost", "duplicated", "members_connected"] {
            self.report.count(k, 0);
        }
        self.report.gauge(LAST_DELIVERY_US, last_us as f64);
        self.report
    }
}

/// The parent's part: the group, the senders, and the merged figures.
async fn coordinate(
    common: &Common,
    args: &FanoutArgs,
    hosts: Hosts,
    mut members: Members,
    procs: usize,
    end: Deadline,
) -> anyhow::Result<Report> {
    let mut report = Report::new("fanout");
    report.param("members", args.members);
    report.param("messages", args.messages);
    report.param("senders", args.senders);
    report.param("rate", args.rate);
    report.param("window", args.window);
    hosts.describe(&mut report);
    let run = run_id();
    let limit = common.setup_timeout();
    let senders_n = args.senders.max(1);
    let senders: Vec<String> = (0..senders_n)
        .map(|j| sender_name(&common.prefix, j))
        .collect();
    let (owner, other_senders) = senders.split_at(1);
    let owner = owner.first().cloned().unwrap_or_default();
    let mut all: Vec<String> = (0..args.members)
        .map(|j| member_name(&common.prefix, j))
        .collect();
    all.extend(other_senders.iter().cloned());

    let setup = Instant::now();
    let group = build_group(
        &hosts,
        &owner,
        &all,
        other_senders,
        &mut members,
        common,
        &mut report,
        end,
    )
    .await?;
    let conv = format!("g:{group}");
    // Includes provisioning, if any.
    report.gauge("group_s", setup.elapsed().as_secs_f64());
    let t0 = Instant::now();
    let connected = members
        .connect(&conv, (Deadline::now() + limit + MARGIN).min(end))
        .await?;
    report.gauge("connect_s", t0.elapsed().as_secs_f64());
    if connected == 0 && args.members > 0 {
        report.error("no member connected");
    }
    let tx = connect_many(&hosts, &senders, |j| j, 50, limit, &ProgressBar::hidden()).await;
    for e in &tx.errors {
        report.error(e);
    }
    if tx.ok() == 0 {
        report.error("no sender connected: nothing was sent");
    }
    report.gauge("setup_s", setup.elapsed().as_secs_f64());

    let total = (args.messages * senders_n) as u64;
    let pb = crate::progress::bar(common.progress(), total, "acked");
    // Sending is bounded by --timeout, the deliveries by --grace after it.
    let send_hard = (Deadline::now() + limit).min(end);
    let pace = (args.rate > 0.0).then(|| Duration::from_secs_f64(senders_n as f64 / args.rate));
    let cpu = crate::cpu::CpuClock::start(common.server_pid);
    let start_us = crate::token::now_us();
    let started = Instant::now();
    let mut send_tasks = Vec::new();
    for (j, conn) in tx.conns.into_iter().enumerate() {
        let Some(conn) = conn else { continue };
        send_tasks.push(tokio::spawn(send_loop(
            conn,
            Dest::Conv(conv.clone()),
            format!("{run}-{j}"),
            args.window,
            Until::Count(args.messages as u64),
            pace,
            0,
            send_hard,
            pb.clone(),
        )));
    }
    let acked = super::record_senders(send_tasks, &mut report).await;
    let send_secs = started.elapsed();
    pb.finish_and_clear();
    let until = (Deadline::now() + Duration::from_secs(args.grace) + MARGIN).min(end);
    let side = members.finish(acked, until).await?;
    report.merge(&side);
    if let Some(cpu) = cpu {
        cpu.record(&mut report, "delivered", "delivery");
    }

    let delivered = report.counter("delivered");
    let receiving = report.counter("members_connected");
    report.count("expected", acked * receiving);
    for k in ["sent", "acked", "lost", "duplicated"] {
        report.count(k, 0);
    }
    let last_us = report.gauges.remove(LAST_DELIVERY_US).unwrap_or(0.0) as u64;
    let deliver = Duration::from_micros(last_us.saturating_sub(start_us));
    report.elapsed_s = started.elapsed().as_secs_f64();
    report.procs = procs;
    report.gauge("send_s", send_secs.as_secs_f64());
    report.gauge("deliver_s", deliver.as_secs_f64());
    // First send to last delivery.
    report.rate("deliveries", per_sec(delivered, deliver));
    report.rate("messages", per_sec(acked, send_secs));
    Ok(report)
}

/// Creates the group (owner `owner`) with `all` as members, in requests
/// under the body limit, through the first host; creates the users first
/// if the server does not know some of them. Returns the group id.
#[allow(clippy::too_many_arguments)]
async fn build_group(
    hosts: &Hosts,
    owner: &str,
    all: &[String],
    other_senders: &[String],
    members: &mut Members,
    common: &Common,
    report: &mut Report,
    end: Deadline,
) -> anyhow::Result<String> {
    let limit = common.setup_timeout();
    let target = hosts.first();
    let chunks = name_chunks(all, MAX_NAMES_BODY);
    report.count("group_requests", 0);
    let mut group: Option<String> = None;
    let mut provisioned = false;
    let mut next = 0;
    while let Some(chunk) = chunks.get(next) {
        let call = async {
            match &group {
                None => target.create_group(owner, chunk).await.map(Some),
                Some(id) => target.add_members(owner, id, chunk).await.map(|()| None),
            }
        };
        let r = tokio::time::timeout_at((Deadline::now() + limit).min(end), call)
            .await
            .map_err(|_| anyhow!("building the group timed out"))?;
        report.count("group_requests", 1);
        match r {
            Ok(created) => {
                if created.is_some() {
                    group = created;
                }
                next += 1;
            }
            Err(e)
                if !provisioned
                    && e.downcast_ref::<HttpError>()
                        .is_some_and(|h| h.status == 404) =>
            {
                // Some member is not a user yet: create them all, retry.
                provisioned = true;
                let t0 = Instant::now();
                // Sender j + 1 is at host j + 1 (sender 0 owns the group).
                let (failed, errors) =
                    provision_many(hosts, other_senders, |j| j + 1, 50, limit).await;
                for e in errors {
                    report.error(e);
                }
                report.count("provision_failed", failed);
                // The members' failures are in their side's report.
                members
                    .provision((Deadline::now() + limit + MARGIN).min(end))
                    .await?;
                report.gauge("provision_s", t0.elapsed().as_secs_f64());
            }
            Err(e) => {
                return Err(e.context(format!("building the group of {} members", all.len() + 1)))
            }
        }
    }
    group.ok_or_else(|| anyhow!("no group was created"))
}
