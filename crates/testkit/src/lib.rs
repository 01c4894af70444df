//! Test support for cerebrum-realtime: external engines (PostgreSQL, …) that a test starts
//! privately, on a free loopback port, in a temporary directory, and stops when done; and,
//! with the feature `websocket`, [`fake_server`]: the one scripted WebSocket server that the
//! client tests (the facade's, the CLI's) connect to.
//!
//! An engine whose binaries are missing is **skipped loudly**: the `start` functions print a
//! `SKIPPED: …` line on stderr and return `Ok(None)`, so a developer without the engine can still
//! run `cargo test`. When the environment variable [`REQUIRE_ENGINES_ENV`]
//! (`CEREBRUM_REQUIRE_ENGINES=1`) is set — CI sets it — a missing engine is an error instead, so
//! the tests are executed there, never silently passed.
//!
//! This crate is a dev-dependency only and is not published.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

#[cfg(feature = "websocket")]
pub mod fake_server;
pub mod postgres;
pub mod redis;
pub mod tidy;

/// The environment variable that turns a missing engine from a skip into an error.
pub const REQUIRE_ENGINES_ENV: &str = "CEREBRUM_REQUIRE_ENGINES";

/// Why an engine could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// The engine is missing while [`REQUIRE_ENGINES_ENV`] demands it.
    #[error("{engine} is required ({REQUIRE_ENGINES_ENV}=1) but unavailable: {reason}")]
    Required {
        /// The engine, e.g. `PostgreSQL`.
        engine: String,
        /// What is missing.
        reason: String,
    },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A command ran but failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status and output.
        detail: String,
    },
    /// An argument was refused (e.g. a database name with odd characters).
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl TestkitError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}

/// Whether [`REQUIRE_ENGINES_ENV`] is set to a true value (`1`, `true`, `yes`).
#[must_use]
pub fn engines_required() -> bool {
    std::env::var(REQUIRE_ENGINES_ENV).is_ok_and(|value| {
        matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes"
        )
    })
}

/// Handles a missing `engine`: an error when [`engines_required`], otherwise a loud
/// `SKIPPED: {engine} tests — {reason}` line on stderr and `Ok(())` (the caller then returns
/// `Ok(None)`).
///
/// ```
/// // Without CEREBRUM_REQUIRE_ENGINES=1 this only prints a SKIPPED line.
/// # if !cerebrum_testkit::engines_required() {
/// cerebrum_testkit::engine_missing("Example", "example-server not found")?;
/// # }
/// # Ok::<(), cerebrum_testkit::TestkitError>(())
/// ```
///
/// The line goes straight to the process's stderr, past the test harness's output capture, so
/// that it shows in a plain `cargo test` run.
pub fn engine_missing(engine: &str, reason: &str) -> Result<(), TestkitError> {
    use std::io::Write as _;
    if engines_required() {
        return Err(TestkitError::Required {
            engine: engine.to_owned(),
            reason: reason.to_owned(),
        });
    }
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED: {engine} tests — {reason} (set {REQUIRE_ENGINES_ENV}=1 to make this an error)"
    );
    Ok(())
}

/// A TCP port on 127.0.0.1 that was free a moment ago: binds port 0, reads the port, closes.
///
/// Another process may take it before it is used; callers that start a server on it retry
/// on a bind failure.
///
/// ```
/// let port = cerebrum_testkit::free_port()?;
/// assert_ne!(port, 0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// Finds the executable `name` on `PATH`, then in each of `extra_dirs` (in order).
///
/// ```
/// let sh = cerebrum_testkit::find_binary("sh", &[std::path::PathBuf::from("/bin")]);
/// assert!(sh.is_some());
/// ```
#[must_use]
pub fn find_binary(name: &str, extra_dirs: &[PathBuf]) -> Option<PathBuf> {
    let path_dirs = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .iter()
        .chain(extra_dirs)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port().unwrap();
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    }

    #[test]
    fn binaries_are_found_on_path_or_in_extra_dirs() {
        assert!(find_binary("sh", &[PathBuf::from("/bin"), PathBuf::from("/usr/bin")]).is_some());
        assert!(find_binary("cerebrum-no-such-binary", &[PathBuf::from("/bin")]).is_none());
    }
}
