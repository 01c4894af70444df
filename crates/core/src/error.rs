//! Errors of the user intents and failures reported by events.

use std::time::Duration;

use cerebrum_protocol::{ErrorPayload, ProtocolError};

/// Why [`crate::ClientCore::send`] refused a message. A refused message was neither sent nor
/// queued.
///
/// ```
/// use cerebrum_core::SendError;
/// let err = SendError::QueueFull { messages: 100, bytes: 4_200 };
/// assert_eq!(err.to_string(), "the offline queue is full (100 messages, 4200 bytes)");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The offline queue is full (policy [`crate::OverflowPolicy::RejectNew`], or the message
    /// alone exceeds the byte cap).
    #[error("the offline queue is full ({messages} messages, {bytes} bytes)")]
    QueueFull {
        /// Messages queued.
        messages: usize,
        /// Encoded bytes queued.
        bytes: usize,
    },
    /// Not connected and the message cannot wait: the offline queue is disabled, or the send is
    /// volatile (a volatile `ack: true` send is also refused while the server's support for acks
    /// is not known yet, in the first moments of a connection).
    #[error("not connected (and the message may not be queued)")]
    NotConnected,
    /// `ack: true` was asked of a server that does not support acks (a level-0 server, or a
    /// `welcome` without the `ack` feature).
    #[error("the server does not support acks")]
    AckUnsupported,
    /// The encoded frame is larger than the protocol's frame limit.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Encoded size in bytes.
        size: usize,
        /// The limit ([`cerebrum_protocol::MAX_FRAME_BYTES`]).
        limit: usize,
    },
    /// The message breaks a protocol rule (e.g. a malformed channel name).
    #[error("invalid message: {0}")]
    Invalid(#[from] ProtocolError),
}

/// Why an accepted message ended without being acknowledged
/// ([`crate::Event::SendFailed`]).
///
/// ```
/// use std::time::Duration;
/// use cerebrum_core::AckError;
/// assert_eq!(AckError::Timeout(Duration::from_secs(10)).to_string(), "no ack within 10s");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// No `ack` arrived within the ack timeout after the message was transmitted.
    #[error("no ack within {0:?}")]
    Timeout(Duration),
    /// The server refused the message with an `error` naming it as `refId`.
    #[error("refused by the server: {} ({})", .0.message, .0.code)]
    Refused(ErrorPayload),
    /// The server turned out not to support acks (level 0, or no `ack` feature), so the message
    /// would wait forever; it was not sent.
    #[error("the server does not support acks")]
    Unsupported,
    /// The connection was lost before the message could be sent (held while connected with the
    /// queue disabled), or before a volatile `ack: true` message was acknowledged (volatile
    /// messages are never re-sent).
    #[error("the connection was lost before the message was sent")]
    ConnectionLost,
}

/// Why a subscription failed ([`crate::Event::SubscribeFailed`]).
///
/// ```
/// use cerebrum_core::SubscribeError;
/// assert_eq!(SubscribeError::Unsupported.to_string(), "the server does not support channels");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The server refused the `subscribe` with an `error` (e.g. `forbidden`).
    #[error("refused by the server: {} ({})", .0.message, .0.code)]
    Refused(ErrorPayload),
    /// The server does not support channels (level 0).
    #[error("the server does not support channels")]
    Unsupported,
}
