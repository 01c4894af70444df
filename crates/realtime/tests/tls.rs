//! `wss://` with a development CA: trusted through `extra_ca_pem`, refused without it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use cerebrum_realtime::{Client, ClientError, ServerLevel, Status};
use cerebrum_testkit::fake_server::{FakeServer, Kind, SOON};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use support::wait_status;

/// A wss server for `localhost` whose certificate is signed by a fresh test CA, and the CA's
/// PEM.
async fn wss_server() -> (FakeServer, String) {
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
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(leaf.der().to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    )
    .unwrap();
    let (server, _received) = FakeServer::builder(Kind::V1)
        .tls(Arc::new(config))
        .start()
        .await
        .unwrap();
    (server, ca_cert.pem())
}

#[tokio::test]
async fn wss_with_an_extra_ca_connects_and_without_it_is_refused() {
    let (server, ca_pem) = wss_server().await;
    let url = server.url();

    let trusting = Client::builder(&url).extra_ca_pem(ca_pem).build().unwrap();
    let mut status = trusting.watch_status();
    trusting.connect();
    wait_status(&mut status, Status::Connected).await;
    let mut state = trusting.watch_state();
    tokio::time::timeout(
        SOON,
        state.wait_for(|s| matches!(s.server_level, Some(ServerLevel::V1 { .. }))),
    )
    .await
    .unwrap()
    .unwrap();
    trusting.disconnect().await;

    let untrusting = Client::builder(&url)
        .reconnect_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let mut errors = untrusting.errors();
    untrusting.connect();
    let error = tokio::time::timeout(SOON, errors.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&error, ClientError::Transport(reason) if reason.contains("certificate") || reason.contains("Certificate")),
        "{error}"
    );
    assert_ne!(untrusting.status(), Status::Connected);
}

#[tokio::test]
async fn an_invalid_extra_ca_is_refused_at_build() {
    let err = Client::builder("wss://localhost/ws")
        .extra_ca_pem("not a certificate")
        .build()
        .unwrap_err();
    assert!(
        matches!(err, cerebrum_realtime::BuildError::Transport(_)),
        "{err}"
    );
}
