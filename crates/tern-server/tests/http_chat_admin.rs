//! Whole-server tests of the HTTP parity routes (send, conversations,
//! history, read, presence) and of the admin API.
#![allow(clippy::unwrap_used)]

mod common;

use common::{now_s, token, token_with, TestServer, SECRET};
use serde_json::json;

fn admin_token() -> String {
    token_with(
        json!({"sub": "root", "exp": now_s() + 3600, "role": "admin"}),
        SECRET,
    )
}

#[tokio::test]
async fn http_send_shares_the_seq_space_and_pushes_to_every_session() {
    let srv = TestServer::start().await;
    let mut bob = srv.connect("bob").await;
    let mut alice_ws = srv.connect("alice").await;
    let ack = alice_ws
        .request(json!({"type":"send","id":1,"to":"bob","cmid":"w1","body":"over ws"}))
        .await;
    assert_eq!(ack["seq"], 1);
    bob.recv_type("msg").await;
    let body = json!({"to":"bob","cmid":"h1","body":"over http","meta":{"n":1e2}});
    let (status, ack) = srv
        .http(
            "POST",
            "/api/v1/messages",
            Some(&token("alice")),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 201, "{ack}");
    assert_eq!(ack["conv"], "d:alice:bob");
    assert_eq!(ack["seq"], 2);
    // Pushed to every online session, the sender's own included.
    for ws in [&mut bob, &mut alice_ws] {
        let m = ws.recv_type("msg").await;
        assert_eq!(
            (m["seq"].clone(), m["body"].clone()),
            (json!(2), json!("over http"))
        );
    }
    // A repeat: 200 with the original ack.
    let (status, again) = srv
        .http(
            "POST",
            "/api/v1/messages",
            Some(&token("alice")),
            Some(body),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(again, ack);
    // Errors have the JSON shape.
    let (status, e) = srv
        .http(
            "POST",
            "/api/v1/messages",
            Some(&token("alice")),
            Some(json!({"conv":"d:bob:carol","cmid":"x","body":"x"})),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].clone()),
        (403, json!("forbidden"))
    );
    let (status, _) = srv
        .http(
            "POST",
            "/api/v1/messages",
            None,
            Some(json!({"to":"bob","cmid":"y","body":"x"})),
        )
        .await;
    assert_eq!(status, 401);
    let (status, e) = srv
        .http(
            "POST",
            "/api/v1/messages",
            Some(&token("alice")),
            Some(json!({"to":"bob","body":"no cmid"})),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].clone()),
        (400, json!("bad_request"))
    );
}

#[tokio::test]
async fn http_history_conversations_read_and_presence() {
    let srv = TestServer::start().await;
    let mut bob = srv.connect("bob").await;
    let alice = token("alice");
    for i in 1..=5 {
        let (s, _) = srv
            .http(
                "POST",
                "/api/v1/messages",
                Some(&alice),
                Some(json!({"to":"bob","cmid":format!("c{i}"),"body":format!("m{i}")})),
            )
            .await;
        assert_eq!(s, 201);
    }
    let (s, convs) = srv
        .http("GET", "/api/v1/conversations", Some(&token("bob")), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(convs["items"][0]["unread"], 5);
    assert_eq!(convs["items"][0]["peer"], "alice");
    let (s, page) = srv
        .http(
            "GET",
            "/api/v1/conversations/d:alice:bob/messages?after=1&limit=2",
            Some(&token("bob")),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let seqs: Vec<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].clone())
        .collect();
    assert_eq!(seqs, vec![json!(2), json!(3)]);
    assert_eq!(page["more"], true);
    let (s, page) = srv
        .http(
            "GET",
            "/api/v1/conversations/d:alice:bob/messages?before=3",
            Some(&token("bob")),
            None,
        )
        .await;
    assert_eq!(
        (
            s,
            page["items"].as_array().unwrap().len(),
            page["more"].clone()
        ),
        (200, 2, json!(false))
    );
    let (s, _) = srv
        .http(
            "GET",
            "/api/v1/conversations/d:alice:bob/messages?after=1&before=3",
            Some(&token("bob")),
            None,
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = srv
        .http(
            "GET",
            "/api/v1/conversations/d:bob:carol/messages",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, 403);
    // Read over HTTP: 204 and a receipt to the other member.
    let mut alice_ws = srv.connect("alice").await;
    let (s, _) = srv
        .http(
            "POST",
            "/api/v1/conversations/d:alice:bob/read",
            Some(&token("bob")),
            Some(json!({"seq":4})),
        )
        .await;
    assert_eq!(s, 204);
    let r = alice_ws.recv_type("receipt").await;
    assert_eq!(
        (r["user"].clone(), r["seq"].clone()),
        (json!("bob"), json!(4))
    );
    assert_eq!(
        bob.recv_type("receipt").await["seq"],
        4,
        "bob's devices stay in step"
    );
    // Presence.
    let (s, p) = srv
        .http("GET", "/api/v1/users/bob/presence", Some(&alice), None)
        .await;
    assert_eq!(
        (s, p["user"].clone(), p["online"].clone()),
        (200, json!("bob"), json!(true))
    );
    let (s, _) = srv
        .http("GET", "/api/v1/users/nobody/presence", Some(&alice), None)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn http_sends_are_rate_limited_per_user() {
    let srv = TestServer::with(|c| {
        c.limits.send_rate = 1;
        c.limits.send_burst = 2;
    })
    .await;
    drop(srv.connect("bob").await);
    let alice = token("alice");
    for i in 0..2 {
        let (s, _) = srv
            .http(
                "POST",
                "/api/v1/messages",
                Some(&alice),
                Some(json!({"to":"bob","cmid":format!("r{i}"),"body":"x"})),
            )
            .await;
        assert_eq!(s, 201);
    }
    let (s, e) = srv
        .http(
            "POST",
            "/api/v1/messages",
            Some(&alice),
            Some(json!({"to":"bob","cmid":"r9","body":"x"})),
        )
        .await;
    assert_eq!(s, 429);
    assert_eq!(e["error"]["code"], "rate_limited");
    assert!(e["error"]["retry_after_ms"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn admin_routes_refuse_plain_users() {
    let srv = TestServer::start().await;
    drop(srv.connect("bob").await);
    let plain = token("alice");
    for (method, path, body) in [
        ("GET", "/api/v1/admin/stats", None),
        ("POST", "/api/v1/admin/users/bob/ban", None),
        ("DELETE", "/api/v1/admin/users/bob/ban", None),
        ("POST", "/api/v1/admin/users/bob/kick", None),
        (
            "POST",
            "/api/v1/admin/tokens",
            Some(json!({"user":"x-user"})),
        ),
        (
            "POST",
            "/api/v1/admin/broadcast",
            Some(json!({"conv":"d:alice:bob","body":"x"})),
        ),
    ] {
        let (s, e) = srv.http(method, path, Some(&plain), body).await;
        assert_eq!(
            (s, e["error"]["code"].clone()),
            (403, json!("forbidden")),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn admin_stats_report_the_server_memory() {
    let srv = TestServer::start().await;
    let (s, st) = srv
        .http("GET", "/api/v1/admin/stats", Some(&admin_token()), None)
        .await;
    assert_eq!(s, 200, "{st}");
    let node = &st["nodes"][0];
    // Always present: a number of KiB on Linux, null elsewhere.
    assert!(node.as_object().unwrap().contains_key("rss_kib"), "{st}");
    if cfg!(target_os = "linux") {
        // The test process is the server: a few MiB at least.
        assert!(node["rss_kib"].as_u64().unwrap() > 1024, "{st}");
    } else {
        assert!(node["rss_kib"].is_null(), "{st}");
    }
    // The OpenAPI document declares it, nullable.
    let (_, doc) = srv.http("GET", "/api/v1/openapi.json", None, None).await;
    let schema = &doc["components"]["schemas"]["NodeStats"];
    assert!(schema["properties"]["rss_kib"].is_object(), "{schema}");
    srv.shutdown().await;
}

#[tokio::test]
async fn admin_stats_ban_kick_tokens_and_broadcast() {
    let srv = TestServer::start().await;
    let admin = admin_token();
    let mut bob = srv.connect("bob").await;
    let mut alice = srv.connect("alice").await;
    let (s, st) = srv
        .http("GET", "/api/v1/admin/stats", Some(&admin), None)
        .await;
    assert_eq!(s, 200, "{st}");
    assert_eq!(st["sessions"], 2);
    assert!(st["users"].as_u64().unwrap() >= 2);
    assert_eq!(st["nodes"][0]["sessions"], 2);
    assert!(st["nodes"][0]["id"].as_str().is_some());

    // Broadcast: a system message from `system`, pushed to every member.
    let (s, ack) = srv
        .http(
            "POST",
            "/api/v1/admin/broadcast",
            Some(&admin),
            Some(json!({"conv":"d:alice:bob","body":"maintenance at 6"})),
        )
        .await;
    assert_eq!(s, 201, "{ack}");
    for ws in [&mut alice, &mut bob] {
        let m = ws.recv_type("msg").await;
        assert_eq!(
            (m["from"].clone(), m["kind"].clone(), m["seq"].clone()),
            (json!("system"), json!("system"), ack["seq"].clone())
        );
    }

    // Kick closes the sessions with 4011; the user may come back.
    let (s, _) = srv
        .http("POST", "/api/v1/admin/users/alice/kick", Some(&admin), None)
        .await;
    assert_eq!(s, 204);
    assert_eq!(alice.expect_close().await.0, 4011);
    drop(srv.connect("alice").await);

    // Ban closes with 4011 and refuses the user's tokens until unbanned.
    let (s, _) = srv
        .http("POST", "/api/v1/admin/users/bob/ban", Some(&admin), None)
        .await;
    assert_eq!(s, 204);
    assert_eq!(bob.expect_close().await.0, 4011);
    let mut again = common::Ws::open(&srv.ws_url(), Some(&token("bob"))).await;
    let (code, frames) = again.expect_close().await;
    assert_eq!(
        (code, frames[0]["code"].clone()),
        (4011, json!("forbidden"))
    );
    let (s, _) = srv
        .http("GET", "/api/v1/me", Some(&token("bob")), None)
        .await;
    assert_eq!(s, 403);
    let (s, _) = srv
        .http("DELETE", "/api/v1/admin/users/bob/ban", Some(&admin), None)
        .await;
    assert_eq!(s, 204);
    drop(srv.connect("bob").await);
    let (s, _) = srv
        .http("POST", "/api/v1/admin/users/ghost/ban", Some(&admin), None)
        .await;
    assert_eq!(s, 404);

    // Tokens: mint for a new user; it works on the WebSocket.
    let (s, t) = srv
        .http(
            "POST",
            "/api/v1/admin/tokens",
            Some(&admin),
            Some(json!({"user":"newbie","ttl_s":60})),
        )
        .await;
    assert_eq!(s, 200, "{t}");
    assert!(t["expires_at"].as_i64().unwrap() > now_s() * 1000);
    let mut ws = common::Ws::open(&srv.ws_url(), Some(t["token"].as_str().unwrap())).await;
    assert_eq!(ws.recv().await["user"], "newbie");
    let (s, _) = srv
        .http(
            "POST",
            "/api/v1/admin/tokens",
            Some(&admin),
            Some(json!({"user":"system"})),
        )
        .await;
    assert_eq!(s, 400);
}
