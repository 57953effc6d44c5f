//! The raw TCP door (PROTOCOL.md §4): `TRN1`, then frames of a 4-byte
//! big-endian length and that many bytes of protobuf, cut by
//! [`FrameReader`] (the server's reader too). No buffer is held between
//! frames: a frame's bytes are allocated once its length has arrived. The
//! server tells a close code in a final `error` frame (`close` field); it
//! is reported as [`Incoming::Close`] when the socket ends, as a WebSocket
//! close frame would be.

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tern_proto::framing::{self, FrameReader, Space, PREFACE};
use tern_proto::{ClientFrame, Codec, ServerFrame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::net::{dial, NetStream};
use super::{Incoming, Transport};
use crate::config::ClientConfig;
use crate::endpoint::Endpoint;
use crate::error::Result;

/// A TCP door connection.
pub(crate) struct TcpTransport {
    stream: NetStream,
    frames: FrameReader,
    /// The close code of the server's final `error` frame, until the end.
    close: Option<(u16, String)>,
    ended: bool,
}

impl TcpTransport {
    /// Dials and sends the preface.
    pub async fn open(cfg: &ClientConfig, endpoint: &Endpoint) -> Result<Self> {
        let mut stream = dial(endpoint, &cfg.tls_roots).await?;
        stream.write_all(PREFACE).await?;
        Ok(Self {
            stream,
            frames: FrameReader::new(cfg.max_frame_bytes),
            close: None,
            ended: false,
        })
    }

    /// Reads what is available of the current frame; the frame once whole.
    /// Cancel-safe: progress lives in `self.frames`.
    async fn read_some(&mut self) -> io::Result<Option<Bytes>> {
        let too_large = |e: framing::TooLarge| io::Error::new(io::ErrorKind::InvalidData, e);
        match self.frames.space().map_err(too_large)? {
            Space::Head(head) => {
                let n = self.stream.read(head).await?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                self.frames.filled_head(n).map_err(too_large)
            }
            Space::Body { buf, want } => {
                let n = (&mut self.stream).take(want as u64).read_buf(buf).await?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                Ok(self.frames.filled_body())
            }
        }
    }

    /// The end of the stream: the close code told before it, if any.
    fn end(&mut self, error: io::Error) -> Option<Result<Incoming>> {
        self.ended = true;
        if let Some((code, reason)) = self.close.take() {
            return Some(Ok(Incoming::Close { code, reason }));
        }
        let clean = error.kind() == io::ErrorKind::UnexpectedEof && self.frames.is_between_frames();
        if clean {
            None
        } else {
            Some(Err(error.into()))
        }
    }
}

impl Transport for TcpTransport {
    async fn send(&mut self, frame: &ClientFrame) -> Result<()> {
        let bytes = Codec::Proto.encode_client(frame);
        let mut buf = BytesMut::with_capacity(framing::LEN_BYTES + bytes.len());
        framing::put_frame(&mut buf, &bytes);
        self.stream.write_all(&buf).await?;
        // TLS buffers writes until flushed.
        Ok(self.stream.flush().await?)
    }

    async fn recv(&mut self) -> Option<Result<Incoming>> {
        if self.ended {
            return None;
        }
        loop {
            match self.read_some().await {
                Ok(Some(bytes)) => {
                    let frame = Codec::Proto.decode_server(&bytes);
                    if let Ok(ServerFrame::Error {
                        close: Some(code),
                        message,
                        ..
                    }) = &frame
                    {
                        self.close = Some((*code, message.clone()));
                    }
                    return Some(Ok(Incoming::Frame(frame)));
                }
                Ok(None) => continue,
                Err(e) => return self.end(e),
            }
        }
    }

    async fn ping(&mut self) -> Result<()> {
        self.send(&ClientFrame::Ping { id: None }).await
    }

    /// There is no close frame on the TCP door: the client shuts its side
    /// down and waits for the server to do the same.
    async fn close(&mut self, _reason: &str) {
        let drain = async {
            if self.stream.shutdown().await.is_ok() {
                let mut sink = [0u8; 512];
                while matches!(self.stream.read(&mut sink).await, Ok(n) if n > 0) {}
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
        self.ended = true;
    }
}
