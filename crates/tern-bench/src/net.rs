//! Raw WebSocket connections (tokio-websockets over a `TcpStream`, bound to
//! a source address when one is given) and a minimal HTTP client.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_websockets::{ClientBuilder, WebSocketStream};

use crate::cli::{Common, Transport};

/// A benchmark connection.
pub type Ws = WebSocketStream<TcpStream>;

/// Where to connect, resolved once.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub addr: SocketAddr,
    pub source: Option<IpAddr>,
    pub secret: String,
}

impl Target {
    pub async fn resolve(common: &Common) -> anyhow::Result<Self> {
        if common.transport != Transport::WsJson {
            bail!(
                "transport {:?} is not implemented yet (only ws-json)",
                common.transport
            );
        }
        let addr = tokio::net::lookup_host(&common.host)
            .await
            .with_context(|| format!("resolving {}", common.host))?
            .next()
            .ok_or_else(|| anyhow!("{} resolves to nothing", common.host))?;
        let source = common.source_ip.map(IpAddr::V4).or_else(|| {
            common
                .worker_index
                .filter(|_| addr.ip().is_loopback() && common.procs > 1)
                .map(|i| IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, (i % 254 + 1) as u8)))
        });
        Ok(Self {
            host: common.host.clone(),
            addr,
            source,
            secret: common.jwt_secret.clone(),
        })
    }

    /// A TCP stream to the server, from the source address if any.
    pub async fn tcp(&self) -> anyhow::Result<TcpStream> {
        let socket = if self.addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(src) = self.source {
            socket.bind(SocketAddr::new(src, 0))?;
        }
        let stream = socket.connect(self.addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// Connects `user` with a minted `?token=` and waits for its `auth_ok`.
    pub async fn connect(&self, user: &str) -> anyhow::Result<Ws> {
        let token = crate::token::mint(&self.secret, user)?;
        let stream = self.tcp().await?;
        let uri = format!("ws://{}/ws?token={token}&codec=json", self.host);
        let (mut ws, _) = ClientBuilder::new().uri(&uri)?.connect_on(stream).await?;
        match ws.next().await {
            Some(Ok(m)) => match m.as_text() {
                Some(t) if t.contains("\"auth_ok\"") => Ok(ws),
                Some(t) => bail!("expected auth_ok, got {}", truncate(t)),
                None => bail!("expected auth_ok, got a non-text frame"),
            },
            Some(Err(e)) => Err(e.into()),
            None => bail!("closed before auth_ok"),
        }
    }

    /// `connect` within `limit`.
    pub async fn connect_within(&self, user: &str, limit: Duration) -> anyhow::Result<Ws> {
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

    /// Creates a group owned by `owner` with `members`; returns its id.
    pub async fn create_group(&self, owner: &str, members: &[String]) -> anyhow::Result<String> {
        let body = serde_json::json!({"name": "bench", "members": members});
        let (status, v) = self
            .http("POST", "/api/v1/groups", owner, Some(&body))
            .await?;
        if !(200..300).contains(&status) {
            bail!(
                "creating the group: HTTP {status}: {}",
                truncate(&v.to_string())
            );
        }
        v["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no group id in {}", truncate(&v.to_string())))
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

/// A server frame, borrowed from the text (only the fields the bench reads).
#[derive(Debug, serde::Deserialize)]
pub struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: std::borrow::Cow<'a, str>,
    pub id: Option<u64>,
    pub seq: Option<u64>,
    #[serde(borrow)]
    pub body: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    pub code: Option<std::borrow::Cow<'a, str>>,
}

impl<'a> Frame<'a> {
    pub fn parse(text: &'a str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// The send timestamp (µs) at the start of a bench message body.
    pub fn sent_us(&self) -> Option<u64> {
        let b = self.body.as_deref()?;
        let digits = b.split(|c: char| !c.is_ascii_digit()).next()?;
        digits.parse().ok()
    }
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
