//! Where keys come from: the [`KeyProvider`] trait and the ready [`Keyring`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use cerebrum_protocol::{KeyId, Namespace, ProtocolError, validate_channel};

use crate::ChannelKey;

/// The app's keys, per channel. A channel is encrypted when it has a sealing key; every
/// publication delivered from an encrypted channel must then open, or it is refused.
///
/// Implement it over the app's own key store, or use [`Keyring`].
///
/// ```
/// use cerebrum_e2ee::{ChannelKey, KeyProvider};
/// use cerebrum_protocol::KeyId;
///
/// /// One key for every channel of the `secret` namespace.
/// struct Namespace(ChannelKey);
///
/// impl KeyProvider for Namespace {
///     fn sealing_key(&self, channel: &str) -> Option<(KeyId, ChannelKey)> {
///         if !channel.starts_with("secret:") {
///             return None;
///         }
///         Some((KeyId::new("v1").ok()?, self.0.clone()))
///     }
///     fn opening_key(&self, channel: &str, key_id: &KeyId) -> Option<ChannelKey> {
///         (channel.starts_with("secret:") && key_id.as_str() == "v1").then(|| self.0.clone())
///     }
/// }
///
/// let keys = Namespace(ChannelKey::from_bytes([1; 32]));
/// assert!(keys.is_encrypted("secret:plans"));
/// assert!(!keys.is_encrypted("chat:open"));
/// ```
pub trait KeyProvider: Send + Sync {
    /// The key new publications on `channel` are sealed with, and its id; `None` when the
    /// channel is not encrypted.
    fn sealing_key(&self, channel: &str) -> Option<(KeyId, ChannelKey)>;

    /// The key of `channel` with id `key_id`, current or retired; `None` when unknown.
    fn opening_key(&self, channel: &str, key_id: &KeyId) -> Option<ChannelKey>;

    /// Whether `channel` is encrypted (it has a sealing key).
    fn is_encrypted(&self, channel: &str) -> bool {
        self.sealing_key(channel).is_some()
    }
}

/// Why a [`Keyring`] refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// The channel name is malformed.
    #[error(transparent)]
    Channel(#[from] ProtocolError),
    /// Only the server publishes on `system` and `user:…`, and it publishes presence on
    /// `session:…`: it cannot seal, so these channels cannot be encrypted.
    #[error("`{0}` carries the server's own messages and cannot be encrypted")]
    ServerChannel(String),
    /// The key id is already used on this channel for another key.
    #[error("key id `{0}` is already used for another key of this channel")]
    KeyIdTaken(KeyId),
    /// The current key of a channel cannot be retired: insert its successor first.
    #[error("key id `{0}` is the channel's current key; insert a new one before retiring it")]
    Current(KeyId),
}

#[derive(Default)]
struct Ring {
    current: Option<KeyId>,
    keys: HashMap<KeyId, ChannelKey>,
}

/// A thread-safe, cheaply cloned set of channel keys with rotation: the key inserted last
/// for a channel seals; every key still in the ring opens.
///
/// ```
/// use cerebrum_e2ee::{ChannelKey, KeyProvider, Keyring};
/// use cerebrum_protocol::KeyId;
///
/// let keys = Keyring::new();
/// let (k1, k2) = (KeyId::new("2026-11")?, KeyId::new("2026-12")?);
/// keys.insert("chat:staff", k1.clone(), ChannelKey::from_bytes([1; 32]))?;
/// keys.insert("chat:staff", k2.clone(), ChannelKey::from_bytes([2; 32]))?; // rotation
/// assert_eq!(keys.sealing_key("chat:staff").map(|(id, _)| id), Some(k2.clone()));
/// assert!(keys.opening_key("chat:staff", &k1).is_some()); // old messages still open
/// keys.retire("chat:staff", &k1)?;
/// assert!(keys.opening_key("chat:staff", &k1).is_none());
/// assert!(keys.insert("user:42", k1, ChannelKey::from_bytes([3; 32])).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct Keyring {
    rings: Arc<RwLock<HashMap<String, Ring>>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rings = self.rings.read().unwrap_or_else(PoisonError::into_inner);
        let mut map = f.debug_map();
        for (channel, ring) in rings.iter() {
            let mut ids: Vec<&str> = ring.keys.keys().map(KeyId::as_str).collect();
            ids.sort_unstable();
            map.entry(channel, &ids);
        }
        map.finish()
    }
}

impl Keyring {
    /// An empty keyring: no channel is encrypted.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key` under `key_id` to `channel` and makes it the channel's current (sealing)
    /// key; keys inserted before keep opening. Inserting an id already in the ring with the same
    /// key makes it current again (a rollback); with another key it is refused.
    pub fn insert(
        &self,
        channel: &str,
        key_id: KeyId,
        key: ChannelKey,
    ) -> Result<(), KeyringError> {
        validate_channel(channel)?;
        if matches!(
            Namespace::of(channel),
            Namespace::System | Namespace::User(_) | Namespace::Session(_)
        ) {
            return Err(KeyringError::ServerChannel(channel.to_owned()));
        }
        let mut rings = self.rings.write().unwrap_or_else(PoisonError::into_inner);
        let ring = rings.entry(channel.to_owned()).or_default();
        if let Some(existing) = ring.keys.get(&key_id)
            && *existing != key
        {
            return Err(KeyringError::KeyIdTaken(key_id));
        }
        ring.keys.insert(key_id.clone(), key);
        ring.current = Some(key_id);
        Ok(())
    }

    /// Forgets a retired key: publications sealed with it no longer open. Returns whether it
    /// was there.
    pub fn retire(&self, channel: &str, key_id: &KeyId) -> Result<bool, KeyringError> {
        let mut rings = self.rings.write().unwrap_or_else(PoisonError::into_inner);
        let Some(ring) = rings.get_mut(channel) else {
            return Ok(false);
        };
        if ring.current.as_ref() == Some(key_id) {
            return Err(KeyringError::Current(key_id.clone()));
        }
        Ok(ring.keys.remove(key_id).is_some())
    }

    /// Stops encrypting `channel` and forgets all its keys. Returns whether it was encrypted.
    pub fn remove_channel(&self, channel: &str) -> bool {
        let mut rings = self.rings.write().unwrap_or_else(PoisonError::into_inner);
        rings.remove(channel).is_some()
    }
}

impl KeyProvider for Keyring {
    fn sealing_key(&self, channel: &str) -> Option<(KeyId, ChannelKey)> {
        let rings = self.rings.read().unwrap_or_else(PoisonError::into_inner);
        let ring = rings.get(channel)?;
        let id = ring.current.as_ref()?;
        Some((id.clone(), ring.keys.get(id)?.clone()))
    }

    fn opening_key(&self, channel: &str, key_id: &KeyId) -> Option<ChannelKey> {
        let rings = self.rings.read().unwrap_or_else(PoisonError::into_inner);
        rings.get(channel)?.keys.get(key_id).cloned()
    }

    fn is_encrypted(&self, channel: &str) -> bool {
        let rings = self.rings.read().unwrap_or_else(PoisonError::into_inner);
        rings
            .get(channel)
            .is_some_and(|ring| ring.current.is_some())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn debug_lists_ids_never_keys() {
        let keys = Keyring::new();
        keys.insert(
            "chat:a",
            KeyId::new("k1").unwrap(),
            ChannelKey::from_bytes([0xAB; 32]),
        )
        .unwrap();
        let text = format!("{keys:?}");
        assert!(text.contains("chat:a") && text.contains("k1"), "{text}");
        assert!(
            !text.contains("171") && !text.to_lowercase().contains("ab, "),
            "{text}"
        );
    }

    #[test]
    fn a_key_id_names_one_key_per_channel() {
        let keys = Keyring::new();
        let id = KeyId::new("k1").unwrap();
        keys.insert("chat:a", id.clone(), ChannelKey::from_bytes([1; 32]))
            .unwrap();
        keys.insert("chat:a", id.clone(), ChannelKey::from_bytes([1; 32]))
            .unwrap();
        assert_eq!(
            keys.insert("chat:a", id.clone(), ChannelKey::from_bytes([2; 32])),
            Err(KeyringError::KeyIdTaken(id.clone()))
        );
        assert_eq!(keys.retire("chat:a", &id), Err(KeyringError::Current(id)));
        assert!(keys.remove_channel("chat:a"));
        assert!(!keys.is_encrypted("chat:a"));
    }

    #[test]
    fn server_channels_are_refused() {
        let keys = Keyring::new();
        for channel in ["system", "user:42", "session:genetics"] {
            assert!(matches!(
                keys.insert(
                    channel,
                    KeyId::new("k").unwrap(),
                    ChannelKey::from_bytes([1; 32])
                ),
                Err(KeyringError::ServerChannel(_))
            ));
        }
        assert!(matches!(
            keys.insert(
                "bad name",
                KeyId::new("k").unwrap(),
                ChannelKey::from_bytes([1; 32])
            ),
            Err(KeyringError::Channel(_))
        ));
    }
}
