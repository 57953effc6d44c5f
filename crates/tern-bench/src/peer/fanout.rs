//! `fanout` against a peer broker: M members subscribed to one topic, S
//! senders publishing N messages each on it, at a target rate or flat out
//! (W in flight per sender). Reports what tern's `fanout` reports
//! (deliveries/s from the first send to the last delivery, delivery
//! latency, lost) and, with `--server-pid`, the broker's CPU time per
//! delivery.
//!
//! Without acks (QoS 0, NATS) the senders share one window of S × W,
//! freed one slot per M deliveries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{open_all, send_loop, wait_deliveries, Broker, Tally, Window};
use crate::cli::{Common, FanoutArgs};
use crate::cpu::CpuClock;
use crate::report::{Report, SharedLatency};
use crate::scenario::{per_sec, run_id, Until};

/// Members connected at once.
const CONCURRENCY: usize = 200;

pub async fn run(common: &Common, args: &FanoutArgs, broker: &Broker) -> anyhow::Result<Report> {
    let mut report = Report::new("fanout");
    report.param("members", args.members);
    report.param("messages", args.messages);
    report.param("senders", args.senders);
    report.param("rate", args.rate);
    report.param("window", args.window);
    report.param("peer", broker.peer.name());
    let run = run_id();
    let topic = broker.topic(&[&common.prefix, &run, "f"]);
    let senders_n = args.senders.max(1);
    let shared = Window::new(args.window * senders_n);
    let delivery = SharedLatency::new();
    let frees = (!broker.acks()).then(|| shared.clone());
    let tally = Arc::new(Tally::new(delivery.clone(), frees));

    let limit = common.setup_timeout();
    let t0 = Instant::now();
    let (members, errors) = open_all(args.members, CONCURRENCY, limit, |j| {
        let id = format!("{}-{run}-fm-{j}", common.prefix);
        let (topic, tally) = (&topic, tally.clone());
        async move { broker.subscribe(&id, topic, tally).await }
    })
    .await;
    let members: Vec<_> = members.into_iter().flatten().collect();
    let connected = members.len() as u64;
    tally.set_receivers(connected);
    report.count("members_connected", connected);
    report.count("members_failed", args.members as u64 - connected);
    report.gauge("connect_s", t0.elapsed().as_secs_f64());
    let windows: Vec<Window> = (0..senders_n)
        .map(|_| match broker.acks() {
            true => Window::new(args.window),
            false => shared.clone(),
        })
        .collect();
    let (senders, sender_errors) = open_all(senders_n, 50, limit, |j| {
        let id = format!("{}-{run}-fs-{j}", common.prefix);
        let (topic, window) = (&topic, &windows[j]);
        async move { broker.publisher(&id, topic, window, 0).await }
    })
    .await;
    for e in errors.iter().chain(&sender_errors) {
        report.error(e);
    }
    if connected == 0 && args.members > 0 {
        report.error("no member connected");
    }

    // Sending is bounded by --timeout, the deliveries by --grace after it.
    let send_hard = tokio::time::Instant::now() + limit;
    let pace = (args.rate > 0.0).then(|| Duration::from_secs_f64(senders_n as f64 / args.rate));
    let cpu = CpuClock::start(common.server_pid);
    let start_us = crate::token::now_us();
    let started = Instant::now();
    let tasks: Vec<_> = senders
        .into_iter()
        .zip(&windows)
        .filter_map(|(s, w)| Some((s?, w.clone())))
        .map(|(s, w)| {
            let count = Until::Count(args.messages as u64);
            tokio::spawn(send_loop(s, w, count, pace, 0, send_hard))
        })
        .collect();
    if tasks.is_empty() {
        report.error("no sender connected: nothing was sent");
    }
    let acked = crate::scenario::record_senders(tasks, &mut report).await;
    let send_secs = started.elapsed();
    let expected = acked * connected;
    let until = tokio::time::Instant::now() + Duration::from_secs(args.grace);
    wait_deliveries(|| tally.delivered(), expected, until).await;
    for m in members {
        if let Some(e) = m.stop().await {
            report.error(e);
        }
    }
    let delivered = tally.delivered();
    report.count("delivered", delivered);
    if let Some(cpu) = cpu {
        cpu.record(&mut report, "delivered", "delivery");
    }
    report.latency("delivery").add(&delivery.snapshot());
    if !broker.acks() {
        report.latencies.remove("ack");
    }
    report.count("expected", expected);
    report.count("lost", expected.saturating_sub(delivered));
    for k in ["sent", "acked"] {
        report.count(k, 0);
    }
    let deliver = Duration::from_micros(tally.last_us().saturating_sub(start_us));
    report.elapsed_s = started.elapsed().as_secs_f64();
    report.gauge("send_s", send_secs.as_secs_f64());
    report.gauge("deliver_s", deliver.as_secs_f64());
    report.rate("deliveries", per_sec(delivered, deliver));
    report.rate("messages", per_sec(acked, send_secs));
    Ok(report)
}
