//! Typed configuration: one struct per section, every field with its default.
//!
//! Loading (file, `TERN_*` environment, flags; precedence flag > env > file >
//! default) and validation live in [`load`]; the configuration in effect and
//! what a reload may change live in [`live`]; the reference for operators is
//! `docs/configuration.md`.

pub mod live;
pub mod load;

use serde::{Deserialize, Serialize};

/// The whole configuration of one `tern serve` process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP API + WebSocket listen address. Default `127.0.0.1:8080`.
    pub http_addr: String,
    /// Raw TCP gateway address, or `off`. Default `127.0.0.1:7070`.
    pub tcp_addr: String,
    /// Data directory (SQLite database, generated JWT secret). Default `./tern-data`.
    pub data_dir: String,
    /// Database URL; empty means `sqlite://<data_dir>/tern.db`.
    pub database_url: String,
    /// Redis URL of the cluster bus; empty means single node.
    pub redis_url: String,
    /// Node id in a cluster; empty means host name + random suffix.
    pub node_id: String,
    /// HS256 secret; empty means generated once into `<data_dir>/jwt.secret`.
    pub jwt_secret: String,
    pub auth: AuthConfig,
    pub http: HttpConfig,
    pub tls: TlsConfig,
    pub limits: LimitsConfig,
    pub store: StoreConfig,
    pub log: LogConfig,
    pub moderation: ModerationConfig,
    pub push: PushConfig,
    pub cluster: ClusterConfig,
    pub tracing: TracingConfig,
    pub admin: AdminConfig,
}

/// `[auth]`: tokens and accounts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Create unknown users on their first valid token. Default true.
    pub auto_provision: bool,
    /// Lifetime of tokens issued by `/login`, seconds. Default 86400.
    pub token_ttl_s: u64,
    /// `HS256` (default): only tokens signed with the server secret are
    /// accepted. `EdDSA` or `RS256`: tokens minted elsewhere with that
    /// algorithm are accepted too, checked with `jwt_public_key_file`.
    pub jwt_algorithm: String,
    /// PEM file of the public key for `EdDSA`/`RS256` tokens minted elsewhere.
    pub jwt_public_key_file: String,
    /// When set, every token must carry this `iss` (tokens issued here do).
    /// Default empty: not checked.
    pub jwt_issuer: String,
    /// When set, every token must carry this `aud` (tokens issued here do).
    /// Default empty: not checked.
    pub jwt_audience: String,
    /// Password hashes computed at once (Argon2id is CPU- and memory-heavy). Default 2.
    pub max_concurrent_hashes: usize,
    /// Most unknown users created by one store call when their first
    /// connects arrive together (auto-provisioning batches them). Default 512.
    pub provision_batch_max: usize,
}

/// `[http]`: the HTTP/WebSocket listener, proxies and browsers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Peers (CIDR blocks or single addresses) whose `X-Forwarded-For` /
    /// `Forwarded` headers name the real client. Default none: the socket's
    /// peer address is the client.
    pub trusted_proxies: Vec<String>,
    /// Time a connection gets to send a request's headers, counted from
    /// when the server waits for them: right after connecting, and after
    /// each response on a keep-alive connection (so it is also how long an
    /// idle keep-alive connection stays open), ms. Slower ones are closed.
    /// Default 10000.
    pub header_read_timeout_ms: u64,
    /// Open connections on the HTTP port (all of them: HTTP and WebSocket);
    /// one more is answered 503 and closed at once. 0 means the process's
    /// open-file limit minus 256. Default 0.
    pub max_connections: u32,
    /// How long a draining server keeps answering `/readyz` with 503 (and
    /// refusing upgrades with 503) before its listener closes, at least, ms;
    /// it stays open longer while sessions are still draining. Default 2000.
    pub drain_grace_ms: u64,
    /// Browser origins (`https://chat.example.com`) allowed to call the API
    /// (CORS) and to open WebSockets. Requests without an `Origin` header
    /// (non-browser clients) and same-origin requests are always allowed;
    /// `*` allows every origin. Default none.
    pub allowed_origins: Vec<String>,
}

/// `[tls]`: TLS on both doors (HTTP/WebSocket and raw TCP).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; with `key_file`, turns TLS on. Default empty:
    /// plain TCP. The files are read again on every reload.
    pub cert_file: String,
    /// PEM private key of the certificate. Default empty.
    pub key_file: String,
}

/// `[limits]`: every bound of the protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest frame / WebSocket message, bytes. Default 65536.
    pub max_frame_bytes: usize,
    /// Largest message body, UTF-8 bytes. Default 16384.
    pub max_body_bytes: usize,
    /// Time to authenticate after connecting, ms. Default 10000.
    pub auth_timeout_ms: u64,
    /// Close a connection silent for this long, ms. Default 60000.
    pub idle_timeout_ms: u64,
    /// Suggested client ping interval sent in `auth_ok`, ms; less than
    /// `idle_timeout_ms`. Default 0: derived, 40 % of `idle_timeout_ms`
    /// (see [`LimitsConfig::effective_heartbeat_ms`]).
    pub heartbeat_ms: u64,
    /// Sends per second per session (and per user over HTTP). Default 20.
    pub send_rate: u32,
    /// Burst of sends above the rate. Default 50.
    pub send_burst: u32,
    /// `rate_limited` errors within a minute before closing with 4008. Default 100.
    pub rate_abuse_limit: u32,
    /// Frames queued per session before it is closed as a slow consumer (4010). Default 1024.
    pub outbound_queue_frames: usize,
    /// Bytes queued per session before it is closed as a slow consumer. Default 4 MiB.
    pub outbound_queue_bytes: usize,
    /// Sessions one user may hold; one more closes the oldest (4011). Default 32.
    pub max_sessions_per_user: usize,
    /// How long a draining server waits for clients to leave, ms. Default 10000.
    pub drain_timeout_ms: u64,
    /// `reconnect_ms` suggested in `goaway`. Default 2000.
    pub goaway_reconnect_ms: u64,
    /// Time to write queued frames to a socket; a peer that takes longer is
    /// stalled and its connection dropped, ms. Default 10000.
    pub write_timeout_ms: u64,
    /// Time a closing connection gets for its last acks and frames and the
    /// WebSocket close handshake (our Close out, the peer's back), ms.
    /// Default 5000.
    pub close_timeout_ms: u64,
    /// Users one `presence_sub` may name, and one session may watch. Default 1000.
    pub max_presence_subs: usize,
    /// Members one group may have. Default 100000.
    pub max_group_members: usize,
    /// Concurrent WebSocket connections from one IP address (IPv6: one /64);
    /// one more is refused with 429. Default 2000.
    pub max_connections_per_ip: u32,
    /// New WebSocket connections per second from one IP address, with a
    /// burst of the same number; more are refused with 429. Default 200.
    pub connects_per_sec_per_ip: u32,
    /// Login attempts (successful or not) per minute for one username, with a
    /// burst of the same number; more get 429. Default 10.
    pub login_per_user_per_min: u32,
    /// Login attempts (successful or not) per minute from one IP address,
    /// with a burst of the same number; more get 429. Default 60.
    pub login_per_ip_per_min: u32,
    /// How often idle per-address and per-username limiter state is trimmed,
    /// ms. Default 60000.
    pub limiter_sweep_ms: u64,
    /// Connections the kernel queues before the server accepts them (capped
    /// by `net.core.somaxconn`). Default 4096.
    pub listen_backlog: u32,
}

/// `[store]`: database pool and the group-commit writer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Connections in the pool. Default 8.
    pub max_connections: u32,
    /// Longest wait for any one database operation (a commit, a history
    /// page, a login lookup), ms. A database that does not answer in time is
    /// `unavailable` to the caller instead of holding it for minutes of TCP
    /// retries. Default 5000.
    pub op_timeout_ms: u64,
    /// Most messages committed in one transaction. Default 512.
    pub batch_max: usize,
    /// Sends waiting for the writer; when full, new sends wait (the
    /// connection stops reading its socket). Default 20000.
    pub queue_capacity: usize,
    /// How often the last-seen times of users who came online or went
    /// offline are written (one statement for all of them), ms. Default 1000.
    pub last_seen_flush_ms: u64,
    /// SQLite page cache per connection, KiB. Default 16384.
    pub sqlite_cache_kib: u64,
    /// SQLite memory-mapped reads per connection, MiB (0 = off). Default 256.
    pub sqlite_mmap_mib: u64,
    /// SQLite copies its write-ahead log into the database file once the log
    /// holds this many 4 KiB pages. Default 10000.
    pub sqlite_checkpoint_pages: u32,
    /// SQLite: checkpoint the write-ahead log this often from a background
    /// task, ms (0: only the writer does, at `sqlite_checkpoint_pages`).
    /// Default 250.
    pub sqlite_checkpoint_ms: u64,
}

/// `[moderation]`: the banned-word filter on message bodies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModerationConfig {
    /// Banned words (matched case-insensitively). Default none.
    pub banned_words: Vec<String>,
    /// A file with one more banned word per line; empty means none.
    pub banned_words_file: String,
    /// `reject` (default: the send is refused) or `mask` (matches become `*`).
    pub action: String,
}

/// `[push]`: the offline push webhook (how an app forwards to FCM/APNs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// Where to POST offline-message events; empty disables the webhook.
    pub webhook_url: String,
    /// Include a body preview in events (never for `e2e`). Default true.
    pub include_body: bool,
    /// Longest body preview, characters. Default 100.
    pub preview_chars: usize,
    /// Most events in one POST. Default 100.
    pub batch_max: usize,
    /// How long to gather a batch before sending it, ms. Default 200.
    pub batch_delay_ms: u64,
    /// Events waiting to be sent; beyond it new events are dropped (and counted). Default 10000.
    pub queue_capacity: usize,
    /// Retries of a failed POST before its events are dropped. Default 5.
    pub max_retries: u32,
    /// First retry delay, doubled each time, ms. Default 500.
    pub retry_initial_ms: u64,
    /// Timeout of one POST, ms. Default 5000.
    pub timeout_ms: u64,
}

/// `[cluster]`: several nodes on one Redis (`redis_url`) and one PostgreSQL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Prefix of every Redis key and channel, so several clusters (or test
    /// runs) can share one Redis. Default `tern:`.
    pub key_prefix: String,
    /// How often a node refreshes its registry entry and presence set, ms.
    /// Default 2000.
    pub heartbeat_ms: u64,
    /// A node not heard from for this long is dead: it leaves the registry
    /// and its users' sessions there are forgotten, ms. Default 10000.
    pub node_ttl_ms: u64,
    /// Events waiting to be published to other nodes; beyond it they are
    /// dropped (counted) and every node is told to resync. Default 65536.
    pub publish_queue: usize,
    /// Presence changes are gathered this long and published together, ms.
    /// Default 50.
    pub presence_flush_ms: u64,
    /// A group change, ban or kick returns once every other node confirmed
    /// it, or after this long (a dead node not yet expired), ms. Default 1000.
    pub barrier_timeout_ms: u64,
    /// After lost cluster traffic, sessions are told to `resync` this long
    /// after the caches are rebuilt, once for every loss reported in the
    /// meantime (after an outage every node reports one), ms. Default 500.
    pub resync_delay_ms: u64,
}

/// `[tracing]`: OpenTelemetry traces of sends, HTTP requests and store
/// calls, exported over OTLP/HTTP (protobuf). Off unless `otlp_endpoint` is
/// set. Every key is restart-only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracingConfig {
    /// Base URL of an OTLP/HTTP collector (`http://127.0.0.1:4318`); spans
    /// are POSTed to `<endpoint>/v1/traces` (a URL already ending in
    /// `/v1/traces` is used as is). Plain `http://` only. Default empty:
    /// tracing off, and the spans cost nothing.
    pub otlp_endpoint: String,
    /// Fraction of new traces kept, 0.0 to 1.0 (a trace started elsewhere
    /// keeps its caller's decision). Default 1.0.
    pub sample_ratio: f64,
    /// `service.name` of the exported spans. Default `tern`.
    pub service_name: String,
}

/// `[admin]`: the operator endpoints under `/api/v1/admin`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Longest CPU profile `GET /api/v1/admin/debug/pprof/profile` records,
    /// seconds (its `seconds` parameter is capped to this). Default 30.
    pub profile_max_seconds: u64,
}

/// `[log]`: diagnostics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `tracing` env-filter directive. Default `info`.
    pub filter: String,
    /// `text` (default) or `json`.
    pub format: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http_addr: "127.0.0.1:8080".into(),
            tcp_addr: "127.0.0.1:7070".into(),
            data_dir: "./tern-data".into(),
            database_url: String::new(),
            redis_url: String::new(),
            node_id: String::new(),
            jwt_secret: String::new(),
            auth: AuthConfig::default(),
            http: HttpConfig::default(),
            tls: TlsConfig::default(),
            limits: LimitsConfig::default(),
            store: StoreConfig::default(),
            log: LogConfig::default(),
            moderation: ModerationConfig::default(),
            push: PushConfig::default(),
            cluster: ClusterConfig::default(),
            tracing: TracingConfig::default(),
            admin: AdminConfig::default(),
        }
    }
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: String::new(),
            sample_ratio: 1.0,
            service_name: "tern".into(),
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            profile_max_seconds: 30,
        }
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            key_prefix: "tern:".into(),
            heartbeat_ms: 2_000,
            node_ttl_ms: 10_000,
            publish_queue: 65_536,
            presence_flush_ms: 50,
            barrier_timeout_ms: 1000,
            resync_delay_ms: 500,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            auto_provision: true,
            token_ttl_s: 86_400,
            jwt_algorithm: "HS256".into(),
            jwt_public_key_file: String::new(),
            jwt_issuer: String::new(),
            jwt_audience: String::new(),
            max_concurrent_hashes: 2,
            provision_batch_max: 512,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            header_read_timeout_ms: 10_000,
            max_connections: 0,
            drain_grace_ms: 2_000,
            allowed_origins: Vec::new(),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_frame_bytes: 65_536,
            max_body_bytes: 16_384,
            auth_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            heartbeat_ms: 0,
            send_rate: 20,
            send_burst: 50,
            rate_abuse_limit: 100,
            outbound_queue_frames: 1024,
            outbound_queue_bytes: 4 << 20,
            max_sessions_per_user: 32,
            drain_timeout_ms: 10_000,
            goaway_reconnect_ms: 2_000,
            write_timeout_ms: 10_000,
            close_timeout_ms: 5_000,
            max_presence_subs: 1000,
            max_group_members: 100_000,
            max_connections_per_ip: 2000,
            connects_per_sec_per_ip: 200,
            login_per_user_per_min: 10,
            login_per_ip_per_min: 60,
            limiter_sweep_ms: 60_000,
            listen_backlog: 4096,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        // The database settings default to what the store itself defaults to.
        let db = tern_store::OpenOptions::default();
        Self {
            max_connections: db.max_connections,
            op_timeout_ms: 5_000,
            batch_max: 512,
            queue_capacity: 20_000,
            last_seen_flush_ms: 1000,
            sqlite_cache_kib: db.sqlite_cache_kib,
            sqlite_mmap_mib: db.sqlite_mmap_mib,
            sqlite_checkpoint_pages: db.sqlite_checkpoint_pages,
            sqlite_checkpoint_ms: db.sqlite_checkpoint_ms,
        }
    }
}

impl Default for ModerationConfig {
    fn default() -> Self {
        Self {
            banned_words: Vec::new(),
            banned_words_file: String::new(),
            action: "reject".into(),
        }
    }
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            webhook_url: String::new(),
            include_body: true,
            preview_chars: 100,
            batch_max: 100,
            batch_delay_ms: 200,
            queue_capacity: 10_000,
            max_retries: 5,
            retry_initial_ms: 500,
            timeout_ms: 5_000,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            format: "text".into(),
        }
    }
}

impl LimitsConfig {
    /// The ping interval in effect, sent in `auth_ok`: `heartbeat_ms` when
    /// set, else 40 % of `idle_timeout_ms` (at least 1 ms).
    pub fn effective_heartbeat_ms(&self) -> u64 {
        if self.heartbeat_ms > 0 {
            self.heartbeat_ms
        } else {
            (self.idle_timeout_ms.saturating_mul(2) / 5).max(1)
        }
    }
}

impl Config {
    /// The database URL in effect (the SQLite default spelled out).
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            let dir = self.data_dir.trim_end_matches('/');
            format!("sqlite://{dir}/tern.db")
        } else {
            self.database_url.clone()
        }
    }
}
