//! Test fixtures: private database engines on free loopback ports, started by the tests
//! themselves and stopped when dropped.
//!
//! An engine whose binaries are missing is reported on stderr with a loud `SKIPPED:` line and
//! the fixture is `None`, unless `CEREBRUM_REQUIRE_ENGINES=1` is set (as CI does), in which
//! case a missing engine is an error: those tests are never passed silently.
#![forbid(unsafe_code)]
// The loud `SKIPPED:` lines on stderr are this crate's point.
#![allow(clippy::print_stderr)]

pub mod redis;

use std::net::TcpListener;

/// Whether missing engines fail the tests instead of skipping them
/// (`CEREBRUM_REQUIRE_ENGINES=1`).
#[must_use]
pub fn engines_required() -> bool {
    std::env::var("CEREBRUM_REQUIRE_ENGINES").is_ok_and(|v| v == "1")
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
///
/// ```
/// let port = cerebrum_testkit::free_port().unwrap();
/// assert!(port > 0);
/// ```
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Finds `name` on `PATH`, then in `extra` directories.
#[must_use]
pub fn find_binary(name: &str, extra: &[std::path::PathBuf]) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().cloned())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
