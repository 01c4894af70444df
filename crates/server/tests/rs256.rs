//! Auth with an RS256 public key: RS256 tokens are accepted, an HS256 token keyed with the
//! public key's text (algorithm confusion) is refused. The key pair is a test fixture only.
#![allow(clippy::unwrap_used)]

mod common;

use cerebrum_server::auth::{Claims, JwtKey};
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const PRIVATE: &str = include_str!("fixtures/rs256-test-private.pem");
const PUBLIC: &str = include_str!("fixtures/rs256-test-public.pem");

fn claims(user: &str) -> Claims {
    Claims {
        nbf: None,
        sub: user.into(),
        name: Some("Ada".into()),
        exp: cerebrum_server::clock::unix_ms() / 1000 + 600,
        channels: None,
    }
}

#[tokio::test]
async fn rs256_tokens_are_accepted_and_algorithm_confusion_is_refused() {
    let key = JwtKey::public_pem(PUBLIC.as_bytes()).unwrap();
    assert_eq!(key.algorithm_name(), "RS256");
    let server = start_with(|c| c.jwt = Some(key)).await;
    let signed = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims("ada"),
        &EncodingKey::from_rsa_pem(PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap();
    let (_ws, welcome) = connect_ready(&format!("{}?token={signed}", server.url)).await;
    assert_eq!(welcome["payload"]["userId"], "ada");

    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("mallory"),
        &EncodingKey::from_secret(PUBLIC.as_bytes()),
    )
    .unwrap();
    let mut ws = connect(&server.url).await;
    send_json(
        &mut ws,
        &json!({"type":"auth","payload":{"token":confused}}),
    )
    .await;
    let refused = recv(&mut ws).await;
    assert_eq!(refused["payload"]["code"], "unauthorized");
    assert_eq!(close_code(&mut ws).await, 4001);
}
