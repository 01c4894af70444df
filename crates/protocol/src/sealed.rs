//! The payload of a publication on an end-to-end encrypted channel: its shape and rules, no
//! cryptography (that is `cerebrum-e2ee`'s).
//!
//! On an encrypted channel the app payload is replaced by
//! `{"enc":"xchacha20poly1305","kid":"<key id>","nonce":"<base64url>","ct":"<base64url>"}`;
//! the envelope's `type` and `channel` stay in clear (the server routes on them) and are bound
//! to the ciphertext as associated data ([`SealedPayload::associated_data`]).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{MAX_FRAME_BYTES, ProtocolError};

/// The `enc` value of XChaCha20-Poly1305, the one cipher of this version.
pub const XCHACHA20POLY1305: &str = "xchacha20poly1305";
/// Bytes of an XChaCha20-Poly1305 nonce (`nonce` decodes to exactly this many).
pub const SEALED_NONCE_LEN: usize = 24;
/// Bytes of the Poly1305 tag at the end of `ct`.
pub const SEALED_TAG_LEN: usize = 16;
/// Longest key id, in characters.
pub const MAX_KEY_ID_LEN: usize = 64;

/// The cipher of a sealed payload (`enc`). Unknown names are refused, never guessed.
///
/// ```
/// use cerebrum_protocol::Cipher;
/// assert_eq!(Cipher::XChaCha20Poly1305.as_str(), "xchacha20poly1305");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Cipher {
    /// XChaCha20-Poly1305: a 32-byte key, a random 24-byte nonce, a 16-byte tag.
    #[default]
    XChaCha20Poly1305,
}

impl Cipher {
    /// The name written in `enc`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::XChaCha20Poly1305 => XCHACHA20POLY1305,
        }
    }
}

impl fmt::Display for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The id of a channel key (`kid`): 1-64 characters of `[A-Za-z0-9_.:-]`. It names a key, it
/// is not secret; receivers look the key up by it, so old ids keep opening after a rotation.
///
/// ```
/// use cerebrum_protocol::KeyId;
/// let kid = KeyId::new("2026-12")?;
/// assert_eq!(kid.as_str(), "2026-12");
/// assert!(KeyId::new("").is_err());
/// assert!(KeyId::new("no spaces").is_err());
/// # Ok::<(), cerebrum_protocol::ProtocolError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// Checks `id` against the rules and wraps it.
    pub fn new(id: impl Into<String>) -> Result<Self, ProtocolError> {
        let id = id.into();
        if id.is_empty() || id.len() > MAX_KEY_ID_LEN {
            return Err(ProtocolError::validation(
                "kid",
                "must be 1 to 64 characters long",
            ));
        }
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
        {
            return Err(ProtocolError::validation(
                "kid",
                "only A-Z, a-z, 0-9 and _ . : - are allowed",
            ));
        }
        Ok(Self(id))
    }

    /// The id as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for KeyId {
    type Err = ProtocolError;

    fn from_str(id: &str) -> Result<Self, Self::Err> {
        Self::new(id)
    }
}

/// The payload of a publication on an encrypted channel:
/// `{"enc","kid","nonce","ct"}`, the binary fields in base64url without padding.
///
/// Decoding checks everything but the cryptography: a known `enc`, a well-formed `kid`,
/// canonical base64url, a `nonce` of exactly 24 bytes, a `ct` of at least the 16-byte tag plus
/// one byte of JSON. Unknown fields are ignored, as in the envelope.
///
/// ```
/// use cerebrum_protocol::{Cipher, KeyId, SealedPayload};
/// let sealed = SealedPayload {
///     cipher: Cipher::XChaCha20Poly1305,
///     key_id: KeyId::new("k1")?,
///     nonce: [7; 24],
///     ciphertext: vec![1; 17],
/// };
/// let raw = sealed.to_raw();
/// assert!(raw.get().starts_with(r#"{"enc":"xchacha20poly1305","kid":"k1","nonce":"BwcH"#));
/// assert_eq!(SealedPayload::from_raw(&raw)?, sealed);
/// assert!(SealedPayload::claims_sealed(&raw));
/// # Ok::<(), cerebrum_protocol::ProtocolError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SealedPayload {
    /// The cipher (`enc`).
    pub cipher: Cipher,
    /// The id of the key it was sealed with (`kid`).
    pub key_id: KeyId,
    /// The random nonce (`nonce`).
    pub nonce: [u8; SEALED_NONCE_LEN],
    /// Ciphertext followed by the tag (`ct`).
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for SealedPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedPayload")
            .field("cipher", &self.cipher)
            .field("key_id", &self.key_id)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// The wire form, field order as written.
#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    enc: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    kid: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    nonce: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    ct: std::borrow::Cow<'a, str>,
}

/// Only the presence of `enc` (see [`SealedPayload::claims_sealed`]).
#[derive(Deserialize)]
struct Probe {
    enc: Option<serde::de::IgnoredAny>,
}

impl SealedPayload {
    /// Reads and checks a sealed payload; errors name the field (`payload.enc`, `payload.kid`,
    /// `payload.nonce`, `payload.ct`).
    pub fn from_raw(payload: &RawValue) -> Result<Self, ProtocolError> {
        let shape = || {
            ProtocolError::validation(
                "payload",
                "a sealed payload is an object with the strings enc, kid, nonce and ct",
            )
        };
        if !is_object(payload) {
            return Err(shape());
        }
        let wire: Wire<'_> = serde_json::from_str(payload.get()).map_err(|_| shape())?;
        let cipher = match wire.enc.as_ref() {
            XCHACHA20POLY1305 => Cipher::XChaCha20Poly1305,
            _ => {
                return Err(ProtocolError::validation(
                    "payload.enc",
                    "unknown cipher (this version knows xchacha20poly1305)",
                ));
            }
        };
        let key_id = KeyId::new(wire.kid.as_ref()).map_err(|err| err.within("payload"))?;
        let nonce = decode_field("payload.nonce", &wire.nonce, SEALED_NONCE_LEN)?;
        let nonce: [u8; SEALED_NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| ProtocolError::validation("payload.nonce", "must be 24 bytes"))?;
        if wire.ct.len() > MAX_FRAME_BYTES {
            return Err(ProtocolError::validation("payload.ct", "too long"));
        }
        let ciphertext = decode_field("payload.ct", &wire.ct, 0)?;
        if ciphertext.len() <= SEALED_TAG_LEN {
            return Err(ProtocolError::validation(
                "payload.ct",
                "shorter than the 16-byte tag plus one byte",
            ));
        }
        Ok(Self {
            cipher,
            key_id,
            nonce,
            ciphertext,
        })
    }

    /// The payload as raw JSON, ready for an [`Envelope`](crate::Envelope).
    #[must_use]
    pub fn to_raw(&self) -> Box<RawValue> {
        let wire = Wire {
            enc: self.cipher.as_str().into(),
            kid: self.key_id.as_str().into(),
            nonce: URL_SAFE_NO_PAD.encode(self.nonce).into(),
            ct: URL_SAFE_NO_PAD.encode(&self.ciphertext).into(),
        };
        // Four plain strings always serialise; the fallback keeps this path panic-free.
        serde_json::value::to_raw_value(&wire).unwrap_or_else(|_| RawValue::NULL.to_owned())
    }

    /// Whether `payload` presents itself as sealed: a JSON object with an `enc` member. A
    /// receiver tells "not sealed at all" (plaintext on an encrypted channel) from "sealed but
    /// malformed" with it.
    ///
    /// ```
    /// use cerebrum_protocol::SealedPayload;
    /// use serde_json::value::RawValue;
    /// let plain = RawValue::from_string(r#"{"text":"hi"}"#.into()).unwrap();
    /// assert!(!SealedPayload::claims_sealed(&plain));
    /// let broken = RawValue::from_string(r#"{"enc":"rot13"}"#.into()).unwrap();
    /// assert!(SealedPayload::claims_sealed(&broken));
    /// assert!(SealedPayload::from_raw(&broken).is_err());
    /// ```
    #[must_use]
    pub fn claims_sealed(payload: &RawValue) -> bool {
        is_object(payload)
            && serde_json::from_str::<Probe>(payload.get()).is_ok_and(|probe| probe.enc.is_some())
    }

    /// The associated data that binds a sealed payload to where it travels: `enc`, `channel`,
    /// `type` and `kid` joined by `\n` (none of them can contain one). A payload moved to
    /// another channel or type, or relabelled with another key id, fails to open.
    ///
    /// ```
    /// use cerebrum_protocol::{Cipher, KeyId, SealedPayload};
    /// let aad = SealedPayload::associated_data(
    ///     Cipher::XChaCha20Poly1305,
    ///     "chat:biology-101",
    ///     "chat.message",
    ///     &KeyId::new("k1")?,
    /// );
    /// assert_eq!(aad, b"xchacha20poly1305\nchat:biology-101\nchat.message\nk1");
    /// # Ok::<(), cerebrum_protocol::ProtocolError>(())
    /// ```
    #[must_use]
    pub fn associated_data(cipher: Cipher, channel: &str, kind: &str, key_id: &KeyId) -> Vec<u8> {
        let parts = [cipher.as_str(), channel, kind, key_id.as_str()];
        let mut aad = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                aad.push(b'\n');
            }
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }
}

/// Whether the raw JSON is an object (serde would also read a struct from an array).
fn is_object(payload: &RawValue) -> bool {
    payload.get().trim_start().starts_with('{')
}

/// Decodes canonical base64url without padding; `exact` > 0 also checks the decoded length.
fn decode_field(field: &str, text: &str, exact: usize) -> Result<Vec<u8>, ProtocolError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| ProtocolError::validation(field, "must be base64url without padding"))?;
    if exact > 0 && bytes.len() != exact {
        return Err(ProtocolError::validation(
            field,
            format!("must decode to {exact} bytes"),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    fn field_of(err: ProtocolError) -> String {
        match err {
            ProtocolError::Validation { field, .. } => field,
            other => format!("{other:?}"),
        }
    }

    const NONCE: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const CT: &str = "AAAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn each_rule_names_its_field() {
        let ok =
            format!(r#"{{"enc":"xchacha20poly1305","kid":"k1","nonce":"{NONCE}","ct":"{CT}"}}"#);
        let sealed = SealedPayload::from_raw(&raw(&ok)).unwrap();
        assert_eq!(sealed.nonce, [0; 24]);
        assert_eq!(sealed.ciphertext.len(), 17);
        assert_eq!(sealed.to_raw().get(), ok);

        let cases = [
            (
                r#"{"enc":"aes","kid":"k1","nonce":"N","ct":"C"}"#,
                "payload.enc",
            ),
            (
                r#"{"enc":"xchacha20poly1305","kid":"k 1","nonce":"N","ct":"C"}"#,
                "payload.kid",
            ),
            (
                r#"{"enc":"xchacha20poly1305","kid":"k1","nonce":"AAAA","ct":"C"}"#,
                "payload.nonce",
            ),
            (
                r#"{"enc":"xchacha20poly1305","kid":"k1","nonce":"N","ct":"AAAAAAAAAAAAAAAAAAAAAA"}"#,
                "payload.ct",
            ),
            (
                r#"{"enc":"xchacha20poly1305","kid":"k1","nonce":"N","ct":"A+A/"}"#,
                "payload.ct",
            ),
            (
                r#"{"enc":"xchacha20poly1305","kid":"k1","nonce":"N"}"#,
                "payload",
            ),
            (
                r#"{"enc":"xchacha20poly1305","kid":1,"nonce":"N","ct":"C"}"#,
                "payload",
            ),
            ("[1]", "payload"),
            (r#"["xchacha20poly1305","k1","N","C"]"#, "payload"),
        ];
        for (text, field) in cases {
            let text = text
                .replace("\"N\"", &format!("\"{NONCE}\""))
                .replace("\"C\"", &format!("\"{CT}\""));
            let err = SealedPayload::from_raw(&raw(&text)).unwrap_err();
            assert_eq!(field_of(err), field, "{text}");
        }
    }

    #[test]
    fn non_canonical_base64_is_refused() {
        // 17 bytes end in a 3-character group whose last character carries 2 unused bits:
        // a final "B" sets one of them, so it is not the canonical spelling of any bytes.
        let text = format!(
            r#"{{"enc":"xchacha20poly1305","kid":"k1","nonce":"{NONCE}","ct":"AAAAAAAAAAAAAAAAAAAAAAB"}}"#
        );
        assert_eq!(
            field_of(SealedPayload::from_raw(&raw(&text)).unwrap_err()),
            "payload.ct"
        );
        let padded =
            format!(r#"{{"enc":"xchacha20poly1305","kid":"k1","nonce":"{NONCE}","ct":"{CT}="}}"#);
        assert_eq!(
            field_of(SealedPayload::from_raw(&raw(&padded)).unwrap_err()),
            "payload.ct"
        );
    }

    #[test]
    fn plaintext_does_not_claim_to_be_sealed() {
        assert!(!SealedPayload::claims_sealed(&raw("null")));
        assert!(!SealedPayload::claims_sealed(&raw(r#""enc""#)));
        assert!(!SealedPayload::claims_sealed(&raw(r#"{"text":"enc"}"#)));
        assert!(!SealedPayload::claims_sealed(&raw(r#"{"enc":null,"x":1}"#)));
        assert!(!SealedPayload::claims_sealed(&raw(r#"[1]"#)));
        assert!(SealedPayload::claims_sealed(&raw(r#"{"enc":1}"#)));
    }

    #[test]
    fn debug_shows_no_bytes() {
        let sealed = SealedPayload {
            cipher: Cipher::XChaCha20Poly1305,
            key_id: KeyId::new("k1").unwrap(),
            nonce: [9; 24],
            ciphertext: vec![42; 20],
        };
        let text = format!("{sealed:?}");
        assert!(text.contains("ciphertext_len: 20"));
        assert!(!text.contains("42"));
    }
}
