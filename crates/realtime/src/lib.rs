//! The cerebrum-realtime client for apps: the origin document's `WebSocketClient` and
//! `useWebSocket` hook, in Rust, on real sockets and in mock mode, behind one API.
//!
//! - [`Client::builder`] takes the origin's options (`reconnect`, `reconnect_attempts`,
//!   `reconnect_interval`, `heartbeat`, `connection_timeout`, `enable_queue`,
//!   `enable_mock_mode`, `debug`, callbacks `on_connect`, `on_disconnect`, `on_error`,
//!   `on_message`) and the core's additions (jitter, delay cap, the fleet preset, overflow
//!   policy, ack timeout, a static token or an async token provider, extra headers, an extra
//!   CA for development certificates).
//! - [`Client`] is a cheap, `Send + Sync` handle: [`status`](Client::status),
//!   [`watch_status`](Client::watch_status), [`latency`](Client::latency),
//!   [`send`](Client::send), [`send_with_ack`](Client::send_with_ack),
//!   [`queued_messages`](Client::queued_messages), [`on::<P>()`](Client::on) (typed streams,
//!   the origin's `useWebSocketMessage<T>`), [`on_type`](Client::on_type) for app types,
//!   [`subscribe_channel`](Client::subscribe_channel) with resume; dropping a stream
//!   unsubscribes it.
//! - [`store`] folds every message into a [`DashboardState`](store::DashboardState) (latest
//!   metrics, sessions by topic, notifications, system status, connection status, latency
//!   history, queue), observable by watch.
//!
//! Under the hood: the sans-IO state machine of `cerebrum-core`, driven by the tokio task of
//! `cerebrum-tokio` over tokio-tungstenite (feature `tokio`, default) or over the simulated
//! server of `cerebrum-mock` (feature `mock`, default): mock mode runs the production code
//! path.
//!
//! ```no_run
//! use cerebrum_realtime::{Client, StudyMetrics, StudySessionStart};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder("wss://api.example.org/ws").token("jwt").build()?;
//! client.connect();
//! let mut metrics = client.on::<StudyMetrics>();
//! client
//!     .send_payload(&StudySessionStart {
//!         user_id: "user-123".into(),
//!         topic: "Genetics".into(),
//!         timestamp: None,
//!     })
//!     .await?;
//! if let Some(m) = metrics.recv().await {
//!     tracing::info!(hours = m.study_hours, streak = m.streak, "metrics");
//! }
//! client.disconnect().await;
//! # Ok(())
//! # }
//! ```
//!
//! Mock mode needs no server and no network:
//!
//! ```
//! use cerebrum_realtime::{Client, SystemStatus};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder("wss://api.example.org/ws")
//!     .enable_mock_mode(true)
//!     .build()?;
//! let mut status = client.on::<SystemStatus>();
//! client.connect();
//! let first = status.recv().await.ok_or("stopped")?;
//! assert!(client.is_connected());
//! assert!(first.services.api);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod builder;
mod client;
mod dispatch;
mod error;
pub mod store;
mod subscription;

pub use builder::{ClientBuilder, DEFAULT_SUBSCRIPTION_CAPACITY};
pub use client::{Client, ClientState};
pub use error::{AckError, BuildError, ClientError, SendError};
pub use subscription::{ErrorSubscription, RawSubscription, Subscription};

/// The wire protocol crate, re-exported.
pub use cerebrum_protocol as protocol;
pub use cerebrum_protocol::{
    Ack, CollaborativeSession, Encoding, Envelope, ErrorCode, ErrorPayload, MessageId,
    Notification, NotificationKind, OverallStatus, Participant, Payload, ProtocolError, Services,
    StudyMetrics, StudySessionEnd, StudySessionStart, SystemStatus, Welcome, decode, encode,
};

/// The client core crate, re-exported (for [`Outgoing`] and the low-level events).
pub use cerebrum_core as core;
pub use cerebrum_core::{
    LatencyStats, Outgoing, OverflowPolicy, ReconnectAttempts, ServerLevel, Status, TokenTransport,
};
pub use cerebrum_tokio::{AckWaitError, Sent};

/// End-to-end encrypted channels (sealing, opening, keys), re-exported.
pub use cerebrum_e2ee as e2ee;
pub use cerebrum_e2ee::{ChannelKey, KeyProvider, Keyring, KeyringError, OpenError, SealError};
pub use cerebrum_protocol::KeyId;

/// Mock mode's simulated server (seed, data interval, latency, fault script).
#[cfg(feature = "mock")]
pub use cerebrum_mock::{FaultScript, MockConfig};

/// The README's Rust examples, compiled and run as doctests so they stay true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
