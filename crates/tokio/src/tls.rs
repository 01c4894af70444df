//! TLS for `wss://`: rustls with the ring provider, the webpki roots, and optional extra CAs.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// An extra CA file is not PEM, or holds no certificate.
    #[error("extra CA certificate: {0}")]
    Pem(String),
    /// rustls refused the certificate or the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A rustls client configuration trusting the webpki roots plus every certificate of
/// `extra_ca_pems` (PEM text, e.g. a development CA).
pub(crate) fn client_config(extra_ca_pems: &[Vec<u8>]) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for pem in extra_ca_pems {
        let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<Result<_, _>>()
            .map_err(|err| TlsError::Pem(err.to_string()))?;
        if certs.is_empty() {
            return Err(TlsError::Pem("no certificate found".to_owned()));
        }
        for cert in certs {
            roots.add(cert)?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
