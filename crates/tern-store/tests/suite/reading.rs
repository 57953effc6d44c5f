//! Read-path cases: history paging, read pointers, the conversation list and
//! meta / kind round trips.

use std::sync::Arc;

use tern_proto::frame::ConvKind;
use tern_proto::{ConvId, MessageKind};
use tern_store::{Page, ReadOutcome, Store};

use super::{direct, meta, msg, send, Backend};

async fn seqs(store: &Arc<dyn Store>, conv: &ConvId, page: Page) -> (Vec<u64>, bool) {
    let page = store.history(conv, page).await.unwrap();
    (page.items.iter().map(|m| m.seq).collect(), page.more)
}

fn range(a: u64, b: u64) -> Vec<u64> {
    (a..=b).collect()
}

pub async fn history_paging(store: Arc<dyn Store>) {
    let ab = direct("alice", "bob");
    let batch = (1..=25)
        .map(|i| msg(&ab, "alice", &format!("c{i}"), &format!("m{i}"), i))
        .collect();
    assert!(store.append(batch).await.iter().all(Result::is_ok));
    let s = &store;
    let after = |after, limit| Page::After { after, limit };
    let before = |before, limit| Page::Before { before, limit };
    assert_eq!(seqs(s, &ab, after(0, 10)).await, (range(1, 10), true));
    assert_eq!(seqs(s, &ab, after(15, 10)).await, (range(16, 25), false));
    assert_eq!(seqs(s, &ab, after(20, 10)).await, (range(21, 25), false));
    assert_eq!(seqs(s, &ab, after(24, 1)).await, (vec![25], false));
    assert_eq!(seqs(s, &ab, after(23, 1)).await, (vec![24], true));
    assert_eq!(seqs(s, &ab, after(25, 10)).await, (vec![], false));
    assert_eq!(seqs(s, &ab, after(99, 10)).await, (vec![], false));
    assert_eq!(seqs(s, &ab, before(26, 10)).await, (range(16, 25), true));
    assert_eq!(seqs(s, &ab, before(99, 10)).await, (range(16, 25), true));
    assert_eq!(seqs(s, &ab, before(11, 10)).await, (range(1, 10), false));
    assert_eq!(seqs(s, &ab, before(12, 10)).await, (range(2, 11), true));
    assert_eq!(seqs(s, &ab, before(5, 10)).await, (range(1, 4), false));
    assert_eq!(seqs(s, &ab, before(1, 10)).await, (vec![], false));
    let latest = |limit| Page::Latest { limit };
    assert_eq!(seqs(s, &ab, latest(10)).await, (range(16, 25), true));
    assert_eq!(seqs(s, &ab, latest(25)).await, (range(1, 25), false));
    assert_eq!(seqs(s, &ab, latest(500)).await, (range(1, 25), false));
    assert_eq!(seqs(s, &ab, latest(1)).await, (vec![25], true));
    let page = store.history(&ab, after(0, 2)).await.unwrap();
    assert_eq!(page.items[1].body, "m2");
    assert_eq!(page.items[1].ts, 2);
    let nobody = direct("xavier", "yves");
    assert_eq!(seqs(s, &nobody, latest(10)).await, (vec![], false));
}

fn outcome(read_seq: u64, moved: bool) -> ReadOutcome {
    ReadOutcome { read_seq, moved }
}

async fn read_seq_of(store: &Arc<dyn Store>, user: &str, conv: &ConvId) -> u64 {
    let list = store.conversations(user).await.unwrap();
    list.iter().find(|c| &c.conv == conv).unwrap().read_seq
}

pub async fn read_pointers(store: Arc<dyn Store>) {
    let ab = direct("alice", "bob");
    for i in 1..=3 {
        send(&store, msg(&ab, "alice", &format!("c{i}"), "hi", i)).await;
    }
    // Sending moved the sender's pointer, not the receiver's.
    assert_eq!(read_seq_of(&store, "alice", &ab).await, 3);
    assert_eq!(read_seq_of(&store, "bob", &ab).await, 0);

    let mark = |user: &'static str, seq| {
        let store = store.clone();
        let ab = ab.clone();
        async move { store.mark_read(user, &ab, seq).await.unwrap() }
    };
    assert_eq!(mark("bob", 2).await, outcome(2, true));
    assert_eq!(mark("bob", 2).await, outcome(2, false));
    assert_eq!(mark("bob", 1).await, outcome(2, false));
    assert_eq!(mark("bob", 0).await, outcome(2, false));
    assert_eq!(mark("bob", u64::MAX).await, outcome(3, true));
    assert_eq!(mark("bob", 100).await, outcome(3, false));
    assert_eq!(mark("alice", 1).await, outcome(3, false));

    // Bob answers: his pointer follows his send; alice's stays.
    send(&store, msg(&ab, "bob", "b1", "yo", 4)).await;
    assert_eq!(read_seq_of(&store, "bob", &ab).await, 4);
    assert_eq!(read_seq_of(&store, "alice", &ab).await, 3);
    // A pointer already beyond the new seq is never pulled back by a send.
    assert_eq!(mark("alice", 4).await, outcome(4, true));

    let unknown = direct("xavier", "yves");
    let r = store.mark_read("xavier", &unknown, 5).await.unwrap();
    assert_eq!(r, outcome(0, false));
    let r = store.mark_read("carol", &ab, 5).await.unwrap();
    assert_eq!(r, outcome(0, false));
}

pub async fn conversation_list(b: &Backend) {
    let store = &b.store;
    let ab = direct("alice", "bob");
    let ac = direct("alice", "carol");
    let aa = direct("alice", "alice");
    let ad = direct("alice", "dave");
    send(store, msg(&ab, "alice", "1", "to bob", 100)).await;
    send(store, msg(&ab, "bob", "2", "to alice", 110)).await;
    send(store, msg(&ab, "bob", "3", "again", 120)).await;
    send(store, msg(&ac, "carol", "4", "hi alice", 130)).await;
    send(store, msg(&aa, "alice", "5", "note", 90)).await;
    send(store, msg(&ad, "dave", "6", "tie", 130)).await;
    // A group with a name (the group tables are filled elsewhere).
    b.exec("INSERT INTO groups (id, name, owner, created_at) VALUES ('x1', 'Friends', 'alice', 1)")
        .await;
    b.exec(
        "INSERT INTO conversations (conv, kind, last_seq, last_ts, created_at) \
         VALUES ('g:x1', 'group', 0, 1, 1)",
    )
    .await;
    b.exec("INSERT INTO conv_members (conv, username, joined_at) VALUES ('g:x1', 'alice', 1)")
        .await;
    b.exec("INSERT INTO conv_members (conv, username, joined_at) VALUES ('g:x1', 'bob', 1)")
        .await;
    let g = ConvId::Group("x1".into());
    send(store, msg(&g, "bob", "7", "group hello", 95)).await;

    let list = store.conversations("alice").await.unwrap();
    let order: Vec<String> = list.iter().map(|c| c.conv.to_string()).collect();
    // last_ts desc; the tie at 130 is broken by conv.
    assert_eq!(
        order,
        [
            "d:alice:carol",
            "d:alice:dave",
            "d:alice:bob",
            "g:x1",
            "d:alice:alice"
        ]
    );
    let c = &list[2];
    assert_eq!(
        (c.kind, c.peer.as_deref(), c.name.as_deref()),
        (ConvKind::Direct, Some("bob"), None)
    );
    assert_eq!((c.last_seq, c.read_seq, c.unread), (3, 1, 2));
    let last = c.last.as_ref().unwrap();
    assert_eq!(
        (last.seq, last.from.as_str(), last.body.as_str()),
        (3, "bob", "again")
    );
    assert_eq!(
        (list[0].unread, list[0].peer.as_deref()),
        (1, Some("carol"))
    );
    let grp = &list[3];
    assert_eq!(
        (grp.kind, grp.peer.as_deref(), grp.name.as_deref()),
        (ConvKind::Group, None, Some("Friends"))
    );
    assert_eq!((grp.last_seq, grp.read_seq, grp.unread), (1, 0, 1));
    let notes = &list[4];
    assert_eq!(
        (notes.peer.as_deref(), notes.last_seq, notes.unread),
        (Some("alice"), 1, 0)
    );

    let list = store.conversations("bob").await.unwrap();
    let order: Vec<String> = list.iter().map(|c| c.conv.to_string()).collect();
    assert_eq!(order, ["d:alice:bob", "g:x1"]);
    assert_eq!(
        (list[0].peer.as_deref(), list[0].read_seq, list[0].unread),
        (Some("alice"), 3, 0)
    );
    assert_eq!((list[1].read_seq, list[1].unread), (1, 0));

    store.mark_read("alice", &ab, 3).await.unwrap();
    let list = store.conversations("alice").await.unwrap();
    assert_eq!(list[2].unread, 0);
    assert!(store.conversations("nobody").await.unwrap().is_empty());
}

pub async fn meta_and_kind_round_trip(store: Arc<dyn Store>) {
    let ab = direct("alice", "bob");
    let text = r#"{"z":1,"a":{"b":[1,2.5,"x"],"é":null},"reply_to":16}"#;
    let mut m = msg(&ab, "alice", "c1", "with meta", 1);
    m.meta = Some(meta(text));
    m.kind = MessageKind::E2e;
    let sent = send(&store, m.clone()).await;
    assert_eq!(sent.message.meta.as_ref().map(|m| m.as_str()), Some(text));
    let odd = "\"quotes\", emoji 🦀, \\ and \n\u{1}";
    let mut plain = msg(&ab, "system", "c2", odd, 2);
    plain.kind = MessageKind::System;
    send(&store, plain).await;

    let page = store
        .history(&ab, Page::Latest { limit: 10 })
        .await
        .unwrap();
    let [first, second] = &page.items[..] else {
        panic!("two messages expected: {page:?}")
    };
    assert_eq!(first.meta.as_ref().unwrap().as_str(), text);
    assert_eq!(first.kind, MessageKind::E2e);
    assert_eq!(
        (first.mid.as_str(), first.from.as_str()),
        (m.mid.as_str(), "alice")
    );
    assert_eq!(first, &sent.message);
    assert!(second.meta.is_none());
    assert_eq!(
        (second.kind, second.from.as_str()),
        (MessageKind::System, "system")
    );
    // The duplicate answer carries the stored meta too.
    let again = send(&store, m).await;
    assert!(again.duplicate);
    assert_eq!(again.message.meta.as_ref().unwrap().as_str(), text);

    // U+0000 in a body: SQLite stores it; PostgreSQL text cannot hold it, so
    // that one message fails, and only that one (per-message fallback).
    let nul = "nul\u{0}inside";
    let results = store
        .append(vec![
            msg(&ab, "alice", "n1", "before", 3),
            msg(&ab, "alice", "n2", nul, 4),
            msg(&ab, "alice", "n3", "after", 5),
        ])
        .await;
    assert_eq!(results[0].as_ref().unwrap().message.seq, 3);
    let after = results[2].as_ref().unwrap().message.seq;
    match &results[1] {
        Ok(a) => {
            assert_eq!((a.message.seq, after), (4, 5));
            let page = store
                .history(&ab, Page::After { after: 3, limit: 1 })
                .await
                .unwrap();
            assert_eq!(page.items[0].body, nul);
        }
        Err(e) => {
            assert!(
                matches!(
                    e,
                    tern_store::StoreError::Database { .. } | tern_store::StoreError::Other(_)
                ),
                "{e:?}"
            );
            assert_eq!(after, 4);
        }
    }
}
