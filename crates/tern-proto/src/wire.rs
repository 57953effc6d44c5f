//! The codec seam: [`Codec`] names the codec of a connection (JSON or
//! protobuf, PROTOCOL.md §4) and encodes and decodes frames with it, so the
//! transports and the session loop never look at the bytes themselves.

use bytes::Bytes;

use crate::codec::{self, DecodeError};
use crate::frame::{ClientFrame, ServerFrame};
use crate::protobuf;

/// The codec of a connection. Both carry the same frame types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// One JSON object per WebSocket text message ([`crate::codec`]).
    Json,
    /// One protobuf `Frame` per WebSocket binary message or TCP frame
    /// ([`crate::protobuf`]).
    Proto,
}

impl Codec {
    /// Both codecs, JSON first.
    pub const ALL: [Codec; 2] = [Codec::Json, Codec::Proto];

    /// Decodes a frame sent by a client.
    pub fn decode_client(self, bytes: &[u8]) -> Result<ClientFrame, DecodeError> {
        match self {
            Self::Json => codec::decode_client(bytes),
            Self::Proto => protobuf::decode_client(bytes),
        }
    }

    /// Encodes a frame the server sends.
    pub fn encode_server(self, frame: &ServerFrame) -> Bytes {
        match self {
            Self::Json => codec::encode_server(frame),
            Self::Proto => protobuf::encode_server(frame),
        }
    }

    /// Decodes a frame sent by the server (used by clients).
    pub fn decode_server(self, bytes: &[u8]) -> Result<ServerFrame, DecodeError> {
        match self {
            Self::Json => codec::decode_server(bytes),
            Self::Proto => protobuf::decode_server(bytes),
        }
    }

    /// Encodes a frame a client sends (used by clients).
    pub fn encode_client(self, frame: &ClientFrame) -> Bytes {
        match self {
            Self::Json => codec::encode_client(frame),
            Self::Proto => protobuf::encode_client(frame),
        }
    }

    /// `"json"` or `"proto"`: the value of the `codec` query parameter.
    pub fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Proto => "proto",
        }
    }

    /// The codec of a `codec` query value (`json` or `proto`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// `"tern.json"` or `"tern.proto"`: the WebSocket subprotocol.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Self::Json => "tern.json",
            Self::Proto => "tern.proto",
        }
    }

    /// The codec of a WebSocket subprotocol (`tern.json` or `tern.proto`).
    pub fn from_subprotocol(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.subprotocol() == name)
    }

    /// Whether frames travel as WebSocket binary messages (protobuf) rather
    /// than text messages (JSON).
    pub fn is_binary(self) -> bool {
        self == Self::Proto
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Codec::ALL {
            assert_eq!(Codec::from_name(c.name()), Some(c));
            assert_eq!(Codec::from_subprotocol(c.subprotocol()), Some(c));
            assert_eq!(c.to_string(), c.name());
        }
        assert_eq!(Codec::from_name("xml"), None);
        assert_eq!(Codec::from_subprotocol("json"), None);
        assert!(Codec::Proto.is_binary() && !Codec::Json.is_binary());
    }

    #[test]
    fn each_codec_answers_in_its_own_form() {
        let pong = ServerFrame::Pong { id: Some(7.into()) };
        assert_eq!(
            &Codec::Json.encode_server(&pong)[..],
            br#"{"type":"pong","id":7}"#
        );
        // Field 1 (num_id) = 7, field 20 (pong) = empty message.
        assert_eq!(
            &Codec::Proto.encode_server(&pong)[..],
            b"\x08\x07\xa2\x01\x00"
        );
        for c in Codec::ALL {
            assert_eq!(c.decode_server(&c.encode_server(&pong)).unwrap(), pong);
            let ping = ClientFrame::Ping {
                id: Some("a".into()),
            };
            assert_eq!(c.decode_client(&c.encode_client(&ping)).unwrap(), ping);
        }
    }
}
