//! Plain data passed through the [`crate::Store`] trait.

use tern_proto::frame::GroupInfo;
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

/// What [`crate::Store::provision_users`] found or did for one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provisioned {
    /// The user did not exist and was created now (without a password).
    pub created: bool,
    pub banned: bool,
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

/// A member's role in a group, stored in `conv_members.role` of the group's
/// `g:<id>` conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupRole {
    Owner,
    Admin,
    Member,
}

impl GroupRole {
    /// The `conv_members.role` text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Self::Owner),
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

/// A group and its members, as stored (PROTOCOL.md §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub id: String,
    pub name: String,
    pub owner: String,
    /// The admins other than the owner, sorted (byte order).
    pub admins: Vec<String>,
    /// Everyone, owner and admins included, sorted (byte order).
    pub members: Vec<String>,
    pub created_at: i64,
}

impl GroupRecord {
    /// The group's conversation, `g:<id>`.
    pub fn conv(&self) -> ConvId {
        ConvId::Group(self.id.clone())
    }

    /// The role of `user`, or `None` when not a member.
    pub fn role_of(&self, user: &str) -> Option<GroupRole> {
        if user == self.owner {
            Some(GroupRole::Owner)
        } else if self
            .admins
            .binary_search_by(|a| a.as_str().cmp(user))
            .is_ok()
        {
            Some(GroupRole::Admin)
        } else if self
            .members
            .binary_search_by(|m| m.as_str().cmp(user))
            .is_ok()
        {
            Some(GroupRole::Member)
        } else {
            None
        }
    }

    /// The wire form (`group` object of the HTTP API and `group` pushes).
    pub fn to_info(&self) -> GroupInfo {
        GroupInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            owner: self.owner.clone(),
            admins: self.admins.clone(),
            members: self.members.clone(),
            created_at: self.created_at,
        }
    }
}

/// Result of [`crate::Store::set_role`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleOutcome {
    /// No such group (or it was deleted). Nothing changed.
    NoGroup,
    /// The user is not a member of the group. Nothing changed.
    NotMember,
    /// The user is the owner and the requested role is not `Owner`: the
    /// owner's role only changes by handing ownership to another member
    /// (`set_role(other, Owner)`). Nothing changed.
    IsOwner,
    /// The role is set; `changed` is false when it already was that role.
    Done { group: GroupRecord, changed: bool },
}
