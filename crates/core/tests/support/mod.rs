//! A simulated owner for the core: drives it with fake time and keeps every output.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use cerebrum_core::{
    ClientCore, Command, Config, Event, Outgoing, SendError, Status, TransportEvent,
};
use cerebrum_protocol::{Envelope, MessageId, decode};

pub const UNIX_MS: u64 = 1_732_752_000_000;

pub const WELCOME_ACK: &str = r#"{"type":"welcome","payload":{"connectionId":"c1","protocol":1,"heartbeatIntervalMs":30000,"features":["ack","channels","presence","resume"],"serverTime":1732752000000},"messageId":"w1"}"#;

pub const WELCOME_PLAIN: &str = r#"{"type":"welcome","payload":{"connectionId":"c1","protocol":1,"heartbeatIntervalMs":30000,"features":[],"serverTime":1732752000000},"messageId":"w1"}"#;

/// The core, a fake clock, and everything it produced.
pub struct Sim {
    pub core: ClientCore,
    pub t0: Instant,
    pub now: Instant,
    /// Every command, with the time (since t0) it came out.
    pub commands: Vec<(Duration, Command)>,
    /// Every event, with the time (since t0) it came out.
    pub events: Vec<(Duration, Event)>,
}

impl Sim {
    pub fn new(config: Config) -> Self {
        let t0 = Instant::now();
        let core = ClientCore::new(config, t0, UNIX_MS).expect("valid config");
        Self {
            core,
            t0,
            now: t0,
            commands: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn origin() -> Self {
        Self::new(Config::new("ws://localhost:8080/ws"))
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Drains both queues into the logs; returns what this drain produced.
    pub fn drain(&mut self) -> (Vec<Command>, Vec<Event>) {
        let at = self.elapsed();
        let mut commands = Vec::new();
        while let Some(command) = self.core.poll_command() {
            commands.push(command.clone());
            self.commands.push((at, command));
        }
        let mut events = Vec::new();
        while let Some(event) = self.core.poll_event() {
            events.push(event.clone());
            self.events.push((at, event));
        }
        if let Some(deadline) = self.core.poll_timeout() {
            assert!(deadline >= self.now, "poll_timeout in the past");
        }
        (commands, events)
    }

    /// Moves time forward by `by`, firing every timer on the way at its exact instant.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        loop {
            match self.core.poll_timeout() {
                Some(deadline) if deadline <= target => {
                    self.now = self.now.max(deadline);
                    self.core.handle_timeout(self.now);
                    self.drain();
                }
                _ => break,
            }
        }
        self.now = target;
    }

    /// Moves time forward without firing anything (a sleeping laptop).
    pub fn sleep(&mut self, by: Duration) {
        self.now += by;
    }

    pub fn connect(&mut self) -> (Vec<Command>, Vec<Event>) {
        self.core.connect(self.now);
        self.drain()
    }

    pub fn disconnect(&mut self) -> (Vec<Command>, Vec<Event>) {
        self.core.disconnect(self.now);
        self.drain()
    }

    pub fn transport(&mut self, event: TransportEvent) -> (Vec<Command>, Vec<Event>) {
        self.core.handle_transport(event, self.now);
        self.drain()
    }

    pub fn opened(&mut self) -> (Vec<Command>, Vec<Event>) {
        self.transport(TransportEvent::Opened)
    }

    pub fn closed(&mut self, code: Option<u16>) -> (Vec<Command>, Vec<Event>) {
        self.transport(TransportEvent::Closed {
            code,
            reason: String::new(),
        })
    }

    pub fn frame(&mut self, text: &str) -> (Vec<Command>, Vec<Event>) {
        self.transport(TransportEvent::Frame(text.to_owned()))
    }

    pub fn send(&mut self, outgoing: Outgoing) -> Result<MessageId, SendError> {
        let result = self.core.send(outgoing, self.now);
        self.drain();
        result
    }

    /// Connect, open, and (optionally) receive `welcome`.
    pub fn connected(&mut self, welcome: Option<&str>) {
        self.connect();
        self.opened();
        if let Some(welcome) = welcome {
            self.frame(welcome);
        }
    }

    /// The statuses entered, in order.
    pub fn statuses(&self) -> Vec<Status> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::StatusChanged { to, .. } => Some(*to),
                _ => None,
            })
            .collect()
    }

    /// The times (since t0) of every `Open` command.
    pub fn open_times(&self) -> Vec<Duration> {
        self.commands
            .iter()
            .filter(|(_, c)| matches!(c, Command::Open { .. }))
            .map(|(at, _)| *at)
            .collect()
    }

    /// Every transmitted frame, decoded.
    pub fn transmitted(&self) -> Vec<Envelope> {
        self.commands
            .iter()
            .filter_map(|(_, c)| match c {
                Command::Transmit(frame) => Some(decode(frame).expect("core sends valid frames")),
                _ => None,
            })
            .collect()
    }

    /// Transmitted frames of one type.
    pub fn transmitted_of(&self, kind: &str) -> Vec<Envelope> {
        self.transmitted()
            .into_iter()
            .filter(|e| e.kind() == kind)
            .collect()
    }

    pub fn clear_logs(&mut self) {
        self.commands.clear();
        self.events.clear();
    }
}

pub fn app(n: u32) -> Outgoing {
    Outgoing::value("app.msg", &n).expect("valid message")
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
