//! The raw TCP door (PROTOCOL.md §4): the client sends the 4 bytes `TRN1`,
//! then both sides exchange frames, each a 4-byte big-endian length and that
//! many bytes of protobuf. A wrong preface closes the socket at once, without
//! a frame; every other close is told in a final `error` frame carrying the
//! close code. Idle connections hold no buffer: a frame's bytes are
//! allocated when its length has arrived, exactly that long.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tern_proto::{CloseCode, ServerFrame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::conn::{self, Codec, ConnParams, Timeouts};
use super::transport::{close_error_code, Incoming, RecvError, Transport};
use crate::listener::SocketCaps;
use crate::state::AppState;

/// The preface a TCP client sends first.
pub const PREFACE: &[u8; 4] = b"TRN1";

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
        let task_state = state.clone();
        let tls = tls.clone();
        state.lifecycle.connections.spawn(async move {
            let _permit = permit;
            match tls {
                None => Box::pin(connection(task_state, stream, peer)).await,
                Some(acceptor) => {
                    let limits = task_state.hub.config().limits.clone();
                    let limit = Duration::from_millis(limits.auth_timeout_ms);
                    match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => Box::pin(connection(task_state, tls, peer)).await,
                        _ => tracing::debug!(%peer, "tcp: TLS handshake failed or timed out"),
                    }
                }
            }
        });
    }
}

/// One TCP connection: the preface, then the session.
async fn connection<S: Stream>(state: AppState, mut stream: S, peer: SocketAddr) {
    let config = state.hub.config();
    let limit = Duration::from_millis(config.limits.auth_timeout_ms);
    let mut preface = [0u8; 4];
    match tokio::time::timeout(limit, stream.read_exact(&mut preface)).await {
        Ok(Ok(_)) if &preface == PREFACE => {}
        // Not tern (or too slow to say so): no frame, just close.
        _ => {
            tracing::debug!(%peer, "tcp: bad or missing preface");
            return;
        }
    }
    let transport = TcpTransport::new(stream, config.limits.max_frame_bytes, Timeouts::of(&state));
    let params = ConnParams {
        peer,
        token: None,
        codec: Some(Codec::Proto),
    };
    conn::serve(state, transport, params).await;
}

/// What a TCP connection runs on: a socket, or TLS over one.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for S {}

/// A TCP connection as a [`Transport`]: length-prefixed frames.
pub struct TcpTransport<S> {
    stream: S,
    /// The length prefix being read, and how much of it has arrived.
    head: [u8; 4],
    head_read: u8,
    /// The body being read (capacity = its length); empty while idle.
    body: Vec<u8>,
    max_frame: u32,
    /// Frames queued by `feed`, written by `flush`.
    out: Vec<Bytes>,
    times: Timeouts,
}

impl<S: Stream> TcpTransport<S> {
    pub fn new(stream: S, max_frame: usize, times: Timeouts) -> Self {
        Self {
            stream,
            head: [0; 4],
            head_read: 0,
            body: Vec::new(),
            max_frame: u32::try_from(max_frame).unwrap_or(u32::MAX),
            out: Vec::new(),
            times,
        }
    }

    /// Reads what is available of the current frame. Cancel-safe: progress
    /// lives in `self`, so a `select!` that drops the future loses nothing.
    async fn read_some(&mut self) -> Result<Option<Bytes>, RecvError> {
        let io = |e: std::io::Error| RecvError::Io(e.to_string());
        if self.head_read < 4 {
            let n = self
                .stream
                .read(&mut self.head[usize::from(self.head_read)..])
                .await
                .map_err(io)?;
            if n == 0 {
                return Err(RecvError::Io("end of stream".into()));
            }
            self.head_read += n as u8;
            if self.head_read < 4 {
                return Ok(None);
            }
            let len = u32::from_be_bytes(self.head);
            if len > self.max_frame {
                return Err(RecvError::TooLarge {
                    len: len as usize,
                    max: self.max_frame as usize,
                });
            }
            self.body = Vec::with_capacity(len as usize);
        }
        let want = self.body.capacity() - self.body.len();
        if want > 0 {
            let n = (&mut self.stream)
                .take(want as u64)
                .read_buf(&mut self.body)
                .await
                .map_err(io)?;
            if n == 0 {
                return Err(RecvError::Io("end of stream inside a frame".into()));
            }
        }
        if self.body.len() < self.body.capacity() {
            return Ok(None);
        }
        self.head_read = 0;
        Ok(Some(Bytes::from(std::mem::take(&mut self.body))))
    }
}

impl<S: Stream> Transport for TcpTransport<S> {
    async fn recv(&mut self) -> Option<Result<Incoming, RecvError>> {
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
                Err(RecvError::Io(_)) if self.head_read == 0 => return None,
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
        let total: usize = self.out.iter().map(|f| f.len() + 4).sum();
        let mut buf = BytesMut::with_capacity(total);
        for frame in self.out.drain(..) {
            buf.put_u32(u32::try_from(frame.len()).unwrap_or(u32::MAX));
            buf.put_slice(&frame);
        }
        if self.out.capacity() > 64 {
            self.out.shrink_to(8);
        }
        self.stream.write_all(&buf).await.is_ok()
    }

    async fn close(&mut self, code: CloseCode, told: bool) {
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
