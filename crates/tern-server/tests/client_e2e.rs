//! Whole-server tests driven by the `tern-client` library: request/reply,
//! pushes, multi-device delivery, receipts, presence, offline catch-up, and
//! the client's reconnect + resync across a server-side kick.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{token, TestServer};
use tern_client::tern_proto::ConvId;
use tern_client::{AuthMode, Client, ClientConfig, Push, PushStream, ReconnectPolicy};

async fn client(srv: &TestServer, user: &str, auth: AuthMode) -> (Client, PushStream) {
    let cfg = ClientConfig::new(srv.ws_url(), token(user)).with_auth(auth);
    Client::connect(cfg).await.unwrap()
}

/// The next push that is a message (skipping presence and the like).
async fn next_msg(pushes: &mut PushStream) -> tern_client::tern_proto::Message {
    loop {
        let p = tokio::time::timeout(Duration::from_secs(5), pushes.recv())
            .await
            .expect("timed out waiting for a push")
            .expect("push stream ended");
        if let Push::Msg(m) = p {
            return m;
        }
    }
}

#[tokio::test]
async fn send_push_sync_read_and_presence_through_the_client_library() {
    let srv = TestServer::start().await;
    let (bob, mut bob_pushes) = client(&srv, "bob", AuthMode::Header).await;
    let (_bob2, mut bob2_pushes) = client(&srv, "bob", AuthMode::Query).await;
    let (alice, mut alice_pushes) = client(
        &srv,
        "alice",
        AuthMode::Frame {
            device: "laptop".into(),
        },
    )
    .await;
    assert_eq!(alice.user(), "alice");
    let conv = ConvId::direct("alice", "bob");

    let ack = alice.send_to("bob", "c-1", "hello bob").await.unwrap();
    assert_eq!((ack.conv.clone(), ack.seq), (conv.clone(), 1));
    for pushes in [&mut bob_pushes, &mut bob2_pushes] {
        let m = next_msg(pushes).await;
        assert_eq!(
            (m.seq, m.body.as_str(), m.from.as_str()),
            (1, "hello bob", "alice")
        );
    }
    // Idempotent resend through the library: the original ack.
    let again = alice.send_to("bob", "c-1", "changed").await.unwrap();
    assert_eq!((again.seq, again.mid), (ack.seq, ack.mid));

    let reply = bob.send_conv(&conv, "b-1", "hi alice").await.unwrap();
    assert_eq!(reply.seq, 2);
    assert_eq!(next_msg(&mut alice_pushes).await.body, "hi alice");

    let page = alice.sync_after(&conv, 0, 10).await.unwrap();
    let bodies: Vec<_> = page.items.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["hello bob", "hi alice"]);
    assert!(!page.more);

    let convs = bob.convs().await.unwrap();
    assert_eq!((convs[0].last_seq, convs[0].read_seq), (2, 2));
    bob.read(&conv, 2).await.unwrap();

    let presence = alice.presence_sub(["carol"]).await.unwrap();
    assert!(!presence[0].online);
    let (_carol, _) = client(&srv, "carol", AuthMode::Header).await;
    loop {
        let p = tokio::time::timeout(Duration::from_secs(5), alice_pushes.recv())
            .await
            .unwrap()
            .unwrap();
        if let Push::Presence(items) = p {
            assert_eq!((items[0].user.as_str(), items[0].online), ("carol", true));
            break;
        }
    }
    assert!(alice.ping().await.is_ok());
}

#[tokio::test]
async fn offline_messages_are_caught_up_after_a_drop() {
    let srv = TestServer::start().await;
    let (bob, mut bob_pushes) = client(&srv, "bob", AuthMode::Header).await;
    let (alice, _alice_pushes) = client(&srv, "alice", AuthMode::Header).await;
    let conv = ConvId::direct("alice", "bob");
    alice.send_to("bob", "x-1", "one").await.unwrap();
    assert_eq!(next_msg(&mut bob_pushes).await.seq, 1);
    assert_eq!(bob.last_seen(&conv), Some(1));
    bob.close().await.unwrap();
    drop(bob);
    // While bob is away.
    for i in 2..=4 {
        alice
            .send_to("bob", &format!("x-{i}"), &format!("m{i}"))
            .await
            .unwrap();
    }
    let (bob, _) = client(&srv, "bob", AuthMode::Header).await;
    let convs = bob.convs().await.unwrap();
    assert_eq!((convs[0].last_seq, convs[0].unread), (4, 4));
    let page = bob.sync_after(&conv, 1, 100).await.unwrap();
    let seqs: Vec<_> = page.items.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [2, 3, 4]);
}

#[tokio::test]
async fn a_kicked_client_reports_4011_and_does_not_reconnect() {
    let srv = TestServer::start().await;
    let cfg = ClientConfig::new(srv.ws_url(), token("bob"))
        .with_auth(AuthMode::Header)
        .with_reconnect(ReconnectPolicy {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
            ..ReconnectPolicy::default()
        });
    let (_bob, mut pushes) = Client::connect(cfg).await.unwrap();
    let (alice, _) = client(&srv, "alice", AuthMode::Header).await;
    alice.send_to("bob", "r-1", "before").await.unwrap();
    assert_eq!(next_msg(&mut pushes).await.seq, 1);
    // Kick bob's sessions: the library must not reconnect after 4011.
    let admin = common::token_with(
        serde_json::json!({"sub":"root","exp": common::now_s() + 60, "role":"admin"}),
        common::SECRET,
    );
    let (status, _) = srv
        .http("POST", "/api/v1/admin/users/bob/kick", Some(&admin), None)
        .await;
    assert_eq!(status, 204);
    loop {
        match tokio::time::timeout(Duration::from_secs(5), pushes.recv()).await {
            Ok(Some(Push::Closed {
                code, reconnecting, ..
            })) => {
                assert_eq!((code, reconnecting), (4011, false));
                break;
            }
            Ok(Some(_)) => {}
            other => panic!("expected a close, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_client_reconnects_and_catches_up_without_gaps_or_duplicates() {
    let srv = TestServer::with(|c| {
        c.limits.send_rate = 1;
        c.limits.send_burst = 1;
        c.limits.rate_abuse_limit = 1;
    })
    .await;
    let cfg = ClientConfig::new(srv.ws_url(), token("bob"))
        .with_auth(AuthMode::Header)
        .with_reconnect(ReconnectPolicy {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
            ..ReconnectPolicy::default()
        });
    let (bob, mut pushes) = Client::connect(cfg).await.unwrap();
    // Alice posts over HTTP (no session of hers is rate limited).
    let alice = token("alice");
    let post = |cmid: &'static str| {
        let body = serde_json::json!({"to":"bob","cmid":cmid,"body":cmid});
        srv.http("POST", "/api/v1/messages", Some(&alice), Some(body))
    };
    assert_eq!(post("m1").await.0, 201);
    assert_eq!(next_msg(&mut pushes).await.seq, 1);
    // Bob abuses the send rate: the server closes him with 4008, which the
    // library treats as a dropped connection and reconnects.
    let own = bob.send_to("alice", "a1", "x").await.unwrap();
    assert_eq!(own.seq, 2, "within the burst: stored as seq 2");
    let _ = bob.send_to("alice", "a2", "x").await;
    let _ = bob.send_to("alice", "a3", "x").await;
    for cmid in ["m2", "m3", "m4"] {
        // 429s are possible only per sender; alice's bucket is 1/s.
        loop {
            let (status, _) = post(cmid).await;
            if status == 201 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let (mut seqs, mut closed, mut reconnected) = (Vec::new(), None, false);
    while seqs.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(10), pushes.recv()).await {
            Ok(Some(Push::Msg(m))) => seqs.push(m.seq),
            Ok(Some(Push::Closed { code, .. })) => closed = Some(code),
            Ok(Some(Push::Reconnected { .. })) => reconnected = true,
            Ok(Some(_)) => {}
            other => panic!("expected pushes, got {other:?} after {seqs:?}"),
        }
    }
    assert_eq!(closed, Some(4008));
    assert!(reconnected);
    // Seq 2 is bob's own message: acked, never pushed back to him.
    assert_eq!(seqs, [3, 4, 5], "in order, no gaps, no duplicates");
}
