//! One WebSocket connection: authentication, then the session loop that reads
//! client frames, writes the session's outbox, and enforces the idle timeout,
//! the send rate and the drain deadline. Generic over the socket's
//! `Stream`/`Sink`, so tests may drive it with anything that speaks
//! `tokio_websockets::Message`.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tern_proto::{
    decode_client, encode_server, CloseCode, DecodeError, ErrorCode, RequestId, ServerFrame,
};
use tokio::time::{sleep_until, timeout, Instant, Sleep};
use tokio_websockets::{Error as WsError, Message};
use tracing::Instrument;

use super::dispatch::{Flow, SessionCtx};
use super::limiter::SendLimiter;
use crate::auth::Identity;
use crate::service::outbox::Drained;
use crate::service::{ServiceError, Session};
use crate::state::AppState;

/// What the upgrade learned about the connection.
pub struct ConnParams {
    pub peer: SocketAddr,
    /// A token from the `Authorization` header or `?token=`.
    pub token: Option<String>,
}

/// Runs a connection to its end.
pub async fn serve<S>(state: AppState, ws: S, params: ConnParams)
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let span = tracing::info_span!(
        "conn",
        peer = %params.peer,
        user = tracing::field::Empty,
        session = tracing::field::Empty
    );
    let _gauge = ConnectionGauge::new("ws");
    run(state, ws, params.token).instrument(span).await;
}

async fn run<S>(state: AppState, mut ws: S, token: Option<String>)
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    // Cold phases are boxed so that only the small session state stays in
    // every idle connection's future.
    let Some((session, hello)) = Box::pin(start_session(&state, &mut ws, token)).await else {
        return;
    };
    // Per-session values are taken at connect: a reload changes them for
    // new sessions only.
    let config = state.hub.config();
    let limits = &config.limits;
    let mut ctx = SessionCtx {
        state: state.clone(),
        session: session.clone(),
        limiter: SendLimiter::new(limits.send_rate, limits.send_burst, limits.rate_abuse_limit),
        watched: Vec::new(),
    };
    let greeted = Box::pin(write_frames(
        &mut ws,
        std::slice::from_ref(&hello),
        Timeouts::of(&state).write(),
    ));
    if greeted.await {
        drop(hello);
        tracing::debug!("session started");
        session_loop(&mut ctx, &mut ws).await;
    }
    state.hub.close_session(&session, &ctx.watched);
}

/// Authenticates and registers the session; returns it with its `auth_ok`.
async fn start_session<S>(
    state: &AppState,
    ws: &mut S,
    token: Option<String>,
) -> Option<(Arc<Session>, Bytes)>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let (identity, auth_id) = authenticate(state, ws, token).await?;
    tracing::Span::current().record("user", identity.user.as_str());
    let session = state.hub.open_session(&identity.user);
    tracing::Span::current().record("session", session.public_id());
    let ok = ServerFrame::AuthOk {
        id: auth_id,
        user: identity.user,
        session: session.public_id(),
        heartbeat_ms: state.hub.config().limits.effective_heartbeat_ms(),
        server_time: crate::service::now_ms(),
    };
    Some((session, encode_server(&ok)))
}

/// Waits for a valid token (from the upgrade, or in an `auth` frame).
/// On failure the client has been told why and the socket is closed.
async fn authenticate<S>(
    state: &AppState,
    ws: &mut S,
    token: Option<String>,
) -> Option<(Identity, Option<RequestId>)>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    if let Some(token) = token {
        return match state.auth.authenticate(&token).await {
            Ok(identity) => Some((identity, None)),
            Err(e) => {
                reject(ws, None, &e, Timeouts::of(state)).await;
                None
            }
        };
    }
    let auth_timeout = state.hub.config().limits.auth_timeout_ms;
    let deadline = Instant::now() + Duration::from_millis(auth_timeout);
    loop {
        let msg = match timeout(deadline - Instant::now(), ws.next()).await {
            Err(_) => {
                close(ws, CloseCode::AuthTimeout, Timeouts::of(state)).await;
                return None;
            }
            Ok(None) => return None,
            Ok(Some(Err(e))) => {
                on_ws_error(ws, e, Timeouts::of(state)).await;
                return None;
            }
            Ok(Some(Ok(msg))) => msg,
        };
        let frame = match decode_message(&msg) {
            Incoming::Skip => continue,
            Incoming::End => {
                answer_close(ws, Timeouts::of(state)).await;
                return None;
            }
            Incoming::Fatal(reply) => {
                fatal(ws, reply, Timeouts::of(state)).await;
                return None;
            }
            Incoming::Invalid(reply) => {
                write_frames(ws, &[reply], Timeouts::of(state).write()).await;
                continue;
            }
            Incoming::Frame(frame) => frame,
        };
        match frame {
            tern_proto::ClientFrame::Auth { id, token, .. } => {
                return match state.auth.authenticate(&token).await {
                    Ok(identity) => Some((identity, id)),
                    Err(e) => {
                        reject(ws, id, &e, Timeouts::of(state)).await;
                        None
                    }
                };
            }
            other => {
                let reply = ServerFrame::error(
                    other.id().cloned(),
                    ErrorCode::Unauthorized,
                    "authenticate first: send an auth frame",
                );
                write_frames(ws, &[encode_server(&reply)], Timeouts::of(state).write()).await;
            }
        }
    }
}

/// The authenticated part of the connection.
async fn session_loop<S>(ctx: &mut SessionCtx, ws: &mut S)
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let state = ctx.state.clone();
    let session = ctx.session.clone();
    let idle = Duration::from_millis(state.hub.config().limits.idle_timeout_ms);
    let times = Timeouts::of(&state);
    let idle_timer = sleep_until(Instant::now() + idle);
    tokio::pin!(idle_timer);
    // Allocated only once draining starts: most connections never drain.
    let mut drain_timer: Option<Pin<Box<Sleep>>> = None;
    let mut draining = false;
    let mut out: Vec<Bytes> = Vec::new();
    loop {
        tokio::select! {
            drained = session.outbox.drain_into(&mut out) => {
                let written = Box::pin(write_frames(ws, &out, times.write())).await;
                out.clear();
                if out.capacity() > 64 {
                    out.shrink_to(8);
                }
                match drained {
                    Drained::Frames if written => {}
                    Drained::Frames => return,
                    Drained::Close(code) => return Box::pin(finish(&session, ws, code, times)).await,
                }
            }
            incoming = ws.next() => {
                idle_timer.as_mut().reset(Instant::now() + idle);
                let msg = match incoming {
                    None => return,
                    Some(Err(e)) => return Box::pin(on_ws_error(ws, e, times)).await,
                    Some(Ok(msg)) => msg,
                };
                match decode_message(&msg) {
                    Incoming::Skip => {}
                    Incoming::End => return Box::pin(answer_close(ws, times)).await,
                    Incoming::Fatal(reply) => return Box::pin(fatal(ws, reply, times)).await,
                    Incoming::Invalid(reply) => { session.push(reply); }
                    Incoming::Frame(frame) => {
                        // Boxed so store calls do not bloat every idle connection's future.
                        if let Flow::Close(code) = Box::pin(ctx.handle(frame)).await {
                            session.outbox.close(code);
                        }
                    }
                }
            }
            () = &mut idle_timer => {
                return Box::pin(close(ws, CloseCode::IdleTimeout, times)).await;
            }
            () = state.lifecycle.drain.cancelled(), if !draining => {
                draining = true;
                let limits = state.hub.config().limits.clone();
                let goaway = ServerFrame::Goaway { reconnect_ms: limits.goaway_reconnect_ms };
                session.push(encode_server(&goaway));
                let deadline = Duration::from_millis(limits.drain_timeout_ms);
                drain_timer = Some(Box::pin(sleep_until(Instant::now() + deadline)));
            }
            () = wait_for(&mut drain_timer), if draining => {
                session.outbox.close(CloseCode::GoingAway);
            }
        }
    }
}

/// Closes a session: first lets sends in flight get their acks (bounded
/// by `limits.close_timeout_ms`), writes what is queued, then closes.
async fn finish<S>(session: &Arc<Session>, ws: &mut S, code: CloseCode, times: Timeouts)
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    if code != CloseCode::SlowConsumer {
        let give_up = Instant::now() + times.close();
        let mut rest = Vec::new();
        loop {
            // Registered before the checks, so no push or nudge is missed.
            let woken = session.outbox.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            // Read before taking the queue: an ack is queued before its
            // send stops counting as pending.
            let pending = session.pending_sends.load(Ordering::Acquire) > 0;
            session.outbox.take(&mut rest);
            if !write_frames(ws, &rest, times.write()).await {
                return;
            }
            rest.clear();
            if !pending || tokio::time::timeout_at(give_up, woken).await.is_err() {
                break;
            }
        }
    }
    if code == CloseCode::SlowConsumer || code == CloseCode::Kicked {
        tracing::info!(code = code.code(), "closing session");
    }
    close(ws, code, times).await;
}

/// A decoded WebSocket message.
enum Incoming {
    Frame(tern_proto::ClientFrame),
    /// Valid JSON but not a valid frame: answer, keep the connection.
    Invalid(Bytes),
    /// Not decodable in the connection's codec: answer, then close 4000.
    Fatal(Bytes),
    /// Ping/pong (answered by the WebSocket layer).
    Skip,
    /// The peer closed.
    End,
}

fn decode_message(msg: &Message) -> Incoming {
    if msg.is_close() {
        return Incoming::End;
    }
    let Some(text) = msg.as_text() else {
        if msg.is_binary() {
            let e = ServerFrame::Error {
                id: None,
                code: ErrorCode::BadRequest,
                message: "binary frame on a JSON connection".into(),
                retry_after_ms: None,
                close: Some(CloseCode::Malformed.code()),
            };
            return Incoming::Fatal(encode_server(&e));
        }
        return Incoming::Skip;
    };
    match decode_client(text.as_bytes()) {
        Ok(frame) => Incoming::Frame(frame),
        Err(DecodeError::Invalid { id, message }) => Incoming::Invalid(encode_server(
            &ServerFrame::error(id, ErrorCode::BadRequest, message),
        )),
        Err(DecodeError::Malformed(message)) => {
            Incoming::Fatal(encode_server(&ServerFrame::Error {
                id: None,
                code: ErrorCode::BadRequest,
                message,
                retry_after_ms: None,
                close: Some(CloseCode::Malformed.code()),
            }))
        }
    }
}

/// Refuses authentication: `unauthorized` + 4001, or `forbidden` + 4011 (banned).
async fn reject<S>(ws: &mut S, id: Option<RequestId>, e: &ServiceError, times: Timeouts)
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let code = match e {
        ServiceError::Forbidden(_) => CloseCode::Kicked,
        _ => CloseCode::BadToken,
    };
    let frame = ServerFrame::Error {
        id,
        code: e.code(),
        message: e.public_message(),
        retry_after_ms: None,
        close: Some(code.code()),
    };
    write_frames(ws, &[encode_server(&frame)], times.write()).await;
    close(ws, code, times).await;
}

async fn fatal<S>(ws: &mut S, reply: Bytes, times: Timeouts)
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    write_frames(ws, &[reply], times.write()).await;
    close(ws, CloseCode::Malformed, times).await;
}

/// A message over `limits.max_frame_bytes` closes with 1009; other errors
/// (protocol violations, I/O) end the connection.
async fn on_ws_error<S>(ws: &mut S, e: WsError, times: Timeouts)
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    match e {
        WsError::PayloadTooLong { len, max_len } => {
            tracing::debug!(len, max_len, "frame too large");
            close(ws, CloseCode::TooLarge, times).await;
        }
        other => tracing::debug!(error = %other, "websocket error"),
    }
}

/// Writes frames with one flush. False if the socket failed or stalled.
async fn write_frames<S>(ws: &mut S, frames: &[Bytes], limit: Duration) -> bool
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    if frames.is_empty() {
        return true;
    }
    let write = async {
        for f in frames {
            ws.feed(Message::text(f.clone())).await?;
        }
        ws.flush().await
    };
    matches!(timeout(limit, write).await, Ok(Ok(())))
}

/// Starts the closing handshake with `code` and waits (bounded) for the
/// peer's Close.
async fn close<S>(ws: &mut S, code: CloseCode, times: Timeouts)
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let ws_code = tokio_websockets::CloseCode::try_from(code.code())
        .unwrap_or(tokio_websockets::CloseCode::POLICY_VIOLATION);
    let msg = Message::close(Some(ws_code), code.reason());
    // `send` fails when the WebSocket layer already queued a close of its
    // own (e.g. 1009 for an oversized frame); `close` then flushes that one.
    // `close` also waits (bounded) for the peer's close reply.
    let _ = timeout(times.close(), async {
        let _ = ws.send(msg).await;
        ws.close().await
    })
    .await;
}

/// The peer sent a Close: the WebSocket layer has queued the echo of its
/// code (RFC 6455 §5.5.1); flush it and shut the socket down, bounded.
async fn answer_close<S>(ws: &mut S, times: Timeouts)
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let _ = timeout(times.close(), ws.close()).await;
}

/// Waits for an optional timer; never completes without one.
async fn wait_for(timer: &mut Option<Pin<Box<Sleep>>>) {
    match timer {
        Some(t) => t.as_mut().await,
        None => std::future::pending().await,
    }
}

/// `limits.write_timeout_ms` and `limits.close_timeout_ms`, taken once per
/// connection (kept as `u32` ms: every idle connection holds a copy).
#[derive(Clone, Copy)]
struct Timeouts {
    write_ms: u32,
    close_ms: u32,
}

impl Timeouts {
    fn of(state: &AppState) -> Self {
        let limits = &state.hub.config().limits;
        let ms = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Self {
            write_ms: ms(limits.write_timeout_ms),
            close_ms: ms(limits.close_timeout_ms),
        }
    }

    fn write(self) -> Duration {
        Duration::from_millis(self.write_ms.into())
    }

    fn close(self) -> Duration {
        Duration::from_millis(self.close_ms.into())
    }
}

/// Keeps `tern_connections{transport}` in step with live connections.
pub struct ConnectionGauge(&'static str);

impl ConnectionGauge {
    pub fn new(transport: &'static str) -> Self {
        metrics::gauge!(crate::metrics::CONNECTIONS, "transport" => transport).increment(1.0);
        Self(transport)
    }
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        metrics::gauge!(crate::metrics::CONNECTIONS, "transport" => self.0).decrement(1.0);
    }
}
