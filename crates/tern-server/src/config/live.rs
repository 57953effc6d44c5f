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

/// Keys a reload does not apply: changing them needs a restart. Each entry
/// is the dotted key and a function telling whether it differs.
type KeyCheck = (&'static str, fn(&Config, &Config) -> bool);

const RESTART_ONLY: &[KeyCheck] = &[
    ("http_addr", |a, b| a.http_addr != b.http_addr),
    ("tcp_addr", |a, b| a.tcp_addr != b.tcp_addr),
    ("data_dir", |a, b| a.data_dir != b.data_dir),
    ("database_url", |a, b| a.database_url != b.database_url),
    ("redis_url", |a, b| a.redis_url != b.redis_url),
    ("node_id", |a, b| a.node_id != b.node_id),
    ("jwt_secret", |a, b| a.jwt_secret != b.jwt_secret),
    ("auth.jwt_algorithm", |a, b| {
        a.auth.jwt_algorithm != b.auth.jwt_algorithm
    }),
    ("auth.jwt_public_key_file", |a, b| {
        a.auth.jwt_public_key_file != b.auth.jwt_public_key_file
    }),
    ("auth.max_concurrent_hashes", |a, b| {
        a.auth.max_concurrent_hashes != b.auth.max_concurrent_hashes
    }),
    ("store.max_connections", |a, b| {
        a.store.max_connections != b.store.max_connections
    }),
    // The writer task takes its batch size once, at start.
    ("store.batch_max", |a, b| {
        a.store.batch_max != b.store.batch_max
    }),
    ("store.queue_capacity", |a, b| {
        a.store.queue_capacity != b.store.queue_capacity
    }),
    ("log.format", |a, b| a.log.format != b.log.format),
    // The governor rate limiters are built once with their quotas.
    ("limits.connects_per_sec_per_ip", |a, b| {
        a.limits.connects_per_sec_per_ip != b.limits.connects_per_sec_per_ip
    }),
    ("limits.login_per_user_per_min", |a, b| {
        a.limits.login_per_user_per_min != b.limits.login_per_user_per_min
    }),
    ("limits.login_per_ip_per_min", |a, b| {
        a.limits.login_per_ip_per_min != b.limits.login_per_ip_per_min
    }),
    ("limits.limiter_sweep_ms", |a, b| {
        a.limits.limiter_sweep_ms != b.limits.limiter_sweep_ms
    }),
    // The webhook's client and queue are built once; whether it runs at all
    // is decided at start.
    ("push.webhook_url", |a, b| {
        a.push.webhook_url != b.push.webhook_url
    }),
    ("push.queue_capacity", |a, b| {
        a.push.queue_capacity != b.push.queue_capacity
    }),
];

/// The restart-only keys that differ between `old` and `new`.
pub fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
    RESTART_ONLY
        .iter()
        .filter(|(_, differs)| differs(old, new))
        .map(|(key, _)| *key)
        .collect()
}

/// `new` with every restart-only value taken from `old`: what a reload
/// actually puts in effect.
pub fn keep_restart_only(old: &Config, new: Config) -> Config {
    let limits = &old.limits;
    Config {
        http_addr: old.http_addr.clone(),
        tcp_addr: old.tcp_addr.clone(),
        data_dir: old.data_dir.clone(),
        database_url: old.database_url.clone(),
        redis_url: old.redis_url.clone(),
        node_id: old.node_id.clone(),
        jwt_secret: old.jwt_secret.clone(),
        auth: super::AuthConfig {
            jwt_algorithm: old.auth.jwt_algorithm.clone(),
            jwt_public_key_file: old.auth.jwt_public_key_file.clone(),
            max_concurrent_hashes: old.auth.max_concurrent_hashes,
            ..new.auth
        },
        store: old.store.clone(),
        log: super::LogConfig {
            format: old.log.format.clone(),
            ..new.log
        },
        limits: super::LimitsConfig {
            connects_per_sec_per_ip: limits.connects_per_sec_per_ip,
            login_per_user_per_min: limits.login_per_user_per_min,
            login_per_ip_per_min: limits.login_per_ip_per_min,
            limiter_sweep_ms: limits.limiter_sweep_ms,
            ..new.limits
        },
        push: super::PushConfig {
            webhook_url: old.push.webhook_url.clone(),
            queue_capacity: old.push.queue_capacity,
            ..new.push
        },
        moderation: new.moderation,
    }
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
    fn unchanged_config_needs_nothing() {
        let c = Config::default();
        assert!(restart_needed(&c, &c).is_empty());
        assert!(changed_keys(&c, &c).is_empty());
        assert_eq!(keep_restart_only(&c, c.clone()), c);
    }
}
