//! Enums over the known messages of each direction.

use crate::{
    Ack, Auth, CollaborativeSession, Envelope, ErrorPayload, Namespace, Notification, Payload,
    Ping, Pong, ProtocolError, StudyMetrics, StudySessionEnd, StudySessionStart, Subscribe,
    Subscribed, SystemStatus, Unsubscribe, Unsubscribed, Welcome,
};

macro_rules! message_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$vmeta:meta])* $variant:ident($payload:ty),)* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant($payload),)*
            /// A type this enum does not know (apps send their own types): the raw envelope.
            Other(Envelope),
        }

        impl $name {
            /// The `type` strings of the known messages.
            pub const TYPES: &'static [&'static str] = &[$(<$payload as Payload>::TYPE,)*];

            /// Reads a known message out of `envelope`, validating its payload; an unknown type
            /// is [`Self::Other`], not an error.
            pub fn from_envelope(envelope: &Envelope) -> Result<Self, ProtocolError> {
                match envelope.kind() {
                    $(<$payload as Payload>::TYPE => envelope.typed::<$payload>().map(Self::$variant),)*
                    _ => Ok(Self::Other(envelope.clone())),
                }
            }

            /// As [`Self::from_envelope`], taking the envelope: an unknown type keeps it as it
            /// is, without a copy (the relay path of a server publishing app messages).
            pub fn from_owned_envelope(envelope: Envelope) -> Result<Self, ProtocolError> {
                if Self::TYPES.contains(&envelope.kind()) {
                    Self::from_envelope(&envelope)
                } else {
                    Ok(Self::Other(envelope))
                }
            }

            /// The message in a new envelope (not yet stamped with timestamp and id).
            pub fn to_envelope(&self) -> Result<Envelope, ProtocolError> {
                match self {
                    $(Self::$variant(payload) => Envelope::from_payload(payload),)*
                    Self::Other(envelope) => Ok(envelope.clone()),
                }
            }

            /// The message's `type`.
            #[must_use]
            pub fn kind(&self) -> &str {
                match self {
                    $(Self::$variant(_) => <$payload as Payload>::TYPE,)*
                    Self::Other(envelope) => envelope.kind(),
                }
            }
        }
    };
}

message_enum! {
    /// A message a server sends.
    ///
    /// ```
    /// use cerebrum_protocol::{decode, ServerMessage};
    /// let envelope = decode(r#"{"type":"pong","payload":{"nonce":1}}"#)?;
    /// assert!(matches!(ServerMessage::from_envelope(&envelope)?, ServerMessage::Pong(_)));
    /// let custom = decode(r#"{"type":"quiz.started","payload":{}}"#)?;
    /// assert!(matches!(ServerMessage::from_envelope(&custom)?, ServerMessage::Other(_)));
    /// # Ok::<(), cerebrum_protocol::ProtocolError>(())
    /// ```
    ServerMessage {
        /// `pong`.
        Pong(Pong),
        /// `study_metrics_update`.
        StudyMetrics(StudyMetrics),
        /// `collaborative_session_update`.
        CollaborativeSession(CollaborativeSession),
        /// `notification`.
        Notification(Notification),
        /// `system_status`.
        SystemStatus(SystemStatus),
        /// `welcome`.
        Welcome(Welcome),
        /// `subscribed`.
        Subscribed(Subscribed),
        /// `unsubscribed`.
        Unsubscribed(Unsubscribed),
        /// `ack`: a client frame was processed.
        Ack(Ack),
        /// `error`.
        Error(ErrorPayload),
    }
}

message_enum! {
    /// A message a client sends.
    ///
    /// ```
    /// use cerebrum_protocol::{decode, ClientMessage};
    /// let envelope = decode(r#"{"type":"study_session_start","payload":{"userId":"u","topic":"Genetics"}}"#)?;
    /// assert!(matches!(ClientMessage::from_envelope(&envelope)?, ClientMessage::StudySessionStart(_)));
    /// // An app's own type, taken as it is:
    /// let chat = decode(r#"{"type":"chat","payload":{"text":"hi"},"channel":"room:a"}"#)?;
    /// assert!(matches!(ClientMessage::from_owned_envelope(chat)?, ClientMessage::Other(e) if e.kind() == "chat"));
    /// # Ok::<(), cerebrum_protocol::ProtocolError>(())
    /// ```
    ClientMessage {
        /// `ping`.
        Ping(Ping),
        /// `study_session_start`.
        StudySessionStart(StudySessionStart),
        /// `study_session_end`.
        StudySessionEnd(StudySessionEnd),
        /// `auth`.
        Auth(Auth),
        /// `subscribe`.
        Subscribe(Subscribe),
        /// `unsubscribe`.
        Unsubscribe(Unsubscribe),
        /// `ack`: the client processed a server frame.
        Ack(Ack),
    }
}

/// Whether `kind` is one of the server's own types (PROTOCOL.md section 3): `welcome`, `pong`,
/// `ack`, `error`, `subscribed`, `unsubscribed`, `study_metrics_update`,
/// `collaborative_session_update`, `notification`, `system_status`. A client publication of
/// such a type is refused with `forbidden`: only the server speaks with its own types.
///
/// ```
/// use cerebrum_protocol::is_server_type;
/// assert!(is_server_type("notification"));
/// assert!(!is_server_type("chat.message"));
/// ```
#[must_use]
pub fn is_server_type(kind: &str) -> bool {
    ServerMessage::TYPES.contains(&kind)
}

/// Whether a frame a client received is the server's own message rather than app data of a
/// channel (PROTOCOL.md section 7, defence in depth against forged frames).
///
/// A frame of one of the server's types is the server's own when it carries no `channel`, or
/// when it arrives from the one namespace in which only the server sends that type:
/// `system_status` from `system`, `study_metrics_update` and `notification` from `user:<id>`,
/// `collaborative_session_update` from `session:<slug>`. The control types (`welcome`, `pong`,
/// `ack`, `error`, `subscribed`, `unsubscribed`) never come with a channel. Anything else is an
/// app message of its channel and must not be handled as the server's own.
///
/// ```
/// use cerebrum_protocol::{decode, is_server_message};
/// let own = decode(r#"{"type":"notification","payload":{},"channel":"user:u1","offset":3}"#)?;
/// assert!(is_server_message(&own));
/// let forged = decode(r#"{"type":"notification","payload":{},"channel":"chat:room","offset":3}"#)?;
/// assert!(!is_server_message(&forged));
/// let forged_ack = decode(r#"{"type":"ack","payload":{"messageId":"m1"},"channel":"chat:room"}"#)?;
/// assert!(!is_server_message(&forged_ack));
/// # Ok::<(), cerebrum_protocol::ProtocolError>(())
/// ```
#[must_use]
pub fn is_server_message(envelope: &Envelope) -> bool {
    let kind = envelope.kind();
    if !is_server_type(kind) {
        return false;
    }
    let Some(channel) = envelope.channel() else {
        return true;
    };
    matches!(
        (kind, Namespace::of(channel)),
        (SystemStatus::TYPE, Namespace::System)
            | (StudyMetrics::TYPE | Notification::TYPE, Namespace::User(_))
            | (CollaborativeSession::TYPE, Namespace::Session(_))
    )
}
