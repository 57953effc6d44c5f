//! The store test suite, run against SQLite (a temporary file) and
//! PostgreSQL (a fresh schema per test in `TERN_TEST_POSTGRES_URL`; skipped
//! with a note when unset, a failure when `CI` is set).
#![allow(clippy::unwrap_used)]

mod suite;

use suite::Backend;

/// Instantiates every case for both backends. `store` cases take
/// `Arc<dyn Store>`; `backend` cases take the whole `&Backend` (raw SQL or a
/// second store handle on the same database).
macro_rules! suite {
    (store: [$($s:ident),* $(,)?], backend: [$($b:ident),* $(,)?] $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $s() {
                    let b = Backend::sqlite().await;
                    suite_case!($s, b.store.clone());
                    b.finish().await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $b() {
                    let b = Backend::sqlite().await;
                    suite_case!($b, &b);
                    b.finish().await;
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $s() {
                    let Some(b) = Backend::postgres().await else { return };
                    suite_case!($s, b.store.clone());
                    b.finish().await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $b() {
                    let Some(b) = Backend::postgres().await else { return };
                    suite_case!($b, &b);
                    b.finish().await;
                }
            )*
        }
    };
}

/// Calls the case of that name, wherever in `suite` it lives.
macro_rules! suite_case {
    ($name:ident, $arg:expr) => {{
        #[allow(unused_imports)]
        use crate::suite::{accounts::*, append::*, groups::*, reading::*};
        $name($arg).await
    }};
}

suite! {
    store: [
        seq_gap_free_under_concurrency,
        idempotent_resend,
        large_batch,
        no_orphan_group_conversations,
        history_paging,
        read_pointers,
        meta_and_kind_round_trip,
        users,
        provisioning,
        group_create_get_list_rename,
        group_members,
        group_roles,
        group_delete_cascades,
        group_messaging,
        group_memberships_dump,
        group_concurrent_changes,
    ],
    backend: [
        seq_gap_free_across_handles,
        corrupt_rows_are_errors,
        conversation_list,
    ],
}

#[tokio::test]
async fn unknown_scheme_is_refused() {
    let opts = tern_store::OpenOptions::default();
    assert_eq!(opts.max_connections, 8);
    let Err(err) = tern_store::open("mysql://root@localhost/x", opts).await else {
        panic!("mysql accepted")
    };
    assert!(
        matches!(err, tern_store::StoreError::Other(ref m) if m.contains("mysql")),
        "{err}"
    );
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable() {
    let url = "postgres://postgres@127.0.0.1:1/none?connect_timeout=2";
    let Err(err) = tern_store::open(url, tern_store::OpenOptions::default()).await else {
        panic!("connected to port 1")
    };
    assert!(err.is_unavailable(), "{err}");
}

#[tokio::test]
async fn sqlite_in_memory_works() {
    let store = tern_store::open("sqlite::memory:", tern_store::OpenOptions::default())
        .await
        .unwrap();
    let ab = suite::direct("alice", "bob");
    let a = suite::send(&store, suite::msg(&ab, "alice", "c1", "hi", 1)).await;
    assert_eq!(a.message.seq, 1);
    let list = store.conversations("bob").await.unwrap();
    assert_eq!(list.len(), 1);
    store.close().await;
}
