//! [`Outbox`]: a session's bounded queue of already-encoded frames.
//!
//! Producers (fan-out, acks, presence) push shared `Bytes` without blocking;
//! the connection task drains everything queued in one go and writes it with
//! a single flush. A push that would exceed the bound closes the session as a
//! slow consumer (4010) instead of growing memory: the client catches up by
//! `sync` after reconnecting. An idle outbox allocates nothing, and the
//! connection task waits on it through an [`AtomicWaker`] (one consumer),
//! so its waiting future is a few bytes, not a waiter node per connection.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Mutex;
use std::task::Poll;

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use tern_proto::CloseCode;

/// Bounded queue of encoded frames for one session.
pub struct Outbox {
    state: Mutex<State>,
    /// The connection task, woken by every push, close and nudge.
    waker: AtomicWaker,
    max_frames: u32,
    max_bytes: u32,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Bytes>,
    bytes: usize,
    close: Option<CloseCode>,
    /// Something happened since the consumer last looked (for
    /// [`Outbox::changed`]).
    signaled: bool,
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
    /// Bounds beyond `u32::MAX` are treated as `u32::MAX`.
    pub fn new(max_frames: usize, max_bytes: usize) -> Self {
        let cap = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Self {
            state: Mutex::new(State::default()),
            waker: AtomicWaker::new(),
            max_frames: cap(max_frames),
            max_bytes: cap(max_bytes),
        }
    }

    /// Marks a change and wakes the connection task.
    fn signal(&self, mut st: std::sync::MutexGuard<'_, State>) {
        st.signaled = true;
        drop(st);
        self.waker.wake();
    }

    /// Queues a frame. Never blocks. A session closing for another reason
    /// than overflow still takes frames (bounded as ever): the acks of its
    /// sends in flight are written before the close.
    pub fn push(&self, frame: Bytes) -> Pushed {
        let mut st = self.lock();
        if st.close == Some(CloseCode::SlowConsumer) {
            return Pushed::Closed;
        }
        let max_frames = self.max_frames as usize;
        let max_bytes = self.max_bytes as usize;
        if st.queue.len() >= max_frames || st.bytes + frame.len() > max_bytes {
            st.close = Some(CloseCode::SlowConsumer);
            st.queue = VecDeque::new();
            st.bytes = 0;
            self.signal(st);
            return Pushed::Overflow;
        }
        st.bytes += frame.len();
        st.queue.push_back(frame);
        self.signal(st);
        Pushed::Queued
    }

    /// Asks the connection task to close with `code` after writing what is
    /// queued. The first code set wins.
    pub fn close(&self, code: CloseCode) {
        let mut st = self.lock();
        if st.close.is_none() {
            st.close = Some(code);
        }
        self.signal(st);
    }

    /// Moves every queued frame into `out` without waiting.
    pub fn take(&self, out: &mut Vec<Bytes>) {
        let mut st = self.lock();
        out.extend(st.queue.drain(..));
        st.bytes = 0;
    }

    /// Resolves at the next push, close or [`Outbox::nudge`], or at once if
    /// one happened since the last [`Outbox::drain`] or `changed`. Single
    /// consumer, like `drain`.
    pub async fn changed(&self) {
        poll_fn(|cx| {
            self.waker.register(cx.waker());
            let mut st = self.lock();
            if std::mem::take(&mut st.signaled) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Wakes the connection task without a frame (e.g. the last send in
    /// flight of a closing session is done).
    pub fn nudge(&self) {
        let st = self.lock();
        self.signal(st);
    }

    /// Whether a close was requested.
    pub fn is_closing(&self) -> bool {
        self.lock().close.is_some()
    }

    /// Waits until there is something to do, then takes every queued frame
    /// (the queue's buffer goes with them: an idle outbox holds none).
    /// Single consumer: only the connection task calls this.
    pub async fn drain(&self) -> (VecDeque<Bytes>, Drained) {
        poll_fn(|cx| {
            // Registered before looking: a push after the look wakes us.
            self.waker.register(cx.waker());
            let mut st = self.lock();
            st.signaled = false;
            if st.queue.is_empty() && st.close.is_none() {
                return Poll::Pending;
            }
            let frames = std::mem::take(&mut st.queue);
            st.bytes = 0;
            let next = match st.close {
                Some(code) => Drained::Close(code),
                None => Drained::Frames,
            };
            Poll::Ready((frames, next))
        })
        .await
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
        let (out, drained) = ob.drain().await;
        assert_eq!(drained, Drained::Frames);
        assert_eq!(
            Vec::from(out),
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
        let (out, drained) = ob.drain().await;
        assert_eq!(drained, Drained::Close(CloseCode::SlowConsumer));
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
        let (out, drained) = ob.drain().await;
        assert_eq!(drained, Drained::Close(CloseCode::Kicked));
        assert_eq!(
            out.len(),
            1,
            "queued frames are still written before a kick"
        );
        // An ack arriving after the kick is still queued for writing.
        assert_eq!(ob.push(Bytes::from_static(b"ack")), Pushed::Queued);
        let mut rest = Vec::new();
        ob.take(&mut rest);
        assert_eq!(rest, vec![Bytes::from_static(b"ack")]);
    }
}
