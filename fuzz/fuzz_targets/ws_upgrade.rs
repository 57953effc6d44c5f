//! The WebSocket upgrade request (gateway/upgrade.rs) and the client address
//! behind proxies (http/client_ip.rs), as the production readers see them.
//!
//! Input, line by line: the request target's query (parsed with `http::Uri`
//! as hyper does, so only bytes a real request can carry reach the
//! readers); the peer address then `http.trusted_proxies` entries,
//! space-separated; then `name: value` header lines (the ones `http`
//! refuses are dropped, as hyper would refuse them).
//! Checks: no panic; the codec and subprotocol agree with what was offered;
//! a bearer token is trimmed; percent-decoding round-trips; the forwarding
//! headers of an untrusted peer are ignored.
#![no_main]

use std::fmt::Write as _;
use std::net::IpAddr;

use http::{header, HeaderMap, HeaderName, HeaderValue, Uri};
use libfuzzer_sys::fuzz_target;
use tern_proto::Codec;
use tern_server::gateway::upgrade::{accept_key, bearer, choose_codec, query_param};
use tern_server::http::client_ip::TrustedProxies;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let query_line = lines.next().unwrap_or_default();
    let peer_line = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let headers = headers(lines);
    let target = format!("/ws?{}", String::from_utf8_lossy(query_line));
    let uri = target.parse::<Uri>().ok();
    let query = uri.as_ref().and_then(Uri::query).unwrap_or("");

    if let Some(accept) = accept_key(&headers) {
        assert_eq!(accept.len(), 28, "base64 of a SHA-1");
        assert_eq!(headers[header::SEC_WEBSOCKET_VERSION], "13");
    }
    check_codec(&headers, query);
    if let Some(token) = bearer(&headers) {
        assert_eq!(token, token.trim());
    }
    if let Some(token) = query_param(query, "token") {
        let again = query_param(&format!("token={}", escape_all(&token)), "token");
        assert_eq!(again.as_deref(), Some(token.as_str()), "percent-decoding");
    }
    check_client_ip(&peer_line, &headers);
});

fn headers<'a>(lines: impl Iterator<Item = &'a [u8]>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            map.append(n, v);
        }
    }
    map
}

fn check_codec(headers: &HeaderMap, query: &str) {
    let offered = |name: &str| {
        headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|p| p.trim() == name))
    };
    let asked = query_param(query, "codec");
    match choose_codec(headers, query) {
        Ok((codec, Some(sub))) => {
            assert!(offered(sub), "{sub} answered but not offered");
            assert_eq!(codec, Codec::from_subprotocol(sub));
        }
        Ok((Some(codec), None)) => {
            assert!(!offered("tern.json") && !offered("tern.proto"));
            assert_eq!(asked.as_deref(), Some(codec.name()));
        }
        Ok((None, None)) => assert_eq!(asked, None),
        Err(_) => assert!(asked.is_some_and(|a| Codec::from_name(&a).is_none())),
    }
}

fn escape_all(s: &str) -> String {
    s.bytes().fold(String::new(), |mut out, b| {
        let _ = write!(out, "%{b:02X}");
        out
    })
}

fn check_client_ip(peer_line: &str, headers: &HeaderMap) {
    let mut words = peer_line.split(' ');
    let Some(Ok(peer)) = words.next().map(str::parse::<IpAddr>) else {
        return;
    };
    let entries: Vec<String> = words.map(str::to_owned).collect();
    let canonical = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
        v4 => v4,
    };
    if let Ok(proxies) = TrustedProxies::parse(&entries) {
        let client = proxies.client_ip(peer, headers);
        if !proxies.contains(peer) {
            assert_eq!(client, canonical, "headers of an untrusted peer were used");
        }
    }
    let everyone = TrustedProxies::parse(&["0.0.0.0/0".into(), "::/0".into()]);
    if let Ok(everyone) = everyone {
        let _ = everyone.client_ip(peer, headers);
    }
}
