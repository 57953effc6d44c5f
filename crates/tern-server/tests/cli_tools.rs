//! Whole-binary tests of the operator tools: `tern token`, `tern user add`
//! and `tern config check`, run as processes on a temporary data directory,
//! with the results checked against an in-process server on the same data.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::json;
use tern_server::app::{self, RunningServer};
use tern_server::Config;

/// The `tern` binary with no inherited `TERN_*` variable (the developer's or
/// CI's must not change what is tested).
fn tern() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TERN_") {
            cmd.env_remove(name);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

/// Runs `cmd` with `input` on stdin (a pipe, so not a terminal).
fn run_with_stdin(cmd: &mut Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A server in this process on `data`, with the secret of `data/jwt.secret`.
async fn server_on(data: &Path) -> RunningServer {
    let mut cfg = Config {
        http_addr: "127.0.0.1:0".into(),
        tcp_addr: "off".into(),
        data_dir: data.to_string_lossy().into_owned(),
        ..Config::default()
    };
    cfg.http.drain_grace_ms = 0;
    app::start(cfg).await.unwrap()
}

#[tokio::test]
async fn token_verifies_with_the_data_dir_secret_and_admin_works() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = run(tern()
        .args([
            "token", "--user", "root1", "--admin", "--ttl", "2h", "--data",
        ])
        .arg(&data));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("generated a new JWT secret"));
    let admin = text(&out.stdout).trim().to_owned();

    // Signed with the secret generated into the data directory, as serve
    // would have generated it.
    let secret = std::fs::read_to_string(data.join("jwt.secret")).unwrap();
    let secret = secret.trim();
    assert_eq!(secret.len(), 64);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "sub"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        &admin,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["sub"], "root1");
    assert_eq!(claims["role"], "admin");
    let ttl = claims["exp"].as_i64().unwrap() - common::now_s();
    assert!((7100..=7200).contains(&ttl), "ttl {ttl}");

    // A second run reuses the secret; without --admin there is no role.
    let out = run(tern().args(["token", "--user", "bob", "--data"]).arg(&data));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    let plain = text(&out.stdout).trim().to_owned();

    let server = server_on(&data).await;
    let (status, body) = common::http(
        server.http_addr,
        "GET",
        "/api/v1/admin/stats",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["users"].is_number(), "{body}");
    let (status, _) = common::http(
        server.http_addr,
        "GET",
        "/api/v1/admin/stats",
        Some(&plain),
        None,
    )
    .await;
    assert_eq!(status, 403);
    server.shutdown().await;
}

#[test]
fn token_refuses_reserved_names_and_bad_input_with_64() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["token", "--user", "admin", "--admin"][..],
        &["token", "--user", "Bad Name"],
        &["token", "--user", "alice", "--ttl", "0"],
        &["token", "--user", "alice", "--ttl", "1y"],
        &["token", "--user", "alice", "--jwt-secret", "short"],
    ] {
        let out = run(tern().args(args).arg("--data").arg(dir.path()));
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = run(tern()
        .args(["token", "--user", "admin", "--data"])
        .arg(dir.path()));
    assert!(
        text(&out.stderr).contains("reserved"),
        "{}",
        text(&out.stderr)
    );
    // Nothing was generated for refused input.
    assert!(!dir.path().join("jwt.secret").exists());
}

#[tokio::test]
async fn user_add_then_login_works() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let add = |name: &str, input: &str| {
        run_with_stdin(
            tern().args(["user", "add", name, "--data"]).arg(&data),
            input,
        )
    };
    let out = add("carol", "correct-horse\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let out = add("carol", "another-password\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    for (name, input) in [
        ("dave", "short\n"),
        ("dave", ""),
        ("admin", "correct-horse\n"),
        ("Dave", "correct-horse\n"),
    ] {
        let out = add(name, input);
        assert_eq!(
            out.status.code(),
            Some(64),
            "{name} {input:?}: {}",
            text(&out.stderr)
        );
    }

    let server = server_on(&data).await;
    let login = |password: &'static str| {
        common::http(
            server.http_addr,
            "POST",
            "/api/v1/login",
            None,
            Some(json!({"username": "carol", "password": password})),
        )
    };
    let (status, body) = login("correct-horse").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"], "carol");
    assert!(body["token"].as_str().is_some_and(|t| !t.is_empty()));
    let (status, _) = login("another-password").await;
    assert_eq!(status, 401);
    let (status, _) = common::http(
        server.http_addr,
        "POST",
        "/api/v1/login",
        None,
        Some(json!({"username": "dave", "password": "short"})),
    )
    .await;
    assert_eq!(status, 401, "dave was not created");
    server.shutdown().await;
}

#[test]
fn config_check_prints_the_config_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tern.toml");
    std::fs::write(&file, "[limits]\nidle_timeout_ms = 10000\n").unwrap();
    let out = run(tern()
        .args(["config", "check", "--config"])
        .arg(&file)
        .args([
            "--jwt-secret",
            "very-secret-signing-key",
            "--http",
            "0.0.0.0:9000",
        ])
        .env(
            "TERN_DATABASE_URL",
            "postgres://tern:db-password@127.0.0.1/tern",
        )
        .env("TERN_LOG_FORMAT", "json"));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for secret in ["very-secret-signing-key", "db-password"] {
        assert!(!stdout.contains(secret), "{secret} printed:\n{stdout}");
    }
    // Valid TOML, with every layer merged (file, env, flags).
    let printed: toml::Value = toml::from_str(&stdout).unwrap();
    assert_eq!(printed["http_addr"].as_str(), Some("0.0.0.0:9000"));
    assert_eq!(printed["jwt_secret"].as_str(), Some("<redacted>"));
    assert_eq!(
        printed["database_url"].as_str(),
        Some("postgres://tern:***@127.0.0.1/tern")
    );
    assert_eq!(printed["log"]["format"].as_str(), Some("json"));
    assert_eq!(
        printed["limits"]["idle_timeout_ms"].as_integer(),
        Some(10_000)
    );
    // A short idle timeout alone is valid: the heartbeat is derived.
    assert!(stdout.contains("heartbeat in effect: 4000 ms"), "{stdout}");
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
}

#[test]
fn config_check_lists_every_problem_and_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(tern()
        .args(["config", "check", "--data"])
        .arg(dir.path())
        .env("TERN_LIMITS_MAX_FRAME_BYTES", "0")
        .env("TERN_LOG_FORMAT", "xml"));
    assert_eq!(out.status.code(), Some(64));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("limits.max_frame_bytes"), "{stderr}");
    assert!(stderr.contains("log.format"), "{stderr}");
    assert!(out.stdout.is_empty());

    let out = run(tern()
        .args(["config", "check", "--data"])
        .arg(dir.path())
        .env("TERN_LIMITS_SEND_RATE", "fast"));
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("TERN_LIMITS_SEND_RATE"));
}

#[test]
fn defaults_print_a_complete_example_equal_to_the_defaults() {
    let defaults = toml::Value::try_from(Config::default()).unwrap();
    for args in [
        &["config", "check", "--defaults"][..],
        &["config", "defaults"],
    ] {
        let out = run(tern().args(args));
        assert_eq!(out.status.code(), Some(0));
        let stdout = text(&out.stdout);
        assert!(stdout.starts_with('#'), "commented: {stdout}");
        let printed: toml::Value = toml::from_str(&stdout).unwrap();
        assert_eq!(printed, defaults, "{args:?}");
    }
}

#[test]
fn unknown_tern_variables_are_reported_by_check_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(tern()
        .args(["config", "check", "--data"])
        .arg(dir.path())
        .env("TERN_LIMITS_MAX_FRAME_BYTE", "1")
        .env("TERN_TEST_SOMETHING", "1"));
    assert_eq!(out.status.code(), Some(0), "a warning, not an error");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("TERN_LIMITS_MAX_FRAME_BYTE"), "{stderr}");
    assert!(!stderr.contains("TERN_TEST_SOMETHING"), "{stderr}");

    // `serve` logs a warning once logging is up.
    let mut child = tern()
        .args(["serve", "--http", "127.0.0.1:0", "--tcp", "off", "--data"])
        .arg(dir.path())
        .env("TERN_JWT_SECRTE", "typo")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let found = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.contains("TERN_JWT_SECRTE") => break Some(line),
            Ok(line) => seen.push(line),
            Err(_) => break None,
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let line = found.unwrap_or_else(|| panic!("no warning; stderr was:\n{}", seen.join("\n")));
    assert!(line.contains("WARN"), "{line}");
}
