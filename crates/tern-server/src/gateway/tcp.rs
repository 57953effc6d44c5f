//! The raw TCP door (PROTOCOL.md §4): the client sends the 4 bytes `TRN1`,
//! then both sides exchange frames, each a 4-byte big-endian length and that
//! many bytes of protobuf. A wrong preface closes the socket at once, without
//! a frame; every other close is told in a final `error` frame carrying the
//! close code. Idle connections hold no buffer: a frame's bytes are
//! allocated when its length has arrived, exactly that long.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tern_proto::framing::{self, FrameReader, Space, TooLarge};
use tern_proto::{CloseCode, ServerFrame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::conn::{self, Codec, ConnParams, Timeouts};
use super::transport::{close_error_code, Incoming, RecvError, Transport};
use crate::listener::{SocketCaps, SocketPermit};
use crate::state::AppState;

/// The preface a TCP client sends first.
pub use tern_proto::framing::PREFACE;

/// Accepts TCP clients until `stop`; each connection runs as a tracked
/// connection task, so the drain waits for it.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    caps: SocketCaps,
    tls: Option<TlsAcceptor>,
    stop: CancellationToken,
) {
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if state.lifecycle.is_draining() {
            continue;
        }
        // Over a cap: closed at once, before the preface (there is no
        // frame format yet to say why in).
        let Ok(permit) = caps.admit(peer) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        // Two task shapes: a plain connection's task is never sized for a
        // TLS handshake it does not do.
        let connections = &state.lifecycle.connections;
        match &tls {
            None => connections.spawn(connection(state.clone(), stream, peer, permit)),
            Some(acceptor) => connections.spawn(secured(
                state.clone(),
                acceptor.clone(),
                stream,
                peer,
                permit,
            )),
        };
    }
}

/// A TLS connection: the handshake (bounded by `limits.auth_timeout_ms`),
/// then the connection itself. Both are boxed: the task keeps neither the
/// handshake's state (~2.6 KiB, in the task for the connection's whole
/// life when it was inline) nor a copy of the session's.
async fn secured(
    state: AppState,
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    permit: SocketPermit,
) {
    let limit = Duration::from_millis(state.hub.config().limits.auth_timeout_ms);
    let handshake = Box::pin(acceptor.accept(stream));
    match tokio::time::timeout(limit, handshake).await {
        Ok(Ok(tls)) => Box::pin(connection(state, tls, peer, permit)).await,
        _ => tracing::debug!(%peer, "tcp: TLS handshake failed or timed out"),
    }
}

/// One TCP connection: the session over a [`TcpTransport`], which reads
/// the preface before the first frame. No wrapping future of its own: every
/// idle TCP connection holds exactly the session's future, and the values
/// used only to set it up (the stream before it became the transport, the
/// peer address) are not kept beside it.
fn connection<S: Stream>(
    state: AppState,
    stream: S,
    peer: SocketAddr,
    permit: SocketPermit,
) -> impl std::future::Future<Output = ()> + Send {
    let max_frame = state.hub.config().limits.max_frame_bytes;
    let transport = TcpTransport::new(stream, max_frame, Timeouts::of(&state), permit);
    let params = ConnParams {
        peer,
        token: None,
        codec: Some(Codec::Proto),
    };
    conn::serve(state, transport, params)
}

/// What a TCP connection runs on: a socket, or TLS over one.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for S {}

/// A TCP connection as a [`Transport`]: length-prefixed frames, cut by
/// [`FrameReader`] (shared with the fuzz targets, so what is fuzzed is what
/// runs).
pub struct TcpTransport<S> {
    stream: S,
    /// How much of the `TRN1` preface has arrived (4: all of it, checked).
    prefaced: u8,
    /// The frame being read.
    frames: FrameReader,
    /// Frames queued by `feed`, written by `flush` (and then freed: an idle
    /// connection keeps no write buffer).
    out: Vec<Bytes>,
    times: Timeouts,
    /// The connection's place under the socket caps, released with it.
    _permit: SocketPermit,
}

impl<S: Stream> TcpTransport<S> {
    /// `permit` is the connection's place under the socket caps.
    pub fn new(stream: S, max_frame: usize, times: Timeouts, permit: SocketPermit) -> Self {
        Self {
            stream,
            prefaced: 0,
            frames: FrameReader::new(max_frame),
            out: Vec::new(),
            times,
            _permit: permit,
        }
    }

    /// Reads the preface. A wrong one ends the connection at once, without
    /// a frame: the peer is not a tern client and would not understand one.
    async fn read_preface(&mut self) -> Result<(), RecvError> {
        let mut got = [0u8; 4];
        got[..usize::from(self.prefaced)].copy_from_slice(&PREFACE[..usize::from(self.prefaced)]);
        while usize::from(self.prefaced) < PREFACE.len() {
            let at = usize::from(self.prefaced);
            let n = self
                .stream
                .read(&mut got[at..])
                .await
                .map_err(|e| RecvError::Io(e.to_string()))?;
            if n == 0 {
                return Err(RecvError::Io("end of stream before the preface".into()));
            }
            if got[at..at + n] != PREFACE[at..at + n] {
                return Err(RecvError::Io("wrong preface".into()));
            }
            // At most 4 - at <= 4 bytes were read: fits in u8.
            self.prefaced += n as u8;
        }
        Ok(())
    }

    /// Reads what is available of the current frame. Cancel-safe: progress
    /// lives in `self`, so a `select!` that drops the future loses nothing.
    async fn read_some(&mut self) -> Result<Option<Bytes>, RecvError> {
        let io = |e: std::io::Error| RecvError::Io(e.to_string());
        let too_large = |e: TooLarge| RecvError::TooLarge {
            len: e.len as usize,
            max: e.max as usize,
        };
        match self.frames.space().map_err(too_large)? {
            Space::Head(head) => {
                let n = self.stream.read(head).await.map_err(io)?;
                if n == 0 {
                    return Err(RecvError::Io("end of stream".into()));
                }
                self.frames.filled_head(n).map_err(too_large)
            }
            Space::Body { buf, want } => {
                let n = (&mut self.stream)
                    .take(want as u64)
                    .read_buf(buf)
                    .await
                    .map_err(io)?;
                if n == 0 {
                    return Err(RecvError::Io("end of stream inside a frame".into()));
                }
                Ok(self.frames.filled_body())
            }
        }
    }
}

impl<S: Stream> Transport for TcpTransport<S> {
    async fn recv(&mut self) -> Option<Result<Incoming, RecvError>> {
        if usize::from(self.prefaced) < PREFACE.len() {
            if let Err(e) = self.read_preface().await {
                tracing::debug!(error = ?e, "tcp: bad or missing preface");
                return None;
            }
        }
        loop {
            match self.read_some().await {
                Ok(Some(bytes)) => {
                    return Some(Ok(Incoming::Data {
                        bytes,
                        binary: true,
                    }))
                }
                Ok(None) => continue,
                // A clean end between frames is the peer leaving.
                Err(RecvError::Io(_)) if self.frames.is_between_frames() => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    async fn feed(&mut self, frame: Bytes, _binary: bool) -> bool {
        self.out.push(frame);
        true
    }

    async fn flush(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        let frames = std::mem::take(&mut self.out);
        let total: usize = frames.iter().map(|f| f.len() + 4).sum();
        let mut buf = BytesMut::with_capacity(total);
        for frame in &frames {
            framing::put_frame(&mut buf, frame);
        }
        drop(frames);
        self.stream.write_all(&buf).await.is_ok()
    }

    async fn close(&mut self, code: CloseCode, told: bool) {
        // Before a whole preface there is no frame format to say why in.
        if usize::from(self.prefaced) < PREFACE.len() {
            let _ = self.stream.shutdown().await;
            return;
        }
        if !told {
            let frame = ServerFrame::Error {
                id: None,
                code: close_error_code(code),
                message: code.reason().into(),
                retry_after_ms: None,
                close: Some(code.code()),
            };
            self.out.push(Codec::Proto.encode_server(&frame));
        }
        let limit = self.times.close();
        let _ = tokio::time::timeout(limit, async {
            if self.flush().await {
                let _ = self.stream.shutdown().await;
            }
        })
        .await;
    }

    async fn answer_close(&mut self) {
        let _ = self.stream.shutdown().await;
    }

    fn kind(&self) -> &'static str {
        "tcp"
    }
}

/// Binds the TCP door unless `tcp_addr` is `off`.
pub async fn bind(addr: &str, backlog: u32) -> std::io::Result<Option<TcpListener>> {
    if addr == "off" {
        return Ok(None);
    }
    crate::app::listen(addr, backlog).await.map(Some)
}
