//! Frames per codec: the one place that encodes what the bench sends and
//! decodes what it reads. Only the JSON codec exists; a protobuf codec
//! (`--transport ws-proto|tcp`) would be a second variant of [`Codec`],
//! and the scenarios would not change.

use std::borrow::Cow;

use crate::cli::Transport;
use crate::scenario::Dest;

/// The encoding of frames on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// JSON text frames (`?codec=json`).
    Json,
}

/// One encoded frame to write: text for the JSON codec, bytes for a binary
/// codec. The transport frames it ([`crate::net::Conn::send`]).
#[derive(Debug, Clone)]
pub enum Encoded {
    Text(String),
    Binary(Vec<u8>),
}

/// One frame read from the wire, not decoded yet (kept as the transport
/// gave it: no copy).
#[derive(Debug)]
pub enum Payload {
    /// A WebSocket data message (text or binary).
    Ws(tokio_websockets::Message),
}

impl Payload {
    /// The payload as text, if it is a text frame.
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Ws(m) => m.as_text(),
        }
    }

    /// At most 200 characters of the payload, for error messages.
    pub fn preview(&self) -> String {
        match self {
            Self::Ws(m) => match m.as_text() {
                Some(t) => crate::net::truncate(t),
                None => format!("<{} bytes>", m.as_payload().len()),
            },
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
}

impl Codec {
    /// The codec of `transport`, or why there is none yet.
    pub fn of(transport: Transport) -> anyhow::Result<Self> {
        match transport {
            Transport::WsJson => Ok(Self::Json),
            Transport::WsProto | Transport::Tcp => Err(not_implemented(transport)),
        }
    }

    /// The `codec=` query parameter of the WebSocket upgrade.
    pub fn query(self) -> &'static str {
        match self {
            Self::Json => "json",
        }
    }

    pub fn encode(self, out: &Out<'_>) -> Encoded {
        match self {
            Self::Json => {
                let v = match *out {
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
                };
                Encoded::Text(v.to_string())
            }
        }
    }

    /// The fields the bench reads from a server frame; `None` for anything
    /// that does not decode (it is skipped).
    pub fn decode(self, p: &Payload) -> Option<Frame<'_>> {
        match self {
            // A binary frame is not JSON: skipped.
            Self::Json => serde_json::from_str(p.text()?).ok(),
        }
    }
}

/// The error for a transport that is not implemented.
pub fn not_implemented(transport: Transport) -> anyhow::Error {
    let what = match transport {
        Transport::WsJson => "ws-json",
        Transport::WsProto => "ws-proto (WebSocket with the protobuf codec)",
        Transport::Tcp => "tcp (raw TCP, length-prefixed protobuf)",
    };
    anyhow::anyhow!(
        "--transport {what} is not implemented yet (the server has no protobuf codec or TCP \
         listener yet); use --transport ws-json"
    )
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
    fn json_send_round_trip_and_unimplemented_transports() {
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
        assert!(Codec::of(Transport::WsJson).is_ok());
        for t in [Transport::WsProto, Transport::Tcp] {
            let e = Codec::of(t).unwrap_err().to_string();
            assert!(e.contains("not implemented"), "{e}");
        }
    }
}
