//! Mock mode of cerebrum-realtime: the production client core driven against a simulated,
//! seeded server instead of a socket, so that apps (and their reconnection UI) can be built
//! and tested without a server.
//!
//! - [`curriculum`]: the real content the simulation talks about (biology chapters, students,
//!   notification templates).
//! - [`DataGenerator`]: the live data a server would send one student, every 5 s by default.
//! - [`MockPeer`]: the simulated server, sans-IO like the core: it answers the client's
//!   frames (welcome, pong after a simulated latency, acks, subscriptions), pushes generated
//!   data, and follows a [`FaultScript`] (drop the connection at a time, refuse the next
//!   connects, go silent).
//! - `MockTransport` (feature `tokio`, on by default): the simulated server as a
//!   `cerebrum_tokio::Transport`, so mock mode runs the production driver loop on tokio's clock.
//!   Without the feature the crate is socket- and runtime-free and builds for
//!   `wasm32-unknown-unknown` (the browser client's mock mode, `cerebrum-wasm`).
//!
//! No sockets. The peer and the generator read no clock (time is passed in; randomness comes
//! from the seed); only `MockTransport` reads tokio's clock, like the real transport.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod curriculum;
mod data;
mod peer;
#[cfg(feature = "tokio")]
mod transport;

pub use data::{DataGenerator, MockMessage};
pub use peer::{FaultScript, MockConfig, MockPeer, PeerOutput};
#[cfg(feature = "tokio")]
pub use transport::MockTransport;
