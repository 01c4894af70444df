//! The per-connection token bucket and the abuse counter that closes a flooding connection.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A token bucket: `rate` tokens per second, at most `burst` stored.
///
/// Time is passed in, so tests drive it with simulated instants.
///
/// ```
/// use std::time::{Duration, Instant};
/// use cerebrum_server_core::ratelimit::TokenBucket;
///
/// let start = Instant::now();
/// let mut bucket = TokenBucket::new(20.0, 40, start);
/// let admitted = (0..100).filter(|_| bucket.try_take(start)).count();
/// assert_eq!(admitted, 40);
/// assert!(bucket.try_take(start + Duration::from_millis(50)));
/// ```
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket. A `rate` of zero (or less) turns the limit off.
    #[must_use]
    pub fn new(rate: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Whether the limit is off.
    #[must_use]
    pub fn is_unlimited(&self) -> bool {
        self.rate <= 0.0 || !self.rate.is_finite()
    }

    /// Takes one token if one is available at `now`.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.try_take_n(1.0, now)
    }

    /// Takes `n` tokens if that many are available at `now` (a byte bucket takes a frame's
    /// length). Nothing is taken when they are not.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use cerebrum_server_core::ratelimit::TokenBucket;
    ///
    /// let start = Instant::now();
    /// let mut bytes = TokenBucket::new(1024.0, 4096, start);
    /// assert!(bytes.try_take_n(4000.0, start));
    /// assert!(!bytes.try_take_n(1000.0, start));
    /// assert!(bytes.try_take_n(1000.0, start + Duration::from_secs(1)));
    /// ```
    pub fn try_take_n(&mut self, n: f64, now: Instant) -> bool {
        if self.is_unlimited() {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= n - 1e-9 {
            self.tokens = (self.tokens - n).max(0.0);
            true
        } else {
            false
        }
    }
}

/// Counts `rate_limited` answers in a sliding window: past `limit` within `window`, the
/// connection is closed (PROTOCOL.md section 7: 5 in 10 s closes 1008).
#[derive(Debug, Clone)]
pub struct AbuseCounter {
    limit: usize,
    window: Duration,
    hits: VecDeque<Instant>,
}

impl AbuseCounter {
    /// A counter that trips at the `limit`-th hit within `window`.
    #[must_use]
    pub fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            hits: VecDeque::new(),
        }
    }

    /// Records one hit at `now`; `true` when the limit is reached.
    pub fn hit(&mut self, now: Instant) -> bool {
        while let Some(&first) = self.hits.front() {
            if now.saturating_duration_since(first) >= self.window {
                self.hits.pop_front();
            } else {
                break;
            }
        }
        self.hits.push_back(now);
        self.hits.len() >= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Over any simulated schedule, admitted ≤ burst + rate × elapsed, and a client that
        /// asks at most once per 1/rate seconds after the burst is always admitted.
        #[test]
        fn admits_exactly_the_budget(rate in 1u32..100, burst in 1u32..100, steps in proptest::collection::vec(0u64..200, 1..300)) {
            let start = Instant::now();
            let mut bucket = TokenBucket::new(f64::from(rate), burst, start);
            let mut now = start;
            let mut admitted = 0u64;
            for step in steps {
                now += Duration::from_millis(step);
                if bucket.try_take(now) { admitted += 1; }
                let elapsed = now.duration_since(start).as_secs_f64();
                let budget = f64::from(burst) + elapsed * f64::from(rate);
                prop_assert!(admitted as f64 <= budget + 1e-6);
            }
        }
    }

    #[test]
    fn burst_then_sustained_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(20.0, 40, start);
        assert_eq!((0..1000).filter(|_| bucket.try_take(start)).count(), 40);
        // Ten simulated seconds at 100 asks per second admit exactly 20 per second.
        let mut admitted = 0;
        for ms in (10..=10_000).step_by(10) {
            if bucket.try_take(start + Duration::from_millis(ms)) {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 200);
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let now = Instant::now();
        let mut bucket = TokenBucket::new(0.0, 1, now);
        assert!((0..10_000).all(|_| bucket.try_take(now)));
    }

    #[test]
    fn abuse_trips_at_the_fifth_hit_within_the_window() {
        let start = Instant::now();
        let mut abuse = AbuseCounter::new(5, Duration::from_secs(10));
        for i in 0..4 {
            assert!(!abuse.hit(start + Duration::from_secs(i)));
        }
        assert!(abuse.hit(start + Duration::from_secs(4)));
        let mut spaced = AbuseCounter::new(5, Duration::from_secs(10));
        for i in 0..20 {
            assert!(!spaced.hit(start + Duration::from_secs(3 * i)));
        }
    }
}
