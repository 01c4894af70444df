//! What goes into the core (transport events, outgoing messages) and what comes out (commands,
//! events).

use std::fmt;
use std::time::Duration;

use cerebrum_protocol::{Envelope, ErrorPayload, MessageId, Payload, ProtocolError, Welcome};
use serde::Serialize;

use crate::error::{AckError, SubscribeError};
use crate::status::Status;

/// What the transport adapter reports, fed to [`crate::ClientCore::handle_transport`].
///
/// After a [`Command::Close`] or a new [`Command::Open`], the adapter drops the old transport and
/// feeds nothing more from it (stray reports are ignored when the core is not expecting them).
///
/// ```
/// use cerebrum_core::TransportEvent;
/// // What a WebSocket adapter reports when the server goes away without a close frame:
/// let lost = TransportEvent::Closed { code: None, reason: String::new() };
/// // and when it shuts down cleanly:
/// let shutdown = TransportEvent::Closed { code: Some(1001), reason: "server shutdown".into() };
/// assert_ne!(lost, shutdown);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportEvent {
    /// The transport asked for with [`Command::Open`] is open.
    Opened,
    /// The transport closed; `code` is the WebSocket close code when there was a close frame.
    Closed {
        /// The close code (`None`: no close frame, as 1006).
        code: Option<u16>,
        /// The close reason, possibly empty.
        reason: String,
    },
    /// A text frame arrived (or a binary frame, transcoded to its JSON text by a transport
    /// that negotiated a binary encoding such as `cerebrum.v1.msgpack`).
    Frame(String),
    /// A frame arrived that the transport could not turn into JSON text (a binary frame that
    /// is not valid MessagePack): reported as [`Event::ProtocolViolation`], never as data; the
    /// connection stays, as for a text frame that is not JSON.
    Invalid(ProtocolError),
    /// The transport failed (connection refused, TLS, I/O error): it is gone, no `Closed`
    /// follows.
    Error(String),
}

/// What the core asks its adapter to do, from [`crate::ClientCore::poll_command`].
///
/// `Debug` output hides tokens (in a URL's `token=` parameter and in `auth` frames).
///
/// ```
/// use cerebrum_core::Command;
/// fn execute(command: Command) {
///     match command {
///         Command::Open { url } => { /* open a WebSocket to `url` */ }
///         Command::Transmit(frame) => { /* send `frame` as one text frame */ }
///         Command::Close { code, reason } => { /* close with `code` and `reason` */ }
///         _ => { /* a later version's command: ignore */ }
///     }
/// }
/// let open = Command::Open { url: "wss://h/ws?token=secret".into() };
/// assert!(!format!("{open:?}").contains("secret"));
/// execute(open);
/// ```
#[derive(Clone, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Command {
    /// Open a WebSocket to `url` (dropping any previous transport), then report
    /// [`TransportEvent::Opened`] or a failure.
    Open {
        /// The URL, with `?token=` appended when the token goes in the query.
        url: String,
    },
    /// Send one text frame on the open transport.
    Transmit(String),
    /// Close the transport with this code and reason (or abort it if it is not open yet) and
    /// feed nothing more from it.
    Close {
        /// The close code (1000 normal, 4000 for the client's timeouts).
        code: u16,
        /// The close reason.
        reason: String,
    },
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open { url } => f
                .debug_struct("Open")
                .field("url", &redact_url(url))
                .finish(),
            Self::Transmit(frame) if frame.starts_with("{\"type\":\"auth\"") => f
                .debug_tuple("Transmit")
                .field(&"<auth frame redacted>")
                .finish(),
            Self::Transmit(frame) => f.debug_tuple("Transmit").field(frame).finish(),
            Self::Close { code, reason } => f
                .debug_struct("Close")
                .field("code", code)
                .field("reason", reason)
                .finish(),
        }
    }
}

/// The URL with the value of any `token` query parameter hidden.
fn redact_url(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| {
            if pair.starts_with("token=") {
                "token=<redacted>".to_owned()
            } else {
                pair.to_owned()
            }
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// What the core learned about the server after a transport opened.
///
/// ```
/// use cerebrum_core::ServerLevel;
/// let level = ServerLevel::V1 { features: vec!["ack".into(), "channels".into()] };
/// assert!(matches!(level, ServerLevel::V1 { ref features } if features.len() == 2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerLevel {
    /// The server sent `welcome` (protocol v1) with these features.
    V1 {
        /// The advertised features (see [`cerebrum_protocol::features`]).
        features: Vec<String>,
    },
    /// No `welcome` within the window (or the first frame was something else): a level-0 server
    /// such as the origin's example. No acks, no channels; plain sends work.
    Level0,
}

/// What happened, from [`crate::ClientCore::poll_event`].
///
/// Events of one input come out in the order they happened.
///
/// ```
/// use cerebrum_core::{Event, Status};
/// fn on_event(event: Event) -> Option<String> {
///     match event {
///         Event::StatusChanged { from, to, reason } => Some(format!("{from} -> {to}: {reason}")),
///         Event::Message(envelope) => Some(format!("received {}", envelope.kind())),
///         Event::SendFailed { message_id, error } => Some(format!("{message_id} failed: {error}")),
///         _ => None,
///     }
/// }
/// let changed = Event::StatusChanged {
///     from: Status::Connecting,
///     to: Status::Connected,
///     reason: "connection opened".into(),
/// };
/// assert_eq!(on_event(changed).as_deref(), Some("connecting -> connected: connection opened"));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
#[non_exhaustive]
pub enum Event {
    /// The status changed.
    StatusChanged {
        /// The previous status.
        from: Status,
        /// The new status.
        to: Status,
        /// Why, in words.
        reason: String,
    },
    /// The transport opened.
    Connected,
    /// The server's level is known for this connection (after `welcome`, or level 0).
    ServerLevel(ServerLevel),
    /// The server's `welcome`, as received.
    Welcome(Welcome),
    /// The connection was lost or closed.
    Disconnected {
        /// The close code, if any.
        code: Option<u16>,
        /// The reason.
        reason: String,
        /// Whether a reconnect attempt is scheduled.
        will_reconnect: bool,
    },
    /// A reconnect attempt is scheduled after `delay`.
    ReconnectScheduled {
        /// The attempt's number, 1-based, since the count was last reset.
        attempt: u32,
        /// The delay, jitter included.
        delay: Duration,
    },
    /// Every allowed attempt failed; the status is now `Error`.
    GaveUp {
        /// How many reconnect attempts were made.
        attempts: u32,
    },
    /// An inbound frame that is not a control frame (`welcome`, `pong`, `ack`, `error`,
    /// `subscribed`, `unsubscribed`): app data, for the facade to type.
    Message(Envelope),
    /// A `pong` answered a ping: the round-trip time.
    Latency(Duration),
    /// The server acknowledged an `ack: true` send.
    Acked {
        /// The message's id.
        message_id: MessageId,
    },
    /// An accepted `ack: true` message (or a held message) ended without an ack.
    SendFailed {
        /// The message's id.
        message_id: MessageId,
        /// Why.
        error: AckError,
    },
    /// A queued message was dropped to make room ([`crate::OverflowPolicy::DropOldest`]).
    QueueOverflow {
        /// The dropped message's id.
        dropped: MessageId,
    },
    /// The server confirmed a subscription.
    Subscribed {
        /// The channel.
        channel: String,
        /// Whether every publication missed since the last one seen is replayed.
        recovered: bool,
        /// How many publications are replayed.
        missed: u64,
    },
    /// The server confirmed an unsubscription.
    Unsubscribed {
        /// The channel.
        channel: String,
    },
    /// A subscription failed.
    SubscribeFailed {
        /// The channel.
        channel: String,
        /// Why.
        error: SubscribeError,
    },
    /// The server sent an `error` that names no pending message.
    ServerError(ErrorPayload),
    /// An inbound frame broke the protocol; it was dropped (the connection stays up).
    ProtocolViolation(ProtocolError),
    /// A failure worth telling the app about (e.g. the transport failed).
    Error {
        /// What happened.
        reason: String,
    },
}

/// A message to send: an envelope plus how to send it.
///
/// The core stamps it with a fresh `messageId` and `timestamp` when it accepts it (overwriting
/// any it had).
///
/// ```
/// use cerebrum_core::Outgoing;
/// use cerebrum_protocol::StudySessionStart;
///
/// let start = StudySessionStart { user_id: "user-123".into(), topic: "Genetics".into(), timestamp: None };
/// let outgoing = Outgoing::payload(&start)?.with_ack(true);
/// assert_eq!(outgoing.envelope().kind(), "study_session_start");
/// let chat = Outgoing::value("chat.message", &serde_json::json!({"text": "hi"}))?
///     .to_channel("session:genetics")
///     .volatile();
/// assert!(chat.is_volatile());
/// # Ok::<(), cerebrum_protocol::ProtocolError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    envelope: Envelope,
    channel: Option<String>,
    ack: bool,
    volatile: bool,
}

impl Outgoing {
    /// Sends `envelope` as it is (its type, payload and channel).
    pub fn new(envelope: Envelope) -> Self {
        Self {
            envelope,
            channel: None,
            ack: false,
            volatile: false,
        }
    }

    /// A typed payload of the catalog, validated.
    pub fn payload<P: Payload>(payload: &P) -> Result<Self, ProtocolError> {
        Envelope::from_payload(payload).map(Self::new)
    }

    /// An app message of type `kind` with any serialisable payload.
    pub fn value<T: Serialize + ?Sized>(
        kind: impl Into<String>,
        payload: &T,
    ) -> Result<Self, ProtocolError> {
        Envelope::from_value(kind, payload).map(Self::new)
    }

    /// Publishes to `channel` (checked when sent).
    #[must_use]
    pub fn to_channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = Some(channel.into());
        self
    }

    /// Asks the server to acknowledge it (`ack: true`); the outcome is reported by
    /// [`Event::Acked`] or [`Event::SendFailed`].
    #[must_use]
    pub fn with_ack(mut self, ack: bool) -> Self {
        self.ack = ack;
        self
    }

    /// Never queued: sent only if connected, refused with [`crate::SendError::NotConnected`]
    /// otherwise (for data that is stale by the time a connection comes back).
    #[must_use]
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }

    /// The envelope as given.
    #[must_use]
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The channel it is published to, when set with [`to_channel`](Self::to_channel).
    ///
    /// ```
    /// use cerebrum_core::Outgoing;
    /// let chat = Outgoing::value("chat.message", &"hi")?.to_channel("chat:a");
    /// assert_eq!(chat.channel(), Some("chat:a"));
    /// # Ok::<(), cerebrum_protocol::ProtocolError>(())
    /// ```
    #[must_use]
    pub fn channel(&self) -> Option<&str> {
        self.channel.as_deref()
    }

    /// The same send with its envelope replaced by `map`'s result (how the facade seals the
    /// payload of a publication on an end-to-end encrypted channel); channel, ack and
    /// volatility are kept.
    ///
    /// ```
    /// use cerebrum_core::Outgoing;
    /// use cerebrum_protocol::Envelope;
    /// let send = Outgoing::value("chat.message", &"hi")?.to_channel("chat:a").with_ack(true);
    /// let replaced = send.try_map_envelope(|_| Envelope::from_value("chat.message", &"bye"))?;
    /// assert_eq!(replaced.envelope().payload().get(), r#""bye""#);
    /// assert!(replaced.is_ack());
    /// # Ok::<(), cerebrum_protocol::ProtocolError>(())
    /// ```
    pub fn try_map_envelope<E>(
        mut self,
        map: impl FnOnce(Envelope) -> Result<Envelope, E>,
    ) -> Result<Self, E> {
        self.envelope = map(self.envelope)?;
        Ok(self)
    }

    /// Whether an ack is asked for.
    #[must_use]
    pub fn is_ack(&self) -> bool {
        self.ack
    }

    /// Whether the send is volatile.
    #[must_use]
    pub fn is_volatile(&self) -> bool {
        self.volatile
    }

    pub(crate) fn into_parts(self) -> (Envelope, Option<String>, bool, bool) {
        (self.envelope, self.channel, self.ack, self.volatile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_never_show_in_command_debug_output() {
        let open = Command::Open {
            url: "wss://h/ws?x=1&token=secret-jwt".into(),
        };
        let text = format!("{open:?}");
        assert!(!text.contains("secret-jwt"));
        assert!(text.contains("x=1"));
        let auth = Command::Transmit(r#"{"type":"auth","payload":{"token":"secret-jwt"}}"#.into());
        assert!(!format!("{auth:?}").contains("secret-jwt"));
    }
}
