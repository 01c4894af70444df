//! Message ids: unique, sortable by time, made without a lock.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Deserializer, Serialize};

use crate::{ProtocolError, validate_message_id};

/// The `messageId` of an envelope: 1-64 characters (PROTOCOL.md section 2).
///
/// Ids made by [`MessageIdGenerator`] are 26 characters of Crockford base32 that sort by their
/// millisecond timestamp; ids received from level-0 peers may be any valid string.
///
/// ```
/// use cerebrum_protocol::MessageId;
/// let id = MessageId::new("m-1").unwrap();
/// assert_eq!(id.as_str(), "m-1");
/// assert!(MessageId::new("").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct MessageId(String);

impl MessageId {
    /// Checks `id` against the rules and wraps it.
    pub fn new(id: impl Into<String>) -> Result<Self, ProtocolError> {
        let id = id.into();
        validate_message_id(&id)?;
        Ok(Self(id))
    }

    /// The id as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an owned string.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for MessageId {
    type Err = ProtocolError;

    fn from_str(id: &str) -> Result<Self, Self::Err> {
        Self::new(id)
    }
}

impl AsRef<str> for MessageId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = String::deserialize(deserializer)?;
        Self::new(id).map_err(serde::de::Error::custom)
    }
}

/// Makes [`MessageId`]s: 48 bits of Unix milliseconds, 32 bits naming the generator, 48 bits of
/// a per-generator sequence, written as 26 characters of Crockford base32.
///
/// The generator takes the time as an argument (so sans-IO code stays clock-free) and uses one
/// atomic counter, so it can be shared between threads without a lock. Ids of one generator
/// sort by time, and within a millisecond by the order they were made.
///
/// ```
/// use cerebrum_protocol::MessageIdGenerator;
/// let ids = MessageIdGenerator::new();
/// let a = ids.next(1_732_752_000_000);
/// let b = ids.next(1_732_752_000_000);
/// let c = ids.next(1_732_752_000_001);
/// assert!(a < b && b < c);
/// assert_eq!(a.as_str().len(), 26);
/// ```
#[derive(Debug)]
pub struct MessageIdGenerator {
    node: u32,
    sequence: AtomicU64,
}

const SEQUENCE_MASK: u64 = (1 << 48) - 1;
const TIMESTAMP_MASK: u64 = (1 << 48) - 1;
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl MessageIdGenerator {
    /// A generator with a random node number (from the standard library's hash seed).
    #[must_use]
    pub fn new() -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(0x5eed);
        Self::with_node(hasher.finish() as u32)
    }

    /// A generator with a fixed node number: the same calls give the same ids (for tests and
    /// simulations).
    #[must_use]
    pub fn with_node(node: u32) -> Self {
        Self {
            node,
            sequence: AtomicU64::new(0),
        }
    }

    /// The next id, stamped with `unix_ms` (milliseconds since the Unix epoch).
    pub fn next(&self, unix_ms: u64) -> MessageId {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed) & SEQUENCE_MASK;
        let value = (u128::from(unix_ms & TIMESTAMP_MASK) << 80)
            | (u128::from(self.node) << 48)
            | u128::from(sequence);
        let mut text = [0u8; 26];
        for (i, slot) in text.iter_mut().enumerate() {
            let shift = 5 * (25 - i);
            *slot = CROCKFORD[((value >> shift) & 0x1f) as usize];
        }
        // The alphabet is ASCII, so the bytes are UTF-8 (copied at once, not char by char).
        MessageId(String::from_utf8(text.to_vec()).unwrap_or_default())
    }
}

impl Default for MessageIdGenerator {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_unique_and_sorted_by_time_then_sequence() {
        let ids = MessageIdGenerator::with_node(7);
        let mut seen = HashSet::new();
        let mut last = None;
        for ms in [1u64, 1, 2, 1_000_000, 1_732_752_000_000, 1_732_752_000_000] {
            for _ in 0..100 {
                let id = ids.next(ms);
                assert!(seen.insert(id.clone()));
                if let Some(previous) = &last {
                    assert!(id > *previous, "{id} after {previous}");
                }
                last = Some(id);
            }
        }
    }

    #[test]
    fn generators_with_different_nodes_do_not_collide() {
        let a = MessageIdGenerator::with_node(1);
        let b = MessageIdGenerator::with_node(2);
        assert_ne!(a.next(5), b.next(5));
    }

    #[test]
    fn deserializing_checks_the_rules() {
        assert!(serde_json::from_str::<MessageId>("\"\"").is_err());
        assert!(serde_json::from_str::<MessageId>("\"ok\"").is_ok());
    }
}
