//! The two clocks the driver reads, for the core's [`Now`].

use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub use cerebrum_server_core::clock::Now;

/// The current moment on both clocks.
#[must_use]
pub fn now() -> Now {
    Now {
        mono: Instant::now(),
        unix_ms: unix_ms(),
    }
}

/// Milliseconds since the Unix epoch now.
#[must_use]
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
