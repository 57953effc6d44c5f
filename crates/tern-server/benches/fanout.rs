//! Fan-out of one group message to 1,000 and 10,000 online recipients, through the server's own `Delivery`. Run: `cargo bench -p tern-server --bench fanout`.
//!
//! What a fan-out worker does for one new group message
//! (`Delivery::message_chunked`): encode the `msg` push once into `Bytes`,
//! then, for every member of the group (a snapshot from the in-memory
//! `GroupDirectory`), look up its sessions in the `SessionRegistry` and push
//! a clone of those bytes (a reference count) onto each session's `Outbox`.
//!
//! Benchmarks (group `fanout`):
//! - `encode_msg_push`: the encode step alone, exactly as `message_chunked`
//!   does it (`encode_server(&ServerFrame::Msg(msg.clone()))`).
//! - `deliver/N`: one already-encoded frame to N members' sessions through
//!   the public `Delivery::to_user`, member by member (the path group
//!   receipts take; `message_chunked` calls the private `push_to` that
//!   `to_user` wraps: they differ by one metrics counter increment per user,
//!   nearly free here since no metrics recorder is installed).
//! - `message_chunked/N`: the whole worker step, encode + deliver + a yield
//!   every 4,096 recipients + the offline-push check (no webhook configured).
//!
//! Set-up, built with the server's real types: one group of N members, each
//! online with one session whose outbox has the default limits (registered
//! in a `SessionRegistry` as `Hub::open_session` does, without presence and
//! metrics); the sender's session is not among them. Left out: the hop from
//! the writer to the fan-out worker (an mpsc channel), and the connection
//! tasks themselves: no task waits on these outboxes, so a push's wake-up
//! only stores a permit; the outboxes are drained between iterations,
//! outside the timed part, so every push lands in an empty queue as on a
//! server that keeps up; nothing is written to a socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tern_proto::{encode_server, ConvId, Message, MessageKind, ServerFrame};
use tern_server::service::delivery::Delivery;
use tern_server::service::groups::GroupDirectory;
use tern_server::service::outbox::{Drained, Outbox};
use tern_server::service::shared_frame::SharedFrame;
use tern_server::service::{Session, SessionRegistry};
use tern_server::Config;
use tokio::runtime::Runtime;

const RECIPIENTS: [usize; 2] = [1_000, 10_000];
const GROUP_ID: &str = "big";
/// The sender's session: on no recipient (ids of recipients are 0..N).
const SENDER_SESSION: Option<u64> = Some(u64::MAX);

/// A group of `n` members, each online with one session.
struct Fixture {
    delivery: Delivery,
    groups: Arc<GroupDirectory>,
    sessions: Vec<Arc<Session>>,
}

impl Fixture {
    fn new(n: usize) -> Self {
        let limits = Config::default().limits;
        let registry = Arc::new(SessionRegistry::new(limits.max_sessions_per_user));
        let groups = Arc::new(GroupDirectory::new());
        let users: Vec<String> = (0..n).map(|i| format!("user{i:05}")).collect();
        groups.set(GROUP_ID, &users);
        let sessions: Vec<Arc<Session>> = users
            .iter()
            .enumerate()
            .map(|(i, user)| {
                let outbox = Outbox::new(limits.outbound_queue_frames, limits.outbound_queue_bytes);
                let session = Arc::new(Session::new(i as u64, Arc::from(user.as_str()), outbox));
                registry.register(session.clone());
                session
            })
            .collect();
        // A single node: the in-process bus of one, as `tern serve` has.
        let figures = Arc::new(tern_server::service::LiveFigures {
            registry: registry.clone(),
            connections: tokio_util::task::TaskTracker::new(),
        });
        let node = tern_cluster::local::LocalNode::single("bench", figures, 0);
        let link = tern_server::service::cluster::ClusterLink::new(node.clone(), node);
        let delivery = Delivery::new(registry, None, groups.clone(), link);
        Self {
            delivery,
            groups,
            sessions,
        }
    }

    /// Empties every outbox (one frame each was pushed), checking that it
    /// was delivered and no session closed as a slow consumer.
    async fn drain(&self) {
        for s in &self.sessions {
            let (out, drained) = s.outbox.drain().await;
            assert_eq!(drained, Drained::Frames);
            assert_eq!(out.len(), 1, "one frame per session");
        }
    }
}

/// A group message as the store returns it after the append.
fn message() -> Message {
    Message {
        conv: ConvId::Group(GROUP_ID.into()),
        seq: 4_242,
        mid: "01JDQ8Z6W1K3V9X2C4B7N5M8P0".into(),
        from: "user00000".into(),
        body: "hey, are we still on for lunch at noon?".into(),
        kind: MessageKind::Text,
        ts: 1_732_000_000_000,
        cmid: "c-1732000000000-17".into(),
        meta: None,
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn encode(c: &mut Criterion) {
    let msg = message();
    let mut g = c.benchmark_group("fanout");
    g.throughput(Throughput::Bytes(
        encode_server(&ServerFrame::Msg(msg.clone())).len() as u64,
    ));
    g.bench_function("encode_msg_push", |b| {
        b.iter(|| encode_server(&ServerFrame::Msg(black_box(&msg).clone())))
    });
    g.finish();
}

fn deliver(c: &mut Criterion) {
    let rt = runtime();
    let msg = message();
    let frame = SharedFrame::new(&ServerFrame::Msg(msg.clone()));
    let mut g = c.benchmark_group("fanout");
    for n in RECIPIENTS {
        let fx = Fixture::new(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("deliver", n), &fx, |b, fx| {
            b.to_async(&rt).iter_custom(|iters| {
                let frame = &frame;
                async move {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        let members = fx.groups.members(GROUP_ID).unwrap();
                        let mut pushed = 0;
                        for user in members.iter() {
                            pushed += fx.delivery.to_user(user, frame, SENDER_SESSION);
                        }
                        timed += start.elapsed();
                        assert_eq!(pushed, n);
                        fx.drain().await;
                    }
                    timed
                }
            });
        });
        g.bench_with_input(BenchmarkId::new("message_chunked", n), &fx, |b, fx| {
            b.to_async(&rt).iter_custom(|iters| {
                let msg = &msg;
                async move {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        fx.delivery.message_chunked(msg, SENDER_SESSION).await;
                        timed += start.elapsed();
                        fx.drain().await;
                    }
                    timed
                }
            });
        });
    }
    g.finish();
}

criterion_group!(benches, encode, deliver);
criterion_main!(benches);
