//! What the server tells the app unprompted, plus connection events, and the
//! bounded stream that carries them.

use tern_proto::frame::{GroupEvent, GroupInfo};
use tern_proto::{ConvId, ErrorCode, Message, PresenceItem, ServerFrame};
use tokio::sync::mpsc;

/// One event for the app, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Push {
    /// A new message, deduplicated and in seq order per conversation
    /// (including messages fetched to fill a gap or after a reconnect).
    Msg(Message),
    /// A member moved its read pointer.
    Receipt {
        conv: ConvId,
        user: String,
        seq: u64,
    },
    /// A member is typing.
    Typing { conv: ConvId, user: String },
    /// Presence changes of subscribed users (also the current presence after
    /// the client re-subscribed on a reconnect).
    Presence(Vec<PresenceItem>),
    /// A group changed.
    Group {
        event: GroupEvent,
        group: GroupInfo,
        users: Vec<String>,
    },
    /// The server is draining; the client reconnects after about
    /// `reconnect_ms` by itself.
    Goaway { reconnect_ms: u64 },
    /// The server says pushes may have been lost (e.g. its cluster bus was
    /// unreachable). The client has already started to sync every tracked
    /// conversation by itself; an app that shows a conversation list should
    /// refresh it (`convs`).
    Resync,
    /// An `error` frame not answering a request (e.g. a refused `typing`, or
    /// the reason before a close: then `close` is set).
    Error {
        code: ErrorCode,
        message: String,
        retry_after_ms: Option<u64>,
        close: Option<u16>,
    },
    /// The connection ended. `code` is the server's close code; 1006 when it
    /// dropped without a close frame (or the server went silent for three
    /// heartbeats); 1001 when the client left after a `goaway`. `reconnecting`: the client will
    /// reconnect by itself (false after 4001, 4011, `close()`, or when the
    /// policy forbids it; then the stream ends next).
    Closed {
        code: u16,
        reason: String,
        reconnecting: bool,
    },
    /// A new session after a drop or a `goaway`. Presence subscriptions are
    /// renewed, and the messages missed by every tracked conversation follow
    /// as `Msg`.
    Reconnected { user: String, session: String },
}

impl Push {
    /// The push carried by a server frame without a request id, or `None`
    /// for frames that are replies.
    pub fn from_frame(frame: ServerFrame) -> Option<Self> {
        Some(match frame {
            ServerFrame::Msg(m) => Self::Msg(m),
            ServerFrame::Receipt { conv, user, seq } => Self::Receipt { conv, user, seq },
            ServerFrame::Typing { conv, user } => Self::Typing { conv, user },
            ServerFrame::Presence { items, .. } => Self::Presence(items),
            ServerFrame::Group {
                event,
                group,
                users,
            } => Self::Group {
                event,
                group,
                users,
            },
            ServerFrame::Goaway { reconnect_ms } => Self::Goaway { reconnect_ms },
            ServerFrame::Resync => Self::Resync,
            ServerFrame::Error {
                code,
                message,
                retry_after_ms,
                close,
                ..
            } => Self::Error {
                code,
                message,
                retry_after_ms,
                close,
            },
            ServerFrame::AuthOk { .. }
            | ServerFrame::Ack { .. }
            | ServerFrame::Messages { .. }
            | ServerFrame::Convs { .. }
            | ServerFrame::Ok { .. }
            | ServerFrame::Pong { .. } => return None,
        })
    }
}

/// The app's end of the push queue.
///
/// It is bounded ([`crate::ClientConfig::push_buffer`]). When the app stops
/// reading, the client stops reading the socket instead of dropping pushes:
/// replies to requests then wait behind the unread pushes too, and a server
/// whose outbound queue for this session overflows closes it (4010). Keep
/// reading. Dropping the stream discards further pushes. The stream ends
/// (`None`) when the client is closed or stops reconnecting.
#[derive(Debug)]
pub struct PushStream {
    rx: mpsc::Receiver<Push>,
}

impl PushStream {
    pub(crate) fn new(rx: mpsc::Receiver<Push>) -> Self {
        Self { rx }
    }

    /// The next push, or `None` once the client is gone.
    pub async fn recv(&mut self) -> Option<Push> {
        self.rx.recv().await
    }

    /// A push if one is ready.
    pub fn try_recv(&mut self) -> Option<Push> {
        self.rx.try_recv().ok()
    }

    /// The underlying receiver (e.g. for `tokio_stream::wrappers::ReceiverStream`).
    pub fn into_inner(self) -> mpsc::Receiver<Push> {
        self.rx
    }
}

impl futures_util::Stream for PushStream {
    type Item = Push;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Push>> {
        self.rx.poll_recv(cx)
    }
}
