//! WebSocket transport: one frame per message, text for JSON and binary
//! for protobuf. The codec is offered as subprotocol `tern.json` or
//! `tern.proto`; replies are decoded by the kind of message they come in.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::header::{HeaderValue, AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};
use tern_proto::{ClientFrame, Codec};
use tokio_websockets::{ClientBuilder, CloseCode, Limits, Message, WebSocketStream};

use super::net::{dial, NetStream};
use super::{config_error, Incoming, Transport};
use crate::config::{AuthMode, ClientConfig};
use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::open::with_query_token;

/// A WebSocket connection and the codec of what it sends.
pub(crate) struct WsTransport {
    ws: WebSocketStream<NetStream>,
    codec: Codec,
}

impl WsTransport {
    /// Dials and upgrades; a header or query token goes with the upgrade.
    pub async fn open(cfg: &ClientConfig, endpoint: &Endpoint) -> Result<Self> {
        let url = match cfg.auth {
            AuthMode::Query => with_query_token(&cfg.url, &cfg.token),
            _ => cfg.url.clone(),
        };
        let limits = Limits::default().max_payload_len(Some(cfg.max_frame_bytes));
        let protocol = HeaderValue::from_static(endpoint.codec.subprotocol());
        let mut builder = ClientBuilder::new()
            .uri(&url)
            .map_err(|e| config_error(format!("bad url: {e}")))?
            .limits(limits)
            .add_header(SEC_WEBSOCKET_PROTOCOL, protocol)?;
        if cfg.auth == AuthMode::Header {
            let value = HeaderValue::try_from(format!("Bearer {}", cfg.token))
                .map_err(|_| config_error("token is not a valid header value"))?;
            builder = builder.add_header(AUTHORIZATION, value)?;
        }
        let stream = dial(endpoint, &cfg.tls_roots).await?;
        let (ws, _response) = builder.connect_on(stream).await?;
        Ok(Self {
            ws,
            codec: endpoint.codec,
        })
    }
}

impl Transport for WsTransport {
    async fn send(&mut self, frame: &ClientFrame) -> Result<()> {
        let bytes = self.codec.encode_client(frame);
        let msg = if self.codec.is_binary() {
            Message::binary(bytes)
        } else {
            Message::text(bytes)
        };
        Ok(self.ws.send(msg).await?)
    }

    async fn recv(&mut self) -> Option<Result<Incoming>> {
        let msg = match self.ws.next().await? {
            Ok(msg) => msg,
            Err(e) => return Some(Err(e.into())),
        };
        let incoming = if let Some((code, reason)) = msg.as_close() {
            Incoming::Close {
                code: code.into(),
                reason: reason.to_owned(),
            }
        } else if msg.is_text() {
            Incoming::Frame(Codec::Json.decode_server(msg.as_payload()))
        } else if msg.is_binary() {
            Incoming::Frame(Codec::Proto.decode_server(msg.as_payload()))
        } else {
            Incoming::Control
        };
        Some(Ok(incoming))
    }

    async fn ping(&mut self) -> Result<()> {
        Ok(self.ws.send(Message::ping("tern")).await?)
    }

    async fn close(&mut self, reason: &str) {
        let bye = Message::close(Some(CloseCode::NORMAL_CLOSURE), reason);
        let _ = self.ws.send(bye).await;
        let drain = async { while self.ws.next().await.is_some() {} };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    }
}
