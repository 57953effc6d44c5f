//! The frames of the golden corpus (`tests/golden/`): every frame type of
//! both directions, with every request id form, written out by hand so a
//! change of the frame types or of a codec shows up as a diff of the files.
#![allow(clippy::unwrap_used)]

use tern_proto::frame::{ConvKind, GroupEvent, GroupInfo, SendFrame, SyncFrame};
use tern_proto::message::Meta;
use tern_proto::{
    ClientFrame, ConvId, ConvSummary, ErrorCode, Message, MessageKind, PresenceItem, RequestId,
    ServerFrame,
};

pub enum Golden {
    Client(ClientFrame),
    Server(ServerFrame),
}

fn dm() -> ConvId {
    ConvId::direct("alice", "bob")
}

/// A `meta` as a server frame carries it. The JSON codec's client side
/// decodes server frames through `serde_json::Value`, which keeps key order
/// but not number spellings or escapes, so this one has only canonical text.
fn meta() -> Meta {
    Meta::from_json(r#"{"reply_to":16,"mentions":["bob","carol"],"s":"é"}"#).unwrap()
}

/// A `meta` as a client sends it: the server keeps it byte for byte, in both
/// codecs.
fn exact_meta() -> Meta {
    Meta::from_json(r#"{"reply_to":16,"big":123456789012345678901234567890,"f":1.0,"s":"\u00e9"}"#)
        .unwrap()
}

fn message(seq: u64, meta: Option<Meta>) -> Message {
    Message {
        conv: dm(),
        seq,
        mid: format!("01JD3Z8Q4W5Y6V7T8S9R0P1N{seq:02}"),
        from: "alice".into(),
        body: "hi \u{1F600}".into(),
        kind: MessageKind::Text,
        ts: 1_763_683_200_000 + seq as i64,
        cmid: format!("c-{seq}"),
        meta,
    }
}

fn id(n: u64) -> Option<RequestId> {
    Some(n.into())
}

fn group_info() -> GroupInfo {
    GroupInfo {
        id: "x1".into(),
        name: "Lunch crew".into(),
        owner: "alice".into(),
        admins: vec!["alice".into()],
        members: vec!["alice".into(), "bob".into(), "carol".into()],
        created_at: 1_763_683_100_000,
    }
}

fn client_frames() -> Vec<(&'static str, ClientFrame)> {
    use ClientFrame as C;
    vec![
        (
            "auth",
            C::Auth {
                id: id(1),
                token: "eyJhbGciOiJIUzI1NiJ9.e30.sig".into(),
                device: Some("laptop".into()),
            },
        ),
        (
            "send_to",
            C::Send(SendFrame {
                id: id(2),
                to: Some("bob".into()),
                conv: None,
                cmid: "c-42".into(),
                body: "hi".into(),
                kind: MessageKind::Text,
                meta: None,
            }),
        ),
        (
            "send_conv_meta",
            C::Send(SendFrame {
                id: Some("s-3".into()),
                to: None,
                conv: Some(ConvId::Group("x1".into())),
                cmid: "c-43".into(),
                body: "ciphertext".into(),
                kind: MessageKind::E2e,
                meta: Some(exact_meta()),
            }),
        ),
        (
            "sync_after",
            C::Sync(SyncFrame {
                id: id(4),
                conv: dm(),
                after: Some(10),
                before: None,
                limit: Some(100),
            }),
        ),
        (
            "sync_before",
            C::Sync(SyncFrame {
                id: id(5),
                conv: dm(),
                after: None,
                before: Some(100),
                limit: Some(50),
            }),
        ),
        (
            "sync_newest",
            C::Sync(SyncFrame {
                id: id(6),
                conv: dm(),
                after: None,
                before: None,
                limit: None,
            }),
        ),
        ("convs", C::Convs { id: id(6) }),
        (
            "read",
            C::Read {
                id: id(7),
                conv: dm(),
                seq: 17,
            },
        ),
        (
            "typing",
            C::Typing {
                id: None,
                conv: dm(),
            },
        ),
        (
            "presence_sub",
            C::PresenceSub {
                id: id(8),
                users: vec!["bob".into(), "carol".into()],
            },
        ),
        (
            "presence_unsub",
            C::PresenceUnsub {
                id: id(9),
                users: vec!["bob".into()],
            },
        ),
        ("ping", C::Ping { id: id(10) }),
        (
            "ping_str_id",
            C::Ping {
                id: Some("10".into()),
            },
        ),
        (
            "ping_neg_id",
            C::Ping {
                id: Some(RequestId::Num((-3).into())),
            },
        ),
        ("ping_no_id", C::Ping { id: None }),
    ]
}

fn server_frames() -> Vec<(&'static str, ServerFrame)> {
    use ServerFrame as S;
    vec![
        (
            "auth_ok",
            S::AuthOk {
                id: id(1),
                user: "alice".into(),
                session: "s-9f2".into(),
                heartbeat_ms: 25_000,
                server_time: 1_763_683_200_000,
            },
        ),
        (
            "auth_ok_unprompted",
            S::AuthOk {
                id: None,
                user: "bob".into(),
                session: "s-a01".into(),
                heartbeat_ms: 25_000,
                server_time: 1_763_683_200_000,
            },
        ),
        (
            "ack",
            S::Ack {
                id: id(2),
                conv: dm(),
                seq: 17,
                mid: "01JD3Z8Q4W5Y6V7T8S9R0P1N2M".into(),
                ts: 1_763_683_200_123,
            },
        ),
        (
            "messages",
            S::Messages {
                id: id(4),
                conv: dm(),
                items: vec![message(11, None), message(12, Some(meta()))],
                more: false,
            },
        ),
        (
            "convs",
            S::Convs {
                id: id(6),
                items: vec![
                    ConvSummary {
                        conv: dm(),
                        kind: ConvKind::Direct,
                        peer: Some("bob".into()),
                        name: None,
                        last_seq: 17,
                        read_seq: 12,
                        unread: 5,
                        last: Some(message(17, None)),
                    },
                    ConvSummary {
                        conv: ConvId::Group("x1".into()),
                        kind: ConvKind::Group,
                        peer: None,
                        name: Some("Lunch crew".into()),
                        last_seq: 0,
                        read_seq: 0,
                        unread: 0,
                        last: None,
                    },
                ],
            },
        ),
        ("ok", S::Ok { id: id(7) }),
        ("pong", S::Pong { id: id(10) }),
        (
            "pong_str_id",
            S::Pong {
                id: Some("10".into()),
            },
        ),
        (
            "presence",
            S::Presence {
                id: id(8),
                items: vec![
                    PresenceItem {
                        user: "bob".into(),
                        online: true,
                        last_seen: Some(1_763_683_200_000),
                    },
                    PresenceItem {
                        user: "carol".into(),
                        online: false,
                        last_seen: None,
                    },
                ],
            },
        ),
        (
            "presence_push",
            S::Presence {
                id: None,
                items: vec![PresenceItem {
                    user: "bob".into(),
                    online: false,
                    last_seen: Some(1_763_683_260_000),
                }],
            },
        ),
        ("msg", S::Msg(message(17, None))),
        ("msg_meta", S::Msg(message(18, Some(meta())))),
        (
            "msg_system",
            S::Msg(Message {
                conv: ConvId::Group("x1".into()),
                from: "system".into(),
                kind: MessageKind::System,
                ..message(19, None)
            }),
        ),
        (
            "receipt",
            S::Receipt {
                conv: dm(),
                user: "bob".into(),
                seq: 17,
            },
        ),
        (
            "typing",
            S::Typing {
                conv: dm(),
                user: "bob".into(),
            },
        ),
        (
            "group_member_added",
            S::Group {
                event: GroupEvent::MemberAdded,
                group: group_info(),
                users: vec!["carol".into()],
            },
        ),
        (
            "group_member_removed",
            S::Group {
                event: GroupEvent::MemberRemoved,
                group: group_info(),
                users: vec!["dave".into()],
            },
        ),
        (
            "group_updated",
            S::Group {
                event: GroupEvent::Updated,
                group: group_info(),
                users: vec![],
            },
        ),
        (
            "group_deleted",
            S::Group {
                event: GroupEvent::Deleted,
                group: group_info(),
                users: vec![],
            },
        ),
        ("goaway", S::Goaway { reconnect_ms: 2000 }),
        ("resync", S::Resync),
        (
            "error",
            S::error(id(7), ErrorCode::Forbidden, "not a member of g:x1"),
        ),
        (
            "error_rate_limited",
            S::Error {
                id: id(11),
                code: ErrorCode::RateLimited,
                message: "slow down".into(),
                retry_after_ms: Some(250),
                close: None,
            },
        ),
        (
            "error_close",
            S::Error {
                id: None,
                code: ErrorCode::BadRequest,
                message: "malformed frame".into(),
                retry_after_ms: None,
                close: Some(4000),
            },
        ),
    ]
}

pub fn corpus() -> Vec<(String, Golden)> {
    let client = client_frames()
        .into_iter()
        .map(|(n, f)| (format!("client_{n}"), Golden::Client(f)));
    let server = server_frames()
        .into_iter()
        .map(|(n, f)| (format!("server_{n}"), Golden::Server(f)));
    client.chain(server).collect()
}
