//! [`Link`]: a transport plus the connection's codec. It turns the bytes a
//! door delivers into client frames (or the documented answer when they are
//! not), encodes server frames in the connection's codec, and ends the
//! connection the way each outcome requires.

use std::time::Duration;

use bytes::Bytes;
use tern_proto::{ClientFrame, CloseCode, DecodeError, ErrorCode, ServerFrame};
use tokio::time::timeout;

use super::transport::{Incoming, RecvError, Transport};
use crate::state::AppState;

pub use tern_proto::Codec;

/// What one read gave.
pub enum Read {
    /// Boxed: a frame is large and rare next to the idle wait every
    /// connection's future is sized for.
    Frame(Box<ClientFrame>),
    /// Decodable but not a valid frame: this answer, and the connection
    /// stays open.
    Invalid(Bytes),
    /// Not decodable in the connection's codec: this answer, then 4000.
    Fatal(Bytes),
    /// A frame over `limits.max_frame_bytes`: 1009.
    TooLarge,
    /// The peer started the closing handshake.
    PeerClosed,
    /// The door's own framing was violated (e.g. invalid UTF-8 in a
    /// WebSocket text frame): the door closes the way its protocol says
    /// (WebSocket: 1002/1007, RFC 6455).
    Broken,
    /// The peer vanished.
    Gone,
}

/// `limits.write_timeout_ms` and `limits.close_timeout_ms`, taken once per
/// connection (kept as `u32` ms: every idle connection holds a copy).
#[derive(Clone, Copy)]
pub struct Timeouts {
    write_ms: u32,
    close_ms: u32,
}

impl Timeouts {
    pub fn of(state: &AppState) -> Self {
        let limits = &state.hub.config().limits;
        let ms = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Self {
            write_ms: ms(limits.write_timeout_ms),
            close_ms: ms(limits.close_timeout_ms),
        }
    }

    pub fn write(self) -> Duration {
        Duration::from_millis(self.write_ms.into())
    }

    pub fn close(self) -> Duration {
        Duration::from_millis(self.close_ms.into())
    }
}

/// A transport and the codec its frames are in.
pub struct Link<T> {
    transport: T,
    /// `None` until the first frame fixes it (WebSocket without a codec
    /// named at the upgrade).
    codec: Option<Codec>,
    times: Timeouts,
}

impl<T: Transport> Link<T> {
    pub fn new(transport: T, codec: Option<Codec>, times: Timeouts) -> Self {
        Self {
            transport,
            codec,
            times,
        }
    }

    pub fn times(&self) -> Timeouts {
        self.times
    }

    /// The codec answers go out in: the fixed one, else JSON.
    pub fn codec(&self) -> Codec {
        self.codec.unwrap_or(Codec::Json)
    }

    /// `frame` in the connection's codec.
    pub fn encode(&self, frame: &ServerFrame) -> Bytes {
        self.codec().encode_server(frame)
    }

    /// Reads and decodes the next client frame.
    pub async fn read(&mut self) -> Read {
        match self.transport.recv().await {
            None | Some(Err(RecvError::Io(_))) => Read::Gone,
            Some(Err(RecvError::Protocol(why))) => {
                tracing::debug!(%why, "protocol violation");
                Read::Broken
            }
            Some(Err(RecvError::TooLarge { len, max })) => {
                tracing::debug!(len, max, "frame too large");
                Read::TooLarge
            }
            Some(Ok(Incoming::Closed)) => Read::PeerClosed,
            Some(Ok(Incoming::Data { bytes, binary })) => self.decode(&bytes, binary),
        }
    }

    fn decode(&mut self, bytes: &[u8], binary: bool) -> Read {
        let codec = *self
            .codec
            .get_or_insert(if binary { Codec::Proto } else { Codec::Json });
        if binary != is_binary(codec) {
            let message = if binary {
                "binary frame on a JSON connection"
            } else {
                "text frame on a protobuf connection"
            };
            return Read::Fatal(self.encode(&malformed(message.into())));
        }
        match codec.decode_client(bytes) {
            Ok(frame) => Read::Frame(Box::new(frame)),
            Err(DecodeError::Invalid { id, message }) => {
                Read::Invalid(self.encode(&ServerFrame::error(id, ErrorCode::BadRequest, message)))
            }
            Err(DecodeError::Malformed(message)) => Read::Fatal(self.encode(&malformed(message))),
        }
    }

    /// Writes frames with one flush, within `limits.write_timeout_ms`.
    /// False if the socket failed or stalled.
    pub async fn write(&mut self, frames: &[Bytes]) -> bool {
        if frames.is_empty() {
            return true;
        }
        let binary = is_binary(self.codec());
        let transport = &mut self.transport;
        let write = async {
            for f in frames {
                if !transport.feed(f.clone(), binary).await {
                    return false;
                }
            }
            transport.flush().await
        };
        matches!(timeout(self.times.write(), write).await, Ok(true))
    }

    /// Ends the connection with `code` (`told`: an error frame carrying it
    /// was just written).
    pub async fn close(&mut self, code: CloseCode, told: bool) {
        let give_up = self.times.close();
        let _ = timeout(give_up, self.transport.close(code, told)).await;
    }

    /// Ends the connection after a read that was not a frame.
    pub async fn end(&mut self, read: Read) {
        match read {
            Read::Fatal(reply) => {
                self.write(&[reply]).await;
                self.close(CloseCode::Malformed, true).await;
            }
            Read::TooLarge => self.close(CloseCode::TooLarge, false).await,
            // The WebSocket layer queued its own Close (1002, or 1007 for
            // invalid UTF-8); closing flushes it.
            Read::Broken => self.close(CloseCode::Malformed, false).await,
            Read::PeerClosed => {
                let give_up = self.times.close();
                let _ = timeout(give_up, self.transport.answer_close()).await;
            }
            Read::Gone | Read::Frame(_) | Read::Invalid(_) => {}
        }
    }
}

/// Whether a codec's frames travel as binary (protobuf) or text (JSON).
pub fn is_binary(codec: Codec) -> bool {
    codec.is_binary()
}

/// The `error` frame before a 4000 close.
fn malformed(message: String) -> ServerFrame {
    ServerFrame::Error {
        id: None,
        code: ErrorCode::BadRequest,
        message,
        retry_after_ms: None,
        close: Some(CloseCode::Malformed.code()),
    }
}
