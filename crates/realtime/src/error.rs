//! The facade's errors: one enum per operation, and the errors reported while running.

use cerebrum_core::ConfigError;
use cerebrum_e2ee::{OpenError, SealError};
use cerebrum_protocol::{ErrorPayload, MessageId, ProtocolError};
use cerebrum_tokio::{AckWaitError, HandleError};

/// Why [`ClientBuilder::build`](crate::ClientBuilder::build) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// An option is invalid (URL, durations, jitter, …).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `build` was called outside a tokio runtime.
    #[error("a tokio runtime is required: call build() from within one")]
    NoRuntime,
    /// Mock mode was asked for, but the crate was built without the `mock` feature.
    #[error("mock mode needs the `mock` feature of cerebrum-realtime")]
    MockUnavailable,
    /// A real server was asked for, but the crate was built without the `tokio` feature.
    #[error("real servers need the `tokio` feature of cerebrum-realtime")]
    WebSocketUnavailable,
    /// The transport options are invalid (a header, an extra CA).
    #[error("transport options: {0}")]
    Transport(String),
}

/// Why a message was not accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The client refused it: the queue is full, the message may not be queued while offline,
    /// it is too large, or `ack` was asked of a server without acks.
    #[error(transparent)]
    Rejected(cerebrum_core::SendError),
    /// The payload could not be serialised, or breaks a protocol rule.
    #[error(transparent)]
    Invalid(#[from] ProtocolError),
    /// The channel is end-to-end encrypted and the payload could not be sealed (no randomness
    /// for a nonce). Nothing was sent.
    #[error("sealing for an encrypted channel failed: {0}")]
    Seal(#[from] SealError),
    /// The client's task has stopped (its runtime shut down).
    #[error("the client has stopped")]
    Stopped,
}

impl From<HandleError> for SendError {
    fn from(err: HandleError) -> Self {
        match err {
            HandleError::Send(err) => Self::Rejected(err),
            HandleError::Invalid(err) => Self::Invalid(err),
            _ => Self::Stopped,
        }
    }
}

/// Why an acknowledged send did not end acknowledged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The message was not accepted (e.g. [`cerebrum_core::SendError::AckUnsupported`] when the
    /// server is known to be level 0).
    #[error(transparent)]
    Send(#[from] SendError),
    /// Accepted, then failed: no ack in time, refused by the server, the server turned out not
    /// to support acks, or the connection was lost (see [`cerebrum_core::AckError`]).
    #[error(transparent)]
    Failed(cerebrum_core::AckError),
    /// Removed from the offline queue by [`Client::clear_queue`](crate::Client::clear_queue).
    #[error("the message was removed from the queue before it was sent")]
    Cleared,
    /// The client's task has stopped.
    #[error("the client has stopped")]
    Stopped,
}

impl From<AckWaitError> for AckError {
    fn from(err: AckWaitError) -> Self {
        match err {
            AckWaitError::Failed(err) => Self::Failed(err),
            AckWaitError::Cleared => Self::Cleared,
            _ => Self::Stopped,
        }
    }
}

/// A failure reported while the client runs: to
/// [`ClientBuilder::on_error`](crate::ClientBuilder::on_error) and
/// [`Client::errors`](crate::Client::errors).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The transport failed (connection refused, TLS, I/O).
    #[error("{0}")]
    Transport(String),
    /// An inbound frame broke the protocol; it was dropped.
    #[error("protocol: {0}")]
    Protocol(ProtocolError),
    /// The server sent an `error` about no pending message.
    #[error("server error {}: {}", .0.code, .0.message)]
    Server(ErrorPayload),
    /// Every reconnect attempt failed; the status is `error`.
    #[error("gave up after {attempts} reconnect attempts")]
    GaveUp {
        /// How many attempts were made.
        attempts: u32,
    },
    /// The server refused the client (close 4001 unauthorized or 4003 forbidden); the status is
    /// `error` and the client does not reconnect until given a new token.
    #[error("refused by the server (close {code}): {reason}")]
    Refused {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// A channel subscription failed.
    #[error("subscription to `{channel}` failed: {error}")]
    Subscribe {
        /// The channel.
        channel: String,
        /// Why.
        error: cerebrum_core::SubscribeError,
    },
    /// An acknowledged message ended without an ack.
    #[error("message {message_id} failed: {error}")]
    SendFailed {
        /// The message's id.
        message_id: MessageId,
        /// Why.
        error: cerebrum_core::AckError,
    },
    /// A publication delivered from an end-to-end encrypted channel did not open (tampered,
    /// wrong key, unknown key id, malformed, or plaintext where a sealed payload belongs). It
    /// was not delivered to any subscriber, callback or the store.
    #[error("publication {} of `{channel}` did not open: {reason}", message_id.as_ref().map_or("without id", MessageId::as_str))]
    Decrypt {
        /// The channel it came from.
        channel: String,
        /// Its `messageId`, when it had one.
        message_id: Option<MessageId>,
        /// Its `offset` in the channel, when it had one.
        offset: Option<u64>,
        /// Why it did not open.
        reason: OpenError,
    },
    /// A queued message was dropped to make room (overflow policy `DropOldest`).
    #[error("queued message {dropped} dropped: the queue is full")]
    QueueOverflow {
        /// The dropped message's id.
        dropped: MessageId,
    },
}
