//! The transports a client connection runs on, behind one trait: WebSocket
//! (JSON or protobuf frames, [`ws`]) and the raw TCP door (length-prefixed
//! protobuf, [`tcp`]), each over plain TCP or TLS ([`net`], [`tls`]). The
//! connection task sees frames and close codes, never the wire.

mod net;
mod tcp;
mod tls;
mod ws;

use tern_proto::{ClientFrame, DecodeError, ServerFrame};

use crate::config::ClientConfig;
use crate::endpoint::{Door, Endpoint};
use crate::error::{ClientError, Result};

pub(crate) use tcp::TcpTransport;
pub(crate) use ws::WsTransport;

/// What a transport read.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A data frame, decoded with the connection's codec.
    Frame(Result<ServerFrame, DecodeError>),
    /// The server's close code: a WebSocket close frame, or over TCP the
    /// `close` field of the final `error` frame (reported once the socket
    /// ends). The stream ends right after.
    Close { code: u16, reason: String },
    /// Anything else (a WebSocket ping or pong): proof of life only.
    Control,
}

/// One connection to the server, whatever carries it.
pub(crate) trait Transport {
    /// Encodes and writes one frame.
    async fn send(&mut self, frame: &ClientFrame) -> Result<()>;
    /// The next thing read; `None` once the connection has ended.
    /// Cancel-safe: what was read of a frame so far is kept.
    async fn recv(&mut self) -> Option<Result<Incoming>>;
    /// A keep-alive the server answers (WebSocket ping; `ping` frame over TCP).
    async fn ping(&mut self) -> Result<()>;
    /// Says goodbye and waits briefly for the server to close its side.
    async fn close(&mut self, reason: &str);
}

/// The transport of a live connection.
pub(crate) enum Link {
    Ws(Box<WsTransport>),
    Tcp(Box<TcpTransport>),
}

/// Opens the transport the URL names (no authentication yet).
pub(crate) async fn connect(cfg: &ClientConfig) -> Result<Link> {
    let endpoint = Endpoint::parse(&cfg.url, cfg.codec)?;
    Ok(match endpoint.door {
        Door::WebSocket => Link::Ws(Box::new(WsTransport::open(cfg, &endpoint).await?)),
        Door::Tcp => Link::Tcp(Box::new(TcpTransport::open(cfg, &endpoint).await?)),
    })
}

impl Transport for Link {
    async fn send(&mut self, frame: &ClientFrame) -> Result<()> {
        match self {
            Self::Ws(t) => t.send(frame).await,
            Self::Tcp(t) => t.send(frame).await,
        }
    }

    async fn recv(&mut self) -> Option<Result<Incoming>> {
        match self {
            Self::Ws(t) => t.recv().await,
            Self::Tcp(t) => t.recv().await,
        }
    }

    async fn ping(&mut self) -> Result<()> {
        match self {
            Self::Ws(t) => t.ping().await,
            Self::Tcp(t) => t.ping().await,
        }
    }

    async fn close(&mut self, reason: &str) {
        match self {
            Self::Ws(t) => t.close(reason).await,
            Self::Tcp(t) => t.close(reason).await,
        }
    }
}

/// The error for a URL or option that cannot be used.
fn config_error(what: impl std::fmt::Display) -> ClientError {
    ClientError::Config(what.to_string())
}
