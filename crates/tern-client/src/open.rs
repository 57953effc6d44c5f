//! Opening one authenticated connection: WebSocket upgrade, token by header,
//! query or `auth` frame, then waiting for `auth_ok` (PROTOCOL.md §4.1).

use futures_util::{SinkExt, StreamExt};
use http::header::{HeaderValue, AUTHORIZATION};
use tern_proto::{decode_server, encode_client, ClientFrame, RequestId, ServerFrame};
use tokio::net::TcpStream;
use tokio_websockets::{ClientBuilder, MaybeTlsStream, Message, WebSocketStream};

use crate::config::{AuthMode, ClientConfig};
use crate::error::{ClientError, Result};

/// The socket type of a connection.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What `auth_ok` told us about the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub user: String,
    pub session: String,
    pub heartbeat_ms: u64,
    pub server_time: i64,
}

/// Connects and authenticates within the request timeout.
pub(crate) async fn open(cfg: &ClientConfig) -> Result<(Ws, SessionInfo)> {
    tokio::time::timeout(cfg.request_timeout, open_untimed(cfg))
        .await
        .map_err(|_| ClientError::Timeout)?
}

async fn open_untimed(cfg: &ClientConfig) -> Result<(Ws, SessionInfo)> {
    let url = match cfg.auth {
        AuthMode::Query => with_query_token(&cfg.url, &cfg.token),
        _ => cfg.url.clone(),
    };
    let mut builder = ClientBuilder::new()
        .uri(&url)
        .map_err(|e| ClientError::Config(format!("bad url: {e}")))?;
    if cfg.auth == AuthMode::Header {
        let value = HeaderValue::try_from(format!("Bearer {}", cfg.token))
            .map_err(|_| ClientError::Config("token is not a valid header value".into()))?;
        builder = builder.add_header(AUTHORIZATION, value)?;
    }
    let (mut ws, _response) = builder.connect().await?;
    if let AuthMode::Frame { device } = &cfg.auth {
        let auth = ClientFrame::Auth {
            id: Some(auth_id()),
            token: cfg.token.clone(),
            device: Some(device.clone()),
        };
        ws.send(Message::text(encode_client(&auth))).await?;
    }
    let info = await_auth_ok(&mut ws).await?;
    Ok((ws, info))
}

/// The id of the `auth` frame; request ids start at 1.
fn auth_id() -> RequestId {
    RequestId::from(0)
}

/// Reads until `auth_ok`; an `error` frame or a close fails the attempt.
async fn await_auth_ok(ws: &mut Ws) -> Result<SessionInfo> {
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        if let Some((code, reason)) = msg.as_close() {
            return Err(ClientError::Closed {
                code: code.into(),
                reason: reason.to_owned(),
            });
        }
        if !msg.is_text() {
            continue;
        }
        match decode_server(msg.as_payload())? {
            ServerFrame::AuthOk {
                user,
                session,
                heartbeat_ms,
                server_time,
                ..
            } => {
                return Ok(SessionInfo {
                    user,
                    session,
                    heartbeat_ms,
                    server_time,
                })
            }
            ServerFrame::Error {
                code,
                message,
                retry_after_ms,
                ..
            } => {
                return Err(ClientError::Server {
                    code,
                    message,
                    retry_after_ms,
                })
            }
            other => tracing::debug!(frame = ?other, "frame before auth_ok ignored"),
        }
    }
    Err(ClientError::Disconnected)
}

/// Appends `token=<percent-encoded token>` to the URL's query.
pub(crate) fn with_query_token(url: &str, token: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}token={}", percent_encode(token))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_token_is_appended_and_encoded() {
        assert_eq!(
            with_query_token("ws://h/ws", "a.b_c-d"),
            "ws://h/ws?token=a.b_c-d"
        );
        assert_eq!(
            with_query_token("ws://h/ws?codec=json", "a+b/="),
            "ws://h/ws?codec=json&token=a%2Bb%2F%3D"
        );
    }
}
