//! `history`: fill a direct conversation with N messages (raw client, W in
//! flight), then read the whole history `--rounds` times with `tern-client`
//! over the run's transport (`sync` pages of `--page` after seq 0): messages/s read and the latency
//! of one page. With several hosts the writer (user 0) writes through the
//! first host and the reader (user 1) reads through the second.

use std::time::{Duration, Instant};

use anyhow::anyhow;
use tern_client::tern_proto::ConvId;
use tern_client::{Client, ClientConfig, ReconnectPolicy};

use crate::cli::{Common, HistoryArgs};
use crate::hosts::Hosts;
use crate::report::Report;
use crate::scenario::{per_sec, run_id, send_loop, Dest, Until};

pub async fn run(common: &Common, args: &HistoryArgs) -> anyhow::Result<Report> {
    let hosts = Hosts::resolve(common).await?;
    let (target, read_target) = (hosts.get(0), hosts.get(1));
    let mut report = Report::new("history");
    report.param("messages", args.messages);
    report.param("page", args.page);
    report.param("rounds", args.rounds);
    hosts.describe(&mut report);
    let run = run_id();
    // Fresh users per run: the conversation holds exactly this run's messages.
    let writer = format!("{}-hw-{run}", common.prefix);
    let reader = format!("{}-hr-{run}", common.prefix);
    let limit = common.setup_timeout();
    // The reader must exist before it can be written to.
    drop(read_target.connect_within(&reader, limit).await?);
    let conn = target.connect_within(&writer, limit).await?;
    let pb = crate::progress::bar(common.progress(), args.messages as u64, "filling");
    let fill_started = Instant::now();
    let hard =
        tokio::time::Instant::now() + limit + Duration::from_secs(args.messages as u64 / 100);
    let sent = send_loop(
        conn,
        Dest::To(reader.clone()),
        run.clone(),
        args.window,
        Until::Count(args.messages as u64),
        None,
        0,
        hard,
        pb.clone(),
    )
    .await;
    pb.finish_and_clear();
    let fill = fill_started.elapsed();
    report.count("written", sent.acked);
    report.rate("written", per_sec(sent.acked, fill));
    report.latency("write_ack").add(&sent.ack_latency);
    for e in sent.errors {
        report.error(e);
    }

    let url = read_target.client_url();
    let token = crate::token::mint(&common.jwt_secret, &reader)?;
    let cfg = ClientConfig::new(url, token)
        .with_reconnect(ReconnectPolicy::disabled())
        .with_request_timeout(limit);
    let (client, mut pushes) = tokio::time::timeout(limit, Client::connect(cfg))
        .await
        .map_err(|_| anyhow!("tern-client connect timed out"))??;
    let drain = tokio::spawn(async move { while pushes.recv().await.is_some() {} });
    let conv = ConvId::direct(&writer, &reader);
    let pb = crate::progress::bar(
        common.progress(),
        (args.messages * args.rounds) as u64,
        "syncing",
    );
    let read_started = Instant::now();
    let deadline = tokio::time::Instant::now() + limit;
    'rounds: for _ in 0..args.rounds {
        let mut after = 0;
        loop {
            if tokio::time::Instant::now() >= deadline {
                report.error("history: read deadline reached");
                break 'rounds;
            }
            let t0 = Instant::now();
            let page = match client.sync_after(&conv, after, args.page).await {
                Ok(p) => p,
                Err(e) => {
                    report.error(format!("sync: {e}"));
                    break 'rounds;
                }
            };
            report
                .latency("sync_page")
                .record(t0.elapsed().as_micros() as u64);
            let n = page.items.len() as u64;
            report.count("read", n);
            pb.inc(n);
            match page.items.last() {
                Some(m) if page.more => after = m.seq,
                _ => break,
            }
        }
        report.count("rounds", 1);
    }
    pb.finish_and_clear();
    let read = read_started.elapsed();
    report.elapsed_s = (fill + read).as_secs_f64();
    report.rate("read", per_sec(report.counter("read"), read));
    let _ = client.close().await;
    drop(client);
    drain.abort();
    Ok(report)
}
