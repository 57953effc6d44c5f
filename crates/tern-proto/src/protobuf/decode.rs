//! Generated protobuf types → frame types, with the validation the JSON
//! codec applies (conversation ids through [`ConvId::parse`], `meta` through
//! [`Meta::from_client_json`], known enum values, required nested objects).
//!
//! Each frame conversion takes the request id as `&mut Option<RequestId>`
//! and moves it into the frame only as the last field of a successful arm,
//! so a failing field leaves it in place for the `bad_request` reply.

use serde_json::Number;

use crate::error::ErrorCode;
use crate::frame::{
    ClientFrame, ConvKind, ConvSummary, GroupEvent, GroupInfo, PresenceItem, RequestId, SendFrame,
    ServerFrame, SyncFrame,
};
use crate::ids::ConvId;
use crate::message::{Message, MessageKind, Meta};
use crate::pb::{self, frame::Frame as F, frame::Id};

type Res<T> = Result<T, String>;

/// The model form of a protobuf request id.
pub(crate) fn id_from_pb(id: Option<Id>) -> Res<Option<RequestId>> {
    Ok(Some(match id {
        None => return Ok(None),
        Some(Id::NumId(n)) => RequestId::Num(n.into()),
        Some(Id::NegId(n)) => RequestId::Num(n.into()),
        Some(Id::StrId(s)) => RequestId::Str(s),
        Some(Id::FloatId(f)) => match Number::from_f64(f) {
            Some(n) => RequestId::Num(n),
            None => return Err(format!("float_id must be finite, not {f}")),
        },
        Some(Id::NumText(text)) => match RequestId::from_number_text(&text) {
            Some(id) => id,
            None => return Err(format!("num_text must be a JSON number, not {text:?}")),
        },
    }))
}

/// The JSON `type` of a frame case, for error messages.
pub(crate) fn case_name(frame: &F) -> &'static str {
    match frame {
        F::Auth(_) => "auth",
        F::Send(_) => "send",
        F::Sync(_) => "sync",
        F::Convs(_) => "convs",
        F::Read(_) => "read",
        F::Typing(_) => "typing",
        F::PresenceSub(_) => "presence_sub",
        F::PresenceUnsub(_) => "presence_unsub",
        F::Ping(_) => "ping",
        F::Msg(_) => "msg",
        F::Ack(_) => "ack",
        F::AuthOk(_) => "auth_ok",
        F::Messages(_) => "messages",
        F::ConvsReply(_) => "convs_reply",
        F::Ok(_) => "ok",
        F::Pong(_) => "pong",
        F::Presence(_) => "presence",
        F::Receipt(_) => "receipt",
        F::TypingEvent(_) => "typing_event",
        F::Group(_) => "group",
        F::Goaway(_) => "goaway",
        F::Resync(_) => "resync",
        F::Error(_) => "error",
    }
}

fn conv(field: &str, s: &str) -> Res<ConvId> {
    ConvId::parse(s).map_err(|e| format!("{field}: {e}"))
}

fn meta(text: Option<String>) -> Res<Option<Meta>> {
    text.map(|t| Meta::from_client_json(&t)).transpose()
}

fn kind(k: i32) -> Res<MessageKind> {
    match pb::MessageKind::try_from(k) {
        Ok(pb::MessageKind::Text) => Ok(MessageKind::Text),
        Ok(pb::MessageKind::System) => Ok(MessageKind::System),
        Ok(pb::MessageKind::E2e) => Ok(MessageKind::E2e),
        Err(_) => Err(format!("unknown message kind {k}")),
    }
}

fn message(m: pb::Message) -> Res<Message> {
    Ok(Message {
        conv: conv("conv", &m.conv)?,
        seq: m.seq,
        mid: m.mid,
        from: m.from,
        body: m.body,
        kind: kind(m.kind)?,
        ts: m.ts,
        cmid: m.cmid,
        meta: meta(m.meta)?,
    })
}

impl TryFrom<pb::Message> for Message {
    type Error = String;

    /// Validates the conversation id, the kind and `meta`.
    fn try_from(m: pb::Message) -> Res<Message> {
        message(m)
    }
}

/// A client frame from its protobuf case; a server case is refused.
pub(crate) fn client(id: &mut Option<RequestId>, frame: F) -> Res<ClientFrame> {
    Ok(match frame {
        F::Auth(a) => ClientFrame::Auth {
            token: a.token,
            device: a.device,
            id: id.take(),
        },
        F::Send(s) => ClientFrame::Send(SendFrame {
            to: s.to,
            conv: s.conv.map(|c| conv("conv", &c)).transpose()?,
            cmid: s.cmid,
            body: s.body,
            kind: kind(s.kind)?,
            meta: meta(s.meta)?,
            id: id.take(),
        }),
        F::Sync(s) => ClientFrame::Sync(SyncFrame {
            conv: conv("conv", &s.conv)?,
            after: s.after,
            before: s.before,
            limit: s.limit,
            id: id.take(),
        }),
        F::Convs(_) => ClientFrame::Convs { id: id.take() },
        F::Read(r) => ClientFrame::Read {
            conv: conv("conv", &r.conv)?,
            seq: r.seq,
            id: id.take(),
        },
        F::Typing(t) => ClientFrame::Typing {
            conv: conv("conv", &t.conv)?,
            id: id.take(),
        },
        F::PresenceSub(p) => ClientFrame::PresenceSub {
            users: p.users,
            id: id.take(),
        },
        F::PresenceUnsub(p) => ClientFrame::PresenceUnsub {
            users: p.users,
            id: id.take(),
        },
        F::Ping(_) => ClientFrame::Ping { id: id.take() },
        other => {
            return Err(format!(
                "`{}` is a server frame, not a client frame",
                case_name(&other)
            ))
        }
    })
}

/// A server frame from its protobuf case; a client case is refused. Pushes
/// ignore a request id (as JSON ignores unknown members).
pub(crate) fn server(id: &mut Option<RequestId>, frame: F) -> Res<ServerFrame> {
    Ok(match frame {
        F::AuthOk(a) => ServerFrame::AuthOk {
            user: a.user,
            session: a.session,
            heartbeat_ms: a.heartbeat_ms,
            server_time: a.server_time,
            id: id.take(),
        },
        F::Ack(a) => ServerFrame::Ack {
            conv: conv("conv", &a.conv)?,
            seq: a.seq,
            mid: a.mid,
            ts: a.ts,
            id: id.take(),
        },
        F::Messages(m) => ServerFrame::Messages {
            conv: conv("conv", &m.conv)?,
            items: m.items.into_iter().map(message).collect::<Res<_>>()?,
            more: m.more,
            id: id.take(),
        },
        F::ConvsReply(c) => ServerFrame::Convs {
            items: c.items.into_iter().map(summary).collect::<Res<_>>()?,
            id: id.take(),
        },
        F::Ok(_) => ServerFrame::Ok { id: id.take() },
        F::Pong(_) => ServerFrame::Pong { id: id.take() },
        F::Presence(p) => ServerFrame::Presence {
            items: p.items.into_iter().map(presence).collect(),
            id: id.take(),
        },
        F::Msg(m) => ServerFrame::Msg(message(m)?),
        F::Receipt(r) => ServerFrame::Receipt {
            conv: conv("conv", &r.conv)?,
            user: r.user,
            seq: r.seq,
        },
        F::TypingEvent(t) => ServerFrame::Typing {
            conv: conv("conv", &t.conv)?,
            user: t.user,
        },
        F::Group(g) => ServerFrame::Group {
            event: event(g.event)?,
            group: group(g.group.ok_or("group: missing group object")?),
            users: g.users,
        },
        F::Goaway(g) => ServerFrame::Goaway {
            reconnect_ms: g.reconnect_ms,
        },
        F::Resync(_) => ServerFrame::Resync,
        F::Error(e) => ServerFrame::Error {
            code: code(e.code)?,
            message: e.message,
            retry_after_ms: e.retry_after_ms,
            close: e
                .close
                .map(|c| u16::try_from(c).map_err(|_| format!("close {c} is over 65535")))
                .transpose()?,
            id: id.take(),
        },
        other => {
            return Err(format!(
                "`{}` is a client frame, not a server frame",
                case_name(&other)
            ))
        }
    })
}

fn summary(s: pb::ConvSummary) -> Res<ConvSummary> {
    Ok(ConvSummary {
        conv: conv("conv", &s.conv)?,
        kind: match pb::ConvKind::try_from(s.kind) {
            Ok(pb::ConvKind::Direct) => ConvKind::Direct,
            Ok(pb::ConvKind::Group) => ConvKind::Group,
            _ => return Err(format!("unknown conversation kind {}", s.kind)),
        },
        peer: s.peer,
        name: s.name,
        last_seq: s.last_seq,
        read_seq: s.read_seq,
        unread: s.unread,
        last: s.last.map(message).transpose()?,
    })
}

fn presence(p: pb::PresenceItem) -> PresenceItem {
    PresenceItem {
        user: p.user,
        online: p.online,
        last_seen: p.last_seen,
    }
}

fn group(g: pb::GroupInfo) -> GroupInfo {
    GroupInfo {
        id: g.id,
        name: g.name,
        owner: g.owner,
        admins: g.admins,
        members: g.members,
        created_at: g.created_at,
    }
}

fn event(e: i32) -> Res<GroupEvent> {
    match pb::GroupEvent::try_from(e) {
        Ok(pb::GroupEvent::MemberAdded) => Ok(GroupEvent::MemberAdded),
        Ok(pb::GroupEvent::MemberRemoved) => Ok(GroupEvent::MemberRemoved),
        Ok(pb::GroupEvent::Updated) => Ok(GroupEvent::Updated),
        Ok(pb::GroupEvent::Deleted) => Ok(GroupEvent::Deleted),
        _ => Err(format!("unknown group event {e}")),
    }
}

fn code(c: i32) -> Res<ErrorCode> {
    use pb::ErrorCode as P;
    Ok(match P::try_from(c) {
        Ok(P::BadRequest) => ErrorCode::BadRequest,
        Ok(P::Unauthorized) => ErrorCode::Unauthorized,
        Ok(P::Forbidden) => ErrorCode::Forbidden,
        Ok(P::NotFound) => ErrorCode::NotFound,
        Ok(P::TooLarge) => ErrorCode::TooLarge,
        Ok(P::RateLimited) => ErrorCode::RateLimited,
        Ok(P::Conflict) => ErrorCode::Conflict,
        Ok(P::Unavailable) => ErrorCode::Unavailable,
        Ok(P::Internal) => ErrorCode::Internal,
        Ok(P::Unspecified) | Err(_) => return Err(format!("unknown error code {c}")),
    })
}
