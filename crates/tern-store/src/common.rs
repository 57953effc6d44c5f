//! Backend-neutral pieces shared by the SQLite and PostgreSQL stores: row
//! decoding and the one place where database errors are classified.

use tern_proto::frame::ConvKind;
use tern_proto::message::Meta;
use tern_proto::{ConvId, ConvSummary, Message, MessageKind};

use crate::{HistoryPage, NewMessage, StoreError, StoreResult, UserRecord};

/// The columns `conv, seq, mid, sender, body, kind, ts, cmid, meta` of a
/// `messages` row, in that order.
pub(crate) type MessageRow = (
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

/// `conv, kind, last_seq, read_seq, group name`, then the newest message's
/// columns (all NULL when the conversation has none).
pub(crate) type SummaryRow = (
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

/// Seqs beyond `i64::MAX` cannot exist; clamping keeps comparisons right.
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64, what: &str) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}: {v}")))
}

/// The `kind` column of a conversation.
pub(crate) fn conv_kind_str(conv: &ConvId) -> &'static str {
    if conv.is_group() {
        "group"
    } else {
        "direct"
    }
}

/// The distinct parties of a direct conversation (one for notes to self).
pub(crate) fn direct_parties(conv: &ConvId) -> Vec<&str> {
    match conv {
        ConvId::Direct { a, b } if a == b => vec![a.as_str()],
        ConvId::Direct { a, b } => vec![a.as_str(), b.as_str()],
        ConvId::Group(_) => Vec::new(),
    }
}

pub(crate) fn message_from_row(row: MessageRow) -> StoreResult<Message> {
    let (conv, seq, mid, from, body, kind, ts, cmid, meta) = row;
    let conv = ConvId::parse(&conv).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let kind = MessageKind::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("message kind {kind:?} in {conv}")))?;
    let meta = match meta {
        Some(text) => Some(Meta::from_json(&text).map_err(StoreError::Corrupt)?),
        None => None,
    };
    Ok(Message {
        seq: to_u64(seq, "seq")?,
        conv,
        mid,
        from,
        body,
        kind,
        ts,
        cmid,
        meta,
    })
}

/// The message just stored from `m` with its assigned `seq`.
pub(crate) fn message_of(m: &NewMessage, seq: i64) -> StoreResult<Message> {
    Ok(Message {
        conv: m.conv.clone(),
        seq: to_u64(seq, "seq")?,
        mid: m.mid.clone(),
        from: m.from.clone(),
        body: m.body.clone(),
        kind: m.kind,
        ts: m.ts,
        cmid: m.cmid.clone(),
        meta: m.meta.clone(),
    })
}

/// `username, password_hash, created_at, banned, last_seen`.
pub(crate) type UserRow = (String, Option<String>, i64, bool, Option<i64>);

pub(crate) fn user_from_row(row: UserRow) -> UserRecord {
    let (username, password_hash, created_at, banned, last_seen) = row;
    UserRecord {
        username,
        password_hash,
        created_at,
        banned,
        last_seen,
    }
}

/// Users, and messages ever stored: because seqs are gap-free, the sum of
/// every conversation's `last_seq` is exact and much cheaper than counting
/// the messages table.
pub(crate) const COUNTS: &str = "SELECT (SELECT COUNT(*) FROM users), \
     (SELECT CAST(COALESCE(SUM(last_seq), 0) AS BIGINT) FROM conversations)";

/// Turns `limit + 1` fetched rows into a page. `newest_first` rows (paging
/// back) are returned ascending.
pub(crate) fn page_from_rows(
    rows: Vec<MessageRow>,
    limit: u32,
    newest_first: bool,
) -> StoreResult<HistoryPage> {
    let limit = limit as usize;
    let more = rows.len() > limit;
    let mut items = rows
        .into_iter()
        .take(limit)
        .map(message_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    if newest_first {
        items.reverse();
    }
    Ok(HistoryPage { items, more })
}

pub(crate) fn summary_from_row(user: &str, row: SummaryRow) -> StoreResult<ConvSummary> {
    let (conv, kind, last_seq, read_seq, name, seq, mid, from, body, mkind, ts, cmid, meta) = row;
    let last = match (seq, mid, from, body, mkind, ts, cmid) {
        (Some(seq), Some(mid), Some(from), Some(body), Some(mkind), Some(ts), Some(cmid)) => Some(
            message_from_row((conv.clone(), seq, mid, from, body, mkind, ts, cmid, meta))?,
        ),
        _ => None,
    };
    let conv = ConvId::parse(&conv).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let kind = match kind.as_str() {
        "direct" => ConvKind::Direct,
        "group" => ConvKind::Group,
        other => return Err(StoreError::Corrupt(format!("conversation kind {other:?}"))),
    };
    let last_seq = to_u64(last_seq, "last_seq")?;
    let read_seq = to_u64(read_seq, "read_seq")?;
    Ok(ConvSummary {
        peer: conv.peer_of(user).map(str::to_owned),
        name,
        conv,
        kind,
        last_seq,
        read_seq,
        unread: last_seq.saturating_sub(read_seq),
        last,
    })
}

/// Maps a database error to the store's classification: unreachable or
/// overloaded databases are `Unavailable` (the caller may retry), the rest
/// `Other`.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    let kind = if is_unavailable(&e) {
        crate::error::DbFailure::Unavailable
    } else {
        crate::error::DbFailure::Error
    };
    StoreError::Database {
        kind,
        source: std::sync::Arc::new(e),
    }
}

pub(crate) fn map_migrate_err(e: sqlx::migrate::MigrateError) -> StoreError {
    match e {
        sqlx::migrate::MigrateError::Execute(e) => map_err(e),
        other => StoreError::Other(format!("migration failed: {other}")),
    }
}

fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // BUSY / LOCKED (primary codes 5 and 6, also inside extended
                // codes) after the busy timeout ran out.
                let code = db.code().and_then(|c| c.parse::<i32>().ok());
                return code.is_some_and(|c| matches!(c & 0xff, 5 | 6));
            }
            // PostgreSQL: connection exceptions (08…), shutdown (57P01-03),
            // too many connections (53300).
            let code = db.code().unwrap_or_default();
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }
        _ => false,
    }
}

/// Errors worth retrying a single message for: a concurrent writer won a
/// unique race, or the database broke a deadlock / serialization conflict.
pub(crate) fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation() || matches!(db.code().as_deref(), Some("40001" | "40P01"))
        }
        _ => false,
    }
}

/// Puts what `provision_users` learned (the names it created, every name's
/// ban) in the order of `usernames`; a repeated name counts as created only
/// at its first place.
pub(crate) fn provisioned_in_order(
    usernames: &[&str],
    created: Vec<String>,
    banned: Vec<(String, bool)>,
) -> StoreResult<Vec<crate::Provisioned>> {
    let mut created: std::collections::HashSet<String> = created.into_iter().collect();
    let banned: std::collections::HashMap<String, bool> = banned.into_iter().collect();
    usernames
        .iter()
        .map(|name| match banned.get(*name) {
            Some(&banned) => Ok(crate::Provisioned {
                created: created.remove(*name),
                banned,
            }),
            None => Err(StoreError::Other(format!(
                "user {name} missing right after it was provisioned"
            ))),
        })
        .collect()
}
