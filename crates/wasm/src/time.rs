//! Milliseconds on the JavaScript driver's monotonic clock (`performance.now()`) ↔ the core's
//! `Instant`.

use std::time::Duration;

use cerebrum_core::Instant;

/// The instant that JavaScript's millisecond 0 maps to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    origin: Instant,
}

impl Clock {
    /// On `wasm32-unknown-unknown` the origin is the core's zero instant; on the host (where the
    /// bindings are tested) any instant serves, so the current one is taken.
    pub(crate) fn new() -> Self {
        #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
        let origin = Instant::from_origin(Duration::ZERO);
        #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
        let origin = Instant::now();
        Self { origin }
    }

    /// The instant `ms` milliseconds after the origin. A negative, NaN or infinite reading is
    /// taken as the origin (the core treats a `now` that goes backwards as the latest seen, so
    /// a bad reading never moves time back).
    pub(crate) fn at(self, ms: f64) -> Instant {
        let offset = Duration::try_from_secs_f64(ms / 1000.0).unwrap_or_default();
        self.origin.checked_add(offset).unwrap_or(self.origin)
    }

    /// `instant` as milliseconds after the origin.
    pub(crate) fn ms(self, instant: Instant) -> f64 {
        Self::as_ms(self.since(instant))
    }

    /// The time from the origin to `instant` (zero for an earlier one).
    pub(crate) fn since(self, instant: Instant) -> Duration {
        instant.saturating_duration_since(self.origin)
    }

    /// A duration in milliseconds, as JavaScript numbers carry them.
    pub(crate) fn as_ms(duration: Duration) -> f64 {
        duration.as_secs_f64() * 1000.0
    }
}

/// Milliseconds (from a JavaScript number) as a `Duration`, refusing negative, NaN and infinite
/// values.
pub(crate) fn duration_ms(field: &str, ms: f64) -> Result<Duration, crate::BindingError> {
    Duration::try_from_secs_f64(ms / 1000.0).map_err(|_| {
        crate::BindingError::Options(format!(
            "{field} must be a finite, non-negative number of milliseconds"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_round_trip_and_bad_readings_do_not_move_time_back() {
        let clock = Clock::new();
        assert!((clock.ms(clock.at(1_500.25)) - 1_500.25).abs() < 1e-6);
        assert_eq!(clock.ms(clock.at(-5.0)), 0.0);
        assert_eq!(clock.ms(clock.at(f64::NAN)), 0.0);
        assert!(duration_ms("x", -1.0).is_err());
        assert!(duration_ms("x", f64::INFINITY).is_err());
        assert_eq!(duration_ms("x", 4_500.0), Ok(Duration::from_millis(4_500)));
    }
}
