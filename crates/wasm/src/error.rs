//! The one error type of the bindings: every refusal reaches JavaScript as a thrown `Error`
//! with this message.

/// Why a call from JavaScript was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BindingError {
    /// The options object is not what the bindings accept.
    #[error("invalid options: {0}")]
    Options(String),
    /// The core refused the configuration.
    #[error("invalid configuration: {0}")]
    Config(#[from] cerebrum_core::ConfigError),
    /// The payload given to `send` is not valid JSON.
    #[error("the payload is not valid JSON: {0}")]
    Payload(String),
    /// The message broke a protocol rule (type name, channel name, …).
    #[error("invalid message: {0}")]
    Protocol(#[from] cerebrum_protocol::ProtocolError),
    /// The core refused the send.
    #[cfg(feature = "client")]
    #[error("{0}")]
    Send(#[from] cerebrum_core::SendError),
}
