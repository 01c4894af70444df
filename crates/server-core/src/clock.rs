//! Time as the core takes it: the owner reads the clocks and passes a [`Now`] in.

use std::time::Instant;

/// A moment, as both of the owner's clocks saw it. Every input of the core takes one, so tests
/// and the simulation move time freely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time, for timers and rate limits.
    pub mono: Instant,
    /// Wall time, ms since the Unix epoch, for the wire and the store.
    pub unix_ms: u64,
}

impl Now {
    /// This moment advanced by `ms` milliseconds on both clocks.
    #[must_use]
    pub fn plus_ms(self, ms: u64) -> Self {
        Self {
            mono: self.mono + std::time::Duration::from_millis(ms),
            unix_ms: self.unix_ms + ms,
        }
    }
}
