//! Account cases: create / conflict / get, bans, last seen, counts, ping.

use std::sync::Arc;

use tern_store::{Provisioned, Store, UserRecord};

use super::{direct, msg, send};

pub async fn users(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    assert_eq!(store.counts().await.unwrap(), (0, 0));
    assert!(store
        .create_user("alice", Some("$argon2id$x"), 1_000)
        .await
        .unwrap());
    assert!(!store.create_user("alice", None, 2_000).await.unwrap());
    assert!(store.create_user("bob", None, 3_000).await.unwrap());

    let alice = store.get_user("alice").await.unwrap().unwrap();
    assert_eq!(
        alice,
        UserRecord {
            username: "alice".into(),
            password_hash: Some("$argon2id$x".into()),
            created_at: 1_000,
            banned: false,
            last_seen: None,
        }
    );
    assert_eq!(
        store.get_user("bob").await.unwrap().unwrap().password_hash,
        None
    );
    assert_eq!(store.get_user("nobody").await.unwrap(), None);

    assert!(store.set_banned("alice", true).await.unwrap());
    assert!(store.set_banned("alice", true).await.unwrap());
    assert!(store.get_user("alice").await.unwrap().unwrap().banned);
    assert!(store.set_banned("bob", true).await.unwrap());
    assert_eq!(store.banned_users().await.unwrap(), ["alice", "bob"]);
    assert!(store.set_banned("bob", false).await.unwrap());
    assert_eq!(store.banned_users().await.unwrap(), ["alice"]);
    assert!(store.set_banned("alice", false).await.unwrap());
    assert!(!store.get_user("alice").await.unwrap().unwrap().banned);
    assert!(store.banned_users().await.unwrap().is_empty());
    assert!(!store.set_banned("nobody", true).await.unwrap());

    store
        .set_last_seen_many(&[("bob", 5_000), ("nobody", 5_000)])
        .await
        .unwrap();
    assert_eq!(
        store.get_user("bob").await.unwrap().unwrap().last_seen,
        Some(5_000)
    );
    // Never backwards; an empty batch is a no-op.
    store
        .set_last_seen_many(&[("bob", 4_000), ("alice", 7_000)])
        .await
        .unwrap();
    store.set_last_seen_many(&[]).await.unwrap();
    assert_eq!(
        store.get_user("bob").await.unwrap().unwrap().last_seen,
        Some(5_000)
    );
    assert_eq!(
        store.get_user("alice").await.unwrap().unwrap().last_seen,
        Some(7_000)
    );

    let ab = direct("alice", "bob");
    send(&store, msg(&ab, "alice", "c1", "hi", 1)).await;
    send(&store, msg(&ab, "alice", "c1", "resend", 2)).await;
    send(&store, msg(&ab, "bob", "c1", "hi back", 3)).await;
    assert_eq!(store.counts().await.unwrap(), (2, 2));
}

/// First connects by token: unknown users are created in one batch, known
/// ones reported with their ban, repeated names created once.
pub async fn provisioning(store: Arc<dyn Store>) {
    assert!(store
        .create_user("carol", Some("$argon2id$x"), 1_000)
        .await
        .unwrap());
    assert!(store.set_banned("carol", true).await.unwrap());
    let got = store
        .provision_users(&["dave", "carol", "erin", "dave"], 5_000)
        .await
        .unwrap();
    let p = |created, banned| Provisioned { created, banned };
    assert_eq!(
        got,
        [
            p(true, false),
            p(false, true),
            p(true, false),
            p(false, false)
        ]
    );
    let dave = store.get_user("dave").await.unwrap().unwrap();
    assert_eq!((dave.password_hash, dave.created_at), (None, 5_000));
    let carol = store.get_user("carol").await.unwrap().unwrap();
    assert_eq!(
        carol.password_hash.as_deref(),
        Some("$argon2id$x"),
        "untouched"
    );
    // Again: nothing new.
    let again = store
        .provision_users(&["erin", "dave"], 6_000)
        .await
        .unwrap();
    assert_eq!(again, [p(false, false), p(false, false)]);
    assert!(store.provision_users(&[], 7_000).await.unwrap().is_empty());
    assert_eq!(
        store.get_user("erin").await.unwrap().unwrap().created_at,
        5_000
    );
}
