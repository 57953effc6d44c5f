//! tern persistence: the narrow [`Store`] trait the service layer uses, with
//! two real implementations, SQLite (embedded default) and PostgreSQL.
//!
//! The rules that make messaging correct live here: a gap-free
//! per-conversation `seq` assigned in the transaction that stores the message,
//! idempotency by a unique (sender, cmid), read pointers that never move back.
#![forbid(unsafe_code)]

mod batch;
mod common;
mod error;
mod postgres;
mod sqlite;
mod types;

pub use error::{StoreError, StoreResult};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use types::{Appended, HistoryPage, NewMessage, Page, ReadOutcome, UserRecord};

use std::sync::Arc;

use async_trait::async_trait;
use tern_proto::{ConvId, ConvSummary, Message};

/// Connection settings common to both backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// Pool size: PostgreSQL connections, or SQLite reader connections (SQLite
    /// always writes through exactly one more). Default 8.
    pub max_connections: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self { max_connections: 8 }
    }
}

/// Opens (creating and migrating as needed) the store named by `url`:
/// `sqlite:…` (e.g. `sqlite://tern-data/tern.db`) or `postgres://…` /
/// `postgresql://…`.
pub async fn open(url: &str, opts: OpenOptions) -> StoreResult<Arc<dyn Store>> {
    let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
    match scheme {
        "sqlite" => Ok(Arc::new(SqliteStore::open(url, opts).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(PostgresStore::open(url, opts).await?)),
        _ => Err(StoreError::Other(format!(
            "unsupported database URL scheme {scheme:?}: expected sqlite:… or postgres://…"
        ))),
    }
}

/// Opens a PostgreSQL store whose tables live in `schema` (created if
/// missing): a fresh database per test. Only `[a-z0-9_]` schema names.
#[doc(hidden)]
pub async fn open_postgres_in_schema(
    url: &str,
    schema: &str,
    opts: OpenOptions,
) -> StoreResult<Arc<dyn Store>> {
    Ok(Arc::new(
        PostgresStore::open_in_schema(url, schema, opts).await?,
    ))
}

/// Everything tern keeps durably. One implementation per database; the
/// service layer holds it as `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap liveness probe for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;

    /// Creates a user. `Ok(false)` when the name is taken (nothing changes).
    async fn create_user(
        &self,
        username: &str,
        password_hash: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<bool>;

    async fn get_user(&self, username: &str) -> StoreResult<Option<UserRecord>>;

    /// Records when the user's last session ended (or, while online, started).
    async fn set_last_seen(&self, username: &str, ts_ms: i64) -> StoreResult<()>;

    /// Bans or unbans. `Ok(false)` when no such user.
    async fn set_banned(&self, username: &str, banned: bool) -> StoreResult<bool>;

    /// Stores a batch of messages in ONE transaction (group commit) and
    /// returns one result per input, in input order. Each new message gets
    /// the next `seq` of its conversation (creating the conversation and, for
    /// direct conversations, both memberships on first use) and moves the
    /// sender's read pointer to it. A (sender, cmid) already stored yields the
    /// original message with `duplicate: true` and stores nothing.
    async fn append(&self, batch: Vec<NewMessage>) -> Vec<StoreResult<Appended>>;

    /// A page of a conversation's history, ascending by seq.
    async fn history(&self, conv: &ConvId, page: Page) -> StoreResult<HistoryPage>;

    /// The message `sender` stored with `cmid`, if any (answers a repeated
    /// send with its original ack even when the repeat itself is invalid).
    async fn find_sent(&self, sender: &str, cmid: &str) -> StoreResult<Option<Message>>;

    /// The user's conversations, most recent activity first.
    async fn conversations(&self, user: &str) -> StoreResult<Vec<ConvSummary>>;

    /// Moves `user`'s read pointer in `conv` up to `seq`, clamped to the
    /// conversation's last seq; never moves it back.
    async fn mark_read(&self, user: &str, conv: &ConvId, seq: u64) -> StoreResult<ReadOutcome>;

    /// Number of users and of stored messages (for `/admin/stats`).
    async fn counts(&self) -> StoreResult<(u64, u64)>;

    /// Flushes and closes connections (end of graceful shutdown).
    async fn close(&self);
}
