//! Hostile authentication: `alg: none`, wrong keys, algorithm and key
//! confusion, expired tokens, missing, reserved or invalid `sub`, tampered
//! and truncated tokens, each presented four ways (an `auth` frame, the
//! `Authorization` header and `?token=` at the upgrade, and HTTP); frames
//! before `auth`, `auth` twice, the auth deadline, auto-provisioning off and
//! banned users (docs/protocol.md 2.2, 2.4, 2.5, 4.3, 11.1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod hostile;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{now_s, token, token_with, TestServer, Ws, SECRET};
use hostile::{assert_healthy, assert_open, next_event, run_cases, Event};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const ED_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIOO/tXf58HIBF3aYNnFlYAnQpoOH5tK8w3dknFDeqjcO
-----END PRIVATE KEY-----
";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with any header, signed HS256 with `key` whatever the header says.
fn forged(header: Value, claims: Value, key: &str) -> String {
    let msg = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = jsonwebtoken::crypto::sign(
        msg.as_bytes(),
        &EncodingKey::from_secret(key.as_bytes()),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{msg}.{sig}")
}

fn unsigned(alg: &str, claims: Value) -> String {
    let h = json!({"alg": alg, "typ": "JWT"}).to_string();
    format!(
        "{}.{}.",
        b64(h.as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

fn claims(sub: &str) -> Value {
    json!({"sub": sub, "exp": now_s() + 3600, "iat": now_s()})
}

/// One named case, run concurrently with the others.
type Case = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
#[rustfmt::skip]
fn bad_tokens() -> Vec<(&'static str, String)> {
    let hs = |alg: Algorithm| jsonwebtoken::encode(&Header::new(alg), &claims("mallory"), &EncodingKey::from_secret(SECRET.as_bytes())).unwrap();
    let ed = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims("mallory"), &EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap()).unwrap();
    let good = token("mallory");
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(claims("alice").to_string().as_bytes()), parts[2]);
    let exp = |e: Value| token_with(json!({"sub":"mallory","exp":e}), SECRET);
    let sub = |s: Value| token_with(json!({"sub":s,"exp":now_s() + 3600}), SECRET);
    vec![
        ("alg none", unsigned("none", claims("mallory"))),
        ("alg None", unsigned("None", claims("mallory"))),
        ("alg NONE with the secret's signature stripped", format!("{}.{}.", b64(br#"{"alg":"NONE"}"#), parts[1])),
        ("wrong HS256 key", token_with(claims("mallory"), "another-secret-0123456789abcdef")),
        ("HS384 with the server secret", hs(Algorithm::HS384)),
        ("HS512 with the server secret", hs(Algorithm::HS512)),
        ("RS256 header over an HMAC signature", forged(json!({"alg":"RS256","typ":"JWT"}), claims("mallory"), SECRET)),
        ("EdDSA header over an HMAC signature", forged(json!({"alg":"EdDSA","typ":"JWT"}), claims("mallory"), SECRET)),
        ("EdDSA with a key the server does not trust", ed),
        ("expired 2 minutes ago", exp(json!(now_s() - 120))),
        ("expired an hour ago", exp(json!(now_s() - 3600))),
        ("exp missing", token_with(json!({"sub":"mallory"}), SECRET)),
        ("exp is a string", exp(json!("9999999999"))),
        ("sub missing", token_with(json!({"exp": now_s() + 3600}), SECRET)),
        ("sub empty", sub(json!(""))),
        ("sub reserved system", sub(json!("system"))),
        ("sub reserved admin", sub(json!("admin"))),
        ("sub reserved admin with role admin", token_with(json!({"sub":"admin","role":"admin","exp":now_s() + 3600}), SECRET)),
        ("sub in upper case", sub(json!("Mallory"))),
        ("sub with a colon", sub(json!("mal:lory"))),
        ("sub of 33 characters", sub(json!("m".repeat(33)))),
        ("sub with NUL", sub(json!("mallory\u{0}"))),
        ("sub is a number", sub(json!(42))),
        ("sub SQL-shaped", sub(json!("x' OR '1'='1"))),
        ("payload tampered after signing", tampered),
        ("signature truncated", good[..good.len() - 3].to_owned()),
        ("two segments", format!("{}.{}", parts[0], parts[1])),
        ("garbage", "garbage".to_owned()),
        ("dots only", "..".to_owned()),
    ]
}

async fn refused_in_frame(addr: SocketAddr, bad: String) {
    let mut ws = Ws::open(&format!("ws://{addr}/ws"), None).await;
    ws.send(json!({"type":"auth","id":"a","token":bad})).await;
    expect_refusal(&mut ws, Some(json!("a"))).await;
}

async fn refused_at_upgrade(addr: SocketAddr, bad: String, by_header: bool) {
    let mut ws = if by_header {
        Ws::open(&format!("ws://{addr}/ws"), Some(&bad)).await
    } else {
        Ws::open(&format!("ws://{addr}/ws?token={bad}"), None).await
    };
    expect_refusal(&mut ws, None).await;
}

/// `error` `unauthorized` with `"close":4001` (and the id), then close 4001.
async fn expect_refusal(ws: &mut Ws, id: Option<Value>) {
    let wait = Duration::from_secs(10);
    let Event::Frame(f) = next_event(ws, wait).await else {
        panic!("no error frame")
    };
    assert_eq!(
        (f["code"].as_str(), &f["close"]),
        (Some("unauthorized"), &json!(4001)),
        "{f}"
    );
    assert_eq!(f.get("id"), id.as_ref(), "{f}");
    let e = next_event(ws, wait).await;
    assert!(matches!(e, Event::Close(4001)), "{e:?}");
}

async fn refused_over_http(addr: SocketAddr, bad: String) {
    let (status, v) = common::http(addr, "GET", "/api/v1/me", Some(&bad), None).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_tokens_are_refused_every_way() {
    let s = TestServer::start().await;
    let addr = s.addr;
    let mut cases: Vec<(String, Case)> = Vec::new();
    for (name, bad) in bad_tokens() {
        cases.push((
            format!("{name} (auth frame)"),
            Box::pin(refused_in_frame(addr, bad.clone())),
        ));
        cases.push((
            format!("{name} (header)"),
            Box::pin(refused_at_upgrade(addr, bad.clone(), true)),
        ));
        if !bad.contains(['\u{0}', ' ']) {
            cases.push((
                format!("{name} (query)"),
                Box::pin(refused_at_upgrade(addr, bad.clone(), false)),
            ));
        }
        cases.push((
            format!("{name} (HTTP)"),
            Box::pin(refused_over_http(addr, bad)),
        ));
    }
    run_cases(cases).await;
    // Nobody got in: no user was provisioned by any of them.
    for user in ["mallory", "alice"] {
        let (status, _) = s
            .http(
                "GET",
                &format!("/api/v1/users/{user}/presence"),
                Some(&token("checker")),
                None,
            )
            .await;
        assert_eq!(status, 404, "{user} was provisioned by a bad token");
    }
    assert_healthy(addr).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_before_auth_and_auth_twice() {
    let s = TestServer::start().await;
    let mut ws = Ws::open(&s.ws_url(), None).await;
    for (i, f) in [
        json!({"type":"ping","id":"p"}),
        json!({"type":"send","id":"p","to":"alice","cmid":"x","body":"early"}),
        json!({"type":"sync","id":"p","conv":"d:alice:alice"}),
        json!({"type":"convs","id":"p"}),
        json!({"type":"presence_sub","id":"p","users":["alice"]}),
    ]
    .into_iter()
    .enumerate()
    {
        ws.send(f.clone()).await;
        let r = ws.recv().await;
        assert_eq!(
            (r["code"].as_str(), &r["id"]),
            (Some("unauthorized"), &json!("p")),
            "{i}: {r}"
        );
        assert!(r.get("close").is_none(), "{r}");
    }
    // An invalid auth frame is a bad request; the connection keeps waiting.
    for f in [
        json!({"type":"auth","id":"b"}),
        json!({"type":"auth","id":"b","token":7}),
    ] {
        ws.send(f).await;
        let r = ws.recv().await;
        assert_eq!(
            (r["code"].as_str(), &r["id"]),
            (Some("bad_request"), &json!("b")),
            "{r}"
        );
    }
    ws.send(json!({"type":"auth","id":"ok","token":token("alice")}))
        .await;
    let ok = ws.recv().await;
    assert_eq!(
        (ok["type"].as_str(), ok["user"].as_str()),
        (Some("auth_ok"), Some("alice")),
        "{ok}"
    );
    // Auth again, even as someone else: bad_request, still alice.
    ws.send(json!({"type":"auth","id":"again","token":token("eve")}))
        .await;
    let r = ws.recv().await;
    assert_eq!(
        (r["code"].as_str(), &r["id"]),
        (Some("bad_request"), &json!("again")),
        "{r}"
    );
    let ack = ws
        .request(json!({"type":"send","id":"s","to":"alice","cmid":"c1","body":"me"}))
        .await;
    assert_eq!(
        (ack["type"].as_str(), ack["conv"].as_str()),
        (Some("ack"), Some("d:alice:alice")),
        "{ack}"
    );
    hostile::assert_acked_stored(s.addr, "alice", "d:alice:alice", &[ack]).await;
    // The early send stored nothing.
    assert_eq!(
        hostile::history(s.addr, "alice", "d:alice:alice")
            .await
            .len(),
        1
    );
    assert_healthy(s.addr).await;
    drop(ws);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_deadline_holds_even_for_chatty_clients() {
    let s = TestServer::with(|c| c.limits.auth_timeout_ms = 700).await;
    let silent = async {
        let mut ws = Ws::open(&s.ws_url(), None).await;
        let (code, frames) = ws.expect_close().await;
        assert_eq!((code, frames.len()), (4002, 0), "{frames:?}");
    };
    let chatty = async {
        let started = Instant::now();
        let mut ws = Ws::open(&s.ws_url(), None).await;
        loop {
            ws.send(json!({"type":"ping","id":1})).await;
            match next_event(&mut ws, Duration::from_secs(5)).await {
                Event::Frame(f) => assert_eq!(f["code"], "unauthorized", "{f}"),
                Event::Close(code) => {
                    assert_eq!(code, 4002);
                    break;
                }
                Event::End => panic!("ended without close"),
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "pings extended the deadline"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::join!(silent, chatty);
    assert_healthy(s.addr).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_without_auto_provisioning_and_banned_users() {
    let s = TestServer::with(|c| c.auth.auto_provision = false).await;
    let creds = json!({"username":"known1","password":"long enough pw"});
    assert_eq!(
        s.http("POST", "/api/v1/register", None, Some(creds))
            .await
            .0,
        201
    );
    refused_in_frame(s.addr, token("stranger")).await;
    refused_over_http(s.addr, token("stranger")).await;
    let mut known = Ws::open(&s.ws_url(), Some(&token("known1"))).await;
    assert_eq!(known.recv().await["type"], "auth_ok");

    // Banned: forbidden + 4011 on the WebSocket, 403 over HTTP. Without
    // auto-provisioning the admin must exist too.
    let root = json!({"username":"root1","password":"long enough pw"});
    assert_eq!(
        s.http("POST", "/api/v1/register", None, Some(root)).await.0,
        201
    );
    let admin = token_with(
        json!({"sub":"root1","exp":now_s() + 600,"role":"admin"}),
        SECRET,
    );
    let (status, _) = s
        .http("POST", "/api/v1/admin/users/known1/ban", Some(&admin), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(known.expect_close().await.0, 4011);
    let mut ws = Ws::open(&s.ws_url(), None).await;
    ws.send(json!({"type":"auth","id":9,"token":token("known1")}))
        .await;
    let Event::Frame(f) = next_event(&mut ws, Duration::from_secs(5)).await else {
        panic!("no error frame")
    };
    assert_eq!(
        (f["code"].as_str(), &f["close"], &f["id"]),
        (Some("forbidden"), &json!(4011), &json!(9)),
        "{f}"
    );
    assert!(matches!(
        next_event(&mut ws, Duration::from_secs(5)).await,
        Event::Close(4011)
    ));
    let (status, v) = s
        .http("GET", "/api/v1/me", Some(&token("known1")), None)
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    let mut admin_ws = Ws::open(&s.ws_url(), Some(&admin)).await;
    assert_eq!(admin_ws.recv().await["type"], "auth_ok");
    assert_open(&mut admin_ws, "admin").await;
    drop((ws, admin_ws, known));
    s.shutdown().await;
}
