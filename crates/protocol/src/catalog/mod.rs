//! The typed payloads of PROTOCOL.md section 3, each tied to its `type` by [`Payload`].
//!
//! [`level0`] holds the origin document's messages (field names byte for byte), [`v1`] our
//! extensions. Field names are camelCase on the wire; enum values are lower-case strings.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ProtocolError;

pub(crate) mod level0;
pub(crate) mod v1;

/// A payload of the message catalog, tied to its wire `type`.
///
/// ```
/// use cerebrum_protocol::{Payload, StudyMetrics};
/// assert_eq!(StudyMetrics::TYPE, "study_metrics_update");
/// ```
pub trait Payload: Serialize + DeserializeOwned {
    /// The `type` string of envelopes that carry this payload.
    const TYPE: &'static str;

    /// Whether the payload holds free-form JSON (as `ping`/`pong` do), whose nesting only a
    /// scan can bound. Fixed-shape payloads cannot nest deeper than their types, so
    /// [`encode_payload`](crate::encode_payload) skips the depth scan for them.
    const FREE_FORM: bool = false;

    /// Checks the rules that the payload's shape cannot express (ranges, non-empty ids); errors
    /// name the field relative to the payload.
    fn validate(&self) -> Result<(), ProtocolError> {
        Ok(())
    }
}

/// Serialises a number the way JavaScript's `JSON.stringify` writes it: an integral value
/// without a fraction (`1800`, not `1800.0`), so our frames match the origin's peers byte for
/// byte.
pub(crate) fn js_number<S: serde::Serializer>(
    value: &f64,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;
    if value.fract() == 0.0 && value.abs() <= MAX_SAFE_INTEGER {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

/// `Err` naming `field` when `value` is empty.
pub(crate) fn non_empty(field: &str, value: &str) -> Result<(), ProtocolError> {
    if value.is_empty() {
        Err(ProtocolError::validation(field, "must not be empty"))
    } else {
        Ok(())
    }
}

/// `Err` naming `field` when `value` is not a finite number within `min..=max`.
pub(crate) fn in_range(field: &str, value: f64, min: f64, max: f64) -> Result<(), ProtocolError> {
    if value.is_finite() && value >= min && value <= max {
        Ok(())
    } else {
        Err(ProtocolError::validation(
            field,
            format!("must be a number from {min} to {max}"),
        ))
    }
}
