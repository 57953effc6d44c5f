//! `direct` against a peer broker: P pairs, each a receiver subscribed to
//! its own topic and a sender publishing on it with W in flight, for T
//! seconds. Reports what tern's `direct` reports (delivered/s, delivery
//! latency, lost; ack latency at QoS 1) and, with `--server-pid`, the
//! broker's CPU time per delivered message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{open_all, send_loop, wait_deliveries, Broker, Tally, Window};
use crate::cli::{Common, DirectArgs};
use crate::cpu::CpuClock;
use crate::report::{Report, SharedLatency};
use crate::scenario::{per_sec, run_id, Until};

/// Connections opened at once.
const CONCURRENCY: usize = 100;

pub async fn run(common: &Common, args: &DirectArgs, broker: &Broker) -> anyhow::Result<Report> {
    let mut report = Report::new("direct");
    report.param("pairs", args.pairs);
    report.param("window", args.window);
    report.param("duration_s", args.duration);
    report.param("peer", broker.peer.name());
    let run = run_id();
    let name = |role: &str, i: usize| format!("{}-{run}-{role}-{i}", common.prefix);
    let topic = |i: usize| broker.topic(&[&common.prefix, &run, "d", &i.to_string()]);
    let delivery = SharedLatency::new();
    let windows: Vec<Window> = (0..args.pairs).map(|_| Window::new(args.window)).collect();
    let tallies: Vec<Arc<Tally>> = windows
        .iter()
        .map(|w| {
            let frees = (!broker.acks()).then(|| w.clone());
            Arc::new(Tally::new(delivery.clone(), frees))
        })
        .collect();

    // Receivers first: a message published before its subscription is lost.
    let limit = common.setup_timeout();
    let (rx, rx_errors) = open_all(args.pairs, CONCURRENCY, limit, |i| {
        let (id, topic, tally) = (name("dr", i), topic(i), tallies[i].clone());
        async move { broker.subscribe(&id, &topic, tally).await }
    })
    .await;
    let (tx, tx_errors) = open_all(args.pairs, CONCURRENCY, limit, |i| {
        let (id, topic, window) = (name("ds", i), topic(i), &windows[i]);
        async move { broker.publisher(&id, &topic, window, args.body_bytes).await }
    })
    .await;
    for e in rx_errors.iter().chain(&tx_errors) {
        report.error(e);
    }

    let cpu = CpuClock::start(common.server_pid);
    let started = Instant::now();
    let stop = tokio::time::Instant::now() + Duration::from_secs(args.duration);
    let hard = stop + Duration::from_secs(args.grace);
    let mut pairs = Vec::new();
    for (i, (r, s)) in rx.into_iter().zip(tx).enumerate() {
        let (Some(r), Some(s)) = (r, s) else {
            report.count("pairs_failed", 1);
            continue;
        };
        let send = send_loop(
            s,
            windows[i].clone(),
            Until::Time(stop),
            None,
            args.body_bytes,
            hard,
        );
        pairs.push((tokio::spawn(send), r, tallies[i].clone()));
    }
    for (send, receiver, tally) in pairs {
        let s = match send.await {
            Ok(s) => s,
            Err(e) => {
                report.error(format!("sender task: {e}"));
                let _ = receiver.stop().await;
                continue;
            }
        };
        let acked = s.record(&mut report);
        wait_deliveries(|| tally.delivered(), acked, hard).await;
        if let Some(e) = receiver.stop().await {
            report.error(e);
        }
        report.count("delivered", tally.delivered());
        report.count("lost", acked.saturating_sub(tally.delivered()));
    }
    if let Some(cpu) = cpu {
        cpu.record(&mut report, "delivered", "msg");
    }
    report.latency("delivery").add(&delivery.snapshot());
    if !broker.acks() {
        // No acks: keep the key out of the report rather than show zeros.
        report.latencies.remove("ack");
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    let sending = Duration::from_secs(args.duration).max(Duration::from_millis(1));
    report.rate("delivered", per_sec(report.counter("delivered"), sending));
    report.rate("acked", per_sec(report.counter("acked"), sending));
    for k in ["lost", "delivered"] {
        report.count(k, 0);
    }
    Ok(report)
}
