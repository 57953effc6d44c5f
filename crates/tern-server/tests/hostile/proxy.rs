//! A TCP proxy the test controls, in front of PostgreSQL: `Pass` forwards,
//! `Cut` closes every connection and drops new ones at once, `BlackHole`
//! keeps every socket open but forwards nothing (bytes wait, as in a
//! network partition, and flow again after `Pass`).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Cut,
    BlackHole,
}

pub struct Proxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on 127.0.0.1:0 and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, rx) = watch::channel(Mode::Pass);
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if *rx.borrow() == Mode::Cut {
                    drop(inbound);
                    continue;
                }
                tokio::spawn(relay(inbound, upstream, rx.clone()));
            }
        });
        Self { addr, mode, task }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.mode.send_replace(Mode::Cut);
    }
}

/// Waits until the mode is `Pass`; false once it is `Cut`.
async fn passing(rx: &mut watch::Receiver<Mode>) -> bool {
    loop {
        match *rx.borrow_and_update() {
            Mode::Pass => return true,
            Mode::Cut => return false,
            Mode::BlackHole => {}
        }
        if rx.changed().await.is_err() {
            return false;
        }
    }
}

async fn relay(inbound: TcpStream, upstream: SocketAddr, mut rx: watch::Receiver<Mode>) {
    // A connection made during a black hole waits (its startup unanswered).
    if !passing(&mut rx).await {
        return;
    }
    let Ok(outbound) = TcpStream::connect(upstream).await else {
        return;
    };
    let (ri, wi) = inbound.into_split();
    let (ro, wo) = outbound.into_split();
    tokio::select! {
        () = pump(ri, wo, rx.clone()) => {}
        () = pump(ro, wi, rx) => {}
    }
}

/// Copies one direction while the mode is `Pass`; ends on `Cut` or EOF.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut rx: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !passing(&mut rx).await {
            return;
        }
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            changed = rx.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        // Bytes read before a black hole are held until it ends.
        if !passing(&mut rx).await || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
