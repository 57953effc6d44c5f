//! Hostile WebSocket frames, table-driven: malformed and wrong-typed JSON,
//! 10k-deep nesting, huge numbers, unknown types, binary on a JSON
//! connection, invalid UTF-8, every size limit at one byte under and over,
//! NUL and control characters. Each case asserts the documented answer
//! (docs/protocol.md 5.1, 5.2, 7, 8.2, 9), that its connection stays open or
//! is closed as documented, that the server is healthy afterwards, and that
//! every acked message is in history byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod hostile;

use std::net::SocketAddr;
use std::time::Duration;

use common::{token, TestServer, Ws};
use hostile::{assert_healthy, assert_open, next_event, run_cases, Event};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio_websockets::Message;

/// Defaults of docs/protocol.md section 8.
const MAX_FRAME: usize = 65_536;
const MAX_BODY: usize = 16_384;
const MAX_META: usize = 4_096;
/// Replaced by the case user's notes-to-self conversation.
const SELF: &str = "d:SELF:SELF";

/// What goes on the wire.
#[derive(Clone)]
enum Wire {
    Text(String),
    Binary(Vec<u8>),
    /// A text frame whose payload is not UTF-8 (written raw).
    BadUtf8Text(Vec<u8>),
}

/// The documented answer.
#[derive(Clone)]
enum Expect {
    /// An `error` frame with this code; the connection stays open. With
    /// `Some(id)`, the reply echoes it.
    Error(&'static str, Option<Value>),
    /// `error` `bad_request` with `"close":4000`, then close 4000.
    Fatal,
    /// A close with this code and no error frame.
    Close(u16),
    /// A reply of this type echoing `id`.
    Reply(&'static str, Value),
}

fn text(v: Value) -> Wire {
    Wire::Text(v.to_string())
}

fn raw(s: &str) -> Wire {
    Wire::Text(s.to_owned())
}

fn send(extra: Value) -> Wire {
    let mut f = json!({"type":"send","id":"c","to":"bob","cmid":"c-1","body":"hi"});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            f.as_object_mut().unwrap().remove(k);
        } else {
            f[k] = v.clone();
        }
    }
    text(f)
}

fn err(code: &'static str) -> Expect {
    Expect::Error(code, Some(json!("c")))
}

/// A `ping` padded with an ignored field to exactly `len` bytes.
fn padded_ping(len: usize) -> Wire {
    let empty = r#"{"type":"ping","id":"c","pad":""}"#;
    let pad = "x".repeat(len - empty.len());
    Wire::Text(format!(r#"{{"type":"ping","id":"c","pad":"{pad}"}}"#))
}

fn deep(open: &str, close: &str, depth: usize) -> String {
    format!("{}1{}", open.repeat(depth), close.repeat(depth))
}

fn users(n: usize) -> Value {
    Value::from((0..n).map(|i| format!("user{i:04}")).collect::<Vec<_>>())
}

#[rustfmt::skip]
fn cases() -> Vec<(&'static str, Wire, Expect)> {
    let ping = |id: Value| text(json!({"type":"ping","id":id}));
    let big_meta = |len: usize| format!(r#"{{"p":"{}"}}"#, "m".repeat(len - r#"{"p":""}"#.len()));
    let with_meta = |meta: String| Wire::Text(format!(
        r#"{{"type":"send","id":"c","to":"bob","cmid":"c-1","body":"hi","meta":{meta}}}"#
    ));
    let sync = |extra: Value| {
        let mut f = json!({"type":"sync","id":"c","conv":SELF});
        for (k, v) in extra.as_object().unwrap() { f[k] = v.clone(); }
        text(f)
    };
    let bad = || Expect::Error("bad_request", None);
    vec![
        // Not JSON at all: bad_request + close 4000.
        ("not json", raw("hello"), Expect::Fatal),
        ("truncated object", raw(r#"{"type":"ping","id":"c""#), Expect::Fatal),
        ("trailing garbage", raw(r#"{"type":"ping","id":"c"} x"#), Expect::Fatal),
        ("empty text frame", raw(""), Expect::Fatal),
        ("single quotes", raw("{'type':'ping'}"), Expect::Fatal),
        ("raw control char in string", raw("{\"type\":\"ping\",\"id\":\"a\u{1}b\"}"), Expect::Fatal),
        ("NaN literal", raw(r#"{"type":"ping","id":NaN}"#), Expect::Fatal),
        ("comment", raw(r#"{"type":"ping"} // hi"#), Expect::Fatal),
        ("byte order mark", raw("\u{feff}{\"type\":\"ping\"}"), Expect::Fatal),
        ("binary frame", Wire::Binary(vec![0, 159, 146, 150]), Expect::Fatal),
        ("binary frame holding JSON", Wire::Binary(br#"{"type":"ping","id":1}"#.to_vec()), Expect::Fatal),
        // JSON, but not a valid frame: bad_request, the connection stays open.
        ("unknown type", text(json!({"type":"launch","id":"c"})), err("bad_request")),
        ("missing type", text(json!({"id":"c"})), err("bad_request")),
        ("type is a number", text(json!({"type":7,"id":"c"})), err("bad_request")),
        ("type is null", text(json!({"type":null,"id":"c"})), err("bad_request")),
        ("type in upper case", text(json!({"type":"PING","id":"c"})), err("bad_request")),
        ("top-level array", raw("[1,2]"), bad()),
        ("top-level null", raw("null"), bad()),
        ("top-level string", raw(r#""ping""#), bad()),
        ("top-level number", raw("12"), bad()),
        ("id is an object", text(json!({"type":"ping","id":{"a":1}})), bad()),
        ("id is a boolean", text(json!({"type":"ping","id":true})), bad()),
        ("id is 1e400", raw(r#"{"type":"ping","id":1e400}"#), bad()),
        ("10k-deep array in a field", Wire::Text(format!(r#"{{"type":"ping","id":"c","x":{}}}"#, deep("[", "]", 10_000))), bad()),
        ("10k-deep object in meta", with_meta(deep(r#"{"a":"#, "}", 10_000)), bad()),
        ("32k-deep top-level array", Wire::Text(deep("[", "]", 32_000)), bad()),
        ("send without cmid", send(json!({"cmid":null})), err("bad_request")),
        ("send without body", send(json!({"body":null})), err("bad_request")),
        ("body is a number", send(json!({"body":5})), err("bad_request")),
        ("body is an object", send(json!({"body":{"a":1}})), err("bad_request")),
        ("to is a number", send(json!({"to":42})), err("bad_request")),
        ("to is an array", send(json!({"to":["bob"]})), err("bad_request")),
        ("both to and conv", send(json!({"conv":"d:bob:bob"})), err("bad_request")),
        ("neither to nor conv", send(json!({"to":null})), err("bad_request")),
        ("conv with unknown prefix", send(json!({"to":null,"conv":"x:bob"})), err("bad_request")),
        ("conv in wrong order", send(json!({"to":null,"conv":"d:zzzz:aaaa"})), err("bad_request")),
        ("conv with a bad username", send(json!({"to":null,"conv":"d:Alice:bob"})), err("bad_request")),
        ("conv path traversal", send(json!({"to":null,"conv":"d:../..:etc"})), err("bad_request")),
        ("empty cmid", send(json!({"cmid":""})), err("bad_request")),
        ("cmid of 65 characters", send(json!({"cmid":"k".repeat(65)})), err("bad_request")),
        ("cmid of 65 emoji", send(json!({"cmid":"😀".repeat(65)})), err("bad_request")),
        ("cmid is a number", send(json!({"cmid":17})), err("bad_request")),
        ("unknown kind", send(json!({"kind":"html"})), err("bad_request")),
        ("kind system", send(json!({"kind":"system"})), err("forbidden")),
        ("meta is an array", send(json!({"meta":[1]})), err("bad_request")),
        ("meta is a string", send(json!({"meta":"x"})), err("bad_request")),
        ("meta is a number", send(json!({"meta":1})), err("bad_request")),
        ("NUL in body", send(json!({"body":"a\u{0}b"})), err("bad_request")),
        ("NUL in cmid", send(json!({"cmid":"c\u{0}"})), err("bad_request")),
        ("lone surrogate in body", raw(r#"{"type":"send","id":"c","to":"bob","cmid":"c-1","body":"\ud800"}"#), bad()),
        ("body one byte over", send(json!({"body":"b".repeat(MAX_BODY + 1)})), err("too_large")),
        ("4-byte body one byte over", send(json!({"body":format!("{}a", "😀".repeat(MAX_BODY / 4))})), err("too_large")),
        ("meta one byte over", with_meta(big_meta(MAX_META + 1)), err("too_large")),
        ("to an unknown user", send(json!({"to":"nobody-here"})), err("not_found")),
        ("to a reserved name", send(json!({"to":"system"})), err("not_found")),
        ("to an unknown group", send(json!({"to":null,"conv":"g:nosuchgroup"})), err("not_found")),
        ("to a conversation of others", send(json!({"to":null,"conv":"d:bob:carol"})), err("forbidden")),
        ("sync limit 0", sync(json!({"limit":0})), err("bad_request")),
        ("sync limit -5", sync(json!({"limit":-5})), err("bad_request")),
        ("sync limit 1.5", sync(json!({"limit":1.5})), err("bad_request")),
        ("sync after and before", sync(json!({"after":1,"before":5})), err("bad_request")),
        ("sync after -1", sync(json!({"after":-1})), err("bad_request")),
        ("sync after is a string", sync(json!({"after":"1"})), err("bad_request")),
        ("sync after 1e400", raw(r#"{"type":"sync","id":"c","conv":"d:bob:bob","after":1e400}"#), bad()),
        ("sync after beyond u64", raw(r#"{"type":"sync","id":"c","conv":"d:bob:bob","after":99999999999999999999999}"#), bad()),
        ("sync a conversation of others", text(json!({"type":"sync","id":"c","conv":"d:bob:carol"})), err("forbidden")),
        ("read seq is a string", text(json!({"type":"read","id":"c","conv":SELF,"seq":"1"})), err("bad_request")),
        ("read seq -1", text(json!({"type":"read","id":"c","conv":SELF,"seq":-1})), err("bad_request")),
        ("read a conversation of others", text(json!({"type":"read","id":"c","conv":"d:bob:carol","seq":1})), err("forbidden")),
        ("typing in a conversation of others", text(json!({"type":"typing","id":"c","conv":"d:bob:carol"})), err("forbidden")),
        ("presence_sub users not a list", text(json!({"type":"presence_sub","id":"c","users":"bob"})), err("bad_request")),
        ("presence_sub a bad username", text(json!({"type":"presence_sub","id":"c","users":["Bob!"]})), err("bad_request")),
        ("presence_sub a 33-char name", text(json!({"type":"presence_sub","id":"c","users":["u".repeat(33)]})), err("bad_request")),
        ("presence_sub 1001 users", text(json!({"type":"presence_sub","id":"c","users":users(1001)})), err("too_large")),
        ("auth twice", text(json!({"type":"auth","id":"c","token":token("bob")})), err("bad_request")),
        // Valid at the edge: answered normally.
        ("frame of exactly max_frame_bytes", padded_ping(MAX_FRAME), Expect::Reply("pong", json!("c"))),
        ("frame one byte over max_frame_bytes", padded_ping(MAX_FRAME + 1), Expect::Close(1009)),
        ("presence_sub 1000 users", text(json!({"type":"presence_sub","id":"c","users":users(1000)})), Expect::Reply("presence", json!("c"))),
        ("presence_sub a 32-char name", text(json!({"type":"presence_sub","id":"c","users":["u".repeat(32)]})), Expect::Reply("presence", json!("c"))),
        ("sync limit 501 is clamped", sync(json!({"limit":501})), Expect::Reply("messages", json!("c"))),
        ("sync after u64::MAX", sync(json!({"after":u64::MAX})), Expect::Reply("messages", json!("c"))),
        ("read seq u64::MAX is clamped", text(json!({"type":"read","id":"c","conv":SELF,"seq":u64::MAX})), Expect::Reply("ok", json!("c"))),
        ("unknown extra fields", text(json!({"type":"ping","id":"c","x":{"y":[1,2]}})), Expect::Reply("pong", json!("c"))),
        ("numeric id keeps its form", ping(json!(-1.5)), Expect::Reply("pong", json!(-1.5))),
        ("string id of digits stays a string", ping(json!("7")), Expect::Reply("pong", json!("7"))),
        ("id with emoji and escapes", ping(json!("ä😀\u{200b}\"\\")), Expect::Reply("pong", json!("ä😀\u{200b}\"\\"))),
    ]
}

async fn open(addr: SocketAddr, user: &str) -> Ws {
    let mut ws = Ws::open(&format!("ws://{addr}/ws"), Some(&token(user))).await;
    assert_eq!(ws.recv().await["type"], "auth_ok");
    ws
}

async fn put(ws: &mut Ws, wire: Wire) {
    match wire {
        Wire::Text(t) => ws.send_raw(Message::text(t)).await,
        Wire::Binary(b) => ws.send_raw(Message::binary(b)).await,
        Wire::BadUtf8Text(payload) => {
            let frame = raw_frame(0x1, &payload);
            let sock = ws.inner.get_mut();
            sock.write_all(&frame).await.unwrap();
            sock.flush().await.unwrap();
        }
    }
}

/// A final, masked client frame (RFC 6455 5.2).
fn raw_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

async fn run_one(addr: SocketAddr, user: String, wire: Wire, expect: Expect) {
    let mut ws = open(addr, &user).await;
    let wire = match wire {
        Wire::Text(t) => Wire::Text(t.replace(SELF, &format!("d:{user}:{user}"))),
        other => other,
    };
    put(&mut ws, wire).await;
    let wait = Duration::from_secs(15);
    match expect {
        Expect::Error(code, id) => {
            let Event::Frame(f) = next_event(&mut ws, wait).await else {
                panic!("closed instead of an error")
            };
            assert_eq!(
                (f["type"].as_str(), f["code"].as_str()),
                (Some("error"), Some(code)),
                "{f}"
            );
            assert!(f.get("close").is_none(), "error closes: {f}");
            assert!(f["message"].is_string(), "{f}");
            if let Some(id) = id {
                assert_eq!(f["id"], id, "id not echoed: {f}");
            }
            assert_open(&mut ws, &user).await;
        }
        Expect::Reply(ty, id) => {
            let Event::Frame(f) = next_event(&mut ws, wait).await else {
                panic!("closed instead of {ty}")
            };
            assert_eq!((f["type"].as_str(), &f["id"]), (Some(ty), &id), "{f}");
            assert_open(&mut ws, &user).await;
        }
        Expect::Fatal => {
            let f = match next_event(&mut ws, wait).await {
                Event::Frame(f) => f,
                other => panic!("no error frame before the close: {other:?}"),
            };
            assert_eq!(f["code"], "bad_request", "{f}");
            assert_eq!(f["close"], 4000, "{f}");
            let e = next_event(&mut ws, wait).await;
            assert!(
                matches!(e, Event::Close(4000)),
                "expected close 4000, got {e:?}"
            );
        }
        Expect::Close(code) => {
            let e = next_event(&mut ws, wait).await;
            assert!(
                matches!(e, Event::Close(c) if c == code),
                "expected close {code}, got {e:?}"
            );
        }
    }
    // The same user gets a working session again.
    let mut again = open(addr, &user).await;
    assert_open(&mut again, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_frames_get_their_documented_answers() {
    let s = TestServer::start().await;
    let addr = s.addr;
    for u in ["bob", "carol"] {
        drop(open(addr, u).await);
    }
    let cases = cases()
        .into_iter()
        .enumerate()
        .map(|(i, (name, wire, expect))| {
            (
                name.to_owned(),
                run_one(addr, format!("wcase{i:03}"), wire, expect),
            )
        })
        .collect();
    run_cases(cases).await;
    assert_healthy(addr).await;
    // Nothing refused was stored: bob's conversations with the senders are empty.
    let (status, convs) = s
        .http("GET", "/api/v1/conversations", Some(&token("bob")), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(convs["items"], json!([]), "a refused send was stored");
    s.shutdown().await;
}

/// WebSocket protocol violations the WebSocket layer answers itself, as
/// RFC 6455 requires, before any frame decoding (docs/protocol.md 8.2).
#[rustfmt::skip]
fn known_bug_cases() -> Vec<(&'static str, Wire, Expect)> {
    vec![
        // RFC 6455 §8.1: invalid UTF-8 in a text frame fails the connection
        // with 1007 (no error frame can follow a Close).
        ("invalid UTF-8 in a text frame", Wire::BadUtf8Text(b"{\"type\":\"ping\",\"id\":\"\xff\xfe\"}".to_vec()), Expect::Close(1007)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_bugs_get_their_documented_answers() {
    let s = TestServer::start().await;
    drop(open(s.addr, "bob").await);
    let cases = known_bug_cases()
        .into_iter()
        .enumerate()
        .map(|(i, (name, wire, expect))| {
            (
                name.to_owned(),
                run_one(s.addr, format!("wbug{i:03}"), wire, expect),
            )
        })
        .collect();
    run_cases(cases).await;
    assert_healthy(s.addr).await;
    s.shutdown().await;
}

/// A 30-digit numeric `id` comes back in the same form, digit for digit
/// (docs/protocol.md 5.1: "7 comes back as 7").
#[tokio::test]
async fn a_huge_numeric_id_is_echoed_digit_for_digit() {
    use futures_util::StreamExt;
    let s = TestServer::start().await;
    let mut ws = open(s.addr, "bigid").await;
    let digits = "123456789012345678901234567890";
    put(&mut ws, raw(&format!(r#"{{"type":"ping","id":{digits}}}"#))).await;
    let m = ws.inner.next().await.unwrap().unwrap();
    let t = m.as_text().unwrap();
    assert!(t.contains(&format!(r#""id":{digits}"#)), "{t}");
    assert_open(&mut ws, "bigid").await;
    s.shutdown().await;
}

/// The number of hostile frame cases (the suite counts them).
#[test]
fn case_count() {
    let n = cases().len() + known_bug_cases().len();
    assert!(n >= 80, "{n}");
}
