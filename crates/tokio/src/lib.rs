//! The tokio adapter of cerebrum-realtime: runs the sans-IO [`cerebrum_core::ClientCore`] on
//! tokio, over WebSockets or any other [`Transport`].
//!
//! One task per client owns the core and the transport ([`Driver`]). It waits for the earliest
//! of {the transport's next report, the core's `poll_timeout`, a user intent from a
//! [`Handle`]}, feeds it to the core with the current instant, then drains the core's commands
//! (executed on the transport) and events (handed to an [`Observer`]). The adapter holds no
//! protocol logic and no timers of its own: every deadline comes from `poll_timeout`.
//!
//! - [`WsTransport`] (feature `websocket`, default): tokio-tungstenite, `ws://` and `wss://`
//!   with rustls (ring provider, webpki roots, optional extra CA for development
//!   certificates), extra request headers, the `cerebrum.v1.json` subprotocol, frames over
//!   [`cerebrum_protocol::MAX_FRAME_BYTES`] refused locally, a clean close handshake.
//! - `cerebrum-mock` implements [`Transport`] for a simulated server, so mock mode runs this
//!   very loop.
//!
//! Time is tokio's ([`now`]): under `tokio::time::pause` the whole client runs on virtual time.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod driver;
mod token;
mod transport;

#[cfg(feature = "websocket")]
mod tls;
#[cfg(feature = "websocket")]
mod websocket;

pub use driver::{
    AckWaitError, Driver, FollowUp, Handle, HandleError, Observer, Sent, now, unix_ms,
};
pub use token::{TokenFuture, TokenProvider, with_query_token};
pub use transport::{Closing, OpenRequest, Transport, TransportError, redact_url};

#[cfg(feature = "websocket")]
pub use cerebrum_protocol::Encoding;
#[cfg(feature = "websocket")]
pub use tls::TlsError;
pub use websocket::{SUBPROTOCOL, WsConfigError, WsOptions, WsTransport};
