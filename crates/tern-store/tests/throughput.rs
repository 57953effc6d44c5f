//! Rough write-path throughput of both stores (ignored by default; run with
//! `cargo test -p tern-store --release --test throughput -- --ignored --nocapture`).
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
mod suite;

use std::time::Instant;

use suite::{direct, msg, Backend};

const BATCH: usize = 64;
const BATCHES: usize = 400;
const PAIRS: usize = 100;

async fn measure(name: &str, b: &Backend) {
    let start = Instant::now();
    for n in 0..BATCHES {
        let batch = (0..BATCH)
            .map(|k| {
                let i = n * BATCH + k;
                let p = i % PAIRS;
                let conv = direct(&format!("s{p:03}"), &format!("r{p:03}"));
                msg(
                    &conv,
                    &format!("s{p:03}"),
                    &format!("c{i}"),
                    "hello there",
                    i as i64,
                )
            })
            .collect();
        for r in b.store.append(batch).await {
            r.unwrap();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let total = (BATCH * BATCHES) as f64;
    println!(
        "{name}: {total} messages in batches of {BATCH}: {:.0} msg/s",
        total / secs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn append_throughput() {
    let b = Backend::sqlite().await;
    measure("sqlite", &b).await;
    b.finish().await;
    if let Some(b) = Backend::postgres().await {
        measure("postgres", &b).await;
        b.finish().await;
    }
}
