//! The WebSocket upgrade on `GET /ws`: validates the handshake, picks the
//! codec (subprotocol `tern.json`/`tern.proto` or `?codec=`), reads a token
//! from the `Authorization` header or `?token=`, answers 101 and hands the
//! upgraded socket to a tracked connection task. An address over its
//! connection count or connect rate gets 429 instead. The request readers
//! are pure and public for the fuzz targets (docs/fuzzing.md).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use hyper_util::rt::TokioIo;
use tern_proto::ErrorCode;
use tokio_websockets::{Config as WsConfig, Limits, ServerBuilder};

use super::abuse_limits::Refused;
use super::conn::{self, Codec, ConnParams, Timeouts};
use super::ws::WsTransport;
use crate::http::error::error_response;
use crate::listener::SocketPermit;
use crate::state::AppState;

const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Handles `GET /ws`.
pub async fn ws_handler(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
) -> Response {
    if let Some(refused) = crate::http::origin::refuse_ws_origin(&state, req.headers()) {
        return refused;
    }
    if state.lifecycle.is_draining() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "server is draining",
        );
    }
    let Some(accept) = accept_key(req.headers()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "not a WebSocket upgrade",
        );
    };
    let query = req.uri().query().unwrap_or("");
    let (codec, subprotocol) = match choose_codec(req.headers(), query) {
        Ok(chosen) => chosen,
        Err(msg) => return refuse(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, msg),
    };
    let token = bearer(req.headers()).or_else(|| query_param(query, "token"));
    // The socket's place under the connection caps (absent when the router
    // is driven without the listener, e.g. in tests).
    let permit = req.extensions().get::<Arc<SocketPermit>>().cloned();
    let counted = permit.as_ref().is_some_and(|p| p.counted());
    let client = SocketAddr::new(
        state.abuse_limits.client_ip(peer.ip(), req.headers()),
        peer.port(),
    );
    let slot = match state.abuse_limits.admit_session(client.ip(), counted) {
        Ok(slot) => slot,
        Err(refused) => return rate_limited(client, refused),
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let max_frame = state.hub.config().limits.max_frame_bytes;
    let lifecycle = state.lifecycle.clone();
    // Kept small (the connection state itself is boxed inside): it is what
    // every idle connection's task holds.
    let task = async move {
        // Held until the connection ends: they keep the counts.
        let _places = (slot, permit);
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = ServerBuilder::new()
                    .limits(Limits::default().max_payload_len(Some(max_frame)))
                    .config(WsConfig::default().frame_size(max_frame.max(1)))
                    .serve(TokioIo::new(upgraded));
                // Boxed: the task cell then holds only this small outer future,
                // and the connection's own state lives in one allocation.
                let ws = WsTransport::new(ws, Timeouts::of(&state).close());
                let params = ConnParams {
                    peer: client,
                    token,
                    codec,
                };
                Box::pin(conn::serve(state, ws, params)).await;
            }
            Err(e) => tracing::debug!(%client, error = %e, "upgrade failed"),
        }
    };
    tracing::trace!(
        task_bytes = std::mem::size_of_val(&task),
        "spawning connection task"
    );
    lifecycle.connections.spawn(task);
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(p) = subprotocol {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
    }
    res
}

/// `Sec-WebSocket-Accept` for a valid version-13 upgrade request.
pub fn accept_key(headers: &HeaderMap) -> Option<String> {
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|p| p.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return None;
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION)?.as_bytes() != b"13" {
        return None;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?.as_bytes();
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key);
    sha.update(WS_GUID.as_bytes());
    Some(base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes()))
}

/// The codec chosen at the upgrade, and the subprotocol to name in the
/// answer: the first `tern.*` subprotocol the client offers, else
/// `?codec=`, else none (the first frame decides).
pub fn choose_codec(
    headers: &HeaderMap,
    query: &str,
) -> Result<(Option<Codec>, Option<&'static str>), &'static str> {
    let offered = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .map(str::trim);
    for protocol in offered {
        match protocol {
            "tern.json" => return Ok((Some(Codec::Json), Some("tern.json"))),
            "tern.proto" => return Ok((Some(Codec::Proto), Some("tern.proto"))),
            _ => {}
        }
    }
    match query_param(query, "codec").as_deref() {
        None => Ok((None, None)),
        Some("json") => Ok((Some(Codec::Json), None)),
        Some("proto") => Ok((Some(Codec::Proto), None)),
        Some(_) => Err("codec must be json or proto"),
    }
}

/// The token of an `Authorization: Bearer <jwt>` header.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// A percent-decoded query parameter.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn rate_limited(peer: SocketAddr, refused: Refused) -> Response {
    metrics::counter!(crate::metrics::RATE_LIMITED, "transport" => "ws_upgrade").increment(1);
    tracing::debug!(%peer, reason = refused.reason, "upgrade refused");
    error_response(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        refused.reason,
        Some(refused.retry_after_ms),
    )
}

fn refuse(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code.as_str(), "message": message}});
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_percent_decoding() {
        assert_eq!(
            query_param("a=1&token=x%2Ey&b", "token").as_deref(),
            Some("x.y")
        );
        assert_eq!(query_param("codec=json", "token"), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn accept_key_of_rfc_example() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        assert_eq!(
            accept_key(&h).as_deref(),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
    }
}
