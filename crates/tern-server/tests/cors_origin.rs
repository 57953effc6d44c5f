//! Browser origins through the whole router on a real listener: CORS on the
//! HTTP API, the `Origin` allowlist of WebSocket upgrades (`http.allowed_origins`)
//! and the embedded chat UI's routes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use common::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw HTTP/1.1 exchange: status, head (lower-cased, values too), body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_owned())
        })
    }
}

async fn raw(addr: SocketAddr, method: &str, path: &str, extra: &[(&str, &str)]) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    // An upgrade answered 101 keeps the socket open: read what comes first.
    let read = tokio::time::timeout(common::WAIT, async {
        loop {
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.unwrap_or(0);
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            if n == 0 || (text.starts_with("HTTP/1.1 101") && text.contains("\r\n\r\n")) {
                break;
            }
        }
    });
    read.await.expect("no answer in time");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Answer {
        status: head.split(' ').nth(1).unwrap().parse().unwrap(),
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

const UPGRADE: [(&str, &str); 4] = [
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

async fn upgrade(addr: SocketAddr, origin: Option<&str>) -> Answer {
    let mut headers = UPGRADE.to_vec();
    if let Some(o) = origin {
        headers.push(("Origin", o));
    }
    raw(addr, "GET", "/ws", &headers).await
}

#[tokio::test]
async fn default_allows_same_origin_and_non_browsers_only() {
    let srv = TestServer::start().await;
    let addr = srv.addr;
    let own = format!("http://{addr}");

    let a = raw(addr, "GET", "/healthz", &[]).await;
    assert_eq!(a.status, 200, "no Origin: not a browser");
    let a = raw(addr, "GET", "/healthz", &[("Origin", &own)]).await;
    assert_eq!(a.status, 200, "same origin");
    assert_eq!(a.header("access-control-allow-origin"), None);

    let a = raw(
        addr,
        "GET",
        "/api/v1/me",
        &[("Origin", "https://evil.example")],
    )
    .await;
    assert_eq!(a.status, 403);
    assert!(a.body.contains("\"forbidden\""), "{}", a.body);
    assert_eq!(a.header("access-control-allow-origin"), None);
    let pre = [
        ("Origin", "https://evil.example"),
        ("Access-Control-Request-Method", "POST"),
    ];
    assert_eq!(
        raw(addr, "OPTIONS", "/api/v1/login", &pre).await.status,
        403
    );

    assert_eq!(upgrade(addr, None).await.status, 101, "no Origin");
    assert_eq!(upgrade(addr, Some(&own)).await.status, 101, "same origin");
    let other_port = format!("http://127.0.0.1:{}", addr.port().wrapping_add(1));
    let a = upgrade(addr, Some(&other_port)).await;
    assert_eq!(a.status, 403, "another port is another origin");
    assert!(a.body.contains("origin not allowed"), "{}", a.body);
    assert_eq!(upgrade(addr, Some("null")).await.status, 403);
    srv.shutdown().await;
}

#[tokio::test]
async fn listed_origins_get_cors_and_websockets() {
    let app = "https://app.example.com";
    let srv = TestServer::with(|c| c.http.allowed_origins = vec![app.into()]).await;
    let addr = srv.addr;

    let pre = raw(
        addr,
        "OPTIONS",
        "/api/v1/login",
        &[
            ("Origin", app),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "content-type, authorization",
            ),
        ],
    )
    .await;
    assert_eq!(pre.status, 204);
    assert_eq!(
        pre.header("access-control-allow-origin").as_deref(),
        Some(app)
    );
    assert!(pre
        .header("access-control-allow-methods")
        .unwrap()
        .contains("post"));
    let allowed = pre.header("access-control-allow-headers").unwrap();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"));
    assert!(pre.header("access-control-max-age").is_some());

    let a = raw(addr, "GET", "/api/v1/me", &[("Origin", app)]).await;
    assert_eq!(a.status, 401, "CORS does not replace authentication");
    assert_eq!(
        a.header("access-control-allow-origin").as_deref(),
        Some(app)
    );
    assert!(a.header("vary").unwrap().contains("origin"));
    assert!(a
        .header("access-control-expose-headers")
        .unwrap()
        .contains("retry-after"));

    assert_eq!(upgrade(addr, Some(app)).await.status, 101);
    assert_eq!(
        upgrade(addr, Some("https://other.example.com"))
            .await
            .status,
        403
    );
    let a = raw(
        addr,
        "GET",
        "/healthz",
        &[("Origin", "https://other.example.com")],
    )
    .await;
    assert_eq!(a.status, 403);
    srv.shutdown().await;
}

#[tokio::test]
async fn star_allows_every_origin() {
    let srv = TestServer::with(|c| c.http.allowed_origins = vec!["*".into()]).await;
    let addr = srv.addr;
    let a = raw(
        addr,
        "GET",
        "/healthz",
        &[("Origin", "https://any.example")],
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.header("access-control-allow-origin").as_deref(),
        Some("https://any.example")
    );
    assert_eq!(upgrade(addr, Some("https://any.example")).await.status, 101);
    srv.shutdown().await;
}

#[tokio::test]
async fn the_chat_ui_is_served() {
    let srv = TestServer::start().await;
    let addr = srv.addr;
    let page = raw(addr, "GET", "/", &[]).await;
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(page.header("content-security-policy").is_some());
    assert!(page
        .body
        .contains("<script type=\"module\" src=\"/app.js\">"));
    let etag = page.header("etag").unwrap();
    assert_eq!(
        raw(addr, "GET", "/", &[("If-None-Match", &etag)])
            .await
            .status,
        304
    );
    for path in ["/app.js", "/view.js", "/sdk/index.js", "/sdk/client.js"] {
        let a = raw(addr, "GET", path, &[]).await;
        assert_eq!(a.status, 200, "{path}");
        assert!(
            a.header("content-type")
                .unwrap()
                .starts_with("text/javascript"),
            "{path}"
        );
    }
    let css = raw(addr, "GET", "/style.css", &[]).await;
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    // Unknown paths keep the API's JSON 404.
    let a = raw(addr, "GET", "/nope.js", &[]).await;
    assert_eq!(a.status, 404);
    assert!(a.body.contains("not_found"));
    srv.shutdown().await;
}
