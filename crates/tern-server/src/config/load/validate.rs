//! Validation of a loaded [`Config`]: every rule is checked and every
//! failure reported at once, so an operator fixes the file in one pass.

use std::net::SocketAddr;

use tracing_subscriber::EnvFilter;

use super::{ConfigError, Problem};
use crate::config::Config;

/// Algorithms accepted in `auth.jwt_algorithm`.
const JWT_ALGORITHMS: &[&str] = &["HS256", "EdDSA", "RS256"];
/// Shortest accepted HS256 secret, bytes.
const MIN_SECRET_BYTES: usize = 16;

/// Collects problems keyed by their dotted config key.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.to_owned(),
            message: message.into(),
        });
    }

    fn positive(&mut self, key: &str, value: u64) {
        if value == 0 {
            self.add(key, "must be greater than 0");
        }
    }
}

/// Checks every rule; `Err(ConfigError::Invalid)` lists all failures.
pub fn validate(config: &Config) -> Result<(), ConfigError> {
    let mut p = Problems::default();
    check_endpoints(config, &mut p);
    check_auth(config, &mut p);
    check_http(config, &mut p);
    check_cluster(config, &mut p);
    check_tls(config, &mut p);
    check_limits(config, &mut p);
    check_store_and_log(config, &mut p);
    check_push(config, &mut p);
    check_moderation(config, &mut p);
    check_tracing_and_admin(config, &mut p);
    if p.0.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid { problems: p.0 })
    }
}

fn check_endpoints(c: &Config, p: &mut Problems) {
    if c.http_addr.parse::<SocketAddr>().is_err() {
        p.add(
            "http_addr",
            format!("{:?} is not an IP:port address", c.http_addr),
        );
    }
    if c.tcp_addr != "off" && c.tcp_addr.parse::<SocketAddr>().is_err() {
        p.add(
            "tcp_addr",
            format!("{:?} is neither `off` nor an IP:port address", c.tcp_addr),
        );
    }
    if c.data_dir.is_empty() {
        p.add("data_dir", "must not be empty");
    }
    let db_ok = c.database_url.is_empty()
        || ["sqlite:", "postgres:", "postgresql:"]
            .iter()
            .any(|s| c.database_url.starts_with(s));
    if !db_ok {
        p.add(
            "database_url",
            "must start with sqlite:, postgres: or postgresql:",
        );
    }
    let redis_ok = c.redis_url.is_empty()
        || c.redis_url.starts_with("redis://")
        || c.redis_url.starts_with("rediss://");
    if !redis_ok {
        p.add("redis_url", "must start with redis:// or rediss://");
    }
    if !c.redis_url.is_empty() && c.effective_database_url().starts_with("sqlite:") {
        p.add(
            "redis_url",
            "cluster mode needs PostgreSQL: set database_url to postgres://… or unset redis_url",
        );
    }
}

fn check_auth(c: &Config, p: &mut Problems) {
    let a = &c.auth;
    if !JWT_ALGORITHMS.contains(&a.jwt_algorithm.as_str()) {
        p.add(
            "auth.jwt_algorithm",
            format!("{:?} is not one of HS256, EdDSA, RS256", a.jwt_algorithm),
        );
    }
    let public_key = matches!(a.jwt_algorithm.as_str(), "EdDSA" | "RS256");
    if public_key && a.jwt_public_key_file.is_empty() {
        p.add(
            "auth.jwt_public_key_file",
            format!("required with auth.jwt_algorithm = {:?}", a.jwt_algorithm),
        );
    } else if public_key {
        // Read and parsed here, so a missing or bad key is one clear line
        // and exit 64 before anything starts.
        let checked =
            crate::auth::token::check_public_key_file(&a.jwt_algorithm, &a.jwt_public_key_file);
        if let Err(reason) = checked {
            p.add("auth.jwt_public_key_file", reason);
        }
    }
    if !public_key && !a.jwt_public_key_file.is_empty() && a.jwt_algorithm == "HS256" {
        // Likely a forgotten `jwt_algorithm`: the key would be silently unused.
        p.add(
            "auth.jwt_public_key_file",
            "only used with auth.jwt_algorithm = \"EdDSA\" or \"RS256\"",
        );
    }
    if !c.jwt_secret.is_empty() && c.jwt_secret.len() < MIN_SECRET_BYTES {
        // Never echo the secret itself.
        p.add(
            "jwt_secret",
            format!(
                "must be at least {MIN_SECRET_BYTES} bytes (got {})",
                c.jwt_secret.len()
            ),
        );
    }
    p.positive("auth.token_ttl_s", a.token_ttl_s);
    p.positive("auth.max_concurrent_hashes", a.max_concurrent_hashes as u64);
    p.positive("auth.provision_batch_max", a.provision_batch_max as u64);
}

fn check_http(c: &Config, p: &mut Problems) {
    let h = &c.http;
    if let Err(e) = crate::http::client_ip::TrustedProxies::parse(&h.trusted_proxies) {
        p.add("http.trusted_proxies", e);
    }
    p.positive("http.header_read_timeout_ms", h.header_read_timeout_ms);
    // Socket timeouts of the gateway (they live in [limits]).
    p.positive("limits.write_timeout_ms", c.limits.write_timeout_ms);
    p.positive("limits.close_timeout_ms", c.limits.close_timeout_ms);
    for origin in &h.allowed_origins {
        let ok = origin == "*" || origin.starts_with("http://") || origin.starts_with("https://");
        if !ok {
            p.add(
                "http.allowed_origins",
                format!("{origin:?} is not \"*\" or an http:// or https:// origin"),
            );
        }
    }
}

fn check_tls(c: &Config, p: &mut Problems) {
    let t = &c.tls;
    match (t.cert_file.is_empty(), t.key_file.is_empty()) {
        (true, true) => {}
        (false, true) => p.add("tls.key_file", "required with tls.cert_file"),
        (true, false) => p.add("tls.cert_file", "required with tls.key_file"),
        (false, false) => {
            // Read here so a bad file is one clear line before anything binds.
            if let Err(e) = crate::tls::load_certified_key(&t.cert_file, &t.key_file) {
                p.add("tls.cert_file", e.to_string());
            }
        }
    }
}

fn check_cluster(c: &Config, p: &mut Problems) {
    let k = &c.cluster;
    if k.key_prefix.is_empty() || k.key_prefix.chars().any(|ch| ch.is_whitespace()) {
        p.add("cluster.key_prefix", "must be non-empty without spaces");
    }
    p.positive("cluster.heartbeat_ms", k.heartbeat_ms);
    p.positive("cluster.publish_queue", k.publish_queue as u64);
    p.positive("cluster.presence_flush_ms", k.presence_flush_ms);
    p.positive("cluster.barrier_timeout_ms", k.barrier_timeout_ms);
    if k.node_ttl_ms <= k.heartbeat_ms {
        p.add(
            "cluster.node_ttl_ms",
            format!(
                "must be greater than cluster.heartbeat_ms ({}), ideally 3 to 5 times it",
                k.heartbeat_ms
            ),
        );
    }
}

fn check_limits(c: &Config, p: &mut Problems) {
    let l = &c.limits;
    // `drain_timeout_ms` and `goaway_reconnect_ms` may be 0 (close at once,
    // reconnect at once); `max_presence_subs = 0` disables presence watching.
    // `heartbeat_ms = 0` means "derived from idle_timeout_ms".
    let must_be_positive: [(&str, u64); 15] = [
        ("limits.max_frame_bytes", l.max_frame_bytes as u64),
        ("limits.max_body_bytes", l.max_body_bytes as u64),
        ("limits.auth_timeout_ms", l.auth_timeout_ms),
        ("limits.idle_timeout_ms", l.idle_timeout_ms),
        ("limits.send_rate", u64::from(l.send_rate)),
        ("limits.send_burst", u64::from(l.send_burst)),
        ("limits.rate_abuse_limit", u64::from(l.rate_abuse_limit)),
        (
            "limits.outbound_queue_frames",
            l.outbound_queue_frames as u64,
        ),
        ("limits.outbound_queue_bytes", l.outbound_queue_bytes as u64),
        (
            "limits.max_sessions_per_user",
            l.max_sessions_per_user as u64,
        ),
        (
            "limits.max_connections_per_ip",
            u64::from(l.max_connections_per_ip),
        ),
        (
            "limits.connects_per_sec_per_ip",
            u64::from(l.connects_per_sec_per_ip),
        ),
        (
            "limits.login_per_user_per_min",
            u64::from(l.login_per_user_per_min),
        ),
        (
            "limits.login_per_ip_per_min",
            u64::from(l.login_per_ip_per_min),
        ),
        ("limits.limiter_sweep_ms", l.limiter_sweep_ms),
    ];
    for (key, value) in must_be_positive {
        p.positive(key, value);
    }
    if l.max_body_bytes > l.max_frame_bytes {
        p.add(
            "limits.max_body_bytes",
            format!(
                "{} exceeds limits.max_frame_bytes ({})",
                l.max_body_bytes, l.max_frame_bytes
            ),
        );
    }
    if l.outbound_queue_bytes < l.max_frame_bytes {
        p.add(
            "limits.outbound_queue_bytes",
            format!(
                "{} is less than limits.max_frame_bytes ({}): one full frame would close the session",
                l.outbound_queue_bytes, l.max_frame_bytes
            ),
        );
    }
    // Only an explicit value is checked: the derived one always fits.
    if l.heartbeat_ms > 0 && l.heartbeat_ms >= l.idle_timeout_ms {
        p.add(
            "limits.heartbeat_ms",
            format!(
                "{} must be less than limits.idle_timeout_ms ({})",
                l.heartbeat_ms, l.idle_timeout_ms
            ),
        );
    }
}

fn check_store_and_log(c: &Config, p: &mut Problems) {
    p.positive("store.max_connections", u64::from(c.store.max_connections));
    p.positive("store.op_timeout_ms", c.store.op_timeout_ms);
    p.positive("store.batch_max", c.store.batch_max as u64);
    p.positive("store.queue_capacity", c.store.queue_capacity as u64);
    p.positive("limits.listen_backlog", u64::from(c.limits.listen_backlog));
    p.positive("store.last_seen_flush_ms", c.store.last_seen_flush_ms);
    p.positive("store.sqlite_cache_kib", c.store.sqlite_cache_kib);
    p.positive(
        "store.sqlite_checkpoint_pages",
        u64::from(c.store.sqlite_checkpoint_pages),
    );
    if !matches!(c.log.format.as_str(), "text" | "json") {
        p.add(
            "log.format",
            format!("{:?} is not `text` or `json`", c.log.format),
        );
    }
    if let Err(e) = EnvFilter::try_new(&c.log.filter) {
        p.add(
            "log.filter",
            format!("{:?} is not a valid filter: {e}", c.log.filter),
        );
    }
}

fn check_moderation(c: &Config, p: &mut Problems) {
    if !matches!(c.moderation.action.as_str(), "reject" | "mask") {
        p.add(
            "moderation.action",
            format!("{:?} is not `reject` or `mask`", c.moderation.action),
        );
    }
}

fn check_push(c: &Config, p: &mut Problems) {
    let push = &c.push;
    let url = push.webhook_url.as_str();
    if url.starts_with("https://") {
        p.add(
            "push.webhook_url",
            "https webhooks need TLS support, not built yet",
        );
    } else if !url.is_empty() && !url.starts_with("http://") {
        p.add(
            "push.webhook_url",
            "webhook_url must be empty or start with http://",
        );
    } else if !url.is_empty() && !is_http_url(url) {
        p.add(
            "push.webhook_url",
            format!("{url:?} is not a valid http:// URL with a host"),
        );
    }
    // Checked even with the webhook off, so a bad value is caught before
    // someone turns it on.
    p.positive("push.batch_max", push.batch_max as u64);
    p.positive("push.queue_capacity", push.queue_capacity as u64);
    p.positive("push.timeout_ms", push.timeout_ms);
}

fn is_http_url(url: &str) -> bool {
    url.parse::<http::Uri>()
        .is_ok_and(|u| u.scheme_str() == Some("http") && u.host().is_some_and(|h| !h.is_empty()))
}

fn check_tracing_and_admin(c: &Config, p: &mut Problems) {
    let t = &c.tracing;
    let url = t.otlp_endpoint.as_str();
    if url.starts_with("https://") {
        p.add(
            "tracing.otlp_endpoint",
            "https is not supported: send to a collector on plain http:// (a local agent or sidecar)",
        );
    } else if !url.is_empty() && !is_http_url(url) {
        p.add(
            "tracing.otlp_endpoint",
            format!("{url:?} is not empty or an http:// URL with a host"),
        );
    }
    if !(0.0..=1.0).contains(&t.sample_ratio) {
        p.add(
            "tracing.sample_ratio",
            format!("{} is not between 0.0 and 1.0", t.sample_ratio),
        );
    }
    if t.service_name.trim().is_empty() {
        p.add("tracing.service_name", "must not be empty");
    }
    p.positive("admin.profile_max_seconds", c.admin.profile_max_seconds);
}
