//! The server's token verification on arbitrary tokens.

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cerebrum_server::auth::{AuthError, JwtKey, Verifier};
use jsonwebtoken::{Algorithm, EncodingKey};

/// The HS256 secret of the harness (32 bytes, as the server will require).
pub const HS256_SECRET: &[u8] = b"fuzz-harness-secret-of-32-bytes!";

/// An Ed25519 key pair made for this harness only (`openssl genpkey -algorithm ed25519`); it
/// guards nothing.
pub const ED25519_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJdYeIf2HUOyb+zI0pnit6ODs8v1uABqkZgk1Ps7cq6E
-----END PRIVATE KEY-----
";

/// The public half of [`ED25519_PRIVATE_PEM`].
pub const ED25519_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA4nCPN23l5hOVlE0E/HBaK33CB0qPAOPcQ6djbDXhnEE=
-----END PUBLIC KEY-----
";

struct Keys {
    hs256: Verifier,
    eddsa: Verifier,
    hs256_signer: EncodingKey,
    eddsa_signer: EncodingKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let public = JwtKey::public_pem(ED25519_PUBLIC_PEM.as_bytes()).expect("the harness key");
        assert_eq!(public.algorithm_name(), "EdDSA");
        Keys {
            hs256: Verifier::new(&JwtKey::hs256(HS256_SECRET)).expect("an HS256 verifier"),
            eddsa: Verifier::new(&public).expect("an EdDSA verifier"),
            hs256_signer: EncodingKey::from_secret(HS256_SECRET),
            eddsa_signer: EncodingKey::from_ed_pem(ED25519_PRIVATE_PEM.as_bytes())
                .expect("the harness key"),
        }
    })
}

/// How the harness builds a token from the input.
#[derive(Debug, Arbitrary)]
enum Token {
    /// The input as it is.
    Raw(String),
    /// A header and claims of arbitrary bytes, signed with one of the harness's keys (or with
    /// an arbitrary signature): reaches the claim checks behind a valid signature.
    Signed {
        header: Part,
        claims: Part,
        signer: Signer,
    },
}

/// A token part: arbitrary bytes, or a JSON object built from arbitrary fields.
#[derive(Debug, Arbitrary)]
enum Part {
    Bytes(Vec<u8>),
    Json(Vec<(Field, Value)>),
}

#[derive(Debug, Arbitrary)]
enum Field {
    Alg,
    Typ,
    Kid,
    Sub,
    Exp,
    Nbf,
    Name,
    Channels,
    Aud,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Unsigned(u64),
    Float(f64),
    /// A time in seconds around now (now + offset).
    FromNow(i32),
    Str(String),
    Alg(AlgName),
    List(Vec<String>),
    Object(Vec<(String, String)>),
}

#[derive(Debug, Arbitrary)]
enum AlgName {
    Hs256,
    EdDsa,
    Rs256,
    None,
    Hs384,
}

#[derive(Debug, Arbitrary)]
enum Signer {
    Hs256,
    EdDsa,
    /// The EdDSA public key's PEM used as an HS256 secret (algorithm confusion).
    Confused,
    Signature(Vec<u8>),
    Empty,
}

impl Field {
    fn name(&self) -> &str {
        match self {
            Self::Alg => "alg",
            Self::Typ => "typ",
            Self::Kid => "kid",
            Self::Sub => "sub",
            Self::Exp => "exp",
            Self::Nbf => "nbf",
            Self::Name => "name",
            Self::Channels => "channels",
            Self::Aud => "aud",
            Self::Other(name) => name,
        }
    }
}

impl Value {
    fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Self::Null => J::Null,
            Self::Bool(b) => J::Bool(*b),
            Self::Int(n) => J::from(*n),
            Self::Unsigned(n) => J::from(*n),
            Self::Float(x) => serde_json::Number::from_f64(*x).map_or(J::Null, J::Number),
            Self::FromNow(offset) => {
                let now = i64::try_from(cerebrum_server::clock::unix_ms() / 1000).unwrap_or(0);
                J::from(now + i64::from(*offset))
            }
            Self::Str(s) => J::String(s.clone()),
            Self::Alg(alg) => J::String(
                match alg {
                    AlgName::Hs256 => "HS256",
                    AlgName::EdDsa => "EdDSA",
                    AlgName::Rs256 => "RS256",
                    AlgName::None => "none",
                    AlgName::Hs384 => "HS384",
                }
                .to_owned(),
            ),
            Self::List(items) => J::from(items.clone()),
            Self::Object(fields) => J::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), J::String(v.clone())))
                    .collect(),
            ),
        }
    }
}

impl Part {
    fn encode(&self) -> String {
        let bytes = match self {
            Self::Bytes(bytes) => bytes.clone(),
            Self::Json(fields) => serde_json::Value::Object(
                fields
                    .iter()
                    .map(|(field, value)| (field.name().to_owned(), value.to_json()))
                    .collect(),
            )
            .to_string()
            .into_bytes(),
        };
        URL_SAFE_NO_PAD.encode(bytes)
    }
}

impl Token {
    fn build(&self) -> String {
        match self {
            Self::Raw(text) => text.clone(),
            Self::Signed {
                header,
                claims,
                signer,
            } => {
                let message = format!("{}.{}", header.encode(), claims.encode());
                let keys = keys();
                let signature = match signer {
                    Signer::Hs256 => jsonwebtoken::crypto::sign(
                        message.as_bytes(),
                        &keys.hs256_signer,
                        Algorithm::HS256,
                    )
                    .expect("HMAC signing"),
                    Signer::EdDsa => jsonwebtoken::crypto::sign(
                        message.as_bytes(),
                        &keys.eddsa_signer,
                        Algorithm::EdDSA,
                    )
                    .expect("EdDSA signing"),
                    Signer::Confused => jsonwebtoken::crypto::sign(
                        message.as_bytes(),
                        &EncodingKey::from_secret(ED25519_PUBLIC_PEM.as_bytes()),
                        Algorithm::HS256,
                    )
                    .expect("HMAC signing"),
                    Signer::Signature(bytes) => URL_SAFE_NO_PAD.encode(bytes),
                    Signer::Empty => String::new(),
                };
                format!("{message}.{signature}")
            }
        }
    }
}

/// Verifies a token built from `data` with the HS256 and the EdDSA verifier.
///
/// Never panics; a token that verifies has a non-empty `sub`, an `exp` not in the past, and a
/// header whose `alg` is the verifier's own (no algorithm confusion); a refusal is
/// [`AuthError::Invalid`] or [`AuthError::Expired`].
pub fn run(data: &[u8]) {
    let _ = verify(data);
}

/// [`run`], telling which verifiers accepted the token: `[HS256, EdDSA]` (the stable tests
/// check that the corpus reaches both accepting paths).
pub fn verify(data: &[u8]) -> [bool; 2] {
    let mut accepted = [false; 2];
    let input = Unstructured::new(data);
    let Ok(token) = Token::arbitrary_take_rest(input) else {
        return accepted;
    };
    let token = token.build();
    let keys = keys();
    let verifiers = [
        (&keys.hs256, Algorithm::HS256),
        (&keys.eddsa, Algorithm::EdDSA),
    ];
    let now_secs = cerebrum_server::clock::unix_ms() / 1000;
    for (i, (verifier, algorithm)) in verifiers.into_iter().enumerate() {
        match verifier.verify(&token, now_secs) {
            Ok(claims) => {
                assert!(!claims.sub.is_empty(), "a verified token without `sub`");
                let now = cerebrum_server::clock::unix_ms() / 1000;
                assert!(
                    claims.exp.saturating_add(1) >= now,
                    "a verified token that has expired"
                );
                let header = jsonwebtoken::decode_header(&token).expect("a verified header");
                assert_eq!(
                    header.alg, algorithm,
                    "a token of another algorithm verified"
                );
                accepted[i] = true;
            }
            Err(AuthError::Invalid | AuthError::Expired) => {}
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
    }
    accepted
}
