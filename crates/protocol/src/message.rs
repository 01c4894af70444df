//! Enums over the known messages of each direction.

use crate::{
    Ack, Auth, CollaborativeSession, Envelope, ErrorPayload, Notification, Payload, Ping, Pong,
    ProtocolError, StudyMetrics, StudySessionEnd, StudySessionStart, Subscribe, Subscribed,
    SystemStatus, Unsubscribe, Unsubscribed, Welcome,
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
