//! The protobuf codec: one [`pb::Frame`] (schema `proto/tern.proto`) per
//! WebSocket binary message or length-prefixed TCP frame.
//!
//! It carries the same frame types as the JSON codec ([`crate::codec`]) and
//! sorts failures the same way: bytes that prost cannot decode as a `Frame`
//! are [`DecodeError::Malformed`] (the connection is closed with 4000); a
//! decodable `Frame` with no frame set (or a case this version does not
//! know), a missing or invalid field, or a frame of the wrong direction is
//! [`DecodeError::Invalid`] (answered `bad_request`), with the request id.

mod decode;
mod encode;

use bytes::Bytes;
use prost::Message as _;

use crate::codec::DecodeError;
use crate::frame::{ClientFrame, RequestId, ServerFrame};
use crate::pb;

/// Decodes a frame sent by a client.
pub fn decode_client(bytes: &[u8]) -> Result<ClientFrame, DecodeError> {
    ClientFrame::try_from(decode_frame(bytes)?)
}

/// Decodes a frame sent by the server (used by clients).
pub fn decode_server(bytes: &[u8]) -> Result<ServerFrame, DecodeError> {
    ServerFrame::try_from(decode_frame(bytes)?)
}

/// Encodes a server frame.
pub fn encode_server(frame: &ServerFrame) -> Bytes {
    Bytes::from(pb::Frame::from(frame).encode_to_vec())
}

/// Encodes a client frame.
pub fn encode_client(frame: &ClientFrame) -> Bytes {
    Bytes::from(pb::Frame::from(frame).encode_to_vec())
}

fn decode_frame(bytes: &[u8]) -> Result<pb::Frame, DecodeError> {
    pb::Frame::decode(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))
}

/// Splits a decoded frame into its request id and frame case, or the
/// `Invalid` error of an unreadable id or a missing case.
fn parts(frame: pb::Frame) -> Result<(Option<RequestId>, pb::frame::Frame), DecodeError> {
    let id = decode::id_from_pb(frame.id)
        .map_err(|message| DecodeError::Invalid { id: None, message })?;
    match frame.frame {
        Some(case) => Ok((id, case)),
        None => Err(DecodeError::Invalid {
            id,
            message: "no frame set, or a frame type this server does not know".into(),
        }),
    }
}

impl TryFrom<pb::Frame> for ClientFrame {
    type Error = DecodeError;

    /// Validates a decoded protobuf frame as a client frame.
    fn try_from(frame: pb::Frame) -> Result<Self, DecodeError> {
        let (mut id, case) = parts(frame)?;
        decode::client(&mut id, case).map_err(|message| DecodeError::Invalid { id, message })
    }
}

impl TryFrom<pb::Frame> for ServerFrame {
    type Error = DecodeError;

    /// Validates a decoded protobuf frame as a server frame.
    fn try_from(frame: pb::Frame) -> Result<Self, DecodeError> {
        let (mut id, case) = parts(frame)?;
        decode::server(&mut id, case).map_err(|message| DecodeError::Invalid { id, message })
    }
}
