//! The raw TCP door's input (PROTOCOL.md §4): the `TRN1` preface, then
//! u32 big-endian length-prefixed protobuf frames cut by the production
//! `tern_proto::framing::FrameReader` (the one `gateway/tcp.rs` reads with).
//!
//! Input: 2 bytes of `limits.max_frame_bytes` (big-endian), 1 byte seeding
//! how the stream is split into reads, then the bytes the client sends.
//! Checks: no panic; whatever the split, the frames and the over-the-limit
//! error are those of a one-shot reading of the stream; no frame is over
//! the limit; the frames, framed again as the door writes them, read back
//! the same; each frame decodes as the session loop would (4000 ends it).
#![no_main]

mod codec_checks;

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tern_proto::framing::{put_frame, FrameReader, TooLarge, PREFACE};
use tern_proto::Codec;

fuzz_target!(|data: &[u8]| {
    let [m0, m1, seed, stream @ ..] = data else {
        return;
    };
    let max = usize::from(u16::from_be_bytes([*m0, *m1]));
    // A wrong preface: the socket is closed at once, nothing is decoded.
    let Some(rest) = stream.strip_prefix(PREFACE.as_slice()) else {
        return;
    };
    let (frames, error, partial) = read_in_pieces(max, rest, *seed);
    let (want_frames, want_error, want_partial) = read_at_once(max, rest);
    assert_eq!(frames, want_frames, "frames depend on how reads were split");
    assert_eq!(error, want_error);
    assert_eq!(partial, want_partial, "wrong 'between frames' state");
    assert!(frames.iter().all(|f| f.len() <= max));

    let mut wire = BytesMut::new();
    for f in &frames {
        put_frame(&mut wire, f);
    }
    let (again, error, partial) = read_in_pieces(max, &wire, seed.wrapping_add(1));
    assert_eq!(again, frames, "the door's own framing does not read back");
    assert_eq!((error, partial), (None, false));

    for f in &frames {
        let decoded = Codec::Proto.decode_client(f);
        if codec_checks::close_code(&decoded).is_some() {
            break;
        }
        codec_checks::check(Codec::Proto, f);
    }
});

/// Feeds `stream` to a `FrameReader` in reads of 1..=16 bytes chosen from
/// `seed`: the frames, the error, and whether the stream ended mid-frame.
fn read_in_pieces(max: usize, stream: &[u8], seed: u8) -> (Vec<Bytes>, Option<TooLarge>, bool) {
    let mut reader = FrameReader::new(max);
    let mut frames = Vec::new();
    let mut rest = stream;
    let mut state = u32::from(seed) | 0x100;
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let piece = 1 + (state >> 16) as usize % 16;
        match reader.push(&rest[..piece.min(rest.len())]) {
            Ok((used, frame)) => {
                assert!(used > 0 && used <= piece, "push used {used} of {piece}");
                rest = &rest[used..];
                frames.extend(frame);
            }
            Err(e) => {
                // Failed stays failed.
                assert_eq!(reader.push(b"\0\0\0\0"), Err(e));
                assert!(reader.space().is_err());
                return (frames, Some(e), true);
            }
        }
    }
    (frames, None, !reader.is_between_frames())
}

/// The specification, read in one go: length, check, body; repeat.
fn read_at_once(max: usize, mut stream: &[u8]) -> (Vec<Bytes>, Option<TooLarge>, bool) {
    let mut frames = Vec::new();
    while !stream.is_empty() {
        let Some((head, body)) = stream.split_first_chunk::<4>() else {
            return (frames, None, true);
        };
        let len = u32::from_be_bytes(*head);
        if len as usize > max {
            let max = max as u32;
            return (frames, Some(TooLarge { len, max }), true);
        }
        let Some((frame, rest)) = body.split_at_checked(len as usize) else {
            return (frames, None, true);
        };
        frames.push(Bytes::copy_from_slice(frame));
        stream = rest;
    }
    (frames, None, false)
}
