//! The server of cerebrum-realtime: WebSocket connections speaking the wire protocol of
//! `cerebrum-protocol`, a sharded channel hub with offsets, history, resume and presence,
//! collaborative study sessions with durable metrics, notifications, system status, and the
//! HTTP routes beside `/ws` (`/healthz`, `/metrics`, `/api/*`).
//!
//! The protocol logic lives in socket-free types ([`session::Session`], [`hub::Hub`],
//! [`study::StudyTracker`], [`ratelimit::TokenBucket`]) that tests drive with simulated time;
//! the tokio glue ([`Server`]) only moves frames between sockets and them.
//!
//! ```no_run
//! use cerebrum_server::{Server, ServerConfig};
//!
//! # async fn run() -> Result<(), cerebrum_server::ServerError> {
//! let mut config = ServerConfig::default();
//! config.addr = "127.0.0.1:0".parse().expect("a valid address");
//! let server = Server::bind(config).await?;
//! println!("listening on {}", server.ws_url());
//! server.shutdown_handle().shutdown();
//! server.wait().await?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod acceptor;
pub mod auth;
pub mod broker;
pub mod clock;
mod config;
mod conn;
pub mod context;
pub mod dedupe;
mod http;
pub mod hub;
pub mod metrics;
pub mod outbox;
pub mod permissions;
pub mod postgres;
pub mod ratelimit;
pub mod redis_broker;
mod server;
pub mod session;
pub mod sqlite;
pub mod status;
pub mod store;
pub mod study;
mod tls;

pub use config::{ConfigError, Database, ServerConfig, TlsFiles};
pub use http::{BodyRefusal, notification_body, publish_body};
pub use server::{RunningServer, Server, ServerError, ShutdownHandle};
