//! Frames per codec: the one place that encodes what the bench sends and
//! decodes what it reads. JSON travels in WebSocket text messages
//! (`--transport ws`); protobuf in WebSocket binary messages (`ws-proto`)
//! or length-prefixed TCP frames (`tcp`). The scenarios do not change.

use std::borrow::Cow;

use bytes::Bytes;
use tern_client::tern_proto::frame::SendFrame;
use tern_client::tern_proto::{self, ClientFrame, ConvId, MessageKind, RequestId, ServerFrame};

use crate::cli::Transport;
use crate::scenario::Dest;

/// The encoding of frames on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// JSON text frames (`?codec=json`).
    Json,
    /// Protobuf binary frames (`?codec=proto`, and the TCP door).
    Proto,
}

/// One encoded frame to write: text for the JSON codec, bytes for a binary
/// codec. The transport frames it ([`crate::net::Conn::send`]).
#[derive(Debug, Clone)]
pub enum Encoded {
    Text(String),
    Binary(Bytes),
}

/// One frame read from the wire, not decoded yet (kept as the transport
/// gave it: no copy).
#[derive(Debug)]
pub enum Payload {
    /// A WebSocket data message (text or binary).
    Ws(tokio_websockets::Message),
    /// The body of one TCP door frame.
    Tcp(Bytes),
}

impl Payload {
    /// The payload as text, if it is a text frame.
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Ws(m) => m.as_text(),
            Self::Tcp(_) => None,
        }
    }

    /// The payload's bytes, if it is a binary frame.
    pub fn binary(&self) -> Option<&[u8]> {
        match self {
            Self::Ws(m) if m.is_binary() => Some(m.as_payload()),
            Self::Ws(_) => None,
            Self::Tcp(b) => Some(b),
        }
    }

    /// At most 200 characters of the payload, for error messages (a
    /// protobuf frame is shown decoded).
    pub fn preview(&self) -> String {
        if let Some(t) = self.text() {
            return crate::net::truncate(t);
        }
        let bytes = self.binary().unwrap_or_default();
        match tern_proto::Codec::Proto.decode_server(bytes) {
            Ok(f) => crate::net::truncate(&format!("{f:?}")),
            Err(_) => format!("<{} bytes>", bytes.len()),
        }
    }
}

/// What the bench sends.
#[derive(Debug, Clone, Copy)]
pub enum Out<'a> {
    /// A `send` request with request id `id`.
    Send {
        id: u64,
        dest: &'a Dest,
        cmid: &'a str,
        body: &'a str,
    },
    /// An `auth` frame (the TCP door has no header or query token).
    Auth { id: u64, token: &'a str },
}

impl Codec {
    /// The codec of `transport`.
    pub fn of(transport: Transport) -> anyhow::Result<Self> {
        Ok(match transport {
            Transport::WsJson => Self::Json,
            Transport::WsProto | Transport::Tcp => Self::Proto,
        })
    }

    /// The `codec=` query parameter of the WebSocket upgrade.
    pub fn query(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Proto => "proto",
        }
    }

    pub fn encode(self, out: &Out<'_>) -> Encoded {
        match self {
            Self::Json => Encoded::Text(json(out).to_string()),
            Self::Proto => match proto_frame(out) {
                Ok(f) => Encoded::Binary(tern_proto::Codec::Proto.encode_client(&f)),
                // Only a conversation id the server never gave us fails;
                // sent as JSON it is refused like any bad frame.
                Err(_) => Encoded::Binary(Bytes::from(json(out).to_string())),
            },
        }
    }

    /// The fields the bench reads from a server frame; `None` for anything
    /// that does not decode (it is skipped).
    pub fn decode(self, p: &Payload) -> Option<Frame<'_>> {
        match self {
            // A binary frame is not JSON: skipped.
            Self::Json => serde_json::from_str(p.text()?).ok(),
            Self::Proto => {
                let frame = tern_proto::Codec::Proto.decode_server(p.binary()?).ok()?;
                Some(Frame::from_server(frame))
            }
        }
    }
}

/// `out` as a JSON object.
fn json(out: &Out<'_>) -> serde_json::Value {
    match *out {
        Out::Send {
            id,
            dest,
            cmid,
            body,
        } => match dest {
            Dest::To(u) => serde_json::json!(
                {"type":"send","id":id,"to":u,"cmid":cmid,"body":body}
            ),
            Dest::Conv(c) => serde_json::json!(
                {"type":"send","id":id,"conv":c,"cmid":cmid,"body":body}
            ),
        },
        Out::Auth { id, token } => serde_json::json!(
            {"type":"auth","id":id,"token":token,"device":"tern-bench"}
        ),
    }
}

/// `out` as a protocol frame (for the protobuf encoder).
fn proto_frame(out: &Out<'_>) -> anyhow::Result<ClientFrame> {
    Ok(match *out {
        Out::Send {
            id,
            dest,
            cmid,
            body,
        } => {
            let (to, conv) = match dest {
                Dest::To(u) => (Some(u.clone()), None),
                Dest::Conv(c) => (None, Some(ConvId::parse(c)?)),
            };
            ClientFrame::Send(SendFrame {
                id: Some(RequestId::from(id)),
                to,
                conv,
                cmid: cmid.to_owned(),
                body: body.to_owned(),
                kind: MessageKind::Text,
                meta: None,
            })
        }
        Out::Auth { id, token } => ClientFrame::Auth {
            id: Some(RequestId::from(id)),
            token: token.to_owned(),
            device: Some("tern-bench".to_owned()),
        },
    })
}

/// A server frame (only the fields the bench reads), borrowed from the payload.
#[derive(Debug, serde::Deserialize)]
pub struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    pub id: Option<u64>,
    pub seq: Option<u64>,
    #[serde(borrow)]
    pub conv: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub body: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub code: Option<Cow<'a, str>>,
}

impl Frame<'_> {
    /// The fields of a decoded protobuf frame (owned).
    fn from_server(frame: ServerFrame) -> Frame<'static> {
        let num = |id: Option<&RequestId>| match id {
            Some(RequestId::Num(n)) => n.as_u64(),
            _ => None,
        };
        let mut f = Frame {
            kind: Cow::Borrowed(""),
            id: num(frame.id()),
            seq: None,
            conv: None,
            body: None,
            code: None,
        };
        f.kind = Cow::Borrowed(match frame {
            ServerFrame::AuthOk { .. } => "auth_ok",
            ServerFrame::Ack { conv, seq, .. } => {
                (f.seq, f.conv) = (Some(seq), Some(Cow::Owned(conv.to_string())));
                "ack"
            }
            ServerFrame::Msg(m) => {
                (f.seq, f.conv) = (Some(m.seq), Some(Cow::Owned(m.conv.to_string())));
                f.body = Some(Cow::Owned(m.body));
                "msg"
            }
            ServerFrame::Error { code, .. } => {
                f.code = Some(Cow::Borrowed(code.as_str()));
                "error"
            }
            ServerFrame::Pong { .. } => "pong",
            ServerFrame::Goaway { .. } => "goaway",
            // Nothing else matters to a scenario.
            _ => "other",
        });
        f
    }

    /// The send timestamp (µs) at the start of a bench message body.
    pub fn sent_us(&self) -> Option<u64> {
        let b = self.body.as_deref()?;
        let digits = b.split(|c: char| !c.is_ascii_digit()).next()?;
        digits.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn send_round_trips_in_both_codecs() {
        let dest = Dest::Conv("g:abc".into());
        let p = Codec::Json.encode(&Out::Send {
            id: 7,
            dest: &dest,
            cmid: "r-7",
            body: "123 x",
        });
        let Encoded::Text(t) = &p else {
            panic!("JSON is text")
        };
        let v: serde_json::Value = serde_json::from_str(t).unwrap();
        assert_eq!(v["conv"], "g:abc");
        assert_eq!(v["id"], 7);
        let push = Payload::Ws(tokio_websockets::Message::text(
            r#"{"type":"msg","conv":"g:abc","seq":3,"body":"123 x"}"#,
        ));
        let f = Codec::Json.decode(&push).unwrap();
        assert_eq!(
            (f.kind.as_ref(), f.seq, f.sent_us()),
            ("msg", Some(3), Some(123))
        );
        assert_eq!(f.conv.as_deref(), Some("g:abc"));

        let Encoded::Binary(b) = Codec::Proto.encode(&Out::Send {
            id: 7,
            dest: &dest,
            cmid: "r-7",
            body: "123 x",
        }) else {
            panic!("protobuf is binary")
        };
        let ClientFrame::Send(s) = tern_proto::Codec::Proto.decode_client(&b).unwrap() else {
            panic!("a send")
        };
        assert_eq!(
            (s.conv.unwrap().to_string(), s.body.as_str()),
            ("g:abc".into(), "123 x")
        );
        let ack = ServerFrame::Ack {
            id: Some(RequestId::from(7)),
            conv: ConvId::parse("g:abc").unwrap(),
            seq: 4,
            mid: "m".into(),
            ts: 1,
        };
        let wire = Payload::Tcp(tern_proto::Codec::Proto.encode_server(&ack));
        let f = Codec::Proto.decode(&wire).unwrap();
        assert_eq!((f.kind.as_ref(), f.id, f.seq), ("ack", Some(7), Some(4)));
        for t in [Transport::WsJson, Transport::WsProto, Transport::Tcp] {
            assert!(Codec::of(t).is_ok());
        }
    }
}
