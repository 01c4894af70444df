//! Errors of the codec and the validation rules, and the wire error codes.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a frame or a payload was refused.
///
/// Every variant maps to one wire [`ErrorCode`] through [`ProtocolError::code`], so a server can
/// answer any decoding failure with a typed `error` frame. Messages name the offending field and
/// never echo the input back (they are safe to show to end users).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The frame is not valid JSON (or not valid UTF-8 text).
    #[error("invalid JSON: {detail}")]
    InvalidJson {
        /// What the JSON parser reported (position and kind, never the input itself).
        detail: String,
    },
    /// A binary frame (subprotocol `cerebrum.v1.msgpack`) is not the MessagePack form of a JSON
    /// value ([`crate::MsgpackError`]); answered with the wire code `invalid_json`, as text that
    /// is not JSON is.
    #[error("not valid MessagePack: {detail}")]
    InvalidMsgpack {
        /// What the decoder reported (position and kind, never the input itself).
        detail: String,
    },
    /// The frame is larger than the limit.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size of the frame in bytes.
        size: usize,
        /// The limit in bytes ([`crate::MAX_FRAME_BYTES`] unless configured otherwise).
        limit: usize,
    },
    /// The frame nests arrays and objects deeper than the limit.
    #[error("JSON nesting deeper than {limit} levels")]
    TooDeep {
        /// The nesting limit ([`crate::MAX_DEPTH`]).
        limit: usize,
    },
    /// The frame is JSON but not a JSON object.
    #[error("the frame must be a JSON object")]
    NotAnObject,
    /// The frame has no `type` field (or it is `null`).
    #[error("missing field `type`")]
    MissingType,
    /// An envelope field (`type`, `messageId`, `timestamp`, `offset`, `ack`) is ill-formed.
    #[error("invalid envelope field `{field}`: {reason}")]
    InvalidEnvelope {
        /// The envelope field, as spelled on the wire.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A payload or channel name breaks its rule; `field` is a path such as
    /// `payload.participants[0].joinedAt` or `channel`.
    #[error("invalid `{field}`: {reason}")]
    Validation {
        /// Path of the offending field, as spelled on the wire.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ProtocolError {
    /// The wire error code that a server answers this error with.
    ///
    /// ```
    /// use cerebrum_protocol::{decode, ErrorCode};
    /// let err = decode("[1,2]").unwrap_err();
    /// assert_eq!(err.code(), ErrorCode::InvalidEnvelope);
    /// ```
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidJson { .. } | Self::InvalidMsgpack { .. } => ErrorCode::InvalidJson,
            Self::TooLarge { .. } => ErrorCode::TooLarge,
            Self::NotAnObject | Self::MissingType | Self::InvalidEnvelope { .. } => {
                ErrorCode::InvalidEnvelope
            }
            Self::TooDeep { .. } | Self::Validation { .. } => ErrorCode::ValidationFailed,
        }
    }

    /// Shorthand for a [`ProtocolError::Validation`] error.
    pub fn validation(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error with `prefix.` put before its field path (for nested validation).
    #[must_use]
    pub fn within(self, prefix: &str) -> Self {
        match self {
            Self::Validation { field, reason } => Self::Validation {
                field: join_path(prefix, &field),
                reason,
            },
            other => other,
        }
    }
}

fn join_path(prefix: &str, field: &str) -> String {
    if field.is_empty() || field == "." {
        prefix.to_owned()
    } else if field.starts_with('[') {
        format!("{prefix}{field}")
    } else {
        format!("{prefix}.{field}")
    }
}

/// The `code` of an `error` frame (PROTOCOL.md section 3).
///
/// Codes this version does not know are kept in [`ErrorCode::Other`], so a newer server never
/// breaks an older client.
///
/// ```
/// use cerebrum_protocol::ErrorCode;
/// assert_eq!(ErrorCode::RateLimited.as_str(), "rate_limited");
/// assert_eq!(ErrorCode::from("rate_limited"), ErrorCode::RateLimited);
/// assert_eq!(ErrorCode::from("new_code"), ErrorCode::Other("new_code".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame is not valid JSON.
    InvalidJson,
    /// JSON but not an object, or a missing/ill-formed `type` or `messageId`.
    InvalidEnvelope,
    /// A `type` the server does not handle, on a frame without `channel`.
    UnknownType,
    /// A known type whose payload misses a field or has a wrong type; a malformed channel name.
    ValidationFailed,
    /// Bad or expired token.
    Unauthorized,
    /// A permission check failed.
    Forbidden,
    /// The connection sends faster than its rate limit.
    RateLimited,
    /// The frame is larger than the limit.
    TooLarge,
    /// A binary frame (no binary codec is negotiated).
    UnsupportedFrame,
    /// Unsubscribe or publish on a channel the connection is not subscribed to.
    NotSubscribed,
    /// A per-connection or per-user cap of PROTOCOL.md section 7 is reached (channels per
    /// connection, study sessions per user); the message names the cap.
    LimitExceeded,
    /// The server failed; the message says nothing about why.
    Internal,
    /// A code this version does not know.
    Other(String),
}

impl ErrorCode {
    /// Every code that this version knows, in the order PROTOCOL.md lists them.
    pub const KNOWN: [Self; 12] = [
        Self::InvalidJson,
        Self::InvalidEnvelope,
        Self::UnknownType,
        Self::ValidationFailed,
        Self::Unauthorized,
        Self::Forbidden,
        Self::RateLimited,
        Self::TooLarge,
        Self::UnsupportedFrame,
        Self::NotSubscribed,
        Self::LimitExceeded,
        Self::Internal,
    ];

    /// The code as written on the wire.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidEnvelope => "invalid_envelope",
            Self::UnknownType => "unknown_type",
            Self::ValidationFailed => "validation_failed",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::RateLimited => "rate_limited",
            Self::TooLarge => "too_large",
            Self::UnsupportedFrame => "unsupported_frame",
            Self::NotSubscribed => "not_subscribed",
            Self::LimitExceeded => "limit_exceeded",
            Self::Internal => "internal",
            Self::Other(code) => code,
        }
    }
}

impl From<&str> for ErrorCode {
    fn from(code: &str) -> Self {
        Self::KNOWN
            .iter()
            .find(|known| known.as_str() == code)
            .cloned()
            .unwrap_or_else(|| Self::Other(code.to_owned()))
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Self::from(code.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_round_trip_through_strings() {
        for code in ErrorCode::KNOWN {
            assert_eq!(ErrorCode::from(code.as_str()), code);
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
    }

    #[test]
    fn nested_paths_join_with_dots_and_brackets() {
        let err =
            ProtocolError::validation("[0].joinedAt", "expected an integer").within("payload");
        assert_eq!(
            err.to_string(),
            "invalid `payload[0].joinedAt`: expected an integer"
        );
        let err = ProtocolError::validation("userId", "missing").within("payload");
        assert_eq!(err.to_string(), "invalid `payload.userId`: missing");
    }
}
