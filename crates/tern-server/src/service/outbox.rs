//! [`Outbox`]: a session's bounded queue of already-encoded frames.
//!
//! Producers (fan-out, acks, presence) push shared `Bytes` without blocking;
//! the connection task drains everything queued in one go and writes it with
//! a single flush. A push that would exceed the bound closes the session as a
//! slow consumer (4010) instead of growing memory: the client catches up by
//! `sync` after reconnecting. An idle outbox allocates nothing.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tern_proto::CloseCode;
use tokio::sync::Notify;

/// Bounded queue of encoded frames for one session.
pub struct Outbox {
    state: Mutex<State>,
    wake: Notify,
    max_frames: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Bytes>,
    bytes: usize,
    close: Option<CloseCode>,
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// The bound was hit: the session is now closing with 4010.
    Overflow,
    /// The session was closed as a slow consumer; the frame was dropped.
    Closed,
}

/// What the connection task should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Drained {
    /// Frames to write (possibly empty only after a spurious wake).
    Frames,
    /// Write what was drained, then close with this code.
    Close(CloseCode),
}

impl Outbox {
    pub fn new(max_frames: usize, max_bytes: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            max_frames,
            max_bytes,
        }
    }

    /// Queues a frame. Never blocks. A session closing for another reason
    /// than overflow still takes frames (bounded as ever): the acks of its
    /// sends in flight are written before the close.
    pub fn push(&self, frame: Bytes) -> Pushed {
        let mut st = self.lock();
        if st.close == Some(CloseCode::SlowConsumer) {
            return Pushed::Closed;
        }
        if st.queue.len() >= self.max_frames || st.bytes + frame.len() > self.max_bytes {
            st.close = Some(CloseCode::SlowConsumer);
            st.queue.clear();
            st.bytes = 0;
            drop(st);
            self.wake.notify_one();
            return Pushed::Overflow;
        }
        st.bytes += frame.len();
        st.queue.push_back(frame);
        drop(st);
        self.wake.notify_one();
        Pushed::Queued
    }

    /// Asks the connection task to close with `code` after writing what is
    /// queued. The first code set wins.
    pub fn close(&self, code: CloseCode) {
        let mut st = self.lock();
        if st.close.is_none() {
            st.close = Some(code);
        }
        drop(st);
        self.wake.notify_one();
    }

    /// Moves every queued frame into `out` without waiting.
    pub fn take(&self, out: &mut Vec<Bytes>) {
        let mut st = self.lock();
        out.extend(st.queue.drain(..));
        st.bytes = 0;
    }

    /// Resolves at the next push or [`Outbox::nudge`] (or at once if one
    /// happened since the last wait); `enable` it before checking state.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.wake.notified()
    }

    /// Wakes the connection task without a frame (e.g. the last send in
    /// flight of a closing session is done).
    pub fn nudge(&self) {
        self.wake.notify_one();
    }

    /// Whether a close was requested.
    pub fn is_closing(&self) -> bool {
        self.lock().close.is_some()
    }

    /// Waits until there is something to do, then moves every queued frame
    /// into `out`. Single consumer: only the connection task calls this.
    pub async fn drain_into(&self, out: &mut Vec<Bytes>) -> Drained {
        loop {
            {
                let mut st = self.lock();
                if !st.queue.is_empty() || st.close.is_some() {
                    out.extend(st.queue.drain(..));
                    st.bytes = 0;
                    if st.queue.capacity() > 64 {
                        st.queue.shrink_to(16);
                    }
                    return match st.close {
                        Some(code) => Drained::Close(code),
                        None => Drained::Frames,
                    };
                }
            }
            self.wake.notified().await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked mid-push; the
        // queue itself is still consistent, so keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drains_in_order_and_overflows_to_slow_consumer() {
        let ob = Outbox::new(3, 1000);
        for i in 0..3u8 {
            assert_eq!(ob.push(Bytes::from(vec![i])), Pushed::Queued);
        }
        let mut out = Vec::new();
        assert_eq!(ob.drain_into(&mut out).await, Drained::Frames);
        assert_eq!(
            out,
            vec![
                Bytes::from(vec![0]),
                Bytes::from(vec![1]),
                Bytes::from(vec![2])
            ]
        );
        for i in 0..3u8 {
            ob.push(Bytes::from(vec![i]));
        }
        assert_eq!(ob.push(Bytes::from_static(b"x")), Pushed::Overflow);
        assert_eq!(ob.push(Bytes::from_static(b"y")), Pushed::Closed);
        out.clear();
        assert_eq!(
            ob.drain_into(&mut out).await,
            Drained::Close(CloseCode::SlowConsumer)
        );
        assert!(
            out.is_empty(),
            "an overflowed queue is dropped, not written"
        );
    }

    #[tokio::test]
    async fn byte_bound_and_close_code() {
        let ob = Outbox::new(100, 10);
        assert_eq!(ob.push(Bytes::from(vec![0; 8])), Pushed::Queued);
        assert_eq!(ob.push(Bytes::from(vec![0; 3])), Pushed::Overflow);
        let ob = Outbox::new(100, 100);
        ob.push(Bytes::from_static(b"a"));
        ob.close(CloseCode::Kicked);
        ob.close(CloseCode::GoingAway);
        let mut out = Vec::new();
        assert_eq!(
            ob.drain_into(&mut out).await,
            Drained::Close(CloseCode::Kicked)
        );
        assert_eq!(
            out.len(),
            1,
            "queued frames are still written before a kick"
        );
        // An ack arriving after the kick is still queued for writing.
        assert_eq!(ob.push(Bytes::from_static(b"ack")), Pushed::Queued);
        out.clear();
        ob.take(&mut out);
        assert_eq!(out, vec![Bytes::from_static(b"ack")]);
    }
}
