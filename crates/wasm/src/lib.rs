//! WebAssembly bindings of cerebrum-realtime's sans-IO client core, for the browser package
//! `@cerebrum/realtime` (`js/realtime`).
//!
//! The JavaScript driver only moves bytes and time, exactly as `cerebrum-tokio`'s driver does:
//! it owns the WebSocket and one timer, feeds [`WasmClient::handle_open`] /
//! [`WasmClient::handle_frame`] / [`WasmClient::handle_close`] / [`WasmClient::handle_error`] /
//! [`WasmClient::handle_timeout`], and after every input drains
//! [`WasmClient::poll_command`] (open / transmit / close, as JSON) and
//! [`WasmClient::poll_event`] (the core's events, as JSON), then re-arms its timer at
//! [`WasmClient::poll_timeout`]. No protocol rule is written in JavaScript.
//!
//! Time crosses the boundary as milliseconds on the driver's monotonic clock
//! (`performance.now()`); the bindings turn it into the core's [`cerebrum_core::Instant`].
//! Values cross as strings and numbers: commands and events are small JSON documents, so one
//! `JSON.parse` on the JavaScript side gives plain objects (an inbound message is re-encoded
//! from the core's envelope, its payload copied verbatim).
//!
//! Feature `client` holds [`WasmClient`], feature `mock` the sans-IO mock server
//! ([`WasmMockPeer`]) and data generator of `cerebrum-mock`; `cargo xtask wasm` builds them as
//! two modules so a page loads the mock only in mock mode. On the host both compile (and are
//! tested) as plain Rust; the JavaScript-facing wrappers only convert errors.
// `forbid` would reject the code that `#[wasm_bindgen]` expands to (it contains `unsafe`
// blocks for the ABI glue); our own code has none, which `deny` still enforces.
#![deny(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "client")]
mod client;
mod error;
#[cfg(feature = "client")]
mod json;
#[cfg(feature = "mock")]
mod mock;
mod time;

#[cfg(feature = "client")]
pub use client::{
    ClientOptions, FRAME_APP_DATA, FRAME_DRAIN, FRAME_MESSAGE, FRAME_NOTHING, WasmClient,
    session_channel,
};
pub use error::BindingError;
#[cfg(feature = "mock")]
pub use mock::{WasmMockPeer, mock_data_stream};
