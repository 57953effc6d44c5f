//! Whole-server tests of the banned-word filter (`[moderation]`): rejected
//! sends store and push nothing, masked sends are stored and pushed masked,
//! `e2e` bodies are never inspected, and the counter is exported.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{TestServer, Ws};
use serde_json::{json, Value};

async fn server(action: &str) -> TestServer {
    let action = action.to_owned();
    TestServer::with(move |c| {
        c.moderation.banned_words = vec!["darn".into()];
        c.moderation.action = action;
    })
    .await
}

async fn history(ws: &mut Ws, id: u64) -> Vec<Value> {
    let page = ws
        .request(json!({"type":"sync","id":id,"conv":"d:alice:bob","after":0}))
        .await;
    assert_eq!(page["type"], "messages", "{page}");
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn reject_mode_refuses_the_send_and_stores_and_pushes_nothing() {
    let srv = server("reject").await;
    let mut bob = srv.connect("bob").await;
    let mut alice = srv.connect("alice").await;
    let r = alice
        .request(json!({"type":"send","id":1,"to":"bob","cmid":"c1","body":"oh DARN it"}))
        .await;
    assert_eq!(r["type"], "error", "{r}");
    assert_eq!(r["code"], "forbidden");
    assert_eq!(r["message"], "message contains a banned word");
    bob.expect_silence(Duration::from_millis(300)).await;
    assert_eq!(history(&mut alice, 2).await, Vec::<Value>::new());
    // The next clean send takes seq 1: the refused one left no gap.
    let ack = alice
        .request(json!({"type":"send","id":3,"to":"bob","cmid":"c2","body":"oh dear"}))
        .await;
    assert_eq!(
        (ack["type"].clone(), ack["seq"].clone()),
        (json!("ack"), json!(1))
    );
    assert_eq!(bob.recv_type("msg").await["body"], "oh dear");
    let text = tern_server::metrics::render();
    assert!(text.contains("tern_moderation_total"), "{text}");
}

#[tokio::test]
async fn mask_mode_stores_and_pushes_the_masked_body() {
    let srv = server("mask").await;
    let mut bob = srv.connect("bob").await;
    let mut alice = srv.connect("alice").await;
    let ack = alice
        .request(json!({"type":"send","id":1,"to":"bob","cmid":"c1","body":"Darn, darn café"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let m = bob.recv_type("msg").await;
    assert_eq!(m["body"], "****, **** café");
    assert_eq!(m["seq"], ack["seq"]);
    let items = history(&mut bob, 2).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["body"], "****, **** café");
}

#[tokio::test]
async fn e2e_bodies_are_never_filtered() {
    for action in ["reject", "mask"] {
        let srv = server(action).await;
        let mut bob = srv.connect("bob").await;
        let mut alice = srv.connect("alice").await;
        let ack = alice
            .request(
                json!({"type":"send","id":1,"to":"bob","cmid":"e1","body":"darn","kind":"e2e"}),
            )
            .await;
        assert_eq!(ack["type"], "ack", "{action}: {ack}");
        let m = bob.recv_type("msg").await;
        assert_eq!(
            (m["body"].clone(), m["kind"].clone()),
            (json!("darn"), json!("e2e"))
        );
        let items = history(&mut alice, 2).await;
        assert_eq!(items.len(), 1, "{action}");
        assert_eq!(items[0]["body"], "darn", "{action}");
    }
}
