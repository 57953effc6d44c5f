//! A SQLite database written by an older schema version keeps its messages
//! when a newer tern opens it (migration 0002 rebuilds `messages`).
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use tern_proto::ConvId;
use tern_store::{OpenOptions, Page};

#[tokio::test]
async fn messages_survive_the_without_rowid_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tern.db").display());
    let options = SqliteConnectOptions::from_str(&url)
        .unwrap()
        .create_if_missing(true);
    let pool = SqlitePool::connect_with(options).await.unwrap();
    let mut v1 = sqlx::migrate!("./migrations/sqlite");
    v1.migrations = Cow::Owned(
        v1.migrations
            .iter()
            .filter(|m| m.version == 1)
            .cloned()
            .collect(),
    );
    v1.run(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO conversations (conv, kind, last_seq, last_ts, created_at) \
         VALUES ('d:alice:bob', 'direct', 2, 20, 10)",
    )
    .execute(&pool)
    .await
    .unwrap();
    for (seq, body) in [(1, "first"), (2, "second")] {
        sqlx::query(
            "INSERT INTO messages (conv, seq, mid, sender, body, kind, ts, cmid, meta) \
             VALUES ('d:alice:bob', ?1, ?2, 'alice', ?3, 'text', ?4, ?5, NULL)",
        )
        .bind(seq)
        .bind(format!("01J0000000000000000000000{seq}"))
        .bind(body)
        .bind(seq * 10)
        .bind(format!("c{seq}"))
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let store = tern_store::open(&url, OpenOptions::default())
        .await
        .unwrap();
    let conv = ConvId::parse("d:alice:bob").unwrap();
    let page = store
        .history(
            &conv,
            Page::After {
                after: 0,
                limit: 10,
            },
        )
        .await
        .unwrap();
    let bodies: Vec<&str> = page.items.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["first", "second"]);
    // The (sender, cmid) index is back: a resend is still recognised.
    let again = store.find_sent("alice", "c2").await.unwrap().unwrap();
    assert_eq!(again.seq, 2);
    store.close().await;
}
