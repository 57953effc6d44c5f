//! Process-level checks of what an operator sees at start: a bad key file
//! is one clear line and exit 64; logs name sessions as clients see them.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{token, Ws, SECRET};

fn tern() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tern"))
}

#[test]
fn a_missing_public_key_file_is_one_line_and_exit_64() {
    let dir = tempfile::tempdir().unwrap();
    let out = tern()
        .args(["serve", "--http", "127.0.0.1:0", "--tcp", "off", "--data"])
        .arg(dir.path())
        .env("TERN_AUTH_JWT_ALGORITHM", "EdDSA")
        .env("TERN_AUTH_JWT_PUBLIC_KEY_FILE", "/nonexistent/tern-key.pem")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("auth.jwt_public_key_file")
                && l.contains("/nonexistent/tern-key.pem")),
        "{stderr}"
    );
    // The OS error is said once, not twice.
    assert_eq!(stderr.matches("No such file").count(), 1, "{stderr}");

    // A file that is not a key is refused the same way.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a key").unwrap();
    let out = tern()
        .args(["serve", "--http", "127.0.0.1:0", "--tcp", "off", "--data"])
        .arg(dir.path())
        .env("TERN_AUTH_JWT_ALGORITHM", "RS256")
        .env("TERN_AUTH_JWT_PUBLIC_KEY_FILE", &junk)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a PEM RS256 public key"));
}

#[tokio::test]
async fn logs_name_the_session_as_the_client_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = tern()
        .args(["serve", "--http", &addr.to_string(), "--tcp", "off"])
        .args(["--jwt-secret", SECRET, "--data"])
        .arg(dir.path())
        .env("TERN_LOG_FORMAT", "json")
        .env("TERN_LOG_FILTER", "tern_server=debug")
        .env("TERN_HTTP_DRAIN_GRACE_MS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "no server");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut ws = Ws::open(&format!("ws://{addr}/ws"), Some(&token("alice"))).await;
    let ok = ws.recv().await;
    let session = ok["session"].as_str().unwrap().to_owned();
    assert!(session.starts_with("s-"), "{ok}");
    drop(ws);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert!(
        logs.contains(&format!("\"session\":\"{session}\"")),
        "no log line names {session}:\n{logs}"
    );
}
