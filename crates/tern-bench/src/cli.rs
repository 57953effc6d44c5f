//! Command line (clap derive): global options and one subcommand per scenario.

use std::net::Ipv4Addr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

const LONG_ABOUT: &str = "\
Load tool of the tern messaging server.

The server's abuse limits throttle a benchmark: start it with raised limits, e.g.

  TERN_LIMITS_MAX_CONNECTIONS_PER_IP=1000000 \\
  TERN_LIMITS_CONNECTS_PER_SEC_PER_IP=1000000 \\
  TERN_LIMITS_SEND_RATE=1000000 TERN_LIMITS_SEND_BURST=1000000 \\
  TERN_LIMITS_IDLE_TIMEOUT_MS=600000 \\
  tern serve --http 127.0.0.1:8080 --jwt-secret \"$SECRET\"

(defaults: 2000 connections and 200 connects/s per IP, 20 sends/s with a
burst of 50 per session, 60 s idle timeout). Tokens are minted from the
server's HS256 secret (--jwt-secret): no registration is needed.
Every run is bounded in time (--deadline) and stops by itself.";

/// `tern-bench [OPTIONS] <SCENARIO> [SCENARIO OPTIONS]`
#[derive(Debug, Clone, Parser)]
#[command(name = "tern-bench", version, about = "Load tool of the tern messaging server", long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// Options shared by every scenario (also sent to worker processes, as
/// JSON).
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct Common {
    /// Server address (host:port of the HTTP/WebSocket listener). Repeat
    /// it (`--host a --host b`) or give a comma-separated list to spread
    /// the connections over several nodes: user i connects to host
    /// i mod the number of hosts.
    #[arg(
        long = "host",
        value_name = "HOST",
        global = true,
        default_value = "127.0.0.1:8080",
        env = "TERN_BENCH_HOST",
        value_delimiter = ','
    )]
    pub hosts: Vec<String>,
    /// The server's HS256 JWT secret; tokens are minted from it.
    #[arg(
        long,
        global = true,
        env = "TERN_JWT_SECRET",
        default_value = "",
        hide_env_values = true
    )]
    pub jwt_secret: String,
    /// Transport and codec of every scenario's connections: `ws`
    /// (WebSocket, JSON text frames; also `ws-json`), `ws-proto` (WebSocket,
    /// protobuf binary frames) or `tcp` (the raw TCP door: `TRN1`, then
    /// length-prefixed protobuf, at --tcp-host). HTTP calls (group set-up,
    /// admin stats) always go to --host.
    #[arg(long, global = true, value_enum, default_value_t = Transport::WsJson)]
    pub transport: Transport,
    /// Address of the server's TCP door (`tern serve --tcp`, default
    /// 127.0.0.1:7070) for --transport tcp: one per --host, in the same
    /// order (repeat it or give a comma-separated list). Default: each
    /// --host's host name with port 7070.
    #[arg(
        long = "tcp-host",
        value_name = "HOST:PORT",
        global = true,
        env = "TERN_BENCH_TCP_HOST",
        value_delimiter = ','
    )]
    pub tcp_hosts: Vec<String>,
    /// Run K worker processes, worker i binding its sockets to 127.0.0.(i+1)
    /// (to exceed one process's open-file limit and the per-IP limits).
    #[arg(long, global = true, default_value_t = 1)]
    pub procs: usize,
    /// Set in worker processes: this process is worker i of --procs.
    #[arg(skip)]
    pub worker_index: Option<usize>,
    /// The tern-bench executable started as worker process (default: this
    /// executable; tests set the binary's path).
    #[arg(skip)]
    pub worker_exe: Option<std::path::PathBuf>,
    /// Server process id: its RSS is read from /proc/<pid>/status. Without
    /// it, the RSS is read from GET /api/v1/admin/stats (field rss_kib) with
    /// a token minted for --admin-user with role admin.
    #[arg(long, global = true)]
    pub server_pid: Option<u32>,
    /// User of the minted admin token that reads /api/v1/admin/stats when
    /// --server-pid is not given.
    #[arg(long, global = true, default_value = "bench-admin")]
    pub admin_user: String,
    /// Print one JSON line per run instead of the table.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars.
    #[arg(long, global = true)]
    pub quiet: bool,
    /// Prefix of the user names the run uses.
    #[arg(long, global = true, default_value = "bench")]
    pub prefix: String,
    /// Timeout of each setup phase (connecting, group creation), seconds.
    #[arg(long, global = true, default_value_t = 60)]
    pub timeout: u64,
    /// Hard deadline of the whole run, seconds (default: the scenario's
    /// nominal time + 2 × --timeout).
    #[arg(long, global = true)]
    pub deadline: Option<u64>,
    /// Local address to bind sockets to (set per worker with --procs).
    #[arg(long, global = true)]
    pub source_ip: Option<Ipv4Addr>,
    /// Run `direct` or `fanout` against another broker instead of tern, at
    /// --peer-host, for side-by-side figures (scripts/bench-peers.sh):
    /// `mqtt0` / `mqtt1` (MQTT 3.1.1 at QoS 0 / QoS 1, e.g. mosquitto) or
    /// `nats` (core NATS). The tern options (--host, --jwt-secret,
    /// --transport, --procs) do not apply.
    #[arg(long, global = true, value_enum, requires = "peer_host")]
    #[serde(default)]
    pub peer: Option<Peer>,
    /// Address of the --peer broker.
    #[arg(long, global = true, value_name = "HOST:PORT")]
    #[serde(default)]
    pub peer_host: Option<String>,
}

impl Common {
    /// A default configuration for `host` (one address, or several
    /// separated by commas) and `secret` (used by tests).
    pub fn new(host: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            hosts: split_hosts(&host.into()),
            jwt_secret: secret.into(),
            transport: Transport::WsJson,
            tcp_hosts: Vec::new(),
            procs: 1,
            worker_index: None,
            worker_exe: None,
            server_pid: None,
            admin_user: "bench-admin".into(),
            json: true,
            quiet: true,
            prefix: "bench".into(),
            timeout: 30,
            deadline: None,
            source_ip: None,
            peer: None,
            peer_host: None,
        }
    }

    /// Checks the options that clap cannot check alone, before any
    /// connection: the message says what is wrong.
    pub fn check(&self, scenario: &Scenario) -> Result<(), String> {
        match self.peer {
            None if self.jwt_secret.is_empty() => {
                Err("--jwt-secret (or TERN_JWT_SECRET) is required".into())
            }
            None => Ok(()),
            Some(_) if !matches!(scenario, Scenario::Direct(_) | Scenario::Fanout(_)) => {
                Err(format!(
                    "--peer runs direct and fanout only, not {}",
                    scenario.name()
                ))
            }
            Some(_) if self.procs > 1 => Err("--peer runs in one process (no --procs)".into()),
            Some(_) => Ok(()),
        }
    }

    /// Whether progress bars are drawn.
    pub fn progress(&self) -> bool {
        !self.quiet && !self.json && self.worker_index.is_none()
    }

    pub fn setup_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout.max(1))
    }

    /// The hosts, trimmed, without empty entries (`a,,b ` is `a`, `b`).
    pub fn host_list(&self) -> Vec<String> {
        self.hosts.iter().flat_map(|h| split_hosts(h)).collect()
    }

    /// The TCP door of the `i`-th host `host`: the `i`-th --tcp-host, else
    /// `host`'s name with port [`DEFAULT_TCP_PORT`].
    pub fn tcp_host(&self, i: usize, host: &str) -> String {
        let given: Vec<String> = self.tcp_hosts.iter().flat_map(|h| split_hosts(h)).collect();
        if let Some(door) = given.get(i) {
            return door.clone();
        }
        let name = match host.rsplit_once(':') {
            // Not an IPv6 address without a port (`::1`).
            Some((name, port)) if port.parse::<u16>().is_ok() => name,
            _ => host,
        };
        format!("{name}:{DEFAULT_TCP_PORT}")
    }
}

/// `a,b` → `["a", "b"]`, trimmed, without empty entries.
pub fn split_hosts(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Port of the server's TCP door when --tcp-host does not say (the
/// default of `tern serve --tcp`).
pub const DEFAULT_TCP_PORT: u16 = 7070;

/// Transport and codec of the benchmark connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum Transport {
    /// WebSocket, JSON text frames.
    #[value(name = "ws", alias = "ws-json")]
    WsJson,
    /// WebSocket, protobuf binary frames.
    WsProto,
    /// Raw TCP door, length-prefixed protobuf.
    Tcp,
}

impl Transport {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::WsJson => "ws",
            Self::WsProto => "ws-proto",
            Self::Tcp => "tcp",
        }
    }
}

/// Another broker that `direct` and `fanout` can run against (`--peer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum Peer {
    /// MQTT 3.1.1, publish and subscribe at QoS 0 (no acknowledgement).
    Mqtt0,
    /// MQTT 3.1.1, publish and subscribe at QoS 1 (PUBACK).
    Mqtt1,
    /// Core NATS (no acknowledgement).
    Nats,
}

impl Peer {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mqtt0 => "mqtt0",
            Self::Mqtt1 => "mqtt1",
            Self::Nats => "nats",
        }
    }
}

#[derive(Debug, Clone, Subcommand, Serialize, Deserialize)]
pub enum Scenario {
    /// Open N authenticated connections, hold them; connect rate and server memory per connection.
    Idle(IdleArgs),
    /// Connection + authentication rate and latency.
    Connect(ConnectArgs),
    /// P sender→receiver pairs, W in flight each, for T seconds.
    Direct(DirectArgs),
    /// One group of M online members, S senders; deliveries/s, latency, lost, duplicated.
    Fanout(FanoutArgs),
    /// Connect/disconnect continuously; server RSS at start, during, after.
    Churn(ChurnArgs),
    /// Sync throughput over a long history (tern-client).
    History(HistoryArgs),
}

impl Scenario {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Idle(_) => "idle",
            Self::Connect(_) => "connect",
            Self::Direct(_) => "direct",
            Self::Fanout(_) => "fanout",
            Self::Churn(_) => "churn",
            Self::History(_) => "history",
        }
    }

    /// The scenario's nominal running time in seconds (without setup).
    pub fn nominal_secs(&self) -> u64 {
        match self {
            Self::Idle(a) => a.hold,
            Self::Connect(_) => 0,
            Self::Direct(a) => a.duration + a.grace,
            Self::Fanout(a) => a.grace,
            Self::Churn(a) => a.duration + a.settle,
            Self::History(_) => 0,
        }
    }

    /// This worker's share of the load (`--procs k`, worker `i`). Fanout
    /// splits its members in the scenario itself (see [`span`]).
    pub fn share(&self, k: usize, i: usize) -> Self {
        let part = |n: usize| span(n, k, i).len();
        let mut s = self.clone();
        match &mut s {
            Self::Idle(a) => a.count = part(a.count),
            Self::Connect(a) => {
                a.count = part(a.count);
                a.concurrency = part(a.concurrency).max(1);
            }
            Self::Direct(a) => a.pairs = part(a.pairs),
            Self::Churn(a) => a.concurrency = part(a.concurrency).max(1),
            Self::Fanout(_) | Self::History(_) => {}
        }
        s
    }
}

/// Worker `i`'s part of `0..n` split over `k` workers: contiguous runs,
/// the first `n % k` one longer.
pub fn span(n: usize, k: usize, i: usize) -> std::ops::Range<usize> {
    let k = k.max(1);
    let len = |j: usize| n / k + usize::from(j < n % k);
    let start = (0..i.min(k)).map(len).sum::<usize>();
    start..(start + if i < k { len(i) } else { 0 })
}

#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct IdleArgs {
    /// Connections to open (in total over all --procs).
    #[arg(long, short = 'n', default_value_t = 1000)]
    pub count: usize,
    /// Connections being opened at once (per process).
    #[arg(long, short = 'c', default_value_t = 200)]
    pub concurrency: usize,
    /// Seconds to hold the connections once all are open (the server's idle
    /// timeout must be longer).
    #[arg(long, default_value_t = 10)]
    pub hold: u64,
    /// Seconds to wait after connecting before reading the server's RSS.
    #[arg(long, default_value_t = 3)]
    pub settle: u64,
}

#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct ConnectArgs {
    /// Connections to open and close (in total).
    #[arg(long, short = 'n', default_value_t = 10_000)]
    pub count: usize,
    /// Connections being opened at once (in total).
    #[arg(long, short = 'c', default_value_t = 200)]
    pub concurrency: usize,
}

#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct DirectArgs {
    /// Sender→receiver pairs (in total).
    #[arg(long, short = 'p', default_value_t = 100)]
    pub pairs: usize,
    /// Messages in flight (sent, not acked) per pair.
    #[arg(long, short = 'w', default_value_t = 10)]
    pub window: usize,
    /// Seconds of sending.
    #[arg(long, short = 't', default_value_t = 10)]
    pub duration: u64,
    /// Seconds to wait for the last acks and deliveries.
    #[arg(long, default_value_t = 5)]
    pub grace: u64,
    /// Message body size in bytes (at least the timestamp).
    #[arg(long, default_value_t = 0)]
    pub body_bytes: usize,
}

#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct FanoutArgs {
    /// Online members of the group (senders excluded), in total: with
    /// --procs K each worker connects its share of them.
    #[arg(long, short = 'm', default_value_t = 1000)]
    pub members: usize,
    /// Messages per sender.
    #[arg(long, short = 'n', default_value_t = 200)]
    pub messages: usize,
    /// Senders (members of the group too).
    #[arg(long, default_value_t = 1)]
    pub senders: usize,
    /// Target rate in messages/s over all senders (0: flat out).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Messages in flight per sender.
    #[arg(long, short = 'w', default_value_t = 50)]
    pub window: usize,
    /// Seconds to wait for the deliveries after the last ack (the sending
    /// phase itself is bounded by --timeout).
    #[arg(long, default_value_t = 10)]
    pub grace: u64,
}

#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct ChurnArgs {
    /// Seconds of churn.
    #[arg(long, short = 't', default_value_t = 60)]
    pub duration: u64,
    /// Connect/disconnect loops running at once (in total).
    #[arg(long, short = 'c', default_value_t = 50)]
    pub concurrency: usize,
    /// Milliseconds each connection stays open.
    #[arg(long, default_value_t = 0)]
    pub hold_ms: u64,
    /// Seconds to wait after the churn before reading the server's RSS.
    #[arg(long, default_value_t = 3)]
    pub settle: u64,
    /// Seconds of churn before the reference RSS is read: one-time growth
    /// (allocator caches, runtime and database warm-up) is not a leak. The
    /// RSS before any churn is reported too. At most the churn's duration.
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
}

#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct HistoryArgs {
    /// Messages in the history.
    #[arg(long, short = 'n', default_value_t = 20_000)]
    pub messages: usize,
    /// Messages in flight while filling the history.
    #[arg(long, short = 'w', default_value_t = 50)]
    pub window: usize,
    /// Page size of the sync requests (the server clamps at 500).
    #[arg(long, default_value_t = 500)]
    pub page: u32,
    /// Times to read the whole history.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use clap::Parser;

    use super::{Cli, Common};

    fn hosts(args: &[&str]) -> Vec<String> {
        let mut argv = vec!["tern-bench"];
        argv.extend_from_slice(args);
        argv.push("connect");
        Cli::try_parse_from(argv).unwrap().common.host_list()
    }

    // One test: it sets TERN_BENCH_HOST, which the other cases must not see.
    #[test]
    fn several_hosts() {
        assert_eq!(hosts(&["--host", "a:1"]), ["a:1"]);
        assert_eq!(hosts(&["--host", "a:1", "--host", "b:2"]), ["a:1", "b:2"]);
        assert_eq!(hosts(&["--host", "a:1,b:2,c:3"]), ["a:1", "b:2", "c:3"]);
        assert_eq!(
            hosts(&["--host", "a:1,b:2", "--host", "c:3"]),
            ["a:1", "b:2", "c:3"]
        );
        assert_eq!(Common::new("x:1, y:2", "s").host_list(), ["x:1", "y:2"]);
        std::env::set_var("TERN_BENCH_HOST", "e:1,f:2");
        let from_env = hosts(&[]);
        let explicit = hosts(&["--host", "g:3"]);
        std::env::remove_var("TERN_BENCH_HOST");
        assert_eq!(from_env, ["e:1", "f:2"]);
        assert_eq!(explicit, ["g:3"]);
        assert_eq!(hosts(&[]), ["127.0.0.1:8080"]);
    }

    #[test]
    fn peers_need_an_address_and_no_secret() {
        use super::{Peer, Scenario};
        let parse = |args: &[&str]| {
            let mut argv = vec!["tern-bench"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv)
        };
        assert!(parse(&["--peer", "nats", "direct"]).is_err());
        let cli = parse(&["--peer", "mqtt1", "--peer-host", "127.0.0.1:1", "direct"]).unwrap();
        assert_eq!(cli.common.peer, Some(Peer::Mqtt1));
        assert_eq!(cli.common.check(&cli.scenario), Ok(()));
        let cli = parse(&["--peer", "mqtt0", "--peer-host", "h:1", "fanout"]).unwrap();
        assert_eq!(cli.common.check(&cli.scenario), Ok(()));
        let cli = parse(&["--peer", "nats", "--peer-host", "h:1", "idle"]).unwrap();
        assert!(cli.common.check(&cli.scenario).is_err());
        let cli = parse(&["--peer=nats", "--peer-host=h:1", "--procs=2", "direct"]).unwrap();
        assert!(cli.common.check(&cli.scenario).is_err());
        // tern itself still needs its secret.
        let cli = parse(&["direct"]).unwrap();
        assert!(matches!(cli.scenario, Scenario::Direct(_)));
        if std::env::var_os("TERN_JWT_SECRET").is_none() {
            assert!(cli.common.check(&cli.scenario).is_err());
        }
    }

    #[test]
    fn transports_and_tcp_doors() {
        use super::Transport;
        let parse = |args: &[&str]| {
            let mut argv = vec!["tern-bench"];
            argv.extend_from_slice(args);
            argv.push("connect");
            Cli::try_parse_from(argv).unwrap().common
        };
        for (arg, want) in [
            ("ws", Transport::WsJson),
            ("ws-json", Transport::WsJson),
            ("ws-proto", Transport::WsProto),
            ("tcp", Transport::Tcp),
        ] {
            assert_eq!(parse(&["--transport", arg]).transport, want);
        }
        let c = parse(&["--host", "a:1,b:2", "--tcp-host", "a:9"]);
        assert_eq!(c.tcp_host(0, "a:1"), "a:9");
        assert_eq!(c.tcp_host(1, "b:2"), "b:7070");
        assert_eq!(Common::new("x", "s").tcp_host(0, "[::1]:80"), "[::1]:7070");
        assert_eq!(
            Common::new("x", "s").tcp_host(0, "localhost"),
            "localhost:7070"
        );
    }
}
