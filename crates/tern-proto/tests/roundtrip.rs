//! Property tests of the JSON codec: every client and server frame survives
//! encode → decode unchanged, and no input makes the decoder panic or call
//! valid JSON malformed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use serde_json::{Map, Number, Value};
use tern_proto::frame::{GroupEvent, GroupInfo, SendFrame, SyncFrame};
use tern_proto::message::Meta;
use tern_proto::{
    decode_client, decode_server, encode_client, encode_server, ClientFrame, ConvId, ConvSummary,
    DecodeError, ErrorCode, Message, MessageKind, PresenceItem, RequestId, ServerFrame,
};

// ---- leaves ---------------------------------------------------------------

fn username() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9_.-]{2,31}"
}

fn conv_id() -> impl Strategy<Value = ConvId> {
    prop_oneof![
        (username(), username()).prop_map(|(a, b)| ConvId::direct(&a, &b)),
        "[A-Za-z0-9_-]{1,64}".prop_map(ConvId::Group),
    ]
}

/// Arbitrary unicode, and strings dense in what JSON must escape.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\"\\\\/\\x00-\\x1f\\x7f a-z\u{e9}\u{2028}\u{2029}\u{feff}\u{10ffff}\u{1F600}]{0,24}",
    ]
}

fn request_id() -> impl Strategy<Value = RequestId> {
    prop_oneof![
        any::<u64>().prop_map(|n| RequestId::Num(Number::from(n))),
        any::<i64>().prop_map(|n| RequestId::Num(Number::from(n))),
        text().prop_map(RequestId::Str),
    ]
}

fn id() -> impl Strategy<Value = Option<RequestId>> {
    option::of(request_id())
}

fn json_leaf() -> impl Strategy<Value = Value> {
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
fn short_float() -> impl Strategy<Value = f64> {
    (any::<i32>(), 0..6i32).prop_map(|(m, e)| f64::from(m) / 10f64.powi(e))
}

fn object_of(inner: impl Strategy<Value = Value>) -> impl Strategy<Value = Map<String, Value>> {
    vec((text(), inner), 0..6).prop_map(|kvs| kvs.into_iter().collect())
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            object_of(inner).prop_map(Value::Object),
        ]
    })
}

fn meta() -> impl Strategy<Value = Meta> {
    object_of(json_value()).prop_map(|m| Meta::from_json(&Value::Object(m).to_string()).unwrap())
}

fn kind() -> impl Strategy<Value = MessageKind> {
    prop_oneof![
        Just(MessageKind::Text),
        Just(MessageKind::System),
        Just(MessageKind::E2e)
    ]
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
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

fn users() -> impl Strategy<Value = Vec<String>> {
    vec(username(), 0..4)
}

// ---- composites -----------------------------------------------------------

fn message() -> impl Strategy<Value = Message> {
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

fn send_frame() -> impl Strategy<Value = SendFrame> {
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

fn sync_frame() -> impl Strategy<Value = SyncFrame> {
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

fn client_frame() -> impl Strategy<Value = ClientFrame> {
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

fn conv_summary() -> impl Strategy<Value = ConvSummary> {
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

fn presence_item() -> impl Strategy<Value = PresenceItem> {
    (username(), any::<bool>(), option::of(any::<i64>())).prop_map(|(user, online, last_seen)| {
        PresenceItem {
            user,
            online,
            last_seen,
        }
    })
}

fn group_info() -> impl Strategy<Value = GroupInfo> {
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

fn group_event() -> impl Strategy<Value = GroupEvent> {
    proptest::sample::select(vec![
        GroupEvent::MemberAdded,
        GroupEvent::MemberRemoved,
        GroupEvent::Updated,
        GroupEvent::Deleted,
    ])
}

fn server_frame() -> impl Strategy<Value = ServerFrame> {
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
fn frame_like_object() -> impl Strategy<Value = Map<String, Value>> {
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

// ---- properties -----------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn client_frames_round_trip(frame in client_frame()) {
        let bytes = encode_client(&frame);
        prop_assert_eq!(decode_client(&bytes).unwrap(), frame);
    }

    #[test]
    fn server_frames_round_trip(frame in server_frame()) {
        let bytes = encode_server(&frame);
        prop_assert_eq!(decode_server(&bytes).unwrap(), frame);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        let _ = decode_client(&bytes);
        let _ = decode_server(&bytes);
    }

    #[test]
    fn valid_json_is_never_malformed(value in json_value()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        let decoded = decode_client(&bytes);
        prop_assert!(!matches!(decoded, Err(DecodeError::Malformed(_))), "{:?}", decoded);
    }

    #[test]
    fn frame_like_objects_are_ok_or_invalid_with_their_id(map in frame_like_object()) {
        let bytes = serde_json::to_vec(&Value::Object(map.clone())).unwrap();
        match decode_client(&bytes) {
            Ok(_) => {}
            Err(DecodeError::Invalid { id, .. }) => {
                // A number or string id is echoed so the error can answer it.
                let want = match map.get("id") {
                    Some(Value::Number(n)) => Some(RequestId::Num(n.clone())),
                    Some(Value::String(s)) => Some(RequestId::Str(s.clone())),
                    _ => None,
                };
                prop_assert_eq!(id, want);
            }
            Err(e @ DecodeError::Malformed(_)) => prop_assert!(false, "malformed: {}", e),
        }
    }

    #[test]
    fn mangled_frames_never_panic(frame in client_frame(), cut in any::<prop::sample::Index>()) {
        let bytes = encode_client(&frame);
        let _ = decode_client(&bytes[..cut.index(bytes.len() + 1)]);
    }
}

// ---- edge cases found while writing the properties ------------------------

/// Valid JSON objects that serde_json refuses for implementation limits.
fn limit_cases() -> Vec<(&'static str, String)> {
    let deep = format!(
        r#"{{"type":"send","id":7,"to":"bob","cmid":"c","body":"b","meta":{{"a":{}1{}}}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    vec![
        ("nesting over 128", deep),
        (
            "number beyond f64",
            r#"{"type":"ping","id":7,"x":1e400}"#.to_owned(),
        ),
        (
            "lone surrogate escape",
            r#"{"type":"ping","id":7,"x":"\ud800"}"#.to_owned(),
        ),
    ]
}

#[test]
fn valid_json_at_implementation_limits_is_invalid_not_malformed() {
    for (what, raw) in limit_cases() {
        let got = decode_client(raw.as_bytes());
        assert!(
            matches!(got, Err(DecodeError::Invalid { .. })),
            "{what}: {got:?}"
        );
    }
}

proptest! {
    /// `meta` keeps its exact text, and where it does go through a `Value`
    /// (clients decoding pushes) floats parse exactly (`float_roundtrip`):
    /// e.g. `{"x":3.6689381432470283e+224}` once came back 1 ULP off.
    #[test]
    fn meta_floats_round_trip_exactly(
        f in any::<f64>().prop_filter("finite", |f| f.is_finite())
    ) {
        let text = serde_json::json!({ "x": f }).to_string();
        let meta = Meta::from_json(&text).unwrap();
        prop_assert_eq!(meta.as_str(), text.as_str());
        let back: Meta = serde_json::from_str(meta.as_str()).unwrap();
        prop_assert_eq!(back, meta);
    }
}
