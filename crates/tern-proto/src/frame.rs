//! Every frame of PROTOCOL.md §4: what clients send ([`ClientFrame`]) and what
//! the server answers or pushes ([`ServerFrame`]).

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::ids::ConvId;
use crate::message::{Message, MessageKind, Meta};

/// A request id chosen by the client: a JSON number or a string. Replies echo
/// it in the same form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    Num(serde_json::Number),
    Str(String),
    /// A JSON number that `Num` would change (beyond 64-bit integers and
    /// f64, e.g. 30 digits, or written as `1e2`), kept as the exact text the
    /// client sent and echoed as that number, digit for digit. Made by the
    /// JSON codec only.
    #[serde(skip_deserializing, serialize_with = "exact_number")]
    Exact(String),
}

impl RequestId {
    /// The id written as `text` (a JSON number): `Num` when that is exact,
    /// else `Exact`. `None` when `text` is not a JSON number, or has
    /// anything around it (`" 2"` would be echoed with its space).
    pub fn from_number_text(text: &str) -> Option<Self> {
        if text.trim() != text {
            return None;
        }
        let n: serde_json::Number = serde_json::from_str(text).ok()?;
        Some(if n.to_string() == text {
            Self::Num(n)
        } else {
            Self::Exact(text.to_owned())
        })
    }
}

/// Writes `text` (a JSON number the decoder checked) as a raw JSON number.
fn exact_number<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::Error;
    let raw =
        serde_json::value::RawValue::from_string(text.to_owned()).map_err(S::Error::custom)?;
    raw.serialize(s)
}

impl From<u64> for RequestId {
    fn from(n: u64) -> Self {
        Self::Num(n.into())
    }
}

impl From<&str> for RequestId {
    fn from(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
}

/// The `send` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendFrame {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// Recipient user of a direct message (exclusive with `conv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Target conversation (exclusive with `to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv: Option<ConvId>,
    pub cmid: String,
    pub body: String,
    #[serde(default)]
    pub kind: MessageKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

/// The `sync` request: a page of a conversation's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncFrame {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    pub conv: ConvId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// A frame sent by a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Auth {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        token: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
    },
    Send(SendFrame),
    Sync(SyncFrame),
    Convs {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    Read {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        conv: ConvId,
        seq: u64,
    },
    Typing {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        conv: ConvId,
    },
    PresenceSub {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        users: Vec<String>,
    },
    PresenceUnsub {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        users: Vec<String>,
    },
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
}

impl ClientFrame {
    /// The request id, if the client gave one.
    pub fn id(&self) -> Option<&RequestId> {
        match self {
            Self::Auth { id, .. }
            | Self::Convs { id }
            | Self::Read { id, .. }
            | Self::Typing { id, .. }
            | Self::PresenceSub { id, .. }
            | Self::PresenceUnsub { id, .. }
            | Self::Ping { id } => id.as_ref(),
            Self::Send(f) => f.id.as_ref(),
            Self::Sync(f) => f.id.as_ref(),
        }
    }

    /// The request id, to change it (the JSON codec restores exact numbers).
    pub fn id_mut(&mut self) -> Option<&mut RequestId> {
        match self {
            Self::Auth { id, .. }
            | Self::Convs { id }
            | Self::Read { id, .. }
            | Self::Typing { id, .. }
            | Self::PresenceSub { id, .. }
            | Self::PresenceUnsub { id, .. }
            | Self::Ping { id } => id.as_mut(),
            Self::Send(f) => f.id.as_mut(),
            Self::Sync(f) => f.id.as_mut(),
        }
    }

    /// The wire name of the frame's `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Auth { .. } => "auth",
            Self::Send(_) => "send",
            Self::Sync(_) => "sync",
            Self::Convs { .. } => "convs",
            Self::Read { .. } => "read",
            Self::Typing { .. } => "typing",
            Self::PresenceSub { .. } => "presence_sub",
            Self::PresenceUnsub { .. } => "presence_unsub",
            Self::Ping { .. } => "ping",
        }
    }
}

/// `direct` or `group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConvKind {
    Direct,
    Group,
}

/// One entry of the `convs` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvSummary {
    pub conv: ConvId,
    pub kind: ConvKind,
    /// The other party of a direct conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// A group's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub last_seq: u64,
    pub read_seq: u64,
    pub unread: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Message>,
}

/// A user's presence: `last_seen` is `null` for a user who never connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceItem {
    pub user: String,
    pub online: bool,
    pub last_seen: Option<i64>,
}

/// A group as shown to its members (PROTOCOL.md §5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub admins: Vec<String>,
    pub members: Vec<String>,
    pub created_at: i64,
}

/// What happened to a group, in a `group` push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupEvent {
    MemberAdded,
    MemberRemoved,
    Updated,
    Deleted,
}

/// A frame sent by the server: a reply (carrying the request's `id`) or a push.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    AuthOk {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        user: String,
        session: String,
        heartbeat_ms: u64,
        server_time: i64,
    },
    Ack {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        conv: ConvId,
        seq: u64,
        mid: String,
        ts: i64,
    },
    Messages {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        conv: ConvId,
        items: Vec<Message>,
        more: bool,
    },
    Convs {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        items: Vec<ConvSummary>,
    },
    Ok {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// The reply to `presence_sub` (with `id`) and the push on a change (without).
    Presence {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        items: Vec<PresenceItem>,
    },
    Msg(Message),
    Receipt {
        conv: ConvId,
        user: String,
        seq: u64,
    },
    Typing {
        conv: ConvId,
        user: String,
    },
    Group {
        event: GroupEvent,
        group: GroupInfo,
        users: Vec<String>,
    },
    Goaway {
        reconnect_ms: u64,
    },
    /// Pushes may have been lost (e.g. the cluster bus was unreachable): the
    /// client runs `convs` and syncs every conversation it is behind in.
    Resync,
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
        /// Set when the server closes the connection right after this frame.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        close: Option<u16>,
    },
}

impl ServerFrame {
    /// An `error` reply that leaves the connection open.
    pub fn error(id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            id,
            code,
            message: message.into(),
            retry_after_ms: None,
            close: None,
        }
    }

    /// The request id this frame answers, if any.
    pub fn id(&self) -> Option<&RequestId> {
        match self {
            Self::AuthOk { id, .. }
            | Self::Ack { id, .. }
            | Self::Messages { id, .. }
            | Self::Convs { id, .. }
            | Self::Ok { id }
            | Self::Pong { id }
            | Self::Presence { id, .. }
            | Self::Error { id, .. } => id.as_ref(),
            _ => None,
        }
    }

    /// The request id, to change it (the JSON codec restores exact numbers).
    pub fn id_mut(&mut self) -> Option<&mut RequestId> {
        match self {
            Self::AuthOk { id, .. }
            | Self::Ack { id, .. }
            | Self::Messages { id, .. }
            | Self::Convs { id, .. }
            | Self::Ok { id }
            | Self::Pong { id }
            | Self::Presence { id, .. }
            | Self::Error { id, .. } => id.as_mut(),
            _ => None,
        }
    }
}
