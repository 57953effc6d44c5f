//! The shared store test suite: a harness that opens a fresh SQLite file or
//! PostgreSQL schema, and the backend-generic cases in the submodules.

pub mod accounts;
pub mod append;
pub mod groups;
pub mod reading;

use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use tern_proto::message::Meta;
use tern_proto::{ConvId, MessageKind};
use tern_store::{NewMessage, OpenOptions, Store};

/// One fresh database with a store on it.
pub struct Backend {
    pub store: Arc<dyn Store>,
    raw: Raw,
    kind: Kind,
}

enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

enum Kind {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        url: String,
        schema: String,
    },
}

fn opts() -> OpenOptions {
    OpenOptions {
        max_connections: 4,
        ..OpenOptions::default()
    }
}

impl Backend {
    /// A store on a new SQLite file in a temporary directory (in a
    /// sub-directory that does not exist yet, to check it is created).
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("tern.db");
        let url = format!("sqlite://{}", path.display());
        let store = tern_store::open(&url, opts()).await.unwrap();
        let raw = SqlitePool::connect_with(SqliteConnectOptions::from_str(&url).unwrap())
            .await
            .unwrap();
        Self {
            store,
            raw: Raw::Sqlite(raw),
            kind: Kind::Sqlite { _dir: dir, url },
        }
    }

    /// A store in a new schema of the test PostgreSQL, or `None` (skip) when
    /// `TERN_TEST_POSTGRES_URL` is unset outside CI.
    pub async fn postgres() -> Option<Self> {
        let Ok(url) = std::env::var("TERN_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "TERN_TEST_POSTGRES_URL must be set in CI (e.g. postgres://postgres@127.0.0.1:5432/test)"
            );
            eprintln!("skipping PostgreSQL store tests: TERN_TEST_POSTGRES_URL not set");
            return None;
        };
        let schema = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
        let store = tern_store::open_postgres_in_schema(&url, &schema, opts())
            .await
            .unwrap();
        let raw_opts = PgConnectOptions::from_str(&url)
            .unwrap()
            .options([("search_path", schema.as_str())]);
        let raw = PgPool::connect_with(raw_opts).await.unwrap();
        Some(Self {
            store,
            raw: Raw::Postgres(raw),
            kind: Kind::Postgres { url, schema },
        })
    }

    /// Another independent store on the same database, as a second server
    /// process would have.
    pub async fn second(&self) -> Arc<dyn Store> {
        match &self.kind {
            Kind::Sqlite { url, .. } => tern_store::open(url, opts()).await.unwrap(),
            Kind::Postgres { url, schema } => {
                tern_store::open_postgres_in_schema(url, schema, opts())
                    .await
                    .unwrap()
            }
        }
    }

    /// Runs SQL (the same text on both databases) behind the store's back.
    pub async fn exec(&self, sql: &str) {
        match &self.raw {
            Raw::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
            Raw::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub async fn finish(self) {
        self.store.close().await;
        match self.raw {
            Raw::Sqlite(pool) => pool.close().await,
            Raw::Postgres(pool) => pool.close().await,
        }
        if let Kind::Postgres { url, schema } = &self.kind {
            tern_store::PostgresStore::drop_schema(url, schema)
                .await
                .unwrap();
        }
    }
}

pub fn direct(a: &str, b: &str) -> ConvId {
    ConvId::direct(a, b)
}

/// A text message as the service would hand it to the store.
pub fn msg(conv: &ConvId, from: &str, cmid: &str, body: &str, ts: i64) -> NewMessage {
    NewMessage {
        conv: conv.clone(),
        from: from.to_owned(),
        body: body.to_owned(),
        kind: MessageKind::Text,
        cmid: cmid.to_owned(),
        meta: None,
        mid: ulid::Ulid::new().to_string(),
        ts,
    }
}

pub fn meta(json: &str) -> Meta {
    Meta::from_json(json).unwrap()
}

/// Appends one message and unwraps its result.
pub async fn send(store: &Arc<dyn Store>, m: NewMessage) -> tern_store::Appended {
    let mut results = store.append(vec![m]).await;
    assert_eq!(results.len(), 1);
    results.pop().unwrap().unwrap()
}
