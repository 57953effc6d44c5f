//! The configuration in effect right now: a [`Config`] swapped whole on
//! reload, plus the split of keys into those a reload applies and those that
//! only a restart can change.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use super::Config;

/// The current configuration, shared by every layer. Readers take a cheap
/// `Arc` snapshot once per operation, so one operation never sees half of a
/// reload.
#[derive(Debug)]
pub struct LiveConfig {
    current: RwLock<Arc<Config>>,
    /// Serializes reloads (read old → build → replace), so that two triggers
    /// at once cannot lose one's changes. Never taken by readers.
    updating: Mutex<()>,
}

impl LiveConfig {
    pub fn new(config: Arc<Config>) -> Self {
        Self {
            current: RwLock::new(config),
            updating: Mutex::new(()),
        }
    }

    /// The configuration in effect (the lock is not held after return).
    pub fn get(&self) -> Arc<Config> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Makes `new` the configuration in effect.
    pub fn replace(&self, new: Config) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
    }

    /// Held by whoever is reloading, from reading the old config to
    /// replacing it.
    pub fn lock_updates(&self) -> MutexGuard<'_, ()> {
        self.updating.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Keys a reload does not apply: changing them needs a restart. One list,
/// read by both [`restart_needed`] and [`keep_restart_only`], so the two can
/// never disagree.
pub const RESTART_ONLY: &[&str] = &[
    "http_addr",
    "tcp_addr",
    "data_dir",
    "database_url",
    "redis_url",
    "node_id",
    "jwt_secret",
    "auth.jwt_algorithm",
    "auth.jwt_public_key_file",
    "auth.max_concurrent_hashes",
    "auth.provision_batch_max",
    "auth.jwt_issuer",
    "auth.jwt_audience",
    // The listener and the address limits take these once, at start.
    "http.trusted_proxies",
    "http.header_read_timeout_ms",
    "http.max_connections",
    // The file names; their contents are read again on every reload.
    "tls.cert_file",
    "tls.key_file",
    // The cluster connection is set up once, at start.
    "cluster.key_prefix",
    "cluster.heartbeat_ms",
    "cluster.node_ttl_ms",
    "cluster.publish_queue",
    "cluster.presence_flush_ms",
    "store.max_connections",
    // The writer task takes its batch size once, at start.
    "store.batch_max",
    "store.op_timeout_ms",
    "store.queue_capacity",
    "store.last_seen_flush_ms",
    "store.sqlite_cache_kib",
    "store.sqlite_mmap_mib",
    "store.sqlite_checkpoint_pages",
    "store.sqlite_checkpoint_ms",
    "log.format",
    // The governor rate limiters are built once with their quotas.
    "limits.connects_per_sec_per_ip",
    "limits.login_per_user_per_min",
    "limits.login_per_ip_per_min",
    "limits.limiter_sweep_ms",
    "limits.listen_backlog",
    // The webhook's client and queue are built once; whether it runs at all
    // is decided at start.
    "push.webhook_url",
    "push.queue_capacity",
    // The tracer and its exporter are installed once, with the subscriber.
    "tracing.otlp_endpoint",
    "tracing.sample_ratio",
    "tracing.service_name",
];

/// The restart-only keys that differ between `old` and `new`.
pub fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
    let (Ok(old), Ok(new)) = (toml::Value::try_from(old), toml::Value::try_from(new)) else {
        return Vec::new();
    };
    RESTART_ONLY
        .iter()
        .filter(|key| lookup(&old, key) != lookup(&new, key))
        .copied()
        .collect()
}

/// `new` with every restart-only value taken from `old`: what a reload
/// actually puts in effect.
pub fn keep_restart_only(old: &Config, new: Config) -> Config {
    let (Ok(old_v), Ok(mut new_v)) = (toml::Value::try_from(old), toml::Value::try_from(&new))
    else {
        // Not expected: `Config` always serializes. Keep everything running.
        return old.clone();
    };
    for key in RESTART_ONLY {
        if let (Some(value), Some(slot)) = (lookup(&old_v, key), lookup_mut(&mut new_v, key)) {
            *slot = value.clone();
        }
    }
    new_v.try_into().unwrap_or_else(|_| old.clone())
}

fn lookup<'a>(value: &'a toml::Value, key: &str) -> Option<&'a toml::Value> {
    key.split('.').try_fold(value, |v, part| v.get(part))
}

fn lookup_mut<'a>(value: &'a mut toml::Value, key: &str) -> Option<&'a mut toml::Value> {
    key.split('.').try_fold(value, |v, part| v.get_mut(part))
}

/// Every dotted key whose value differs between `old` and `new`.
pub fn changed_keys(old: &Config, new: &Config) -> Vec<String> {
    let (Ok(old), Ok(new)) = (toml::Value::try_from(old), toml::Value::try_from(new)) else {
        // Not expected: `Config` always serializes. Say something anyway.
        return vec!["(unknown)".to_owned()];
    };
    let mut out = Vec::new();
    diff("", &old, &new, &mut out);
    out
}

fn diff(prefix: &str, old: &toml::Value, new: &toml::Value, out: &mut Vec<String>) {
    match (old, new) {
        (toml::Value::Table(a), toml::Value::Table(b)) => {
            for (key, value) in b {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match a.get(key) {
                    Some(before) => diff(&path, before, value, out),
                    None => out.push(path),
                }
            }
        }
        (a, b) if a != b => out.push(prefix.to_owned()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_only_keys_are_reported_and_kept() {
        let old = Config::default();
        let mut new = old.clone();
        new.http_addr = "127.0.0.1:9999".into();
        new.store.batch_max = 7;
        new.push.timeout_ms = 1;
        new.push.queue_capacity = 1;
        new.limits.max_body_bytes = 100;
        new.limits.login_per_ip_per_min = 3;
        new.moderation.banned_words = vec!["darn".into()];
        new.log.filter = "debug".into();
        new.auth.token_ttl_s = 60;
        let mut needed = restart_needed(&old, &new);
        needed.sort_unstable();
        assert_eq!(
            needed,
            [
                "http_addr",
                "limits.login_per_ip_per_min",
                "push.queue_capacity",
                "store.batch_max"
            ]
        );
        let applied = keep_restart_only(&old, new.clone());
        assert!(restart_needed(&old, &applied).is_empty());
        assert_eq!(applied.limits.max_body_bytes, 100);
        assert_eq!(applied.moderation.banned_words, ["darn"]);
        assert_eq!(applied.log.filter, "debug");
        assert_eq!(applied.auth.token_ttl_s, 60);
        assert_eq!(
            changed_keys(&old, &applied),
            [
                "auth.token_ttl_s",
                "limits.max_body_bytes",
                "log.filter",
                "moderation.banned_words",
                "push.timeout_ms"
            ]
        );
    }

    #[test]
    fn every_restart_only_key_exists_and_is_kept() {
        let defaults = toml::Value::try_from(Config::default()).unwrap();
        for key in RESTART_ONLY {
            assert!(lookup(&defaults, key).is_some(), "no config key {key}");
        }
        // Change every key at once: all are reported, none is applied.
        let old = Config::default();
        let mut new_v = defaults.clone();
        for key in RESTART_ONLY {
            let slot = lookup_mut(&mut new_v, key).unwrap();
            let changed = match &*slot {
                toml::Value::String(s) => toml::Value::String(format!("{s}x")),
                toml::Value::Integer(n) => toml::Value::Integer(n + 1),
                toml::Value::Boolean(b) => toml::Value::Boolean(!b),
                toml::Value::Float(f) => toml::Value::Float(f / 2.0),
                toml::Value::Array(items) => {
                    let mut items = items.clone();
                    items.push(toml::Value::String("10.0.0.0/8".into()));
                    toml::Value::Array(items)
                }
                other => other.clone(),
            };
            *slot = changed;
        }
        let new: Config = new_v.try_into().unwrap();
        assert_eq!(restart_needed(&old, &new).len(), RESTART_ONLY.len());
        assert_eq!(keep_restart_only(&old, new), old);
    }

    #[test]
    fn unchanged_config_needs_nothing() {
        let c = Config::default();
        assert!(restart_needed(&c, &c).is_empty());
        assert!(changed_keys(&c, &c).is_empty());
        assert_eq!(keep_restart_only(&c, c.clone()), c);
    }
}
