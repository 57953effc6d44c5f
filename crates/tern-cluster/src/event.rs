//! What nodes tell each other, and its envelope on the wire: one JSON line
//! (the sender and the event) and, for a push, the already-encoded frame
//! after it, untouched. The frame is never parsed on the way.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// An event between nodes.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An encoded server frame for the local sessions of `target`.
    Push { target: PushTarget, frame: Bytes },
    /// Close every local session of `user` with `code` (an admin kick).
    CloseUser { user: String, code: u16 },
    /// `user` was banned or unbanned: update the ban cache; a ban also
    /// closes the user's sessions (4011).
    Banned { user: String, banned: bool },
    /// A group's membership changed; applied in order, so a push published
    /// after it is fanned out with the new members.
    Group(GroupChange),
    /// Users that came online or went offline on the sending node.
    Presence { changes: Vec<(String, bool)> },
    /// Pushes may have been lost: every session is told to resync.
    Resync,
    /// The sending node is leaving (clean shutdown): forget its sessions.
    Left,
    /// Answer with [`Event::BarrierAck`] once every event the sender
    /// published before this one has been applied here.
    Barrier { id: u64 },
    /// The answer to the sender's barrier `id`.
    BarrierAck { id: u64 },
}

/// Who a pushed frame is for, on the receiving node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum PushTarget {
    /// Every session of these users.
    Users { users: Vec<String> },
    /// Every member of a conversation (`d:a:b`, or `g:<id>` from the
    /// receiving node's group cache) but `skip`.
    Conv {
        conv: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        skip: Option<String>,
    },
}

/// A change of group membership.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum GroupChange {
    /// The group exists with exactly these members (created, or a full
    /// refresh).
    Members {
        group: String,
        members: Vec<String>,
    },
    Added {
        group: String,
        users: Vec<String>,
    },
    Removed {
        group: String,
        users: Vec<String>,
    },
    Deleted {
        group: String,
    },
}

/// The JSON line of an envelope.
#[derive(Serialize, Deserialize)]
struct Header<'a> {
    from: &'a str,
    #[serde(flatten)]
    event: HeaderEvent,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
enum HeaderEvent {
    Push {
        #[serde(flatten)]
        target: PushTarget,
    },
    CloseUser {
        user: String,
        code: u16,
    },
    Banned {
        user: String,
        banned: bool,
    },
    Group {
        #[serde(flatten)]
        change: GroupChange,
    },
    Presence {
        changes: Vec<(String, bool)>,
    },
    Resync,
    Left,
    Barrier {
        id: u64,
    },
    BarrierAck {
        id: u64,
    },
}

/// An envelope that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("bad cluster envelope: {0}")]
pub struct EnvelopeError(String);

impl Event {
    /// The envelope of this event sent by `from`.
    pub fn encode(&self, from: &str) -> Bytes {
        let (event, frame) = match self.clone() {
            Event::Push { target, frame } => (HeaderEvent::Push { target }, Some(frame)),
            Event::CloseUser { user, code } => (HeaderEvent::CloseUser { user, code }, None),
            Event::Banned { user, banned } => (HeaderEvent::Banned { user, banned }, None),
            Event::Group(change) => (HeaderEvent::Group { change }, None),
            Event::Presence { changes } => (HeaderEvent::Presence { changes }, None),
            Event::Resync => (HeaderEvent::Resync, None),
            Event::Left => (HeaderEvent::Left, None),
            Event::Barrier { id } => (HeaderEvent::Barrier { id }, None),
            Event::BarrierAck { id } => (HeaderEvent::BarrierAck { id }, None),
        };
        // Serializing plain strings, numbers and lists cannot fail; an
        // empty header would be refused by the receiver anyway.
        let header = serde_json::to_vec(&Header { from, event }).unwrap_or_default();
        let frame_len = frame.as_ref().map_or(0, Bytes::len);
        let mut out = BytesMut::with_capacity(header.len() + 1 + frame_len);
        out.put_slice(&header);
        out.put_u8(b'\n');
        if let Some(frame) = frame {
            out.put_slice(&frame);
        }
        out.freeze()
    }

    /// Reads an envelope: the sender and the event.
    pub fn decode(bytes: &Bytes) -> Result<(String, Event), EnvelopeError> {
        let newline = bytes
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| EnvelopeError("no header line".into()))?;
        let header: Header<'_> =
            serde_json::from_slice(&bytes[..newline]).map_err(|e| EnvelopeError(e.to_string()))?;
        let rest = bytes.slice(newline + 1..);
        let event = match header.event {
            HeaderEvent::Push { target } => Event::Push {
                target,
                frame: rest,
            },
            HeaderEvent::CloseUser { user, code } => Event::CloseUser { user, code },
            HeaderEvent::Banned { user, banned } => Event::Banned { user, banned },
            HeaderEvent::Group { change } => Event::Group(change),
            HeaderEvent::Presence { changes } => Event::Presence { changes },
            HeaderEvent::Resync => Event::Resync,
            HeaderEvent::Left => Event::Left,
            HeaderEvent::Barrier { id } => Event::Barrier { id },
            HeaderEvent::BarrierAck { id } => Event::BarrierAck { id },
        };
        Ok((header.from.to_owned(), event))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn roundtrip(event: Event) {
        let bytes = event.encode("node-1");
        let (from, back) = Event::decode(&bytes).unwrap();
        assert_eq!(from, "node-1");
        assert_eq!(back, event);
    }

    #[test]
    fn every_event_survives_its_envelope() {
        roundtrip(Event::Push {
            target: PushTarget::Users {
                users: vec!["alice".into(), "bob".into()],
            },
            frame: Bytes::from_static(b"{\"type\":\"msg\",\"body\":\"a\\nb\"}"),
        });
        roundtrip(Event::Push {
            target: PushTarget::Conv {
                conv: "g:x1".into(),
                skip: Some("carol".into()),
            },
            frame: Bytes::from_static(b"\n\n binary \xff\x00 too"),
        });
        roundtrip(Event::CloseUser {
            user: "eve".into(),
            code: 4011,
        });
        roundtrip(Event::Banned {
            user: "eve".into(),
            banned: true,
        });
        for change in [
            GroupChange::Members {
                group: "x1".into(),
                members: vec!["a".into()],
            },
            GroupChange::Added {
                group: "x1".into(),
                users: vec!["b".into()],
            },
            GroupChange::Removed {
                group: "x1".into(),
                users: vec!["b".into()],
            },
            GroupChange::Deleted { group: "x1".into() },
        ] {
            roundtrip(Event::Group(change));
        }
        roundtrip(Event::Presence {
            changes: vec![("a".into(), true), ("b".into(), false)],
        });
        roundtrip(Event::Resync);
        roundtrip(Event::Left);
        roundtrip(Event::Barrier { id: 7 });
        roundtrip(Event::BarrierAck { id: u64::MAX });
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"no newline",
            b"{}\n",
            b"{\"from\":\"n\",\"ev\":\"nope\"}\n",
            b"\xff\xfe\n",
        ] {
            assert!(Event::decode(&Bytes::copy_from_slice(bad)).is_err());
        }
    }
}
