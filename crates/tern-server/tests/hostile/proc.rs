//! The built `tern` binary as a child process on a free port, started the
//! way `tests/process.rs` does it, waited for until `/readyz` answers 200.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::SECRET;

pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Proc {
    /// SIGKILL, and reap it.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `tern serve` on `data` (plus `extra` flags), ready to serve.
pub async fn spawn(data: &Path, extra: &[&str]) -> Proc {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["serve", "--http", &addr.to_string(), "--tcp", "off"])
        .args(["--jwt-secret", SECRET])
        .arg("--data")
        .arg(data)
        .args(extra)
        .env("TERN_LOG_FILTER", "warn")
        // Pipelined test clients send fast.
        .env("TERN_LIMITS_SEND_RATE", "10000")
        .env("TERN_LIMITS_SEND_BURST", "10000")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut p = Proc { child, addr };
    let started = Instant::now();
    loop {
        if let Ok(s) = tokio::net::TcpStream::connect(addr).await {
            drop(s);
            let (status, _) = crate::common::http(addr, "GET", "/readyz", None, None).await;
            if status == 200 {
                return p;
            }
        }
        if let Ok(Some(st)) = p.child.try_wait() {
            panic!("tern exited at start: {st:?}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
