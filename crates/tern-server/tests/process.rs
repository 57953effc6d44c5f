//! Process-level tests of the built `tern` binary: an acknowledged message
//! survives `kill -9`, and SIGTERM drains (goaway, close 1001, exit 0).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{token, Ws, SECRET};
use futures_util::SinkExt;
use serde_json::json;

struct Proc {
    child: Child,
    addr: std::net::SocketAddr,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn spawn(data: &std::path::Path, extra: &[&str]) -> Proc {
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args([
            "serve",
            "--http",
            &addr.to_string(),
            "--tcp",
            "off",
            "--jwt-secret",
            SECRET,
        ])
        .arg("--data")
        .arg(data)
        .args(extra)
        .env("TERN_LOG_FILTER", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Ok(s) = tokio::net::TcpStream::connect(addr).await {
            drop(s);
            let (status, _) = common::http(addr, "GET", "/readyz", None, None).await;
            if status == 200 {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Proc { child, addr }
}

async fn connect(addr: std::net::SocketAddr, user: &str) -> Ws {
    let mut ws = Ws::open(&format!("ws://{addr}/ws"), Some(&token(user))).await;
    assert_eq!(ws.recv().await["type"], "auth_ok");
    ws
}

#[tokio::test]
async fn acked_message_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = spawn(dir.path(), &[]).await;
    drop(connect(p.addr, "bob").await);
    let mut alice = connect(p.addr, "alice").await;
    let mut acks = Vec::new();
    for i in 0..20 {
        alice.send(json!({"type":"send","id":i,"to":"bob","cmid":format!("k{i}"),"body":format!("durable {i}")})).await;
    }
    while acks.len() < 20 {
        let f = alice.recv().await;
        if f["type"] == "ack" {
            acks.push(f);
        }
    }
    p.child.kill().unwrap(); // SIGKILL, right after the last ack
    p.child.wait().unwrap();

    let mut p = spawn(dir.path(), &[]).await;
    let mut bob = connect(p.addr, "bob").await;
    let page = bob
        .request(json!({"type":"sync","id":1,"conv":"d:alice:bob","after":0}))
        .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 20);
    for ack in &acks {
        let m = items.iter().find(|m| m["seq"] == ack["seq"]).unwrap();
        assert_eq!(m["mid"], ack["mid"]);
    }
    p.child.kill().unwrap();
    p.child.wait().unwrap();
}

#[tokio::test]
async fn sigterm_sends_goaway_closes_1001_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = spawn(dir.path(), &[]).await;
    let mut ws = connect(p.addr, "alice").await;
    let pid = p.child.id() as libc::pid_t;
    let started = Instant::now();
    assert_eq!(signal(pid, libc::SIGTERM), 0);
    let goaway = ws.recv().await;
    assert_eq!(goaway["type"], "goaway");
    assert!(goaway["reconnect_ms"].as_u64().unwrap() > 0);
    // The client leaves on its own; the server then exits well before the deadline.
    ws.inner.close().await.ok();
    let status = p.child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(started.elapsed() < Duration::from_secs(9));

    // A client that stays is closed with 1001 at the drain deadline.
    let mut p = spawn(dir.path(), &[]).await;
    let mut ws = connect(p.addr, "alice").await;
    assert_eq!(signal(p.child.id() as libc::pid_t, libc::SIGTERM), 0);
    let (code, frames) = ws.expect_close().await;
    assert_eq!(code, 1001);
    assert_eq!(frames[0]["type"], "goaway");
    assert!(p.child.wait().unwrap().success());
}

/// Sends a signal through the `kill` command (the crate forbids unsafe code).
fn signal(pid: libc::pid_t, sig: libc::c_int) -> i32 {
    let name = if sig == libc::SIGTERM {
        "-TERM"
    } else {
        "-KILL"
    };
    let st = Command::new("kill")
        .arg(name)
        .arg(pid.to_string())
        .status()
        .unwrap();
    if st.success() {
        0
    } else {
        1
    }
}
