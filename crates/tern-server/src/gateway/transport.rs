//! The framed-transport seam: what the session loop needs from a door
//! (WebSocket, raw TCP, or in-memory channels in tests). Data frames in and
//! out as bytes in the connection's codec; pings answered inside; a close
//! with a code that each door carries its own way (a WebSocket Close frame,
//! or a final `error` frame on TCP).

use std::future::Future;

use bytes::Bytes;
use tern_proto::CloseCode;

/// What arrives from the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// One frame's bytes. `binary` tells a WebSocket binary message from a
    /// text one (protobuf vs JSON); TCP frames are always binary.
    Data { bytes: Bytes, binary: bool },
    /// The peer started the closing handshake.
    Closed,
}

/// Why reading failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecvError {
    /// A frame longer than `limits.max_frame_bytes` (close 1009).
    TooLarge { len: usize, max: usize },
    /// The door's own framing was violated (close 4000 where the door has
    /// a way to say it).
    Protocol(String),
    /// The socket failed.
    Io(String),
}

/// A connection's door. Implementations buffer writes until `flush`.
pub trait Transport: Send {
    /// The next frame from the peer; `None` when the peer went away without
    /// closing.
    fn recv(&mut self) -> impl Future<Output = Option<Result<Incoming, RecvError>>> + Send;

    /// Queues one encoded frame (binary or text as the door and codec need).
    fn feed(&mut self, frame: Bytes, binary: bool) -> impl Future<Output = bool> + Send;

    /// Writes what is queued. False if the socket failed.
    fn flush(&mut self) -> impl Future<Output = bool> + Send;

    /// Ends the connection with `code`. `told` says whether the last frame
    /// written was already an `error` frame carrying this close code; a
    /// door that carries codes in frames (TCP) writes one otherwise.
    fn close(&mut self, code: CloseCode, told: bool) -> impl Future<Output = ()> + Send;

    /// The peer closed: finish the handshake (answer its Close) and end.
    fn answer_close(&mut self) -> impl Future<Output = ()> + Send;

    /// The metric label of this door (`ws`, `tcp`, …).
    fn kind(&self) -> &'static str;
}

/// The error frame that tells a TCP client why the connection closes: the
/// error code that fits each close code.
pub fn close_error_code(code: CloseCode) -> tern_proto::ErrorCode {
    use tern_proto::ErrorCode as E;
    match code {
        CloseCode::Normal | CloseCode::GoingAway => E::Unavailable,
        CloseCode::TooLarge => E::TooLarge,
        CloseCode::BadToken | CloseCode::AuthTimeout => E::Unauthorized,
        CloseCode::RateAbuse => E::RateLimited,
        CloseCode::Kicked => E::Forbidden,
        CloseCode::SlowConsumer => E::Unavailable,
        CloseCode::Malformed | CloseCode::IdleTimeout => E::BadRequest,
    }
}
