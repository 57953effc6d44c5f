//! Whole-server tests of direct messaging over raw WebSocket clients: acks and
//! pushes, multi-device delivery, idempotency, history paging, conversation
//! lists with unread counts, read receipts, typing and presence.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{TestServer, Ws};
use serde_json::{json, Value};

async fn send(ws: &mut Ws, id: u64, to: &str, cmid: &str, body: &str) -> Value {
    ws.request(json!({"type":"send","id":id,"to":to,"cmid":cmid,"body":body}))
        .await
}

#[tokio::test]
async fn ack_to_sender_push_to_every_other_session() {
    let srv = TestServer::start().await;
    let mut bob1 = srv.connect("bob").await;
    let mut bob2 = srv.connect("bob").await;
    let mut alice_phone = srv.connect("alice").await;
    let mut alice = srv.connect("alice").await;
    let ack = alice
        .request(json!({"type":"send","id":2,"to":"bob","cmid":"c-42","body":"hi","meta":{"reply_to":16,"a":[1,2]}}))
        .await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["conv"], "d:alice:bob");
    assert_eq!(ack["seq"], 1);
    assert!(ack["mid"].as_str().unwrap().len() >= 10);
    for ws in [&mut bob1, &mut bob2, &mut alice_phone] {
        let m = ws.recv().await;
        assert_eq!(m["type"], "msg");
        assert_eq!(m["conv"], "d:alice:bob");
        assert_eq!(m["seq"], 1);
        assert_eq!(m["from"], "alice");
        assert_eq!(m["body"], "hi");
        assert_eq!(m["kind"], "text");
        assert_eq!(m["cmid"], "c-42");
        assert_eq!(m["mid"], ack["mid"]);
        assert_eq!(m["ts"], ack["ts"]);
        assert_eq!(m["meta"], json!({"reply_to":16,"a":[1,2]}));
    }
    // The sending session gets no push of its own message.
    alice.expect_silence(Duration::from_millis(200)).await;
    // Reply by conv id; seq continues without gaps.
    let ack = bob1
        .request(json!({"type":"send","id":3,"conv":"d:alice:bob","cmid":"b1","body":"yo"}))
        .await;
    assert_eq!(ack["seq"], 2);
    assert_eq!(alice.recv().await["body"], "yo");
    let m = bob2.recv().await;
    assert_eq!(
        (m["from"].clone(), m["seq"].clone()),
        (json!("bob"), json!(2))
    );
}

#[tokio::test]
async fn send_errors() {
    let srv = TestServer::start().await;
    let mut alice = srv.connect("alice").await;
    let r = send(&mut alice, 1, "ghost", "c1", "x").await;
    assert_eq!(
        (r["type"].clone(), r["code"].clone()),
        (json!("error"), json!("not_found"))
    );
    let r = alice
        .request(json!({"type":"send","id":2,"conv":"d:bob:carol","cmid":"c2","body":"x"}))
        .await;
    assert_eq!(r["code"], "forbidden");
    let r = alice
        .request(json!({"type":"send","id":3,"conv":"g:nosuch","cmid":"c3","body":"x"}))
        .await;
    assert_eq!(r["code"], "not_found");
    let r = alice
        .request(json!({"type":"send","id":4,"to":"system","cmid":"c4","body":"x"}))
        .await;
    assert_eq!(r["code"], "not_found");
    let r = alice
        .request(json!({"type":"sync","id":5,"conv":"d:bob:carol"}))
        .await;
    assert_eq!(r["code"], "forbidden");
    let r = alice
        .request(json!({"type":"read","id":6,"conv":"d:bob:carol","seq":1}))
        .await;
    assert_eq!(r["code"], "forbidden");
    let r = alice
        .request(json!({"type":"typing","id":7,"conv":"d:bob:carol"}))
        .await;
    assert_eq!(r["code"], "forbidden");
    let r = alice
        .request(json!({"type":"send","id":9,"to":"alice","cmid":"z","body":"a\u{0}b"}))
        .await;
    assert_eq!(r["code"], "bad_request", "NUL is refused on every backend");
    // Notes to self work.
    let r = alice
        .request(json!({"type":"send","id":8,"conv":"d:alice:alice","cmid":"n1","body":"memo"}))
        .await;
    assert_eq!(
        (r["type"].clone(), r["seq"].clone()),
        (json!("ack"), json!(1))
    );
}

#[tokio::test]
async fn idempotent_resend_returns_the_original_ack_and_pushes_nothing() {
    let srv = TestServer::start().await;
    let mut bob = srv.connect("bob").await;
    let _carol = srv.connect("carol").await;
    let mut alice = srv.connect("alice").await;
    let first = send(&mut alice, 1, "bob", "same", "one").await;
    bob.recv_type("msg").await;
    // Same cmid, other body and even another target: original ack.
    let again = send(&mut alice, 2, "carol", "same", "two").await;
    assert_eq!(again["id"], 2);
    for k in ["conv", "seq", "mid", "ts"] {
        assert_eq!(first[k], again[k], "{k}");
    }
    // Even a repeat that would now fail its checks gets the original ack.
    let odd = alice
        .request(json!({"type":"send","id":5,"to":"ghost","cmid":"same","body":"x"}))
        .await;
    assert_eq!(
        (odd["type"].clone(), odd["seq"].clone()),
        (json!("ack"), first["seq"].clone())
    );
    let odd = alice
        .request(json!({"type":"send","id":6,"conv":"d:bob:carol","cmid":"same","body":"x"}))
        .await;
    assert_eq!(odd["mid"], first["mid"]);
    bob.expect_silence(Duration::from_millis(200)).await;
    let page = alice
        .request(json!({"type":"sync","id":3,"conv":"d:alice:bob","after":0}))
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["body"], "one");
    let page = alice
        .request(json!({"type":"sync","id":4,"conv":"d:alice:carol"}))
        .await;
    assert_eq!(page["items"], json!([]));
}

#[tokio::test]
async fn sync_pages_after_before_and_latest() {
    let srv = TestServer::start().await;
    let _bob = srv.connect("bob").await;
    let mut alice = srv.connect("alice").await;
    for i in 1..=25u64 {
        alice.send(json!({"type":"send","id":i,"to":"bob","cmid":format!("c{i}"),"body":format!("m{i}")})).await;
    }
    for _ in 0..25 {
        alice.recv_type("ack").await;
    }
    let seqs = |v: &Value| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    let p = alice
        .request(json!({"type":"sync","id":100,"conv":"d:alice:bob","after":10,"limit":10}))
        .await;
    assert_eq!(p["type"], "messages");
    assert_eq!(p["conv"], "d:alice:bob");
    assert_eq!(seqs(&p), (11..=20).collect::<Vec<_>>());
    assert_eq!(p["more"], true);
    let p = alice
        .request(json!({"type":"sync","id":101,"conv":"d:alice:bob","after":20}))
        .await;
    assert_eq!(seqs(&p), (21..=25).collect::<Vec<_>>());
    assert_eq!(p["more"], false);
    let p = alice
        .request(json!({"type":"sync","id":102,"conv":"d:alice:bob","before":11,"limit":4}))
        .await;
    assert_eq!(seqs(&p), vec![7, 8, 9, 10]);
    assert_eq!(p["more"], true);
    let p = alice
        .request(json!({"type":"sync","id":103,"conv":"d:alice:bob","before":3,"limit":50}))
        .await;
    assert_eq!(seqs(&p), vec![1, 2]);
    assert_eq!(p["more"], false);
    let p = alice
        .request(json!({"type":"sync","id":104,"conv":"d:alice:bob","limit":3}))
        .await;
    assert_eq!(seqs(&p), vec![23, 24, 25]);
    assert_eq!(p["more"], true);
    let p = alice
        .request(json!({"type":"sync","id":105,"conv":"d:alice:bob","after":0,"limit":100000}))
        .await;
    assert_eq!(
        seqs(&p).len(),
        25,
        "limit above 500 is clamped, not refused"
    );
}

#[tokio::test]
async fn offline_catch_up_with_convs_and_sync() {
    let srv = TestServer::start().await;
    drop(srv.connect("bob").await); // bob exists, then goes offline
    let mut alice = srv.connect("alice").await;
    for i in 1..=3 {
        send(&mut alice, i, "bob", &format!("c{i}"), &format!("m{i}")).await;
    }
    let mut bob = srv.connect("bob").await;
    let convs = bob.request(json!({"type":"convs","id":1})).await;
    assert_eq!(convs["type"], "convs");
    let item = &convs["items"][0];
    assert_eq!(item["conv"], "d:alice:bob");
    assert_eq!(item["kind"], "direct");
    assert_eq!(item["peer"], "alice");
    assert_eq!(item["last_seq"], 3);
    assert_eq!(item["read_seq"], 0);
    assert_eq!(item["unread"], 3);
    assert_eq!(item["last"]["body"], "m3");
    let p = bob
        .request(json!({"type":"sync","id":2,"conv":"d:alice:bob","after":0}))
        .await;
    let bodies: Vec<_> = p["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].clone())
        .collect();
    assert_eq!(bodies, vec![json!("m1"), json!("m2"), json!("m3")]);
    // The sender's own messages count as read by the sender.
    let convs = alice.request(json!({"type":"convs","id":3})).await;
    assert_eq!(convs["items"][0]["unread"], 0);
    assert_eq!(convs["items"][0]["read_seq"], 3);
    assert_eq!(convs["items"][0]["peer"], "bob");
}

#[tokio::test]
async fn convs_are_ordered_by_latest_activity() {
    let srv = TestServer::start().await;
    for u in ["bob", "carol"] {
        drop(srv.connect(u).await);
    }
    let mut alice = srv.connect("alice").await;
    send(&mut alice, 1, "bob", "c1", "to bob").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    send(&mut alice, 2, "carol", "c2", "to carol").await;
    let convs = alice.request(json!({"type":"convs","id":3})).await;
    assert_eq!(convs["items"][0]["conv"], "d:alice:carol");
    assert_eq!(convs["items"][1]["conv"], "d:alice:bob");
    tokio::time::sleep(Duration::from_millis(5)).await;
    send(&mut alice, 4, "bob", "c3", "bob again").await;
    let convs = alice.request(json!({"type":"convs","id":5})).await;
    assert_eq!(convs["items"][0]["conv"], "d:alice:bob");
}

#[tokio::test]
async fn read_moves_forward_only_and_sends_receipts() {
    let srv = TestServer::start().await;
    let mut alice = srv.connect("alice").await;
    let mut bob = srv.connect("bob").await;
    let mut bob2 = srv.connect("bob").await;
    for i in 1..=3 {
        send(&mut alice, i, "bob", &format!("c{i}"), "x").await;
    }
    let ok = bob
        .request(json!({"type":"read","id":9,"conv":"d:alice:bob","seq":2}))
        .await;
    assert_eq!(ok, json!({"type":"ok","id":9}));
    let r = alice.recv_type("receipt").await;
    assert_eq!(
        r,
        json!({"type":"receipt","conv":"d:alice:bob","user":"bob","seq":2})
    );
    // bob's other device learns it too (multi-device read sync).
    assert_eq!(bob2.recv_type("receipt").await["seq"], 2);
    // Lower seq: nothing moves, no receipt.
    bob.request(json!({"type":"read","id":10,"conv":"d:alice:bob","seq":1}))
        .await;
    alice.expect_silence(Duration::from_millis(200)).await;
    // Above last_seq: clamped to 3.
    bob.request(json!({"type":"read","id":11,"conv":"d:alice:bob","seq":99}))
        .await;
    assert_eq!(alice.recv_type("receipt").await["seq"], 3);
    let convs = bob.request(json!({"type":"convs","id":12})).await;
    assert_eq!(convs["items"][0]["read_seq"], 3);
    assert_eq!(convs["items"][0]["unread"], 0);
}

#[tokio::test]
async fn typing_is_relayed_and_never_stored() {
    let srv = TestServer::start().await;
    let mut bob = srv.connect("bob").await;
    let mut alice = srv.connect("alice").await;
    alice
        .send(json!({"type":"typing","conv":"d:alice:bob"}))
        .await;
    assert_eq!(
        bob.recv().await,
        json!({"type":"typing","conv":"d:alice:bob","user":"alice"})
    );
    alice.expect_silence(Duration::from_millis(150)).await;
    let p = bob
        .request(json!({"type":"sync","id":1,"conv":"d:alice:bob"}))
        .await;
    assert_eq!(p["items"], json!([]));
}

#[tokio::test]
async fn presence_snapshot_then_pushes_on_connect_and_disconnect() {
    let srv = TestServer::start().await;
    let mut alice = srv.connect("alice").await;
    let r = alice
        .request(json!({"type":"presence_sub","id":1,"users":["bob"]}))
        .await;
    assert_eq!(
        r,
        json!({"type":"presence","id":1,"items":[{"user":"bob","online":false,"last_seen":null}]})
    );
    let bob = srv.connect("bob").await;
    let p = alice.recv_type("presence").await;
    assert!(p.get("id").is_none());
    assert_eq!(p["items"][0]["user"], "bob");
    assert_eq!(p["items"][0]["online"], true);
    // A second device is no presence change.
    let bob2 = srv.connect("bob").await;
    drop(bob);
    alice.expect_silence(Duration::from_millis(200)).await;
    drop(bob2);
    let p = alice.recv_type("presence").await;
    assert_eq!(p["items"][0]["online"], false);
    let seen = p["items"][0]["last_seen"].as_i64().unwrap();
    assert!(seen > 1_700_000_000_000);
    let r = alice
        .request(json!({"type":"presence_sub","id":2,"users":["bob"]}))
        .await;
    assert_eq!(r["items"][0]["last_seen"], seen);
    let ok = alice
        .request(json!({"type":"presence_unsub","id":3,"users":["bob"]}))
        .await;
    assert_eq!(ok, json!({"type":"ok","id":3}));
    let _bob = srv.connect("bob").await;
    alice.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn concurrent_senders_get_gap_free_seqs() {
    let srv = TestServer::start().await;
    let _bob = srv.connect("bob").await;
    let mut tasks = Vec::new();
    for dev in 0..8 {
        let mut ws = srv.connect("alice").await;
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                ws.send(json!({"type":"send","id":i,"to":"bob","cmid":format!("d{dev}-{i}"),"body":"x"})).await;
            }
            let mut seqs = Vec::new();
            while seqs.len() < 25 {
                let f = ws.recv().await;
                if f["type"] == "ack" {
                    seqs.push(f["seq"].as_u64().unwrap());
                }
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (1..=200).collect::<Vec<_>>());
}

#[tokio::test]
async fn last_seen_is_kept_in_memory_only_while_needed() {
    let srv = TestServer::start().await;
    let carol = srv.connect("carol").await;
    drop(carol);
    let hub = &srv.server.as_ref().unwrap().state.hub;
    // Once carol is offline and her last_seen is stored, the in-memory entry
    // goes: the map is bounded by the users online.
    let give_up = std::time::Instant::now() + Duration::from_secs(5);
    while hub.presence().cached_len() > 0 {
        assert!(std::time::Instant::now() < give_up, "entry never dropped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Presence still answers from the store.
    let mut alice = srv.connect("alice").await;
    let r = alice
        .request(json!({"type":"presence_sub","id":1,"users":["carol"]}))
        .await;
    assert_eq!(r["items"][0]["online"], false);
    assert!(r["items"][0]["last_seen"].as_i64().unwrap() > 1_700_000_000_000);
}

#[tokio::test]
async fn graceful_shutdown_writes_pending_last_seen() {
    // A flush interval longer than the test: only the shutdown writes.
    let mut srv = TestServer::with(|c| c.store.last_seen_flush_ms = 3_600_000).await;
    let dave = srv.connect("dave").await;
    drop(dave);
    let running = srv.server.take().unwrap();
    let hub = running.state.hub.clone();
    let give_up = std::time::Instant::now() + Duration::from_secs(5);
    while hub.registry().is_online("dave") {
        assert!(
            std::time::Instant::now() < give_up,
            "dave never went offline"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(hub.presence().unsaved_len(), 1, "dave's last_seen waits");
    let url = running.state.config.effective_database_url();
    running.shutdown().await;
    let store = tern_store::open(&url, tern_store::OpenOptions::default())
        .await
        .unwrap();
    let dave = store.get_user("dave").await.unwrap().unwrap();
    assert!(dave.last_seen.unwrap() > 1_700_000_000_000);
    store.close().await;
}
