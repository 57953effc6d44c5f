//! Frame types → generated protobuf types. Every frame has a protobuf form,
//! so these conversions cannot fail.

use serde_json::Number;

use crate::error::ErrorCode;
use crate::frame::{
    ClientFrame, ConvKind, ConvSummary, GroupEvent, GroupInfo, PresenceItem, RequestId, SendFrame,
    ServerFrame, SyncFrame,
};
use crate::message::{Message, MessageKind};
use crate::pb::{self, frame::Frame as F, frame::Id};

/// The protobuf form of a request id: a non-negative integer as `num_id`, a
/// negative one as `neg_id`, any other number as `float_id`.
pub(crate) fn id_to_pb(id: Option<&RequestId>) -> Option<Id> {
    Some(match id? {
        RequestId::Str(s) => Id::StrId(s.clone()),
        RequestId::Num(n) => num_to_pb(n),
        // Beyond every protobuf number: the JSON text itself.
        RequestId::Exact(text) => Id::NumText(text.clone()),
    })
}

fn num_to_pb(n: &Number) -> Id {
    if let Some(u) = n.as_u64() {
        Id::NumId(u)
    } else if let Some(i) = n.as_i64() {
        Id::NegId(i)
    } else if let Some(f) = n.as_f64() {
        Id::FloatId(f)
    } else {
        // Only with serde_json's `arbitrary_precision`, which is not enabled.
        Id::StrId(n.to_string())
    }
}

pub(crate) fn kind_to_pb(kind: MessageKind) -> i32 {
    (match kind {
        MessageKind::Text => pb::MessageKind::Text,
        MessageKind::System => pb::MessageKind::System,
        MessageKind::E2e => pb::MessageKind::E2e,
    }) as i32
}

impl From<&Message> for pb::Message {
    fn from(m: &Message) -> Self {
        Self {
            conv: m.conv.to_string(),
            seq: m.seq,
            mid: m.mid.clone(),
            from: m.from.clone(),
            body: m.body.clone(),
            kind: kind_to_pb(m.kind),
            ts: m.ts,
            cmid: m.cmid.clone(),
            meta: m.meta.as_ref().map(|meta| meta.as_str().to_owned()),
        }
    }
}

impl From<&ClientFrame> for pb::Frame {
    fn from(frame: &ClientFrame) -> Self {
        let body = match frame {
            ClientFrame::Auth { token, device, .. } => F::Auth(pb::Auth {
                token: token.clone(),
                device: device.clone(),
            }),
            ClientFrame::Send(s) => F::Send(send_to_pb(s)),
            ClientFrame::Sync(s) => F::Sync(sync_to_pb(s)),
            ClientFrame::Convs { .. } => F::Convs(pb::Convs {}),
            ClientFrame::Read { conv, seq, .. } => F::Read(pb::Read {
                conv: conv.to_string(),
                seq: *seq,
            }),
            ClientFrame::Typing { conv, .. } => F::Typing(pb::Typing {
                conv: conv.to_string(),
            }),
            ClientFrame::PresenceSub { users, .. } => F::PresenceSub(pb::PresenceSub {
                users: users.clone(),
            }),
            ClientFrame::PresenceUnsub { users, .. } => F::PresenceUnsub(pb::PresenceUnsub {
                users: users.clone(),
            }),
            ClientFrame::Ping { .. } => F::Ping(pb::Ping {}),
        };
        Self {
            id: id_to_pb(frame.id()),
            frame: Some(body),
        }
    }
}

fn send_to_pb(s: &SendFrame) -> pb::Send {
    pb::Send {
        to: s.to.clone(),
        conv: s.conv.as_ref().map(ToString::to_string),
        cmid: s.cmid.clone(),
        body: s.body.clone(),
        kind: kind_to_pb(s.kind),
        meta: s.meta.as_ref().map(|meta| meta.as_str().to_owned()),
    }
}

fn sync_to_pb(s: &SyncFrame) -> pb::Sync {
    pb::Sync {
        conv: s.conv.to_string(),
        after: s.after,
        before: s.before,
        limit: s.limit,
    }
}

impl From<&ServerFrame> for pb::Frame {
    fn from(frame: &ServerFrame) -> Self {
        let body = match frame {
            ServerFrame::AuthOk {
                user,
                session,
                heartbeat_ms,
                server_time,
                ..
            } => F::AuthOk(pb::AuthOk {
                user: user.clone(),
                session: session.clone(),
                heartbeat_ms: *heartbeat_ms,
                server_time: *server_time,
            }),
            ServerFrame::Ack {
                conv, seq, mid, ts, ..
            } => F::Ack(pb::Ack {
                conv: conv.to_string(),
                seq: *seq,
                mid: mid.clone(),
                ts: *ts,
            }),
            ServerFrame::Messages {
                conv, items, more, ..
            } => F::Messages(pb::Messages {
                conv: conv.to_string(),
                items: items.iter().map(pb::Message::from).collect(),
                more: *more,
            }),
            ServerFrame::Convs { items, .. } => F::ConvsReply(pb::ConvsReply {
                items: items.iter().map(summary_to_pb).collect(),
            }),
            ServerFrame::Ok { .. } => F::Ok(pb::Ok {}),
            ServerFrame::Pong { .. } => F::Pong(pb::Pong {}),
            ServerFrame::Presence { items, .. } => F::Presence(pb::Presence {
                items: items.iter().map(presence_to_pb).collect(),
            }),
            ServerFrame::Msg(m) => F::Msg(m.into()),
            ServerFrame::Receipt { conv, user, seq } => F::Receipt(pb::Receipt {
                conv: conv.to_string(),
                user: user.clone(),
                seq: *seq,
            }),
            ServerFrame::Typing { conv, user } => F::TypingEvent(pb::TypingEvent {
                conv: conv.to_string(),
                user: user.clone(),
            }),
            ServerFrame::Group {
                event,
                group,
                users,
            } => F::Group(pb::Group {
                event: event_to_pb(*event) as i32,
                group: Some(group_to_pb(group)),
                users: users.clone(),
            }),
            ServerFrame::Goaway { reconnect_ms } => F::Goaway(pb::Goaway {
                reconnect_ms: *reconnect_ms,
            }),
            ServerFrame::Resync => F::Resync(pb::Resync {}),
            ServerFrame::Error {
                code,
                message,
                retry_after_ms,
                close,
                ..
            } => F::Error(pb::Error {
                code: code_to_pb(*code) as i32,
                message: message.clone(),
                retry_after_ms: *retry_after_ms,
                close: close.map(u32::from),
            }),
        };
        Self {
            id: id_to_pb(frame.id()),
            frame: Some(body),
        }
    }
}

fn summary_to_pb(s: &ConvSummary) -> pb::ConvSummary {
    pb::ConvSummary {
        conv: s.conv.to_string(),
        kind: (match s.kind {
            ConvKind::Direct => pb::ConvKind::Direct,
            ConvKind::Group => pb::ConvKind::Group,
        }) as i32,
        peer: s.peer.clone(),
        name: s.name.clone(),
        last_seq: s.last_seq,
        read_seq: s.read_seq,
        unread: s.unread,
        last: s.last.as_ref().map(pb::Message::from),
    }
}

fn presence_to_pb(p: &PresenceItem) -> pb::PresenceItem {
    pb::PresenceItem {
        user: p.user.clone(),
        online: p.online,
        last_seen: p.last_seen,
    }
}

fn group_to_pb(g: &GroupInfo) -> pb::GroupInfo {
    pb::GroupInfo {
        id: g.id.clone(),
        name: g.name.clone(),
        owner: g.owner.clone(),
        admins: g.admins.clone(),
        members: g.members.clone(),
        created_at: g.created_at,
    }
}

fn event_to_pb(e: GroupEvent) -> pb::GroupEvent {
    match e {
        GroupEvent::MemberAdded => pb::GroupEvent::MemberAdded,
        GroupEvent::MemberRemoved => pb::GroupEvent::MemberRemoved,
        GroupEvent::Updated => pb::GroupEvent::Updated,
        GroupEvent::Deleted => pb::GroupEvent::Deleted,
    }
}

fn code_to_pb(c: ErrorCode) -> pb::ErrorCode {
    match c {
        ErrorCode::BadRequest => pb::ErrorCode::BadRequest,
        ErrorCode::Unauthorized => pb::ErrorCode::Unauthorized,
        ErrorCode::Forbidden => pb::ErrorCode::Forbidden,
        ErrorCode::NotFound => pb::ErrorCode::NotFound,
        ErrorCode::TooLarge => pb::ErrorCode::TooLarge,
        ErrorCode::RateLimited => pb::ErrorCode::RateLimited,
        ErrorCode::Conflict => pb::ErrorCode::Conflict,
        ErrorCode::Unavailable => pb::ErrorCode::Unavailable,
        ErrorCode::Internal => pb::ErrorCode::Internal,
    }
}
