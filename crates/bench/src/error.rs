//! Errors of a benchmark run.

/// Why a benchmark could not run or finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The target URL is not a `ws://` URL of a loopback address.
    #[error("invalid target `{url}`: {reason}")]
    InvalidTarget {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Invalid scenario options.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A socket operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The WebSocket handshake or a frame failed.
    #[error("WebSocket error: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// The server did not answer in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The server closed a connection the scenario needed.
    #[error("the server closed a connection: {0}")]
    Closed(String),
    /// The server under test could not be started or stopped (`storm`).
    #[error("server: {0}")]
    Server(String),
    /// A latency histogram could not be created.
    #[error("latency histogram: {0}")]
    Histogram(String),
    /// Too many connections failed to open.
    #[error("{failed} of {wanted} connections failed to open (first error: {first})")]
    Connections {
        /// How many failed.
        failed: usize,
        /// How many were wanted.
        wanted: usize,
        /// The first failure.
        first: String,
    },
}
