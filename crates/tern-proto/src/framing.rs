//! The raw TCP door's framing (PROTOCOL.md §4) without I/O: the `TRN1`
//! preface, then frames of a 4-byte big-endian length and that many bytes.
//! [`FrameReader`] holds the state of the frame being read, so the server's
//! socket loop and a caller holding bytes (tests, fuzzing) cut frames alike.

use bytes::{BufMut, Bytes, BytesMut};

/// The preface a TCP client sends first.
pub const PREFACE: &[u8; 4] = b"TRN1";

/// Bytes of a frame's length prefix.
pub const LEN_BYTES: usize = 4;

/// A frame's announced length is over the limit: the connection is closed
/// with 1009. The reader stays failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame of {len} bytes is over the limit of {max}")]
pub struct TooLarge {
    pub len: u32,
    pub max: u32,
}

/// Where the next bytes of the stream go.
#[derive(Debug)]
pub enum Space<'a> {
    /// The rest of the length prefix: fill the start of it, then call
    /// [`FrameReader::filled_head`].
    Head(&'a mut [u8]),
    /// The frame's body: append at most `want` (> 0) bytes, then call
    /// [`FrameReader::filled_body`].
    Body { buf: &'a mut Vec<u8>, want: usize },
}

/// The frame being read. Between frames it holds no buffer; a body is
/// allocated once its length has arrived and passed the limit.
#[derive(Debug)]
pub struct FrameReader {
    state: State,
    max_frame: u32,
}

#[derive(Debug)]
enum State {
    Head { bytes: [u8; LEN_BYTES], read: usize },
    Body { bytes: Vec<u8>, len: usize },
    Failed(TooLarge),
}

const IDLE: State = State::Head {
    bytes: [0; LEN_BYTES],
    read: 0,
};

impl FrameReader {
    /// A reader refusing frames longer than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Self {
            state: IDLE,
            max_frame: u32::try_from(max_frame).unwrap_or(u32::MAX),
        }
    }

    /// No byte of a frame has been read: a clean place for the stream to end.
    pub fn is_between_frames(&self) -> bool {
        matches!(self.state, State::Head { read: 0, .. })
    }

    /// Where the next bytes go, or the error the reader failed with.
    pub fn space(&mut self) -> Result<Space<'_>, TooLarge> {
        match &mut self.state {
            State::Head { bytes, read } => Ok(Space::Head(&mut bytes[*read..])),
            State::Body { bytes, len } => Ok(Space::Body {
                want: *len - bytes.len(),
                buf: bytes,
            }),
            State::Failed(e) => Err(*e),
        }
    }

    /// Records `n` bytes written into [`Space::Head`]. Once the prefix is
    /// whole its length is checked; a zero length is an (empty) frame at once.
    pub fn filled_head(&mut self, n: usize) -> Result<Option<Bytes>, TooLarge> {
        let State::Head { bytes, read } = &mut self.state else {
            return self.space().map(|_| None);
        };
        *read = (*read + n).min(LEN_BYTES);
        if *read < LEN_BYTES {
            return Ok(None);
        }
        let len = u32::from_be_bytes(*bytes);
        if len > self.max_frame {
            let e = TooLarge {
                len,
                max: self.max_frame,
            };
            self.state = State::Failed(e);
            return Err(e);
        }
        let len = len as usize;
        self.state = State::Body {
            bytes: Vec::with_capacity(len),
            len,
        };
        Ok(self.filled_body())
    }

    /// After bytes were appended to [`Space::Body`]: the frame once whole.
    pub fn filled_body(&mut self) -> Option<Bytes> {
        match &mut self.state {
            State::Body { bytes, len } if bytes.len() >= *len => {
                let frame = Bytes::from(std::mem::take(bytes));
                self.state = IDLE;
                Some(frame)
            }
            _ => None,
        }
    }

    /// Takes from `input` at most the rest of the current frame: how many
    /// bytes were used, and the frame if they completed one.
    pub fn push(&mut self, input: &[u8]) -> Result<(usize, Option<Bytes>), TooLarge> {
        match self.space()? {
            Space::Head(head) => {
                let n = head.len().min(input.len());
                head[..n].copy_from_slice(&input[..n]);
                Ok((n, self.filled_head(n)?))
            }
            Space::Body { buf, want } => {
                let n = want.min(input.len());
                buf.extend_from_slice(&input[..n]);
                Ok((n, self.filled_body()))
            }
        }
    }
}

/// Appends one frame, its length prefix first. A frame over `u32::MAX`
/// bytes cannot be framed (none is ever that long: frames are bounded by
/// `limits.max_frame_bytes` and the server's own encodings are small).
pub fn put_frame(out: &mut BytesMut, frame: &[u8]) {
    out.put_u32(u32::try_from(frame.len()).unwrap_or(u32::MAX));
    out.put_slice(frame);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every frame of `input` fed in pieces of `step` bytes.
    fn read_all(max: usize, input: &[u8], step: usize) -> (Vec<Bytes>, Option<TooLarge>) {
        let mut reader = FrameReader::new(max);
        let mut frames = Vec::new();
        let mut rest = input;
        while !rest.is_empty() {
            let piece = &rest[..step.min(rest.len())];
            match reader.push(piece) {
                Ok((n, frame)) => {
                    rest = &rest[n..];
                    frames.extend(frame);
                }
                Err(e) => return (frames, Some(e)),
            }
        }
        (frames, None)
    }

    #[test]
    fn frames_are_cut_alike_whatever_the_pieces() {
        let mut wire = BytesMut::new();
        for frame in [&b"abc"[..], b"", b"\x08\x07\xa2\x01\x00"] {
            put_frame(&mut wire, frame);
        }
        for step in [1, 2, 3, 5, 64] {
            let (frames, err) = read_all(16, &wire, step);
            assert_eq!(err, None);
            assert_eq!(frames, [&b"abc"[..], b"", b"\x08\x07\xa2\x01\x00"]);
        }
    }

    #[test]
    fn a_length_over_the_limit_fails_and_stays_failed() {
        let (frames, err) = read_all(3, b"\0\0\0\x02hi\0\0\0\x04abcd", 1);
        assert_eq!(frames, [&b"hi"[..]]);
        assert_eq!(err, Some(TooLarge { len: 4, max: 3 }));
        let mut reader = FrameReader::new(0);
        assert!(reader.push(b"\0\0\0\x01").is_err());
        assert!(reader.push(b"x").is_err());
        assert!(reader.filled_head(1).is_err());
    }

    #[test]
    fn between_frames_only_before_a_prefix_byte() {
        let mut reader = FrameReader::new(8);
        assert!(reader.is_between_frames());
        reader.push(b"\0\0").unwrap();
        assert!(!reader.is_between_frames());
        reader.push(b"\0\x01").unwrap();
        assert!(!reader.is_between_frames());
        assert_eq!(reader.push(b"xy").unwrap(), (1, Some(Bytes::from("x"))));
        assert!(reader.is_between_frames());
    }
}
