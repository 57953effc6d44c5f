//! Write-path cases: gap-free seqs under concurrency (one and two store
//! handles), idempotent resends, group commit results in input order.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use tern_proto::{ConvId, Message};
use tern_store::{Page, Store, StoreError};

use super::{direct, meta, msg, send, Backend};

const TASKS: usize = 8;
const SINGLES_PER_TASK: usize = 15;
const BATCHES_PER_TASK: usize = 5;

fn convs() -> Vec<ConvId> {
    vec![
        direct("alice", "bob"),
        direct("carol", "dave"),
        ConvId::Group("g1".into()),
    ]
}

/// Task `t` sends single messages to the first conversation, then batches
/// spread over all of them. Returns what each append answered.
async fn workload(stores: Vec<Arc<dyn Store>>) -> Vec<Message> {
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = stores[t % stores.len()].clone();
        tasks.push(tokio::spawn(async move {
            let convs = convs();
            let from = if t % 2 == 0 { "alice" } else { "bob" };
            let mut got = Vec::new();
            for i in 0..SINGLES_PER_TASK {
                let m = msg(
                    &convs[0],
                    from,
                    &format!("s-{t}-{i}"),
                    "hi",
                    1_000 + i as i64,
                );
                let a = send(&store, m).await;
                assert!(!a.duplicate);
                got.push(a.message);
            }
            for b in 0..BATCHES_PER_TASK {
                // Unsorted on purpose: conv 2, 0, 1, 0.
                let batch: Vec<_> = [2, 0, 1, 0]
                    .iter()
                    .enumerate()
                    .map(|(k, &c)| msg(&convs[c], from, &format!("b-{t}-{b}-{k}"), "x", 2_000))
                    .collect();
                let expected: Vec<_> = batch
                    .iter()
                    .map(|m| (m.conv.clone(), m.cmid.clone()))
                    .collect();
                let results = store.append(batch).await;
                for (r, (conv, cmid)) in results.into_iter().zip(expected) {
                    let a = r.unwrap();
                    assert_eq!((&a.message.conv, &a.message.cmid), (&conv, &cmid));
                    assert!(!a.duplicate);
                    got.push(a.message);
                }
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// Every conversation holds seq 1..=n exactly once, matching the acks, and
/// each task's messages keep their sending order.
async fn check_gap_free(store: &Arc<dyn Store>, acked: &[Message]) {
    let mut per_conv: BTreeMap<String, Vec<&Message>> = BTreeMap::new();
    for m in acked {
        per_conv.entry(m.conv.to_string()).or_default().push(m);
    }
    assert_eq!(per_conv.len(), 3);
    for (conv, sent) in per_conv {
        let conv_id = ConvId::parse(&conv).unwrap();
        let page = store
            .history(
                &conv_id,
                Page::After {
                    after: 0,
                    limit: 500,
                },
            )
            .await
            .unwrap();
        assert!(!page.more);
        let seqs: Vec<u64> = page.items.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=sent.len() as u64).collect::<Vec<_>>(), "{conv}");
        let stored: HashSet<(u64, &str)> = page
            .items
            .iter()
            .map(|m| (m.seq, m.cmid.as_str()))
            .collect();
        for m in &sent {
            assert!(stored.contains(&(m.seq, m.cmid.as_str())), "{conv}: {m:?}");
        }
        // Per task (cmid prefix), seqs ascend in sending order.
        for t in 0..TASKS {
            let mine: Vec<u64> = sent
                .iter()
                .filter(|m| m.cmid.split('-').nth(1) == Some(&t.to_string()))
                .map(|m| m.seq)
                .collect();
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "{conv} task {t}: {mine:?}"
            );
        }
    }
    let per_task = SINGLES_PER_TASK + 4 * BATCHES_PER_TASK;
    assert_eq!(store.counts().await.unwrap().1, (TASKS * per_task) as u64);
}

/// Group conversations exist from the group's creation.
async fn create_groups(store: &Arc<dyn Store>, ids: &[&str]) {
    for id in ids {
        store.create_group(id, id, "alice", &[], 1).await.unwrap();
    }
}

pub async fn seq_gap_free_under_concurrency(store: Arc<dyn Store>) {
    create_groups(&store, &["g1"]).await;
    let acked = workload(vec![store.clone()]).await;
    check_gap_free(&store, &acked).await;
}

/// Two independent stores on one database (two server processes).
pub async fn seq_gap_free_across_handles(b: &Backend) {
    let second = b.second().await;
    create_groups(&b.store, &["g1"]).await;
    let acked = workload(vec![b.store.clone(), second.clone()]).await;
    check_gap_free(&b.store, &acked).await;
    check_gap_free(&second, &acked).await;
    second.close().await;
}

pub async fn idempotent_resend(store: Arc<dyn Store>) {
    let ab = direct("alice", "bob");
    let ac = direct("alice", "carol");
    let first = send(&store, msg(&ab, "alice", "c1", "original", 10)).await;
    assert!(!first.duplicate);
    assert_eq!(first.message.seq, 1);

    // Same (sender, cmid), other body and target: the original comes back.
    let again = send(&store, msg(&ac, "alice", "c1", "changed", 20)).await;
    assert!(again.duplicate);
    assert_eq!(again.message, first.message);
    let page = store
        .history(&ac, Page::Latest { limit: 10 })
        .await
        .unwrap();
    assert!(page.items.is_empty());
    assert!(store.conversations("carol").await.unwrap().is_empty());
    // The original can be looked up by (sender, cmid).
    let found = store.find_sent("alice", "c1").await.unwrap();
    assert_eq!(found, Some(first.message.clone()));
    assert_eq!(store.find_sent("alice", "nope").await.unwrap(), None);
    assert_eq!(store.find_sent("carol", "c1").await.unwrap(), None);
    // Another sender may reuse the cmid.
    let bob = send(&store, msg(&ab, "bob", "c1", "from bob", 30)).await;
    assert!(!bob.duplicate);
    assert_eq!(bob.message.seq, 2);

    // Within one batch; the first copy wins even though it sorts last.
    create_groups(&store, &["zz"]).await;
    let g = ConvId::Group("zz".into());
    let results = store
        .append(vec![
            msg(&g, "alice", "c2", "first copy", 40),
            msg(&ab, "alice", "c2", "second copy", 41),
            msg(&ab, "alice", "c3", "other", 42),
            msg(&ab, "alice", "c1", "old resend", 43),
        ])
        .await;
    let results: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert!(!results[0].duplicate);
    assert_eq!(
        (results[0].message.conv.clone(), results[0].message.seq),
        (g.clone(), 1)
    );
    assert_eq!(results[0].message.body, "first copy");
    assert!(results[1].duplicate);
    assert_eq!(results[1].message, results[0].message);
    assert!(!results[2].duplicate);
    assert_eq!(results[2].message.seq, 3);
    assert!(results[3].duplicate);
    assert_eq!(results[3].message, first.message);

    let page = store
        .history(&ab, Page::Latest { limit: 10 })
        .await
        .unwrap();
    let bodies: Vec<&str> = page.items.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["original", "from bob", "other"]);
    assert_eq!(store.counts().await.unwrap().1, 4);
}

/// A stored row the store cannot read back is an error, never a panic, and
/// does not take the rest of its batch down.
/// A message to a group that does not exist (never created, or deleted) is
/// refused and leaves no conversation behind; the rest of its batch is stored.
pub async fn no_orphan_group_conversations(store: Arc<dyn Store>) {
    let ghost = ConvId::Group("ghost".into());
    let ab = direct("alice", "bob");
    let results = store
        .append(vec![
            msg(&ab, "alice", "o1", "fine", 10),
            msg(&ghost, "alice", "o2", "lost", 11),
        ])
        .await;
    assert!(results[0].is_ok());
    assert!(
        matches!(results[1], Err(StoreError::NotFound(_))),
        "{:?}",
        results[1]
    );
    create_groups(&store, &["gone"]).await;
    assert!(store.delete_group("gone").await.unwrap());
    let gone = ConvId::Group("gone".into());
    let late = store
        .append(vec![msg(&gone, "alice", "o3", "late", 12)])
        .await;
    assert!(
        matches!(late[0], Err(StoreError::NotFound(_))),
        "{:?}",
        late[0]
    );
    for conv in [&ghost, &gone] {
        let page = store
            .history(conv, Page::Latest { limit: 10 })
            .await
            .unwrap();
        assert!(page.items.is_empty());
    }
    let convs: Vec<String> = store
        .conversations("alice")
        .await
        .unwrap()
        .iter()
        .map(|c| c.conv.to_string())
        .collect();
    assert_eq!(convs, ["d:alice:bob"]);
}

pub async fn corrupt_rows_are_errors(b: &Backend) {
    let store = &b.store;
    let ab = direct("alice", "bob");
    let mut m = msg(&ab, "alice", "c1", "hi", 1);
    m.meta = Some(meta(r#"{"a":1}"#));
    send(store, m).await;
    b.exec("UPDATE messages SET meta = 'not json' WHERE cmid = 'c1'")
        .await;
    let err = store
        .history(&ab, Page::Latest { limit: 5 })
        .await
        .unwrap_err();
    assert!(matches!(err, tern_store::StoreError::Corrupt(_)), "{err:?}");
    let err = store.conversations("bob").await.unwrap_err();
    assert!(matches!(err, tern_store::StoreError::Corrupt(_)), "{err:?}");

    let results = store
        .append(vec![
            msg(&ab, "bob", "ok-1", "fine", 2),
            msg(&ab, "alice", "c1", "resend of the corrupt one", 3),
            msg(&ab, "bob", "ok-2", "fine too", 4),
        ])
        .await;
    assert_eq!(results[0].as_ref().unwrap().message.seq, 2);
    assert!(matches!(
        results[1],
        Err(tern_store::StoreError::Corrupt(_))
    ));
    assert_eq!(results[2].as_ref().unwrap().message.seq, 3);
}

/// One append bigger than any single statement of a backend (SQLite inserts
/// at most 512 rows per statement): every message stored, in input order,
/// seqs gap-free per conversation, a resend inside the batch recognised.
pub async fn large_batch(store: Arc<dyn Store>) {
    let convs = [direct("alice", "bob"), direct("carol", "dave")];
    let mut batch: Vec<_> = (0..1300)
        .map(|i| {
            let from = if i % 2 == 0 { "alice" } else { "carol" };
            msg(&convs[i % 2], from, &format!("big-{i}"), "x", i as i64)
        })
        .collect();
    batch.push(msg(&convs[0], "alice", "big-0", "again", 9_999));
    let results = store.append(batch).await;
    assert_eq!(results.len(), 1301);
    for (i, r) in results.iter().take(1300).enumerate() {
        let a = r.as_ref().unwrap();
        assert!(!a.duplicate);
        assert_eq!(a.message.cmid, format!("big-{i}"));
        assert_eq!(a.message.seq, (i / 2 + 1) as u64);
    }
    let again = results[1300].as_ref().unwrap();
    assert!(again.duplicate);
    assert_eq!(again.message.seq, 1);
    for conv in &convs {
        let page = store
            .history(conv, Page::Latest { limit: 1 })
            .await
            .unwrap();
        assert_eq!(page.items[0].seq, 650);
    }
}
