//! Hostile HTTP requests, table-driven: bad JSON, wrong content types,
//! bodies at 64 KiB and one byte over, 10 MB bodies (sized and chunked),
//! garbage `Authorization`, `..%2f` and `%00` in path parameters and
//! queries, every account and group size limit at its edge, and SQL-shaped
//! names and bodies stored literally (docs/protocol.md 2.1, 3.2, 11, 13.3).
//! Each case asserts its status and error code; afterwards the server is
//! healthy and every acked message is in history.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod hostile;

use std::net::SocketAddr;

use common::{token, TestServer};
use hostile::{assert_acked_stored, assert_healthy, history, raw_http, request, run_cases};
use serde_json::{json, Value};

const JSON: (&str, &str) = ("Content-Type", "application/json");
const TEN_MB: usize = 10 * 1024 * 1024;

fn bearer(user: &str) -> String {
    format!("Bearer {}", token(user))
}

fn post(path: &str, body: &[u8]) -> Vec<u8> {
    request("POST", path, &[JSON], body)
}

fn as_alice(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    request(
        method,
        path,
        &[JSON, ("Authorization", &bearer("alice"))],
        body,
    )
}

fn get(path: &str) -> Vec<u8> {
    as_alice("GET", path, b"")
}

fn me_with(auth: &[u8]) -> Vec<u8> {
    let mut r =
        b"GET /api/v1/me HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: ".to_vec();
    r.extend_from_slice(auth);
    r.extend_from_slice(b"\r\n\r\n");
    r
}

fn register(name: &str, password: &str) -> Vec<u8> {
    post(
        "/api/v1/register",
        json!({"username": name, "password": password})
            .to_string()
            .as_bytes(),
    )
}

fn message(extra: Value) -> Vec<u8> {
    let mut m = json!({"to":"bob","cmid":"h-1","body":"hi"});
    for (k, v) in extra.as_object().unwrap() {
        m[k] = v.clone();
    }
    as_alice("POST", "/api/v1/messages", m.to_string().as_bytes())
}

/// A POST /api/v1/messages of exactly `len` bytes (a padding field).
fn message_of_len(len: usize, cmid: &str) -> Vec<u8> {
    let empty = json!({"to":"bob","cmid":cmid,"body":"x","pad":""}).to_string();
    let pad = "p".repeat(len - empty.len());
    as_alice(
        "POST",
        "/api/v1/messages",
        json!({"to":"bob","cmid":cmid,"body":"x","pad":pad})
            .to_string()
            .as_bytes(),
    )
}

fn chunked(path: &str, total: usize) -> Vec<u8> {
    let mut r = format!("POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").into_bytes();
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..total / chunk.len() {
        r.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        r.extend_from_slice(&chunk);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\n\r\n");
    r
}

#[rustfmt::skip]
fn cases() -> Vec<(&'static str, Vec<u8>, u16, Option<&'static str>)> {
    let reg = "/api/v1/register";
    let hist = "/api/v1/conversations/d:alice:bob/messages";
    let sql_pw = "p' OR '1'='1'; --";
    vec![
        // Bodies: bad JSON and content types.
        ("truncated JSON", post(reg, br#"{"username":"#), 400, Some("bad_request")),
        ("JSON array body", post(reg, b"[1,2]"), 400, Some("bad_request")),
        ("wrong field types", post(reg, br#"{"username":5,"password":true}"#), 400, Some("bad_request")),
        ("empty body", post(reg, b""), 400, Some("bad_request")),
        ("invalid UTF-8 body", post(reg, b"{\"username\":\"\xff\xfe\",\"password\":\"12345678\"}"), 400, Some("bad_request")),
        ("10k-deep JSON body", post(reg, format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).as_bytes()), 400, Some("bad_request")),
        ("text/plain content type", request("POST", reg, &[("Content-Type", "text/plain")], br#"{"username":"tplain","password":"12345678"}"#), 400, Some("bad_request")),
        ("no content type", request("POST", reg, &[], br#"{"username":"nctype","password":"12345678"}"#), 400, Some("bad_request")),
        ("text/plain on /messages", request("POST", "/api/v1/messages", &[("Content-Type", "text/plain"), ("Authorization", &bearer("alice"))], br#"{"to":"bob","cmid":"h-tp","body":"x"}"#), 400, Some("bad_request")),
        ("no content type on /messages", request("POST", "/api/v1/messages", &[("Authorization", &bearer("alice"))], br#"{"to":"bob","cmid":"h-nc","body":"x"}"#), 400, Some("bad_request")),
        ("huge number in a body", as_alice("POST", "/api/v1/conversations/d:alice:bob/read", br#"{"seq":1e400}"#), 400, Some("bad_request")),
        ("XML content type", request("POST", reg, &[("Content-Type", "application/xml")], b"<a/>"), 400, Some("bad_request")),
        ("JSON with a charset", request("POST", reg, &[("Content-Type", "application/json; charset=utf-8")], br#"{"username":"charset1","password":"12345678"}"#), 201, None),
        // Sizes: 64 KiB bodies, 10 MB bodies.
        ("request body of exactly 64 KiB", message_of_len(64 * 1024, "h-64k"), 201, None),
        ("request body one byte over 64 KiB", message_of_len(64 * 1024 + 1, "h-64k1"), 413, Some("too_large")),
        ("10 MB body with Content-Length", post(reg, &vec![b' '; TEN_MB]), 413, Some("too_large")),
        ("10 MB message body", as_alice("POST", "/api/v1/messages", &vec![b' '; TEN_MB]), 413, Some("too_large")),
        ("10 MB chunked body", chunked(reg, TEN_MB), 413, Some("too_large")),
        // Message rules over HTTP.
        ("body of exactly max_body_bytes", message(json!({"cmid":"h-16k","body":"b".repeat(16_384)})), 201, None),
        ("body one byte over", message(json!({"cmid":"h-16k1","body":"b".repeat(16_385)})), 413, Some("too_large")),
        ("meta one byte over", message(json!({"cmid":"h-m1","meta":{"p":"m".repeat(4_097 - 8)}})), 413, Some("too_large")),
        ("meta of exactly 4096 bytes", message(json!({"cmid":"h-m0","meta":{"p":"m".repeat(4_096 - 8)}})), 201, None),
        ("NUL in body", message(json!({"cmid":"h-nul","body":"a\u{0}b"})), 400, Some("bad_request")),
        ("kind system", message(json!({"cmid":"h-sys","kind":"system"})), 403, Some("forbidden")),
        ("to an unknown user", message(json!({"cmid":"h-unk","to":"nobody-here"})), 404, Some("not_found")),
        ("cmid of 65 characters", message(json!({"cmid":"k".repeat(65)})), 400, Some("bad_request")),
        // Garbage Authorization.
        ("no Authorization", request("GET", "/api/v1/me", &[], b""), 401, Some("unauthorized")),
        ("Bearer without a token", me_with(b"Bearer"), 401, Some("unauthorized")),
        ("Bearer and spaces", me_with(b"Bearer    "), 401, Some("unauthorized")),
        ("Basic credentials", me_with(b"Basic dXNlcjpwYXNzd29yZA=="), 401, Some("unauthorized")),
        ("three dots of junk", me_with(b"Bearer a.b.c"), 401, Some("unauthorized")),
        ("8 KB of junk", me_with(format!("Bearer {}", "A".repeat(8 * 1024)).as_bytes()), 401, Some("unauthorized")),
        ("non-ASCII bytes", me_with(b"Bearer \xff\xfe\xfd"), 401, Some("unauthorized")),
        ("two tokens", me_with(format!("Bearer {} {}", token("alice"), token("bob")).as_bytes()), 401, Some("unauthorized")),
        ("valid token, wrong scheme", me_with(format!("Token {}", token("alice")).as_bytes()), 401, Some("unauthorized")),
        ("scheme in lower case", me_with(format!("bearer {}", token("alice")).as_bytes()), 200, None),
        // Path parameters and queries.
        ("conv ..%2f traversal", get("/api/v1/conversations/..%2f..%2fetc%2fpasswd/messages"), 400, Some("bad_request")),
        ("conv with %00", get("/api/v1/conversations/d:alice:bob%00/messages"), 400, Some("bad_request")),
        ("conv only %00", get("/api/v1/conversations/%00/messages"), 400, Some("bad_request")),
        ("group conv ..%2f", get("/api/v1/conversations/g:..%2f..%2f/messages"), 400, Some("bad_request")),
        ("read on a ..%2f conv", as_alice("POST", "/api/v1/conversations/d:alice:bob%2f..%2f/read", br#"{"seq":1}"#), 400, Some("bad_request")),
        ("percent-encoded colons", get("/api/v1/conversations/d%3Aalice%3Abob/messages"), 200, None),
        ("presence of ..%2fadmin", get("/api/v1/users/..%2fadmin/presence"), 404, Some("not_found")),
        ("presence of bob%00", get("/api/v1/users/bob%00/presence"), 404, Some("not_found")),
        ("presence of %2e%2e", get("/api/v1/users/%2e%2e/presence"), 404, Some("not_found")),
        ("SQL in a user path", get("/api/v1/users/x'%3BDROP%20TABLE%20users--/presence"), 404, Some("not_found")),
        ("group ..%2f..%2f", get("/api/v1/groups/..%2f..%2f"), 404, Some("not_found")),
        ("group with %00", get("/api/v1/groups/x%00y"), 404, Some("not_found")),
        ("raw ../ in the path", get("/api/v1/../../etc/passwd"), 404, Some("not_found")),
        ("limit=abc", get(&format!("{hist}?limit=abc")), 400, Some("bad_request")),
        ("limit beyond i64", get(&format!("{hist}?limit=99999999999999999999")), 400, Some("bad_request")),
        ("limit=0", get(&format!("{hist}?limit=0")), 400, Some("bad_request")),
        ("after=-1", get(&format!("{hist}?after=-1")), 400, Some("bad_request")),
        ("after=%00", get(&format!("{hist}?after=%00")), 400, Some("bad_request")),
        ("after and before", get(&format!("{hist}?after=1&before=5")), 400, Some("bad_request")),
        ("read seq a string", as_alice("POST", "/api/v1/conversations/d:alice:bob/read", br#"{"seq":"x"}"#), 400, Some("bad_request")),
        ("read seq -1", as_alice("POST", "/api/v1/conversations/d:alice:bob/read", br#"{"seq":-1}"#), 400, Some("bad_request")),
        ("unknown route", get("/api/v1/nope"), 404, Some("not_found")),
        ("wrong method", as_alice("DELETE", "/api/v1/me", b""), 405, Some("bad_request")),
        // Account and group limits at their edges; SQL-shaped input.
        ("username of 32 characters", register(&"u".repeat(32), "12345678"), 201, None),
        ("username of 33 characters", register(&"u".repeat(33), "12345678"), 400, Some("bad_request")),
        ("username of 2 characters", register("ab", "12345678"), 400, Some("bad_request")),
        ("username of 3 characters", register("abc", "12345678"), 201, None),
        ("password of 7 characters", register("pw7user", "1234567"), 400, Some("bad_request")),
        ("password of 8 emoji", register("pw8user", &"😀".repeat(8)), 201, None),
        ("password of 128 characters", register("pw128user", &"p".repeat(128)), 201, None),
        ("password of 129 characters", register("pw129user", &"p".repeat(129)), 400, Some("bad_request")),
        ("reserved username", register("system", "12345678"), 400, Some("bad_request")),
        ("SQL-shaped username", register("robert'); DROP TABLE users;--", "12345678"), 400, Some("bad_request")),
        ("SQL-shaped login", post("/api/v1/login", json!({"username":"' OR '1'='1","password":"' OR '1'='1"}).to_string().as_bytes()), 401, Some("unauthorized")),
        ("SQL-shaped password", register("sqlpw", sql_pw), 201, None),
        ("group name of 100 characters", as_alice("POST", "/api/v1/groups", json!({"name":"n".repeat(100),"members":["bob"]}).to_string().as_bytes()), 201, None),
        ("group name of 101 characters", as_alice("POST", "/api/v1/groups", json!({"name":"n".repeat(101),"members":["bob"]}).to_string().as_bytes()), 400, Some("bad_request")),
        ("group name of spaces only", as_alice("POST", "/api/v1/groups", json!({"name":"   ","members":[]}).to_string().as_bytes()), 400, Some("bad_request")),
        ("SQL-shaped group member", as_alice("POST", "/api/v1/groups", json!({"name":"g","members":["x' OR '1'='1"]}).to_string().as_bytes()), 404, Some("not_found")),
    ]
}

async fn run_one(addr: SocketAddr, req: Vec<u8>, status: u16, code: Option<&'static str>) {
    let a = raw_http(addr, req).await;
    match code {
        Some(code) => a.assert_error(status, code, "answer"),
        None => assert_eq!(
            a.status,
            status,
            "{}\n{}",
            a.head,
            String::from_utf8_lossy(&a.body)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_requests_get_their_documented_answers() {
    let s = TestServer::start().await;
    let addr = s.addr;
    for u in ["alice", "bob"] {
        assert_eq!(
            s.http("GET", "/api/v1/me", Some(&token(u)), None).await.0,
            200
        );
    }
    let cases = cases()
        .into_iter()
        .map(|(name, req, status, code)| (name.to_owned(), run_one(addr, req, status, code)))
        .collect();
    run_cases(cases).await;
    // The SQL-shaped password is a password like any other.
    let login = |pw: &str| {
        post(
            "/api/v1/login",
            json!({"username":"sqlpw","password":pw})
                .to_string()
                .as_bytes(),
        )
    };
    assert_eq!(raw_http(addr, login("p' OR '1'='1'; --")).await.status, 200);
    assert_eq!(raw_http(addr, login("' OR '1'='1")).await.status, 401);
    assert_healthy(addr).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_shaped_input_is_stored_literally() {
    let s = TestServer::start().await;
    let addr = s.addr;
    let alice = token("alice");
    assert_eq!(
        s.http("GET", "/api/v1/me", Some(&token("bob")), None)
            .await
            .0,
        200
    );
    let shapes = [
        "'); DROP TABLE messages; --",
        "\"; DELETE FROM users WHERE '1'='1",
        "1; UPDATE conv_members SET role='owner'",
        "%' UNION SELECT password_hash FROM users --",
        "\\'; SELECT pg_sleep(10); --",
    ];
    let mut acks = Vec::new();
    for (i, body) in shapes.iter().enumerate() {
        let cmid = format!("{body}-{i}");
        let msg = json!({"to":"bob","cmid":cmid,"body":body,"meta":{"q":body}});
        let (status, ack) = s
            .http("POST", "/api/v1/messages", Some(&alice), Some(msg.clone()))
            .await;
        assert_eq!(status, 201, "{ack}");
        // The repeat answers 200 with the original ack.
        let (status, again) = s
            .http("POST", "/api/v1/messages", Some(&alice), Some(msg))
            .await;
        assert_eq!((status, &again["mid"]), (200, &ack["mid"]), "{again}");
        acks.push(ack);
    }
    assert_acked_stored(addr, "bob", "d:alice:bob", &acks).await;
    let items = history(addr, "bob", "d:alice:bob").await;
    assert_eq!(items.len(), shapes.len());
    for (m, body) in items.iter().zip(shapes) {
        assert_eq!(m["body"], body);
        assert_eq!(m["meta"]["q"], body);
    }
    let name = "x'); DELETE FROM groups; --";
    let (status, g) = s
        .http(
            "POST",
            "/api/v1/groups",
            Some(&alice),
            Some(json!({"name":name,"members":["bob"]})),
        )
        .await;
    assert_eq!(status, 201, "{g}");
    let (status, shown) = s
        .http(
            "GET",
            &format!("/api/v1/groups/{}", g["id"].as_str().unwrap()),
            Some(&token("bob")),
            None,
        )
        .await;
    assert_eq!(
        (status, shown["name"].as_str()),
        (200, Some(name)),
        "{shown}"
    );
    assert_healthy(addr).await;
    s.shutdown().await;
}
