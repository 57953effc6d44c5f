//! `Store::append` (group commit) on SQLite and PostgreSQL, batches of 1, 64 and 512 messages. Run: `cargo bench -p tern-store --bench append`.
//!
//! Direct messages go round-robin to 100 distinct conversations; group
//! messages all go to one group of 100 members made with
//! `Store::create_group`. Every message has a fresh (sender, cmid), so
//! nothing is a duplicate: each iteration is one real transaction storing
//! the whole batch. Building the batch is outside the timed part.
//!
//! SQLite: a file in a temporary directory, opened with `tern_store::open`.
//! PostgreSQL: a fresh schema in `TERN_TEST_POSTGRES_URL` (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`), dropped at the end, with its
//! tables analyzed before each benchmark (untimed); skipped, with a note,
//! when the variable is unset.
//!
//! The tables grow while the benchmark runs (as they do in production), so
//! later benchmarks append to a larger database than earlier ones.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use tern_proto::{ConvId, MessageKind};
use tern_store::{NewMessage, OpenOptions, Store};
use tokio::runtime::Runtime;

const BATCH_SIZES: [usize; 3] = [1, 64, 512];
/// Distinct direct conversations the direct messages are spread over.
const PAIRS: u64 = 100;
/// Members of the benchmark group (the owner included).
const GROUP_MEMBERS: u64 = 100;
const GROUP_ID: &str = "bench";

/// Numbers every message made in this process: cmids are never reused.
static NEXT: AtomicU64 = AtomicU64::new(0);

fn opts() -> OpenOptions {
    OpenOptions {
        max_connections: 4,
        ..OpenOptions::default()
    }
}

/// Like the server's runtime on this 2-core machine.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A text message as the service hands it to the store (mid and ts made
/// by the server before the append).
fn new_message(conv: ConvId, from: String) -> NewMessage {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    NewMessage {
        conv,
        from,
        body: "hey, are we still on for lunch at noon?".into(),
        kind: MessageKind::Text,
        cmid: format!("c-{n}"),
        meta: None,
        mid: ulid::Ulid::new().to_string(),
        ts: now_ms(),
    }
}

/// `size` direct messages, `s<p>` to `r<p>`, round-robin over the pairs.
fn direct_batch(size: usize) -> Vec<NewMessage> {
    (0..size)
        .map(|_| {
            let p = NEXT.load(Ordering::Relaxed) % PAIRS;
            let (from, to) = (format!("s{p:03}"), format!("r{p:03}"));
            new_message(ConvId::direct(&from, &to), from)
        })
        .collect()
}

/// `size` messages to the benchmark group, from its members in turn.
fn group_batch(size: usize) -> Vec<NewMessage> {
    (0..size)
        .map(|_| {
            let u = NEXT.load(Ordering::Relaxed) % GROUP_MEMBERS;
            new_message(ConvId::Group(GROUP_ID.into()), format!("u{u:03}"))
        })
        .collect()
}

/// Builds the batch of one iteration.
type MakeBatch = fn(usize) -> Vec<NewMessage>;

fn member(i: u64) -> String {
    format!("u{i:03}")
}

async fn create_group(store: &Arc<dyn Store>) {
    let members: Vec<String> = (1..GROUP_MEMBERS).map(member).collect();
    store
        .create_group(GROUP_ID, "Bench", &member(0), &members, now_ms())
        .await
        .unwrap();
}

/// Stores one batch; every message must be new (a duplicate or an error
/// would measure another path).
async fn append(store: &Arc<dyn Store>, batch: Vec<NewMessage>) {
    let results = store.append(batch).await;
    for r in results {
        assert!(!r.unwrap().duplicate, "duplicate in a benchmark batch");
    }
}

/// The benchmarks for one backend, in group `append/<backend>`; `before`
/// runs (untimed) before each of them.
fn bench_store(
    c: &mut Criterion,
    rt: &Runtime,
    backend: &str,
    store: &Arc<dyn Store>,
    before: &dyn Fn(),
) {
    rt.block_on(create_group(store));
    let mut g = c.benchmark_group(format!("append/{backend}"));
    // A 512-message transaction takes milliseconds: fewer, longer samples.
    g.sample_size(20);
    let kinds: [(&str, MakeBatch); 2] = [("direct", direct_batch), ("group100", group_batch)];
    for (kind, make) in kinds {
        for size in BATCH_SIZES {
            before();
            g.throughput(Throughput::Elements(size as u64));
            g.bench_with_input(BenchmarkId::new(kind, size), &size, |b, &size| {
                b.to_async(rt).iter_batched(
                    || make(size),
                    |batch| append(store, batch),
                    BatchSize::SmallInput,
                );
            });
        }
    }
    g.finish();
}

fn sqlite(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tern.db").display());
    let store = rt.block_on(tern_store::open(&url, opts())).unwrap();
    bench_store(c, &rt, "sqlite", &store, &|| ());
    rt.block_on(store.close());
}

fn postgres(c: &mut Criterion) {
    let Ok(url) = std::env::var("TERN_TEST_POSTGRES_URL") else {
        eprintln!("skipping append/postgres: TERN_TEST_POSTGRES_URL not set (e.g. postgres://postgres@127.0.0.1:5432/test)");
        return;
    };
    let rt = runtime();
    let schema = format!("bench_{}", ulid::Ulid::new().to_string().to_lowercase());
    let store = rt
        .block_on(tern_store::open_postgres_in_schema(&url, &schema, opts()))
        .unwrap();
    // Fresh statistics before each benchmark, as autovacuum keeps them on a
    // production server: without any (autovacuum off, or not run yet on
    // a young table), the duplicate lookup of `append` was seen to take a
    // plan that made a one-message append ten times slower once `messages`
    // held ~190,000 rows.
    let analyze = || rt.block_on(analyze(&url, &schema));
    bench_store(c, &rt, "postgres", &store, &analyze);
    rt.block_on(async {
        store.close().await;
        if let Err(e) = tern_store::PostgresStore::drop_schema(&url, &schema).await {
            eprintln!("could not drop schema {schema}: {e}");
        }
    });
}

/// `ANALYZE` of the store's tables in `schema` (not of the whole database).
async fn analyze(url: &str, schema: &str) {
    use sqlx::Connection;
    let options = sqlx::postgres::PgConnectOptions::from_str(url)
        .unwrap()
        .options([("search_path", schema)]);
    let mut conn = sqlx::PgConnection::connect_with(&options).await.unwrap();
    sqlx::query("ANALYZE conversations, conv_members, messages")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

criterion_group!(benches, sqlite, postgres);
criterion_main!(benches);
