//! Checks shared by the codec targets: what a codec decodes, it re-encodes
//! to bytes that decode to the same frame, stably, in either codec (both
//! carry the same frame types, PROTOCOL.md §4).

use tern_proto::{ClientFrame, Codec, DecodeError, ServerFrame};

/// Decodes `data` as a client frame and as a server frame with `codec`;
/// every frame that decodes must survive re-encoding in both codecs.
pub fn check(codec: Codec, data: &[u8]) {
    if let Ok(frame) = codec.decode_client(data) {
        for c in Codec::ALL {
            client_round_trip(c, &frame);
        }
    }
    if let Ok(frame) = codec.decode_server(data) {
        for c in Codec::ALL {
            server_round_trip(c, &frame);
        }
    }
}

/// Classifies the outcome the way the session loop does: `Malformed`
/// closes with 4000, `Invalid` is answered `bad_request`, `Ok` is served.
#[allow(dead_code)] // used by tcp_frames only
pub fn close_code(result: &Result<ClientFrame, DecodeError>) -> Option<u16> {
    matches!(result, Err(DecodeError::Malformed(_))).then_some(4000)
}

fn client_round_trip(codec: Codec, frame: &ClientFrame) {
    let bytes = codec.encode_client(frame);
    let again = match codec.decode_client(&bytes) {
        Ok(f) => f,
        Err(e) => panic!("{codec}: {frame:?} encodes to {bytes:?}, which fails: {e:?}"),
    };
    assert_eq!(
        &again, frame,
        "{codec}: client frame changed by a round trip"
    );
    assert_eq!(
        codec.encode_client(&again),
        bytes,
        "{codec}: unstable encoding"
    );
}

fn server_round_trip(codec: Codec, frame: &ServerFrame) {
    let bytes = codec.encode_server(frame);
    let again = match codec.decode_server(&bytes) {
        Ok(f) => f,
        Err(e) => panic!("{codec}: {frame:?} encodes to {bytes:?}, which fails: {e:?}"),
    };
    assert_eq!(
        &again, frame,
        "{codec}: server frame changed by a round trip"
    );
    assert_eq!(
        codec.encode_server(&again),
        bytes,
        "{codec}: unstable encoding"
    );
}
