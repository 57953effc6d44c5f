//! The flags of `tern chat` and the two addresses derived from `--url`: the
//! HTTP API base (login, groups) and the WebSocket URL (`/ws`).

use std::time::Duration;

use clap::Args;

/// `tern chat`: a line-oriented terminal chat client.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ChatArgs {
    /// The server's HTTP address; the WebSocket is `<url>/ws`
    /// (only plain `http://` here).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Log in as this user (password asked without echo on a terminal,
    /// else read as the first line of stdin).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Create the account first (as `POST /api/v1/register`); an existing
    /// account is just logged in to.
    #[arg(long, requires = "user")]
    pub register: bool,
    /// Read the password as the first line of stdin, even on a terminal.
    #[arg(long, requires = "user")]
    pub password_stdin: bool,
    /// Use this JWT instead of logging in (`--user` wins when both are given).
    #[arg(long, value_name = "JWT", env = "TERN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Messages shown when a conversation is opened, and per `/more` (1 to 500).
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=500))]
    pub history: u32,
    /// Least time between two typing notices (`/typing`) in one
    /// conversation: `3s`, `500ms`.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub typing_every: Duration,
    /// How long an HTTP call or a WebSocket request may take: `10s`.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Where the server is, as the client needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// `http://host:port` (no trailing slash), the base of `/api/v1/…`.
    pub http: String,
    /// `ws://host:port/ws`.
    pub ws: String,
}

/// Derives both addresses from `--url`: `http://host:port[/]` (a `ws://`
/// URL is taken too, with or without its `/ws`). `https://` / `wss://` are
/// refused: this client speaks plain TCP only.
pub fn endpoints(url: &str) -> Result<Endpoints, String> {
    let url = url.trim();
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if let Some(rest) = url.strip_prefix("ws://") {
        rest.strip_suffix("/ws").unwrap_or(rest)
    } else if url.starts_with("https://") || url.starts_with("wss://") {
        return Err(format!(
            "{url}: TLS is not supported by tern chat; use http:// (e.g. through a local tunnel)"
        ));
    } else {
        return Err(format!(
            "{url}: expected http://HOST:PORT, e.g. http://127.0.0.1:8080"
        ));
    };
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains(['/', '?', '#', ' ']) {
        return Err(format!(
            "{url}: expected http://HOST:PORT with no path, e.g. http://127.0.0.1:8080"
        ));
    }
    Ok(Endpoints {
        http: format!("http://{host}"),
        ws: format!("ws://{host}/ws"),
    })
}

/// Parses `250ms`, `3s`, `2m` or plain seconds; more than zero, at most an hour.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("{text:?}: expected e.g. 500ms, 3s, 2m or seconds");
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        _ => return Err(bad()),
    };
    match ms {
        Some(0) => Err("must be greater than 0".into()),
        Some(ms) if ms <= 3_600_000 => Ok(Duration::from_millis(ms)),
        _ => Err(format!("{text:?} is longer than an hour")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_become_http_and_ws_endpoints() {
        let e = endpoints("http://127.0.0.1:8080").unwrap();
        assert_eq!(e.http, "http://127.0.0.1:8080");
        assert_eq!(e.ws, "ws://127.0.0.1:8080/ws");
        assert_eq!(endpoints("http://h:1/").unwrap().ws, "ws://h:1/ws");
        assert_eq!(endpoints("ws://h:1/ws").unwrap().http, "http://h:1");
        assert_eq!(endpoints(" ws://h:1 ").unwrap().ws, "ws://h:1/ws");
        let tls = endpoints("https://chat.example").unwrap_err();
        assert!(tls.contains("TLS"), "{tls}");
        for bad in ["", "127.0.0.1:8080", "http://", "http://h/api", "ftp://h"] {
            assert!(endpoints(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn parse(args: &[&str]) -> Result<ChatArgs, clap::Error> {
        let argv = ["tern", "chat"].iter().chain(args);
        match crate::cli::try_parse_from(argv)?.command {
            crate::cli::Command::Chat(chat) => Ok(chat),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn flags_and_defaults() {
        let a = parse(&["--user", "alice", "--register", "--history", "5"]).unwrap();
        assert_eq!(a.user.as_deref(), Some("alice"));
        assert!(a.register && !a.password_stdin);
        assert_eq!(a.history, 5);
        assert_eq!(a.url, "http://127.0.0.1:8080");
        assert_eq!(a.typing_every, Duration::from_secs(3));
        assert_eq!(a.timeout, Duration::from_secs(10));
        let a = parse(&["--token", "jwt", "--typing-every", "500ms"]).unwrap();
        assert_eq!(a.token.as_deref(), Some("jwt"));
        assert_eq!(a.typing_every, Duration::from_millis(500));
        for bad in [
            &["--register"][..],
            &["--password-stdin"],
            &["--user", "a", "--history", "0"],
            &["--user", "a", "--history", "501"],
            &["--user", "a", "--timeout", "0s"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        for bad in ["", "0", "0ms", "1h", "-1s", "1.5s", "61m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}
