//! The two clocks a server reads: a monotonic instant for timers and wall time for the wire.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A moment, as both clocks saw it. The socket-free types take it as input, so tests simulate
/// time freely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time, for timers and rate limits.
    pub mono: Instant,
    /// Wall time, ms since the Unix epoch, for the wire and the store.
    pub unix_ms: u64,
}

impl Now {
    /// The current moment.
    #[must_use]
    pub fn current() -> Self {
        Self {
            mono: Instant::now(),
            unix_ms: unix_ms(),
        }
    }

    /// This moment advanced by `ms` milliseconds on both clocks.
    #[must_use]
    pub fn plus_ms(self, ms: u64) -> Self {
        Self {
            mono: self.mono + std::time::Duration::from_millis(ms),
            unix_ms: self.unix_ms + ms,
        }
    }
}

/// Milliseconds since the Unix epoch now.
#[must_use]
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
