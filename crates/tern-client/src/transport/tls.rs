//! The TLS client configuration of `wss://` and `tls://`: rustls with the
//! ring provider, trusting [`TlsRoots`].

use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio_rustls::TlsConnector;

use super::config_error;
use crate::config::TlsRoots;
use crate::error::Result;

/// A connector trusting `roots`.
pub(crate) fn connector(roots: &TlsRoots) -> Result<TlsConnector> {
    let store = root_store(roots)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

fn root_store(roots: &TlsRoots) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match roots {
        TlsRoots::WebPki => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        TlsRoots::Pem(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| config_error(format!("CA PEM: {e}")))?;
                store
                    .add(cert)
                    .map_err(|e| config_error(format!("CA certificate: {e}")))?;
            }
        }
    }
    if store.is_empty() {
        return Err(config_error("CA PEM: no certificate in it"));
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_from_pem_or_compiled_in() {
        assert!(root_store(&TlsRoots::WebPki).is_ok_and(|s| s.len() > 50));
        assert!(root_store(&TlsRoots::Pem(b"not pem".to_vec())).is_err());
        assert!(root_store(&TlsRoots::Pem(Vec::new())).is_err());
    }
}
