//! Where and how to connect, read from the URL's scheme: `ws://` and
//! `wss://` (WebSocket; JSON unless `codec=proto` or the config says
//! protobuf), `tcp://host:port` (the raw TCP door, protobuf) and
//! `tls://host:port` (the TCP door inside TLS).

use http::Uri;
use tern_proto::Codec;

use crate::error::ClientError;

/// The transport family of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Door {
    /// WebSocket at the URL's path.
    WebSocket,
    /// `TRN1`, then length-prefixed protobuf frames.
    Tcp,
}

/// A parsed server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub door: Door,
    /// TLS around the TCP connection (`wss://`, `tls://`).
    pub tls: bool,
    /// Host name or address, without IPv6 brackets (also the TLS server name).
    pub host: String,
    pub port: u16,
    /// The codec of the connection's frames.
    pub codec: Codec,
}

impl Endpoint {
    /// Parses `url`; `codec` is the configured WebSocket codec (`None`: the
    /// URL's `codec=` query parameter, else JSON). The TCP door is protobuf
    /// only.
    pub fn parse(url: &str, codec: Option<Codec>) -> Result<Self, ClientError> {
        let bad = |why: &str| ClientError::Config(format!("bad url {url:?}: {why}"));
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let (door, tls, default_port) = match uri.scheme_str() {
            Some("ws") => (Door::WebSocket, false, Some(80)),
            Some("wss") => (Door::WebSocket, true, Some(443)),
            Some("tcp") => (Door::Tcp, false, None),
            Some("tls") => (Door::Tcp, true, None),
            _ => return Err(bad("the scheme must be ws, wss, tcp or tls")),
        };
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri
            .port_u16()
            .or(default_port)
            .ok_or_else(|| bad("tcp:// and tls:// need a port"))?;
        let codec = match door {
            Door::WebSocket => match codec {
                Some(c) => c,
                None => query_codec(&uri).map_err(|v| bad(&format!("unknown codec {v:?}")))?,
            },
            Door::Tcp if codec == Some(Codec::Json) => {
                return Err(bad("the TCP door speaks protobuf only"))
            }
            Door::Tcp => Codec::Proto,
        };
        Ok(Self {
            door,
            tls,
            host,
            port,
            codec,
        })
    }
}

/// The codec named by the `codec=` query parameter (JSON without one).
fn query_codec(uri: &Uri) -> Result<Codec, String> {
    let query = uri.query().unwrap_or_default();
    let named = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "codec")
        .map(|(_, v)| v);
    match named {
        None => Ok(Codec::Json),
        Some(v) => Codec::from_name(v).ok_or_else(|| v.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn schemes_ports_and_codecs() {
        let e = Endpoint::parse("ws://127.0.0.1:8080/ws", None).unwrap();
        assert_eq!(
            (e.door, e.tls, e.port, e.codec),
            (Door::WebSocket, false, 8080, Codec::Json)
        );
        let e = Endpoint::parse("wss://chat.example/ws?codec=proto", None).unwrap();
        assert_eq!((e.tls, e.port, e.codec), (true, 443, Codec::Proto));
        assert_eq!(e.host, "chat.example");
        let e = Endpoint::parse("ws://h/ws?codec=json", Some(Codec::Proto)).unwrap();
        assert_eq!(e.codec, Codec::Proto);
        let e = Endpoint::parse("tcp://[::1]:7070", None).unwrap();
        assert_eq!(
            (e.door, e.tls, e.host.as_str(), e.port),
            (Door::Tcp, false, "::1", 7070)
        );
        assert_eq!(e.codec, Codec::Proto);
        let e = Endpoint::parse("tls://localhost:7443", None).unwrap();
        assert_eq!((e.door, e.tls), (Door::Tcp, true));
    }

    #[test]
    fn refusals() {
        for (url, codec) in [
            ("http://h/ws", None),
            ("tcp://h", None),
            ("tcp://h:7070", Some(Codec::Json)),
            ("ws://h/ws?codec=xml", None),
            ("not a url", None),
        ] {
            assert!(Endpoint::parse(url, codec).is_err(), "{url}");
        }
    }
}
