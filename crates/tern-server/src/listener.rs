//! The HTTP/WebSocket listener: accepts sockets under a global cap and a
//! per-address cap (checked before any HTTP is parsed, so a flood of idle
//! sockets is refused cheaply), serves HTTP/1.1 with a header-read timeout
//! (slowloris), and keeps running through the drain so that load balancers
//! see `/readyz` turn 503 before the port closes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::gateway::{AbuseLimits, ConnectionSlot, Refused};

/// How long an HTTP request in progress may take to finish once the
/// listener stops; upgraded WebSocket sessions are drained separately.
const HTTP_FINISH: Duration = Duration::from_secs(5);
/// Time to write a refusal to a socket over a cap before dropping it.
const REFUSAL_WRITE: Duration = Duration::from_secs(1);
/// Descriptors kept free for the database, log files and the like when
/// `http.max_connections` is derived from the open-file limit.
const FD_RESERVE: u64 = 256;

/// One accepted socket's place under the caps. Shared (`Arc`) by the HTTP
/// connection and, after an upgrade, by the WebSocket session, so the
/// place is given back when the last of them ends.
pub struct SocketPermit {
    slot: Option<ConnectionSlot>,
    open: Arc<AtomicU32>,
}

impl SocketPermit {
    /// Whether the per-address count already holds this socket (false for
    /// trusted proxies, whose clients are counted per session).
    pub fn counted(&self) -> bool {
        self.slot.is_some()
    }
}

impl Drop for SocketPermit {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!(crate::metrics::HTTP_CONNECTIONS).decrement(1.0);
    }
}

/// The process-wide caps on open sockets, shared by every door (HTTP and
/// WebSocket, raw TCP): the per-address count and `http.max_connections`.
#[derive(Clone)]
pub struct SocketCaps {
    limits: Arc<AbuseLimits>,
    open: Arc<AtomicU32>,
    max: u32,
}

impl SocketCaps {
    /// `max_connections` is `http.max_connections` (0: derived from the
    /// open-file limit).
    pub fn new(limits: Arc<AbuseLimits>, max_connections: u32) -> Self {
        Self {
            limits,
            open: Arc::new(AtomicU32::new(0)),
            max: effective_max_connections(max_connections),
        }
    }

    /// A place for a socket just accepted from `peer`, or why not.
    pub(crate) fn admit(&self, peer: SocketAddr) -> Result<SocketPermit, Refusal> {
        let slot = self.limits.admit_socket(peer.ip()).map_err(|refused| {
            metrics::counter!(crate::metrics::RATE_LIMITED, "transport" => "accept").increment(1);
            Refusal::PerAddress(refused)
        })?;
        // Counted first, checked after: concurrent accepts cannot both squeeze in.
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!(crate::metrics::CONNECTIONS_SHED).increment(1);
            return Err(Refusal::Full);
        }
        metrics::gauge!(crate::metrics::HTTP_CONNECTIONS).increment(1.0);
        Ok(SocketPermit {
            slot,
            open: self.open.clone(),
        })
    }
}

/// What the accept loop needs.
pub struct ListenerParams {
    pub router: Router,
    pub caps: SocketCaps,
    pub header_read_timeout: Duration,
    /// TLS on this port, when configured.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Cancelled when the port should close.
    pub stop: CancellationToken,
}

/// Accepts and serves until `params.stop` is cancelled, then lets the HTTP
/// requests in progress finish (bounded) and returns.
pub async fn serve(listener: TcpListener, params: ListenerParams) {
    let connections = TaskTracker::new();
    let finish = CancellationToken::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(params.header_read_timeout);
    tracing::debug!(max_connections = params.caps.max, "accepting");
    loop {
        let (stream, peer) = tokio::select! {
            () = params.stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let permit = match params.caps.admit(peer) {
            Ok(permit) => Arc::new(permit),
            Err(refusal) => {
                connections.spawn(refuse(stream, refusal));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            router: params.router.clone(),
            http: http.clone(),
            peer,
            permit,
            finish: finish.clone(),
        };
        match &params.tls {
            None => connections.spawn(conn.serve(stream)),
            Some(acceptor) => {
                // Boxed: the handshake's state (kilobytes) is freed once
                // it is over instead of sizing the connection's task.
                let handshake = Box::pin(acceptor.accept(stream));
                let limit = params.header_read_timeout;
                connections.spawn(async move {
                    match tokio::time::timeout(limit, handshake).await {
                        Ok(Ok(tls)) => conn.serve(tls).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                })
            }
        };
    }
    drop(listener);
    finish.cancel();
    connections.close();
    if tokio::time::timeout(HTTP_FINISH, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("http requests still running when the listener closed");
    }
}

/// One accepted connection, ready to be served over plain TCP or TLS.
struct Conn {
    router: Router,
    http: hyper::server::conn::http1::Builder,
    peer: SocketAddr,
    permit: Arc<SocketPermit>,
    finish: CancellationToken,
}

impl Conn {
    /// Serves HTTP/1.1 (and upgrades) on `io` until the peer leaves, or
    /// until `finish`, after the request in progress.
    async fn serve<I>(self, io: I)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            router,
            http,
            peer,
            permit,
            finish,
        } = self;
        let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(permit.clone());
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
        let conn = http
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            () = finish.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "http connection ended with an error");
        }
    }
}

/// Why a socket was refused at accept time.
pub(crate) enum Refusal {
    /// The server holds `http.max_connections`: 503.
    Full,
    /// The address holds `limits.max_connections_per_ip`: 429.
    PerAddress(Refused),
}

/// Answers a refused socket with a complete HTTP response (the request is
/// never read) and closes it.
async fn refuse(mut stream: TcpStream, refusal: Refusal) {
    let (status, code, message, retry_after_ms) = match refusal {
        Refusal::Full => (
            "503 Service Unavailable",
            "unavailable",
            "server is at its connection limit",
            1_000,
        ),
        Refusal::PerAddress(r) => (
            "429 Too Many Requests",
            "rate_limited",
            r.reason,
            r.retry_after_ms,
        ),
    };
    let body = format!(
        r#"{{"error":{{"code":"{code}","message":"{message}","retry_after_ms":{retry_after_ms}}}}}"#
    );
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         retry-after: {}\r\nconnection: close\r\n\r\n{body}",
        body.len(),
        retry_after_ms.div_ceil(1000).max(1),
    );
    let write = async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(REFUSAL_WRITE, write).await;
}

/// `http.max_connections`, or the open-file limit less a reserve when 0.
fn effective_max_connections(configured: u32) -> u32 {
    if configured > 0 {
        return configured;
    }
    let fds = open_file_limit().unwrap_or(1024);
    u32::try_from(fds.saturating_sub(FD_RESERVE).max(64)).unwrap_or(u32::MAX)
}

/// The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits`.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_cap_leaves_a_reserve() {
        assert_eq!(effective_max_connections(500), 500);
        let derived = effective_max_connections(0);
        let fds = open_file_limit().unwrap_or(1024);
        assert_eq!(
            u64::from(derived),
            fds.saturating_sub(FD_RESERVE)
                .max(64)
                .min(u64::from(u32::MAX))
        );
    }
}
