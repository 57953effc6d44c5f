//! Connections to the server: the one place that opens a connection per
//! transport ([`Target::connect`], giving a [`Conn`]), and a minimal HTTP
//! client (group set-up, admin stats). Frames are encoded and decoded by the
//! connection's [`Codec`]. A TCP door connection is lean on purpose (the
//! idle scenario holds 15,000 per process): a socket and a frame reader
//! that holds no buffer between frames.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{anyhow, Context};
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tern_client::tern_proto::framing::{self, FrameReader, Space, PREFACE};
use tern_client::tern_proto::{self, ServerFrame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_websockets::{ClientBuilder, Message, WebSocketStream};

use crate::cli::{Common, Transport};
use crate::codec::{Codec, Encoded, Out, Payload};

/// A WebSocket over TCP (the `ws-*` transports).
pub type Ws = WebSocketStream<TcpStream>;

/// Where to connect, resolved once.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub addr: SocketAddr,
    /// The server's TCP door (`--transport tcp` only).
    pub door: Option<SocketAddr>,
    pub source: Option<IpAddr>,
    pub secret: String,
    pub transport: Transport,
    pub codec: Codec,
}

impl Target {
    /// Resolves the first server address (see [`crate::hosts::Hosts`] for
    /// all of them); fails at once for a transport that is not implemented.
    pub async fn resolve(common: &Common) -> anyhow::Result<Self> {
        let hosts = common.host_list();
        let host = hosts.first().ok_or_else(|| anyhow!("no --host given"))?;
        Self::resolve_host(common, 0, host).await
    }

    /// Resolves the server address `host`, the `index`-th --host (and its
    /// TCP door with `--transport tcp`: see [`Common::tcp_host`]).
    pub async fn resolve_host(common: &Common, index: usize, host: &str) -> anyhow::Result<Self> {
        let codec = Codec::of(common.transport)?;
        let addr = lookup(host).await?;
        let door = match common.transport {
            Transport::Tcp => Some(lookup(&common.tcp_host(index, host)).await?),
            Transport::WsJson | Transport::WsProto => None,
        };
        let source = common.source_ip.map(IpAddr::V4).or_else(|| {
            common
                .worker_index
                .filter(|_| addr.ip().is_loopback() && common.procs > 1)
                .map(|i| IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, (i % 254 + 1) as u8)))
        });
        Ok(Self {
            host: host.to_owned(),
            addr,
            door,
            source,
            secret: common.jwt_secret.clone(),
            transport: common.transport,
            codec,
        })
    }

    /// A TCP stream to the server's HTTP listener, from the source address
    /// if any.
    pub async fn tcp(&self) -> anyhow::Result<TcpStream> {
        self.tcp_to(self.addr).await
    }

    /// A TCP stream to `addr`, from the source address if any.
    async fn tcp_to(&self, addr: SocketAddr) -> anyhow::Result<TcpStream> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(src) = self.source {
            socket.bind(SocketAddr::new(src, 0))?;
        }
        let stream = socket.connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// Connects `user` with a minted token and waits for its `auth_ok`:
    /// the one place that opens a connection, per transport. WebSocket
    /// connections carry the token in the URL; TCP ones send an `auth`
    /// frame right after the preface.
    pub async fn connect(&self, user: &str) -> anyhow::Result<Conn> {
        let token = crate::token::mint(&self.secret, user)?;
        let link = match self.transport {
            Transport::WsJson | Transport::WsProto => {
                let stream = self.tcp().await?;
                let uri = format!(
                    "ws://{}/ws?token={token}&codec={}",
                    self.host,
                    self.codec.query()
                );
                let (ws, _) = ClientBuilder::new().uri(&uri)?.connect_on(stream).await?;
                Link::Ws(Box::new(ws))
            }
            Transport::Tcp => {
                let door = self.door.ok_or_else(|| anyhow!("no TCP door resolved"))?;
                let mut stream = self.tcp_to(door).await?;
                let auth = self.codec.encode(&Out::Auth {
                    id: 0,
                    token: &token,
                });
                let mut hello = BytesMut::from(&PREFACE[..]);
                framing::put_frame(&mut hello, encoded_bytes(&auth));
                stream.write_all(&hello).await?;
                Link::Tcp(TcpConn {
                    stream,
                    frames: FrameReader::new(MAX_FRAME_BYTES),
                    last: None,
                })
            }
        };
        let mut conn = Conn {
            link,
            codec: self.codec,
        };
        let answer = match conn.recv().await {
            Incoming::Frame(p) => match conn.codec.decode(&p) {
                Some(f) if f.kind == "auth_ok" => Ok(()),
                _ => Err(anyhow!("expected auth_ok, got {}", p.preview())),
            },
            Incoming::Gone(why) => Err(anyhow!("before auth_ok: {why}")),
        };
        if let Link::Tcp(t) = &mut conn.link {
            // An idle connection keeps no frame.
            t.last = None;
        }
        answer.map(|()| conn)
    }

    /// The URL of this host for `tern-client`, in the run's transport.
    pub fn client_url(&self) -> String {
        match (self.transport, self.door) {
            (Transport::Tcp, Some(door)) => format!("tcp://{door}"),
            _ => format!("ws://{}/ws?codec={}", self.host, self.codec.query()),
        }
    }

    /// `connect` within `limit`.
    pub async fn connect_within(&self, user: &str, limit: Duration) -> anyhow::Result<Conn> {
        tokio::time::timeout(limit, self.connect(user))
            .await
            .map_err(|_| anyhow!("connect timed out"))?
    }

    /// One HTTP/1.1 request as `user`; returns (status, JSON body).
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        user: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let token = crate::token::mint(&self.secret, user)?;
        self.http_with(method, path, &token, body).await
    }

    /// One HTTP/1.1 request with a bearer `token`; returns (status, JSON body).
    pub async fn http_with(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        let mut s = self.tcp().await?;
        s.write_all(req.as_bytes()).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        let out = String::from_utf8_lossy(&out);
        let (head, rest) = out
            .split_once("\r\n\r\n")
            .ok_or_else(|| anyhow!("malformed HTTP response"))?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("no HTTP status"))?;
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        let json = if chunked {
            dechunk(rest)
        } else {
            rest.to_owned()
        };
        let value = serde_json::from_str(&json).unwrap_or(serde_json::Value::Null);
        Ok((status, value))
    }

    /// `POST /api/v1/groups` as `owner` with `members` (at most 64 KiB of
    /// body: see [`name_chunks`]); returns the group id. A refusal is an
    /// [`HttpError`] (404: a member does not exist).
    pub async fn create_group(&self, owner: &str, members: &[String]) -> anyhow::Result<String> {
        let body = serde_json::json!({"name": "bench", "members": members});
        let v = self.http_ok("POST", "/api/v1/groups", owner, &body).await?;
        v["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no group id in {}", truncate(&v.to_string())))
    }

    /// `POST /api/v1/groups/{id}/members` as `owner`.
    pub async fn add_members(&self, owner: &str, id: &str, users: &[String]) -> anyhow::Result<()> {
        let body = serde_json::json!({ "users": users });
        let path = format!("/api/v1/groups/{id}/members");
        self.http_ok("POST", &path, owner, &body).await.map(drop)
    }

    async fn http_ok(
        &self,
        method: &str,
        path: &str,
        user: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let (status, v) = self.http(method, path, user, Some(body)).await?;
        if (200..300).contains(&status) {
            Ok(v)
        } else {
            Err(HttpError {
                status,
                body: truncate(&v.to_string()),
            }
            .into())
        }
    }
}

/// An HTTP answer that is not 2xx.
#[derive(Debug)]
pub struct HttpError {
    pub status: u16,
    pub body: String,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.body)
    }
}

impl std::error::Error for HttpError {}

/// Largest JSON body the server takes on its API (64 KiB), with room for
/// the rest of the object.
pub const MAX_NAMES_BODY: usize = 60_000;

/// `names` cut into runs whose JSON array fits in `max_bytes`; at least one
/// (possibly empty) run.
pub fn name_chunks(names: &[String], max_bytes: usize) -> Vec<&[String]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 2);
    for (i, n) in names.iter().enumerate() {
        // Quotes, comma, and escapes (user names have none; count them anyway).
        let len = serde_json::to_string(n).map_or(n.len() + 2, |s| s.len()) + 1;
        if i > start && bytes + len > max_bytes {
            out.push(&names[start..i]);
            (start, bytes) = (i, 2);
        }
        bytes += len;
    }
    out.push(&names[start..]);
    out
}

/// Largest frame the bench reads from the TCP door (the server's own
/// frames are far smaller; a WebSocket message is bounded by
/// tokio-websockets' default of 64 MiB).
pub const MAX_FRAME_BYTES: usize = 16 << 20;

/// One connection of a benchmark: a transport and a codec.
pub struct Conn {
    link: Link,
    codec: Codec,
}

/// What carries a connection's frames.
enum Link {
    /// Boxed: a TCP door connection is much smaller, and the idle
    /// scenario holds thousands of either.
    Ws(Box<Ws>),
    Tcp(TcpConn),
}

/// A TCP door connection: length-prefixed frames cut by [`FrameReader`],
/// which allocates a frame's bytes once its length has arrived.
struct TcpConn {
    stream: TcpStream,
    frames: FrameReader,
    /// The last frame read (only while it may be the server's final `error`
    /// frame carrying a close code; dropped once a connection is open).
    last: Option<Bytes>,
}

impl TcpConn {
    async fn send(&mut self, frame: &[u8]) -> std::io::Result<()> {
        let mut buf = BytesMut::with_capacity(framing::LEN_BYTES + frame.len());
        framing::put_frame(&mut buf, frame);
        self.stream.write_all(&buf).await
    }

    /// The next frame's bytes. Cancel-safe: progress lives in `frames`.
    async fn recv(&mut self) -> Result<Bytes, String> {
        loop {
            let space = self
                .frames
                .space()
                .map_err(|e| format!("from the server: {e}"))?;
            let (n, frame) = match space {
                Space::Head(head) => {
                    let n = self.stream.read(head).await;
                    let n = n.map_err(|e| format!("connection failed: {e}"))?;
                    let frame = self.frames.filled_head(n);
                    (n, frame.map_err(|e| format!("from the server: {e}"))?)
                }
                Space::Body { buf, want } => {
                    let read = (&mut self.stream).take(want as u64).read_buf(buf).await;
                    let n = read.map_err(|e| format!("connection failed: {e}"))?;
                    (n, self.frames.filled_body())
                }
            };
            if n == 0 {
                return Err(self.ended());
            }
            if let Some(frame) = frame {
                // Error frames are small; a long frame is never the last word.
                self.last = (frame.len() <= 1024).then(|| frame.clone());
                return Ok(frame);
            }
        }
    }

    /// Why the stream ended: the close code of the server's final `error`
    /// frame, as a WebSocket close would say it.
    fn ended(&mut self) -> String {
        let last = self.last.take();
        let told = last.and_then(|b| tern_proto::Codec::Proto.decode_server(&b).ok());
        match told {
            Some(ServerFrame::Error {
                close: Some(code),
                message,
                ..
            }) => format!("closed by the server ({code} {})", truncate(&message)),
            _ => "connection ended".into(),
        }
    }
}

/// The bytes of an encoded frame, whatever the codec.
fn encoded_bytes(e: &Encoded) -> &[u8] {
    match e {
        Encoded::Text(t) => t.as_bytes(),
        Encoded::Binary(b) => b,
    }
}

async fn lookup(host: &str) -> anyhow::Result<SocketAddr> {
    tokio::net::lookup_host(host)
        .await
        .with_context(|| format!("resolving {host}"))?
        .next()
        .ok_or_else(|| anyhow!("{host} resolves to nothing"))
}

/// What [`Conn::recv`] gives.
#[derive(Debug)]
pub enum Incoming {
    /// A frame, to decode with [`Conn::codec`].
    Frame(Payload),
    /// The connection is over: closed by the server (with its code), ended,
    /// or failed.
    Gone(String),
}

impl Conn {
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Encodes and writes one frame.
    pub async fn send(&mut self, out: &Out<'_>) -> anyhow::Result<()> {
        let encoded = self.codec.encode(out);
        match &mut self.link {
            Link::Ws(ws) => {
                let msg = match encoded {
                    Encoded::Text(t) => Message::text(t),
                    Encoded::Binary(b) => Message::binary(b),
                };
                Ok(ws.send(msg).await?)
            }
            Link::Tcp(t) => Ok(t.send(encoded_bytes(&encoded)).await?),
        }
    }

    /// The next frame (control frames are skipped). Cancel-safe.
    pub async fn recv(&mut self) -> Incoming {
        let ws = match &mut self.link {
            Link::Ws(ws) => ws,
            Link::Tcp(t) => {
                return match t.recv().await {
                    Ok(b) => Incoming::Frame(Payload::Tcp(b)),
                    Err(why) => Incoming::Gone(why),
                }
            }
        };
        loop {
            match ws.next().await {
                Some(Ok(m)) if m.is_text() || m.is_binary() => {
                    return Incoming::Frame(Payload::Ws(m))
                }
                Some(Ok(m)) => {
                    if let Some((code, reason)) = m.as_close() {
                        return Incoming::Gone(format!(
                            "closed by the server ({} {})",
                            u16::from(code),
                            truncate(reason)
                        ));
                    }
                }
                Some(Err(e)) => return Incoming::Gone(format!("connection failed: {e}")),
                None => return Incoming::Gone("connection ended".into()),
            }
        }
    }

    /// Closes politely: sends a close frame (shuts a TCP connection's
    /// writing side down) and waits (at most `within`) for the server's.
    pub async fn close(&mut self, within: Duration) {
        let _ = tokio::time::timeout(within, async {
            match &mut self.link {
                Link::Ws(ws) => {
                    if ws.send(Message::close(None, "")).await.is_ok() {
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                }
                Link::Tcp(t) => {
                    if t.stream.shutdown().await.is_ok() {
                        let mut sink = [0u8; 512];
                        while matches!(t.stream.read(&mut sink).await, Ok(n) if n > 0) {}
                    }
                }
            }
        })
        .await;
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(len.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(rest.get(..n).unwrap_or_default());
        s = rest.get(n..).unwrap_or_default().trim_start_matches("\r\n");
    }
    out
}

/// At most 200 characters of `s`, for error messages.
pub fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

/// A message body: the send timestamp, padded to `bytes`.
pub fn body(bytes: usize) -> String {
    let mut b = crate::token::now_us().to_string();
    if b.len() < bytes {
        b.push(' ');
        b.extend(std::iter::repeat_n('x', bytes - b.len()));
    }
    b
}
