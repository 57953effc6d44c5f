//! `direct`: P sender→receiver pairs, W messages in flight per pair, for T
//! seconds. Reports delivered messages/s, the send→delivery latency, the
//! ack latency, and lost (acked but not delivered) and duplicated
//! deliveries. With `--server-pid`, the server's CPU time per delivered
//! message (from the first send until the last receiver is done).
//!
//! With n ≥ 2 hosts, the sender of pair i connects to host i mod n and its
//! receiver to host (i + 1) mod n: every message crosses nodes. The report
//! then lists the hosts and counts those pairs (`pairs_cross_node`).

use std::time::{Duration, Instant};

use crate::cli::{Common, DirectArgs};
use crate::hosts::Hosts;
use crate::report::{Report, SharedLatency};
use crate::scenario::{connect_many, per_sec, recv_loop, run_id, send_loop, Dest, Expect, Until};

pub async fn run(common: &Common, args: &DirectArgs) -> anyhow::Result<Report> {
    let hosts = Hosts::resolve(common).await?;
    let mut report = Report::new("direct");
    report.param("pairs", args.pairs);
    report.param("window", args.window);
    report.param("duration_s", args.duration);
    hosts.describe(&mut report);
    let (sender_host, receiver_host) = (|i: usize| i, |i: usize| i + 1);
    let run = run_id();
    let receivers: Vec<String> = (0..args.pairs)
        .map(|i| format!("{}-dr-{i}", common.prefix))
        .collect();
    let senders: Vec<String> = (0..args.pairs)
        .map(|i| format!("{}-ds-{i}", common.prefix))
        .collect();
    let pb = crate::progress::bar(common.progress(), 2 * args.pairs as u64, "connecting");
    // Receivers first: a direct message needs its recipient to exist.
    let limit = common.setup_timeout();
    let rx = connect_many(&hosts, &receivers, receiver_host, 100, limit, &pb).await;
    let tx = connect_many(&hosts, &senders, sender_host, 100, limit, &pb).await;
    pb.finish_and_clear();
    for e in rx.errors.iter().chain(&tx.errors) {
        report.error(e);
    }
    let pb = crate::progress::bar(common.progress(), 0, "acked");
    let cpu = crate::cpu::CpuClock::start(common.server_pid);
    let started = Instant::now();
    let stop = tokio::time::Instant::now() + Duration::from_secs(args.duration);
    let hard = stop + Duration::from_secs(args.grace);
    let mut tasks = Vec::new();
    let delivery = SharedLatency::new();
    for (i, (r, s)) in rx.conns.into_iter().zip(tx.conns).enumerate() {
        let (Some(r), Some(s)) = (r, s) else {
            report.count("pairs_failed", 1);
            continue;
        };
        if hosts.multi() {
            let cross = sender_host(i) % hosts.len() != receiver_host(i) % hosts.len();
            report.count("pairs_cross_node", u64::from(cross));
        }
        let (expect_tx, expect_rx) = tokio::sync::watch::channel(None);
        let recv = tokio::spawn(recv_loop(
            r,
            None,
            expect_rx,
            hard,
            delivery.clone(),
            pb.clone(),
        ));
        let dest = Dest::To(receivers[i].clone());
        let (window, body, pbs) = (
            args.window,
            args.body_bytes,
            indicatif::ProgressBar::hidden(),
        );
        let cmid = format!("{run}-{i}");
        let send = tokio::spawn(async move {
            let sent = send_loop(
                s,
                dest,
                cmid,
                window,
                Until::Time(stop),
                None,
                body,
                hard,
                pbs,
            )
            .await;
            let _ = expect_tx.send(Some(Expect {
                total: sent.acked,
                until: hard,
            }));
            sent
        });
        tasks.push((send, recv));
    }
    let mut send_end = Duration::ZERO;
    for (send, recv) in tasks {
        match send.await {
            Ok(s) => {
                let acked = s.record(&mut report);
                send_end = send_end.max(started.elapsed());
                match recv.await {
                    Ok(r) => {
                        report.count("delivered", r.unique);
                        report.count("duplicated", r.dups);
                        report.count("lost", acked.saturating_sub(r.unique));
                        if let Some(e) = r.error {
                            report.error(e);
                        }
                    }
                    Err(e) => report.error(format!("receiver task: {e}")),
                }
            }
            Err(e) => report.error(format!("sender task: {e}")),
        }
    }
    pb.finish_and_clear();
    if let Some(cpu) = cpu {
        cpu.record(&mut report, "delivered", "msg");
    }
    report.latency("delivery").add(&delivery.snapshot());
    let elapsed = started.elapsed();
    report.elapsed_s = elapsed.as_secs_f64();
    let sending = Duration::from_secs(args.duration).max(Duration::from_millis(1));
    report.rate("delivered", per_sec(report.counter("delivered"), sending));
    report.rate("acked", per_sec(report.counter("acked"), sending));
    // Counters always present, so reports can be compared.
    for k in ["lost", "duplicated", "delivered"] {
        report.count(k, 0);
    }
    if hosts.multi() {
        report.count("pairs_cross_node", 0);
    }
    Ok(report)
}
