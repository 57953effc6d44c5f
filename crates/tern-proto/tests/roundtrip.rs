//! Property tests of the JSON codec: every client and server frame survives
//! encode → decode unchanged, and no input makes the decoder panic or call
//! valid JSON malformed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod strategies;

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::Value;
use strategies::{client_frame, frame_like_object, json_value, server_frame};
use tern_proto::message::Meta;
use tern_proto::{
    decode_client, decode_server, encode_client, encode_server, DecodeError, RequestId,
};

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
