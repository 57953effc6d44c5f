//! How a [`crate::Client`] connects: server URL (which picks the transport),
//! codec, TLS trust roots, token and how to present it, request timeout,
//! frame and push bounds, and the reconnect policy.

use std::time::Duration;

use tern_proto::Codec;

use crate::endpoint::{Door, Endpoint};
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

/// The certificate authorities a `wss://` or `tls://` server certificate
/// must chain to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TlsRoots {
    /// Mozilla's root certificates, compiled in (`webpki-roots`). The default.
    #[default]
    WebPki,
    /// Only the certificates of this PEM text (one or more `CERTIFICATE`
    /// blocks), e.g. a private CA or a test's self-signed certificate.
    Pem(Vec<u8>),
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

/// Default of [`ClientConfig::max_frame_bytes`]: 16 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 << 20;

/// Everything [`crate::Client::connect`] needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Server URL; its scheme picks the transport: `ws://host:port/ws` or
    /// `wss://…` (WebSocket; add `?codec=proto` for protobuf frames),
    /// `tcp://host:port` (the raw TCP door: `TRN1`, length-prefixed
    /// protobuf) or `tls://host:port` (the TCP door in TLS).
    pub url: String,
    /// Codec of a WebSocket connection (offered as subprotocol `tern.json`
    /// or `tern.proto`). Default `None`: the URL's `codec=` parameter, else
    /// JSON. The TCP door is always protobuf.
    pub codec: Option<Codec>,
    /// Trust roots of `wss://` and `tls://`. Default [`TlsRoots::WebPki`].
    pub tls_roots: TlsRoots,
    /// Largest frame accepted from the server, in bytes (the connection
    /// fails above it). Default 16 MiB.
    pub max_frame_bytes: usize,
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
            codec: None,
            tls_roots: TlsRoots::default(),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            token: token.into(),
            auth: AuthMode::default(),
            request_timeout: Duration::from_secs(10),
            push_buffer: 256,
            sync_page: tern_proto::DEFAULT_SYNC_LIMIT,
            reconnect: ReconnectPolicy::default(),
        }
    }

    /// Sets the codec of a WebSocket connection.
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = Some(codec);
        self
    }

    /// Trusts only the CA certificates of `pem` for `wss://` and `tls://`.
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_roots = TlsRoots::Pem(pem.into());
        self
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
        let endpoint = Endpoint::parse(&self.url, self.codec)?;
        if endpoint.door == Door::Tcp && !matches!(self.auth, AuthMode::Frame { .. }) {
            return bad("tcp:// and tls:// authenticate with an auth frame (AuthMode::Frame)");
        }
        if self.max_frame_bytes == 0 {
            return bad("max_frame_bytes must be at least 1");
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
        assert!(ClientConfig::new("tcp://127.0.0.1:7070", "t")
            .validate()
            .is_ok());
        let header = ClientConfig::new("tls://h:7070", "t").with_auth(AuthMode::Header);
        assert!(header.validate().is_err());
    }
}
