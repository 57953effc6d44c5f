//! Client against a fake server: authentication modes, request/reply routing
//! by id, error replies, heartbeat, and closing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{config, FakeServer};
use tern_client::{AuthMode, Client, ClientError, Push};
use tern_proto::{ClientFrame, ConvSummary, ErrorCode, RequestId, ServerFrame};

#[tokio::test]
async fn frame_auth_and_replies_routed_by_id_out_of_order() {
    let mut server = FakeServer::start().await;
    let cfg = config(&server).with_auth(AuthMode::Frame {
        device: "laptop".into(),
    });
    let connecting = tokio::spawn(Client::connect(cfg));
    let mut conn = server.accept().await;
    let ClientFrame::Auth { id, token, device } = conn.recv().await else {
        panic!("auth first")
    };
    assert_eq!((token.as_str(), device.as_deref()), ("tok", Some("laptop")));
    conn.auth_ok(id, "alice", 25_000).await;
    let (client, _pushes) = connecting.await.unwrap().unwrap();
    assert_eq!(client.user(), "alice");
    assert!(client.session().starts_with("s-"));
    assert_eq!(client.heartbeat_ms(), 25_000);

    let c1 = client.clone();
    let send = tokio::spawn(async move { c1.send_to("bob", "c-42", "hi").await });
    let c2 = client.clone();
    let convs = tokio::spawn(async move { c2.convs().await });
    let (mut send_id, mut convs_id) = (None, None);
    for _ in 0..2 {
        match conn.recv().await {
            ClientFrame::Send(s) => {
                assert_eq!((s.to.as_deref(), s.cmid.as_str()), (Some("bob"), "c-42"));
                send_id = s.id;
            }
            ClientFrame::Convs { id } => convs_id = id,
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(send_id, Some(RequestId::Num(_))));
    assert_ne!(send_id, convs_id);
    // Answer in the reverse order.
    conn.send(&ServerFrame::Convs {
        id: convs_id,
        items: Vec::<ConvSummary>::new(),
    })
    .await;
    conn.send(&ServerFrame::Ack {
        id: send_id,
        conv: common::conv(),
        seq: 17,
        mid: "m17".into(),
        ts: 5,
    })
    .await;
    let ack = send.await.unwrap().unwrap();
    assert_eq!(
        (ack.conv, ack.seq, ack.mid.as_str()),
        (common::conv(), 17, "m17")
    );
    assert!(convs.await.unwrap().unwrap().is_empty());
}

#[tokio::test]
async fn header_auth_gets_unprompted_auth_ok() {
    let mut server = FakeServer::start().await;
    let cfg = config(&server).with_auth(AuthMode::Header);
    let connecting = tokio::spawn(Client::connect(cfg));
    let mut conn = server.accept().await;
    let auth = conn.request.headers().get("authorization").unwrap();
    assert_eq!(auth, "Bearer tok");
    conn.auth_ok(None, "alice", 1000).await;
    let (client, _pushes) = connecting.await.unwrap().unwrap();
    assert_eq!(client.user(), "alice");
}

#[tokio::test]
async fn query_auth_puts_token_in_url() {
    let mut server = FakeServer::start().await;
    let cfg = config(&server).with_auth(AuthMode::Query);
    let connecting = tokio::spawn(Client::connect(cfg));
    let mut conn = server.accept().await;
    assert_eq!(conn.request.uri().query(), Some("token=tok"));
    assert!(conn.request.headers().get("authorization").is_none());
    conn.auth_ok(None, "alice", 1000).await;
    assert!(connecting.await.unwrap().is_ok());
}

#[tokio::test]
async fn bad_token_fails_connect() {
    let mut server = FakeServer::start().await;
    let connecting = tokio::spawn(Client::connect(config(&server)));
    let mut conn = server.accept().await;
    let ClientFrame::Auth { id, .. } = conn.recv().await else {
        panic!()
    };
    conn.send(&ServerFrame::error(
        id,
        ErrorCode::Unauthorized,
        "bad token",
    ))
    .await;
    conn.close(4001, "invalid token").await;
    let err = connecting.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Server {
                code: ErrorCode::Unauthorized,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn error_replies_and_unsolicited_errors() {
    let mut server = FakeServer::start().await;
    let connecting = tokio::spawn(Client::connect(config(&server)));
    let mut conn = server.accept().await;
    conn.handshake().await;
    let (client, mut pushes) = connecting.await.unwrap().unwrap();

    let c = client.clone();
    let ping = tokio::spawn(async move { c.ping().await });
    let ClientFrame::Ping { id } = conn.recv().await else {
        panic!()
    };
    conn.send(&ServerFrame::Error {
        id,
        code: ErrorCode::RateLimited,
        message: "slow down".into(),
        retry_after_ms: Some(500),
        close: None,
    })
    .await;
    let err = ping.await.unwrap().unwrap_err();
    assert!(matches!(
        err,
        ClientError::Server {
            code: ErrorCode::RateLimited,
            retry_after_ms: Some(500),
            ..
        }
    ));
    assert!(err.is_transient());

    client.typing(&common::conv()).await.unwrap();
    let ClientFrame::Typing { id: None, .. } = conn.recv().await else {
        panic!("typing carries no id")
    };
    conn.send(&ServerFrame::error(
        None,
        ErrorCode::Forbidden,
        "not a member",
    ))
    .await;
    let push = common::next_push(&mut pushes).await;
    assert!(
        matches!(
            push,
            Push::Error {
                code: ErrorCode::Forbidden,
                ..
            }
        ),
        "{push:?}"
    );
}

#[tokio::test]
async fn heartbeat_sends_websocket_pings() {
    let mut server = FakeServer::start().await;
    let connecting = tokio::spawn(Client::connect(config(&server)));
    let mut conn = server.accept().await;
    let ClientFrame::Auth { id, .. } = conn.recv().await else {
        panic!()
    };
    conn.auth_ok(id, "alice", 50).await;
    let (_client, _pushes) = connecting.await.unwrap().unwrap();
    let mut pings = 0;
    while pings < 3 {
        let msg = conn.recv_raw().await.expect("still open");
        if msg.is_ping() {
            pings += 1;
        }
    }
}

#[tokio::test]
async fn close_4011_is_reported_and_not_retried() {
    let mut server = FakeServer::start().await;
    let connecting = tokio::spawn(Client::connect(config(&server)));
    let mut conn = server.accept().await;
    conn.handshake().await;
    let (client, mut pushes) = connecting.await.unwrap().unwrap();
    conn.close(4011, "kicked").await;
    let push = common::next_push(&mut pushes).await;
    assert_eq!(
        push,
        Push::Closed {
            code: 4011,
            reason: "kicked".into(),
            reconnecting: false
        }
    );
    assert!(tokio::time::timeout(common::WAIT, pushes.recv())
        .await
        .unwrap()
        .is_none());
    assert!(server
        .try_accept(Duration::from_millis(200))
        .await
        .is_none());
    assert!(matches!(client.ping().await, Err(ClientError::Shutdown)));
}

#[tokio::test]
async fn close_says_goodbye_and_ends_the_stream() {
    let mut server = FakeServer::start().await;
    let connecting = tokio::spawn(Client::connect(config(&server)));
    let mut conn = server.accept().await;
    conn.handshake().await;
    let (client, mut pushes) = connecting.await.unwrap().unwrap();
    let closing = tokio::spawn({
        let client = client.clone();
        async move { client.close().await }
    });
    let msg = conn.recv_raw().await.expect("a close frame");
    let (code, _) = msg.as_close().expect("close");
    assert_eq!(u16::from(code), 1000);
    drop(conn);
    closing.await.unwrap().unwrap();
    assert!(tokio::time::timeout(common::WAIT, pushes.recv())
        .await
        .unwrap()
        .is_none());
    assert!(matches!(client.convs().await, Err(ClientError::Shutdown)));
}

#[tokio::test]
async fn dropping_every_handle_closes_the_connection() {
    let mut server = FakeServer::start().await;
    let connecting = tokio::spawn(Client::connect(config(&server)));
    let mut conn = server.accept().await;
    conn.handshake().await;
    let (client, _pushes) = connecting.await.unwrap().unwrap();
    drop(client);
    let msg = conn.recv_raw().await.expect("a close frame");
    assert!(msg.is_close());
}
