//! The browser chat UI, embedded in the binary: `GET /` and its static
//! assets (`crates/tern-server/ui/`), plus the TypeScript SDK's compiled
//! modules (`clients/js/dist/`) under `/sdk/`. No build step: the files are
//! plain HTML, CSS and ES modules, included at compile time.

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::body::Body;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::{header, HeaderMap, HeaderValue, StatusCode};

use crate::state::AppState;

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

macro_rules! asset {
    ($path:literal, $ty:expr, $file:literal) => {
        Asset {
            path: $path,
            content_type: $ty,
            body: include_bytes!($file),
        }
    };
}

/// Every embedded file, by the path it is served at.
static ASSETS: &[Asset] = &[
    asset!("/", HTML, "../../ui/index.html"),
    asset!("/app.js", JS, "../../ui/app.js"),
    asset!("/view.js", JS, "../../ui/view.js"),
    asset!("/style.css", CSS, "../../ui/style.css"),
    asset!("/favicon.svg", "image/svg+xml", "../../ui/favicon.svg"),
    asset!("/sdk/index.js", JS, "../../../../clients/js/dist/index.js"),
    asset!(
        "/sdk/client.js",
        JS,
        "../../../../clients/js/dist/client.js"
    ),
    asset!("/sdk/http.js", JS, "../../../../clients/js/dist/http.js"),
    asset!(
        "/sdk/errors.js",
        JS,
        "../../../../clients/js/dist/errors.js"
    ),
    asset!(
        "/sdk/backoff.js",
        JS,
        "../../../../clients/js/dist/backoff.js"
    ),
    asset!("/sdk/seq.js", JS, "../../../../clients/js/dist/seq.js"),
    asset!(
        "/sdk/emitter.js",
        JS,
        "../../../../clients/js/dist/emitter.js"
    ),
    asset!("/sdk/types.js", JS, "../../../../clients/js/dist/types.js"),
];

/// The page may load only its own scripts and styles and talk only to its
/// own server (`ws:`/`wss:` for browsers whose `'self'` omits WebSockets).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The UI's routes (merged into the API router).
pub fn routes() -> Router<AppState> {
    ASSETS.iter().enumerate().fold(Router::new(), |r, (i, a)| {
        r.route(a.path, get(move |h: HeaderMap| async move { serve(i, &h) }))
    })
}

/// Total size of the embedded files, bytes.
pub fn embedded_bytes() -> usize {
    ASSETS.iter().map(|a| a.body.len()).sum()
}

/// The URL to open in a browser for a server bound to `addr` (an
/// unspecified address such as `0.0.0.0` is shown as loopback).
pub fn open_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    };
    format!("http://{ip}:{}/", addr.port())
}

/// Strong ETags of the assets (a hash of each body), computed once.
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = sha1_smol::Sha1::from(a.body).digest().to_string();
                format!("\"{}\"", &digest[..16])
            })
            .collect()
    })
}

/// Answers with asset `i`: 304 when the browser's copy is current. Every
/// asset is revalidated on each load (`no-cache`), so a new binary's UI is
/// picked up at once while unchanged files cost one 304.
fn serve(i: usize, headers: &HeaderMap) -> Response {
    let (Some(asset), Some(etag)) = (ASSETS.get(i), etags().get(i)) else {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = StatusCode::NOT_FOUND;
        return res;
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = if fresh {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(Body::from(asset.body));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        r
    };
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if asset.content_type == HTML {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_present_and_small() {
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{} is empty", a.path);
        }
        assert!(embedded_bytes() < 256 * 1024, "{} bytes", embedded_bytes());
        assert_eq!(etags().len(), ASSETS.len());
    }

    #[test]
    fn conditional_get_and_headers() {
        let res = serve(0, &HeaderMap::new());
        assert_eq!(res.status(), StatusCode::OK);
        let etag = res.headers()[header::ETAG].clone();
        assert_eq!(res.headers()[header::CONTENT_TYPE], HTML);
        assert!(res.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(serve(0, &h).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(serve(usize::MAX, &h).status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn open_url_shows_loopback_for_unspecified() {
        let a: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(open_url(a), "http://127.0.0.1:8080/");
        let b: SocketAddr = "[::1]:9000".parse().unwrap();
        assert_eq!(open_url(b), "http://[::1]:9000/");
    }
}
