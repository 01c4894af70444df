//! The server of cerebrum-realtime as a sans-IO core: the rules of every connection
//! ([`session::Session`]), the channel hub with offsets, history, resume and presence
//! ([`hub::Hub`], [`broker::MemoryBroker`]), collaborative study sessions
//! ([`study::StudyTracker`]), permissions, rate limits and dedupe — driven by an owner that
//! reads the clocks, owns the sockets, the remote broker and the store.
//!
//! In the style of quinn-proto: time in ([`clock::Now`] on every input), inputs in
//! ([`session::Session::handle_text`], [`session::Session::handle_timeout`], and the answers
//! to effects), effects out ([`session::Session::poll_effect`]: close, store reads and
//! writes, and, with a remote broker, dedupe claims, per-user counts, watches, replays,
//! presence and publications). Frames go out through each connection's
//! [`outbox::Outbox`]. `cerebrum-server` is the tokio driver; `cerebrum-sim` drives many
//! cores over a simulated network, broker and store from one seed.
//!
//! **Architecture invariant:** no async runtime, no socket, no clock, no thread, no global
//! random number generator. `tests/tidy.rs` keeps it so.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use cerebrum_server_core::{broker::MemoryBroker, clock::Now, context::Context, outbox::Outbox, session::Session, ServerConfig};
//!
//! // The owner reads its clocks; tests and the simulation make time up.
//! let now = Now { mono: Instant::now(), unix_ms: 1_700_000_000_000 };
//! let ctx = Context::new(ServerConfig::default(), MemoryBroker::new(100, Duration::from_secs(300), 1), false, 7, now)?;
//! let outbox = Outbox::new(64);
//! let mut session = Session::new(ctx, outbox.clone(), None, now);
//! session.handle_text(r#"{"type":"subscribe","payload":{"channel":"chat:1"}}"#, now.plus_ms(5));
//! assert!(session.poll_effect().is_none()); // the memory broker answers at once
//! assert_eq!(outbox.len(), 3); // welcome, system_status, subscribed
//! # Ok::<(), cerebrum_server_core::auth::AuthError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
pub mod broker;
pub mod clock;
mod config;
pub mod conflate;
pub mod context;
pub mod dedupe;
pub mod hub;
pub mod metrics;
pub mod node;
pub mod outbox;
mod pending;
pub mod permissions;
pub mod ratelimit;
pub mod record;
pub mod session;
pub mod status;
pub mod study;
mod text;

#[cfg(test)]
mod testing;

pub use cerebrum_protocol::Encoding;
pub use config::{
    Compression, ConfigError, DEFAULT_POOL_SIZE, Database, MAX_SEND_BUFFER, MIN_SEND_BUFFER,
    ServerConfig, TlsFiles, redact_password,
};
pub use text::Text;
