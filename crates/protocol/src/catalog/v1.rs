//! Version 1: our extensions (welcome, auth, channels, acks, errors, session end).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Payload, non_empty};
use crate::{ErrorCode, MessageId, ProtocolError, validate_channel};

/// The protocol version this crate speaks (`welcome.protocol`).
pub const PROTOCOL_VERSION: u32 = 1;

/// Feature names a server advertises in `welcome.features`.
pub mod features {
    /// The server answers `ack:true` frames with `ack`.
    pub const ACK: &str = "ack";
    /// Channel subscriptions and publications.
    pub const CHANNELS: &str = "channels";
    /// Presence on session channels.
    pub const PRESENCE: &str = "presence";
    /// Resume with `subscribe.since`.
    pub const RESUME: &str = "resume";
    /// Everything this version defines, in the order PROTOCOL.md lists them.
    pub const ALL: [&str; 4] = [ACK, CHANNELS, PRESENCE, RESUME];
}

/// `welcome` (server→client): the first frame after a successful handshake and auth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Welcome {
    /// The server's id for this connection.
    pub connection_id: String,
    /// The authenticated user, when auth is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Protocol version ([`PROTOCOL_VERSION`]).
    pub protocol: u32,
    /// The heartbeat interval the server expects, in ms.
    pub heartbeat_interval_ms: u64,
    /// Features the server supports (see [`features`]); unknown names are kept.
    pub features: Vec<String>,
    /// The server's clock, ms since the Unix epoch.
    pub server_time: u64,
}

impl Welcome {
    /// Whether the server advertises `feature`.
    ///
    /// ```
    /// use cerebrum_protocol::{features, Welcome};
    /// let welcome = Welcome {
    ///     connection_id: "c1".into(),
    ///     user_id: None,
    ///     protocol: 1,
    ///     heartbeat_interval_ms: 30_000,
    ///     features: vec!["ack".into()],
    ///     server_time: 0,
    /// };
    /// assert!(welcome.has_feature(features::ACK));
    /// assert!(!welcome.has_feature(features::RESUME));
    /// ```
    #[must_use]
    pub fn has_feature(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }
}

impl Payload for Welcome {
    const TYPE: &'static str = "welcome";

    fn validate(&self) -> Result<(), ProtocolError> {
        non_empty("connectionId", &self.connection_id)?;
        if self.protocol == 0 {
            return Err(ProtocolError::validation("protocol", "must be at least 1"));
        }
        Ok(())
    }
}

/// `auth` (client→server): a token sent as the first frame. Its `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auth {
    /// The JWT.
    pub token: String,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Payload for Auth {
    const TYPE: &'static str = "auth";

    fn validate(&self) -> Result<(), ProtocolError> {
        non_empty("token", &self.token)
    }
}

/// `study_session_end` (client→server): the user stops studying a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StudySessionEnd {
    /// The user ending the session.
    pub user_id: String,
    /// The topic, as in `study_session_start`.
    pub topic: String,
}

impl Payload for StudySessionEnd {
    const TYPE: &'static str = "study_session_end";

    fn validate(&self) -> Result<(), ProtocolError> {
        non_empty("userId", &self.user_id)?;
        crate::validate_topic(&self.topic)
    }
}

/// A position in a channel's history: the last publication a client saw.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamPosition {
    /// Offset of the last publication seen.
    pub offset: u64,
    /// The channel's epoch when it was seen.
    pub epoch: String,
}

/// `subscribe` (client→server): join a channel, optionally resuming after `since`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribe {
    /// The channel's name.
    pub channel: String,
    /// Where to resume from, after a reconnect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<StreamPosition>,
}

impl Payload for Subscribe {
    const TYPE: &'static str = "subscribe";

    fn validate(&self) -> Result<(), ProtocolError> {
        validate_channel(&self.channel)
    }
}

/// `subscribed` (server→client): the subscription holds; the `missed` publications follow in
/// offset order, then live ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribed {
    /// The channel's name.
    pub channel: String,
    /// The channel's last offset now.
    pub offset: u64,
    /// The channel's epoch (changes when its history is lost).
    pub epoch: String,
    /// Whether every publication after `since` is replayed.
    pub recovered: bool,
    /// How many publications are replayed.
    pub missed: u64,
}

impl Payload for Subscribed {
    const TYPE: &'static str = "subscribed";

    fn validate(&self) -> Result<(), ProtocolError> {
        validate_channel(&self.channel)
    }
}

/// `unsubscribe` (client→server): leave a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unsubscribe {
    /// The channel's name.
    pub channel: String,
}

impl Payload for Unsubscribe {
    const TYPE: &'static str = "unsubscribe";

    fn validate(&self) -> Result<(), ProtocolError> {
        validate_channel(&self.channel)
    }
}

/// `unsubscribed` (server→client): the channel is left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unsubscribed {
    /// The channel's name.
    pub channel: String,
}

impl Payload for Unsubscribed {
    const TYPE: &'static str = "unsubscribed";

    fn validate(&self) -> Result<(), ProtocolError> {
        validate_channel(&self.channel)
    }
}

/// `ack`, both directions: server→client confirms that the client frame `messageId` was
/// processed; client→server confirms that the client processed the server frame `messageId`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    /// The acknowledged frame's id.
    pub message_id: MessageId,
}

impl Payload for Ack {
    const TYPE: &'static str = "ack";
}

/// `error` (server→client): a frame was refused. `message` is safe for end users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorPayload {
    /// What kind of failure.
    pub code: ErrorCode,
    /// Human-readable text that names the field at fault and leaks no internals.
    pub message: String,
    /// The `messageId` of the frame that caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_id: Option<MessageId>,
}

impl ErrorPayload {
    /// The `error` a server answers a refused frame with.
    ///
    /// ```
    /// use cerebrum_protocol::{decode, ErrorCode, ErrorPayload};
    /// let err = decode("{").unwrap_err();
    /// let payload = ErrorPayload::from_protocol_error(&err, None);
    /// assert_eq!(payload.code, ErrorCode::InvalidJson);
    /// ```
    #[must_use]
    pub fn from_protocol_error(err: &ProtocolError, ref_id: Option<MessageId>) -> Self {
        Self {
            code: err.code(),
            message: err.to_string(),
            ref_id,
        }
    }
}

impl Payload for ErrorPayload {
    const TYPE: &'static str = "error";
}
