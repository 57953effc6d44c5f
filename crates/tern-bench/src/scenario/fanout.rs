//! `fanout`: one group of M online members, S senders sending N messages
//! each, at a target rate or flat out (W in flight per sender). Reports
//! deliveries/s, send→delivery latency, ack latency, and lost and
//! duplicated deliveries (both must be 0).

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::cli::{Common, FanoutArgs};
use crate::net::Target;
use crate::report::Report;
use crate::scenario::{connect_many, per_sec, recv_loop, run_id, send_loop, Dest, Until};

pub async fn run(common: &Common, args: &FanoutArgs) -> anyhow::Result<Report> {
    if common.worker_index.is_some() {
        bail!("fanout does not run in several processes yet (--procs 1)");
    }
    let target = Target::resolve(common).await?;
    let mut report = Report::new("fanout");
    report.param("members", args.members);
    report.param("messages", args.messages);
    report.param("senders", args.senders);
    report.param("rate", args.rate);
    report.param("window", args.window);
    let run = run_id();
    let senders_n = args.senders.max(1);
    let members: Vec<String> = (0..args.members)
        .map(|i| format!("{}-fm-{i}", common.prefix))
        .collect();
    let senders: Vec<String> = (0..senders_n)
        .map(|i| format!("{}-fs-{i}", common.prefix))
        .collect();
    let pb = crate::progress::bar(
        common.progress(),
        (args.members + senders_n) as u64,
        "connecting",
    );
    let rx = connect_many(&target, &members, 200, common.setup_timeout(), &pb).await;
    let tx = connect_many(&target, &senders, 50, common.setup_timeout(), &pb).await;
    pb.finish_and_clear();
    for e in rx.errors.iter().chain(&tx.errors) {
        report.error(e);
    }
    report.count("members_connected", rx.ok() as u64);
    let owner = senders.first().cloned().unwrap_or_default();
    let mut all: Vec<String> = members.clone();
    all.extend(senders.iter().skip(1).cloned());
    let group = tokio::time::timeout(common.setup_timeout(), target.create_group(&owner, &all))
        .await
        .map_err(|_| anyhow::anyhow!("creating the group timed out"))??;
    let conv = format!("g:{group}");
    // Let the group's member_added pushes go out before measuring.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let total = (args.messages * senders_n) as u64;
    let pb = crate::progress::bar(common.progress(), total * rx.ok() as u64, "delivered");
    let (expect_tx, expect_rx) = tokio::sync::watch::channel(None);
    // Sending is bounded by --timeout, the deliveries by --grace after it.
    let send_hard = tokio::time::Instant::now() + common.setup_timeout();
    let recv_hard = send_hard + Duration::from_secs(args.grace);
    let receivers: Vec<_> = rx
        .conns
        .into_iter()
        .flatten()
        .map(|ws| tokio::spawn(recv_loop(ws, expect_rx.clone(), recv_hard, pb.clone())))
        .collect();
    let pace = (args.rate > 0.0).then(|| Duration::from_secs_f64(senders_n as f64 / args.rate));
    let started = Instant::now();
    let mut send_tasks = Vec::new();
    for (j, ws) in tx.conns.into_iter().enumerate() {
        let Some(ws) = ws else { continue };
        send_tasks.push(tokio::spawn(send_loop(
            ws,
            Dest::Conv(conv.clone()),
            format!("{run}-{j}"),
            args.window,
            Until::Count(args.messages as u64),
            pace,
            0,
            send_hard,
            indicatif::ProgressBar::hidden(),
        )));
    }
    let mut acked = 0;
    for t in send_tasks {
        match t.await {
            Ok(s) => {
                acked += s.acked;
                report.count("sent", s.sent);
                report.count("acked", s.acked);
                report.count("send_errors", s.error_count);
                report.latency("ack").add(&s.ack_latency);
                for e in s.errors {
                    report.error(e);
                }
            }
            Err(e) => report.error(format!("sender task: {e}")),
        }
    }
    let send_secs = started.elapsed();
    let _ = expect_tx.send(Some(acked));
    let mut delivered = 0;
    for r in receivers {
        match r.await {
            Ok(r) => {
                delivered += r.unique;
                report.count("duplicated", r.dups);
                report.count("lost", acked.saturating_sub(r.unique));
                report.latency("delivery").add(&r.latency);
                if let Some(e) = r.error {
                    report.error(e);
                }
            }
            Err(e) => report.error(format!("receiver task: {e}")),
        }
    }
    pb.finish_and_clear();
    let elapsed = started.elapsed();
    report.elapsed_s = elapsed.as_secs_f64();
    report.count("delivered", delivered);
    report.count("expected", acked * report.counter("members_connected"));
    for k in ["lost", "duplicated"] {
        report.count(k, 0);
    }
    report.gauge("send_s", send_secs.as_secs_f64());
    report.rate("deliveries", per_sec(delivered, elapsed));
    report.rate("messages", per_sec(acked, send_secs));
    Ok(report)
}
