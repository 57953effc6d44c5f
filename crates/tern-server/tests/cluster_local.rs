//! Cross-node delivery without sockets or Redis: three hubs in one process
//! on one store, joined by the in-process bus. Messages, receipts, typing,
//! group changes, presence, bans and kicks reach sessions on other nodes;
//! a removed member gets nothing more; a lost bus sends `resync`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tern_cluster::local::LocalNetwork;
use tern_cluster::{Bus, Directory, Event};
use tern_proto::frame::SendFrame;
use tern_proto::{CloseCode, ConvId, MessageKind};
use tern_server::service::cluster::ClusterLink;
use tern_server::service::moderation::WordFilter;
use tern_server::service::{Hub, LiveFigures, Session, SessionRegistry};
use tern_server::Config;
use tokio_util::task::TaskTracker;

struct Cluster {
    hubs: Vec<Arc<Hub>>,
    nodes: Vec<Arc<tern_cluster::local::LocalNode>>,
    _dir: tempfile::TempDir,
}

async fn cluster(n: usize) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let store = tern_store::open(&url, Default::default()).await.unwrap();
    for user in ["alice", "bob", "carol", "dave", "erin"] {
        store.create_user(user, None, 0).await.unwrap();
    }
    let config = Arc::new(Config::default());
    let net = LocalNetwork::new();
    let mut hubs = Vec::new();
    let mut nodes = Vec::new();
    for i in 0..n {
        let registry = Arc::new(SessionRegistry::new(32));
        let figures = Arc::new(LiveFigures {
            registry: registry.clone(),
            connections: TaskTracker::new(),
        });
        let node = net.join(&format!("n{i}"), figures, 0);
        let filter = WordFilter::from_config(&config.moderation).unwrap();
        let link = ClusterLink::new(node.clone(), node.clone());
        let hub = Hub::assemble(config.clone(), store.clone(), filter, registry, link);
        hub.load_groups().await.unwrap();
        hubs.push(hub);
        nodes.push(node);
    }
    Cluster {
        hubs,
        nodes,
        _dir: dir,
    }
}

/// Frames queued for `session`, decoded, waiting up to 5 s for `count`.
async fn frames(session: &Session, count: usize) -> Vec<Value> {
    let started = Instant::now();
    let mut out = Vec::new();
    loop {
        let mut raw = Vec::new();
        session.outbox.take(&mut raw);
        out.extend(
            raw.iter()
                .map(|b| serde_json::from_slice::<Value>(b).unwrap()),
        );
        if out.len() >= count || started.elapsed() > Duration::from_secs(5) {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `session` holds a frame of `ty`; returns it.
async fn frame_of(session: &Session, ty: &str) -> Value {
    let started = Instant::now();
    loop {
        if let Some(f) = frames(session, 1)
            .await
            .into_iter()
            .find(|f| f["type"] == ty)
        {
            return f;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no {ty} frame");
    }
}

/// Lets the in-process bus deliver what is in flight.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn send(to: Option<&str>, conv: Option<ConvId>, cmid: &str, body: &str) -> SendFrame {
    SendFrame {
        id: None,
        to: to.map(str::to_owned),
        conv,
        cmid: cmid.into(),
        body: body.into(),
        kind: MessageKind::Text,
        meta: None,
    }
}

#[tokio::test]
async fn direct_messages_receipts_and_typing_cross_nodes() {
    let c = cluster(2).await;
    let (a, b) = (&c.hubs[0], &c.hubs[1]);
    let alice = a.open_session("alice");
    let bob_phone = b.open_session("bob");
    let bob_laptop = a.open_session("bob");
    settle().await;
    let acked = a
        .send_and_wait("alice", send(Some("bob"), None, "c1", "hi bob"))
        .await
        .unwrap();
    let on_b = frame_of(&bob_phone, "msg").await;
    assert_eq!(on_b["body"], "hi bob");
    assert_eq!(on_b["seq"], acked.message.seq);
    assert_eq!(frame_of(&bob_laptop, "msg").await["body"], "hi bob");

    let conv = ConvId::direct("alice", "bob");
    b.read("bob", &conv, 1, None).await.unwrap();
    let receipt = frame_of(&alice, "receipt").await;
    assert_eq!(
        (receipt["user"].as_str(), receipt["seq"].as_u64()),
        (Some("bob"), Some(1))
    );

    b.typing("bob", &conv).unwrap();
    assert_eq!(frame_of(&alice, "typing").await["user"], "bob");
    // Exactly once each: nothing doubled by the bus.
    settle().await;
    let rest = frames(&bob_phone, 0).await;
    assert!(rest.iter().all(|f| f["type"] != "msg"), "{rest:?}");
}

#[tokio::test]
async fn group_changes_reach_every_node_before_later_pushes() {
    let c = cluster(3).await;
    let (a, b, cc) = (&c.hubs[0], &c.hubs[1], &c.hubs[2]);
    let bob = b.open_session("bob");
    let carol = cc.open_session("carol");
    settle().await;
    let group = a
        .create_group("alice", "team", &["bob".into(), "carol".into()])
        .await
        .unwrap();
    assert_eq!(frame_of(&bob, "group").await["event"], "member_added");
    assert_eq!(frame_of(&carol, "group").await["event"], "member_added");
    let conv = ConvId::Group(group.id.clone());
    a.send_and_wait("alice", send(None, Some(conv.clone()), "g1", "one"))
        .await
        .unwrap();
    assert_eq!(frame_of(&bob, "msg").await["body"], "one");
    assert_eq!(frame_of(&carol, "msg").await["body"], "one");
    // Removed on node A; node C must not push to carol from a stale cache,
    // and node B (where a send now comes from) knows it too.
    a.remove_member("alice", &group.id, "carol").await.unwrap();
    assert_eq!(frame_of(&carol, "group").await["event"], "member_removed");
    b.send_and_wait("bob", send(None, Some(conv.clone()), "g2", "two"))
        .await
        .unwrap();
    settle().await;
    let later = frames(&carol, 0).await;
    assert!(later.iter().all(|f| f["type"] != "msg"), "{later:?}");
    // carol may no longer send there on any node.
    assert!(cc
        .send_and_wait("carol", send(None, Some(conv), "g3", "three"))
        .await
        .is_err());
}

#[tokio::test]
async fn presence_is_cluster_wide_and_a_leaving_node_takes_its_users() {
    let c = cluster(2).await;
    let (a, b) = (&c.hubs[0], &c.hubs[1]);
    let watcher = a.open_session("alice");
    a.watch_presence(&watcher, &["bob".into()]);
    let bob = b.open_session("bob");
    let online = frame_of(&watcher, "presence").await;
    assert_eq!(online["items"][0]["online"], true);
    assert!(a.presence_of_user("bob").await.online);
    // A second session of bob on A is no change for watchers.
    let bob2 = a.open_session("bob");
    settle().await;
    assert!(frames(&watcher, 0).await.is_empty());
    a.close_session(&bob2, &[]);
    b.close_session(&bob, &[]);
    let offline = frame_of(&watcher, "presence").await;
    assert_eq!(offline["items"][0]["online"], false);

    let _bob3 = b.open_session("bob");
    assert_eq!(
        frame_of(&watcher, "presence").await["items"][0]["online"],
        true
    );
    // Node B leaves (shutdown): bob is gone with it.
    c.nodes[1].leave().await;
    assert_eq!(
        frame_of(&watcher, "presence").await["items"][0]["online"],
        false
    );
    assert!(!a.presence_of_user("bob").await.online);
}

#[tokio::test]
async fn bans_and_kicks_close_sessions_everywhere() {
    let c = cluster(3).await;
    let (a, b, cc) = (&c.hubs[0], &c.hubs[1], &c.hubs[2]);
    let on_b = b.open_session("dave");
    let on_c = cc.open_session("dave");
    settle().await;
    a.kick("dave").await.unwrap();
    settle().await;
    assert!(on_b.outbox.is_closing() && on_c.outbox.is_closing());
    b.close_session(&on_b, &[]);
    cc.close_session(&on_c, &[]);

    let again = cc.open_session("erin");
    settle().await;
    a.set_banned("erin", true).await.unwrap();
    settle().await;
    assert!(again.outbox.is_closing());
    assert_eq!(
        again.outbox.drain().await.1,
        tern_server::service::outbox::Drained::Close(CloseCode::Kicked)
    );
}

#[tokio::test]
async fn lost_traffic_tells_every_session_to_resync() {
    let c = cluster(2).await;
    let on_b = c.hubs[1].open_session("bob");
    settle().await;
    c.nodes[0].broadcast(Event::Resync);
    assert_eq!(frame_of(&on_b, "resync").await["type"], "resync");
}
