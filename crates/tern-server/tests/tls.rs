//! TLS on the HTTP/WebSocket door with a certificate made at test time:
//! HTTPS requests, a WSS session, and a certificate reload while that
//! session stays up (new handshakes get the new certificate).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{token, TestServer};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_websockets::{ClientBuilder, Message};

struct Pair {
    cert_der: CertificateDer<'static>,
}

/// Writes a fresh self-signed certificate for 127.0.0.1 to the two paths.
fn make_cert(cert_path: &std::path::Path, key_path: &std::path::Path) -> Pair {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    std::fs::write(cert_path, made.cert.pem()).unwrap();
    std::fs::write(key_path, made.key_pair.serialize_pem()).unwrap();
    Pair {
        cert_der: made.cert.der().clone(),
    }
}

/// A TLS client trusting `trusted` only; returns the stream and the
/// certificate the server presented.
async fn tls_connect(
    addr: SocketAddr,
    trusted: &[&CertificateDer<'static>],
) -> (TlsStream<TcpStream>, CertificateDer<'static>) {
    let mut roots = rustls::RootCertStore::empty();
    for cert in trusted {
        roots.add((*cert).clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    (tls, presented)
}

async fn https_get(addr: SocketAddr, path: &str, trusted: &CertificateDer<'static>) -> String {
    let (mut tls, _) = tls_connect(addr, &[trusted]).await;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn https_wss_and_a_certificate_reload_under_a_live_session() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let first = make_cert(&cert_path, &key_path);
    let (c, k) = (
        cert_path.to_string_lossy().into_owned(),
        key_path.to_string_lossy().into_owned(),
    );
    let server = TestServer::with(|cfg| {
        cfg.tls.cert_file = c.clone();
        cfg.tls.key_file = k.clone();
    })
    .await;
    let addr = server.addr;
    let health = https_get(addr, "/healthz", &first.cert_der).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    // Plain HTTP on the TLS port is never answered in plain text.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));

    // A WSS session.
    let (tls, presented) = tls_connect(addr, &[&first.cert_der]).await;
    assert_eq!(presented, first.cert_der);
    let uri = format!(
        "wss://127.0.0.1:{}/ws?token={}",
        addr.port(),
        token("alice")
    );
    let (mut ws, _) = ClientBuilder::new()
        .uri(&uri)
        .unwrap()
        .connect_on(tls)
        .await
        .unwrap();
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "auth_ok");

    // New certificate on disk, then a reload: new handshakes get it.
    let second = make_cert(&cert_path, &key_path);
    let running = server.server.as_ref().unwrap();
    running
        .reload_now(running.state.config.as_ref().clone())
        .unwrap();
    let (_, now_presented) = tls_connect(addr, &[&first.cert_der, &second.cert_der]).await;
    assert_eq!(now_presented, second.cert_der);

    // The session from before the reload still works.
    ws.send(Message::text(json!({"type":"ping","id":1}).to_string()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "pong");
    ws.close().await.unwrap();
    server.shutdown().await;
}

async fn next_json<S>(ws: &mut tokio_websockets::WebSocketStream<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Some(text) = msg.as_text() {
            return serde_json::from_str(text).unwrap();
        }
    }
}

#[test]
fn a_key_that_does_not_match_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (c1, k1) = (dir.path().join("a.crt"), dir.path().join("a.key"));
    let (c2, k2) = (dir.path().join("b.crt"), dir.path().join("b.key"));
    make_cert(&c1, &k1);
    make_cert(&c2, &k2);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["serve", "--http", "127.0.0.1:0", "--tcp", "off", "--data"])
        .arg(dir.path())
        .arg("--tls-cert")
        .arg(&c1)
        .arg("--tls-key")
        .arg(&k2)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tls.cert_file"), "{stderr}");
}
