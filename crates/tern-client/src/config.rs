//! How a [`crate::Client`] connects: server URL, token and how to present it,
//! request timeout, push buffer and the reconnect policy.

use std::time::Duration;

use crate::error::ClientError;

/// How the token reaches the server (PROTOCOL.md §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// `Authorization: Bearer <token>` on the upgrade request; the server
    /// sends `auth_ok` unprompted.
    Header,
    /// `?token=<token>` in the URL; the server sends `auth_ok` unprompted.
    Query,
    /// An `auth` frame as the first frame, naming this device.
    Frame { device: String },
}

impl Default for AuthMode {
    /// `Frame` with device `"tern-client"`.
    fn default() -> Self {
        Self::Frame {
            device: "tern-client".to_owned(),
        }
    }
}

/// Exponential backoff with full jitter between reconnect attempts: attempt
/// `n` (from 0) waits a uniformly random time in
/// `[0, min(max, initial * multiplier^n)]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectPolicy {
    /// Reconnect at all after the connection drops. Default `true`.
    pub enabled: bool,
    /// Ceiling of the first delay. Default 250 ms.
    pub initial: Duration,
    /// Largest ceiling. Default 30 s.
    pub max: Duration,
    /// Growth of the ceiling per failed attempt (≥ 1). Default 2.
    pub multiplier: f64,
    /// Give up after this many failed attempts in a row. Default `None`: never.
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            max_attempts: None,
        }
    }
}

impl ReconnectPolicy {
    /// No reconnection: a dropped connection ends the client.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }
}

/// Everything [`crate::Client::connect`] needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// WebSocket URL, e.g. `ws://127.0.0.1:8080/ws` (plain `ws://` only).
    pub url: String,
    /// The JWT.
    pub token: String,
    /// How the token is sent. Default [`AuthMode::Frame`].
    pub auth: AuthMode,
    /// How long a request waits for its reply, and how long opening a
    /// connection (upgrade + authentication) may take. Default 10 s.
    pub request_timeout: Duration,
    /// Capacity of the [`crate::PushStream`]. Default 256.
    pub push_buffer: usize,
    /// Page size of the `sync` requests that fill gaps. Default 100.
    pub sync_page: u32,
    /// What to do when the connection drops.
    pub reconnect: ReconnectPolicy,
}

impl ClientConfig {
    /// A configuration with every default but the URL and the token.
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: token.into(),
            auth: AuthMode::default(),
            request_timeout: Duration::from_secs(10),
            push_buffer: 256,
            sync_page: tern_proto::DEFAULT_SYNC_LIMIT,
            reconnect: ReconnectPolicy::default(),
        }
    }

    /// Replaces the auth mode.
    pub fn with_auth(mut self, auth: AuthMode) -> Self {
        self.auth = auth;
        self
    }

    /// Replaces the reconnect policy.
    pub fn with_reconnect(mut self, reconnect: ReconnectPolicy) -> Self {
        self.reconnect = reconnect;
        self
    }

    /// Replaces the request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Checks the values that would otherwise fail later (or panic in tokio).
    pub fn validate(&self) -> Result<(), ClientError> {
        let bad = |what: &str| Err(ClientError::Config(what.to_owned()));
        if !(self.url.starts_with("ws://") || self.url.starts_with("wss://")) {
            return bad("url must start with ws:// or wss://");
        }
        if self.push_buffer == 0 {
            return bad("push_buffer must be at least 1");
        }
        if self.request_timeout.is_zero() {
            return bad("request_timeout must be positive");
        }
        if !(1..=tern_proto::MAX_SYNC_LIMIT).contains(&self.sync_page) {
            return bad("sync_page must be 1 to 500");
        }
        let r = &self.reconnect;
        if !(r.multiplier.is_finite() && r.multiplier >= 1.0) || r.initial > r.max {
            return bad("reconnect needs multiplier >= 1 and initial <= max");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_checked() {
        let cfg = ClientConfig::new("ws://127.0.0.1:8080/ws", "t");
        assert!(cfg.validate().is_ok());
        assert_eq!(cfg.auth, AuthMode::default());
        let mut bad = cfg.clone();
        bad.push_buffer = 0;
        assert!(bad.validate().is_err());
        let mut bad = cfg.clone();
        bad.reconnect.multiplier = 0.5;
        assert!(bad.validate().is_err());
        assert!(ClientConfig::new("http://x", "t").validate().is_err());
    }
}
