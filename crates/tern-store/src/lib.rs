//! tern persistence: the narrow [`Store`] trait the service layer uses, with
//! two real implementations, SQLite (embedded default) and PostgreSQL.
//!
//! The rules that make messaging correct live here: a gap-free
//! per-conversation `seq` assigned in the transaction that stores the message,
//! idempotency by a unique (sender, cmid), read pointers that never move back.
#![forbid(unsafe_code)]

mod batch;
mod bounded;
mod common;
mod error;
mod groups;
mod postgres;
mod sqlite;
mod types;

pub use bounded::Bounded;
pub use error::{DbFailure, StoreError, StoreResult};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use types::{
    Appended, GroupRecord, GroupRole, HistoryPage, NewMessage, Page, Provisioned, ReadOutcome,
    RoleOutcome, UserRecord,
};

use std::sync::Arc;

use async_trait::async_trait;
use tern_proto::{ConvId, ConvSummary, Message};

/// Connection settings common to both backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// Pool size: PostgreSQL connections, or SQLite reader connections (SQLite
    /// always writes through exactly one more). Default 8.
    pub max_connections: u32,
    /// SQLite page cache of each connection, KiB. Default 16384 (16 MiB).
    pub sqlite_cache_kib: u64,
    /// SQLite memory-mapped I/O window per connection, MiB (0 = off).
    /// Default 256.
    pub sqlite_mmap_mib: u64,
    /// SQLite moves the WAL into the database file once the WAL holds this
    /// many pages (4 KiB each). Hot pages (conversation counters, index
    /// leaves) are rewritten by every batch; a larger WAL copies each of them
    /// once per checkpoint instead of once per few batches. Default 10000.
    /// With `sqlite_checkpoint_ms` this is only the backstop: the writer
    /// checkpoints itself when the background checkpoints fall behind.
    pub sqlite_checkpoint_pages: u32,
    /// SQLite: a background task on a reader connection checkpoints the WAL
    /// this often, ms, so the writer (one thread, every commit waits on it)
    /// does not copy pages and `fsync` the database file itself. 0: only the
    /// writer checkpoints, at `sqlite_checkpoint_pages`. Default 250.
    pub sqlite_checkpoint_ms: u64,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            sqlite_cache_kib: 16 * 1024,
            sqlite_mmap_mib: 256,
            sqlite_checkpoint_pages: 10_000,
            sqlite_checkpoint_ms: 250,
        }
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

    /// Makes sure every one of `usernames` exists, creating the unknown ones
    /// without a password (what a token's first connect does when
    /// auto-provisioning), in one statement for all of them, and says for
    /// each, in the order given, whether it was created and whether it is
    /// banned. A name may appear twice; only its first place says `created`.
    async fn provision_users(
        &self,
        usernames: &[&str],
        now_ms: i64,
    ) -> StoreResult<Vec<Provisioned>>;

    /// Records when each user's last session ended (or, while online,
    /// started), all in one statement. A stored time never moves backwards;
    /// unknown users are skipped.
    async fn set_last_seen_many(&self, items: &[(&str, i64)]) -> StoreResult<()>;

    /// Bans or unbans. `Ok(false)` when no such user.
    async fn set_banned(&self, username: &str, banned: bool) -> StoreResult<bool>;

    /// Every banned user (bans are few; a node reloads them after it may
    /// have missed a ban made elsewhere).
    async fn banned_users(&self) -> StoreResult<Vec<String>>;

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

    // Groups (PROTOCOL.md §5). A group is a `groups` row plus its `g:<id>`
    // conversation, whose `conv_members` rows are the members, with their
    // role ('owner', 'admin', 'member') and read pointer. Every change below
    // is one transaction. Permission rules (who may do what) and
    // `max_group_members` belong to the service; the store only refuses what
    // would break the data (a second owner, an owner that is not a member).

    /// Creates group `id` named `name`: its row, its `g:<id>` conversation
    /// (kind group, `last_seq` 0, `last_ts` = `now_ms`) and its members:
    /// `owner` with role owner and every other user of `members` (duplicates
    /// and the owner ignored) with role member, all with read pointer 0.
    /// `Conflict` when the group or its conversation already exists; `Other`
    /// when `id` is not a valid group id (1 to 64 of `[A-Za-z0-9_-]`).
    async fn create_group(
        &self,
        id: &str,
        name: &str,
        owner: &str,
        members: &[String],
        now_ms: i64,
    ) -> StoreResult<GroupRecord>;

    /// The group, or `None` if there is none (deleted groups are gone).
    async fn get_group(&self, id: &str) -> StoreResult<Option<GroupRecord>>;

    /// The groups `user` is a member of, newest first (`created_at`
    /// descending, then id descending).
    async fn groups_of(&self, user: &str) -> StoreResult<Vec<GroupRecord>>;

    /// Renames the group; `None` when there is no such group.
    async fn rename_group(&self, id: &str, name: &str) -> StoreResult<Option<GroupRecord>>;

    /// Deletes the group for good: its row, its conversation, memberships and
    /// messages (cascade). `Ok(false)` when there was no such group. The
    /// messages no longer count in [`Store::counts`], and their (sender,
    /// cmid) keys are free again.
    async fn delete_group(&self, id: &str) -> StoreResult<bool>;

    /// Adds `users` as plain members (duplicates and existing members
    /// skipped). New members start with read pointer 0: the whole earlier
    /// history is theirs to read, and unread. Returns the group after the
    /// change and the users really added (sorted), or `None` when there is
    /// no such group.
    async fn add_members(
        &self,
        id: &str,
        users: &[String],
        now_ms: i64,
    ) -> StoreResult<Option<(GroupRecord, Vec<String>)>>;

    /// Removes `user` (with its read pointer) from the group. Returns the
    /// group after the change and whether `user` was a member, or `None` when
    /// there is no such group. `Conflict` (nothing changed) for the owner:
    /// an owner leaves only by deleting the group or handing ownership over.
    async fn remove_member(&self, id: &str, user: &str)
        -> StoreResult<Option<(GroupRecord, bool)>>;

    /// Sets the role of member `user`. `Owner` hands ownership over: `user`
    /// becomes the owner and the previous owner an admin.
    async fn set_role(&self, id: &str, user: &str, role: GroupRole) -> StoreResult<RoleOutcome>;

    /// Every (group id, user, role) of every group, sorted by group id then
    /// user: to warm the service's membership cache at start.
    async fn all_memberships(&self) -> StoreResult<Vec<(String, String, GroupRole)>>;

    /// Number of users and of stored messages (for `/admin/stats`).
    async fn counts(&self) -> StoreResult<(u64, u64)>;

    /// Flushes and closes connections (end of graceful shutdown).
    async fn close(&self);
}
