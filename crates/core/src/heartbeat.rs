//! Heartbeat: pings with a nonce, pongs matched by nonce, latency samples, liveness deadline.

use std::collections::VecDeque;
use std::time::Duration;

use crate::instant::Instant;

#[cfg(not(feature = "lean-decode"))]
use serde::Deserialize;

/// Weight of a new sample in the smoothed latency (EWMA).
pub const LATENCY_ALPHA: f64 = 0.2;

/// Most unanswered pings remembered; older ones are forgotten (their connection is judged by the
/// liveness deadline, not by them).
const MAX_OUTSTANDING: usize = 16;

/// Round-trip latency measured from `ping`/`pong`.
///
/// ```
/// use std::time::Duration;
/// use cerebrum_core::LatencyStats;
/// let mut stats = LatencyStats::default();
/// stats.record(Duration::from_millis(100));
/// stats.record(Duration::from_millis(200));
/// assert_eq!(stats.last, Some(Duration::from_millis(200)));
/// assert_eq!(stats.smoothed, Some(Duration::from_millis(120)));
/// assert_eq!(stats.min, Some(Duration::from_millis(100)));
/// assert_eq!(stats.samples, 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LatencyStats {
    /// The latest sample.
    pub last: Option<Duration>,
    /// Exponentially weighted moving average, weight 0.2 per new sample.
    pub smoothed: Option<Duration>,
    /// The smallest sample.
    pub min: Option<Duration>,
    /// How many samples were taken.
    pub samples: u64,
}

impl LatencyStats {
    /// Adds one sample.
    pub fn record(&mut self, sample: Duration) {
        self.last = Some(sample);
        self.min = Some(self.min.map_or(sample, |min| min.min(sample)));
        self.smoothed = Some(match self.smoothed {
            None => sample,
            Some(previous) => {
                let nanos = previous.as_nanos() as f64 * (1.0 - LATENCY_ALPHA)
                    + sample.as_nanos() as f64 * LATENCY_ALPHA;
                // Rounded to the nanosecond; `as` saturates, and samples fit u64 nanoseconds.
                Duration::from_nanos(nanos.round() as u64)
            }
        });
        self.samples = self.samples.saturating_add(1);
    }
}

/// The heartbeat state of one client (pings span connections only through the nonce counter).
#[derive(Debug)]
pub(crate) struct Heartbeat {
    next_nonce: u64,
    outstanding: VecDeque<(u64, Instant)>,
    last_inbound: Option<Instant>,
    probe_deadline: Option<Instant>,
    /// How long the link may stay silent: heartbeat interval + heartbeat timeout.
    budget: Duration,
    /// The liveness deadline, kept up to date by every change (read on every input).
    deadline: Option<Instant>,
    pub(crate) latency: LatencyStats,
}

#[cfg(not(feature = "lean-decode"))]
#[derive(Deserialize)]
struct NoncePayload {
    nonce: u64,
}

impl Heartbeat {
    pub(crate) fn new() -> Self {
        Self {
            next_nonce: 1,
            outstanding: VecDeque::new(),
            last_inbound: None,
            probe_deadline: None,
            budget: Duration::ZERO,
            deadline: None,
            latency: LatencyStats::default(),
        }
    }

    /// A connection opened at `now`: it counts as a sign of life. The link is dead after
    /// `interval + timeout` without an inbound frame.
    pub(crate) fn start(&mut self, now: Instant, interval: Duration, timeout: Duration) {
        self.outstanding.clear();
        self.last_inbound = Some(now);
        self.probe_deadline = None;
        self.budget = interval.saturating_add(timeout);
        self.update();
    }

    /// The heartbeat interval changed (a server's hint).
    pub(crate) fn set_budget(&mut self, interval: Duration, timeout: Duration) {
        self.budget = interval.saturating_add(timeout);
        self.update();
    }

    /// The connection is gone: nothing is outstanding any more.
    pub(crate) fn stop(&mut self) {
        self.outstanding.clear();
        self.last_inbound = None;
        self.probe_deadline = None;
        self.update();
    }

    /// Any inbound frame proves liveness.
    pub(crate) fn inbound(&mut self, now: Instant) {
        self.last_inbound = Some(now);
        self.probe_deadline = None;
        self.update();
    }

    fn update(&mut self) {
        let silent = self
            .last_inbound
            .and_then(|last| crate::timer::after(last, self.budget));
        self.deadline = match (silent, self.probe_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// A new ping's payload, recorded as outstanding.
    pub(crate) fn ping(&mut self, now: Instant) -> String {
        let nonce = self.next_nonce;
        self.next_nonce = self.next_nonce.wrapping_add(1);
        if self.outstanding.len() == MAX_OUTSTANDING {
            self.outstanding.pop_front();
        }
        self.outstanding.push_back((nonce, now));
        format!("{{\"nonce\":{nonce}}}")
    }

    /// An immediate liveness probe: no inbound frame within `timeout` means the link is dead.
    pub(crate) fn probe(&mut self, now: Instant, timeout: Duration) {
        let deadline = crate::timer::after(now, timeout);
        self.probe_deadline = match (self.probe_deadline, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.update();
    }

    /// A `pong` payload arrived at `now`: the round trip of its ping, when the nonce matches one.
    pub(crate) fn pong(&mut self, payload: &str, now: Instant) -> Option<Duration> {
        #[cfg(not(feature = "lean-decode"))]
        let nonce = serde_json::from_str::<NoncePayload>(payload).ok()?.nonce;
        #[cfg(feature = "lean-decode")]
        let nonce = cerebrum_protocol::lean_u64_member(payload, "nonce")?;
        let index = self.outstanding.iter().position(|&(n, _)| n == nonce)?;
        let (_, sent) = self.outstanding[index];
        // Older pings are answered implicitly: the link carried this one.
        self.outstanding.drain(..=index);
        let rtt = now.saturating_duration_since(sent);
        self.latency.record(rtt);
        Some(rtt)
    }

    /// The nonces of pings not yet answered.
    pub(crate) fn outstanding(&self) -> impl Iterator<Item = u64> + '_ {
        self.outstanding.iter().map(|&(nonce, _)| nonce)
    }

    /// When the connection is declared dead unless a frame arrives first.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}
