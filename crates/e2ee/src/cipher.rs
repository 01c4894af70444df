//! Sealing and opening: XChaCha20-Poly1305 over the payload's JSON text.

use std::fmt;
use std::sync::Arc;

use cerebrum_protocol::{
    Cipher, Envelope, KeyId, MAX_DEPTH, ProtocolError, SEALED_NONCE_LEN, SealedPayload, check_depth,
};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde_json::value::RawValue;

use crate::{ChannelKey, KeyProvider};

/// Why a payload was not sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The system's random number generator failed to give a nonce.
    #[error("no randomness available for a nonce: {0}")]
    Random(String),
    /// The cipher refused the input (larger than XChaCha20 can encrypt; never for a frame).
    #[error("the payload could not be encrypted")]
    Cipher,
    /// The sealed envelope breaks a protocol rule.
    #[error(transparent)]
    Envelope(#[from] ProtocolError),
}

/// Why a publication delivered from an encrypted channel was refused. None of these is ever
/// handed to the app as data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The payload is not sealed at all: plaintext on a channel the app declared encrypted.
    #[error("plaintext payload on an encrypted channel")]
    NotSealed,
    /// The payload claims to be sealed but breaks the shape (unknown `enc`, bad base64url,
    /// wrong nonce length, …).
    #[error("malformed sealed payload: {0}")]
    Malformed(ProtocolError),
    /// No key with this id is known for the channel (never given, or retired).
    #[error("unknown key id `{key_id}`")]
    UnknownKey {
        /// The payload's `kid`.
        key_id: KeyId,
    },
    /// Authentication failed: the ciphertext, nonce or key id was tampered with, the key is
    /// wrong, or the payload was sealed for another channel or type.
    #[error("the payload does not authenticate (tampered, wrong key, or another channel or type)")]
    Authentication,
    /// It authenticated, but the plaintext is not JSON text within the depth limit.
    #[error("the decrypted payload is not valid JSON: {0}")]
    Plaintext(ProtocolError),
}

/// Seals `plaintext` (an app payload's JSON text) for `channel` and message type `kind` with
/// `key` under `key_id` and the given `nonce`.
///
/// The nonce must never repeat under one key: [`ChannelCrypto::seal`] draws 24 random bytes
/// for each message. Passing it here is for test vectors and for apps with their own RNG.
///
/// ```
/// use cerebrum_e2ee::{ChannelKey, open_payload, seal_payload};
/// use cerebrum_protocol::KeyId;
/// use serde_json::value::RawValue;
///
/// let key = ChannelKey::from_bytes([7; 32]);
/// let text = RawValue::from_string(r#"{"text":"hi"}"#.into())?;
/// let kid = KeyId::new("k1")?;
/// let sealed = seal_payload(&key, &kid, "chat:a", "chat.message", &text, [1; 24])?;
/// assert_eq!(sealed.ciphertext.len(), text.get().len() + 16);
/// let opened = open_payload(&key, "chat:a", "chat.message", &sealed)?;
/// assert_eq!(opened.get(), text.get());
/// assert!(open_payload(&key, "chat:b", "chat.message", &sealed).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn seal_payload(
    key: &ChannelKey,
    key_id: &KeyId,
    channel: &str,
    kind: &str,
    plaintext: &RawValue,
    nonce: [u8; SEALED_NONCE_LEN],
) -> Result<SealedPayload, SealError> {
    let cipher = Cipher::XChaCha20Poly1305;
    let aad = SealedPayload::associated_data(cipher, channel, kind, key_id);
    let aead = XChaCha20Poly1305::new(key.as_bytes().into());
    let ciphertext = aead
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext.get().as_bytes(),
                aad: &aad,
            },
        )
        .map_err(|_| SealError::Cipher)?;
    Ok(SealedPayload {
        cipher,
        key_id: key_id.clone(),
        nonce,
        ciphertext,
    })
}

/// Opens a sealed payload delivered from `channel` with type `kind`: the app payload's JSON
/// text, or why not.
pub fn open_payload(
    key: &ChannelKey,
    channel: &str,
    kind: &str,
    sealed: &SealedPayload,
) -> Result<Box<RawValue>, OpenError> {
    let aad = SealedPayload::associated_data(sealed.cipher, channel, kind, &sealed.key_id);
    let aead = XChaCha20Poly1305::new(key.as_bytes().into());
    let plaintext = aead
        .decrypt(
            &XNonce::from(sealed.nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| OpenError::Authentication)?;
    let text = String::from_utf8(plaintext).map_err(|_| {
        OpenError::Plaintext(ProtocolError::InvalidJson {
            detail: "not UTF-8".into(),
        })
    })?;
    check_depth(&text, MAX_DEPTH).map_err(OpenError::Plaintext)?;
    RawValue::from_string(text).map_err(|err| {
        OpenError::Plaintext(ProtocolError::InvalidJson {
            detail: format!("line {} column {}", err.line(), err.column()),
        })
    })
}

/// The app's key provider put to work: seals envelopes bound for encrypted channels, opens
/// envelopes delivered from them, and leaves every other channel alone. Cheap to clone.
///
/// ```
/// use cerebrum_e2ee::{ChannelCrypto, ChannelKey, Keyring, OpenError};
/// use cerebrum_protocol::{Envelope, KeyId};
///
/// let keys = Keyring::new();
/// keys.insert("chat:secret", KeyId::new("k1")?, ChannelKey::from_bytes([7; 32]))?;
/// let crypto = ChannelCrypto::new(keys);
///
/// // Plaintext delivered from an encrypted channel is refused, not passed on.
/// let forged = Envelope::from_value("chat.message", &serde_json::json!({"text": "trust me"}))?
///     .with_channel("chat:secret")?;
/// assert_eq!(crypto.open(forged).unwrap_err(), OpenError::NotSealed);
///
/// // Other channels are not touched.
/// let open = Envelope::from_value("chat.message", &1)?.with_channel("chat:lobby")?;
/// assert_eq!(crypto.open(open.clone())?, open);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ChannelCrypto {
    provider: Arc<dyn KeyProvider>,
}

impl fmt::Debug for ChannelCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChannelCrypto(<keys redacted>)")
    }
}

impl ChannelCrypto {
    /// Puts `provider` to work.
    pub fn new(provider: impl KeyProvider + 'static) -> Self {
        Self {
            provider: Arc::new(provider),
        }
    }

    /// The same, for a provider already shared.
    #[must_use]
    pub fn from_shared(provider: Arc<dyn KeyProvider>) -> Self {
        Self { provider }
    }

    /// Whether `channel` is encrypted.
    #[must_use]
    pub fn is_encrypted(&self, channel: &str) -> bool {
        self.provider.is_encrypted(channel)
    }

    /// Seals `envelope`'s payload for `channel` with the channel's current key and a fresh
    /// random nonce; returns it unchanged when `channel` is not encrypted. The `type` and every
    /// other envelope field are kept.
    pub fn seal(&self, channel: &str, envelope: Envelope) -> Result<Envelope, SealError> {
        let Some((key_id, key)) = self.provider.sealing_key(channel) else {
            return Ok(envelope);
        };
        let mut nonce = [0u8; SEALED_NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|err| SealError::Random(err.to_string()))?;
        let sealed = seal_payload(
            &key,
            &key_id,
            channel,
            envelope.kind(),
            envelope.payload(),
            nonce,
        )?;
        let (kind, _, meta) = envelope.into_parts();
        Ok(Envelope::new(kind, sealed.to_raw())?.with_meta(meta))
    }

    /// Opens a delivered envelope when its `channel` is encrypted (the payload becomes the app
    /// payload again, every other field is kept); returns it unchanged when it has no channel
    /// or the channel is not encrypted.
    pub fn open(&self, envelope: Envelope) -> Result<Envelope, OpenError> {
        let Some(channel) = envelope.channel() else {
            return Ok(envelope);
        };
        if !self.provider.is_encrypted(channel) {
            return Ok(envelope);
        }
        if !SealedPayload::claims_sealed(envelope.payload()) {
            return Err(OpenError::NotSealed);
        }
        let sealed = SealedPayload::from_raw(envelope.payload()).map_err(OpenError::Malformed)?;
        let key = self
            .provider
            .opening_key(channel, &sealed.key_id)
            .ok_or_else(|| OpenError::UnknownKey {
                key_id: sealed.key_id.clone(),
            })?;
        let plaintext = open_payload(&key, channel, envelope.kind(), &sealed)?;
        let (kind, _, meta) = envelope.into_parts();
        Envelope::new(kind, plaintext)
            .map(|envelope| envelope.with_meta(meta))
            .map_err(OpenError::Plaintext)
    }
}
