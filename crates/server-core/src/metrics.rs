//! Counters and gauges of `GET /metrics`: plain atomics written in batches by the connections,
//! read once per scrape and encoded in the Prometheus text format by `prometheus-client`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cerebrum_protocol::ErrorCode;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

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

    /// The Prometheus text exposition (format 0.0.4), with `channels` as the current channel
    /// count.
    #[must_use]
    pub fn render(&self, channels: usize) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.snapshot(channels)));
        let mut out = String::with_capacity(4096);
        // Writing into a `String` does not fail.
        let _ = prometheus_text::encode(&mut out, &registry);
        out
    }

    /// One read of every metric. The histogram's buckets are each read once, and `+Inf` and
    /// `_count` are the total of those same reads, so under concurrent writes `+Inf` is never
    /// below a finite bucket (a count kept apart and read after the buckets could be).
    fn snapshot(&self, channels: usize) -> Snapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let latency_buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.latency_buckets.iter().map(load))
            .collect();
        Snapshot {
            scalars: [
                (
                    "cerebrum_connections",
                    "Open WebSocket connections.",
                    MetricType::Gauge,
                    load(&self.connections),
                ),
                (
                    "cerebrum_frames_received",
                    "WebSocket frames received.",
                    MetricType::Counter,
                    load(&self.frames_received),
                ),
                (
                    "cerebrum_frames_sent",
                    "WebSocket frames sent.",
                    MetricType::Counter,
                    load(&self.frames_sent),
                ),
                (
                    "cerebrum_bytes_received",
                    "Bytes received in WebSocket frames.",
                    MetricType::Counter,
                    load(&self.bytes_received),
                ),
                (
                    "cerebrum_bytes_sent",
                    "Bytes sent in WebSocket frames.",
                    MetricType::Counter,
                    load(&self.bytes_sent),
                ),
                (
                    "cerebrum_rate_limited",
                    "Frames refused by the per-connection rate limit.",
                    MetricType::Counter,
                    load(&self.rate_limited),
                ),
                (
                    "cerebrum_slow_consumer_closes",
                    "Connections closed because their outbound queue was full.",
                    MetricType::Counter,
                    load(&self.slow_consumer_closes),
                ),
                (
                    "cerebrum_channels",
                    "Channels with at least one subscriber.",
                    MetricType::Gauge,
                    channels as u64,
                ),
            ],
            errors: ErrorCode::KNOWN
                .iter()
                .zip(&self.errors)
                .map(|(code, count)| (code.as_str().to_owned(), load(count)))
                .collect(),
            latency_count: latency_buckets.iter().map(|(_, n)| n).sum(),
            latency_buckets,
            latency_sum_seconds: load(&self.latency_sum_nanos) as f64 / 1e9,
        }
    }
}

/// A read of [`Metrics`], encoded by `prometheus-client`.
///
/// Only its encoder is used: its `Counter`s would do (`inc_by`), but its `Histogram` takes a
/// lock per observation and has no batch API, which would undo the measured batching of
/// [`SentBatch`]; and `Metrics`' public atomics are written by the connections directly.
#[derive(Debug)]
struct Snapshot {
    /// Gauges and counters without labels: name (counters without `_total`), help, type, value.
    scalars: [(&'static str, &'static str, MetricType, u64); 8],
    /// `cerebrum_errors_total` per `code`.
    errors: Vec<(String, u64)>,
    /// The latency buckets, not cumulative, the last one `+Inf`.
    latency_buckets: Vec<(f64, u64)>,
    /// The total of `latency_buckets`.
    latency_count: u64,
    /// The sum of the latencies.
    latency_sum_seconds: f64,
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        for (name, help, kind, value) in &self.scalars {
            let mut metric = encoder.encode_descriptor(name, help, None, *kind)?;
            match kind {
                MetricType::Counter => metric.encode_counter::<NoLabelSet, _, u64>(value, None)?,
                _ => metric.encode_gauge(value)?,
            }
        }
        let mut errors = encoder.encode_descriptor(
            "cerebrum_errors",
            "Error frames sent, by code.",
            None,
            MetricType::Counter,
        )?;
        for (code, count) in &self.errors {
            errors
                .encode_family(&[("code", code.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(count, None)?;
        }
        encoder
            .encode_descriptor(
                "cerebrum_delivery_latency_seconds",
                "Time from queueing a frame to writing it.",
                None,
                MetricType::Histogram,
            )?
            .encode_histogram::<NoLabelSet>(
                self.latency_sum_seconds,
                self.latency_count,
                &self.latency_buckets,
                None,
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_is_what_it_was_before_prometheus_client() {
        let metrics = Metrics::default();
        metrics.connections.store(2, Ordering::Relaxed);
        metrics.frames_received.store(5, Ordering::Relaxed);
        metrics.bytes_received.store(500, Ordering::Relaxed);
        metrics.rate_limited.store(1, Ordering::Relaxed);
        metrics.slow_consumer_closes.store(1, Ordering::Relaxed);
        metrics.error(&ErrorCode::Forbidden);
        let mut batch = SentBatch::default();
        batch.frame(100, Duration::from_micros(300));
        batch.frame(100, Duration::from_millis(2));
        batch.frame(100, Duration::from_secs(2));
        metrics.record_sent(&batch);
        let text = metrics.render(4);
        let mut expected = String::new();
        for (name, kind, help, value) in [
            (
                "cerebrum_connections",
                "gauge",
                "Open WebSocket connections.",
                2,
            ),
            (
                "cerebrum_frames_received_total",
                "counter",
                "WebSocket frames received.",
                5,
            ),
            (
                "cerebrum_frames_sent_total",
                "counter",
                "WebSocket frames sent.",
                3,
            ),
            (
                "cerebrum_bytes_received_total",
                "counter",
                "Bytes received in WebSocket frames.",
                500,
            ),
            (
                "cerebrum_bytes_sent_total",
                "counter",
                "Bytes sent in WebSocket frames.",
                300,
            ),
            (
                "cerebrum_rate_limited_total",
                "counter",
                "Frames refused by the per-connection rate limit.",
                1,
            ),
            (
                "cerebrum_slow_consumer_closes_total",
                "counter",
                "Connections closed because their outbound queue was full.",
                1,
            ),
            (
                "cerebrum_channels",
                "gauge",
                "Channels with at least one subscriber.",
                4,
            ),
        ] {
            expected += &format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
        }
        expected += "# HELP cerebrum_errors_total Error frames sent, by code.\n# TYPE cerebrum_errors_total counter\n";
        for code in ErrorCode::KNOWN {
            let n = u64::from(code == ErrorCode::Forbidden);
            expected += &format!("cerebrum_errors_total{{code=\"{}\"}} {n}\n", code.as_str());
        }
        expected += "# HELP cerebrum_delivery_latency_seconds Time from queueing a frame to writing it.\n# TYPE cerebrum_delivery_latency_seconds histogram\n";
        for (le, n) in [
            ("0.0001", 0),
            ("0.0005", 1),
            ("0.001", 1),
            ("0.0025", 2),
            ("0.005", 2),
            ("0.01", 2),
            ("0.025", 2),
            ("0.05", 2),
            ("0.1", 2),
            ("0.25", 2),
            ("0.5", 2),
            ("1", 2),
            ("+Inf", 3),
        ] {
            expected += &format!("cerebrum_delivery_latency_seconds_bucket{{le=\"{le}\"}} {n}\n");
        }
        expected += "cerebrum_delivery_latency_seconds_sum 2.0023\ncerebrum_delivery_latency_seconds_count 3\n";
        assert_eq!(text, expected);
    }

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
