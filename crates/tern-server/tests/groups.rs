//! Whole-server tests of groups: the HTTP routes and their role rules, the
//! `group` pushes, and messaging in `g:<id>` conversations over WebSocket
//! (fan-out, shared seqs, history for later members, removed and deleted).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{token, TestServer, Ws};
use serde_json::{json, Value};

const QUIET: Duration = Duration::from_millis(200);

/// `srv.http` as `user`.
async fn call(
    srv: &TestServer,
    user: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    srv.http(method, path, Some(&token(user)), body).await
}

/// Makes the users exist (a valid token provisions its user).
async fn users(srv: &TestServer, names: &[&str]) {
    for name in names {
        assert_eq!(call(srv, name, "GET", "/api/v1/me", None).await.0, 200);
    }
}

/// Creates a group as `owner`; returns its id.
async fn create(srv: &TestServer, owner: &str, name: &str, members: &[&str]) -> String {
    let body = json!({"name": name, "members": members});
    let (status, group) = call(srv, owner, "POST", "/api/v1/groups", Some(body)).await;
    assert_eq!(status, 201, "{group}");
    group["id"].as_str().unwrap().to_owned()
}

/// The next `group` push.
async fn group_push(ws: &mut Ws) -> Value {
    ws.recv_type("group").await
}

/// Asserts a 403 `forbidden` in the API's error shape.
fn assert_forbidden((status, body): (u16, Value)) {
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().len() > 3);
}

fn send(id: u64, conv: &str, cmid: &str, body: &str) -> Value {
    json!({"type":"send","id":id,"conv":conv,"cmid":cmid,"body":body})
}

#[tokio::test]
async fn routes_and_pushes() {
    let srv = TestServer::start().await;
    let mut alice = srv.connect("alice").await;
    let mut bob = srv.connect("bob").await;
    let mut carol = srv.connect("carol").await;
    let mut dave = srv.connect("dave").await;

    // Create: 201, and member_added with everyone to everyone.
    let body = json!({"name":"  Team  ","members":["bob","carol","bob"]});
    let (status, group) = call(&srv, "alice", "POST", "/api/v1/groups", Some(body)).await;
    assert_eq!(status, 201, "{group}");
    let id = group["id"].as_str().unwrap().to_owned();
    assert_eq!(group["name"], "Team");
    assert_eq!(group["owner"], "alice");
    assert_eq!(group["admins"], json!([]));
    assert_eq!(group["members"], json!(["alice", "bob", "carol"]));
    assert!(group["created_at"].as_i64().unwrap() > 0);
    for ws in [&mut alice, &mut bob, &mut carol] {
        let p = group_push(ws).await;
        assert_eq!(p["event"], "member_added");
        assert_eq!(p["users"], json!(["alice", "bob", "carol"]));
        assert_eq!(p["group"], group);
    }
    dave.expect_silence(QUIET).await;

    // List and show.
    let (status, list) = call(&srv, "bob", "GET", "/api/v1/groups", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"], json!([group]));
    let path = format!("/api/v1/groups/{id}");
    let (status, shown) = call(&srv, "carol", "GET", &path, None).await;
    assert_eq!((status, &shown), (200, &group));
    let (status, list) = call(&srv, "dave", "GET", "/api/v1/groups", None).await;
    assert_eq!((status, list), (200, json!({"items":[]})));

    // Rename: 200 and `updated` to every member.
    let (status, g) = call(&srv, "alice", "PATCH", &path, Some(json!({"name":"Crew"}))).await;
    assert_eq!((status, &g["name"]), (200, &json!("Crew")));
    for ws in [&mut alice, &mut bob, &mut carol] {
        let p = group_push(ws).await;
        assert_eq!((&p["event"], &p["group"]), (&json!("updated"), &g));
    }

    // Add dave: member_added with [dave] to all, dave included.
    let members = format!("{path}/members");
    let (status, g) = call(
        &srv,
        "alice",
        "POST",
        &members,
        Some(json!({"users":["dave","bob"]})),
    )
    .await;
    assert_eq!(status, 200, "{g}");
    assert_eq!(g["members"], json!(["alice", "bob", "carol", "dave"]));
    for ws in [&mut alice, &mut bob, &mut carol, &mut dave] {
        let p = group_push(ws).await;
        assert_eq!(p["event"], "member_added");
        assert_eq!(p["users"], json!(["dave"]));
        assert_eq!(p["group"], g);
    }
    // Nobody new: 200, no push.
    let (status, _) = call(
        &srv,
        "alice",
        "POST",
        &members,
        Some(json!({"users":["dave"]})),
    )
    .await;
    assert_eq!(status, 200);
    alice.expect_silence(QUIET).await;

    // Admins: `updated` both ways.
    let admins = format!("{path}/admins");
    let (status, g) = call(
        &srv,
        "alice",
        "POST",
        &admins,
        Some(json!({"users":["bob"]})),
    )
    .await;
    assert_eq!((status, &g["admins"]), (200, &json!(["bob"])));
    for ws in [&mut alice, &mut bob, &mut carol, &mut dave] {
        let p = group_push(ws).await;
        assert_eq!(
            (&p["event"], &p["group"]["admins"]),
            (&json!("updated"), &json!(["bob"]))
        );
    }
    let (status, _) = call(&srv, "alice", "DELETE", &format!("{admins}/bob"), None).await;
    assert_eq!(status, 204);
    for ws in [&mut alice, &mut bob, &mut carol, &mut dave] {
        let p = group_push(ws).await;
        assert_eq!(
            (&p["event"], &p["group"]["admins"]),
            (&json!("updated"), &json!([]))
        );
    }

    // Remove carol: member_removed to the remaining and to carol.
    let (status, _) = call(&srv, "alice", "DELETE", &format!("{members}/carol"), None).await;
    assert_eq!(status, 204);
    for ws in [&mut alice, &mut bob, &mut dave, &mut carol] {
        let p = group_push(ws).await;
        assert_eq!(p["event"], "member_removed");
        assert_eq!(p["users"], json!(["carol"]));
        assert_eq!(p["group"]["members"], json!(["alice", "bob", "dave"]));
    }

    // Delete: 204, `deleted` (the group as it was, users []) to all.
    let (status, _) = call(&srv, "alice", "DELETE", &path, None).await;
    assert_eq!(status, 204);
    for ws in [&mut alice, &mut bob, &mut dave] {
        let p = group_push(ws).await;
        assert_eq!(p["event"], "deleted");
        assert_eq!(p["users"], json!([]));
        assert_eq!(p["group"]["id"], id.as_str());
        assert_eq!(p["group"]["members"], json!(["alice", "bob", "dave"]));
    }
    carol.expect_silence(QUIET).await;
    let (status, body) = call(&srv, "alice", "GET", &path, None).await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
    let (status, _) = call(&srv, "alice", "DELETE", &path, None).await;
    assert_eq!(status, 404);
    let (status, list) = call(&srv, "bob", "GET", "/api/v1/groups", None).await;
    assert_eq!((status, list), (200, json!({"items":[]})));
}

#[tokio::test]
async fn bad_requests_and_unknowns() {
    let srv = TestServer::start().await;
    users(&srv, &["alice", "bob", "zed"]).await;
    let (status, _) = srv.http("GET", "/api/v1/groups", None, None).await;
    assert_eq!(status, 401);
    for name in ["", "   ", &"x".repeat(101)] {
        let body = json!({"name": name, "members": []});
        let (status, e) = call(&srv, "alice", "POST", "/api/v1/groups", Some(body)).await;
        assert_eq!(
            (status, &e["error"]["code"]),
            (400, &json!("bad_request")),
            "{name:?}"
        );
    }
    let body = json!({"name":"x","members":["bob","ghost"]});
    let (status, e) = call(&srv, "alice", "POST", "/api/v1/groups", Some(body)).await;
    assert_eq!((status, &e["error"]["code"]), (404, &json!("not_found")));
    let (status, _) = call(
        &srv,
        "alice",
        "POST",
        "/api/v1/groups",
        Some(json!({"members":[]})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = call(&srv, "alice", "GET", "/api/v1/groups/nosuch", None).await;
    assert_eq!(status, 404);

    let id = create(&srv, "alice", "solo", &[]).await;
    let path = format!("/api/v1/groups/{id}");
    let (status, g) = call(&srv, "alice", "GET", &path, None).await;
    assert_eq!((status, &g["members"]), (200, &json!(["alice"])));
    // An outsider sees nothing.
    assert_forbidden(call(&srv, "zed", "GET", &path, None).await);
    // Adding an unknown user: 404; naming a non-member admin: 400.
    let members = format!("{path}/members");
    let (status, _) = call(
        &srv,
        "alice",
        "POST",
        &members,
        Some(json!({"users":["ghost"]})),
    )
    .await;
    assert_eq!(status, 404);
    let admins = format!("{path}/admins");
    let (status, e) = call(
        &srv,
        "alice",
        "POST",
        &admins,
        Some(json!({"users":["bob"]})),
    )
    .await;
    assert_eq!((status, &e["error"]["code"]), (400, &json!("bad_request")));
    let (status, _) = call(&srv, "alice", "DELETE", &format!("{members}/bob"), None).await;
    assert_eq!(status, 404);
    let (status, _) = call(&srv, "alice", "DELETE", &format!("{admins}/bob"), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn role_rules() {
    let srv = TestServer::start().await;
    users(&srv, &["alice", "bob", "carol", "dave", "erin", "frank"]).await;
    let id = create(&srv, "alice", "roles", &["bob", "carol", "dave", "frank"]).await;
    let path = format!("/api/v1/groups/{id}");
    let (members, admins) = (format!("{path}/members"), format!("{path}/admins"));
    let (status, _) = call(
        &srv,
        "alice",
        "POST",
        &admins,
        Some(json!({"users":["bob"]})),
    )
    .await;
    assert_eq!(status, 200);

    // A plain member may do none of the owner's or admins' actions.
    let rename = Some(json!({"name":"mine"}));
    assert_forbidden(call(&srv, "carol", "PATCH", &path, rename.clone()).await);
    assert_forbidden(call(&srv, "carol", "DELETE", &path, None).await);
    let erin = Some(json!({"users":["erin"]}));
    assert_forbidden(call(&srv, "carol", "POST", &members, erin.clone()).await);
    assert_forbidden(call(&srv, "carol", "DELETE", &format!("{members}/dave"), None).await);
    assert_forbidden(
        call(
            &srv,
            "carol",
            "POST",
            &admins,
            Some(json!({"users":["carol"]})),
        )
        .await,
    );
    assert_forbidden(call(&srv, "carol", "DELETE", &format!("{admins}/bob"), None).await);

    // An admin renames, adds and removes plain members...
    let (status, _) = call(&srv, "bob", "PATCH", &path, rename).await;
    assert_eq!(status, 200);
    let (status, _) = call(&srv, "bob", "POST", &members, erin).await;
    assert_eq!(status, 200);
    let (status, _) = call(&srv, "bob", "DELETE", &format!("{members}/erin"), None).await;
    assert_eq!(status, 204);
    // ...but does not delete, name or remove admins, nor remove the owner
    // or another admin.
    assert_forbidden(call(&srv, "bob", "DELETE", &path, None).await);
    assert_forbidden(
        call(
            &srv,
            "bob",
            "POST",
            &admins,
            Some(json!({"users":["carol"]})),
        )
        .await,
    );
    assert_forbidden(call(&srv, "bob", "DELETE", &format!("{admins}/bob"), None).await);
    assert_forbidden(call(&srv, "bob", "DELETE", &format!("{members}/alice"), None).await);
    let (status, _) = call(
        &srv,
        "alice",
        "POST",
        &admins,
        Some(json!({"users":["frank"]})),
    )
    .await;
    assert_eq!(status, 200);
    assert_forbidden(call(&srv, "bob", "DELETE", &format!("{members}/frank"), None).await);

    // The owner cannot leave; a member can.
    let (status, e) = call(&srv, "alice", "DELETE", &format!("{members}/alice"), None).await;
    assert_eq!(status, 403);
    assert_eq!(
        e["error"]["message"],
        "the owner cannot leave: delete the group instead"
    );
    let (status, _) = call(&srv, "carol", "DELETE", &format!("{members}/carol"), None).await;
    assert_eq!(status, 204);
    assert_forbidden(call(&srv, "carol", "GET", &path, None).await);
    // The owner removes an admin from the group.
    let (status, _) = call(&srv, "alice", "DELETE", &format!("{members}/frank"), None).await;
    assert_eq!(status, 204);
    let (_, g) = call(&srv, "alice", "GET", &path, None).await;
    assert_eq!(g["name"], "mine");
    assert_eq!(g["admins"], json!(["bob"]));
    assert_eq!(g["members"], json!(["alice", "bob", "dave"]));
}

#[tokio::test]
async fn messaging_in_a_group() {
    let srv = TestServer::start().await;
    let mut alice1 = srv.connect("alice").await;
    let mut alice2 = srv.connect("alice").await;
    let mut bob = srv.connect("bob").await;
    let mut carol = srv.connect("carol").await;
    let id = create(&srv, "alice", "chat", &["bob"]).await;
    let conv = format!("g:{id}");
    for ws in [&mut alice1, &mut alice2, &mut bob] {
        group_push(ws).await;
    }

    // Every other session of every member gets the push; the sender's, only the ack.
    let ack = alice1.request(send(1, &conv, "a1", "hi all")).await;
    assert_eq!(
        (&ack["type"], &ack["conv"], &ack["seq"]),
        (&json!("ack"), &json!(conv), &json!(1))
    );
    for ws in [&mut alice2, &mut bob] {
        let m = ws.recv_type("msg").await;
        assert_eq!(
            (&m["conv"], &m["seq"], &m["from"]),
            (&json!(conv), &json!(1), &json!("alice"))
        );
        assert_eq!(m["body"], "hi all");
    }
    alice1.expect_silence(QUIET).await;
    carol.expect_silence(QUIET).await;

    // Seqs are shared by all senders, without gaps.
    let mut seqs = Vec::new();
    for i in 0..3u64 {
        seqs.push(
            bob.request(send(10 + i, &conv, &format!("b{i}"), "b"))
                .await["seq"]
                .clone(),
        );
        seqs.push(
            alice2
                .request(send(20 + i, &conv, &format!("a2{i}"), "a"))
                .await["seq"]
                .clone(),
        );
    }
    assert_eq!(seqs, (2..=7).map(|s| json!(s)).collect::<Vec<_>>());

    // A member added later reads the earlier history and lists the group.
    let members = format!("/api/v1/groups/{id}/members");
    let (status, _) = call(
        &srv,
        "bob",
        "POST",
        &members,
        Some(json!({"users":["carol"]})),
    )
    .await;
    assert_eq!(status, 403, "bob is a plain member");
    let (status, _) = call(
        &srv,
        "alice",
        "POST",
        &members,
        Some(json!({"users":["carol"]})),
    )
    .await;
    assert_eq!(status, 200);
    let page = carol
        .request(json!({"type":"sync","id":30,"conv":conv,"after":0}))
        .await;
    assert_eq!(page["type"], "messages", "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 7);
    assert_eq!(page["items"][0]["body"], "hi all");
    let convs = carol.request(json!({"type":"convs","id":31})).await;
    let item = &convs["items"][0];
    assert_eq!(
        (&item["conv"], &item["kind"], &item["name"]),
        (&json!(conv), &json!("group"), &json!("chat"))
    );
    assert_eq!(item["unread"], 7);

    // Typing and receipts reach the other members.
    carol.send(json!({"type":"typing","conv":conv})).await;
    let t = bob.recv_type("typing").await;
    assert_eq!((&t["conv"], &t["user"]), (&json!(conv), &json!("carol")));
    let ok = carol
        .request(json!({"type":"read","id":32,"conv":conv,"seq":7}))
        .await;
    assert_eq!(ok["type"], "ok");
    let r = alice1.recv_type("receipt").await;
    assert_eq!((&r["user"], &r["seq"]), (&json!("carol"), &json!(7)));

    // A removed member keeps no access.
    let (status, _) = call(&srv, "alice", "DELETE", &format!("{members}/carol"), None).await;
    assert_eq!(status, 204);
    for req in [
        send(40, &conv, "c1", "still here?"),
        json!({"type":"sync","id":41,"conv":conv,"after":0}),
        json!({"type":"read","id":42,"conv":conv,"seq":7}),
        json!({"type":"typing","id":43,"conv":conv}),
    ] {
        let e = carol.request(req).await;
        assert_eq!(
            (&e["type"], &e["code"]),
            (&json!("error"), &json!("forbidden")),
            "{e}"
        );
    }
    assert_forbidden(call(&srv, "carol", "GET", &format!("/api/v1/groups/{id}"), None).await);
    let ack = bob.request(send(44, &conv, "b-after", "bye carol")).await;
    assert_eq!(ack["seq"], 8);
    carol.expect_silence(QUIET).await;

    // After delete, the conversation is gone.
    let (status, _) = call(
        &srv,
        "alice",
        "DELETE",
        &format!("/api/v1/groups/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    for req in [
        send(50, &conv, "a-gone", "anyone?"),
        json!({"type":"sync","id":51,"conv":conv}),
    ] {
        let e = alice1.request(req).await;
        assert_eq!(
            (&e["type"], &e["code"]),
            (&json!("error"), &json!("not_found")),
            "{e}"
        );
    }
    let (status, _) = call(&srv, "bob", "GET", &format!("/api/v1/groups/{id}"), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn max_group_members_is_enforced() {
    let srv = TestServer::with(|c| c.limits.max_group_members = 3).await;
    users(&srv, &["alice", "bob", "carol", "dave"]).await;
    let body = json!({"name":"big","members":["bob","carol","dave"]});
    let (status, e) = call(&srv, "alice", "POST", "/api/v1/groups", Some(body)).await;
    assert_eq!((status, &e["error"]["code"]), (413, &json!("too_large")));
    let id = create(&srv, "alice", "ok", &["bob", "carol"]).await;
    let members = format!("/api/v1/groups/{id}/members");
    let (status, e) = call(
        &srv,
        "alice",
        "POST",
        &members,
        Some(json!({"users":["dave"]})),
    )
    .await;
    assert_eq!((status, &e["error"]["code"]), (413, &json!("too_large")));
    // Re-adding members already in does not count.
    let (status, _) = call(
        &srv,
        "alice",
        "POST",
        &members,
        Some(json!({"users":["bob"]})),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn memberships_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_string_lossy().into_owned();
    let srv = TestServer::with(|c| c.data_dir = data.clone()).await;
    users(&srv, &["alice", "bob"]).await;
    let id = create(&srv, "alice", "kept", &["bob"]).await;
    srv.shutdown().await;

    let srv = TestServer::with(|c| c.data_dir = data.clone()).await;
    let mut bob = srv.connect("bob").await;
    let mut alice = srv.connect("alice").await;
    let ack = alice
        .request(send(1, &format!("g:{id}"), "k1", "still here"))
        .await;
    assert_eq!(
        (&ack["type"], &ack["seq"]),
        (&json!("ack"), &json!(1)),
        "{ack}"
    );
    assert_eq!(bob.recv_type("msg").await["body"], "still here");
    srv.shutdown().await;
}
