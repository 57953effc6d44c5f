//! A TCP proxy the tests control, in front of PostgreSQL or Redis: it
//! passes bytes, swallows them (a black hole: sockets stay open, nothing
//! flows), or cuts every connection and refuses new ones.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub const PASS: u8 = 0;
pub const BLACK_HOLE: u8 = 1;
pub const CUT: u8 = 2;

/// A TCP proxy in front of PostgreSQL: passes bytes, swallows them
/// (black hole: sockets stay open, nothing flows), or cuts every
/// connection and refuses new ones.
pub struct Proxy {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(PASS));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (m, c) = (mode.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if m.load(Ordering::Acquire) == CUT {
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let up = tokio::spawn(pipe(cr, sw, m.clone()));
                let down = tokio::spawn(pipe(sr, cw, m.clone()));
                c.lock().unwrap().extend([up, down]);
            }
        });
        Self { addr, mode, conns }
    }

    pub fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::Release);
        if mode == CUT {
            for conn in self.conns.lock().unwrap().drain(..) {
                conn.abort();
            }
        }
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mode: Arc<AtomicU8>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Black hole: what arrived is never delivered, and nothing errors.
        while mode.load(Ordering::Acquire) == BLACK_HOLE {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if mode.load(Ordering::Acquire) == CUT || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
