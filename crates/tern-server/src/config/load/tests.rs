//! Tests of the loader: precedence, strictness, env parsing, every
//! validation rule, and the checked-in example file and docs.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;

use super::env::leaves;
use super::*;
use crate::config::{AuthConfig, LimitsConfig, LogConfig};

const EXAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tern.example.toml"
));
const DOCS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/configuration.md"
));

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn load_str(
    args: &ServeArgs,
    file: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    load_from(args, file.map(|t| (Path::new("tern.toml"), t)), env)
}

const FILE: &str = "http_addr = \"127.0.0.1:1001\"\n[limits]\nmax_frame_bytes = 100001\n";

#[test]
fn defaults_validate_and_load_without_sources() {
    Config::default().validate().unwrap();
    assert_eq!(
        load_str(&ServeArgs::default(), None, &no_env).unwrap(),
        Config::default()
    );
}

#[test]
fn file_beats_default_and_keeps_other_keys() {
    let c = load_str(&ServeArgs::default(), Some(FILE), &no_env).unwrap();
    assert_eq!(c.http_addr, "127.0.0.1:1001");
    assert_eq!(c.limits.max_frame_bytes, 100_001);
    assert_eq!(
        c.limits.max_body_bytes,
        Config::default().limits.max_body_bytes
    );
    assert_eq!(c.tcp_addr, Config::default().tcp_addr);
}

#[test]
fn env_beats_file_and_flag_beats_env() {
    let env = env_of(&[
        ("TERN_HTTP_ADDR", "127.0.0.1:2002"),
        ("TERN_LIMITS_MAX_FRAME_BYTES", "200002"),
        ("TERN_AUTH_AUTO_PROVISION", "0"),
    ]);
    let c = load_str(&ServeArgs::default(), Some(FILE), &env).unwrap();
    assert_eq!(c.http_addr, "127.0.0.1:2002");
    assert_eq!(c.limits.max_frame_bytes, 200_002);
    assert!(!c.auth.auto_provision);

    let args = ServeArgs {
        http: Some("127.0.0.1:3003".into()),
        ..ServeArgs::default()
    };
    let c = load_str(&args, Some(FILE), &env).unwrap();
    assert_eq!(c.http_addr, "127.0.0.1:3003");
    assert_eq!(c.limits.max_frame_bytes, 200_002);
}

#[test]
fn every_flag_lands_in_its_key() {
    let args = ServeArgs {
        config: None,
        http: Some("0.0.0.0:1".into()),
        tcp: Some("off".into()),
        data: Some("/d".into()),
        database_url: Some("postgres://h/db".into()),
        redis_url: Some("redis://r".into()),
        node_id: Some("n7".into()),
        jwt_secret: Some("0123456789abcdef".into()),
        // TLS flags need real files; the TLS tests cover them.
        tls_cert: None,
        tls_key: None,
    };
    let c = load_str(&args, None, &no_env).unwrap();
    assert_eq!(
        (
            c.http_addr.as_str(),
            c.tcp_addr.as_str(),
            c.data_dir.as_str()
        ),
        ("0.0.0.0:1", "off", "/d")
    );
    assert_eq!(
        (
            c.database_url.as_str(),
            c.redis_url.as_str(),
            c.node_id.as_str()
        ),
        ("postgres://h/db", "redis://r", "n7")
    );
    assert_eq!(c.jwt_secret, "0123456789abcdef");
}

#[test]
fn unknown_key_is_rejected_with_its_name() {
    for text in [
        "htp_addr = \"x\"",
        "[limits]\nmax_frame = 1",
        "[nope]\na = 1",
    ] {
        let err = load_str(&ServeArgs::default(), Some(text), &no_env).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("tern.toml"), "{err}");
    }
    let err = load_str(
        &ServeArgs::default(),
        Some("[limits]\nmax_frame = 1"),
        &no_env,
    )
    .unwrap_err();
    assert!(err.to_string().contains("max_frame"), "{err}");
}

#[test]
fn wrong_type_in_file_is_rejected() {
    let err = load_str(
        &ServeArgs::default(),
        Some("[limits]\nmax_frame_bytes = \"big\""),
        &no_env,
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
}

#[test]
fn missing_file_is_an_error() {
    let args = ServeArgs {
        config: Some("/nonexistent/tern.toml".into()),
        ..ServeArgs::default()
    };
    let err = load(&args).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/tern.toml"), "{err}");
}

#[test]
fn bad_env_value_names_the_variable() {
    let cases = [
        ("TERN_LIMITS_MAX_FRAME_BYTES", "lots"),
        ("TERN_LIMITS_HEARTBEAT_MS", "-5"),
        ("TERN_STORE_MAX_CONNECTIONS", "99999999999"),
        ("TERN_AUTH_AUTO_PROVISION", "yes please"),
    ];
    for (var, value) in cases {
        let err = load_str(&ServeArgs::default(), None, &env_of(&[(var, value)])).unwrap_err();
        match &err {
            ConfigError::Env { var: v, .. } => assert_eq!(v, var),
            other => panic!("{var}: expected Env error, got {other}"),
        }
        assert!(err.to_string().contains(var), "{err}");
    }
}

#[test]
fn env_parses_by_type_of_default() {
    let env = env_of(&[
        ("TERN_AUTH_AUTO_PROVISION", "FALSE"),
        ("TERN_STORE_BATCH_MAX", " 64 "),
        ("TERN_LOG_FILTER", "warn,tern_server=debug"),
        ("TERN_LOG_FORMAT", "json"),
        ("TERN_TCP_ADDR", "off"),
    ]);
    let c = load_str(&ServeArgs::default(), None, &env).unwrap();
    assert!(!c.auth.auto_provision);
    assert_eq!(c.store.batch_max, 64);
    assert_eq!(c.log.filter, "warn,tern_server=debug");
    assert_eq!(c.log.format, "json");
    assert_eq!(c.tcp_addr, "off");
}

#[test]
fn env_var_names_are_unique_and_match_the_protocol() {
    let defaults = toml::Value::try_from(Config::default()).unwrap();
    let mut names: Vec<String> = leaves(&defaults)
        .iter()
        .map(|(p, _)| env_var_name(&p.iter().map(String::as_str).collect::<Vec<_>>()))
        .collect();
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count);
    for var in [
        "TERN_HTTP_ADDR",
        "TERN_TCP_ADDR",
        "TERN_DATA_DIR",
        "TERN_DATABASE_URL",
        "TERN_REDIS_URL",
        "TERN_NODE_ID",
        "TERN_JWT_SECRET",
        "TERN_LIMITS_MAX_FRAME_BYTES",
        "TERN_AUTH_AUTO_PROVISION",
        "TERN_STORE_BATCH_MAX",
        "TERN_LOG_FILTER",
        "TERN_LOG_FORMAT",
    ] {
        assert!(names.iter().any(|n| n == var), "{var} missing");
    }
}

/// Asserts that `edit` applied to the defaults yields a problem on `key`.
fn assert_problem(key: &str, edit: impl FnOnce(&mut Config)) {
    let mut c = Config::default();
    edit(&mut c);
    match validate(&c) {
        Err(ConfigError::Invalid { problems }) => assert!(
            problems.iter().any(|p| p.key == key),
            "no problem on {key}: {problems:?}"
        ),
        other => panic!("expected a problem on {key}, got {other:?}"),
    }
}

#[test]
fn every_validation_rule_fires() {
    assert_problem("http_addr", |c| c.http_addr = "localhost".into());
    assert_problem("tcp_addr", |c| c.tcp_addr = "of".into());
    assert_problem("data_dir", |c| c.data_dir.clear());
    assert_problem("database_url", |c| c.database_url = "mysql://x".into());
    assert_problem("redis_url", |c| {
        c.database_url = "postgres://h/db".into();
        c.redis_url = "http://r".into();
    });
    assert_problem("redis_url", |c| c.redis_url = "redis://r".into()); // with SQLite
    assert_problem("auth.jwt_algorithm", |c| {
        c.auth.jwt_algorithm = "none".into()
    });
    assert_problem("auth.jwt_public_key_file", |c| {
        c.auth.jwt_algorithm = "EdDSA".into()
    });
    assert_problem("auth.jwt_public_key_file", |c| {
        c.auth.jwt_algorithm = "RS256".into()
    });
    assert_problem("auth.jwt_public_key_file", |c| {
        c.auth.jwt_public_key_file = "k.pem".into()
    });
    assert_problem("jwt_secret", |c| c.jwt_secret = "short".into());
    assert_problem("auth.token_ttl_s", |c| c.auth.token_ttl_s = 0);
    assert_problem("auth.max_concurrent_hashes", |c| {
        c.auth.max_concurrent_hashes = 0
    });
    assert_problem("limits.max_frame_bytes", |c| c.limits.max_frame_bytes = 0);
    assert_problem("limits.max_body_bytes", |c| c.limits.max_body_bytes = 0);
    assert_problem("limits.max_body_bytes", |c| {
        c.limits.max_body_bytes = 70_000
    });
    assert_problem("limits.auth_timeout_ms", |c| c.limits.auth_timeout_ms = 0);
    assert_problem("limits.idle_timeout_ms", |c| c.limits.idle_timeout_ms = 0);
    assert_problem("limits.heartbeat_ms", |c| c.limits.heartbeat_ms = 60_000);
    assert_problem("limits.send_rate", |c| c.limits.send_rate = 0);
    assert_problem("limits.send_burst", |c| c.limits.send_burst = 0);
    assert_problem("limits.rate_abuse_limit", |c| c.limits.rate_abuse_limit = 0);
    assert_problem("limits.outbound_queue_frames", |c| {
        c.limits.outbound_queue_frames = 0
    });
    assert_problem("limits.outbound_queue_bytes", |c| {
        c.limits.outbound_queue_bytes = 0
    });
    assert_problem("limits.outbound_queue_bytes", |c| {
        c.limits.outbound_queue_bytes = 1000
    });
    assert_problem("limits.max_sessions_per_user", |c| {
        c.limits.max_sessions_per_user = 0
    });
    assert_problem("limits.max_connections_per_ip", |c| {
        c.limits.max_connections_per_ip = 0
    });
    assert_problem("limits.connects_per_sec_per_ip", |c| {
        c.limits.connects_per_sec_per_ip = 0
    });
    assert_problem("limits.login_per_user_per_min", |c| {
        c.limits.login_per_user_per_min = 0
    });
    assert_problem("limits.login_per_ip_per_min", |c| {
        c.limits.login_per_ip_per_min = 0
    });
    assert_problem("limits.limiter_sweep_ms", |c| c.limits.limiter_sweep_ms = 0);
    assert_problem("store.max_connections", |c| c.store.max_connections = 0);
    assert_problem("store.batch_max", |c| c.store.batch_max = 0);
    assert_problem("store.queue_capacity", |c| c.store.queue_capacity = 0);
    assert_problem("log.format", |c| c.log.format = "xml".into());
    assert_problem("log.filter", |c| c.log.filter = "tern=loud".into());
}

#[test]
fn valid_variants_pass() {
    let d = Config::default();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("pub.pem");
    std::fs::write(
        &key,
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAwA9DHK9yxpiGLp3yiB8mBQnk2eBna9EO3Ts0oah2BPY=\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let c = Config {
        tcp_addr: "off".into(),
        http_addr: "[::1]:80".into(),
        database_url: "postgresql://h/db".into(),
        redis_url: "rediss://r:6380".into(),
        jwt_secret: "0123456789abcdef".into(),
        auth: AuthConfig {
            jwt_algorithm: "EdDSA".into(),
            jwt_public_key_file: key.to_string_lossy().into_owned(),
            ..d.auth.clone()
        },
        limits: LimitsConfig {
            drain_timeout_ms: 0,
            ..d.limits.clone()
        },
        log: LogConfig {
            format: "json".into(),
            ..d.log.clone()
        },
        ..d
    };
    c.validate().unwrap();
}

#[test]
fn all_problems_are_listed_at_once() {
    let mut c = Config {
        http_addr: "nope".into(),
        ..Config::default()
    };
    c.limits.send_rate = 0;
    c.log.format = "xml".into();
    let err = c.validate().unwrap_err();
    let ConfigError::Invalid { problems } = &err else {
        panic!("{err}")
    };
    assert_eq!(problems.len(), 3, "{err}");
    let text = err.to_string();
    for key in ["http_addr", "limits.send_rate", "log.format"] {
        assert!(text.contains(key), "{err}");
    }
}

#[test]
fn example_file_has_every_key_with_its_default() {
    let c = load_str(&ServeArgs::default(), Some(EXAMPLE), &no_env).unwrap();
    assert_eq!(c, Config::default());
    let example: toml::Value = toml::from_str(EXAMPLE).unwrap();
    assert_eq!(example, toml::Value::try_from(Config::default()).unwrap());
}

#[test]
fn docs_mention_every_key_and_variable() {
    let defaults = toml::Value::try_from(Config::default()).unwrap();
    for (path, _) in leaves(&defaults) {
        let parts: Vec<&str> = path.iter().map(String::as_str).collect();
        let var = env_var_name(&parts);
        let key = path.join(".");
        assert!(DOCS.contains(&format!("`{key}`")), "docs lack `{key}`");
        assert!(DOCS.contains(&format!("`{var}`")), "docs lack `{var}`");
    }
}

#[test]
fn heartbeat_is_derived_from_the_idle_timeout_unless_set() {
    // A short idle timeout alone must load (it used to fail against a fixed
    // 25 s heartbeat).
    let env = env_of(&[("TERN_LIMITS_IDLE_TIMEOUT_MS", "10000")]);
    let c = load_str(&ServeArgs::default(), None, &env).unwrap();
    assert_eq!(c.limits.heartbeat_ms, 0);
    assert_eq!(c.limits.effective_heartbeat_ms(), 4000);
    assert_eq!(Config::default().limits.effective_heartbeat_ms(), 24_000);
    let tiny = LimitsConfig {
        idle_timeout_ms: 1,
        ..LimitsConfig::default()
    };
    assert_eq!(tiny.effective_heartbeat_ms(), 1);

    // An explicit value is used as is, and checked.
    let env = env_of(&[
        ("TERN_LIMITS_IDLE_TIMEOUT_MS", "10000"),
        ("TERN_LIMITS_HEARTBEAT_MS", "3000"),
    ]);
    let c = load_str(&ServeArgs::default(), None, &env).unwrap();
    assert_eq!(c.limits.effective_heartbeat_ms(), 3000);
    let env = env_of(&[
        ("TERN_LIMITS_IDLE_TIMEOUT_MS", "10000"),
        ("TERN_LIMITS_HEARTBEAT_MS", "25000"),
    ]);
    let err = load_str(&ServeArgs::default(), None, &env).unwrap_err();
    assert!(err.to_string().contains("limits.heartbeat_ms"), "{err}");
}

#[test]
fn unknown_tern_variables_are_found() {
    let names = [
        "TERN_LIMITS_MAX_FRAME_BYTE", // typo
        "TERN_HTTP_ADDR",
        "TERN_CONFIG",
        "TERN_TOKEN", // tern chat's, not a typo
        "TERN_TEST_POSTGRES_URL",
        "TERN_BENCH_HOST",
        "HOME",
        "TERN_JWT_SECRETS", // typo
        "TERN_HTTP_ADDR",
    ]
    .map(String::from);
    assert_eq!(
        unrecognized_among(names),
        ["TERN_JWT_SECRETS", "TERN_LIMITS_MAX_FRAME_BYTE"]
    );
}
