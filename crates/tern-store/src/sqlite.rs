//! The embedded default store: SQLite in WAL mode, one writer connection (all
//! writes, so our own writes never meet SQLITE_BUSY) and a pool of readers.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use tern_proto::{ConvId, ConvSummary, Message};

use crate::batch::{append_batch, keys, BatchWriter, Fresh, TxFailure};
use crate::common::{
    map_err, map_migrate_err, message_from_row, page_from_rows, provisioned_in_order,
    summary_from_row, to_i64, to_u64, MessageRow, SummaryRow, UserRow,
};
use crate::groups::{
    check_group_id, distinct, group_conv, group_from_rows, groups_from_joined_rows,
    initial_members, parse_role, GroupMemberRow, GroupRow,
};
use crate::{
    Appended, GroupRecord, GroupRole, HistoryPage, NewMessage, OpenOptions, Page, Provisioned,
    ReadOutcome, RoleOutcome, Store, StoreError, StoreResult, UserRecord,
};

const MESSAGE_COLUMNS: &str = "conv, seq, mid, sender, body, kind, ts, cmid, meta";

// The write path is set-based: each statement takes the whole batch as one
// JSON array parameter (walked with `json_each`), so a batch costs five
// statements whatever its size. Sound because `BEGIN IMMEDIATE` holds the
// database write lock for the whole transaction.

/// `[[sender, cmid], …]` → `index, message columns` of those already stored.
const LOOKUP: &str = "SELECT j.key, m.conv, m.seq, m.mid, m.sender, m.body, m.kind, m.ts, \
     m.cmid, m.meta FROM json_each(?1) AS j \
     JOIN messages AS m ON m.sender = j.value ->> 0 AND m.cmid = j.value ->> 1";

/// `[[conv, kind, count, last_ts], …]` → each conversation's new last_seq.
/// A direct conversation is created on its first message; a group's exists
/// from its creation, so a group conversation that is gone returns no row.
const BUMP_CONVS: &str = "INSERT INTO conversations (conv, kind, last_seq, last_ts, created_at) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 3 \
     FROM json_each(?1) \
     WHERE value ->> 1 = 'direct' \
     OR EXISTS (SELECT 1 FROM conversations AS c WHERE c.conv = value ->> 0) \
     ON CONFLICT (conv) DO UPDATE SET last_seq = conversations.last_seq + excluded.last_seq, \
     last_ts = max(conversations.last_ts, excluded.last_ts) \
     RETURNING conv, last_seq";

/// Most rows per multi-row `INSERT INTO messages` (9 parameters each, well
/// under SQLite's 32766). A batch goes in as one statement of exactly its
/// size: binding plain values is cheaper for SQLite than extracting them
/// from a JSON parameter, and each statement is a round trip to the
/// connection's thread, so fewer is faster. Preparing a statement of a new
/// size costs less than those round trips; only the one-row statement is
/// kept prepared.
const INSERT_CHUNK_MAX: usize = 512;

/// The one-row `INSERT INTO messages`, kept prepared.
static INSERT_ONE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| insert_messages_sql(1));

fn insert_messages_sql(rows: usize) -> String {
    let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?)";
    let values = vec![row; rows].join(", ");
    format!("INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES {values}")
}

/// `[[conv, username, joined_at], …]`.
const INSERT_MEMBERS: &str = "INSERT INTO conv_members (conv, username, read_seq, joined_at) \
     SELECT value ->> 0, value ->> 1, 0, value ->> 2 FROM json_each(?1) WHERE true \
     ON CONFLICT (conv, username) DO NOTHING";

/// `[[conv, username, seq], …]`: move read pointers up, never back.
const ADVANCE_READS: &str = "UPDATE conv_members SET read_seq = j.value ->> 2 \
     FROM json_each(?1) AS j \
     WHERE conv_members.conv = j.value ->> 0 AND conv_members.username = j.value ->> 1 \
     AND conv_members.read_seq < j.value ->> 2";

const MARK_READ: &str = "UPDATE conv_members \
     SET read_seq = min(?3, (SELECT last_seq FROM conversations WHERE conv = ?1)) \
     WHERE conv = ?1 AND username = ?2 \
     AND read_seq < min(?3, (SELECT last_seq FROM conversations WHERE conv = ?1)) \
     RETURNING read_seq";

const CONVERSATIONS: &str = "SELECT c.conv, c.kind, c.last_seq, m.read_seq, g.name, \
     x.seq, x.mid, x.sender, x.body, x.kind, x.ts, x.cmid, x.meta \
     FROM conv_members m \
     JOIN conversations c ON c.conv = m.conv \
     LEFT JOIN groups g ON c.kind = 'group' AND g.id = substr(c.conv, 3) \
     LEFT JOIN messages x ON x.conv = c.conv AND x.seq = c.last_seq \
     WHERE m.username = ?1 \
     ORDER BY c.last_ts DESC, c.conv";

const GROUP_HEAD: &str = "SELECT id, name, owner, created_at FROM groups WHERE id = ?1";

const GROUP_MEMBERS: &str = "SELECT username, role FROM conv_members WHERE conv = ?1";

/// `[[username, role], …]` into conversation ?1, joined at ?2; existing
/// members are skipped. Returns the users inserted.
const ADD_MEMBERS: &str = "INSERT INTO conv_members (conv, username, read_seq, role, joined_at) \
     SELECT ?1, value ->> 0, 0, value ->> 1, ?2 FROM json_each(?3) WHERE true \
     ON CONFLICT (conv, username) DO NOTHING \
     RETURNING username";

/// Every group of ?1 with all its members, one row per member, rows of a
/// group adjacent, newest group first.
const GROUPS_OF: &str = "SELECT g.id, g.name, g.owner, g.created_at, m.username, m.role \
     FROM conv_members me \
     JOIN groups g ON g.id = substr(me.conv, 3) \
     JOIN conv_members m ON m.conv = me.conv \
     WHERE me.username = ?1 AND me.conv LIKE 'g:%' \
     ORDER BY g.created_at DESC, g.id DESC";

const ALL_MEMBERSHIPS: &str = "SELECT g.id, m.username, m.role FROM groups g \
     JOIN conv_members m ON m.conv = 'g:' || g.id";

/// How long a caller waits for a pooled connection before `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLite behind two pools: `writer` (exactly one connection) and `reader`.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating the file and its directory if missing) and migrates.
    pub async fn open(url: &str, opts: OpenOptions) -> StoreResult<Self> {
        // Durability: an ack follows COMMIT. In WAL mode with
        // synchronous=NORMAL a commit is in the WAL file (the OS page cache)
        // when COMMIT returns, so it survives a crash or kill -9 of the
        // process; only a power loss / kernel crash can lose the last commits
        // before the next checkpoint fsync. FULL would fsync on every commit,
        // which group commit amortizes but still costs an fsync per batch.
        let options = SqliteConnectOptions::from_str(url)
            .map_err(map_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            .pragma("cache_size", format!("-{}", opts.sqlite_cache_kib))
            .pragma(
                "mmap_size",
                opts.sqlite_mmap_mib.saturating_mul(1 << 20).to_string(),
            )
            .pragma("temp_store", "memory")
            .pragma(
                "wal_autocheckpoint",
                opts.sqlite_checkpoint_pages.to_string(),
            );
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory {
            create_parent_dir(options.get_filename())?;
        }
        let writer = pool(1)
            .connect_with(options.clone())
            .await
            .map_err(map_err)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(map_migrate_err)?;
        // Separate connections to an in-memory database would each see their
        // own database (or fight over a shared cache): read through the writer.
        let reader = if in_memory {
            writer.clone()
        } else {
            pool(opts.max_connections.max(1))
                .connect_with(options)
                .await
                .map_err(map_err)?
        };
        if !in_memory && opts.sqlite_checkpoint_ms > 0 {
            let period = Duration::from_millis(opts.sqlite_checkpoint_ms);
            tokio::spawn(checkpoints(reader.clone(), period));
        }
        Ok(Self { writer, reader })
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        // IMMEDIATE takes the write lock up front, so another process holding
        // it makes us wait (busy_timeout) instead of failing mid-transaction.
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }
}

/// Checkpoints the WAL every `period` from a reader connection, until the
/// pool closes. PASSIVE: it copies what no reader still needs and never
/// blocks the writer, whose commits go on meanwhile; the next commit after a
/// complete checkpoint starts the WAL over. A failure is logged and retried
/// at the next period (the writer's own autocheckpoint is the backstop).
async fn checkpoints(pool: SqlitePool, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        let done: Result<(i64, i64, i64), _> = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&pool)
            .await;
        match done {
            Ok(_) => {}
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => tracing::warn!(error = %e, "background WAL checkpoint failed"),
        }
    }
}

fn pool(max: u32) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(max)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // Keep connections (and their prepared statements) for good.
        .idle_timeout(None)
        .max_lifetime(None)
}

fn create_parent_dir(file: &Path) -> StoreResult<()> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))),
        _ => Ok(()),
    }
}

/// A message row with its batch index in front.
type IndexedRow = (
    i64,
    String,
    i64,
    String,
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
);

fn json<T: serde::Serialize>(value: &T) -> Result<String, TxFailure> {
    json_arg(value).map_err(TxFailure::from)
}

/// The messages of `msgs` already stored, by index.
async fn lookup(
    conn: &mut SqliteConnection,
    msgs: &[&NewMessage],
) -> Result<HashMap<usize, Message>, TxFailure> {
    let (senders, cmids) = keys(msgs);
    let pairs: Vec<(&str, &str)> = senders.into_iter().zip(cmids).collect();
    let rows: Vec<IndexedRow> = sqlx::query_as(LOOKUP)
        .bind(json(&pairs)?)
        .fetch_all(&mut *conn)
        .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for (i, conv, seq, mid, from, body, kind, ts, cmid, meta) in rows {
        let i = usize::try_from(i).map_err(|_| StoreError::Other("bad batch index".into()))?;
        let message = message_from_row((conv, seq, mid, from, body, kind, ts, cmid, meta))?;
        found.insert(i, message);
    }
    Ok(found)
}

/// Stores the new messages of `fresh`; returns their seqs.
async fn store_fresh(
    conn: &mut SqliteConnection,
    fresh: &Fresh<'_>,
) -> Result<Vec<i64>, TxFailure> {
    let bumps: Vec<_> = fresh
        .bumps
        .iter()
        .map(|b| (&b.conv, b.kind, b.count, b.last_ts))
        .collect();
    let last: Vec<(String, i64)> = sqlx::query_as(BUMP_CONVS)
        .bind(json(&bumps)?)
        .fetch_all(&mut *conn)
        .await?;
    let seqs = fresh.seqs(&last.into_iter().collect())?;
    insert_messages(conn, fresh, &seqs).await?;
    let members = fresh.first_members(&seqs);
    if !members.is_empty() {
        sqlx::query(INSERT_MEMBERS)
            .bind(json(&members)?)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(ADVANCE_READS)
        .bind(json(&fresh.read_moves(&seqs))?)
        .execute(&mut *conn)
        .await?;
    Ok(seqs)
}

/// Inserts the rows of `fresh` (with their `seqs`), in statements of at
/// most [`INSERT_CHUNK_MAX`] rows.
async fn insert_messages(
    conn: &mut SqliteConnection,
    fresh: &Fresh<'_>,
    seqs: &[i64],
) -> Result<(), TxFailure> {
    let rows: Vec<_> = fresh.msgs.iter().zip(&fresh.convs).zip(seqs).collect();
    for chunk in rows.chunks(INSERT_CHUNK_MAX) {
        let sized;
        let (sql, keep) = if chunk.len() == 1 {
            (INSERT_ONE.as_str(), true)
        } else {
            sized = insert_messages_sql(chunk.len());
            (sized.as_str(), false)
        };
        let mut query = sqlx::query(sql).persistent(keep);
        for ((m, conv), seq) in chunk {
            query = query
                .bind(conv.as_str())
                .bind(**seq)
                .bind(m.mid.as_str())
                .bind(m.from.as_str())
                .bind(m.body.as_str())
                .bind(m.kind.as_str())
                .bind(m.ts)
                .bind(m.cmid.as_str())
                .bind(m.meta.as_ref().map(|meta| meta.as_str()));
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The group as a change just left it, inside that change's transaction
/// (the caller locked or created it, so it must be there).
async fn group_after_change(conn: &mut SqliteConnection, id: &str) -> StoreResult<GroupRecord> {
    load_group(conn, id)
        .await?
        .ok_or_else(|| StoreError::Other(format!("group {id} vanished")))
}

async fn load_group(conn: &mut SqliteConnection, id: &str) -> StoreResult<Option<GroupRecord>> {
    let head: Option<GroupRow> = sqlx::query_as(GROUP_HEAD)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
    let Some(head) = head else {
        return Ok(None);
    };
    let members: Vec<(String, String)> = sqlx::query_as(GROUP_MEMBERS)
        .bind(group_conv(id))
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?;
    group_from_rows(head, members).map(Some)
}

/// The current role of `user` in conversation `conv`, if a member.
async fn role_in(
    conn: &mut SqliteConnection,
    conv: &str,
    user: &str,
) -> StoreResult<Option<GroupRole>> {
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM conv_members WHERE conv = ?1 AND username = ?2")
            .bind(conv)
            .bind(user)
            .fetch_optional(&mut *conn)
            .await
            .map_err(map_err)?;
    role.as_deref().map(parse_role).transpose()
}

async fn write_role(
    conn: &mut SqliteConnection,
    conv: &str,
    user: &str,
    role: GroupRole,
) -> StoreResult<()> {
    sqlx::query("UPDATE conv_members SET role = ?3 WHERE conv = ?1 AND username = ?2")
        .bind(conv)
        .bind(user)
        .bind(role.as_str())
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    Ok(())
}

fn json_arg<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Other(format!("encoding: {e}")))
}

#[async_trait]
impl BatchWriter for SqliteStore {
    async fn write_batch(&self, msgs: &[&NewMessage]) -> Result<Vec<Appended>, TxFailure> {
        let mut tx = self.begin().await?;
        let stored = lookup(&mut tx, msgs).await?;
        let fresh = Fresh::new(msgs, &stored);
        let seqs = if fresh.msgs.is_empty() {
            Vec::new()
        } else {
            store_fresh(&mut tx, &fresh).await?
        };
        tx.commit().await?;
        Ok(fresh.results(msgs.len(), stored, &seqs)?)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn create_user(
        &self,
        username: &str,
        password_hash: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO users (username, password_hash, created_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (username) DO NOTHING",
        )
        .bind(username)
        .bind(password_hash)
        .bind(now_ms)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn provision_users(
        &self,
        usernames: &[&str],
        now_ms: i64,
    ) -> StoreResult<Vec<Provisioned>> {
        let names = serde_json::to_string(usernames)
            .map_err(|e| StoreError::Other(format!("encoding user names: {e}")))?;
        // One write for the whole batch (`WHERE true`: SQLite's parser needs
        // it before an upsert clause after a SELECT).
        let created: Vec<(String,)> = sqlx::query_as(
            "INSERT INTO users (username, password_hash, created_at) \
             SELECT value, NULL, ?2 FROM json_each(?1) WHERE true \
             ON CONFLICT (username) DO NOTHING RETURNING username",
        )
        .bind(&names)
        .bind(now_ms)
        .fetch_all(&self.writer)
        .await
        .map_err(map_err)?;
        let banned: Vec<(String, bool)> = sqlx::query_as(
            "SELECT username, banned FROM users \
             WHERE username IN (SELECT value FROM json_each(?1))",
        )
        .bind(&names)
        .fetch_all(&self.writer)
        .await
        .map_err(map_err)?;
        provisioned_in_order(
            usernames,
            created.into_iter().map(|(n,)| n).collect(),
            banned,
        )
    }

    async fn get_user(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT username, password_hash, created_at, banned, last_seen \
             FROM users WHERE username = ?1",
        )
        .bind(username)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        Ok(row.map(crate::common::user_from_row))
    }

    async fn set_last_seen_many(&self, items: &[(&str, i64)]) -> StoreResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let items = json_arg(&items)?;
        sqlx::query(
            "UPDATE users SET last_seen = max(coalesce(users.last_seen, 0), j.value ->> 1) \
             FROM json_each(?1) AS j WHERE users.username = j.value ->> 0",
        )
        .bind(items)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn set_banned(&self, username: &str, banned: bool) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE users SET banned = ?2 WHERE username = ?1")
            .bind(username)
            .bind(banned)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn banned_users(&self) -> StoreResult<Vec<String>> {
        sqlx::query_scalar("SELECT username FROM users WHERE banned ORDER BY username")
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)
    }

    async fn append(&self, batch: Vec<NewMessage>) -> Vec<StoreResult<Appended>> {
        append_batch(self, batch).await
    }

    async fn history(&self, conv: &ConvId, page: Page) -> StoreResult<HistoryPage> {
        let (sql, bound, limit, newest_first) = match page {
            Page::After { after, limit } => ("seq > ?2 ORDER BY seq ASC", after, limit, false),
            Page::Before { before, limit } => ("seq < ?2 ORDER BY seq DESC", before, limit, true),
            Page::Latest { limit } => ("seq < ?2 ORDER BY seq DESC", u64::MAX, limit, true),
        };
        let sql =
            format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE conv = ?1 AND {sql} LIMIT ?3");
        let rows: Vec<MessageRow> = sqlx::query_as(&sql)
            .bind(conv.to_string())
            .bind(to_i64(bound))
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?;
        page_from_rows(rows, limit, newest_first)
    }

    async fn find_sent(&self, sender: &str, cmid: &str) -> StoreResult<Option<Message>> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE sender = ?1 AND cmid = ?2");
        let row: Option<MessageRow> = sqlx::query_as(&sql)
            .bind(sender)
            .bind(cmid)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?;
        row.map(message_from_row).transpose()
    }

    async fn conversations(&self, user: &str) -> StoreResult<Vec<ConvSummary>> {
        let rows: Vec<SummaryRow> = sqlx::query_as(CONVERSATIONS)
            .bind(user)
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?;
        rows.into_iter()
            .map(|row| summary_from_row(user, row))
            .collect()
    }

    async fn mark_read(&self, user: &str, conv: &ConvId, seq: u64) -> StoreResult<ReadOutcome> {
        let conv = conv.to_string();
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        let moved: Option<i64> = sqlx::query_scalar(MARK_READ)
            .bind(&conv)
            .bind(user)
            .bind(to_i64(seq))
            .fetch_optional(&mut *conn)
            .await
            .map_err(map_err)?;
        if let Some(read_seq) = moved {
            return Ok(ReadOutcome {
                read_seq: to_u64(read_seq, "read_seq")?,
                moved: true,
            });
        }
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT read_seq FROM conv_members WHERE conv = ?1 AND username = ?2",
        )
        .bind(&conv)
        .bind(user)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
        Ok(ReadOutcome {
            read_seq: to_u64(current.unwrap_or(0), "read_seq")?,
            moved: false,
        })
    }

    async fn create_group(
        &self,
        id: &str,
        name: &str,
        owner: &str,
        members: &[String],
        now_ms: i64,
    ) -> StoreResult<GroupRecord> {
        check_group_id(id)?;
        let conv = group_conv(id);
        let mut tx = self.begin().await.map_err(map_err)?;
        let done = sqlx::query(
            "INSERT INTO groups (id, name, owner, created_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(name)
        .bind(owner)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("group {id} exists")));
        }
        let done = sqlx::query(
            "INSERT INTO conversations (conv, kind, last_seq, last_ts, created_at) \
             VALUES (?1, 'group', 0, ?2, ?2) ON CONFLICT (conv) DO NOTHING",
        )
        .bind(&conv)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("conversation {conv} exists")));
        }
        sqlx::query(ADD_MEMBERS)
            .bind(&conv)
            .bind(now_ms)
            .bind(json_arg(&initial_members(owner, members))?)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let group = group_after_change(&mut tx, id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(group)
    }

    async fn get_group(&self, id: &str) -> StoreResult<Option<GroupRecord>> {
        // One read transaction: the row and the members from one snapshot.
        let mut tx = self.reader.begin().await.map_err(map_err)?;
        let group = load_group(&mut tx, id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(group)
    }

    async fn groups_of(&self, user: &str) -> StoreResult<Vec<GroupRecord>> {
        let rows: Vec<GroupMemberRow> = sqlx::query_as(GROUPS_OF)
            .bind(user)
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?;
        groups_from_joined_rows(rows)
    }

    async fn rename_group(&self, id: &str, name: &str) -> StoreResult<Option<GroupRecord>> {
        let mut tx = self.begin().await.map_err(map_err)?;
        let done = sqlx::query("UPDATE groups SET name = ?2 WHERE id = ?1")
            .bind(id)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let group = load_group(&mut tx, id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(group)
    }

    async fn delete_group(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self.begin().await.map_err(map_err)?;
        let done = sqlx::query("DELETE FROM groups WHERE id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        // Cascades to conv_members and messages.
        sqlx::query("DELETE FROM conversations WHERE conv = ?1")
            .bind(group_conv(id))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn add_members(
        &self,
        id: &str,
        users: &[String],
        now_ms: i64,
    ) -> StoreResult<Option<(GroupRecord, Vec<String>)>> {
        let mut tx = self.begin().await.map_err(map_err)?;
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM groups WHERE id = ?1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if exists.is_none() {
            return Ok(None);
        }
        let rows: Vec<(&str, &str)> = distinct(users)
            .into_iter()
            .map(|u| (u, GroupRole::Member.as_str()))
            .collect();
        let mut added: Vec<String> = if rows.is_empty() {
            Vec::new()
        } else {
            sqlx::query_scalar(ADD_MEMBERS)
                .bind(group_conv(id))
                .bind(now_ms)
                .bind(json_arg(&rows)?)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?
        };
        added.sort_unstable();
        let group = group_after_change(&mut tx, id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some((group, added)))
    }

    async fn remove_member(
        &self,
        id: &str,
        user: &str,
    ) -> StoreResult<Option<(GroupRecord, bool)>> {
        let mut tx = self.begin().await.map_err(map_err)?;
        let owner: Option<String> = sqlx::query_scalar("SELECT owner FROM groups WHERE id = ?1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        match owner {
            None => return Ok(None),
            Some(owner) if owner == user => {
                return Err(StoreError::Conflict(format!(
                    "{user} owns group {id} and cannot be removed"
                )))
            }
            Some(_) => {}
        }
        let done = sqlx::query("DELETE FROM conv_members WHERE conv = ?1 AND username = ?2")
            .bind(group_conv(id))
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let group = group_after_change(&mut tx, id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some((group, done.rows_affected() > 0)))
    }

    async fn set_role(&self, id: &str, user: &str, role: GroupRole) -> StoreResult<RoleOutcome> {
        let conv = group_conv(id);
        let mut tx = self.begin().await.map_err(map_err)?;
        let owner: Option<String> = sqlx::query_scalar("SELECT owner FROM groups WHERE id = ?1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        let Some(owner) = owner else {
            return Ok(RoleOutcome::NoGroup);
        };
        let Some(current) = role_in(&mut tx, &conv, user).await? else {
            return Ok(RoleOutcome::NotMember);
        };
        let changed = if user == owner {
            if role != GroupRole::Owner {
                return Ok(RoleOutcome::IsOwner);
            }
            // Repairs a stray role on the owner's row, if any.
            if current != GroupRole::Owner {
                write_role(&mut tx, &conv, user, GroupRole::Owner).await?;
            }
            false
        } else if role == GroupRole::Owner {
            // Rows in username order, as appends lock them.
            let mut writes = [(owner.as_str(), GroupRole::Admin), (user, GroupRole::Owner)];
            writes.sort_unstable();
            for (who, role) in writes {
                write_role(&mut tx, &conv, who, role).await?;
            }
            sqlx::query("UPDATE groups SET owner = ?2 WHERE id = ?1")
                .bind(id)
                .bind(user)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            true
        } else if current != role {
            write_role(&mut tx, &conv, user, role).await?;
            true
        } else {
            false
        };
        let group = group_after_change(&mut tx, id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(RoleOutcome::Done { group, changed })
    }

    async fn all_memberships(&self) -> StoreResult<Vec<(String, String, GroupRole)>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(ALL_MEMBERSHIPS)
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?;
        let mut out = rows
            .into_iter()
            .map(|(id, user, role)| Ok((id, user, parse_role(&role)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        out.sort_unstable();
        Ok(out)
    }

    async fn counts(&self) -> StoreResult<(u64, u64)> {
        let (users, messages): (i64, i64) = sqlx::query_as(crate::common::COUNTS)
            .fetch_one(&self.reader)
            .await
            .map_err(map_err)?;
        Ok((to_u64(users, "count")?, to_u64(messages, "count")?))
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}
