//! The worked example of `examples/python` run for real: classes generated
//! from `proto/tern.proto` with `grpc_tools.protoc`, then
//! `tern_tcp_client.py` sends a direct message over the TCP door to a
//! `tern-client` session on the same door, and is refused a bad token.
//! Without `python3`, `google.protobuf` or `grpc_tools` the tests say why and
//! pass, unless `CI` is set: then they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{token, TestServer};
use tern_client::{Client, ClientConfig, Push, PushStream};
use tokio::process::Command;

/// The repository root (this crate is `crates/tern-server`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A missing prerequisite: a skip on a developer's machine, a failure in CI.
fn missing(why: &str) {
    let install = "python3 -m pip install -r examples/python/requirements.txt";
    if std::env::var_os("CI").is_some() {
        panic!("{why} (CI is set, so this fails; {install})");
    }
    // Straight to stderr: the test harness captures `eprintln!`, and a skip
    // should be seen.
    let _ = writeln!(std::io::stderr(), "skipped: {why} ({install})");
}

/// Generates `tern_pb2.py` into a new temporary directory, or `None` (after
/// [`missing`]) when Python or its protobuf modules are not there.
async fn generated_classes() -> Option<tempfile::TempDir> {
    let probe = Command::new("python3")
        .args(["-c", "import google.protobuf, grpc_tools"])
        .output()
        .await;
    match probe {
        Err(e) => {
            missing(&format!("python3 cannot be run: {e}"));
            return None;
        }
        Ok(out) if !out.status.success() => {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err.trim().lines().last().unwrap_or_default();
            missing(&format!(
                "python3 lacks google.protobuf or grpc_tools: {last}"
            ));
            return None;
        }
        Ok(_) => {}
    }
    let dir = tempfile::tempdir().unwrap();
    let proto = repo().join("proto");
    let out = Command::new("python3")
        .args(["-m", "grpc_tools.protoc", "-I"])
        .arg(&proto)
        .arg(format!("--python_out={}", dir.path().display()))
        .arg(proto.join("tern.proto"))
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "protoc: {out:?}");
    assert!(dir.path().join("tern_pb2.py").exists());
    Some(dir)
}

/// Runs the example against the TCP door `tcp` (at most 30 s).
async fn run_example(classes: &Path, tcp: SocketAddr, token: &str, to: &str, text: &str) -> Output {
    let script = repo().join("examples/python/tern_tcp_client.py");
    let run = Command::new("python3")
        .arg(script)
        .args([
            "--host",
            &tcp.ip().to_string(),
            "--port",
            &tcp.port().to_string(),
        ])
        .args([to, text])
        .env("PYTHONPATH", classes)
        .env("TERN_TOKEN", token)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the example ran over 30 s")
        .unwrap()
}

async fn server() -> (TestServer, SocketAddr) {
    let s = TestServer::with(|c| c.tcp_addr = "127.0.0.1:0".into()).await;
    let tcp = s.server.as_ref().unwrap().tcp_addr.unwrap();
    (s, tcp)
}

/// The next message push, skipping presence and the like.
async fn next_msg(pushes: &mut PushStream) -> tern_client::tern_proto::Message {
    loop {
        let p = tokio::time::timeout(Duration::from_secs(5), pushes.recv())
            .await
            .expect("timed out waiting for the push")
            .expect("push stream ended");
        if let Push::Msg(m) = p {
            return m;
        }
    }
}

#[tokio::test]
async fn the_python_example_sends_a_direct_message_over_tcp() {
    let Some(classes) = generated_classes().await else {
        return;
    };
    let (s, tcp) = server().await;
    // bob listens on the TCP door too, through the Rust client library.
    let cfg = ClientConfig::new(format!("tcp://{tcp}"), token("bob"));
    let (_bob, mut pushes) = Client::connect(cfg).await.unwrap();

    let text = "hello from Python: ünïcödé ✓";
    let out = run_example(classes.path(), tcp, &token("alice"), "bob", text).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    let m = next_msg(&mut pushes).await;
    assert_eq!((m.body.as_str(), m.from.as_str()), (text, "alice"));
    assert!(stdout.contains("<- auth_ok:"), "{stdout}");
    assert!(
        stdout.contains(&format!("conv={} seq={} mid={}", m.conv, m.seq, m.mid)),
        "the ack's conv, seq and mid are printed: {stdout}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn the_python_example_exits_with_the_error_code_when_refused() {
    let Some(classes) = generated_classes().await else {
        return;
    };
    let (s, tcp) = server().await;
    let bad = common::token_with(
        serde_json::json!({"sub": "alice", "exp": common::now_s() + 3600}),
        "not-the-server-secret-0123456789",
    );
    let out = run_example(classes.path(), tcp, &bad, "bob", "never sent").await;
    // ERROR_CODE_UNAUTHORIZED = 2 in proto/tern.proto.
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ERROR_CODE_UNAUTHORIZED"), "{stdout}");
    assert!(stdout.contains("close: 4001"), "{stdout}");
    s.shutdown().await;
}
