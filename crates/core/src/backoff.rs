//! The reconnect schedule: exponential growth, a cap, optional jitter, no overflow.

use std::time::Duration;

use crate::config::{Config, MIN_JITTERED_DELAY};

/// The largest exponent ever used: `1.5^1024` is already infinite in `f64`, and the cap applies
/// long before, so clamping changes no real schedule but keeps the arithmetic finite.
const MAX_EXPONENT: u32 = 1024;

/// The smallest delay the schedule ever produces: no overflow or rounding can give 0 ms.
pub const MIN_DELAY: Duration = Duration::from_millis(1);

/// The reconnect delay before jitter for attempt `attempt` (1-based):
/// `min(cap, interval · factor^(attempt − 1))`, computed without overflow and never below 1 ms.
///
/// With the origin's defaults: 3, 4.5, 6.75, 10.125 and 15.1875 s exactly.
///
/// ```
/// use std::time::Duration;
/// use cerebrum_core::{scheduled_delay, Config};
/// let config = Config::new("ws://localhost:8080/ws");
/// let delays: Vec<_> = (1..=5).map(|n| scheduled_delay(&config, n)).collect();
/// assert_eq!(delays, [3_000_000, 4_500_000, 6_750_000, 10_125_000, 15_187_500]
///     .map(Duration::from_micros));
/// assert_eq!(scheduled_delay(&config, u32::MAX), Duration::from_secs(30));
/// ```
#[must_use]
pub fn scheduled_delay(config: &Config, attempt: u32) -> Duration {
    let exponent = attempt.saturating_sub(1).min(MAX_EXPONENT);
    let cap = config.max_reconnect_delay.max(MIN_DELAY);
    let base = config.reconnect_interval.as_secs_f64();
    // `powi` takes an i32; MAX_EXPONENT fits.
    let secs = base * config.reconnect_factor.powi(exponent as i32);
    let delay = if secs.is_finite() && secs >= 0.0 {
        Duration::try_from_secs_f64(secs).map_or(cap, |d| d.min(cap))
    } else {
        cap
    };
    delay.max(MIN_DELAY)
}

/// The delay actually waited before attempt `attempt`: [`scheduled_delay`] with jitter drawn
/// from `rng`, within `[d·(1 − jitter), d]` and never below `min(d, 100 ms)`.
pub(crate) fn jittered_delay(config: &Config, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
    let scheduled = scheduled_delay(config, attempt);
    if config.jitter <= 0.0 {
        return scheduled;
    }
    let cut = scheduled.mul_f64((config.jitter * rng.f64()).clamp(0.0, 1.0));
    let floor = scheduled.min(MIN_JITTERED_DELAY);
    scheduled.saturating_sub(cut).max(floor).max(MIN_DELAY)
}

/// The bounds within which the delay actually waited before `attempt` falls, jitter included:
/// `(lowest, highest)`.
///
/// ```
/// use std::time::Duration;
/// use cerebrum_core::{delay_bounds, Config};
/// let fleet = Config::fleet("ws://localhost:8080/ws");
/// assert_eq!(delay_bounds(&fleet, 1), (Duration::from_millis(100), Duration::from_secs(3)));
/// ```
#[must_use]
pub fn delay_bounds(config: &Config, attempt: u32) -> (Duration, Duration) {
    let scheduled = scheduled_delay(config, attempt);
    let lowest = scheduled
        .mul_f64(1.0 - config.jitter.clamp(0.0, 1.0))
        .max(scheduled.min(MIN_JITTERED_DELAY))
        .max(MIN_DELAY);
    (lowest.min(scheduled), scheduled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_attempt_counts_saturate_at_the_cap() {
        let mut config = Config::new("ws://h");
        config.reconnect_factor = 1_000.0;
        for attempt in [0, 1, 2, 50, 1_000, 1_025, u32::MAX - 1, u32::MAX] {
            let delay = scheduled_delay(&config, attempt);
            assert!(delay >= MIN_DELAY, "{attempt}: {delay:?}");
            assert!(delay <= config.max_reconnect_delay);
        }
        assert_eq!(scheduled_delay(&config, u32::MAX), Duration::from_secs(30));
        config.max_reconnect_delay = Duration::MAX;
        assert_eq!(scheduled_delay(&config, u32::MAX), Duration::MAX);
    }

    #[test]
    fn full_jitter_stays_within_bounds_and_above_the_floor() {
        let config = Config::fleet("ws://h");
        let mut rng = fastrand::Rng::with_seed(7);
        for attempt in [1, 2, 5, 10, u32::MAX] {
            let (low, high) = delay_bounds(&config, attempt);
            for _ in 0..1_000 {
                let delay = jittered_delay(&config, attempt, &mut rng);
                assert!(low <= delay && delay <= high, "{delay:?}");
                assert!(delay >= MIN_JITTERED_DELAY);
            }
        }
    }

    #[test]
    fn tiny_intervals_are_not_floored_above_the_schedule() {
        let mut config = Config::fleet("ws://h");
        config.reconnect_interval = Duration::from_millis(10);
        let mut rng = fastrand::Rng::with_seed(1);
        let delay = jittered_delay(&config, 1, &mut rng);
        assert_eq!(delay, Duration::from_millis(10));
    }
}
