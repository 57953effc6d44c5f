//! TLS for both doors (HTTP/WebSocket and raw TCP) with rustls and its ring
//! provider. The certificate and key are read from PEM files and re-read on
//! a reload (SIGHUP or config change) without dropping live connections: new
//! handshakes get the new certificate, established sessions keep theirs.

use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain {path}: {reason}")]
    Cert { path: String, reason: String },
    #[error("cannot read the private key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("the certificate and key do not go together: {0}")]
    Mismatch(String),
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// The one crypto provider of the process (ring).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM certificate chain and private key into a [`CertifiedKey`].
pub fn load_certified_key(cert_path: &str, key_path: &str) -> Result<CertifiedKey, TlsError> {
    let certs = CertificateDer::pem_file_iter(cert_path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert_path.into(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Cert {
            path: cert_path.into(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsError::Key {
        path: key_path.into(),
        reason: e.to_string(),
    })?;
    CertifiedKey::from_der(certs, key, &provider()).map_err(|e| TlsError::Mismatch(e.to_string()))
}

/// The certificate in use, swappable at run time.
#[derive(Debug)]
pub struct CertStore {
    cert_path: String,
    key_path: String,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertStore {
    pub fn load(cert_path: &str, key_path: &str) -> Result<Arc<Self>, TlsError> {
        let key = load_certified_key(cert_path, key_path)?;
        Ok(Arc::new(Self {
            cert_path: cert_path.into(),
            key_path: key_path.into(),
            current: RwLock::new(Arc::new(key)),
        }))
    }

    /// Reads the files again; on error the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = load_certified_key(&self.cert_path, &self.key_path)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
        tracing::info!(cert = %self.cert_path, "TLS certificate reloaded");
        Ok(())
    }

    /// An acceptor whose handshakes take the certificate in use at the time.
    pub fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor, TlsError> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // No stateless tickets: nothing per connection is kept for them, and
        // reconnecting clients do a full (cheap, TLS 1.3) handshake.
        config.send_tls13_tickets = 0;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn write_pair(dir: &std::path::Path, name: &str) -> (String, String) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let c = dir.join(format!("{name}.crt"));
        let k = dir.join(format!("{name}.key"));
        std::fs::write(&c, cert.cert.pem()).unwrap();
        std::fs::write(&k, cert.key_pair.serialize_pem()).unwrap();
        (c.to_string_lossy().into(), k.to_string_lossy().into())
    }

    #[test]
    fn loads_reloads_and_refuses_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = write_pair(dir.path(), "a");
        let store = CertStore::load(&c, &k).unwrap();
        assert!(store.acceptor().is_ok());
        let before = store.current.read().unwrap().cert[0].clone();
        let (c2, k2) = write_pair(dir.path(), "b");
        std::fs::copy(&c2, &c).unwrap();
        std::fs::copy(&k2, &k).unwrap();
        store.reload().unwrap();
        assert_ne!(store.current.read().unwrap().cert[0], before);
        // A broken file on reload keeps the certificate in use.
        std::fs::write(&k, "not a key").unwrap();
        assert!(store.reload().is_err());
        assert!(matches!(
            load_certified_key(&c, "/nonexistent.key"),
            Err(TlsError::Key { .. })
        ));
        let (_, other_key) = write_pair(dir.path(), "c");
        assert!(matches!(
            load_certified_key(&c, &other_key),
            Err(TlsError::Mismatch(_))
        ));
    }
}
