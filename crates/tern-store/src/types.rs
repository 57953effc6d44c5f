//! Plain data passed through the [`crate::Store`] trait.

use tern_proto::message::Meta;
use tern_proto::{ConvId, Message, MessageKind};

/// A user row.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub username: String,
    /// Argon2id PHC string; `None` for users created by a token.
    pub password_hash: Option<String>,
    pub created_at: i64,
    pub banned: bool,
    /// When the last session ended; `None` if never connected.
    pub last_seen: Option<i64>,
}

/// A message to store. `mid` and `ts` are made by the server before the
/// append; `seq` is assigned by the store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub conv: ConvId,
    pub from: String,
    pub body: String,
    pub kind: MessageKind,
    pub cmid: String,
    pub meta: Option<Meta>,
    pub mid: String,
    pub ts: i64,
}

/// Result of storing one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    /// The stored message; for a duplicate, the ORIGINAL one.
    pub message: Message,
    /// True when (sender, cmid) was already stored and nothing new was written.
    pub duplicate: bool,
}

/// Which slice of history to read. `limit` is already clamped to 1..=500.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// seq > after, ascending; `more` = messages above the last returned exist.
    After { after: u64, limit: u32 },
    /// The `limit` messages just below `before`, ascending; `more` = older exist.
    Before { before: u64, limit: u32 },
    /// The newest `limit` messages, ascending; `more` = older exist.
    Latest { limit: u32 },
}

/// A page of history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    pub items: Vec<Message>,
    pub more: bool,
}

/// Result of moving a read pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOutcome {
    /// The pointer after the call.
    pub read_seq: u64,
    /// Whether it moved (only then does a receipt go out).
    pub moved: bool,
}
