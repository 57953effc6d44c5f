//! The request side: commands from handles to the connection task, the
//! [`Requester`] that awaits replies with a timeout, and the typed replies.

use std::time::Duration;

use tern_proto::frame::SyncFrame;
use tern_proto::{ClientFrame, ConvId, Message, RequestId, ServerFrame};
use tokio::sync::{mpsc, oneshot};

use crate::error::{ClientError, Result};

/// What a handle asks of the connection task.
pub(crate) enum Command {
    /// Send `frame` with a fresh id and route the reply to `reply`.
    Request {
        frame: ClientFrame,
        reply: oneshot::Sender<Result<ServerFrame>>,
    },
    /// Send `frame` as is; no reply expected (`typing`).
    Notify { frame: ClientFrame },
    /// Close the connection (1000) and stop; `done` fires afterwards.
    Close { done: oneshot::Sender<()> },
}

/// The server's acknowledgement of a stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub conv: ConvId,
    pub seq: u64,
    pub mid: String,
    pub ts: i64,
}

/// One page of a conversation's history (`messages` reply), ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub conv: ConvId,
    pub items: Vec<Message>,
    /// After `sync_after`: newer messages exist; otherwise older ones do.
    pub more: bool,
}

/// Sends commands and awaits replies; shared by handles and the delivery task.
#[derive(Clone)]
pub(crate) struct Requester {
    cmds: mpsc::Sender<Command>,
    timeout: Duration,
}

impl Requester {
    pub fn new(cmds: mpsc::Sender<Command>, timeout: Duration) -> Self {
        Self { cmds, timeout }
    }

    /// One request; an `error` reply becomes [`ClientError::Server`].
    pub async fn request(&self, frame: ClientFrame) -> Result<ServerFrame> {
        let (reply, rx) = oneshot::channel();
        let round_trip = async {
            self.cmds
                .send(Command::Request { frame, reply })
                .await
                .map_err(|_| ClientError::Shutdown)?;
            // The task dropped the sender without answering: it has stopped.
            rx.await.map_err(|_| ClientError::Shutdown)?
        };
        let frame = tokio::time::timeout(self.timeout, round_trip)
            .await
            .map_err(|_| ClientError::Timeout)??;
        match frame {
            ServerFrame::Error {
                code,
                message,
                retry_after_ms,
                ..
            } => Err(ClientError::Server {
                code,
                message,
                retry_after_ms,
            }),
            other => Ok(other),
        }
    }

    /// A frame without reply.
    pub async fn notify(&self, frame: ClientFrame) -> Result<()> {
        self.cmds
            .send(Command::Notify { frame })
            .await
            .map_err(|_| ClientError::Shutdown)
    }

    /// Asks the task to close; returns once it did (or was already gone).
    pub async fn close(&self) {
        let (done, rx) = oneshot::channel();
        if self.cmds.send(Command::Close { done }).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// A `sync` request answered by a `messages` page.
    pub async fn sync(&self, frame: SyncFrame) -> Result<Page> {
        match self.request(ClientFrame::Sync(frame)).await? {
            ServerFrame::Messages {
                conv, items, more, ..
            } => Ok(Page { conv, items, more }),
            other => Err(unexpected(&other)),
        }
    }

    /// `sync after=after limit=limit`.
    pub async fn sync_after(&self, conv: ConvId, after: u64, limit: u32) -> Result<Page> {
        self.sync(SyncFrame {
            id: None,
            conv,
            after: Some(after),
            before: None,
            limit: Some(i64::from(limit)),
        })
        .await
    }
}

/// The error for a reply of the wrong type.
pub(crate) fn unexpected(frame: &ServerFrame) -> ClientError {
    ClientError::UnexpectedReply(server_type_name(frame))
}

/// The wire `type` of a server frame.
pub(crate) fn server_type_name(frame: &ServerFrame) -> &'static str {
    match frame {
        ServerFrame::AuthOk { .. } => "auth_ok",
        ServerFrame::Ack { .. } => "ack",
        ServerFrame::Messages { .. } => "messages",
        ServerFrame::Convs { .. } => "convs",
        ServerFrame::Ok { .. } => "ok",
        ServerFrame::Pong { .. } => "pong",
        ServerFrame::Presence { .. } => "presence",
        ServerFrame::Msg(_) => "msg",
        ServerFrame::Receipt { .. } => "receipt",
        ServerFrame::Typing { .. } => "typing",
        ServerFrame::Group { .. } => "group",
        ServerFrame::Goaway { .. } => "goaway",
        ServerFrame::Resync => "resync",
        ServerFrame::Error { .. } => "error",
    }
}

/// Replaces the request id of a client frame.
pub(crate) fn set_id(frame: &mut ClientFrame, new: RequestId) {
    let slot = match frame {
        ClientFrame::Auth { id, .. }
        | ClientFrame::Convs { id }
        | ClientFrame::Read { id, .. }
        | ClientFrame::Typing { id, .. }
        | ClientFrame::PresenceSub { id, .. }
        | ClientFrame::PresenceUnsub { id, .. }
        | ClientFrame::Ping { id } => id,
        ClientFrame::Send(f) => &mut f.id,
        ClientFrame::Sync(f) => &mut f.id,
    };
    *slot = Some(new);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_id_reaches_every_variant() {
        let conv = ConvId::direct("alice", "bob");
        let mut frames = vec![
            ClientFrame::Convs { id: None },
            ClientFrame::Ping { id: None },
            ClientFrame::Typing {
                id: None,
                conv: conv.clone(),
            },
            ClientFrame::Sync(SyncFrame {
                id: None,
                conv,
                after: None,
                before: None,
                limit: None,
            }),
        ];
        for f in &mut frames {
            set_id(f, RequestId::from(9));
            assert_eq!(f.id(), Some(&RequestId::from(9)));
        }
    }
}
