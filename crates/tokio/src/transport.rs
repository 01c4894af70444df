//! The transport abstraction the driver runs on: a WebSocket, or a simulated peer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use cerebrum_core::TransportEvent;
use tokio::sync::oneshot;

/// What the driver asks a transport to open.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenRequest {
    /// The URL (with `?token=` already in it when the token goes in the query).
    pub url: String,
    /// A token to send as `Authorization: Bearer …` (when the token goes in a header).
    pub bearer: Option<String>,
}

impl OpenRequest {
    /// A request for `url` without a bearer token.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            bearer: None,
        }
    }

    /// Adds a bearer token.
    #[must_use]
    pub fn with_bearer(mut self, token: Option<String>) -> Self {
        self.bearer = token;
        self
    }
}

impl fmt::Debug for OpenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenRequest")
            .field("url", &redact_url(&self.url))
            .field("bearer", &self.bearer.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `url` with the value of any `token` query parameter hidden, for logs.
///
/// ```
/// assert_eq!(
///     cerebrum_tokio::redact_url("wss://h/ws?a=1&token=secret"),
///     "wss://h/ws?a=1&token=<redacted>"
/// );
/// ```
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let query: Vec<&str> = query
        .split('&')
        .map(|pair| {
            if pair.starts_with("token=") {
                "token=<redacted>"
            } else {
                pair
            }
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// Why a transport refused a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No connection is open.
    #[error("the transport is not open")]
    NotOpen,
    /// The frame is larger than the protocol allows ([`cerebrum_protocol::MAX_FRAME_BYTES`]).
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The frame's size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// Resolves when a close started by [`Transport::close`] has finished (the close handshake
/// completed, timed out, or there was nothing to close).
///
/// The close goes on in the background whether or not this is awaited.
#[derive(Debug)]
#[must_use = "await it to wait for the close handshake, or drop it to let it finish in the background"]
pub struct Closing(Option<oneshot::Receiver<()>>);

impl Closing {
    /// Nothing to wait for.
    pub fn done() -> Self {
        Self(None)
    }

    /// Resolves when `finished` fires (or its sender is dropped).
    pub fn when(finished: oneshot::Receiver<()>) -> Self {
        Self(Some(finished))
    }
}

impl Future for Closing {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.0 {
            None => Poll::Ready(()),
            Some(receiver) => Pin::new(receiver).poll(cx).map(|_| ()),
        }
    }
}

/// One connection at a time to a server, driven by the [`crate::Driver`].
///
/// The driver calls the methods in the order the core's commands come out, and awaits
/// [`next`](Self::next) in a `select!` with its timers and the user's intents, so `next` must be
/// **cancel-safe**: dropping its future before it completes must lose nothing (keep state in
/// `self`, not in the future).
///
/// The two implementations are [`crate::WsTransport`] (feature `websocket`) and the simulated
/// peer of `cerebrum-mock`.
pub trait Transport: Send + 'static {
    /// Starts opening a connection (dropping any current one); the outcome is reported by
    /// [`next`](Self::next) as [`TransportEvent::Opened`] or a failure.
    fn open(&mut self, request: OpenRequest);

    /// Queues one text frame on the open connection (written out while [`next`](Self::next)
    /// is polled); refuses frames over the protocol limit.
    fn send(&mut self, frame: String) -> Result<(), TransportError>;

    /// Closes the connection with `code` and `reason` (or aborts an opening one). Nothing more
    /// is reported from it.
    fn close(&mut self, code: u16, reason: String) -> Closing;

    /// The next report of the current connection: opened, a frame, closed, failed. Pending
    /// forever while there is no connection. Cancel-safe.
    fn next(&mut self) -> impl Future<Output = TransportEvent> + Send + '_;
}
