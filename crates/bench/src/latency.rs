//! Latency samples and their percentiles.

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
}
