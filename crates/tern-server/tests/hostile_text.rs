//! Hostile text that must be stored and returned byte for byte: RTL and
//! bidi controls, zero-width and combining characters, emoji sequences,
//! control characters, noncharacters, escapes, and every size limit at
//! exactly its value (docs/protocol.md 3.2: body in bytes, cmid in
//! characters, meta kept exactly as sent). Each case checks the ack, the
//! push to the sender's other session, `sync`, HTTP history, and that an
//! idempotent repeat returns the original ack and stores nothing new.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod hostile;

use std::net::SocketAddr;

use common::{token, TestServer, Ws};
use hostile::{assert_acked_stored, assert_healthy, history, run_cases};
use serde_json::{json, Value};
use tokio_websockets::Message;

/// One round trip: the JSON text of `body` as sent, the body the server
/// must store, and optional cmid / raw meta / kind.
#[derive(Clone)]
struct Case {
    body_json: String,
    body: String,
    cmid: Option<String>,
    meta: Option<String>,
    kind: &'static str,
}

fn body(s: &str) -> Case {
    Case {
        body_json: serde_json::to_string(s).unwrap(),
        body: s.to_owned(),
        cmid: None,
        meta: None,
        kind: "text",
    }
}

/// A body sent as the literal JSON text `json`, stored as `decoded`.
fn escaped(json: &str, decoded: &str) -> Case {
    Case {
        body_json: json.to_owned(),
        ..body(decoded)
    }
}

fn with_cmid(cmid: &str) -> Case {
    Case {
        cmid: Some(cmid.to_owned()),
        ..body("cmid case")
    }
}

fn with_meta(meta: &str) -> Case {
    Case {
        meta: Some(meta.to_owned()),
        ..body("meta case")
    }
}

#[rustfmt::skip]
fn cases() -> Vec<(&'static str, Case)> {
    let meta_of = |len: usize| format!(r#"{{"p":"{}"}}"#, "m".repeat(len - r#"{"p":""}"#.len()));
    vec![
        ("Arabic and Hebrew", body("مرحبا بالعالم — שלום עולם")),
        ("right-to-left override", body("\u{202E}gnp.exe\u{202C} invoice")),
        ("bidi marks and isolates", body("a\u{200E}b\u{200F}c\u{2066}d\u{2067}e\u{2068}f\u{2069}")),
        ("zero-width characters", body("a\u{200B}b\u{200C}c\u{200D}d\u{FEFF}e\u{2060}f\u{180E}")),
        ("ZWJ family emoji", body("👨\u{200D}👩\u{200D}👧\u{200D}👦")),
        ("flags, skin tones, keycaps", body("🇺🇳🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F} 👍🏽 1\u{FE0F}\u{20E3}")),
        ("combining vs precomposed", body("e\u{0301} é \u{1100}\u{1161}\u{11A8} 각")),
        ("zalgo", body(&format!("Z{}", "\u{0336}\u{0321}\u{032A}\u{0353}".repeat(200)))),
        ("astral and CJK", body("𝕏𝔸𝟘 𓀀 漢字 かな カナ 한국어 𠜎")),
        ("control characters", body(&(1u8..0x20).map(char::from).chain(['\u{7f}', '\u{85}']).collect::<String>())),
        ("line and paragraph separators", body("a\u{2028}b\u{2029}c")),
        ("noncharacters", body("\u{FFFE}\u{FFFF}\u{FDD0}\u{10FFFF}\u{1FFFE}")),
        ("replacement character", body("\u{FFFD}\u{FFFD}")),
        ("escaped surrogate pair", escaped(r#""\ud83d\ude00 \u00e9""#, "😀 é")),
        ("every JSON escape", escaped(r#""\"\\\/\b\f\n\r\t""#, "\"\\/\u{8}\u{c}\n\r\t")),
        ("whitespace only", body(" \t\n\r  ")),
        ("empty body", body("")),
        ("HTML and script", body("<script>alert('x')</script><img src=x onerror=alert(1)>&amp;")),
        ("SQL-shaped body", body("'); DROP TABLE messages; -- \" OR 1=1; /*")),
        ("format strings", body("%s%n%x{0}${jndi:ldap://x/a}{{7*7}}")),
        ("e2e ciphertext", Case { kind: "e2e", ..body("AAECAwQFBgcICQ==.opaque+/=") }),
        ("unicode cmid", with_cmid("ç-😀-\u{200B}-\u{202E}-مرحبا")),
        ("SQL-shaped cmid", with_cmid("1' OR '1'='1")),
        ("meta kept byte for byte", with_meta(r#"{"rtl":"مرحبا","esc":"\u00e9\u200b","n":1e2,"f":1.0,"big":123456789012345678901234567890}"#)),
        ("meta with whitespace and repeated keys", with_meta("{ \"a\" : 1 ,\n\t\"a\" : [ ] }")),
        // Every size limit exactly at its value is accepted.
        ("body of exactly max_body_bytes", body(&"b".repeat(16_384))),
        ("body of 4096 4-byte characters", body(&"😀".repeat(4_096))),
        ("body of 8192 escaped 2-byte characters", escaped(&format!("\"{}\"", r"\u00e9".repeat(8_192)), &"é".repeat(8_192))),
        ("meta of exactly 4096 bytes", with_meta(&meta_of(4_096))),
        ("cmid of exactly 64 characters", with_cmid(&"k".repeat(64))),
        ("cmid of 64 emoji", with_cmid(&"😀".repeat(64))),
    ]
}

async fn open(addr: SocketAddr, user: &str) -> Ws {
    let mut ws = Ws::open(&format!("ws://{addr}/ws"), Some(&token(user))).await;
    assert_eq!(ws.recv().await["type"], "auth_ok");
    ws
}

/// The next text frame, raw.
async fn recv_text(ws: &mut Ws) -> String {
    use futures_util::StreamExt;
    loop {
        let m = tokio::time::timeout(common::WAIT, ws.inner.next())
            .await
            .expect("timed out")
            .expect("ended")
            .expect("ws error");
        if let Some(t) = m.as_text() {
            return t.to_owned();
        }
    }
}

fn send_text(id: u32, cmid: &str, c: &Case, body_json: &str, user: &str) -> String {
    let meta = c
        .meta
        .as_ref()
        .map(|m| format!(r#","meta":{m}"#))
        .unwrap_or_default();
    format!(
        r#"{{"type":"send","id":{id},"to":"{user}","cmid":{},"kind":"{}","body":{body_json}{meta}}}"#,
        serde_json::to_string(cmid).unwrap(),
        c.kind
    )
}

async fn round_trip(addr: SocketAddr, user: String, c: Case) {
    let mut a = open(addr, &user).await;
    let mut b = open(addr, &user).await;
    let cmid = c.cmid.clone().unwrap_or_else(|| format!("rt-{user}"));
    let conv = format!("d:{user}:{user}");
    a.send_raw(Message::text(send_text(1, &cmid, &c, &c.body_json, &user)))
        .await;
    let ack: Value = serde_json::from_str(&recv_text(&mut a).await).unwrap();
    assert_eq!(
        (ack["type"].as_str(), &ack["id"]),
        (Some("ack"), &json!(1)),
        "{ack}"
    );
    assert_eq!(ack["conv"], conv);

    // The sender's other session gets the push, exactly as sent.
    let raw_push = recv_text(&mut b).await;
    let push: Value = serde_json::from_str(&raw_push).unwrap();
    assert_eq!(push["type"], "msg", "{push}");
    check_message(&push, &raw_push, &c, &cmid, &ack);

    // sync and HTTP history return it the same way.
    a.send(json!({"type":"sync","id":2,"conv":conv,"after":0}))
        .await;
    let raw_page = recv_text(&mut a).await;
    let page: Value = serde_json::from_str(&raw_page).unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    check_message(&items[0], &raw_page, &c, &cmid, &ack);
    let stored = history(addr, &user, &conv).await;
    assert_eq!(stored[0]["body"].as_str(), Some(c.body.as_str()));

    // A repeat of the cmid with another body gets the original ack.
    a.send_raw(Message::text(send_text(3, &cmid, &c, r#""other""#, &user)))
        .await;
    let again: Value = serde_json::from_str(&recv_text(&mut a).await).unwrap();
    assert_eq!(again["type"], "ack", "{again}");
    for k in ["conv", "seq", "mid", "ts"] {
        assert_eq!(again[k], ack[k], "repeat changed {k}");
    }
    assert_acked_stored(addr, &user, &conv, &[ack]).await;
    assert_eq!(history(addr, &user, &conv).await.len(), 1, "repeat stored");
}

fn check_message(m: &Value, raw: &str, c: &Case, cmid: &str, ack: &Value) {
    assert_eq!(m["body"].as_str(), Some(c.body.as_str()), "body changed");
    assert_eq!(m["cmid"].as_str(), Some(cmid), "cmid changed");
    assert_eq!(m["kind"], c.kind);
    assert_eq!((&m["seq"], &m["mid"]), (&ack["seq"], &ack["mid"]));
    match &c.meta {
        Some(meta) => assert!(
            raw.contains(&format!(r#""meta":{meta}"#)),
            "meta not kept byte for byte: {raw}"
        ),
        None => assert!(m.get("meta").is_none(), "{m}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_text_round_trips_byte_for_byte() {
    let s = TestServer::start().await;
    let cases = cases()
        .into_iter()
        .enumerate()
        .map(|(i, (name, c))| (name.to_owned(), round_trip(s.addr, format!("txt{i:03}"), c)))
        .collect();
    run_cases(cases).await;
    assert_healthy(s.addr).await;
    s.shutdown().await;
}
