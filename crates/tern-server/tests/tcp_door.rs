//! The raw TCP door end to end: `TRN1`, length-prefixed protobuf frames,
//! auth, send/ack and the push to a WebSocket JSON session in the same
//! conversation and back, a wrong preface (closed without a frame), an oversize
//! length (final `error` with close 1009) and undecodable bytes (4000).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{token, TestServer};
use tern_proto::frame::SendFrame;
use tern_proto::{ClientFrame, Codec, MessageKind, RequestId, ServerFrame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn server() -> (TestServer, SocketAddr) {
    let s = TestServer::with(tcp_on).await;
    let tcp = tcp_addr(&s);
    (s, tcp)
}

/// Puts the TCP door on a free port.
fn tcp_on(c: &mut tern_server::Config) {
    c.tcp_addr = "127.0.0.1:0".into();
}

fn tcp_addr(s: &TestServer) -> SocketAddr {
    s.server.as_ref().unwrap().tcp_addr.unwrap()
}

async fn write_frame(s: &mut TcpStream, frame: &ClientFrame) {
    let bytes = Codec::Proto.encode_client(frame);
    s.write_all(&(bytes.len() as u32).to_be_bytes())
        .await
        .unwrap();
    s.write_all(&bytes).await.unwrap();
}

/// The next frame, or `None` when the server closed the socket.
async fn read_frame(s: &mut TcpStream) -> Option<ServerFrame> {
    let mut len = [0u8; 4];
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut len)).await;
    read.unwrap().ok()?;
    let mut body = vec![0; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).await.ok()?;
    Some(Codec::Proto.decode_server(&body).unwrap())
}

fn id(n: u64) -> Option<RequestId> {
    serde_json::from_value(serde_json::json!(n)).ok()
}

#[tokio::test]
async fn a_tcp_session_and_a_websocket_session_chat() {
    let (s, tcp) = server().await;
    let mut bob = s.connect("bob").await;
    let mut alice = TcpStream::connect(tcp).await.unwrap();
    alice.write_all(b"TRN1").await.unwrap();
    write_frame(
        &mut alice,
        &ClientFrame::Auth {
            id: id(1),
            token: token("alice"),
            device: None,
        },
    )
    .await;
    let ok = read_frame(&mut alice).await.unwrap();
    assert!(
        matches!(ok, ServerFrame::AuthOk { ref user, .. } if user == "alice"),
        "{ok:?}"
    );
    let send = SendFrame {
        id: id(2),
        to: Some("bob".into()),
        conv: None,
        cmid: "t-1".into(),
        body: "over tcp".into(),
        kind: MessageKind::Text,
        meta: None,
    };
    write_frame(&mut alice, &ClientFrame::Send(send)).await;
    let ack = read_frame(&mut alice).await.unwrap();
    assert!(matches!(ack, ServerFrame::Ack { seq: 1, .. }), "{ack:?}");
    // bob (WebSocket, JSON) gets the push in his codec.
    assert_eq!(bob.recv_type("msg").await["body"], "over tcp");
    // And the other way: bob's message reaches alice in protobuf.
    bob.send(serde_json::json!({"type":"send","id":9,"to":"alice","cmid":"w-1","body":"back"}))
        .await;
    let pushed = loop {
        match read_frame(&mut alice).await {
            Some(ServerFrame::Msg(m)) => break m,
            Some(_) => continue,
            None => panic!("closed before the push"),
        }
    };
    assert_eq!(pushed.body, "back");
    s.shutdown().await;
}

#[tokio::test]
async fn a_wrong_preface_is_closed_without_a_frame() {
    let (s, tcp) = server().await;
    let mut c = TcpStream::connect(tcp).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "no frame before the close");
    s.shutdown().await;
}

#[tokio::test]
async fn oversize_and_undecodable_frames_get_a_final_error() {
    let (s, tcp) = server().await;
    let mut c = TcpStream::connect(tcp).await.unwrap();
    c.write_all(b"TRN1").await.unwrap();
    c.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    match read_frame(&mut c).await {
        Some(ServerFrame::Error { close, .. }) => assert_eq!(close, Some(1009)),
        other => panic!("expected error 1009, got {other:?}"),
    }
    assert!(read_frame(&mut c).await.is_none(), "closed after the error");

    let mut c = TcpStream::connect(tcp).await.unwrap();
    c.write_all(b"TRN1").await.unwrap();
    let junk = [0xffu8, 0xff, 0xff, 0xff, 0x0f, 0x01];
    c.write_all(&(junk.len() as u32).to_be_bytes())
        .await
        .unwrap();
    c.write_all(&junk).await.unwrap();
    match read_frame(&mut c).await {
        Some(ServerFrame::Error { close, code, .. }) => {
            assert_eq!(close, Some(4000));
            assert_eq!(code, tern_proto::ErrorCode::BadRequest);
        }
        other => panic!("expected error 4000, got {other:?}"),
    }
    s.shutdown().await;
}

/// A TCP client that has sent the preface and authenticated as `user`.
async fn tcp_session(tcp: SocketAddr, user: &str) -> TcpStream {
    let mut c = TcpStream::connect(tcp).await.unwrap();
    c.write_all(b"TRN1").await.unwrap();
    write_frame(
        &mut c,
        &ClientFrame::Auth {
            id: id(1),
            token: token(user),
            device: None,
        },
    )
    .await;
    let ok = read_frame(&mut c).await.unwrap();
    assert!(matches!(ok, ServerFrame::AuthOk { .. }), "{ok:?}");
    c
}

/// Reads until a final `error` carrying a close code, then the socket ends.
async fn expect_final_error(c: &mut TcpStream) -> (tern_proto::ErrorCode, u16) {
    loop {
        match read_frame(c).await {
            Some(ServerFrame::Error {
                code,
                close: Some(close),
                ..
            }) => {
                assert!(read_frame(c).await.is_none(), "closed after the error");
                return (code, close);
            }
            Some(_) => continue,
            None => panic!("closed without a final error frame"),
        }
    }
}

#[tokio::test]
async fn a_bad_token_and_no_auth_in_time_close_with_their_codes() {
    let s = TestServer::with(|c| {
        tcp_on(c);
        c.limits.auth_timeout_ms = 300;
    })
    .await;
    let tcp = tcp_addr(&s);
    let mut c = TcpStream::connect(tcp).await.unwrap();
    c.write_all(b"TRN1").await.unwrap();
    write_frame(
        &mut c,
        &ClientFrame::Auth {
            id: id(1),
            token: "not.a.token".into(),
            device: None,
        },
    )
    .await;
    let (code, close) = expect_final_error(&mut c).await;
    assert_eq!((code, close), (tern_proto::ErrorCode::Unauthorized, 4001));

    // Preface, then nothing: 4002 once auth_timeout_ms has passed.
    let mut c = TcpStream::connect(tcp).await.unwrap();
    c.write_all(b"TRN1").await.unwrap();
    let (_, close) = expect_final_error(&mut c).await;
    assert_eq!(close, 4002);
    s.shutdown().await;
}

#[tokio::test]
async fn an_idle_tcp_session_is_closed_with_4003() {
    let s = TestServer::with(|c| {
        tcp_on(c);
        c.limits.idle_timeout_ms = 400;
    })
    .await;
    let tcp = tcp_addr(&s);
    let mut c = tcp_session(tcp, "idler").await;
    let started = std::time::Instant::now();
    let (_, close) = expect_final_error(&mut c).await;
    assert_eq!(close, 4003);
    assert!(started.elapsed() >= Duration::from_millis(300));
    s.shutdown().await;
}

#[tokio::test]
async fn tcp_sends_are_rate_limited_like_websocket_ones() {
    let s = TestServer::with(|c| {
        tcp_on(c);
        c.limits.send_rate = 1;
        c.limits.send_burst = 2;
    })
    .await;
    let tcp = tcp_addr(&s);
    let _bob = s.connect("bob").await;
    let mut c = tcp_session(tcp, "alice").await;
    let mut limited = None;
    for n in 0..4u64 {
        let send = SendFrame {
            id: id(10 + n),
            to: Some("bob".into()),
            conv: None,
            cmid: format!("r-{n}"),
            body: "x".into(),
            kind: MessageKind::Text,
            meta: None,
        };
        write_frame(&mut c, &ClientFrame::Send(send)).await;
        match read_frame(&mut c).await.unwrap() {
            ServerFrame::Ack { .. } => {}
            ServerFrame::Error {
                code,
                retry_after_ms,
                ..
            } => {
                assert_eq!(code, tern_proto::ErrorCode::RateLimited);
                assert!(retry_after_ms.is_some());
                limited = Some(n);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        limited,
        Some(2),
        "the burst of 2 passes, the third is limited"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn presence_pushes_reach_a_tcp_watcher_in_protobuf() {
    let (s, tcp) = server().await;
    let mut c = tcp_session(tcp, "watcher").await;
    write_frame(
        &mut c,
        &ClientFrame::PresenceSub {
            id: id(5),
            users: vec!["carol".into()],
        },
    )
    .await;
    match read_frame(&mut c).await.unwrap() {
        ServerFrame::Presence { items, .. } => assert!(!items[0].online),
        other => panic!("{other:?}"),
    }
    let carol = s.connect("carol").await;
    let online = loop {
        match read_frame(&mut c).await.unwrap() {
            ServerFrame::Presence { items, id: None } => break items,
            _ => continue,
        }
    };
    assert_eq!((online[0].user.as_str(), online[0].online), ("carol", true));
    drop(carol);
    s.shutdown().await;
}

#[tokio::test]
async fn a_draining_server_sends_goaway_over_tcp_then_closes() {
    let s = TestServer::with(|c| {
        tcp_on(c);
        c.limits.drain_timeout_ms = 300;
    })
    .await;
    let tcp = tcp_addr(&s);
    let mut c = tcp_session(tcp, "leaver").await;
    let shutdown = tokio::spawn(s.shutdown());
    match read_frame(&mut c).await.unwrap() {
        ServerFrame::Goaway { reconnect_ms } => assert!(reconnect_ms > 0),
        other => panic!("expected goaway, got {other:?}"),
    }
    let (_, close) = expect_final_error(&mut c).await;
    assert_eq!(close, 1001);
    shutdown.await.unwrap();
}

/// A socket accepted before the drain that authenticates during it still
/// hears `goaway` (it missed the one told to every session at the start),
/// then the 1001 close at the drain's deadline.
#[tokio::test]
async fn a_session_opened_during_the_drain_is_told_goaway_too() {
    let s = TestServer::with(|c| {
        tcp_on(c);
        c.limits.drain_timeout_ms = 500;
    })
    .await;
    let tcp = tcp_addr(&s);
    let mut c = TcpStream::connect(tcp).await.unwrap();
    c.write_all(b"TRN1").await.unwrap();
    let shutdown = tokio::spawn(s.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;
    write_frame(
        &mut c,
        &ClientFrame::Auth {
            id: id(1),
            token: token("latecomer"),
            device: None,
        },
    )
    .await;
    let ok = read_frame(&mut c).await.unwrap();
    assert!(matches!(ok, ServerFrame::AuthOk { .. }), "{ok:?}");
    match read_frame(&mut c).await.unwrap() {
        ServerFrame::Goaway { reconnect_ms } => assert!(reconnect_ms > 0),
        other => panic!("expected goaway, got {other:?}"),
    }
    let (_, close) = expect_final_error(&mut c).await;
    assert_eq!(close, 1001);
    shutdown.await.unwrap();
}
