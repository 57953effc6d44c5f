//! [`SharedFrame`]: one server frame pushed to many sessions, as bytes per
//! codec. The JSON bytes are made first (they are also what travels to
//! other nodes); the protobuf bytes are made at most once, when the first
//! protobuf session needs them, and shared by every other one. A fan-out
//! to a mix of JSON and protobuf sessions encodes once per codec in use,
//! never once per recipient.

use std::sync::OnceLock;

use bytes::Bytes;
use tern_proto::{encode_server, Codec, ServerFrame};

/// A push, encoded lazily per codec.
#[derive(Debug)]
pub struct SharedFrame {
    json: Bytes,
    /// `None` inside: the JSON bytes could not be read back (a forwarded
    /// frame from a node that speaks a newer protocol).
    proto: OnceLock<Option<Bytes>>,
}

impl SharedFrame {
    pub fn new(frame: &ServerFrame) -> Self {
        Self::from_json(encode_server(frame))
    }

    /// A frame already encoded as JSON (forwarded by another node).
    pub fn from_json(json: Bytes) -> Self {
        Self {
            json,
            proto: OnceLock::new(),
        }
    }

    /// The JSON bytes (what other nodes receive).
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The bytes for a session speaking `codec`.
    pub fn bytes(&self, codec: Codec) -> Option<Bytes> {
        match codec {
            Codec::Json => Some(self.json.clone()),
            Codec::Proto => self
                .proto
                .get_or_init(|| match tern_proto::decode_server(&self.json) {
                    Ok(frame) => Some(Codec::Proto.encode_server(&frame)),
                    Err(e) => {
                        tracing::warn!(error = %e, "push not re-encodable as protobuf");
                        None
                    }
                })
                .clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn protobuf_bytes_are_made_once_and_shared() {
        let frame = ServerFrame::Typing {
            conv: tern_proto::ConvId::parse("d:alice:bob").unwrap(),
            user: "alice".into(),
        };
        let shared = SharedFrame::new(&frame);
        let a = shared.bytes(Codec::Proto).unwrap();
        let b = shared.bytes(Codec::Proto).unwrap();
        assert_eq!(a.as_ptr(), b.as_ptr(), "one encoding, shared");
        assert_eq!(Codec::Proto.decode_server(&a).unwrap(), frame);
        assert_eq!(shared.bytes(Codec::Json).unwrap(), encode_server(&frame));
    }

    #[test]
    fn unreadable_json_gives_no_protobuf_bytes() {
        let shared = SharedFrame::from_json(Bytes::from_static(b"{\"type\":\"future\"}"));
        assert!(shared.bytes(Codec::Proto).is_none());
        assert!(shared.bytes(Codec::Json).is_some());
    }
}
