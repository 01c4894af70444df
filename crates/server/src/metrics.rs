//! Counters and gauges of `GET /metrics`, in Prometheus text exposition.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cerebrum_protocol::ErrorCode;

/// Upper bounds (seconds) of the delivery-latency histogram buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Figures of a batch of written frames, gathered without atomics and recorded at once with
/// [`Metrics::record_sent`].
#[derive(Debug, Default, Clone)]
pub struct SentBatch {
    frames: u64,
    bytes: u64,
    sum_nanos: u64,
    /// Per bucket, and last the latencies above every bound (the `+Inf`-only bucket).
    buckets: [u64; LATENCY_BUCKETS.len() + 1],
}

impl SentBatch {
    /// Counts one frame of `bytes` that waited `latency` in the queue.
    pub fn frame(&mut self, bytes: usize, latency: Duration) {
        self.frames += 1;
        self.bytes += bytes as u64;
        self.latency(latency);
    }

    fn latency(&mut self, latency: Duration) {
        let secs = latency.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i] += 1;
        self.sum_nanos = self
            .sum_nanos
            .saturating_add(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }
}

/// The server's metrics: plain atomics, written by every connection, read by `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Open WebSocket connections.
    pub connections: AtomicU64,
    /// Frames received.
    pub frames_received: AtomicU64,
    /// Frames sent.
    pub frames_sent: AtomicU64,
    /// Bytes received in frames.
    pub bytes_received: AtomicU64,
    /// Bytes sent in frames.
    pub bytes_sent: AtomicU64,
    /// Frames answered with `rate_limited`.
    pub rate_limited: AtomicU64,
    /// Connections closed with 4008.
    pub slow_consumer_closes: AtomicU64,
    errors: [AtomicU64; ErrorCode::KNOWN.len()],
    /// Latencies per bucket (not cumulative: a latency counts in its own bucket only), the
    /// last one for latencies above every bound. There is no count apart: the count is the sum
    /// of the buckets as read, so `+Inf` and `_count` always agree with the finite buckets.
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_nanos: AtomicU64,
}

impl Metrics {
    /// Counts one `error` frame of `code`.
    pub fn error(&self, code: &ErrorCode) {
        if let Some(i) = ErrorCode::KNOWN.iter().position(|c| c == code) {
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many `error` frames of `code` were sent.
    #[must_use]
    pub fn errors_of(&self, code: &ErrorCode) -> u64 {
        ErrorCode::KNOWN
            .iter()
            .position(|c| c == code)
            .map_or(0, |i| self.errors[i].load(Ordering::Relaxed))
    }

    /// Records the time a frame waited between queueing and writing.
    pub fn observe_latency(&self, latency: Duration) {
        let mut batch = SentBatch::default();
        batch.latency(latency);
        self.record_latencies(&batch);
    }

    /// Records a batch of written frames: their count, bytes and queueing latencies, with a
    /// handful of atomic additions for the whole batch (not ~16 per frame: these counters are
    /// shared by every connection, so each addition is a cache line moving between cores).
    pub fn record_sent(&self, batch: &SentBatch) {
        if batch.frames == 0 {
            return;
        }
        self.frames_sent.fetch_add(batch.frames, Ordering::Relaxed);
        self.bytes_sent.fetch_add(batch.bytes, Ordering::Relaxed);
        self.record_latencies(batch);
    }

    fn record_latencies(&self, batch: &SentBatch) {
        for (bucket, n) in self.latency_buckets.iter().zip(batch.buckets) {
            if n > 0 {
                bucket.fetch_add(n, Ordering::Relaxed);
            }
        }
        self.latency_sum_nanos
            .fetch_add(batch.sum_nanos, Ordering::Relaxed);
    }

    /// The Prometheus text exposition, with `channels` as the current channel count.
    #[must_use]
    pub fn render(&self, channels: usize) -> String {
        let mut out = String::with_capacity(4096);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "cerebrum_connections",
            "gauge",
            "Open WebSocket connections.",
            load(&self.connections),
        );
        metric(
            "cerebrum_frames_received_total",
            "counter",
            "WebSocket frames received.",
            load(&self.frames_received),
        );
        metric(
            "cerebrum_frames_sent_total",
            "counter",
            "WebSocket frames sent.",
            load(&self.frames_sent),
        );
        metric(
            "cerebrum_bytes_received_total",
            "counter",
            "Bytes received in WebSocket frames.",
            load(&self.bytes_received),
        );
        metric(
            "cerebrum_bytes_sent_total",
            "counter",
            "Bytes sent in WebSocket frames.",
            load(&self.bytes_sent),
        );
        metric(
            "cerebrum_rate_limited_total",
            "counter",
            "Frames refused by the per-connection rate limit.",
            load(&self.rate_limited),
        );
        metric(
            "cerebrum_slow_consumer_closes_total",
            "counter",
            "Connections closed because their outbound queue was full.",
            load(&self.slow_consumer_closes),
        );
        metric(
            "cerebrum_channels",
            "gauge",
            "Channels with at least one subscriber.",
            channels as u64,
        );
        let _ = writeln!(
            out,
            "# HELP cerebrum_errors_total Error frames sent, by code.\n# TYPE cerebrum_errors_total counter"
        );
        for (code, count) in ErrorCode::KNOWN.iter().zip(&self.errors) {
            let _ = writeln!(
                out,
                "cerebrum_errors_total{{code=\"{}\"}} {}",
                code.as_str(),
                load(count)
            );
        }
        let _ = writeln!(
            out,
            "# HELP cerebrum_delivery_latency_seconds Time from queueing a frame to writing it.\n# TYPE cerebrum_delivery_latency_seconds histogram"
        );
        // One read of each bucket; Prometheus wants them cumulative, and `+Inf` (= `_count`)
        // is the total of the same reads, so under concurrent writes it is never below a
        // finite bucket (a count kept apart and read after the buckets could be).
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            cumulative += load(bucket);
            let _ = writeln!(
                out,
                "cerebrum_delivery_latency_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = cumulative + self.latency_buckets.last().map_or(0, load);
        let _ = writeln!(
            out,
            "cerebrum_delivery_latency_seconds_bucket{{le=\"+Inf\"}} {count}\ncerebrum_delivery_latency_seconds_sum {}\ncerebrum_delivery_latency_seconds_count {count}",
            load(&self.latency_sum_nanos) as f64 / 1e9
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_every_metric() {
        let metrics = Metrics::default();
        metrics.error(&ErrorCode::Forbidden);
        metrics.observe_latency(Duration::from_millis(2));
        let text = metrics.render(3);
        for name in [
            "cerebrum_connections 0",
            "cerebrum_channels 3",
            "cerebrum_errors_total{code=\"forbidden\"} 1",
            "cerebrum_delivery_latency_seconds_bucket{le=\"0.0025\"} 1",
            "cerebrum_delivery_latency_seconds_count 1",
        ] {
            assert!(text.contains(name), "{name} missing in\n{text}");
        }
        metrics.observe_latency(Duration::from_secs(3));
        let text = metrics.render(0);
        assert!(text.contains("cerebrum_delivery_latency_seconds_bucket{le=\"1\"} 1\n"));
        assert!(text.contains("cerebrum_delivery_latency_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("cerebrum_delivery_latency_seconds_count 2\n"));
    }

    /// The histogram's samples of an exposition: the cumulative buckets in order (`+Inf` last)
    /// and `_count`.
    fn histogram(text: &str) -> (Vec<u64>, u64) {
        let value = |line: &str| line.rsplit(' ').next().and_then(|v| v.parse().ok());
        let buckets = text
            .lines()
            .filter(|l| l.starts_with("cerebrum_delivery_latency_seconds_bucket"))
            .filter_map(value)
            .collect();
        let count = text
            .lines()
            .find(|l| l.starts_with("cerebrum_delivery_latency_seconds_count "))
            .and_then(value)
            .unwrap_or(u64::MAX);
        (buckets, count)
    }

    #[test]
    fn the_histogram_is_consistent_under_concurrent_writes() {
        let metrics = std::sync::Arc::new(Metrics::default());
        let writers: Vec<_> = (0..3u64)
            .map(|w| {
                let metrics = std::sync::Arc::clone(&metrics);
                std::thread::spawn(move || {
                    for i in 0..20_000u64 {
                        let mut batch = SentBatch::default();
                        // Latencies spread over every bucket, +Inf-only ones included.
                        for k in 0..4 {
                            let micros = (i * 7 + k * 131 + w * 17) % 2_000_000;
                            batch.frame(10, Duration::from_micros(micros));
                        }
                        metrics.record_sent(&batch);
                    }
                })
            })
            .collect();
        let mut renders = 0u64;
        while renders < 1_000 || writers.iter().any(|w| !w.is_finished()) {
            let (buckets, count) = histogram(&metrics.render(0));
            assert_eq!(buckets.len(), LATENCY_BUCKETS.len() + 1);
            assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
            assert_eq!(buckets.last(), Some(&count), "+Inf and _count differ");
            renders += 1;
        }
        for writer in writers {
            writer.join().unwrap();
        }
        let (buckets, count) = histogram(&metrics.render(0));
        assert_eq!(count, 3 * 20_000 * 4);
        assert_eq!(buckets.last(), Some(&count));
        assert_eq!(metrics.frames_sent.load(Ordering::Relaxed), count);
    }
}
