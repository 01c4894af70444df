//! `wss://` served directly with rustls, checked by a client that trusts only a test CA.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use cerebrum_server::{Server, TlsFiles};
use futures_util::StreamExt;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, pki_types::ServerName};

#[tokio::test]
async fn a_client_trusting_the_test_ca_connects_over_wss() {
    let dir = tempfile::tempdir().unwrap();
    // A test CA, and a certificate for localhost signed by it.
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, leaf.pem()).unwrap();
    std::fs::write(&key_path, leaf_key.serialize_pem()).unwrap();

    let mut config = common::config(&dir.path().join("data"));
    config.tls = Some(TlsFiles {
        cert: cert_path,
        key: key_path,
    });
    // The TLS acceptor sets the send buffer's cap on each socket it accepts, as the plain one.
    config.send_buffer = Some(16 * 1024);
    let server = Server::bind(config).await.unwrap();
    let url = server.ws_url();
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");

    let mut roots = RootCertStore::empty();
    roots.add(ca_cert.der().clone()).unwrap();
    let client =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let tls = TlsConnector::from(Arc::new(client))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let port = server.local_addr().port();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("wss://localhost:{port}/ws"), tls)
        .await
        .unwrap();
    let welcome = ws.next().await.unwrap().unwrap();
    assert!(
        welcome
            .to_text()
            .unwrap()
            .starts_with(r#"{"type":"welcome""#)
    );

    // A client that does not trust the CA is refused.
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let untrusting =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth();
    assert!(
        TlsConnector::from(Arc::new(untrusting))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .is_err()
    );
    server.shutdown().await.unwrap();
}
