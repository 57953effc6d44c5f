//! Hostile HTTP: bad JSON, wrong content types, oversized bodies, garbage
//! `Authorization`, path tricks (`..%2f`, `%00`), SQL-shaped names and
//! bodies stored literally. Each case asserts the documented status and
//! error code; afterwards the server is healthy and the message sent
//! before the barrage is still in history.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use common::{token, TestServer};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One raw request; the status and the parsed JSON body (Null if none).
async fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{head}\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    // The server may answer (and close) before reading a huge body.
    let _ = s.write_all(body).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

struct Case {
    name: &'static str,
    head: String,
    body: Vec<u8>,
    status: u16,
    code: Option<&'static str>,
}

fn case(name: &'static str, head: String, body: &[u8], status: u16, code: &'static str) -> Case {
    Case {
        name,
        head,
        body: body.to_vec(),
        status,
        code: Some(code),
    }
}

fn post_json(path: &str, auth: Option<&str>) -> String {
    let auth = auth
        .map(|t| format!("\r\nAuthorization: {t}"))
        .unwrap_or_default();
    format!("POST {path} HTTP/1.1\r\nContent-Type: application/json{auth}")
}

fn get(path: &str, auth: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nAuthorization: {auth}")
}

fn cases() -> Vec<Case> {
    let alice = format!("Bearer {}", token("alice"));
    let a = Some(alice.as_str());
    let huge = vec![b'x'; 10 * 1024 * 1024];
    vec![
        case("not JSON", post_json("/api/v1/messages", a), b"{nope", 400, "bad_request"),
        case("JSON array", post_json("/api/v1/messages", a), b"[1,2]", 400, "bad_request"),
        case("wrong field type", post_json("/api/v1/messages", a), br#"{"to":7,"cmid":"c","body":"x"}"#, 400, "bad_request"),
        case("no cmid", post_json("/api/v1/messages", a), br#"{"to":"bob","body":"x"}"#, 400, "bad_request"),
        case("deep nesting", post_json("/api/v1/messages", a), format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).as_bytes(), 400, "bad_request"),
        case("huge number", post_json("/api/v1/conversations/d:alice:bob/read", a), br#"{"seq":1e400}"#, 400, "bad_request"),
        case("text/plain body", format!("POST /api/v1/messages HTTP/1.1\r\nContent-Type: text/plain\r\nAuthorization: {alice}"), br#"{"to":"bob","cmid":"c","body":"x"}"#, 400, "bad_request"),
        case("no content type", format!("POST /api/v1/messages HTTP/1.1\r\nAuthorization: {alice}"), br#"{"to":"bob","cmid":"c","body":"x"}"#, 400, "bad_request"),
        case("10 MB body", post_json("/api/v1/messages", a), &huge, 413, "too_large"),
        case("10 MB register", post_json("/api/v1/register", None), &huge, 413, "too_large"),
        case("no Authorization", get("/api/v1/me", "").replace("\r\nAuthorization: ", ""), b"", 401, "unauthorized"),
        case("garbage Authorization", get("/api/v1/me", "garbage"), b"", 401, "unauthorized"),
        case("Bearer without token", get("/api/v1/me", "Bearer "), b"", 401, "unauthorized"),
        case("Basic auth", get("/api/v1/me", "Basic YWxpY2U6cHc="), b"", 401, "unauthorized"),
        case("token of dots", get("/api/v1/me", "Bearer ..."), b"", 401, "unauthorized"),
        case("non-ASCII token", "GET /api/v1/me HTTP/1.1\r\nAuthorization: Bearer \u{00e9}\u{00e9}".to_string(), b"", 401, "unauthorized"),
        case("..%2f in a conversation", get("/api/v1/conversations/..%2f..%2fetc%2fpasswd/messages", &alice), b"", 400, "bad_request"),
        case("%00 in a conversation", get("/api/v1/conversations/d:alice:bob%00/messages", &alice), b"", 400, "bad_request"),
        case("%00 in a user", get("/api/v1/users/bob%00/presence", &alice), b"", 404, "not_found"),
        case("..%2f in a group", get("/api/v1/groups/..%2fadmin", &alice), b"", 404, "not_found"),
        case("SQL in a user path", get("/api/v1/users/x'%3BDROP%20TABLE%20users--/presence", &alice), b"", 404, "not_found"),
        case("SQL-shaped username", post_json("/api/v1/register", None), br#"{"username":"robert'); DROP TABLE users;--","password":"correct-horse"}"#, 400, "bad_request"),
        case("unknown route", get("/api/v1/../../etc/passwd", &alice), b"", 404, "not_found"),
        case("wrong method", format!("PUT /api/v1/me HTTP/1.1\r\nAuthorization: {alice}"), b"", 405, "bad_request"),
        Case {
            name: "negative limit",
            head: get("/api/v1/conversations/d:alice:bob/messages?limit=-1", &alice),
            body: Vec::new(),
            status: 400,
            code: None,
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_their_documented_answers() {
    let s = TestServer::start().await;
    // bob exists (provisioned by his token).
    assert_eq!(
        s.http("GET", "/api/v1/me", Some(&token("bob")), None)
            .await
            .0,
        200
    );
    let ack = s
        .http(
            "POST",
            "/api/v1/messages",
            Some(&token("alice")),
            Some(json!({"to":"bob","cmid":"before","body":"kept"})),
        )
        .await;
    assert_eq!(ack.0, 201, "{}", ack.1);
    let all = cases();
    assert!(all.len() >= 20);
    for c in all {
        let (status, body) = raw(s.addr, &c.head, &c.body).await;
        assert_eq!(status, c.status, "{}: {body}", c.name);
        if let Some(code) = c.code {
            assert_eq!(body["error"]["code"], code, "{}: {body}", c.name);
        }
    }
    // SQL-shaped text is stored and returned literally.
    let sql = "'; DROP TABLE messages; -- \" OR 1=1";
    let (status, stored) = s
        .http(
            "POST",
            "/api/v1/messages",
            Some(&token("alice")),
            Some(json!({"to":"bob","cmid":"sql","body":sql,"meta":{"q":"1' OR '1'='1"}})),
        )
        .await;
    assert_eq!(status, 201, "{stored}");
    let (_, page) = s
        .http(
            "GET",
            "/api/v1/conversations/d:alice:bob/messages",
            Some(&token("bob")),
            None,
        )
        .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items[0]["body"], "kept", "the message from before survived");
    assert_eq!(items[1]["body"], sql);
    assert_eq!(items[1]["meta"]["q"], "1' OR '1'='1");
    assert_eq!(s.http("GET", "/healthz", None, None).await.0, 200);
    s.shutdown().await;
}
