//! Client against a fake server: duplicate pushes dropped, gaps filled with
//! `sync`, reconnect with resync after a drop, and `goaway`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{config, conv, messages, msg, next_push, seq_of, FakeConn, FakeServer};
use tern_client::{Client, ClientError, Push, PushStream};
use tern_proto::frame::SyncFrame;
use tern_proto::{ClientFrame, PresenceItem, ServerFrame};

async fn connected() -> (FakeServer, FakeConn, Client, PushStream) {
    let mut server = FakeServer::start().await;
    let connecting = tokio::spawn(Client::connect(config(&server)));
    let mut conn = server.accept().await;
    conn.handshake().await;
    let (client, pushes) = connecting.await.unwrap().unwrap();
    (server, conn, client, pushes)
}

/// Expects a `sync after=<after>` of the test conversation.
async fn expect_sync(conn: &mut FakeConn, after: u64) -> SyncFrame {
    match conn.recv().await {
        ClientFrame::Sync(s) => {
            assert_eq!(
                (s.conv.clone(), s.after, s.before),
                (conv(), Some(after), None)
            );
            s
        }
        other => panic!("expected sync, got {other:?}"),
    }
}

#[tokio::test]
async fn duplicates_are_dropped_and_gaps_filled_in_order() {
    let (_server, mut conn, client, mut pushes) = connected().await;
    for seq in [1, 1, 2, 1] {
        conn.send(&ServerFrame::Msg(msg(seq))).await;
    }
    assert_eq!(seq_of(&next_push(&mut pushes).await), 1);
    assert_eq!(seq_of(&next_push(&mut pushes).await), 2);

    // 6 reveals that 3..=5 are missing: two pages of sync.
    conn.send(&ServerFrame::Msg(msg(6))).await;
    let s = expect_sync(&mut conn, 2).await;
    assert_eq!(s.limit, Some(100));
    // Pushes keep arriving while the sync is in flight.
    conn.send(&ServerFrame::Msg(msg(7))).await;
    conn.send(&ServerFrame::Msg(msg(6))).await;
    conn.send(&messages(s.id, &[3, 4], true)).await;
    let s = expect_sync(&mut conn, 4).await;
    conn.send(&messages(s.id, &[5, 6], false)).await;
    for want in 3..=7 {
        assert_eq!(seq_of(&next_push(&mut pushes).await), want);
    }
    assert_eq!(client.last_seen(&conv()), Some(7));
    assert!(pushes.try_recv().is_none());
}

#[tokio::test]
async fn seeded_conversation_checks_the_first_push() {
    let (_server, mut conn, client, mut pushes) = connected().await;
    client.track(conv(), 10);
    conn.send(&ServerFrame::Msg(msg(9))).await;
    conn.send(&ServerFrame::Msg(msg(12))).await;
    let s = expect_sync(&mut conn, 10).await;
    conn.send(&messages(s.id, &[11, 12], false)).await;
    assert_eq!(seq_of(&next_push(&mut pushes).await), 11);
    assert_eq!(seq_of(&next_push(&mut pushes).await), 12);
}

#[tokio::test]
async fn own_acks_are_not_delivered_back() {
    let (_server, mut conn, client, mut pushes) = connected().await;
    client.track(conv(), 3);
    let c = client.clone();
    let send = tokio::spawn(async move { c.send_to("bob", "c-1", "mine").await });
    let ClientFrame::Send(s) = conn.recv().await else {
        panic!()
    };
    let ack = ServerFrame::Ack {
        id: s.id,
        conv: conv(),
        seq: 4,
        mid: "m4".into(),
        ts: 1,
    };
    conn.send(&ack).await;
    send.await.unwrap().unwrap();
    conn.send(&ServerFrame::Msg(msg(5))).await;
    assert_eq!(
        seq_of(&next_push(&mut pushes).await),
        5,
        "no sync for own seq 4"
    );
}

#[tokio::test]
async fn drop_fails_pending_then_reconnects_and_resyncs() {
    let (mut server, mut conn, client, mut pushes) = connected().await;
    let c = client.clone();
    let sub = tokio::spawn(async move { c.presence_sub(["bob"]).await });
    let ClientFrame::PresenceSub { id, users } = conn.recv().await else {
        panic!()
    };
    assert_eq!(users, vec!["bob".to_owned()]);
    let bob = |online| PresenceItem {
        user: "bob".into(),
        online,
        last_seen: None,
    };
    conn.send(&ServerFrame::Presence {
        id,
        items: vec![bob(true)],
    })
    .await;
    assert_eq!(sub.await.unwrap().unwrap(), vec![bob(true)]);
    conn.send(&ServerFrame::Msg(msg(1))).await;
    assert_eq!(seq_of(&next_push(&mut pushes).await), 1);

    // A request in flight when the connection drops fails with Disconnected.
    let c = client.clone();
    let ping = tokio::spawn(async move { c.ping().await });
    let ClientFrame::Ping { .. } = conn.recv().await else {
        panic!()
    };
    drop(conn);
    assert!(matches!(
        ping.await.unwrap(),
        Err(ClientError::Disconnected)
    ));
    let push = next_push(&mut pushes).await;
    assert!(
        matches!(
            push,
            Push::Closed {
                code: 1006,
                reconnecting: true,
                ..
            }
        ),
        "{push:?}"
    );

    let mut conn = server.accept().await;
    conn.handshake().await;
    assert!(matches!(
        next_push(&mut pushes).await,
        Push::Reconnected { .. }
    ));
    // The client renews presence and resyncs from seq 1, in either order.
    for _ in 0..2 {
        match conn.recv().await {
            ClientFrame::PresenceSub { id, users } => {
                assert_eq!(users, vec!["bob".to_owned()]);
                let items = vec![bob(false)];
                conn.send(&ServerFrame::Presence { id, items }).await;
            }
            ClientFrame::Sync(s) => {
                assert_eq!(s.after, Some(1));
                conn.send(&messages(s.id, &[2, 3], false)).await;
            }
            other => panic!("{other:?}"),
        }
    }
    let mut seqs = Vec::new();
    let mut presence = None;
    while seqs.len() < 2 || presence.is_none() {
        match next_push(&mut pushes).await {
            Push::Msg(m) => seqs.push(m.seq),
            Push::Presence(items) => presence = Some(items),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seqs, vec![2, 3]);
    assert_eq!(presence, Some(vec![bob(false)]));
    assert_ne!(client.session(), "");
}

#[tokio::test]
async fn goaway_reconnects_after_the_hint() {
    let (mut server, mut conn, _client, mut pushes) = connected().await;
    let start = Instant::now();
    conn.send(&ServerFrame::Goaway { reconnect_ms: 200 }).await;
    assert_eq!(
        next_push(&mut pushes).await,
        Push::Goaway { reconnect_ms: 200 }
    );
    // The client leaves by itself once the hint has passed.
    let close = loop {
        let m = conn.recv_raw().await.expect("close frame");
        if m.is_close() {
            break m;
        }
    };
    assert_eq!(u16::from(close.as_close().unwrap().0), 1000);
    assert!(start.elapsed() >= Duration::from_millis(150));
    let push = next_push(&mut pushes).await;
    assert!(
        matches!(
            push,
            Push::Closed {
                code: 1001,
                reconnecting: true,
                ..
            }
        ),
        "{push:?}"
    );
    let mut conn = server.accept().await;
    conn.handshake().await;
    assert!(matches!(
        next_push(&mut pushes).await,
        Push::Reconnected { .. }
    ));
}

#[tokio::test]
async fn requests_while_reconnecting_fail_fast() {
    let mut server = FakeServer::start().await;
    let mut cfg = config(&server);
    cfg.reconnect.initial = Duration::from_millis(400);
    cfg.reconnect.max = Duration::from_millis(400);
    let connecting = tokio::spawn(Client::connect(cfg));
    let mut conn = server.accept().await;
    conn.handshake().await;
    let (client, mut pushes) = connecting.await.unwrap().unwrap();
    drop(conn);
    assert!(matches!(next_push(&mut pushes).await, Push::Closed { .. }));
    assert!(matches!(
        client.ping().await,
        Err(ClientError::Disconnected)
    ));
}

#[tokio::test]
async fn a_slow_reader_loses_nothing() {
    let mut server = FakeServer::start().await;
    let mut cfg = config(&server);
    cfg.push_buffer = 2;
    let connecting = tokio::spawn(Client::connect(cfg));
    let mut conn = server.accept().await;
    conn.handshake().await;
    let (_client, mut pushes) = connecting.await.unwrap().unwrap();
    let writer = tokio::spawn(async move {
        for seq in 1..=200 {
            conn.send(&ServerFrame::Msg(msg(seq))).await;
        }
        conn
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    for want in 1..=200 {
        assert_eq!(seq_of(&next_push(&mut pushes).await), want);
    }
    drop(writer.await.unwrap());
}
