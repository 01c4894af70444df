//! The simulated server: a sans-IO peer that the mock transport drives like a socket.

use std::collections::VecDeque;
use std::time::Duration;

use cerebrum_core::Instant;
use cerebrum_protocol::{
    Ack, ClientMessage, Envelope, ErrorPayload, MessageIdGenerator, PROTOCOL_VERSION, Payload,
    Subscribed, SystemStatus, Unsubscribed, Welcome, decode, encode, features,
};

use crate::{DataGenerator, MockMessage};

/// What a simulated server does, and when it misbehaves.
#[derive(Debug, Clone, PartialEq)]
pub struct MockConfig {
    /// Seed of every random choice: the same seed gives the same stream.
    pub seed: u64,
    /// The user the generated study metrics and notifications are for.
    pub user_id: String,
    /// How often a batch of generated data is sent (the origin's mock: every 5 s).
    pub data_interval: Duration,
    /// Time from the client's open to the simulated handshake's completion.
    pub connect_delay: Duration,
    /// Simulated one-way network latency, drawn per reply from this range (ms).
    pub latency_ms: (u64, u64),
    /// The heartbeat interval the simulated server announces in `welcome`.
    pub heartbeat_interval: Duration,
    /// Scripted faults.
    pub faults: FaultScript,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            seed: 0x00C0_FFEE,
            user_id: "user-123".to_owned(),
            data_interval: Duration::from_secs(5),
            connect_delay: Duration::from_millis(300),
            latency_ms: (20, 80),
            heartbeat_interval: Duration::from_secs(30),
            faults: FaultScript::default(),
        }
    }
}

/// Faults the simulated server plays, so apps can test their reconnection UI.
///
/// ```
/// use std::time::Duration;
/// use cerebrum_mock::FaultScript;
/// let faults = FaultScript::default()
///     .drop_at(Duration::from_secs(20))
///     .refuse_next_connects(2)
///     .silent_at(Duration::from_secs(90));
/// assert_eq!(faults.refuse_connects, 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultScript {
    /// Times (since the peer was created) at which the open connection drops (close 1006).
    pub drops: Vec<Duration>,
    /// How many of the next connection attempts are refused.
    pub refuse_connects: u32,
    /// Times at which the open connection goes silent: nothing more is sent on it (a
    /// half-open link that only the client's heartbeat can detect).
    pub silences: Vec<Duration>,
}

impl FaultScript {
    /// Drops the open connection at `at` (since the peer was created).
    #[must_use]
    pub fn drop_at(mut self, at: Duration) -> Self {
        self.drops.push(at);
        self
    }

    /// Refuses the next `n` connection attempts.
    #[must_use]
    pub fn refuse_next_connects(mut self, n: u32) -> Self {
        self.refuse_connects = n;
        self
    }

    /// Makes the open connection go silent at `at` (since the peer was created).
    #[must_use]
    pub fn silent_at(mut self, at: Duration) -> Self {
        self.silences.push(at);
        self
    }
}

/// What the simulated server does to the client's transport.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerOutput {
    /// The handshake completed.
    Opened,
    /// A text frame for the client.
    Frame(String),
    /// The connection closed (refused, dropped, or answering the client's close).
    Closed {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Closed,
    Opening,
    Open { silent: bool },
}

/// A simulated cerebrum server for one client connection at a time.
///
/// Driven like the client core: inputs with `now` (`connect`, `receive`, `close`,
/// `handle_timeout`), outputs by polling (`poll_output`, `poll_timeout`).
///
/// ```
/// use std::time::{Duration, Instant};
/// use cerebrum_mock::{MockConfig, MockPeer, PeerOutput};
///
/// let start = Instant::now();
/// let mut peer = MockPeer::new(MockConfig::default(), start, 1_732_752_000_000);
/// peer.connect(start);
/// let later = start + Duration::from_secs(1);
/// peer.handle_timeout(later);
/// assert_eq!(peer.poll_output(later), Some(PeerOutput::Opened));
/// // Then `welcome` and the system status.
/// assert!(matches!(peer.poll_output(later), Some(PeerOutput::Frame(f)) if f.contains("welcome")));
/// ```
#[derive(Debug)]
pub struct MockPeer {
    config: MockConfig,
    data: DataGenerator,
    rng: fastrand::Rng,
    ids: MessageIdGenerator,
    start: Instant,
    start_unix_ms: u64,
    link: Link,
    generation: u64,
    connections: u64,
    next_data: Option<Instant>,
    scheduled: VecDeque<(Instant, u64, PeerOutput)>,
    refuse_remaining: u32,
    drops: Vec<Instant>,
    silences: Vec<Instant>,
    offsets: std::collections::BTreeMap<String, u64>,
}

impl MockPeer {
    /// A simulated server created at `now`, when the wall clock read `unix_ms`.
    #[must_use]
    pub fn new(config: MockConfig, now: Instant, unix_ms: u64) -> Self {
        let data = DataGenerator::new(config.seed, &config.user_id, unix_ms);
        let mut drops: Vec<Instant> = config.faults.drops.iter().map(|d| now + *d).collect();
        drops.sort();
        let mut silences: Vec<Instant> = config.faults.silences.iter().map(|d| now + *d).collect();
        silences.sort();
        Self {
            rng: fastrand::Rng::with_seed(config.seed ^ 0x5eed_0f1a_7e00),
            ids: MessageIdGenerator::with_node((config.seed & 0xffff_ffff) as u32),
            refuse_remaining: config.faults.refuse_connects,
            config,
            data,
            start: now,
            start_unix_ms: unix_ms,
            link: Link::Closed,
            generation: 0,
            connections: 0,
            next_data: None,
            scheduled: VecDeque::new(),
            drops,
            silences,
            offsets: std::collections::BTreeMap::new(),
        }
    }

    /// The client opens a connection.
    pub fn connect(&mut self, now: Instant) {
        self.generation += 1;
        self.scheduled.clear();
        let ready = now + self.config.connect_delay;
        if self.refuse_remaining > 0 {
            self.refuse_remaining -= 1;
            self.link = Link::Closed;
            self.schedule(
                ready,
                PeerOutput::Closed {
                    code: 1006,
                    reason: "connection refused (simulated)".to_owned(),
                },
            );
            return;
        }
        self.link = Link::Opening;
        self.connections += 1;
        self.schedule(ready, PeerOutput::Opened);
        let welcome = Welcome {
            connection_id: format!("mock-{}", self.connections),
            user_id: Some(self.config.user_id.clone()),
            protocol: PROTOCOL_VERSION,
            heartbeat_interval_ms: millis(self.config.heartbeat_interval),
            features: features::ALL.iter().map(|f| (*f).to_owned()).collect(),
            server_time: self.unix_ms(ready),
        };
        self.schedule_payload(ready, &welcome);
        if let Some(MockMessage::SystemStatus(status)) = self
            .data
            .tick(self.unix_ms(ready))
            .into_iter()
            .find(|m| matches!(m, MockMessage::SystemStatus(_)))
        {
            self.schedule_payload::<SystemStatus>(ready, &status);
        }
        self.next_data = Some(ready + self.config.data_interval);
    }

    /// The client closes the connection (close handshake answered at once).
    pub fn close(&mut self, now: Instant, code: u16) {
        if self.link == Link::Closed {
            return;
        }
        self.link = Link::Closed;
        self.generation += 1;
        self.scheduled.clear();
        self.next_data = None;
        self.schedule(
            now,
            PeerOutput::Closed {
                code,
                reason: String::new(),
            },
        );
    }

    /// The client sent a text frame.
    pub fn receive(&mut self, frame: &str, now: Instant) {
        if !matches!(self.link, Link::Open { .. }) {
            return;
        }
        let reply_at = now + self.latency();
        let envelope = match decode(frame) {
            Ok(envelope) => envelope,
            Err(err) => {
                let error = ErrorPayload::from_protocol_error(&err, None);
                self.schedule_payload(reply_at, &error);
                return;
            }
        };
        let message = match ClientMessage::from_envelope(&envelope) {
            Ok(message) => message,
            Err(err) => {
                let error = ErrorPayload::from_protocol_error(&err, envelope.message_id().cloned());
                self.schedule_payload(reply_at, &error);
                return;
            }
        };
        match message {
            ClientMessage::Ping(_) => {
                // Echo the payload verbatim, with a fresh id like the origin's example server.
                if let Ok(pong) = Envelope::new("pong", envelope.payload().to_owned()) {
                    self.schedule_envelope(reply_at, pong);
                }
            }
            ClientMessage::Subscribe(subscribe) => {
                let offset = *self.offsets.entry(subscribe.channel.clone()).or_insert(0);
                let recovered = subscribe
                    .since
                    .as_ref()
                    .is_none_or(|since| since.epoch == MOCK_EPOCH && since.offset <= offset);
                let subscribed = Subscribed {
                    channel: subscribe.channel,
                    offset,
                    epoch: MOCK_EPOCH.to_owned(),
                    recovered,
                    missed: 0,
                };
                self.schedule_payload(reply_at, &subscribed);
            }
            ClientMessage::Unsubscribe(unsubscribe) => {
                let reply = Unsubscribed {
                    channel: unsubscribe.channel,
                };
                self.schedule_payload(reply_at, &reply);
            }
            _ => {}
        }
        if envelope.ack()
            && let Some(id) = envelope.message_id()
        {
            let ack = Ack {
                message_id: id.clone(),
            };
            self.schedule_payload(reply_at, &ack);
        }
    }

    /// Runs what is due at `now`: scripted faults and data ticks.
    pub fn handle_timeout(&mut self, now: Instant) {
        while self.drops.first().is_some_and(|at| *at <= now) {
            let at = self.drops.remove(0);
            if matches!(self.link, Link::Open { .. } | Link::Opening) {
                self.link = Link::Closed;
                self.generation += 1;
                self.scheduled.clear();
                self.next_data = None;
                self.schedule(
                    at,
                    PeerOutput::Closed {
                        code: 1006,
                        reason: "connection dropped (simulated)".to_owned(),
                    },
                );
            }
        }
        while self.silences.first().is_some_and(|at| *at <= now) {
            self.silences.remove(0);
            if let Link::Open { .. } = self.link {
                self.link = Link::Open { silent: true };
            }
        }
        while let Some(due) = self.next_data.filter(|at| *at <= now) {
            self.next_data = Some(due + self.config.data_interval);
            if let Link::Open { silent: false } = self.link {
                let batch = self.data.tick(self.unix_ms(due));
                for message in batch {
                    match message {
                        MockMessage::StudyMetrics(p) => self.schedule_payload(due, &p),
                        MockMessage::CollaborativeSession(p) => self.schedule_payload(due, &p),
                        MockMessage::Notification(p) => self.schedule_payload(due, &p),
                        MockMessage::SystemStatus(p) => self.schedule_payload(due, &p),
                    }
                }
            }
        }
    }

    /// The next output due at or before `now`, in the order it was scheduled.
    #[must_use]
    pub fn poll_output(&mut self, now: Instant) -> Option<PeerOutput> {
        self.handle_timeout(now);
        let index = self
            .scheduled
            .iter()
            .enumerate()
            .filter(|(_, (at, generation, _))| *at <= now && *generation == self.generation)
            .min_by_key(|(i, (at, _, _))| (*at, *i))
            .map(|(i, _)| i)?;
        let (_, _, output) = self.scheduled.remove(index)?;
        match &output {
            PeerOutput::Opened => self.link = Link::Open { silent: false },
            PeerOutput::Frame(_) if self.link == (Link::Open { silent: true }) => {
                return self.poll_output(now);
            }
            PeerOutput::Closed { .. } => self.link = Link::Closed,
            PeerOutput::Frame(_) => {}
        }
        Some(output)
    }

    /// When the peer next has something to do.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let scheduled = self
            .scheduled
            .iter()
            .filter(|(_, generation, _)| *generation == self.generation)
            .map(|(at, _, _)| *at);
        scheduled
            .chain(self.next_data)
            .chain(self.drops.first().copied())
            .chain(self.silences.first().copied())
            .min()
    }

    /// How many connections the peer accepted so far.
    #[must_use]
    pub fn connections(&self) -> u64 {
        self.connections
    }

    fn latency(&mut self) -> Duration {
        let (low, high) = self.config.latency_ms;
        Duration::from_millis(self.rng.u64(low.min(high)..=high.max(low)))
    }

    fn unix_ms(&self, at: Instant) -> u64 {
        self.start_unix_ms
            .saturating_add(millis(at.saturating_duration_since(self.start)))
    }

    fn schedule(&mut self, at: Instant, output: PeerOutput) {
        self.scheduled.push_back((at, self.generation, output));
    }

    fn schedule_payload<P: Payload>(&mut self, at: Instant, payload: &P) {
        if let Ok(envelope) = Envelope::from_payload(payload) {
            self.schedule_envelope(at, envelope);
        }
    }

    fn schedule_envelope(&mut self, at: Instant, envelope: Envelope) {
        let unix_ms = self.unix_ms(at);
        let frame = encode(&envelope.stamped(&self.ids, unix_ms));
        self.schedule(at, PeerOutput::Frame(frame));
    }
}

/// The epoch of every simulated channel.
const MOCK_EPOCH: &str = "mock";

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_732_752_000_000;

    /// Drains everything the peer does until `until`, stepping through its timeouts.
    fn drain(peer: &mut MockPeer, mut now: Instant, until: Instant) -> Vec<PeerOutput> {
        let mut out = Vec::new();
        loop {
            while let Some(output) = peer.poll_output(now) {
                out.push(output);
            }
            match peer.poll_timeout() {
                Some(next) if next <= until => now = next.max(now),
                _ => return out,
            }
        }
    }

    fn kinds(outputs: &[PeerOutput]) -> Vec<String> {
        outputs
            .iter()
            .map(|o| match o {
                PeerOutput::Frame(f) => decode(f).unwrap().kind().to_owned(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn connects_after_a_delay_then_welcomes_and_streams_data_every_interval() {
        let start = Instant::now();
        let mut peer = MockPeer::new(MockConfig::default(), start, T0);
        peer.connect(start);
        assert_eq!(peer.poll_output(start), None);
        let outputs = drain(&mut peer, start, start + Duration::from_secs(11));
        let kinds = kinds(&outputs);
        assert_eq!(kinds[0], "Opened");
        assert_eq!(kinds[1], "welcome");
        assert_eq!(kinds[2], "system_status");
        let metrics = kinds
            .iter()
            .filter(|k| *k == "study_metrics_update")
            .count();
        assert_eq!(metrics, 2, "{kinds:?}");
    }

    #[test]
    fn answers_pings_verbatim_and_acks_acked_sends() {
        let start = Instant::now();
        let mut peer = MockPeer::new(MockConfig::default(), start, T0);
        peer.connect(start);
        let open = start + Duration::from_secs(1);
        drain(&mut peer, start, open);
        peer.receive(
            r#"{"type":"ping","payload":{ "nonce" : 9 },"messageId":"p1"}"#,
            open,
        );
        peer.receive(
            r#"{"type":"quiz.answer","payload":{},"messageId":"m1","ack":true}"#,
            open,
        );
        let outputs = drain(&mut peer, open, open + Duration::from_millis(200));
        let frames: Vec<&str> = outputs
            .iter()
            .filter_map(|o| match o {
                PeerOutput::Frame(f) => Some(f.as_str()),
                _ => None,
            })
            .collect();
        assert!(
            frames
                .iter()
                .any(|f| f.starts_with(r#"{"type":"pong","payload":{ "nonce" : 9 }"#))
        );
        assert!(
            frames
                .iter()
                .any(|f| f.contains(r#""type":"ack","payload":{"messageId":"m1"}"#))
        );
    }

    #[test]
    fn fault_script_refuses_drops_and_goes_silent() {
        let start = Instant::now();
        let config = MockConfig {
            faults: FaultScript::default()
                .refuse_next_connects(1)
                .drop_at(Duration::from_secs(10))
                .silent_at(Duration::from_secs(30)),
            ..MockConfig::default()
        };
        let mut peer = MockPeer::new(config, start, T0);
        peer.connect(start);
        let refused = drain(&mut peer, start, start + Duration::from_secs(1));
        assert!(matches!(
            refused.as_slice(),
            [PeerOutput::Closed { code: 1006, .. }]
        ));

        let t1 = start + Duration::from_secs(1);
        peer.connect(t1);
        let dropped = drain(&mut peer, t1, start + Duration::from_secs(12));
        assert!(matches!(
            dropped.last(),
            Some(PeerOutput::Closed { code: 1006, .. })
        ));

        let t2 = start + Duration::from_secs(12);
        peer.connect(t2);
        let before_silence = drain(&mut peer, t2, start + Duration::from_secs(29));
        assert!(before_silence.len() > 3);
        let t3 = start + Duration::from_secs(31);
        let silent = drain(&mut peer, t3, start + Duration::from_secs(120));
        assert!(silent.is_empty(), "{silent:?}");
        peer.receive(r#"{"type":"ping","payload":1}"#, t3);
        assert!(drain(&mut peer, t3, start + Duration::from_secs(121)).is_empty());
    }

    #[test]
    fn same_seed_same_frames() {
        let run = || {
            let start = Instant::now();
            let mut peer = MockPeer::new(MockConfig::default(), start, T0);
            peer.connect(start);
            drain(&mut peer, start, start + Duration::from_secs(60))
        };
        assert_eq!(run(), run());
    }
}
