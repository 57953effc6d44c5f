//! Error codes of requests (PROTOCOL.md §4) and close codes of connections (§4.4).

use serde::{Deserialize, Serialize};

/// The `code` of an `error` frame or of an HTTP error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    TooLarge,
    RateLimited,
    Conflict,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The wire spelling, e.g. `"not_found"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::TooLarge => "too_large",
            Self::RateLimited => "rate_limited",
            Self::Conflict => "conflict",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status that carries this code (PROTOCOL.md §6).
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::TooLarge => 413,
            Self::RateLimited => 429,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the server closes a connection. The numeric value is the WebSocket
/// close code, and over raw TCP the `close` field of the final `error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum CloseCode {
    /// Normal closure (client said goodbye).
    Normal = 1000,
    /// Server shutting down or draining, after `goaway`.
    GoingAway = 1001,
    /// A frame or message over `limits.max_frame_bytes`.
    TooLarge = 1009,
    /// Malformed frame or protocol violation.
    Malformed = 4000,
    /// Invalid or expired token.
    BadToken = 4001,
    /// No authentication within `limits.auth_timeout_ms`.
    AuthTimeout = 4002,
    /// Nothing received within `limits.idle_timeout_ms`.
    IdleTimeout = 4003,
    /// More than `limits.rate_abuse_limit` rate-limited requests in a minute.
    RateAbuse = 4008,
    /// The outbound queue overflowed.
    SlowConsumer = 4010,
    /// Kicked: admin kick, ban, or too many sessions.
    Kicked = 4011,
}

impl CloseCode {
    pub fn code(self) -> u16 {
        self as u16
    }

    /// A short human reason sent with the close frame.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Normal => "bye",
            Self::GoingAway => "server going away",
            Self::TooLarge => "frame too large",
            Self::Malformed => "malformed frame",
            Self::BadToken => "invalid token",
            Self::AuthTimeout => "no authentication in time",
            Self::IdleTimeout => "idle timeout",
            Self::RateAbuse => "rate limit abuse",
            Self::SlowConsumer => "slow consumer",
            Self::Kicked => "kicked",
        }
    }

    pub fn from_code(code: u16) -> Option<Self> {
        Some(match code {
            1000 => Self::Normal,
            1001 => Self::GoingAway,
            1009 => Self::TooLarge,
            4000 => Self::Malformed,
            4001 => Self::BadToken,
            4002 => Self::AuthTimeout,
            4003 => Self::IdleTimeout,
            4008 => Self::RateAbuse,
            4010 => Self::SlowConsumer,
            4011 => Self::Kicked,
            _ => return None,
        })
    }
}
