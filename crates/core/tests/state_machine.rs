//! Property tests: arbitrary sequences of user intents, transport reports, server frames and
//! time jumps, driven through a simulated owner that drains every output after every input and
//! checks the core's invariants after every step.
//!
//! Cases: 4 000 (origin preset) + 3 000 (fleet preset) + 3 000 (varied configs) = 10 000.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use cerebrum_core::{
    ClientCore, Command, Config, Event, Outgoing, OverflowPolicy, ReconnectAttempts, SendError,
    Status, TokenTransport, TransportEvent, delay_bounds,
};
use cerebrum_protocol::{MessageId, decode};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

#[derive(Debug, Clone)]
enum FrameOp {
    /// `short`: the server's heartbeat hint is half the configured interval.
    Welcome {
        ack: bool,
        short: bool,
    },
    /// A pong for the oldest outstanding ping (or an unknown nonce if none).
    Pong,
    /// An ack for one of the transmitted `ack: true` messages.
    Ack(usize),
    /// An `error{refId}` for one of them.
    ErrorRef(usize),
    Publication {
        offset: u64,
    },
    Subscribed {
        epoch: u8,
    },
    Garbage,
    AppData,
}

#[derive(Debug, Clone)]
enum Op {
    Connect,
    Disconnect,
    Reconnect,
    NetworkChanged,
    Send {
        ack: bool,
        volatile: bool,
    },
    Subscribe,
    ClearQueue,
    Opened,
    Closed {
        code: Option<u16>,
    },
    TransportError,
    Frame(FrameOp),
    /// Time passes; timers fire at their instants.
    Advance(u64),
    /// Time passes with no timer firing (a sleeping laptop), then a send.
    SleepThenSend(u64),
}

/// One op from two plain numbers: `kind` picks the op (its range is the op's weight), `arg` its
/// details. (Flat numbers generate far faster than nested `prop_oneof!`s in debug builds, and
/// shrink towards `Connect` and small arguments.)
fn decode_op((kind, arg): (u8, u32)) -> Op {
    const CODES: [Option<u16>; 8] = [
        None,
        Some(1000),
        Some(1001),
        Some(1006),
        Some(1011),
        Some(4001),
        Some(4003),
        Some(4008),
    ];
    let arg64 = u64::from(arg);
    match kind {
        0..=6 => Op::Connect,
        7..=8 => Op::Disconnect,
        9..=10 => Op::Reconnect,
        11..=12 => Op::NetworkChanged,
        13..=26 => Op::Send {
            ack: arg % 2 == 1,
            volatile: arg % 7 == 0,
        },
        27..=28 => Op::Subscribe,
        29..=30 => Op::ClearQueue,
        31..=42 => Op::Opened,
        43..=48 => Op::Closed {
            code: CODES[arg as usize % CODES.len()],
        },
        49..=50 => Op::TransportError,
        51..=74 => Op::Frame(match arg % 14 {
            0 | 1 => FrameOp::Welcome {
                ack: arg % 3 != 0,
                short: (arg >> 4) % 4 == 0,
            },
            2..=4 => FrameOp::Pong,
            5..=7 => FrameOp::Ack((arg >> 4) as usize),
            8 => FrameOp::ErrorRef((arg >> 4) as usize),
            9 | 10 => FrameOp::Publication {
                offset: (arg64 >> 4) % 12,
            },
            11 => FrameOp::Subscribed {
                epoch: ((arg >> 4) % 3) as u8,
            },
            12 => FrameOp::Garbage,
            _ => FrameOp::AppData,
        }),
        75..=96 => Op::Advance(match arg % 3 {
            0 => (arg64 >> 2) % 500,
            1 => 500 + (arg64 >> 2) % 4_500,
            _ => 5_000 + (arg64 >> 2) % 40_000,
        }),
        _ => Op::SleepThenSend(40_000 + arg64 % 160_000),
    }
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec((0u8..100, any::<u32>()).prop_map(decode_op), 1..100)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Closed,
    Pending,
    Open,
}

/// The simulated owner and peer, with everything it needs to check the invariants.
struct Harness {
    core: ClientCore,
    config: Config,
    now: Instant,
    link: Link,
    /// Last sign of life fed while open (the opening counts).
    last_alive: Option<Instant>,
    /// Accepted, not volatile, not yet transmitted, not removed: must equal `queued()`.
    waiting: VecDeque<MessageId>,
    /// Every id transmitted at least once.
    transmitted: HashSet<MessageId>,
    /// `ack: true` messages accepted and not yet resolved.
    ack_pending: HashSet<MessageId>,
    /// `ack: true` messages transmitted (candidates for the peer's ack/error), unresolved.
    ack_on_wire: Vec<MessageId>,
    resolved: HashSet<MessageId>,
    volatile: HashSet<MessageId>,
    /// Pings on the current link: nonce → (sent at, any frame since).
    pings: HashMap<u64, (Instant, bool)>,
    /// When the scheduled reconnect may open at the earliest.
    reconnect_not_before: Option<Instant>,
    gave_up: bool,
    status: Status,
    /// Dedupe check: the epoch the peer last announced and the last offset delivered in it.
    epoch: Option<u8>,
    last_offset: Option<u64>,
    /// Messages passed over by a flush in the current drain (must fail in the same drain).
    skipped: Vec<MessageId>,
    /// Acceptance order of every accepted message.
    accepted: HashMap<MessageId, usize>,
    /// On this link: the acceptance index of the last re-sent message, and whether a message
    /// was transmitted for the first time.
    resend_floor: Option<usize>,
    first_sent_on_link: bool,
    steps: usize,
}

impl Harness {
    fn new(config: Config) -> Self {
        let now = Instant::now();
        let core = ClientCore::new(config.clone(), now, 1_732_752_000_000).unwrap();
        Self {
            core,
            config,
            now,
            link: Link::Closed,
            last_alive: None,
            waiting: VecDeque::new(),
            transmitted: HashSet::new(),
            ack_pending: HashSet::new(),
            ack_on_wire: Vec::new(),
            resolved: HashSet::new(),
            volatile: HashSet::new(),
            pings: HashMap::new(),
            reconnect_not_before: None,
            gave_up: false,
            status: Status::Disconnected,
            epoch: None,
            last_offset: None,
            skipped: Vec::new(),
            accepted: HashMap::new(),
            resend_floor: None,
            first_sent_on_link: false,
            steps: 0,
        }
    }

    fn limit(&self) -> Option<u32> {
        match self.config.reconnect_attempts {
            ReconnectAttempts::Limited(n) => Some(n),
            _ => None,
        }
    }

    /// The link is gone (closed by either side, or replaced).
    fn link_down(&mut self) {
        self.link = Link::Closed;
        self.pings.clear();
        self.resend_floor = None;
        self.first_sent_on_link = false;
        if self.epoch.is_none() {
            // Positions never confirmed by `subscribed` do not survive the link.
            self.last_offset = None;
        }
    }

    fn frame(&mut self, text: String) {
        if self.link == Link::Open {
            self.last_alive = Some(self.now);
            for (_, seen) in self.pings.values_mut() {
                *seen = true;
            }
        }
        self.core
            .handle_transport(TransportEvent::Frame(text), self.now);
        self.drain(false);
    }

    fn apply(&mut self, op: &Op) {
        self.steps += 1;
        match op {
            Op::Connect => {
                self.core.connect(self.now);
                self.drain(true);
            }
            Op::Disconnect => {
                self.core.disconnect(self.now);
                self.drain(false);
            }
            Op::Reconnect => {
                self.core.reconnect(self.now);
                self.drain(true);
            }
            Op::NetworkChanged => {
                self.core.network_changed(self.now);
                self.drain(true);
            }
            Op::Send { ack, volatile } => self.send(*ack, *volatile),
            Op::Subscribe => {
                self.core.subscribe("room:1", self.now).unwrap();
                self.drain(false);
            }
            Op::ClearQueue => {
                let removed = self.core.clear_queue();
                assert_eq!(removed, self.waiting.len(), "clear_queue count");
                for id in self.waiting.drain(..) {
                    // Removed on request: resolved for the ack bookkeeping.
                    self.ack_pending.remove(&id);
                    self.resolved.insert(id);
                }
                self.drain(false);
            }
            Op::Opened => {
                if self.link == Link::Pending {
                    self.link = Link::Open;
                    self.last_alive = Some(self.now);
                    self.pings.clear();
                }
                self.core.handle_transport(TransportEvent::Opened, self.now);
                self.drain(false);
            }
            Op::Closed { code } => {
                self.link_down();
                self.core.handle_transport(
                    TransportEvent::Closed {
                        code: *code,
                        reason: String::new(),
                    },
                    self.now,
                );
                self.drain(false);
            }
            Op::TransportError => {
                self.link_down();
                self.core
                    .handle_transport(TransportEvent::Error("reset".into()), self.now);
                self.drain(false);
            }
            Op::Frame(frame) => self.server_frame(frame),
            Op::Advance(ms) => self.advance(Duration::from_millis(*ms)),
            Op::SleepThenSend(ms) => {
                self.now += Duration::from_millis(*ms);
                self.send(false, false);
            }
        }
        self.check();
    }

    fn send(&mut self, ack: bool, volatile: bool) {
        let mut outgoing = Outgoing::value("app.msg", &self.steps)
            .unwrap()
            .with_ack(ack);
        if volatile {
            outgoing = outgoing.volatile();
        }
        let result = self.core.send(outgoing, self.now);
        match result {
            Ok(id) => {
                self.accepted.insert(id.clone(), self.accepted.len());
                if volatile {
                    self.volatile.insert(id.clone());
                } else {
                    self.waiting.push_back(id.clone());
                }
                if ack {
                    self.ack_pending.insert(id.clone());
                }
                self.drain(false);
                if volatile {
                    assert!(self.transmitted.contains(&id), "volatile sent at once");
                }
            }
            Err(SendError::QueueFull { .. }) => {
                assert!(
                    self.waiting.len() >= self.config.queue_capacity
                        || self.core.queued_bytes() > 0,
                    "QueueFull with room"
                );
                self.drain(false);
            }
            Err(SendError::NotConnected) => {
                assert!(volatile || !self.config.enable_queue);
                self.drain(false);
            }
            Err(SendError::AckUnsupported) => {
                assert!(ack);
                self.drain(false);
            }
            Err(other) => panic!("unexpected send error {other:?}"),
        }
    }

    fn server_frame(&mut self, frame: &FrameOp) {
        let text = match frame {
            FrameOp::Welcome { ack, short } => {
                let features = if *ack {
                    r#"["ack","channels","resume"]"#
                } else {
                    "[]"
                };
                format!(
                    r#"{{"type":"welcome","payload":{{"connectionId":"c","protocol":1,"heartbeatIntervalMs":{},"features":{features},"serverTime":0}}}}"#,
                    self.config.heartbeat_interval.as_millis() / if *short { 2 } else { 1 }
                )
            }
            FrameOp::Pong => {
                // Nonces grow: the smallest is the oldest ping.
                let oldest = self.pings.keys().min().copied();
                let nonce = oldest.unwrap_or(999_999_999);
                self.pings.remove(&nonce);
                format!(r#"{{"type":"pong","payload":{{"nonce":{nonce}}},"messageId":"p{nonce}"}}"#)
            }
            FrameOp::Ack(i) | FrameOp::ErrorRef(i) => {
                if self.ack_on_wire.is_empty() {
                    r#"{"type":"ack","payload":{"messageId":"unknown"}}"#.to_owned()
                } else {
                    let id = self.ack_on_wire[i % self.ack_on_wire.len()].clone();
                    if matches!(frame, FrameOp::Ack(_)) {
                        format!(r#"{{"type":"ack","payload":{{"messageId":"{id}"}}}}"#)
                    } else {
                        format!(
                            r#"{{"type":"error","payload":{{"code":"forbidden","message":"no","refId":"{id}"}}}}"#
                        )
                    }
                }
            }
            FrameOp::Publication { offset } => format!(
                r#"{{"type":"chat.message","payload":{offset},"channel":"room:1","offset":{offset}}}"#
            ),
            FrameOp::Subscribed { epoch } => {
                if self.link == Link::Open {
                    if self.epoch != Some(*epoch) {
                        self.last_offset = None;
                    }
                    self.epoch = Some(*epoch);
                }
                format!(
                    r#"{{"type":"subscribed","payload":{{"channel":"room:1","offset":0,"epoch":"e{epoch}","recovered":true,"missed":0}}}}"#
                )
            }
            FrameOp::Garbage => "{oops".to_owned(),
            FrameOp::AppData => r#"{"type":"quiz.started","payload":{"id":1}}"#.to_owned(),
        };
        self.frame(text);
    }

    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(deadline) = self.core.poll_timeout() {
            if deadline > target {
                break;
            }
            self.now = self.now.max(deadline);
            self.core.handle_timeout(self.now);
            self.drain(false);
        }
        self.now = target;
    }

    /// Drains every output of the last input and checks each against the peer's model.
    /// `forced`: the input may open a connection before the reconnect delay (connect,
    /// reconnect, network change).
    fn drain(&mut self, forced: bool) {
        while let Some(command) = self.core.poll_command() {
            match command {
                Command::Open { .. } => {
                    if !forced {
                        assert!(!self.gave_up, "opened after giving up");
                        if let Some(at) = self.reconnect_not_before {
                            assert!(self.now >= at, "reconnected before its delay");
                        }
                    }
                    self.gave_up = false;
                    self.reconnect_not_before = None;
                    if self.link != Link::Closed {
                        self.link_down();
                    }
                    self.link = Link::Pending;
                }
                Command::Close { .. } => self.link_down(),
                Command::Transmit(frame) => {
                    assert_eq!(self.link, Link::Open, "transmit while the link is not open");
                    self.on_transmit(&frame);
                }
                other => panic!("unknown command {other:?}"),
            }
        }
        while let Some(event) = self.core.poll_event() {
            self.on_event(event);
        }
        for skipped in self.skipped.drain(..) {
            assert!(
                self.resolved.contains(&skipped),
                "{skipped} skipped but not failed"
            );
        }
        if let Some(deadline) = self.core.poll_timeout() {
            assert!(deadline >= self.now, "poll_timeout before now");
        }
    }

    fn on_transmit(&mut self, frame: &str) {
        let envelope = decode(frame).expect("the core transmits valid frames");
        match envelope.kind() {
            "ping" => {
                let nonce: serde_json::Value = envelope.payload_as().unwrap();
                let nonce = nonce["nonce"].as_u64().expect("ping carries a nonce");
                self.pings.insert(nonce, (self.now, false));
            }
            "app.msg" => {
                let id = envelope.message_id().expect("stamped").clone();
                if self.volatile.contains(&id) {
                    assert!(self.transmitted.insert(id), "volatile sent twice");
                    return;
                }
                if self.transmitted.contains(&id) {
                    // Only in-flight ack messages are ever re-sent: in their original order,
                    // before anything new goes out on this link.
                    assert!(envelope.ack(), "plain message transmitted twice");
                    assert!(self.ack_pending.contains(&id), "re-sent a resolved message");
                    assert!(
                        !self.first_sent_on_link,
                        "a newer message overtook a re-send"
                    );
                    let index = self.accepted[&id];
                    assert!(
                        self.resend_floor.is_none_or(|floor| index > floor),
                        "re-sends out of order"
                    );
                    self.resend_floor = Some(index);
                    return;
                }
                self.first_sent_on_link = true;
                // First transmissions follow acceptance order; the only messages that may be
                // skipped are `ack: true` ones failed (as unsupported) in this same drain, whose
                // events come after the commands.
                let position = self
                    .waiting
                    .iter()
                    .position(|x| *x == id)
                    .expect("a transmitted message was waiting");
                for skipped in self.waiting.drain(..position).collect::<Vec<_>>() {
                    // (or dropped to make room, with DropOldest, before a flush in this drain)
                    assert!(
                        self.ack_pending.contains(&skipped)
                            || self.config.overflow_policy == OverflowPolicy::DropOldest,
                        "plain message skipped"
                    );
                    self.skipped.push(skipped);
                }
                self.waiting.pop_front();
                self.transmitted.insert(id.clone());
                if envelope.ack() {
                    self.ack_on_wire.push(id);
                }
            }
            "auth" | "subscribe" | "unsubscribe" => {}
            other => panic!("unexpected transmitted type {other}"),
        }
    }

    fn resolve(&mut self, id: &MessageId) {
        assert!(self.resolved.insert(id.clone()), "{id} resolved twice");
        self.ack_pending.remove(id);
        self.ack_on_wire.retain(|x| x != id);
        self.waiting.retain(|x| x != id);
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::StatusChanged { from, to, .. } => {
                assert_eq!(from, self.status, "status changes chain");
                assert_ne!(from, to);
                self.status = to;
            }
            Event::ReconnectScheduled { attempt, delay } => {
                if let Some(limit) = self.limit() {
                    assert!(attempt <= limit, "attempt {attempt} over the limit {limit}");
                }
                let (low, high) = delay_bounds(&self.config, attempt);
                assert!(
                    delay >= low && delay <= high,
                    "attempt {attempt}: {delay:?} outside {low:?}..={high:?}"
                );
                assert!(delay <= self.config.max_reconnect_delay && !delay.is_zero());
                self.reconnect_not_before = Some(self.now + delay);
            }
            Event::GaveUp { attempts } => {
                assert_eq!(Some(attempts), self.limit());
                self.gave_up = true;
            }
            Event::Acked { message_id } => {
                assert!(self.ack_pending.contains(&message_id), "ack for nothing");
                self.resolve(&message_id);
            }
            Event::SendFailed { message_id, .. } => {
                assert!(
                    self.ack_pending.contains(&message_id) || self.waiting.contains(&message_id),
                    "failure of an unknown message"
                );
                assert!(
                    !self.transmitted.contains(&message_id)
                        || self.ack_pending.contains(&message_id)
                );
                self.resolve(&message_id);
            }
            Event::QueueOverflow { dropped } => {
                assert_eq!(self.config.overflow_policy, OverflowPolicy::DropOldest);
                if !self.skipped.contains(&dropped) {
                    assert_eq!(
                        self.waiting.front(),
                        Some(&dropped),
                        "the oldest is dropped"
                    );
                }
                self.resolve(&dropped);
            }
            Event::Message(envelope) => {
                if let Some(offset) = envelope.offset() {
                    if let Some(last) = self.last_offset {
                        assert!(offset > last, "duplicate delivery {offset} after {last}");
                    }
                    self.last_offset = Some(offset);
                }
            }
            _ => {}
        }
    }

    fn check(&mut self) {
        let queued: Vec<&MessageId> = self
            .core
            .queued()
            .map(|e| e.message_id().expect("queued messages are stamped"))
            .collect();
        assert!(
            queued.iter().copied().eq(self.waiting.iter()),
            "queue content and order"
        );
        if self.config.enable_queue {
            assert!(
                queued.len() <= self.config.queue_capacity,
                "queue over capacity"
            );
            assert!(self.core.queued_bytes() <= self.config.queue_max_bytes);
        }
        let waiting: HashSet<&MessageId> = queued.into_iter().collect();
        let in_flight: HashSet<&MessageId> = self.core.in_flight().collect();
        for id in &self.ack_pending {
            assert!(
                in_flight.contains(id) || waiting.contains(id),
                "ack message {id} lost"
            );
        }
        for id in &self.resolved {
            assert!(!in_flight.contains(id) && !waiting.contains(id));
        }
        if let Some(limit) = self.limit() {
            assert!(self.core.attempts() <= limit);
        }
        assert_eq!(self.core.status(), self.status);
        if self.link == Link::Open {
            // No inbound frame for interval + timeout: the core must have closed the link.
            let budget = self.core.heartbeat_interval() + self.config.heartbeat_timeout;
            assert!(self.core.heartbeat_interval() <= self.config.heartbeat_interval);
            let alive = self.last_alive.expect("open links have a start");
            assert!(self.now - alive <= budget, "dead link kept open");
            // Every ping is answered, proven moot by other frames, or leads to a reconnect.
            for (sent, seen) in self.pings.values() {
                assert!(
                    *seen || self.now - *sent <= budget,
                    "unanswered ping kept open"
                );
            }
            let outstanding: HashSet<u64> = self.core.outstanding_pings().collect();
            for nonce in self.pings.keys() {
                // The core forgets pings only when answered or too many are outstanding.
                assert!(outstanding.contains(nonce) || outstanding.len() >= 16);
            }
        }
    }
}

fn run(config: Config, ops: &[Op]) {
    let mut harness = Harness::new(config);
    for op in ops {
        harness.apply(op);
    }
}

fn varied_config() -> impl Strategy<Value = Config> {
    (0usize..6, any::<u64>()).prop_map(|(kind, seed)| {
        let mut config = Config::new("ws://localhost:8080/ws").with_seed(seed);
        match kind {
            0 => {
                config.queue_capacity = 4;
                config.overflow_policy = OverflowPolicy::DropOldest;
            }
            1 => {
                config.queue_capacity = 50;
                config.queue_max_bytes = 300;
            }
            2 => config.enable_queue = false,
            3 => {
                config = config.with_token("jwt");
                config.token_transport = TokenTransport::AuthMessage;
                config.reconnect_attempts = ReconnectAttempts::Limited(2);
            }
            4 => {
                config.reconnect = false;
                config.heartbeat_interval = Duration::from_secs(5);
                config.heartbeat_timeout = Duration::from_secs(1);
            }
            _ => {
                config.jitter = 0.5;
                config.max_reconnect_delay = Duration::from_secs(5);
                config.reconnect_attempts = ReconnectAttempts::Limited(0);
                config.ack_timeout = Duration::from_secs(1);
            }
        }
        config
    })
}

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        // Integration tests have no lib.rs for proptest to put regressions beside.
        failure_persistence: None,
        ..ProptestConfig::with_cases(n)
    }
}

proptest! {
    #![proptest_config(cases(4_000))]
    #[test]
    fn origin_preset_keeps_its_invariants(ops in ops()) {
        run(Config::new("ws://localhost:8080/ws"), &ops);
    }
}

proptest! {
    #![proptest_config(cases(3_000))]
    #[test]
    fn fleet_preset_keeps_its_invariants(
        seed in any::<u64>(),
        ops in ops(),
    ) {
        run(Config::fleet("ws://localhost:8080/ws").with_seed(seed), &ops);
    }
}

proptest! {
    #![proptest_config(cases(3_000))]
    #[test]
    fn varied_configs_keep_their_invariants(
        config in varied_config(),
        ops in ops(),
    ) {
        run(config, &ops);
    }
}

/// Messages accepted while offline are transmitted exactly once each, in order, after the next
/// connection, whatever happened before (a long deterministic flaky run).
#[test]
fn a_long_flaky_run_delivers_every_offline_message_once_in_order() {
    let mut harness = Harness::new(Config::fleet("ws://localhost:8080/ws"));
    let mut rng = 7u64;
    let mut next = || {
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (rng >> 33) as u32
    };
    harness.apply(&Op::Connect);
    for _ in 0..5_000 {
        let op = match next() % 10 {
            0 | 1 => Op::Send {
                ack: next() % 3 == 0,
                volatile: false,
            },
            2 => Op::Opened,
            3 => Op::Closed { code: Some(1006) },
            4 => Op::Frame(FrameOp::Welcome {
                ack: true,
                short: false,
            }),
            5 => Op::Frame(FrameOp::Ack(next() as usize)),
            6 => Op::Frame(FrameOp::Pong),
            _ => Op::Advance(u64::from(next() % 20_000)),
        };
        harness.apply(&op);
    }
    // Let the link come up and stay up until everything has gone out and been acked.
    for _ in 0..200 {
        if harness.waiting.is_empty() && harness.ack_pending.is_empty() {
            break;
        }
        harness.apply(&Op::Connect);
        harness.apply(&Op::Advance(31_000));
        harness.apply(&Op::Opened);
        harness.apply(&Op::Frame(FrameOp::Welcome {
            ack: true,
            short: false,
        }));
        for i in 0..harness.ack_on_wire.len() {
            let _ = i;
            harness.apply(&Op::Frame(FrameOp::Ack(0)));
        }
    }
    assert!(
        harness.waiting.is_empty(),
        "{} never sent",
        harness.waiting.len()
    );
    assert!(
        harness.ack_pending.is_empty(),
        "{} never resolved",
        harness.ack_pending.len()
    );
}
