//! The instant type the core's inputs take.
//!
//! On every target with a clock this is [`std::time::Instant`] itself. On
//! `wasm32-unknown-unknown` the standard library has no clock: reading `std::time::Instant`'s
//! clock panics there and it has no other constructor, so an owner (the browser's JavaScript driver)
//! could not make a single `Instant` to pass in. There the core uses [`WasmInstant`], a
//! monotonic offset from an origin the owner chooses (e.g. `performance.now()` in
//! milliseconds), with the same arithmetic.

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub use std::time::Instant;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub use self::wasm::WasmInstant as Instant;

#[cfg(any(all(target_arch = "wasm32", target_os = "unknown"), test))]
#[cfg_attr(test, allow(unreachable_pub, dead_code))]
mod wasm {
    use std::ops::{Add, AddAssign, Sub};
    use std::time::Duration;

    /// A point in time as an offset from an origin chosen by the core's owner, for
    /// `wasm32-unknown-unknown`, where the standard library has no clock. It has the methods of
    /// [`std::time::Instant`] that the core uses; the core never makes one itself.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
    pub struct WasmInstant(Duration);

    impl WasmInstant {
        /// The instant `offset` after the owner's origin.
        #[must_use]
        pub const fn from_origin(offset: Duration) -> Self {
            Self(offset)
        }

        /// How long after the owner's origin this instant is.
        #[must_use]
        pub const fn since_origin(self) -> Duration {
            self.0
        }

        /// `self + duration`, or `None` on overflow.
        #[must_use]
        pub fn checked_add(self, duration: Duration) -> Option<Self> {
            self.0.checked_add(duration).map(Self)
        }

        /// `self - duration`, or `None` before the origin.
        #[must_use]
        pub fn checked_sub(self, duration: Duration) -> Option<Self> {
            self.0.checked_sub(duration).map(Self)
        }

        /// The time from `earlier` to `self`, zero if `earlier` is later.
        #[must_use]
        pub fn saturating_duration_since(self, earlier: Self) -> Duration {
            self.0.saturating_sub(earlier.0)
        }

        /// The time from `earlier` to `self`, or `None` if `earlier` is later.
        #[must_use]
        pub fn checked_duration_since(self, earlier: Self) -> Option<Duration> {
            self.0.checked_sub(earlier.0)
        }

        /// The time from `earlier` to `self`, zero if `earlier` is later (like
        /// [`std::time::Instant::duration_since`] since Rust 1.60).
        #[must_use]
        pub fn duration_since(self, earlier: Self) -> Duration {
            self.saturating_duration_since(earlier)
        }
    }

    impl Add<Duration> for WasmInstant {
        type Output = Self;

        /// Saturates at the largest representable instant (the core never adds unbounded
        /// durations; its own arithmetic uses `checked_add`).
        fn add(self, rhs: Duration) -> Self {
            Self(self.0.saturating_add(rhs))
        }
    }

    impl AddAssign<Duration> for WasmInstant {
        fn add_assign(&mut self, rhs: Duration) {
            *self = *self + rhs;
        }
    }

    impl Sub<Duration> for WasmInstant {
        type Output = Self;

        fn sub(self, rhs: Duration) -> Self {
            Self(self.0.saturating_sub(rhs))
        }
    }

    impl Sub for WasmInstant {
        type Output = Duration;

        fn sub(self, rhs: Self) -> Duration {
            self.saturating_duration_since(rhs)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn arithmetic_matches_std_instant() {
            let t0 = WasmInstant::from_origin(Duration::from_millis(1_000));
            let t1 = t0 + Duration::from_millis(250);
            assert_eq!(t1 - t0, Duration::from_millis(250));
            assert_eq!(t0.saturating_duration_since(t1), Duration::ZERO);
            assert_eq!(t0.checked_duration_since(t1), None);
            assert_eq!(t1.since_origin(), Duration::from_millis(1_250));
            assert_eq!(
                WasmInstant::from_origin(Duration::MAX).checked_add(Duration::from_nanos(1)),
                None
            );
            assert!(t0 < t1);
        }
    }
}
