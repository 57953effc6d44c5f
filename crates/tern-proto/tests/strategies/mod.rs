//! proptest strategies for every frame type, shared by the codec property
//! tests (`roundtrip.rs` for JSON, `protobuf.rs` for protobuf and the seam).
#![allow(dead_code, clippy::unwrap_used)]

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use serde_json::{Map, Number, Value};
use tern_proto::frame::{GroupEvent, GroupInfo, SendFrame, SyncFrame};
use tern_proto::message::Meta;
use tern_proto::{
    ClientFrame, ConvId, ConvSummary, ErrorCode, Message, MessageKind, PresenceItem, RequestId,
    ServerFrame,
};

// ---- leaves ---------------------------------------------------------------

pub fn username() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9_.-]{2,31}"
}

pub fn conv_id() -> impl Strategy<Value = ConvId> {
    prop_oneof![
        (username(), username()).prop_map(|(a, b)| ConvId::direct(&a, &b)),
        "[A-Za-z0-9_-]{1,64}".prop_map(ConvId::Group),
    ]
}

/// Arbitrary unicode, and strings dense in what JSON must escape.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\"\\\\/\\x00-\\x1f\\x7f a-z\u{e9}\u{2028}\u{2029}\u{feff}\u{10ffff}\u{1F600}]{0,24}",
    ]
}

pub fn request_id() -> impl Strategy<Value = RequestId> {
    prop_oneof![
        any::<u64>().prop_map(|n| RequestId::Num(Number::from(n))),
        any::<i64>().prop_map(|n| RequestId::Num(Number::from(n))),
        short_float().prop_map(|f| RequestId::Num(Number::from_f64(f).unwrap())),
        text().prop_map(RequestId::Str),
    ]
}

pub fn id() -> impl Strategy<Value = Option<RequestId>> {
    option::of(request_id())
}

pub fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        short_float().prop_map(Value::from),
        text().prop_map(Value::String),
    ]
}

/// Floats with few significant digits. Arbitrary `f64`s do not survive a
/// trip through `Meta` (see `meta_floats_round_trip_exactly`).
pub fn short_float() -> impl Strategy<Value = f64> {
    (any::<i32>(), 0..6i32).prop_map(|(m, e)| f64::from(m) / 10f64.powi(e))
}

pub fn object_of(inner: impl Strategy<Value = Value>) -> impl Strategy<Value = Map<String, Value>> {
    vec((text(), inner), 0..6).prop_map(|kvs| kvs.into_iter().collect())
}

pub fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            object_of(inner).prop_map(Value::Object),
        ]
    })
}

pub fn meta() -> impl Strategy<Value = Meta> {
    object_of(json_value()).prop_map(|m| Meta::from_json(&Value::Object(m).to_string()).unwrap())
}

pub fn kind() -> impl Strategy<Value = MessageKind> {
    prop_oneof![
        Just(MessageKind::Text),
        Just(MessageKind::System),
        Just(MessageKind::E2e)
    ]
}

pub fn error_code() -> impl Strategy<Value = ErrorCode> {
    use ErrorCode::*;
    proptest::sample::select(vec![
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        TooLarge,
        RateLimited,
        Conflict,
        Unavailable,
        Internal,
    ])
}

pub fn users() -> impl Strategy<Value = Vec<String>> {
    vec(username(), 0..4)
}

// ---- composites -----------------------------------------------------------

pub fn message() -> impl Strategy<Value = Message> {
    (
        (conv_id(), any::<u64>(), text(), username()),
        (text(), kind(), any::<i64>(), text(), option::of(meta())),
    )
        .prop_map(
            |((conv, seq, mid, from), (body, kind, ts, cmid, meta))| Message {
                conv,
                seq,
                mid,
                from,
                body,
                kind,
                ts,
                cmid,
                meta,
            },
        )
}

pub fn send_frame() -> impl Strategy<Value = SendFrame> {
    (
        (id(), option::of(username()), option::of(conv_id())),
        (text(), text(), kind(), option::of(meta())),
    )
        .prop_map(|((id, to, conv), (cmid, body, kind, meta))| SendFrame {
            id,
            to,
            conv,
            cmid,
            body,
            kind,
            meta,
        })
}

pub fn sync_frame() -> impl Strategy<Value = SyncFrame> {
    (
        id(),
        conv_id(),
        option::of(any::<u64>()),
        option::of(any::<u64>()),
        option::of(any::<i64>()),
    )
        .prop_map(|(id, conv, after, before, limit)| SyncFrame {
            id,
            conv,
            after,
            before,
            limit,
        })
}

pub fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        (id(), text(), option::of(text())).prop_map(|(id, token, device)| ClientFrame::Auth {
            id,
            token,
            device
        }),
        send_frame().prop_map(ClientFrame::Send),
        sync_frame().prop_map(ClientFrame::Sync),
        id().prop_map(|id| ClientFrame::Convs { id }),
        (id(), conv_id(), any::<u64>()).prop_map(|(id, conv, seq)| ClientFrame::Read {
            id,
            conv,
            seq
        }),
        (id(), conv_id()).prop_map(|(id, conv)| ClientFrame::Typing { id, conv }),
        (id(), users()).prop_map(|(id, users)| ClientFrame::PresenceSub { id, users }),
        (id(), users()).prop_map(|(id, users)| ClientFrame::PresenceUnsub { id, users }),
        id().prop_map(|id| ClientFrame::Ping { id }),
    ]
}

pub fn conv_summary() -> impl Strategy<Value = ConvSummary> {
    (
        (
            conv_id(),
            any::<bool>(),
            option::of(username()),
            option::of(text()),
        ),
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            option::of(message()),
        ),
    )
        .prop_map(
            |((conv, group, peer, name), (last_seq, read_seq, unread, last))| ConvSummary {
                conv,
                kind: if group {
                    tern_proto::frame::ConvKind::Group
                } else {
                    tern_proto::frame::ConvKind::Direct
                },
                peer,
                name,
                last_seq,
                read_seq,
                unread,
                last,
            },
        )
}

pub fn presence_item() -> impl Strategy<Value = PresenceItem> {
    (username(), any::<bool>(), option::of(any::<i64>())).prop_map(|(user, online, last_seen)| {
        PresenceItem {
            user,
            online,
            last_seen,
        }
    })
}

pub fn group_info() -> impl Strategy<Value = GroupInfo> {
    (text(), text(), username(), users(), users(), any::<i64>()).prop_map(
        |(id, name, owner, admins, members, created_at)| GroupInfo {
            id,
            name,
            owner,
            admins,
            members,
            created_at,
        },
    )
}

pub fn group_event() -> impl Strategy<Value = GroupEvent> {
    proptest::sample::select(vec![
        GroupEvent::MemberAdded,
        GroupEvent::MemberRemoved,
        GroupEvent::Updated,
        GroupEvent::Deleted,
    ])
}

pub fn server_frame() -> impl Strategy<Value = ServerFrame> {
    prop_oneof![
        (id(), username(), text(), any::<u64>(), any::<i64>()).prop_map(
            |(id, user, session, heartbeat_ms, server_time)| ServerFrame::AuthOk {
                id,
                user,
                session,
                heartbeat_ms,
                server_time
            }
        ),
        (id(), conv_id(), any::<u64>(), text(), any::<i64>()).prop_map(
            |(id, conv, seq, mid, ts)| ServerFrame::Ack {
                id,
                conv,
                seq,
                mid,
                ts
            }
        ),
        (id(), conv_id(), vec(message(), 0..3), any::<bool>()).prop_map(
            |(id, conv, items, more)| ServerFrame::Messages {
                id,
                conv,
                items,
                more
            }
        ),
        (id(), vec(conv_summary(), 0..3)).prop_map(|(id, items)| ServerFrame::Convs { id, items }),
        id().prop_map(|id| ServerFrame::Ok { id }),
        id().prop_map(|id| ServerFrame::Pong { id }),
        (id(), vec(presence_item(), 0..3))
            .prop_map(|(id, items)| ServerFrame::Presence { id, items }),
        message().prop_map(ServerFrame::Msg),
        (conv_id(), username(), any::<u64>()).prop_map(|(conv, user, seq)| ServerFrame::Receipt {
            conv,
            user,
            seq
        }),
        (conv_id(), username()).prop_map(|(conv, user)| ServerFrame::Typing { conv, user }),
        (group_event(), group_info(), users()).prop_map(|(event, group, users)| {
            ServerFrame::Group {
                event,
                group,
                users,
            }
        }),
        any::<u64>().prop_map(|reconnect_ms| ServerFrame::Goaway { reconnect_ms }),
        Just(ServerFrame::Resync),
        (
            id(),
            error_code(),
            text(),
            option::of(any::<u64>()),
            option::of(any::<u16>())
        )
            .prop_map(
                |(id, code, message, retry_after_ms, close)| ServerFrame::Error {
                    id,
                    code,
                    message,
                    retry_after_ms,
                    close
                }
            ),
    ]
}

/// A JSON object shaped like a frame: a known or unknown `type`, maybe an
/// `id`, and arbitrary other fields (often with frame field names).
pub fn frame_like_object() -> impl Strategy<Value = Map<String, Value>> {
    let key = prop_oneof![
        proptest::sample::select(vec![
            "to", "conv", "cmid", "body", "kind", "meta", "after", "before", "limit", "seq",
            "users", "token", "device",
        ])
        .prop_map(str::to_owned),
        text(),
    ];
    let ty = proptest::sample::select(vec![
        "auth",
        "send",
        "sync",
        "convs",
        "read",
        "typing",
        "presence_sub",
        "presence_unsub",
        "ping",
        "nope",
    ]);
    (ty, option::of(json_value()), vec((key, json_value()), 0..6)).prop_map(|(ty, id, fields)| {
        let mut map: Map<String, Value> = fields.into_iter().collect();
        map.insert("type".into(), Value::from(ty));
        if let Some(id) = id {
            map.insert("id".into(), id);
        }
        map
    })
}
