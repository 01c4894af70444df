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

    /// Checks the rules that the payload's shape cannot express (ranges, non-empty ids); errors
    /// name the field relative to the payload.
    fn validate(&self) -> Result<(), ProtocolError> {
        Ok(())
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
