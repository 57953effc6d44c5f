//! The client's address behind reverse proxies: `http.trusted_proxies`
//! names the peers whose `Forwarded` / `X-Forwarded-For` headers are
//! believed; from anyone else the headers are ignored (they are trivially
//! spoofed), and the socket's peer address is the client.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// The peers whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses CIDR blocks (`10.0.0.0/8`, `fd00::/8`) and single addresses.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| {
                let e = e.trim();
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{e:?} is not an IP address or CIDR block"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request that came from `peer`. Walks the
    /// forwarding chain from the nearest hop outwards while the hops are
    /// trusted proxies; the first untrusted address is the client. Without
    /// a usable header the peer itself is the client.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.contains(client) {
            return client;
        }
        for hop in forwarded_chain(headers).into_iter().rev() {
            match hop {
                Some(ip) => client = canonical(ip),
                // `unknown` or an obfuscated name: nothing further is known.
                None => return client,
            }
            if !self.contains(client) {
                break;
            }
        }
        client
    }
}

/// The addresses a request passed through, client first: from the
/// `Forwarded` header (RFC 7239) when present, else `X-Forwarded-For`.
/// `None` stands for an entry that is not an address.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<Option<IpAddr>> = headers
        .get_all(http::header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_node(v.trim().trim_matches('"')))
            })
        })
        .collect();
    if !forwarded.is_empty() {
        return forwarded;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|node| parse_node(node.trim()))
        .collect()
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `[::1]:80`, `::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = node.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    node.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(ip, _)| ip.parse().ok())
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http::HeaderValue;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "6.6.6.6")]);
        assert_eq!(p.client_ip(ip("203.0.113.9"), &h), ip("203.0.113.9"));
        let none = TrustedProxies::default();
        assert_eq!(none.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn trusted_peer_gives_the_first_untrusted_hop() {
        let p = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        // The client forged the first entry; the proxies appended the rest.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.1.2.3")]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("198.51.100.7"));
        // Several header lines form one list.
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "198.51.100.8"),
        ]);
        assert_eq!(p.client_ip(ip("10.9.9.9"), &h), ip("198.51.100.8"));
        // No header: the proxy itself.
        assert_eq!(
            p.client_ip(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn forwarded_header_wins_and_parses_ports_and_ipv6() {
        let p = proxies(&["127.0.0.0/8"]);
        let h = headers(&[
            (
                "forwarded",
                "for=\"[2001:db8::1]:4711\";proto=https, for=127.0.0.5",
            ),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("2001:db8::1"));
        let h = headers(&[("forwarded", "for=192.0.2.60:80")]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("192.0.2.60"));
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("127.0.0.1"));
    }

    #[test]
    fn mapped_addresses_and_bad_entries() {
        let p = proxies(&["127.0.0.1"]);
        assert!(p.contains(ip("::ffff:127.0.0.1")));
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.local".into()]).is_err());
        let h = headers(&[("x-forwarded-for", "garbage, 203.0.113.1")]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("203.0.113.1"));
        let h = headers(&[("x-forwarded-for", "203.0.113.1, garbage")]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("127.0.0.1"));
    }
}
