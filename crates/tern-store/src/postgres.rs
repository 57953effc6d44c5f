//! The production store: PostgreSQL, safe with several tern processes on one
//! database (seqs come from row-locked conversation counters).

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use tern_proto::{ConvId, ConvSummary, Message};

use crate::batch::{append_batch, keys, BatchWriter, Fresh, TxFailure};
use crate::common::{
    map_err, map_migrate_err, message_from_row, page_from_rows, provisioned_in_order,
    summary_from_row, to_i64, to_u64, user_from_row, MessageRow, SummaryRow, UserRow, COUNTS,
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

// The write path is set-based: each statement takes the whole batch as
// arrays (walked with `unnest`), so a batch costs five round trips whatever
// its size. Seqs come from the conversation counters, bumped by the batch's
// count under their row locks, taken in conversation order (no deadlocks
// between batches); concurrent writers in other processes wait on those
// locks, so seqs stay gap-free and unique across nodes.

/// Index (1-based) and columns of the messages already stored.
const LOOKUP: &str = "SELECT k.i, m.conv, m.seq, m.mid, m.sender, m.body, m.kind, m.ts, \
     m.cmid, m.meta FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(sender, cmid, i) \
     JOIN messages AS m ON m.sender = k.sender AND m.cmid = k.cmid";

const BUMP_CONVS: &str = "INSERT INTO conversations (conv, kind, last_seq, last_ts, created_at) \
     SELECT conv, kind, n, ts, ts \
     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS u(conv, kind, n, ts) \
     WHERE u.kind = 'direct' \
     OR EXISTS (SELECT 1 FROM conversations AS c WHERE c.conv = u.conv) \
     ORDER BY conv \
     ON CONFLICT (conv) DO UPDATE SET last_seq = conversations.last_seq + EXCLUDED.last_seq, \
     last_ts = GREATEST(conversations.last_ts, EXCLUDED.last_ts) \
     RETURNING conv, last_seq";

const INSERT_MESSAGES: &str = "INSERT INTO messages \
     (conv, seq, mid, sender, body, kind, ts, cmid, meta) \
     SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
     $6::text[], $7::bigint[], $8::text[], $9::text[])";

const INSERT_MEMBERS: &str = "INSERT INTO conv_members (conv, username, read_seq, joined_at) \
     SELECT conv, username, 0, ts \
     FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(conv, username, ts) \
     ON CONFLICT (conv, username) DO NOTHING";

const ADVANCE_READS: &str = "UPDATE conv_members SET read_seq = u.seq \
     FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(conv, username, seq) \
     WHERE conv_members.conv = u.conv AND conv_members.username = u.username \
     AND conv_members.read_seq < u.seq";

const MARK_READ: &str = "UPDATE conv_members \
     SET read_seq = LEAST($3, c.last_seq) \
     FROM conversations c \
     WHERE c.conv = $1 AND conv_members.conv = $1 AND conv_members.username = $2 \
     AND conv_members.read_seq < LEAST($3, c.last_seq) \
     RETURNING conv_members.read_seq";

const CONVERSATIONS: &str = "SELECT c.conv, c.kind, c.last_seq, m.read_seq, g.name, \
     x.seq, x.mid, x.sender, x.body, x.kind, x.ts, x.cmid, x.meta \
     FROM conv_members m \
     JOIN conversations c ON c.conv = m.conv \
     LEFT JOIN groups g ON c.kind = 'group' AND g.id = substr(c.conv, 3) \
     LEFT JOIN messages x ON x.conv = c.conv AND x.seq = c.last_seq \
     WHERE m.username = $1 \
     ORDER BY c.last_ts DESC, c.conv";

const GROUP_HEAD: &str = "SELECT id, name, owner, created_at FROM groups WHERE id = $1";

const GROUP_MEMBERS: &str = "SELECT username, role FROM conv_members WHERE conv = $1";

/// Users `$3` with roles `$4` into conversation `$1`, joined at `$2`;
/// existing members are skipped. Returns the users inserted.
const ADD_MEMBERS: &str = "INSERT INTO conv_members (conv, username, read_seq, role, joined_at) \
     SELECT $1, u.username, 0, u.role, $2 \
     FROM unnest($3::text[], $4::text[]) AS u(username, role) \
     ORDER BY u.username \
     ON CONFLICT (conv, username) DO NOTHING \
     RETURNING username";

/// Every group of $1 with all its members, one row per member, rows of a
/// group adjacent, newest group first.
const GROUPS_OF: &str = "SELECT g.id, g.name, g.owner, g.created_at, m.username, m.role \
     FROM conv_members me \
     JOIN groups g ON g.id = substr(me.conv, 3) \
     JOIN conv_members m ON m.conv = me.conv \
     WHERE me.username = $1 AND me.conv LIKE 'g:%' \
     ORDER BY g.created_at DESC, g.id DESC";

const ALL_MEMBERSHIPS: &str = "SELECT g.id, m.username, m.role FROM groups g \
     JOIN conv_members m ON m.conv = 'g:' || g.id";

/// How long a caller waits for a pooled connection before `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// PostgreSQL behind one pool shared by reads and writes.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects and migrates (sqlx serializes concurrent migrators with an
    /// advisory lock, so several nodes may start at once).
    pub async fn open(url: &str, opts: OpenOptions) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url).map_err(map_err)?;
        Self::open_with(options, opts).await
    }

    /// Like [`PostgresStore::open`], with every table in `schema` (created if
    /// missing). Used by the test suite for a fresh database per test.
    #[doc(hidden)]
    pub async fn open_in_schema(url: &str, schema: &str, opts: OpenOptions) -> StoreResult<Self> {
        check_schema_name(schema)?;
        let options = PgConnectOptions::from_str(url).map_err(map_err)?;
        let admin = PgPool::connect_with(options.clone())
            .await
            .map_err(map_err)?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .execute(&admin)
            .await
            .map_err(map_err)?;
        admin.close().await;
        Self::open_with(options.options([("search_path", schema)]), opts).await
    }

    /// Drops a schema made by [`PostgresStore::open_in_schema`].
    #[doc(hidden)]
    pub async fn drop_schema(url: &str, schema: &str) -> StoreResult<()> {
        check_schema_name(schema)?;
        let options = PgConnectOptions::from_str(url).map_err(map_err)?;
        let admin = PgPool::connect_with(options).await.map_err(map_err)?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&admin)
            .await
            .map_err(map_err)?;
        admin.close().await;
        Ok(())
    }

    async fn open_with(options: PgConnectOptions, opts: OpenOptions) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(map_err)?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(map_migrate_err)?;
        Ok(Self { pool })
    }
}

fn check_schema_name(schema: &str) -> StoreResult<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Other(format!("bad schema name {schema:?}")))
    }
}

/// A message row with its batch index (1-based) in front.
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

/// The messages of `msgs` already stored, by index.
async fn lookup(
    conn: &mut PgConnection,
    msgs: &[&NewMessage],
) -> Result<HashMap<usize, Message>, TxFailure> {
    let (senders, cmids) = keys(msgs);
    let rows: Vec<IndexedRow> = sqlx::query_as(LOOKUP)
        .bind(senders)
        .bind(cmids)
        .fetch_all(&mut *conn)
        .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for (i, conv, seq, mid, from, body, kind, ts, cmid, meta) in rows {
        let i = usize::try_from(i - 1).map_err(|_| StoreError::Other("bad batch index".into()))?;
        let message = message_from_row((conv, seq, mid, from, body, kind, ts, cmid, meta))?;
        found.insert(i, message);
    }
    Ok(found)
}

/// Stores the new messages of `fresh`; returns their seqs.
async fn store_fresh(conn: &mut PgConnection, fresh: &Fresh<'_>) -> Result<Vec<i64>, TxFailure> {
    let b = &fresh.bumps;
    let last: Vec<(String, i64)> = sqlx::query_as(BUMP_CONVS)
        .bind(b.iter().map(|b| b.conv.as_str()).collect::<Vec<_>>())
        .bind(b.iter().map(|b| b.kind).collect::<Vec<_>>())
        .bind(b.iter().map(|b| b.count).collect::<Vec<_>>())
        .bind(b.iter().map(|b| b.last_ts).collect::<Vec<_>>())
        .fetch_all(&mut *conn)
        .await?;
    let seqs = fresh.seqs(&last.into_iter().collect())?;
    let m = &fresh.msgs;
    sqlx::query(INSERT_MESSAGES)
        .bind(&fresh.convs)
        .bind(&seqs)
        .bind(m.iter().map(|m| m.mid.as_str()).collect::<Vec<_>>())
        .bind(m.iter().map(|m| m.from.as_str()).collect::<Vec<_>>())
        .bind(m.iter().map(|m| m.body.as_str()).collect::<Vec<_>>())
        .bind(m.iter().map(|m| m.kind.as_str()).collect::<Vec<_>>())
        .bind(m.iter().map(|m| m.ts).collect::<Vec<_>>())
        .bind(m.iter().map(|m| m.cmid.as_str()).collect::<Vec<_>>())
        .bind(
            m.iter()
                .map(|m| m.meta.as_ref().map(|x| x.as_str()))
                .collect::<Vec<_>>(),
        )
        .execute(&mut *conn)
        .await?;
    let members = fresh.first_members(&seqs);
    if !members.is_empty() {
        let (convs, users, ts) = columns(members);
        sqlx::query(INSERT_MEMBERS)
            .bind(convs)
            .bind(users)
            .bind(ts)
            .execute(&mut *conn)
            .await?;
    }
    let (convs, users, tops) = columns(fresh.read_moves(&seqs));
    sqlx::query(ADVANCE_READS)
        .bind(convs)
        .bind(users)
        .bind(tops)
        .execute(&mut *conn)
        .await?;
    Ok(seqs)
}

/// Rows of `(text, text, bigint)` as three arrays.
fn columns(rows: Vec<(String, String, i64)>) -> (Vec<String>, Vec<String>, Vec<i64>) {
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for (a, b, c) in rows {
        out.0.push(a);
        out.1.push(b);
        out.2.push(c);
    }
    out
}

/// Group `id` as seen by `conn` (inside a transaction: as it stands in that
/// transaction).
/// The group as a change just left it, inside that change's transaction
/// (the caller locked or created it, so it must be there).
async fn group_after_change(conn: &mut PgConnection, id: &str) -> StoreResult<GroupRecord> {
    load_group(conn, id)
        .await?
        .ok_or_else(|| StoreError::Other(format!("group {id} vanished")))
}

async fn load_group(conn: &mut PgConnection, id: &str) -> StoreResult<Option<GroupRecord>> {
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
    conn: &mut PgConnection,
    conv: &str,
    user: &str,
) -> StoreResult<Option<GroupRole>> {
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM conv_members WHERE conv = $1 AND username = $2")
            .bind(conv)
            .bind(user)
            .fetch_optional(&mut *conn)
            .await
            .map_err(map_err)?;
    role.as_deref().map(parse_role).transpose()
}

async fn write_role(
    conn: &mut PgConnection,
    conv: &str,
    user: &str,
    role: GroupRole,
) -> StoreResult<()> {
    sqlx::query("UPDATE conv_members SET role = $3 WHERE conv = $1 AND username = $2")
        .bind(conv)
        .bind(user)
        .bind(role.as_str())
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl BatchWriter for PostgresStore {
    async fn write_batch(&self, msgs: &[&NewMessage]) -> Result<Vec<Appended>, TxFailure> {
        let mut tx = self.pool.begin().await?;
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
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
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
            "INSERT INTO users (username, password_hash, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (username) DO NOTHING",
        )
        .bind(username)
        .bind(password_hash)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn provision_users(
        &self,
        usernames: &[&str],
        now_ms: i64,
    ) -> StoreResult<Vec<Provisioned>> {
        let created: Vec<(String,)> = sqlx::query_as(
            "INSERT INTO users (username, password_hash, created_at) \
             SELECT DISTINCT u, NULL::text, $2 FROM unnest($1::text[]) AS u \
             ON CONFLICT (username) DO NOTHING RETURNING username",
        )
        .bind(usernames)
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let banned: Vec<(String, bool)> =
            sqlx::query_as("SELECT username, banned FROM users WHERE username = ANY($1)")
                .bind(usernames)
                .fetch_all(&self.pool)
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
             FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(row.map(user_from_row))
    }

    async fn set_last_seen_many(&self, items: &[(&str, i64)]) -> StoreResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let (users, times): (Vec<&str>, Vec<i64>) = items.iter().copied().unzip();
        sqlx::query(
            "UPDATE users SET last_seen = GREATEST(COALESCE(users.last_seen, 0), x.ts) \
             FROM UNNEST($1::text[], $2::bigint[]) AS x (username, ts) \
             WHERE users.username = x.username",
        )
        .bind(users)
        .bind(times)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn set_banned(&self, username: &str, banned: bool) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE users SET banned = $2 WHERE username = $1")
            .bind(username)
            .bind(banned)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn banned_users(&self) -> StoreResult<Vec<String>> {
        sqlx::query_scalar("SELECT username FROM users WHERE banned ORDER BY username")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn append(&self, batch: Vec<NewMessage>) -> Vec<StoreResult<Appended>> {
        append_batch(self, batch).await
    }

    async fn history(&self, conv: &ConvId, page: Page) -> StoreResult<HistoryPage> {
        let (sql, bound, limit, newest_first) = match page {
            Page::After { after, limit } => ("seq > $2 ORDER BY seq ASC", after, limit, false),
            Page::Before { before, limit } => ("seq < $2 ORDER BY seq DESC", before, limit, true),
            Page::Latest { limit } => ("seq < $2 ORDER BY seq DESC", u64::MAX, limit, true),
        };
        let sql =
            format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE conv = $1 AND {sql} LIMIT $3");
        let rows: Vec<MessageRow> = sqlx::query_as(&sql)
            .bind(conv.to_string())
            .bind(to_i64(bound))
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        page_from_rows(rows, limit, newest_first)
    }

    async fn find_sent(&self, sender: &str, cmid: &str) -> StoreResult<Option<Message>> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE sender = $1 AND cmid = $2");
        let row: Option<MessageRow> = sqlx::query_as(&sql)
            .bind(sender)
            .bind(cmid)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(message_from_row).transpose()
    }

    async fn conversations(&self, user: &str) -> StoreResult<Vec<ConvSummary>> {
        let rows: Vec<SummaryRow> = sqlx::query_as(CONVERSATIONS)
            .bind(user)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.into_iter()
            .map(|row| summary_from_row(user, row))
            .collect()
    }

    async fn mark_read(&self, user: &str, conv: &ConvId, seq: u64) -> StoreResult<ReadOutcome> {
        let conv = conv.to_string();
        let moved: Option<i64> = sqlx::query_scalar(MARK_READ)
            .bind(&conv)
            .bind(user)
            .bind(to_i64(seq))
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        if let Some(read_seq) = moved {
            return Ok(ReadOutcome {
                read_seq: to_u64(read_seq, "read_seq")?,
                moved: true,
            });
        }
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT read_seq FROM conv_members WHERE conv = $1 AND username = $2",
        )
        .bind(&conv)
        .bind(user)
        .fetch_optional(&self.pool)
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
        let initial = initial_members(owner, members);
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done = sqlx::query(
            "INSERT INTO groups (id, name, owner, created_at) VALUES ($1, $2, $3, $4) \
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
             VALUES ($1, 'group', 0, $2, $2) ON CONFLICT (conv) DO NOTHING",
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
            .bind(initial.iter().map(|r| r.0).collect::<Vec<_>>())
            .bind(initial.iter().map(|r| r.1).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let group = group_after_change(&mut tx, id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(group)
    }

    async fn get_group(&self, id: &str) -> StoreResult<Option<GroupRecord>> {
        // The row and the members from one snapshot.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(map_err)?;
        let group = load_group(&mut tx, id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(group)
    }

    async fn groups_of(&self, user: &str) -> StoreResult<Vec<GroupRecord>> {
        let rows: Vec<GroupMemberRow> = sqlx::query_as(GROUPS_OF)
            .bind(user)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        groups_from_joined_rows(rows)
    }

    async fn rename_group(&self, id: &str, name: &str) -> StoreResult<Option<GroupRecord>> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done = sqlx::query("UPDATE groups SET name = $2 WHERE id = $1")
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
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done = sqlx::query("DELETE FROM groups WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        // Cascades to conv_members and messages.
        sqlx::query("DELETE FROM conversations WHERE conv = $1")
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
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT id FROM groups WHERE id = $1 FOR UPDATE")
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
                .bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
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
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let owner: Option<String> =
            sqlx::query_scalar("SELECT owner FROM groups WHERE id = $1 FOR UPDATE")
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
        let done = sqlx::query("DELETE FROM conv_members WHERE conv = $1 AND username = $2")
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
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let owner: Option<String> =
            sqlx::query_scalar("SELECT owner FROM groups WHERE id = $1 FOR UPDATE")
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
            sqlx::query("UPDATE groups SET owner = $2 WHERE id = $1")
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
            .fetch_all(&self.pool)
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
        let (users, messages): (i64, i64) = sqlx::query_as(COUNTS)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok((to_u64(users, "count")?, to_u64(messages, "count")?))
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
