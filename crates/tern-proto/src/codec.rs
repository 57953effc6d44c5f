//! The JSON codec: one frame per WebSocket text message.
//!
//! Decoding tells apart bytes that are not JSON at all (the connection is
//! closed with 4000) from JSON that is not a valid frame (answered with
//! `bad_request`, echoing the request id when one can be read).

use bytes::Bytes;
use serde::Deserialize;

use serde_json::value::RawValue;

use crate::frame::{ClientFrame, RequestId, ServerFrame};
use crate::message::Meta;

/// Why bytes did not decode into a frame, in either codec
/// ([`crate::Codec`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON (or, for the protobuf codec, not a protobuf `Frame`) at
    /// all: a protocol violation, closed with 4000.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// Valid JSON (a decodable protobuf `Frame`) but not a valid frame:
    /// unknown type, missing or ill-typed field. Answered with `bad_request`.
    #[error("{message}")]
    Invalid {
        id: Option<RequestId>,
        message: String,
    },
}

/// Decodes a frame sent by a client. A `send`'s `meta` keeps the client's
/// exact JSON text (the server stores and returns it untouched).
pub fn decode_client(bytes: &[u8]) -> Result<ClientFrame, DecodeError> {
    let mut frame: ClientFrame = decode(bytes)?;
    if let Some(id) = frame.id_mut() {
        exact_id(id, bytes);
    }
    if let ClientFrame::Send(send) = &mut frame {
        if send.meta.is_some() {
            if let Some(raw) = raw_meta(bytes) {
                send.meta = Some(raw);
            }
        }
    }
    Ok(frame)
}

/// A numeric id parsed as an f64 may have lost digits (`Num` holds 64-bit
/// integers exactly, other numbers as f64): take it again from the text.
fn exact_id(id: &mut RequestId, bytes: &[u8]) {
    let RequestId::Num(n) = id else { return };
    if n.is_u64() || n.is_i64() {
        return;
    }
    #[derive(Deserialize)]
    struct IdOnly<'a> {
        #[serde(borrow, default)]
        id: Option<&'a RawValue>,
    }
    let Ok(IdOnly { id: Some(raw) }) = serde_json::from_slice::<IdOnly<'_>>(bytes) else {
        return;
    };
    if let Some(exact) = RequestId::from_number_text(raw.get()) {
        *id = exact;
    }
}

/// The `meta` member of a JSON object, as the exact text the client sent.
pub fn raw_meta(bytes: &[u8]) -> Option<Meta> {
    #[derive(Deserialize)]
    struct MetaOnly<'a> {
        #[serde(borrow, default)]
        meta: Option<&'a RawValue>,
    }
    let only: MetaOnly<'_> = serde_json::from_slice(bytes).ok()?;
    Meta::from_json(only.meta?.get()).ok()
}

/// Decodes a frame sent by the server (used by clients). Every message's
/// `meta` is the exact text the server sent, as `decode_client` keeps a
/// `send`'s.
pub fn decode_server(bytes: &[u8]) -> Result<ServerFrame, DecodeError> {
    let mut frame: ServerFrame = decode(bytes)?;
    if let Some(id) = frame.id_mut() {
        exact_id(id, bytes);
    }
    exact_server_metas(&mut frame, bytes);
    Ok(frame)
}

/// The frame enums go through serde's buffering, which hands `meta` over as
/// a parsed value (re-serialized compactly); take each message's `meta`
/// again from the text. Best effort: on any surprise the parsed one stays.
fn exact_server_metas(frame: &mut ServerFrame, bytes: &[u8]) {
    #[derive(Deserialize)]
    struct WithMeta<'a> {
        #[serde(borrow, default)]
        meta: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Item<'a> {
        #[serde(borrow, default)]
        meta: Option<&'a RawValue>,
        #[serde(borrow, default)]
        last: Option<WithMeta<'a>>,
    }
    #[derive(Deserialize)]
    struct Items<'a> {
        #[serde(borrow, default)]
        items: Vec<Item<'a>>,
    }
    let exact = |raw: Option<&RawValue>| raw.and_then(|r| Meta::from_json(r.get()).ok());
    let restore = |meta: &mut Option<Meta>, raw: Option<&RawValue>| {
        if meta.is_some() {
            if let Some(m) = exact(raw) {
                *meta = Some(m);
            }
        }
    };
    match frame {
        ServerFrame::Msg(m) => {
            if let Ok(raw) = serde_json::from_slice::<WithMeta<'_>>(bytes) {
                restore(&mut m.meta, raw.meta);
            }
        }
        ServerFrame::Messages { items, .. } => {
            let Ok(raw) = serde_json::from_slice::<Items<'_>>(bytes) else {
                return;
            };
            if raw.items.len() == items.len() {
                for (m, r) in items.iter_mut().zip(raw.items) {
                    restore(&mut m.meta, r.meta);
                }
            }
        }
        ServerFrame::Convs { items, .. } => {
            let Ok(raw) = serde_json::from_slice::<Items<'_>>(bytes) else {
                return;
            };
            if raw.items.len() == items.len() {
                for (c, r) in items.iter_mut().zip(raw.items) {
                    if let (Some(m), Some(last)) = (c.last.as_mut(), r.last) {
                        restore(&mut m.meta, last.meta);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Encodes a server frame. Serializing these types cannot fail (no maps with
/// non-string keys); an impossible failure yields an `internal` error frame.
pub fn encode_server(frame: &ServerFrame) -> Bytes {
    encode(frame)
}

/// Encodes a client frame.
pub fn encode_client(frame: &ClientFrame) -> Bytes {
    encode(frame)
}

fn encode<T: serde::Serialize>(frame: &T) -> Bytes {
    match serde_json::to_vec(frame) {
        Ok(v) => Bytes::from(v),
        Err(_) => {
            Bytes::from_static(br#"{"type":"error","code":"internal","message":"encoding failed"}"#)
        }
    }
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    match serde_json::from_slice::<T>(bytes) {
        Ok(frame) => Ok(frame),
        Err(e) if e.is_data() => Err(DecodeError::Invalid {
            id: read_id(bytes),
            message: clean_message(&e),
        }),
        // Valid JSON that serde_json cannot take (deep nesting, huge
        // numbers, lone surrogates) is a bad request, not garbage.
        Err(e) if crate::syntax::is_json(bytes) => Err(DecodeError::Invalid {
            id: read_id(bytes),
            message: format!("unsupported JSON: {}", clean_message(&e)),
        }),
        Err(e) => Err(DecodeError::Malformed(e.to_string())),
    }
}

/// Best effort: the `id` of an object that failed to decode as a frame.
fn read_id(bytes: &[u8]) -> Option<RequestId> {
    #[derive(Deserialize)]
    struct IdOnly {
        #[serde(default)]
        id: Option<RequestId>,
    }
    let mut id = serde_json::from_slice::<IdOnly>(bytes).ok()?.id?;
    exact_id(&mut id, bytes);
    Some(id)
}

/// serde's message without the " at line 1 column 42" suffix.
fn clean_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConvId, ErrorCode, MessageKind};

    /// The proto_frame fuzzer's find: a message whose `meta` has whitespace
    /// or escapes (as a client may send it, and the server stores and pushes
    /// it byte for byte) came back from the JSON codec re-serialized.
    #[test]
    fn server_frames_keep_each_meta_exactly() {
        let meta = Meta::from_json("{\"reply_to\":\r6, \"s\":\"\\u00e9\"}").unwrap();
        let message = crate::Message {
            conv: ConvId::Direct {
                a: "alice".into(),
                b: "bob".into(),
            },
            seq: 18,
            mid: "01JD3Z8Q4W5Y6V7T8S9R0P1N18".into(),
            from: "alice".into(),
            body: "hi".into(),
            kind: MessageKind::Text,
            ts: 1,
            cmid: "c-18".into(),
            meta: Some(meta),
        };
        let frames = [
            ServerFrame::Msg(message.clone()),
            ServerFrame::Messages {
                id: None,
                conv: message.conv.clone(),
                items: vec![message.clone(), message],
                more: false,
            },
        ];
        for frame in frames {
            let bytes = encode_server(&frame);
            let again = decode_server(&bytes).unwrap();
            assert_eq!(again, frame);
            assert_eq!(encode_server(&again), bytes);
        }
    }

    #[test]
    fn numeric_ids_come_back_digit_for_digit() {
        for text in [
            "7",
            "-3",
            "1.5",
            "2.0",
            "123456789012345678901234567890",
            "1e2",
            "-0.000000000000000000001",
        ] {
            let raw = format!(r#"{{"type":"ping","id":{text}}}"#);
            let frame = decode_client(raw.as_bytes()).unwrap();
            let reply = encode_server(&ServerFrame::Pong {
                id: frame.id().cloned(),
            });
            let want = format!(r#""id":{text}"#);
            assert!(
                std::str::from_utf8(&reply).unwrap().contains(&want),
                "{text}"
            );
            // A client reading the reply gets the same id (the proto_frame
            // fuzzer's find: decode_server rounded it).
            let back = decode_server(&reply).unwrap();
            assert_eq!(back.id(), frame.id(), "{text}");
        }
        // A frame that fails to decode still gets its id back exactly.
        let Err(DecodeError::Invalid { id, .. }) =
            decode_client(br#"{"type":"sync","id":123456789012345678901234567890}"#)
        else {
            panic!("a sync without conv is invalid")
        };
        assert_eq!(
            id,
            Some(RequestId::Exact("123456789012345678901234567890".into()))
        );
    }

    #[test]
    fn decodes_send_by_to_and_conv() {
        let f = decode_client(br#"{"type":"send","id":2,"to":"bob","cmid":"c-42","body":"hi"}"#)
            .unwrap();
        let ClientFrame::Send(s) = f else { panic!() };
        assert_eq!(s.id, Some(RequestId::from(2)));
        assert_eq!(s.to.as_deref(), Some("bob"));
        assert_eq!(s.kind, MessageKind::Text);
        let f = decode_client(
            br#"{"type":"send","id":"x","conv":"g:x1","cmid":"c","body":"b","meta":{"z":1,"a":[2]}}"#,
        )
        .unwrap();
        let ClientFrame::Send(s) = f else { panic!() };
        assert_eq!(s.conv, Some(ConvId::Group("x1".into())));
        assert_eq!(s.meta.unwrap().as_str(), r#"{"z":1,"a":[2]}"#);
        let exact = r#"{"big":123456789012345678901234567890, "f":1.0,"e":1e2,"s":"\u00e9"}"#;
        let raw = format!(r#"{{"type":"send","to":"bob","cmid":"c","body":"b","meta":{exact}}}"#);
        let ClientFrame::Send(s) = decode_client(raw.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(
            s.meta.unwrap().as_str(),
            exact,
            "meta is kept byte for byte"
        );
    }

    #[test]
    fn unknown_type_and_bad_fields_are_invalid_with_id() {
        for raw in [
            &br#"{"type":"nope","id":7}"#[..],
            br#"{"type":"send","id":7,"body":"x"}"#,
            br#"{"type":"read","id":7,"conv":"d:a:b","seq":"x"}"#,
            br#"{"type":"sync","id":7,"conv":"q:zz"}"#,
            br#"{"id":7}"#,
            br#"{"type":"send","id":7,"to":"b","cmid":"c","body":"x","meta":[1]}"#,
        ] {
            match decode_client(raw) {
                Err(DecodeError::Invalid { id, .. }) => assert_eq!(id, Some(RequestId::from(7))),
                other => panic!("{other:?} for {}", String::from_utf8_lossy(raw)),
            }
        }
    }

    #[test]
    fn non_json_is_malformed() {
        for raw in [&b"hello"[..], b"{", b"", b"{\"type\":\"ping\"} x"] {
            assert!(matches!(decode_client(raw), Err(DecodeError::Malformed(_))));
        }
    }

    #[test]
    fn server_frames_have_wire_shape() {
        let f = ServerFrame::error(Some("a".into()), ErrorCode::Forbidden, "no");
        assert_eq!(
            &encode_server(&f)[..],
            br#"{"type":"error","id":"a","code":"forbidden","message":"no"}"#
        );
        let f = ServerFrame::Presence {
            id: None,
            items: vec![crate::PresenceItem {
                user: "bob".into(),
                online: false,
                last_seen: None,
            }],
        };
        assert_eq!(
            &encode_server(&f)[..],
            br#"{"type":"presence","items":[{"user":"bob","online":false,"last_seen":null}]}"#
        );
    }
}
