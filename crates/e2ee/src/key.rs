//! [`ChannelKey`]: the secret, never shown, wiped on drop.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// Why a key could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not base64url (without padding) of exactly 32 bytes.
    #[error("a channel key is 32 bytes in base64url without padding (43 characters)")]
    Encoding,
    /// The system's random number generator failed.
    #[error("no randomness available: {0}")]
    Random(String),
}

/// A 32-byte XChaCha20-Poly1305 key of a channel. `Debug` shows no byte of it, equality is
/// checked in constant time, and its memory is zeroed when it is dropped (the cipher's own copy
/// too: chacha20poly1305's `zeroize` feature).
///
/// ```
/// use cerebrum_e2ee::ChannelKey;
/// let key = ChannelKey::from_base64url("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc")?;
/// assert_eq!(key, ChannelKey::from_bytes([7; 32]));
/// assert_eq!(format!("{key:?}"), "ChannelKey(<redacted>)");
/// let fresh = ChannelKey::generate()?;
/// assert_ne!(fresh, key);
/// # Ok::<(), cerebrum_e2ee::KeyError>(())
/// ```
#[derive(Clone)]
pub struct ChannelKey([u8; 32]);

/// Compared in constant time: equality of secrets must not leak through timing.
impl PartialEq for ChannelKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for ChannelKey {}

impl ChannelKey {
    /// A key from its 32 bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A key from its base64url text (43 characters, no padding), as apps keep keys in
    /// configuration and the JavaScript client takes them.
    pub fn from_base64url(text: &str) -> Result<Self, KeyError> {
        let mut bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| KeyError::Encoding)?;
        let key = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyError::Encoding);
        bytes.zeroize();
        key.map(Self)
    }

    /// A fresh random key from the system's RNG.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|err| KeyError::Random(err.to_string()))?;
        Ok(Self(bytes))
    }

    /// The key's bytes, for the cipher (and for handing the key to another client).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ChannelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChannelKey(<redacted>)")
    }
}

impl Drop for ChannelKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}
