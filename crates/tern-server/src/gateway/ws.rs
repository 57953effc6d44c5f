//! The WebSocket door: [`Transport`] over a tokio-websockets stream. Text
//! messages carry JSON frames, binary messages protobuf frames; pings are
//! answered by the WebSocket layer; close codes travel in Close frames.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tern_proto::CloseCode;
use tokio_websockets::{Error as WsError, Message};

use super::transport::{Incoming, RecvError, Transport};

/// A WebSocket connection as a [`Transport`]. Generic over the socket's
/// `Stream`/`Sink`, so tests may drive it with anything that speaks
/// `tokio_websockets::Message`.
pub struct WsTransport<S> {
    ws: S,
    /// Bound on waiting for the peer's Close in the handshake.
    close_timeout: Duration,
}

impl<S> WsTransport<S> {
    pub fn new(ws: S, close_timeout: Duration) -> Self {
        Self { ws, close_timeout }
    }
}

impl<S> Transport for WsTransport<S>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin + Send,
{
    async fn recv(&mut self) -> Option<Result<Incoming, RecvError>> {
        loop {
            let msg = match self.ws.next().await? {
                Ok(msg) => msg,
                Err(WsError::PayloadTooLong { len, max_len }) => {
                    return Some(Err(RecvError::TooLarge { len, max: max_len }))
                }
                Err(e @ WsError::Protocol(_)) => {
                    return Some(Err(RecvError::Protocol(e.to_string())))
                }
                Err(e) => return Some(Err(RecvError::Io(e.to_string()))),
            };
            if msg.is_close() {
                return Some(Ok(Incoming::Closed));
            }
            if msg.is_text() || msg.is_binary() {
                let binary = msg.is_binary();
                let bytes = Bytes::from(msg.into_payload());
                return Some(Ok(Incoming::Data { bytes, binary }));
            }
            // Ping / pong: answered by the WebSocket layer.
        }
    }

    async fn feed(&mut self, frame: Bytes, binary: bool) -> bool {
        let msg = if binary {
            Message::binary(frame)
        } else {
            // Frames of the JSON codec are UTF-8 by construction.
            Message::text(frame)
        };
        self.ws.feed(msg).await.is_ok()
    }

    async fn flush(&mut self) -> bool {
        self.ws.flush().await.is_ok()
    }

    async fn close(&mut self, code: CloseCode, _told: bool) {
        let ws_code = tokio_websockets::CloseCode::try_from(code.code())
            .unwrap_or(tokio_websockets::CloseCode::POLICY_VIOLATION);
        let msg = Message::close(Some(ws_code), code.reason());
        // `send` fails when the WebSocket layer already queued a close of its
        // own (e.g. 1009 for an oversized frame); `close` then flushes that
        // one. `close` also waits (bounded) for the peer's close reply.
        let _ = tokio::time::timeout(self.close_timeout, async {
            let _ = self.ws.send(msg).await;
            self.ws.close().await
        })
        .await;
    }

    async fn answer_close(&mut self) {
        // The WebSocket layer queued the echo of the peer's code (RFC 6455
        // §5.5.1); `close` flushes it and shuts the socket down.
        let _ = tokio::time::timeout(self.close_timeout, self.ws.close()).await;
    }

    fn kind(&self) -> &'static str {
        "ws"
    }
}
