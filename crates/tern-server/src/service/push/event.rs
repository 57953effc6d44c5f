//! The webhook's payload: one [`PushEvent`] per offline recipient of a
//! message, and the `{"events": [...]}` body that carries a batch of them.

use bytes::Bytes;
use serde::Serialize;
use tern_proto::{ConvId, Message, MessageKind};

/// A message that reached `user` while none of their sessions was online.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushEvent {
    pub user: String,
    pub conv: ConvId,
    pub seq: u64,
    pub from: String,
    pub kind: MessageKind,
    pub mid: String,
    pub ts: i64,
    /// A preview of the body; absent when previews are off and always for
    /// `e2e`, whose body is ciphertext the server must not leak.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// What goes into an event besides the message itself.
#[derive(Debug, Clone, Copy)]
pub struct EventShape {
    pub include_body: bool,
    pub preview_chars: usize,
}

impl PushEvent {
    pub fn new(user: &str, msg: &Message, shape: EventShape) -> Self {
        let body = (shape.include_body && msg.kind != MessageKind::E2e)
            .then(|| preview(&msg.body, shape.preview_chars).to_owned());
        Self {
            user: user.to_owned(),
            conv: msg.conv.clone(),
            seq: msg.seq,
            from: msg.from.clone(),
            kind: msg.kind,
            mid: msg.mid.clone(),
            ts: msg.ts,
            body,
        }
    }
}

/// The first `n` characters of `body` (never splits a character).
pub fn preview(body: &str, n: usize) -> &str {
    match body.char_indices().nth(n) {
        Some((end, _)) => &body[..end],
        None => body,
    }
}

/// The JSON body of one POST: `{"events": [...]}`, encoded once and reused
/// by every retry.
pub fn encode_batch(events: &[PushEvent]) -> Result<Bytes, serde_json::Error> {
    #[derive(Serialize)]
    struct Batch<'a> {
        events: &'a [PushEvent],
    }
    serde_json::to_vec(&Batch { events }).map(Bytes::from)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::{json, Value};

    fn message(kind: MessageKind, body: &str) -> Message {
        Message {
            conv: ConvId::parse("d:alice:bob").unwrap(),
            seq: 17,
            mid: "01MID".into(),
            from: "alice".into(),
            body: body.into(),
            kind,
            ts: 1_763_000_000_000,
            cmid: "c1".into(),
            meta: None,
        }
    }

    const SHAPE: EventShape = EventShape {
        include_body: true,
        preview_chars: 5,
    };

    #[test]
    fn preview_counts_characters_not_bytes() {
        assert_eq!(preview("hello world", 5), "hello");
        assert_eq!(preview("héllo wörld", 7), "héllo w");
        assert_eq!(preview("🦀🦀🦀", 2), "🦀🦀");
        assert_eq!(preview("short", 100), "short");
        assert_eq!(preview("exact", 5), "exact");
        assert_eq!(preview("", 3), "");
        assert_eq!(preview("abc", 0), "");
    }

    #[test]
    fn event_json_has_every_field_and_a_preview() {
        let ev = PushEvent::new("bob", &message(MessageKind::Text, "hello world"), SHAPE);
        let v: Value = serde_json::from_slice(&encode_batch(&[ev]).unwrap()).unwrap();
        assert_eq!(
            v,
            json!({"events": [{
                "user": "bob", "conv": "d:alice:bob", "seq": 17, "from": "alice",
                "kind": "text", "mid": "01MID", "ts": 1_763_000_000_000_i64, "body": "hello"
            }]})
        );
    }

    #[test]
    fn no_body_when_previews_are_off_or_for_e2e() {
        let off = EventShape {
            include_body: false,
            ..SHAPE
        };
        let ev = PushEvent::new("bob", &message(MessageKind::Text, "secret"), off);
        assert_eq!(ev.body, None);
        let ev = PushEvent::new("bob", &message(MessageKind::E2e, "ciphertext"), SHAPE);
        assert_eq!(ev.body, None);
        let v = serde_json::to_value(&ev).unwrap();
        assert!(v.get("body").is_none(), "{v}");
        assert_eq!(v["kind"], "e2e");
    }

    #[test]
    fn a_batch_keeps_event_order() {
        let events: Vec<_> = (1..=3)
            .map(|seq| {
                let mut m = message(MessageKind::Text, "x");
                m.seq = seq;
                PushEvent::new("bob", &m, SHAPE)
            })
            .collect();
        let v: Value = serde_json::from_slice(&encode_batch(&events).unwrap()).unwrap();
        let seqs: Vec<_> = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
    }
}
