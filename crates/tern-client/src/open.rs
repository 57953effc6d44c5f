//! Opening one authenticated connection: the transport the URL names, the
//! token by header, query or `auth` frame, then waiting for `auth_ok`
//! (PROTOCOL.md §4.1).

use tern_proto::{ClientFrame, RequestId, ServerFrame};

use crate::config::{AuthMode, ClientConfig};
use crate::error::{ClientError, Result};
use crate::transport::{self, Incoming, Link, Transport};

/// What `auth_ok` told us about the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub user: String,
    pub session: String,
    pub heartbeat_ms: u64,
    pub server_time: i64,
}

/// Connects and authenticates within the request timeout.
pub(crate) async fn open(cfg: &ClientConfig) -> Result<(Link, SessionInfo)> {
    tokio::time::timeout(cfg.request_timeout, open_untimed(cfg))
        .await
        .map_err(|_| ClientError::Timeout)?
}

async fn open_untimed(cfg: &ClientConfig) -> Result<(Link, SessionInfo)> {
    let mut link = transport::connect(cfg).await?;
    if let AuthMode::Frame { device } = &cfg.auth {
        let auth = ClientFrame::Auth {
            id: Some(auth_id()),
            token: cfg.token.clone(),
            device: Some(device.clone()),
        };
        link.send(&auth).await?;
    }
    let info = await_auth_ok(&mut link).await?;
    Ok((link, info))
}

/// The id of the `auth` frame; request ids start at 1.
fn auth_id() -> RequestId {
    RequestId::from(0)
}

/// Reads until `auth_ok`; an `error` frame or a close fails the attempt.
async fn await_auth_ok(link: &mut Link) -> Result<SessionInfo> {
    while let Some(incoming) = link.recv().await {
        let frame = match incoming? {
            Incoming::Close { code, reason } => return Err(ClientError::Closed { code, reason }),
            Incoming::Control => continue,
            Incoming::Frame(frame) => frame?,
        };
        match frame {
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
