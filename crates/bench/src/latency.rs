//! Latency samples and their percentiles: [`LatencySummary`], and (with the `load` feature)
//! [`LatencyRecorder`], an HDR histogram of bounded memory corrected for coordinated omission.

use serde::Serialize;

/// Percentiles of a set of latency samples, in milliseconds.
///
/// ```
/// use cerebrum_bench::LatencySummary;
/// let summary = LatencySummary::from_micros(&mut (1..=1000).collect::<Vec<u32>>());
/// assert_eq!(summary.count, 1000);
/// assert_eq!(summary.p50_ms, 0.5);
/// assert_eq!(summary.max_ms, 1.0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl LatencySummary {
    /// Summarises samples given in microseconds (sorts them in place).
    pub fn from_micros(samples: &mut [u32]) -> Self {
        samples.sort_unstable();
        let at = |q: f64| -> f64 {
            if samples.is_empty() {
                return 0.0;
            }
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            f64::from(samples[rank - 1]) / 1_000.0
        };
        Self {
            count: samples.len(),
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: samples.last().map_or(0.0, |m| f64::from(*m) / 1_000.0),
        }
    }
}

#[cfg(feature = "load")]
pub use recorder::LatencyRecorder;

#[cfg(feature = "load")]
mod recorder {
    use std::time::Duration;

    use hdrhistogram::Histogram;

    use super::LatencySummary;
    use crate::BenchError;

    /// Largest latency kept apart from the others, in microseconds (one hour); longer ones are
    /// recorded as this.
    const MAX_MICROS: u64 = 3_600_000_000;
    /// Significant decimal digits of every recorded value (a relative error of 0.1 % at most).
    const DIGITS: u8 = 3;

    /// Latencies in an HDR histogram (microseconds, 3 significant digits, up to an hour):
    /// memory bounded whatever the number of samples, and, given the interval at which the
    /// samples were expected (the scenario's send interval), corrected for coordinated
    /// omission: a sample of latency `L` longer than the interval `I` also records `L - I`,
    /// `L - 2I`, … down to `I`, the latencies of the sends a stalled sender would have made
    /// meanwhile (`hdrhistogram`'s `record_correct`). That is for a closed loop, where a stalled
    /// sender does not send; the scenarios of `cerebrum bench` are open loops that measure every
    /// frame from its **intended** send time, which corrects for coordinated omission already,
    /// so they record without an interval (with one, each stall would count twice).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cerebrum_bench::LatencyRecorder;
    ///
    /// let mut plain = LatencyRecorder::new(None)?;
    /// let mut corrected = LatencyRecorder::new(Some(Duration::from_millis(1)))?;
    /// for recorder in [&mut plain, &mut corrected] {
    ///     for _ in 0..99 {
    ///         recorder.record(100); // 0.1 ms
    ///     }
    ///     recorder.record(100_000); // one stall of 100 ms
    /// }
    /// assert_eq!((plain.samples(), corrected.samples()), (100, 100));
    /// assert_eq!(plain.summary().p99_ms, 0.1);
    /// // The stall hid 99 sends that would have waited 99 ms, 98 ms, …, 1 ms.
    /// assert!(corrected.summary().p50_ms >= 1.0);
    /// # Ok::<(), cerebrum_bench::BenchError>(())
    /// ```
    #[derive(Debug, Clone)]
    pub struct LatencyRecorder {
        histogram: Histogram<u64>,
        /// The expected interval between samples, in microseconds (0: no correction).
        interval_us: u64,
        /// Samples recorded (without the corrections' synthetic ones).
        samples: u64,
    }

    impl LatencyRecorder {
        /// An empty recorder; with `expected_interval`, corrected for coordinated omission.
        ///
        /// # Errors
        /// [`BenchError::Histogram`] if the histogram cannot be created (its bounds are
        /// constants, so never in practice).
        pub fn new(expected_interval: Option<Duration>) -> Result<Self, BenchError> {
            let histogram = Histogram::new_with_bounds(1, MAX_MICROS, DIGITS)
                .map_err(|err| BenchError::Histogram(format!("{err:?}")))?;
            let interval_us = expected_interval.map_or(0, |i| {
                u64::try_from(i.as_micros())
                    .unwrap_or(MAX_MICROS)
                    .min(MAX_MICROS)
            });
            Ok(Self {
                histogram,
                interval_us,
                samples: 0,
            })
        }

        /// Records one latency, in microseconds (past an hour, as an hour).
        pub fn record(&mut self, micros: u64) {
            let value = micros.min(MAX_MICROS);
            // In range by construction: neither call can fail.
            let recorded = if self.interval_us == 0 {
                self.histogram.record(value)
            } else {
                self.histogram.record_correct(value, self.interval_us)
            };
            debug_assert!(recorded.is_ok());
            self.samples += 1;
        }

        /// Adds every sample (and correction) of `other`.
        pub fn merge(&mut self, other: &Self) {
            // Same bounds on both sides: cannot fail.
            let added = self.histogram.add(&other.histogram);
            debug_assert!(added.is_ok());
            self.samples += other.samples;
        }

        /// Samples recorded, without the corrections.
        #[must_use]
        pub fn samples(&self) -> u64 {
            self.samples
        }

        /// The percentiles, over the corrected histogram; `count` is [`Self::samples`].
        #[must_use]
        pub fn summary(&self) -> LatencySummary {
            if self.samples == 0 {
                return LatencySummary::default();
            }
            let ms = |micros: u64| micros as f64 / 1_000.0;
            let at = |q: f64| ms(self.histogram.value_at_quantile(q));
            LatencySummary {
                count: usize::try_from(self.samples).unwrap_or(usize::MAX),
                p50_ms: at(0.50),
                p90_ms: at(0.90),
                p99_ms: at(0.99),
                p999_ms: at(0.999),
                max_ms: ms(self.histogram.max()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_single_samples() {
        assert_eq!(
            LatencySummary::from_micros(&mut []),
            LatencySummary::default()
        );
        let one = LatencySummary::from_micros(&mut [2_500]);
        assert_eq!((one.p50_ms, one.p999_ms, one.max_ms), (2.5, 2.5, 2.5));
    }

    #[cfg(feature = "load")]
    mod recorder {
        use std::time::Duration;

        use super::super::{LatencyRecorder, LatencySummary};

        #[test]
        fn an_empty_recorder_summarises_to_zeros() {
            let recorder = LatencyRecorder::new(Some(Duration::from_millis(1))).unwrap();
            assert_eq!(recorder.summary(), LatencySummary::default());
        }

        #[test]
        fn without_an_interval_it_matches_the_exact_percentiles_within_its_precision() {
            let mut samples: Vec<u32> = (1..=100_000).map(|i| (i * 7919) % 250_000).collect();
            let mut recorder = LatencyRecorder::new(None).unwrap();
            for s in &samples {
                recorder.record(u64::from(*s));
            }
            let exact = LatencySummary::from_micros(&mut samples);
            let hdr = recorder.summary();
            assert_eq!(hdr.count, exact.count);
            for (h, e) in [
                (hdr.p50_ms, exact.p50_ms),
                (hdr.p90_ms, exact.p90_ms),
                (hdr.p99_ms, exact.p99_ms),
                (hdr.p999_ms, exact.p999_ms),
                (hdr.max_ms, exact.max_ms),
            ] {
                // Three significant digits: within 0.1 % (give or take a rank).
                assert!((h - e).abs() <= e * 0.002 + 0.005, "{h} vs {e}");
            }
        }

        #[test]
        fn the_interval_corrects_a_stall_and_samples_count_only_real_ones() {
            let mut recorder = LatencyRecorder::new(Some(Duration::from_millis(10))).unwrap();
            recorder.record(1_000);
            recorder.record(1_000_000); // 1 s stall at one send per 10 ms
            assert_eq!(recorder.samples(), 2);
            let summary = recorder.summary();
            // 99 synthetic samples (990 ms down to 10 ms) fill the gap.
            assert!(
                summary.p50_ms >= 490.0 && summary.p50_ms <= 510.0,
                "{summary:?}"
            );
            assert!((summary.max_ms - 1_000.0).abs() < 1.0, "{summary:?}");
        }

        #[test]
        fn merging_adds_samples_and_corrections() {
            let interval = Some(Duration::from_millis(1));
            let mut a = LatencyRecorder::new(interval).unwrap();
            let mut b = LatencyRecorder::new(interval).unwrap();
            a.record(500);
            b.record(5_000);
            let mut all = LatencyRecorder::new(interval).unwrap();
            all.merge(&a);
            all.merge(&b);
            assert_eq!(all.samples(), 2);
            assert!((all.summary().max_ms - 5.0).abs() < 0.01);
            // 5 ms at 1 ms per send: 4 synthetic samples besides the two real ones.
            assert!(all.summary().p50_ms >= 2.0);
        }

        #[test]
        fn absurd_latencies_are_clamped_not_lost() {
            let mut recorder = LatencyRecorder::new(None).unwrap();
            recorder.record(u64::MAX);
            assert_eq!(recorder.samples(), 1);
            assert!(recorder.summary().max_ms >= 3_600_000.0);
        }
    }
}
