//! JWT verification (HS256 secret, RS256 or EdDSA public key), channel globs and development
//! tokens.

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The key that turns auth on; it fixes the one algorithm accepted (no algorithm confusion).
#[derive(Clone)]
#[non_exhaustive]
pub enum JwtKey {
    /// An HS256 shared secret.
    Hs256(Vec<u8>),
    /// An RS256 public key, PEM.
    Rs256Pem(Vec<u8>),
    /// An EdDSA (Ed25519) public key, PEM.
    EdDsaPem(Vec<u8>),
}

impl JwtKey {
    /// An HS256 secret.
    #[must_use]
    pub fn hs256(secret: impl Into<Vec<u8>>) -> Self {
        Self::Hs256(secret.into())
    }

    /// A public key in PEM: RSA keys give RS256, Ed25519 keys EdDSA.
    pub fn public_pem(pem: &[u8]) -> Result<Self, AuthError> {
        if DecodingKey::from_rsa_pem(pem).is_ok() {
            Ok(Self::Rs256Pem(pem.to_vec()))
        } else if DecodingKey::from_ed_pem(pem).is_ok() {
            Ok(Self::EdDsaPem(pem.to_vec()))
        } else {
            Err(AuthError::BadKey)
        }
    }

    /// `HS256`, `RS256` or `EdDSA`.
    #[must_use]
    pub fn algorithm_name(&self) -> &'static str {
        match self {
            Self::Hs256(_) => "HS256",
            Self::Rs256Pem(_) => "RS256",
            Self::EdDsaPem(_) => "EdDSA",
        }
    }
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JwtKey({}, <redacted>)", self.algorithm_name())
    }
}

/// Why a token or key was refused. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The token is malformed, badly signed, of another algorithm, or lacks a claim.
    #[error("invalid token")]
    Invalid,
    /// The token's `exp` is past.
    #[error("token expired")]
    Expired,
    /// The key could not be read.
    #[error("the key is not a valid RSA or Ed25519 public key in PEM")]
    BadKey,
    /// Signing failed.
    #[error("could not sign the token")]
    Signing,
    /// An HS256 secret shorter than [`MIN_HS256_SECRET_BYTES`]: guessable offline from one
    /// token.
    #[error(
        "the HS256 secret must be at least 32 bytes long (it has {0}); generate one with `openssl rand -hex 32`"
    )]
    WeakSecret(usize),
}

/// Shortest HS256 secret a server accepts, in bytes (RFC 7518 section 3.2: a key of at least
/// the hash's size).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// The claims the server reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The user's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Channel globs the user may subscribe and publish to, compiled when the token is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<ChannelGlobs>,
    /// Not before, seconds since the Unix epoch: the token is refused until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

impl Claims {
    /// Whether the `channels` claim allows `channel` (no claim allows none).
    #[must_use]
    pub fn allows_channel(&self, channel: &str) -> bool {
        self.channels
            .as_ref()
            .is_some_and(|globs| globs.allows(channel))
    }
}

/// The `channels` claim: globs where `*` is any run of characters and `?` any one, compiled
/// once when the claims are read (a check then neither parses nor allocates). On the wire it
/// is the JSON array of the glob strings.
///
/// `wildmatch` rather than `globset`: it has exactly these two wildcards (globset would also
/// give `[...]`, `{a,b}` and `\` a meaning, changing which tokens match), no dependencies,
/// and no regex engine behind it.
///
/// ```
/// use cerebrum_server_core::auth::ChannelGlobs;
/// let globs = ChannelGlobs::from(vec!["chat:*".to_owned(), "room-?".to_owned()]);
/// assert!(globs.allows("chat:room-1"));
/// assert!(globs.allows("room-7"));
/// assert!(!globs.allows("quiz:1"));
/// assert_eq!(globs.as_strings(), ["chat:*", "room-?"]);
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub struct ChannelGlobs {
    /// The globs as written in the token.
    sources: Vec<String>,
    /// The same globs, compiled.
    compiled: Vec<wildmatch::WildMatch>,
}

impl ChannelGlobs {
    /// Whether any glob matches `channel`.
    #[must_use]
    pub fn allows(&self, channel: &str) -> bool {
        self.compiled.iter().any(|glob| glob.matches(channel))
    }

    /// The globs as written in the token.
    #[must_use]
    pub fn as_strings(&self) -> &[String] {
        &self.sources
    }
}

impl From<Vec<String>> for ChannelGlobs {
    fn from(sources: Vec<String>) -> Self {
        let compiled = sources
            .iter()
            .map(|glob| wildmatch::WildMatch::new(glob))
            .collect();
        Self { sources, compiled }
    }
}

impl From<ChannelGlobs> for Vec<String> {
    fn from(globs: ChannelGlobs) -> Self {
        globs.sources
    }
}

impl PartialEq for ChannelGlobs {
    fn eq(&self, other: &Self) -> bool {
        self.sources == other.sources
    }
}

impl Eq for ChannelGlobs {}

/// Verifies tokens with one key.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for `key`.
    pub fn new(key: &JwtKey) -> Result<Self, AuthError> {
        let (key, algorithm) = match key {
            JwtKey::Hs256(secret) => (DecodingKey::from_secret(secret), Algorithm::HS256),
            JwtKey::Rs256Pem(pem) => (
                DecodingKey::from_rsa_pem(pem).map_err(|_| AuthError::BadKey)?,
                Algorithm::RS256,
            ),
            JwtKey::EdDsaPem(pem) => (
                DecodingKey::from_ed_pem(pem).map_err(|_| AuthError::BadKey)?,
                Algorithm::EdDSA,
            ),
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = 0;
        validation.validate_aud = false;
        // `exp` and `nbf` are checked against the owner's time in `verify` (the core reads no
        // clock); their presence and type are still checked here.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self { key, validation })
    }

    /// Also requires the token's `aud` to name `audience` and its `iss` to be `issuer`, where
    /// given (`--jwt-audience`, `--jwt-issuer`); a token without the claim is refused.
    ///
    /// ```
    /// use cerebrum_server_core::auth::{JwtKey, Verifier};
    /// let verifier = Verifier::new(&JwtKey::hs256("a-secret-of-at-least-32-bytes!!!"))?
    ///     .with_audience_and_issuer(Some("cerebrum"), Some("https://auth.example.org"));
    /// # let _ = verifier;
    /// # Ok::<(), cerebrum_server_core::auth::AuthError>(())
    /// ```
    #[must_use]
    pub fn with_audience_and_issuer(
        mut self,
        audience: Option<&str>,
        issuer: Option<&str>,
    ) -> Self {
        let mut required = vec!["exp", "sub"];
        if let Some(audience) = audience {
            self.validation.set_audience(&[audience]);
            self.validation.validate_aud = true;
            required.push("aud");
        }
        if let Some(issuer) = issuer {
            self.validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        self.validation.set_required_spec_claims(&required);
        self
    }

    /// Checks the signature, the algorithm, and `exp` and `nbf` against `now_secs` (the owner's
    /// wall time, seconds since the Unix epoch); returns the claims.
    ///
    /// # Errors
    /// [`AuthError::Expired`] past `exp`, [`AuthError::Invalid`] otherwise.
    ///
    /// ```
    /// use cerebrum_server_core::auth::{mint_hs256_until, AuthError, JwtKey, Verifier};
    /// let now = 1_700_000_000; // the owner's clock, in seconds
    /// let token = mint_hs256_until(b"secret", "u1", Some("Ada"), now + 3600, None)?;
    /// let claims = Verifier::new(&JwtKey::hs256("secret"))?.verify(&token, now)?;
    /// assert_eq!(claims.sub, "u1");
    /// assert!(Verifier::new(&JwtKey::hs256("other"))?.verify(&token, now).is_err());
    /// assert_eq!(Verifier::new(&JwtKey::hs256("secret"))?.verify(&token, now + 3601), Err(AuthError::Expired));
    /// # Ok::<(), cerebrum_server_core::auth::AuthError>(())
    /// ```
    pub fn verify(&self, token: &str, now_secs: u64) -> Result<Claims, AuthError> {
        match jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation) {
            Ok(data) if data.claims.sub.is_empty() => Err(AuthError::Invalid),
            Ok(data) if data.claims.exp < now_secs => Err(AuthError::Expired),
            Ok(data) if data.claims.nbf.is_some_and(|nbf| nbf > now_secs) => {
                Err(AuthError::Invalid)
            }
            Ok(data) => Ok(data.claims),
            Err(err) => match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Err(AuthError::Expired),
                _ => Err(AuthError::Invalid),
            },
        }
    }
}

/// Mints an HS256 development token for `user` that expires at `exp` (seconds since the Unix
/// epoch). (`cerebrum_server::auth::mint_hs256` takes a lifetime from now instead.)
///
/// # Errors
/// [`AuthError::Signing`] when the token cannot be signed.
pub fn mint_hs256_until(
    secret: &[u8],
    user: &str,
    name: Option<&str>,
    exp: u64,
    channels: Option<Vec<String>>,
) -> Result<String, AuthError> {
    let claims = Claims {
        sub: user.to_owned(),
        name: name.map(str::to_owned),
        exp,
        channels: channels.map(ChannelGlobs::from),
        nbf: None,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|_| AuthError::Signing)
}

/// Matches `text` against a glob where `*` is any run of characters and `?` any one (compiles
/// the glob on each call: checks of a token's claim use the [`ChannelGlobs`] compiled once).
///
/// ```
/// use cerebrum_server_core::auth::glob_match;
/// assert!(glob_match("chat:*", "chat:room-1"));
/// assert!(glob_match("*", "anything"));
/// assert!(!glob_match("chat:*", "quiz:1"));
/// assert!(glob_match("room-?", "room-7"));
/// ```
#[must_use]
pub fn glob_match(glob: &str, text: &str) -> bool {
    wildmatch::WildMatch::new(glob).matches(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::testing;

    #[test]
    fn expired_and_foreign_algorithm_tokens_are_refused() {
        let verifier = Verifier::new(&JwtKey::hs256("s")).unwrap();
        let claims = Claims {
            nbf: None,
            sub: "u".into(),
            name: None,
            exp: 1,
            channels: None,
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"s"),
        )
        .unwrap();
        assert_eq!(
            verifier.verify(&token, crate::testing::unix_secs()),
            Err(AuthError::Expired)
        );
        let hs384 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &Claims {
                exp: u64::MAX / 2,
                ..claims
            },
            &EncodingKey::from_secret(b"s"),
        )
        .unwrap();
        assert_eq!(
            verifier.verify(&hs384, crate::testing::unix_secs()),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            verifier.verify("garbage", crate::testing::unix_secs()),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn audience_issuer_and_not_before_are_checked() {
        #[derive(Serialize)]
        struct Raw<'a> {
            sub: &'a str,
            exp: u64,
            #[serde(skip_serializing_if = "Option::is_none")]
            nbf: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            aud: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            iss: Option<&'a str>,
        }
        let secret = b"0123456789abcdef0123456789abcdef";
        let now = (crate::testing::unix_secs() * 1000) / 1000;
        let sign = |raw: &Raw<'_>| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                raw,
                &EncodingKey::from_secret(secret),
            )
            .unwrap()
        };
        let base = Raw {
            sub: "ada",
            exp: now + 600,
            nbf: None,
            aud: Some("cerebrum"),
            iss: Some("https://auth.test"),
        };
        let plain = Verifier::new(&JwtKey::hs256(secret.to_vec())).unwrap();
        let strict = Verifier::new(&JwtKey::hs256(secret.to_vec()))
            .unwrap()
            .with_audience_and_issuer(Some("cerebrum"), Some("https://auth.test"));
        assert!(
            strict
                .verify(&sign(&base), crate::testing::unix_secs())
                .is_ok()
        );
        assert!(
            plain
                .verify(&sign(&base), crate::testing::unix_secs())
                .is_ok(),
            "unchecked without the flags"
        );
        for (i, wrong) in [
            Raw {
                aud: Some("other"),
                ..base
            },
            Raw { aud: None, ..base },
            Raw {
                iss: Some("https://evil.test"),
                ..base
            },
            Raw { iss: None, ..base },
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(
                strict.verify(&sign(wrong), crate::testing::unix_secs()),
                Err(AuthError::Invalid),
                "case {i}"
            );
        }
        let early = Raw {
            nbf: Some(now + 300),
            ..base
        };
        assert_eq!(
            strict.verify(&sign(&early), crate::testing::unix_secs()),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            plain.verify(&sign(&early), crate::testing::unix_secs()),
            Err(AuthError::Invalid)
        );
        let started = Raw {
            nbf: Some(now.saturating_sub(5)),
            ..base
        };
        assert!(
            strict
                .verify(&sign(&started), crate::testing::unix_secs())
                .is_ok()
        );
    }

    #[test]
    fn channel_claims_are_globs() {
        let claims = Claims {
            nbf: None,
            sub: "u".into(),
            name: None,
            exp: 0,
            channels: Some(ChannelGlobs::from(vec!["chat:*".to_owned()])),
        };
        assert!(claims.allows_channel("chat:1"));
        assert!(!claims.allows_channel("quiz:1"));
        let none = Claims {
            channels: None,
            ..claims
        };
        assert!(!none.allows_channel("chat:1"));
    }

    #[test]
    fn the_channels_claim_is_a_json_array_of_globs_compiled_when_read() {
        let token = crate::testing::mint_hs256(
            b"s",
            "ada",
            None,
            600,
            Some(vec!["chat:*".into(), "q?".into()]),
        )
        .unwrap();
        let claims = Verifier::new(&JwtKey::hs256("s"))
            .unwrap()
            .verify(&token, crate::testing::unix_secs())
            .unwrap();
        let globs = claims.channels.as_ref().unwrap();
        assert_eq!(globs.as_strings(), ["chat:*", "q?"]);
        assert!(claims.allows_channel("chat:x") && claims.allows_channel("q1"));
        assert!(!claims.allows_channel("q12") && !claims.allows_channel("quiz:1"));
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!(json["channels"], serde_json::json!(["chat:*", "q?"]));
        for (glob, text, matches) in [
            ("*", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("é?", "éx", true),
            ("?", "", false),
            ("", "", true),
            ("", "x", false),
        ] {
            assert_eq!(glob_match(glob, text), matches, "{glob:?} {text:?}");
        }
    }

    #[test]
    fn an_eddsa_public_key_accepts_only_eddsa_tokens() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let public = pair.public_key_pem();
        let key = JwtKey::public_pem(public.as_bytes()).unwrap();
        assert_eq!(key.algorithm_name(), "EdDSA");
        let verifier = Verifier::new(&key).unwrap();
        let claims = Claims {
            nbf: None,
            sub: "ada".into(),
            name: Some("Ada".into()),
            exp: (crate::testing::unix_secs() * 1000) / 1000 + 600,
            channels: None,
        };
        let signed = jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &claims,
            &EncodingKey::from_ed_pem(pair.serialize_pem().as_bytes()).unwrap(),
        )
        .unwrap();
        assert_eq!(
            verifier
                .verify(&signed, crate::testing::unix_secs())
                .unwrap(),
            claims
        );
        // Algorithm confusion: an HS256 token keyed with the public key's text is refused.
        let confused = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(public.as_bytes()),
        )
        .unwrap();
        assert_eq!(
            verifier.verify(&confused, crate::testing::unix_secs()),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            JwtKey::public_pem(b"not a key").unwrap_err(),
            AuthError::BadKey
        );
    }
}
