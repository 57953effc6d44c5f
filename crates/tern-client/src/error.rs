//! The client's error type: what a request or a connection attempt can fail with.

use tern_proto::{DecodeError, ErrorCode};

/// Why a request, or opening a connection, failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The configuration is unusable.
    #[error("invalid client config: {0}")]
    Config(String),
    /// The WebSocket layer failed (connect, upgrade, I/O).
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_websockets::Error),
    /// The TCP or TLS layer failed (connect, handshake, I/O), or the server
    /// broke the TCP framing (a frame over `max_frame_bytes`).
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The server answered the request with an `error` frame.
    #[error("server error {code}: {message}")]
    Server {
        code: ErrorCode,
        message: String,
        retry_after_ms: Option<u64>,
    },
    /// The server closed the connection while it was being opened.
    #[error("closed by server ({code}): {reason}")]
    Closed { code: u16, reason: String },
    /// The connection dropped before the reply came. A `send` may be retried
    /// with the same `cmid`: the server stores it at most once.
    #[error("disconnected before the reply")]
    Disconnected,
    /// No reply within the request timeout.
    #[error("request timed out")]
    Timeout,
    /// The client was closed, or gave up reconnecting.
    #[error("client is shut down")]
    Shutdown,
    /// The server answered with a frame of the wrong type.
    #[error("unexpected reply frame `{0}`")]
    UnexpectedReply(&'static str),
    /// The reply could not be decoded.
    #[error("undecodable reply: {0}")]
    Decode(#[from] DecodeError),
}

impl ClientError {
    /// True when retrying later may succeed (the connection or the server was
    /// momentarily unavailable, or the request was rate limited).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Disconnected | Self::Timeout | Self::WebSocket(_) | Self::Io(_) => true,
            Self::Server { code, .. } => {
                matches!(code, ErrorCode::RateLimited | ErrorCode::Unavailable)
            }
            _ => false,
        }
    }

    /// True when reconnecting cannot help: the token is refused or the user
    /// was kicked or banned.
    pub(crate) fn is_terminal(&self) -> bool {
        match self {
            Self::Closed { code, .. } => is_terminal_close(*code),
            Self::Server { code, .. } => {
                matches!(code, ErrorCode::Unauthorized | ErrorCode::Forbidden)
            }
            Self::Config(_) | Self::Shutdown => true,
            _ => false,
        }
    }
}

/// Close codes after which the client does not reconnect: 4001 (bad token)
/// and 4011 (kicked, banned, too many sessions).
pub(crate) fn is_terminal_close(code: u16) -> bool {
    code == tern_proto::CloseCode::BadToken.code() || code == tern_proto::CloseCode::Kicked.code()
}

/// Shorthand used throughout the crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
