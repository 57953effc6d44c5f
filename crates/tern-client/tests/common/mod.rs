//! A scriptable fake tern server on 127.0.0.1:0 for the client tests: each
//! accepted WebSocket is handed to the test, which plays the server's part.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tern_client::{ClientConfig, Push, PushStream, ReconnectPolicy};
use tern_proto::{
    decode_client, encode_server, ClientFrame, ConvId, Message, MessageKind, RequestId, ServerFrame,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_websockets::{CloseCode, Message as WsMessage, ServerBuilder, WebSocketStream};

/// How long a test waits for anything before failing.
pub const WAIT: Duration = Duration::from_secs(5);

pub struct FakeServer {
    pub addr: SocketAddr,
    conns: mpsc::Receiver<FakeConn>,
}

impl FakeServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, conns) = mpsc::channel(8);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok((request, ws)) = ServerBuilder::new().accept(tcp).await else {
                    continue;
                };
                if tx.send(FakeConn { request, ws }).await.is_err() {
                    return;
                }
            }
        });
        Self { addr, conns }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// The next connection (fails the test after [`WAIT`]).
    pub async fn accept(&mut self) -> FakeConn {
        tokio::time::timeout(WAIT, self.conns.recv())
            .await
            .expect("no connection in time")
            .expect("listener gone")
    }

    /// A connection, if one arrives within `d`.
    pub async fn try_accept(&mut self, d: Duration) -> Option<FakeConn> {
        tokio::time::timeout(d, self.conns.recv())
            .await
            .ok()
            .flatten()
    }
}

pub struct FakeConn {
    pub request: http::Request<()>,
    ws: WebSocketStream<TcpStream>,
}

impl FakeConn {
    /// The next WebSocket message, `None` at the end of the stream.
    pub async fn recv_raw(&mut self) -> Option<WsMessage> {
        let next = tokio::time::timeout(WAIT, self.ws.next()).await;
        next.expect("client silent")?.ok()
    }

    /// The next client frame, skipping pings and pongs.
    pub async fn recv(&mut self) -> ClientFrame {
        loop {
            let msg = self.recv_raw().await.expect("client closed");
            if msg.is_text() {
                return decode_client(msg.as_payload()).unwrap();
            }
            assert!(!msg.is_close(), "client closed: {:?}", msg.as_close());
        }
    }

    pub async fn send(&mut self, frame: &ServerFrame) {
        self.ws
            .send(WsMessage::text(encode_server(frame)))
            .await
            .unwrap();
    }

    pub async fn close(&mut self, code: u16, reason: &str) {
        let code = CloseCode::try_from(code).unwrap();
        let _ = self.ws.send(WsMessage::close(Some(code), reason)).await;
    }

    pub async fn auth_ok(&mut self, id: Option<RequestId>, user: &str, heartbeat_ms: u64) {
        let frame = ServerFrame::AuthOk {
            id,
            user: user.into(),
            session: format!("s-{}", rand_suffix()),
            heartbeat_ms,
            server_time: 1,
        };
        self.send(&frame).await;
    }

    /// Expects an `auth` frame and accepts it as `alice`.
    pub async fn handshake(&mut self) {
        let ClientFrame::Auth { id, .. } = self.recv().await else {
            panic!("expected auth first")
        };
        self.auth_ok(id, "alice", 25_000).await;
    }
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A client config for the fake server: frame auth, fast reconnects.
pub fn config(server: &FakeServer) -> ClientConfig {
    ClientConfig::new(server.url(), "tok")
        .with_request_timeout(Duration::from_secs(3))
        .with_reconnect(ReconnectPolicy {
            enabled: true,
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
            multiplier: 2.0,
            max_attempts: Some(50),
        })
}

pub fn conv() -> ConvId {
    ConvId::direct("alice", "bob")
}

/// Message `seq` of alice and bob's conversation, from bob.
pub fn msg(seq: u64) -> Message {
    Message {
        conv: conv(),
        seq,
        mid: format!("m{seq}"),
        from: "bob".into(),
        body: format!("body {seq}"),
        kind: MessageKind::Text,
        ts: 1_000 + i64::try_from(seq).unwrap(),
        cmid: format!("c{seq}"),
        meta: None,
    }
}

pub fn messages(id: Option<RequestId>, seqs: &[u64], more: bool) -> ServerFrame {
    ServerFrame::Messages {
        id,
        conv: conv(),
        items: seqs.iter().map(|&s| msg(s)).collect(),
        more,
    }
}

/// The next push (fails the test after [`WAIT`]).
pub async fn next_push(pushes: &mut PushStream) -> Push {
    tokio::time::timeout(WAIT, pushes.recv())
        .await
        .expect("no push in time")
        .expect("push stream ended")
}

/// The seq of a `Msg` push; panics on anything else.
pub fn seq_of(push: &Push) -> u64 {
    match push {
        Push::Msg(m) => m.seq,
        other => panic!("expected msg, got {other:?}"),
    }
}
