//! Conflation for slow readers: which queued frames a newer one makes obsolete.
//!
//! A publication may carry a [`ConflationKey`], computed **once** by the hub (not per
//! subscriber) from [`ConflationRules`]. While a connection's [`crate::outbox::Outbox`] holds at
//! least its conflation threshold of frames, or its driver is behind (the socket took no more,
//! so what is queued is all the reader will get), a newer frame with a key removes the queued frame
//! with the same key, and is appended at the end of the queue (the older frame is removed, the
//! newer takes no earlier place): a channel's frames stay in increasing offset order, and a
//! client whose connection drops has, at any point of the queue it read up to, a last offset
//! below the newer frame's, so its resume replays the newer frame from history (`recovered`
//! stays true: nothing it lacks is skipped). Frames without a key are never removed.
//!
//! Keys:
//!
//! | channel | type | key |
//! |---|---|---|
//! | `user:<id>` | `study_metrics_update` | the channel (one user's latest metrics) |
//! | `system` | `system_status` | the channel (the latest status) |
//! | a namespace given a rule `NAMESPACE=FIELD` | any | channel, type and the payload's `FIELD` value (a string, number or boolean; publications without it have no key) |
//!
//! ```
//! use cerebrum_protocol::Envelope;
//! use cerebrum_server_core::conflate::{ConflateRule, ConflationRules};
//!
//! let rules = ConflationRules::new(vec!["prices=symbol".parse::<ConflateRule>()?]);
//! let btc = Envelope::from_value("tick", &serde_json::json!({"symbol": "BTC", "price": 1}))?;
//! let newer = Envelope::from_value("tick", &serde_json::json!({"symbol": "BTC", "price": 2}))?;
//! let eth = Envelope::from_value("tick", &serde_json::json!({"symbol": "ETH", "price": 3}))?;
//! assert_eq!(rules.key("prices:spot", &btc), rules.key("prices:spot", &newer));
//! assert_ne!(rules.key("prices:spot", &btc), rules.key("prices:spot", &eth));
//! assert_eq!(rules.key("chat:1", &btc), None); // no rule for `chat`
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use cerebrum_protocol::{Envelope, SYSTEM_CHANNEL};
use serde_json::value::RawValue;

/// The type whose newest value per user is all a slow reader needs.
const STUDY_METRICS: &str = "study_metrics_update";
/// The type whose newest value is all a slow reader needs.
const SYSTEM_STATUS: &str = "system_status";
/// The namespace of the users' own channels.
const USER_NAMESPACE: &str = "user";

/// What makes queued frames replaceable by a newer one: two frames with equal keys are two
/// values of the same thing, and only the newer matters to a reader that has fallen behind.
///
/// Cloning shares it (a reference count); comparing looks at a precomputed hash first.
#[derive(Clone)]
pub struct ConflationKey(Arc<KeyInner>);

struct KeyInner {
    hash: u64,
    text: Box<str>,
}

impl ConflationKey {
    /// A key made of `text` (built by [`ConflationRules`]; public for tests and tools).
    #[must_use]
    pub fn new(text: &str) -> Self {
        // A fixed hasher: equal texts have equal hashes in every process.
        let mut hasher = std::hash::DefaultHasher::new();
        text.hash(&mut hasher);
        Self(Arc::new(KeyInner {
            hash: hasher.finish(),
            text: text.into(),
        }))
    }

    /// The key's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0.text
    }
}

impl PartialEq for ConflationKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.hash == other.0.hash && self.0.text == other.0.text)
    }
}

impl Eq for ConflationKey {}

impl Hash for ConflationKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

impl std::fmt::Debug for ConflationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ConflationKey")
            .field(&self.as_str())
            .finish()
    }
}

/// A namespace's opt-in to conflation: publications on its channels are keyed by the value of
/// `field` in their payload (`--conflate NAMESPACE=FIELD`).
///
/// ```
/// use cerebrum_server_core::conflate::ConflateRule;
/// let rule: ConflateRule = "metrics=userId".parse()?;
/// assert_eq!((rule.namespace.as_str(), rule.field.as_str()), ("metrics", "userId"));
/// assert_eq!(rule.to_string(), "metrics=userId");
/// assert!("metrics".parse::<ConflateRule>().is_err());
/// # Ok::<(), cerebrum_server_core::conflate::ConflateRuleError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConflateRule {
    /// The namespace: the part of a channel's name before its first `:` (the whole name when
    /// it has none).
    pub namespace: String,
    /// The payload field whose value is the key.
    pub field: String,
}

/// A `NAMESPACE=FIELD` that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConflateRuleError {
    /// No `=` between namespace and field.
    #[error("`{0}` is not NAMESPACE=FIELD")]
    Shape(String),
    /// The namespace is empty or has characters no channel name has.
    #[error("`{0}` is not a channel namespace (1-128 characters of A-Z a-z 0-9 _ . @ -)")]
    Namespace(String),
    /// The field is empty.
    #[error("the payload field of `{0}` is empty")]
    Field(String),
}

impl std::str::FromStr for ConflateRule {
    type Err = ConflateRuleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((namespace, field)) = text.split_once('=') else {
            return Err(ConflateRuleError::Shape(text.to_owned()));
        };
        let valid_namespace = !namespace.is_empty()
            && namespace.len() <= 128
            && namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b'-'));
        if !valid_namespace {
            return Err(ConflateRuleError::Namespace(namespace.to_owned()));
        }
        if field.is_empty() {
            return Err(ConflateRuleError::Field(text.to_owned()));
        }
        Ok(Self {
            namespace: namespace.to_owned(),
            field: field.to_owned(),
        })
    }
}

impl std::fmt::Display for ConflateRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.namespace, self.field)
    }
}

/// Which publications have a [`ConflationKey`]: the built-in ones (a user's
/// `study_metrics_update`, the `system_status`) and the namespaces that opted in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConflationRules {
    /// Namespace → payload field.
    fields: HashMap<String, String>,
}

impl ConflationRules {
    /// The built-in rules and `rules` (a namespace named twice keeps its last field).
    #[must_use]
    pub fn new(rules: impl IntoIterator<Item = ConflateRule>) -> Self {
        Self {
            fields: rules
                .into_iter()
                .map(|rule| (rule.namespace, rule.field))
                .collect(),
        }
    }

    /// Whether publications on `channel` may have a key (cheap: no payload is read).
    #[must_use]
    pub fn may_conflate(&self, channel: &str) -> bool {
        let namespace = namespace(channel);
        namespace == USER_NAMESPACE
            || channel == SYSTEM_CHANNEL
            || (!self.fields.is_empty() && self.fields.contains_key(namespace))
    }

    /// The key of `envelope` published on `channel`, if it has one.
    #[must_use]
    pub fn key(&self, channel: &str, envelope: &Envelope) -> Option<ConflationKey> {
        self.key_of(channel, envelope.kind(), envelope.payload())
    }

    /// The key of a publication received as encoded `text` (from a remote broker): decoded
    /// only when its channel may conflate at all.
    #[must_use]
    pub fn key_of_text(&self, channel: &str, text: &str) -> Option<ConflationKey> {
        if !self.may_conflate(channel) {
            return None;
        }
        let envelope = cerebrum_protocol::decode(text).ok()?;
        self.key(channel, &envelope)
    }

    fn key_of(&self, channel: &str, kind: &str, payload: &RawValue) -> Option<ConflationKey> {
        let namespace = namespace(channel);
        let builtin = (namespace == USER_NAMESPACE && kind == STUDY_METRICS)
            || (channel == SYSTEM_CHANNEL && kind == SYSTEM_STATUS);
        if builtin {
            return Some(ConflationKey::new(&format!("{channel}\0{kind}")));
        }
        if self.fields.is_empty() {
            return None;
        }
        let field = self.fields.get(namespace)?;
        let value = field_value(payload, field)?;
        Some(ConflationKey::new(&format!("{channel}\0{kind}\0{value}")))
    }
}

/// The part of a channel's name before its first `:`.
fn namespace(channel: &str) -> &str {
    channel.split_once(':').map_or(channel, |(ns, _)| ns)
}

/// The raw JSON text of `field` in an object `payload`, when it is a string, number or
/// boolean.
fn field_value<'a>(payload: &'a RawValue, field: &str) -> Option<&'a str> {
    let fields: HashMap<Cow<'a, str>, &'a RawValue> = serde_json::from_str(payload.get()).ok()?;
    let value = fields.get(field)?.get();
    let scalar = matches!(
        value.as_bytes().first(),
        Some(b'"' | b'-' | b'0'..=b'9' | b't' | b'f')
    );
    scalar.then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(kind: &str, payload: &serde_json::Value) -> Envelope {
        Envelope::from_value(kind, payload).unwrap()
    }

    #[test]
    fn builtin_keys_are_per_user_metrics_and_the_system_status() {
        let rules = ConflationRules::default();
        let metrics = envelope(STUDY_METRICS, &json!({"userId": "a"}));
        let a = rules.key("user:a", &metrics).unwrap();
        assert_eq!(rules.key("user:a", &metrics), Some(a.clone()));
        assert_ne!(rules.key("user:b", &metrics), Some(a));
        assert!(
            rules
                .key("system", &envelope(SYSTEM_STATUS, &json!({})))
                .is_some()
        );
        // Other types of those channels, and other channels, never conflate.
        assert_eq!(
            rules.key("user:a", &envelope("notification", &json!({}))),
            None
        );
        assert_eq!(rules.key("system", &envelope("other", &json!({}))), None);
        assert_eq!(rules.key("chat:1", &metrics), None);
        assert!(!rules.may_conflate("chat:1"));
    }

    #[test]
    fn app_keys_are_channel_type_and_field_value() {
        let rules = ConflationRules::new(["m=userId".parse::<ConflateRule>().unwrap()]);
        let key = |channel: &str, kind: &str, payload: serde_json::Value| {
            rules.key(channel, &envelope(kind, &payload))
        };
        let a = key("m:1", "x", json!({"userId": "a", "n": 1}));
        assert!(a.is_some());
        assert_eq!(a, key("m:1", "x", json!({"n": 2, "userId": "a"})));
        assert_ne!(a, key("m:2", "x", json!({"userId": "a"})));
        assert_ne!(a, key("m:1", "y", json!({"userId": "a"})));
        assert_ne!(a, key("m:1", "x", json!({"userId": "b"})));
        // A number is not the string of its digits.
        assert_ne!(
            key("m:1", "x", json!({"userId": 1})),
            key("m:1", "x", json!({"userId": "1"}))
        );
        assert!(key("m", "x", json!({"userId": true})).is_some());
        for payload in [
            json!({"other": 1}),
            json!({"userId": null}),
            json!({"userId": {"a": 1}}),
            json!({"userId": [1]}),
            json!([1]),
            json!("userId"),
        ] {
            assert_eq!(key("m:1", "x", payload.clone()), None, "{payload}");
        }
    }

    #[test]
    fn keys_of_delivered_text_match_keys_of_envelopes() {
        let rules = ConflationRules::new(["m=id".parse::<ConflateRule>().unwrap()]);
        let publication = envelope("x", &json!({"id": 7}))
            .with_channel("m:1")
            .unwrap()
            .with_offset(3);
        let text = cerebrum_protocol::encode(&publication);
        assert_eq!(
            rules.key_of_text("m:1", &text),
            rules.key("m:1", &publication)
        );
        assert_eq!(rules.key_of_text("chat:1", &text), None);
        assert_eq!(rules.key_of_text("m:1", "not json"), None);
    }

    #[test]
    fn malformed_rules_are_refused() {
        for bad in ["", "ns", "=f", "ns=", "a b=f", "a:b=f"] {
            assert!(bad.parse::<ConflateRule>().is_err(), "{bad:?}");
        }
    }
}
