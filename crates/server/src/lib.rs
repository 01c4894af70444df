//! The server of cerebrum-realtime: WebSocket connections speaking the wire protocol of
//! `cerebrum-protocol`, a sharded channel hub with offsets, history, resume and presence,
//! collaborative study sessions with durable metrics, notifications, system status, and the
//! HTTP routes beside `/ws` (`/healthz`, `/metrics`, `/api/*`).
//!
//! The protocol logic lives in the sans-IO core, `cerebrum-server-core` ([`session::Session`],
//! [`hub::Hub`], [`study::StudyTracker`], …, re-exported here); this crate is its tokio
//! driver: `net/` moves frames between sockets and sessions and carries out their effects,
//! `broker/` is the remote (Redis) broker, `store/` the databases.
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

mod app;
pub mod auth;
pub mod broker;
pub mod clock;
mod net;
mod server;
pub mod store;

pub use broker::redis as redis_broker;
pub use cerebrum_server_core::{
    Compression, ConfigError, Database, ServerConfig, TlsFiles, context, dedupe, hub, metrics,
    outbox, permissions, ratelimit, session, study,
};
pub use net::http::{BodyRefusal, notification_body, publish_body};
pub use server::{RunningServer, Server, ServerError, ShutdownHandle};
pub use store::{postgres, sqlite};

/// System status from real checks (the rule is the core's; the checks are the driver's).
pub mod status {
    pub use cerebrum_server_core::status::Checks;

    /// Whether a file can be created, written and removed in `dir`.
    #[must_use]
    pub fn dir_writable(dir: &std::path::Path) -> bool {
        let probe = dir.join(format!(".cerebrum-probe-{}", std::process::id()));
        let ok = std::fs::write(&probe, b"ok").is_ok();
        let removed = std::fs::remove_file(&probe).is_ok();
        ok && removed
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_missing_directory_is_not_writable() {
            let dir = tempfile::tempdir().unwrap();
            assert!(dir_writable(dir.path()));
            assert!(!dir_writable(&dir.path().join("missing")));
        }
    }
}
