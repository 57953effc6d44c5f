//! Browser origins: CORS for the HTTP API and the `Origin` allowlist of
//! WebSocket upgrades (against cross-site WebSocket hijacking).
//!
//! A request is let through when it carries no `Origin` (not a browser, or a
//! same-origin navigation), when its `Origin` names the host and port the
//! request was sent to (its `Host` header: the embedded UI), or when the
//! origin is listed in `http.allowed_origins` (`*` lists every origin).
//! Anything else is answered 403 `forbidden`. Listed origins get the CORS
//! headers, and their preflight `OPTIONS` requests are answered here.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use tern_proto::ErrorCode;

use crate::http::error::error_response;
use crate::state::AppState;

/// Methods a cross-origin caller may use (every method of the API).
const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
/// Request headers a cross-origin caller may send.
const ALLOW_HEADERS: &str = "authorization, content-type";
/// Response headers a cross-origin caller may read.
const EXPOSE_HEADERS: &str = "retry-after";
/// How long a browser may cache a preflight answer, seconds.
const PREFLIGHT_MAX_AGE_S: &str = "600";

/// What the `Origin` of a request means for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No `Origin` header: not a browser's cross-origin request.
    NoOrigin,
    /// The origin is the server itself (`Origin` host:port = `Host`).
    SameOrigin,
    /// Another origin, listed in `allowed_origins`; holds the origin.
    Allowed(String),
    /// Another origin, not listed; holds the origin (or a placeholder).
    Refused(String),
}

/// Judges the request's `Origin` against its `Host` and the allowlist.
pub fn check(headers: &HeaderMap, allowed: &[String]) -> Verdict {
    let Some(raw) = headers.get(header::ORIGIN) else {
        return Verdict::NoOrigin;
    };
    let Ok(origin) = raw.to_str() else {
        return Verdict::Refused("(not ASCII)".into());
    };
    let origin = origin.trim();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if same_origin(origin, host) {
        return Verdict::SameOrigin;
    }
    let listed = allowed.iter().any(|a| {
        let a = a.trim().trim_end_matches('/');
        a == "*" || a.eq_ignore_ascii_case(origin.trim_end_matches('/'))
    });
    if listed {
        Verdict::Allowed(origin.to_owned())
    } else {
        Verdict::Refused(origin.to_owned())
    }
}

/// True when `origin` (`scheme://host[:port]`) names the same host and port
/// as the `Host` header. A missing port is the scheme's default port, on
/// both sides (the server may sit behind a TLS proxy that keeps `Host`).
pub fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false; // e.g. "null" (sandboxed frames, file: pages)
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    match (
        split_host_port(authority, default_port),
        split_host_port(host.trim(), default_port),
    ) {
        (Some((oh, op)), Some((hh, hp))) => {
            !oh.is_empty() && oh.eq_ignore_ascii_case(hh) && op == hp
        }
        _ => false,
    }
}

/// `host[:port]` or `[v6][:port]` → (host, port). `None` when malformed.
fn split_host_port(s: &str, default_port: u16) -> Option<(&str, u16)> {
    if s.contains(['/', '@', '?', '#']) {
        return None;
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        match after.strip_prefix(':') {
            Some(p) => (v6, Some(p)),
            None if after.is_empty() => (v6, None),
            None => return None,
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    Some((host, port))
}

/// The WebSocket upgrade's check: `Some(403 response)` when the `Origin`
/// is neither absent, nor the server itself, nor allowed.
pub fn refuse_ws_origin(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let config = state.hub.config();
    match check(headers, &config.http.allowed_origins) {
        Verdict::Refused(origin) => {
            tracing::debug!(%origin, "WebSocket upgrade from a foreign origin refused");
            Some(forbidden(&origin))
        }
        _ => None,
    }
}

/// Middleware for the HTTP API: refuses foreign origins, answers the
/// preflight of allowed ones and adds the CORS headers to their responses.
/// WebSocket upgrades pass untouched: `/ws` checks its own origin.
pub async fn cors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.headers().contains_key(header::UPGRADE) {
        return next.run(req).await;
    }
    let config = state.hub.config();
    match check(req.headers(), &config.http.allowed_origins) {
        Verdict::NoOrigin | Verdict::SameOrigin => next.run(req).await,
        Verdict::Refused(origin) => forbidden(&origin),
        Verdict::Allowed(origin) => {
            let preflight = req.method() == Method::OPTIONS
                && req
                    .headers()
                    .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
            let mut res = if preflight {
                preflight_response()
            } else {
                next.run(req).await
            };
            add_cors_headers(res.headers_mut(), &origin);
            res
        }
    }
}

fn preflight_response() -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE_S),
    );
    res
}

fn add_cors_headers(h: &mut HeaderMap, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    h.append(header::VARY, HeaderValue::from_static("origin"));
}

fn forbidden(origin: &str) -> Response {
    let shown: String = origin.chars().take(200).collect();
    error_response(
        StatusCode::FORBIDDEN,
        ErrorCode::Forbidden,
        &format!("origin not allowed: {shown} (see http.allowed_origins)"),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        h
    }

    #[test]
    fn same_origin_compares_host_and_port() {
        assert!(same_origin("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(same_origin("http://Chat.Example.com", "chat.example.com"));
        assert!(same_origin(
            "http://chat.example.com",
            "chat.example.com:80"
        ));
        assert!(same_origin("https://chat.example.com", "chat.example.com"));
        assert!(same_origin(
            "https://chat.example.com:443",
            "chat.example.com"
        ));
        assert!(same_origin("http://[::1]:8080", "[::1]:8080"));
        assert!(!same_origin("http://127.0.0.1:8081", "127.0.0.1:8080"));
        assert!(!same_origin("http://localhost:8080", "127.0.0.1:8080"));
        assert!(!same_origin(
            "https://chat.example.com",
            "chat.example.com:80"
        ));
        assert!(!same_origin("http://evil.example", "chat.example.com"));
        assert!(!same_origin("null", "127.0.0.1:8080"));
        assert!(!same_origin("file://", "127.0.0.1:8080"));
        assert!(!same_origin("ftp://a.example", "a.example"));
        assert!(!same_origin("http://a.example", ""));
        assert!(!same_origin("http://a.example:99999", "a.example:99999"));
        assert!(!same_origin("http://user@a.example", "a.example"));
    }

    #[test]
    fn verdicts() {
        let none: Vec<String> = vec![];
        let listed = vec!["https://app.example.com/".to_owned()];
        let star = vec!["*".to_owned()];
        assert_eq!(check(&headers(None, "h:1"), &none), Verdict::NoOrigin);
        assert_eq!(
            check(&headers(Some("http://h:1"), "h:1"), &none),
            Verdict::SameOrigin
        );
        assert_eq!(
            check(&headers(Some("https://app.example.com"), "h:1"), &none),
            Verdict::Refused("https://app.example.com".into())
        );
        assert_eq!(
            check(&headers(Some("https://APP.example.com"), "h:1"), &listed),
            Verdict::Allowed("https://APP.example.com".into())
        );
        assert_eq!(
            check(
                &headers(Some("https://app.example.com:8443"), "h:1"),
                &listed
            ),
            Verdict::Refused("https://app.example.com:8443".into())
        );
        assert_eq!(
            check(&headers(Some("null"), "h:1"), &star),
            Verdict::Allowed("null".into())
        );
        assert_eq!(
            check(&headers(Some("null"), "h:1"), &listed),
            Verdict::Refused("null".into())
        );
    }
}
