//! [`ClientCore`]: the state machine that ties status, backoff, heartbeat, outbox and channels
//! together.

use std::collections::VecDeque;
use std::time::Duration;

use cerebrum_protocol::{
    Ack, Auth, Envelope, ErrorPayload, MAX_FRAME_BYTES, MessageId, MessageIdGenerator, Payload,
    ProtocolError, Subscribe, Subscribed, Unsubscribe, Unsubscribed, Welcome, encode, features,
    validate_channel,
};
use serde_json::value::RawValue;

use crate::backoff::jittered_delay;

/// Decodes an inbound frame: serde's path, or with the feature `lean-decode` the protocol's
/// lean twin (same rules and values, smaller code: the browser client's choice).
#[cfg(not(feature = "lean-decode"))]
fn decode_frame(text: &str) -> Result<Envelope, ProtocolError> {
    cerebrum_protocol::decode(text)
}

/// Decodes an inbound frame: serde's path, or with the feature `lean-decode` the protocol's
/// lean twin (same rules and values, smaller code: the browser client's choice).
#[cfg(feature = "lean-decode")]
fn decode_frame(text: &str) -> Result<Envelope, ProtocolError> {
    cerebrum_protocol::decode_lean(text)
}

/// Reads a control message's payload (see [`decode_frame`] for the two paths).
#[cfg(not(feature = "lean-decode"))]
fn typed<P: Payload>(envelope: &Envelope) -> Result<P, ProtocolError> {
    envelope.typed::<P>()
}

/// Reads a control message's payload (see [`decode_frame`] for the two paths).
#[cfg(feature = "lean-decode")]
fn typed<P: cerebrum_protocol::LeanPayload>(envelope: &Envelope) -> Result<P, ProtocolError> {
    envelope.typed_lean::<P>()
}
use crate::channels::Channels;
use crate::config::{Config, ConfigError, TokenTransport};
use crate::error::{AckError, SendError, SubscribeError};
use crate::event::{Command, Event, Outgoing, ServerLevel, TransportEvent};
use crate::heartbeat::{Heartbeat, LatencyStats};
use crate::instant::Instant;
use crate::outbox::{Limits, Outbox, Queued};
use crate::status::Status;
use crate::timer::{Timer, TimerTable};

/// Close code the core uses for a normal, client-initiated close.
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code the core uses when it abandons a connection itself (connection timeout, heartbeat
/// timeout); the core reconnects after it.
pub const CLOSE_CLIENT_TIMEOUT: u16 = 4000;
/// Server close code: bad or expired token. The core stops reconnecting.
pub const CLOSE_UNAUTHORIZED: u16 = 4001;
/// Server close code: forbidden. The core stops reconnecting.
pub const CLOSE_FORBIDDEN: u16 = 4003;

/// The smallest heartbeat interval a server's `welcome` can ask for.
const MIN_HEARTBEAT_HINT: Duration = Duration::from_secs(1);

/// Upper bound on timers fired by one input (each firing re-arms later or disarms, so the bound
/// is never reached in practice; it only rules out a livelock).
const MAX_TIMER_ROUNDS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// No transport: idle, or waiting for the reconnect timer.
    Idle,
    /// [`Command::Open`] was issued; waiting for `Opened`.
    Opening,
    /// The transport is open.
    Open,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    /// Open, and neither `welcome` nor the welcome window's end has happened yet.
    Unknown,
    Level0,
    V1 {
        features: Vec<String>,
    },
}

impl Level {
    fn known(&self) -> bool {
        !matches!(self, Self::Unknown)
    }

    fn acks(&self) -> bool {
        matches!(self, Self::V1 { features } if features.iter().any(|f| f == features::ACK))
    }

    fn public(&self) -> Option<ServerLevel> {
        match self {
            Self::Unknown => None,
            Self::Level0 => Some(ServerLevel::Level0),
            Self::V1 { features } => Some(ServerLevel::V1 {
                features: features.clone(),
            }),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Due {
    Timer(Timer),
    Liveness,
    Ack,
}

/// The sans-IO client: every rule of reconnection, heartbeat, offline queue, acks and channel
/// resume, with no clock, socket, thread or runtime.
///
/// # Driving contract
///
/// The owner (a transport adapter) feeds **inputs** — user intents ([`connect`](Self::connect),
/// [`send`](Self::send), …), transport reports ([`handle_transport`](Self::handle_transport)) and
/// timer expiries ([`handle_timeout`](Self::handle_timeout)) — each with the current `Instant`,
/// and after **every** input drains the **outputs** before the next input:
///
/// 1. [`poll_command`](Self::poll_command) until `None`, executing each command in order
///    (open a transport, transmit a frame, close);
/// 2. [`poll_event`](Self::poll_event) until `None`, handing events to the app;
/// 3. [`poll_timeout`](Self::poll_timeout): the instant at which to call `handle_timeout` next
///    (re-read after every input: it moves).
///
/// Deadlines are compared with the `now` of every input, not only in `handle_timeout`, so an
/// owner whose timers did not fire (a laptop waking up) still sees a dead connection closed on
/// its next input. `now` must not go backwards; an earlier `now` is treated as the latest seen.
/// After [`Command::Close`] or a new [`Command::Open`], the adapter feeds nothing more from the
/// old transport.
///
/// ```
/// use std::time::{Duration, Instant};
/// use cerebrum_core::{ClientCore, Command, Config, Event, Outgoing, Status, TransportEvent};
///
/// // The owner passes its clock's instants in; the core never reads a clock.
/// fn drive(start: Instant) -> Result<(), Box<dyn std::error::Error>> {
///     let mut core = ClientCore::new(Config::new("ws://localhost:8080/ws"), start, 1_732_752_000_000)?;
///
///     // Offline: the message waits in the queue.
///     let id = core.send(Outgoing::value("quiz.answer", &2)?, start)?;
///     assert_eq!(core.queued().count(), 1);
///
///     core.connect(start);
///     assert_eq!(core.poll_command(), Some(Command::Open { url: "ws://localhost:8080/ws".into() }));
///     assert_eq!(core.poll_command(), None);
///
///     core.handle_transport(TransportEvent::Opened, start + Duration::from_millis(40));
///     // The queue is flushed in order, right after connecting.
///     match core.poll_command() {
///         Some(Command::Transmit(frame)) => assert!(frame.contains(id.as_str())),
///         other => panic!("unexpected {other:?}"),
///     }
///     while let Some(event) = core.poll_event() {
///         if let Event::StatusChanged { to, .. } = event {
///             assert!(matches!(to, Status::Connecting | Status::Connected));
///         }
///     }
///     assert_eq!(core.status(), Status::Connected);
///     // Next deadline: the end of the 2 s window for the server's `welcome`.
///     assert_eq!(core.poll_timeout(), Some(start + Duration::from_millis(2_040)));
///     Ok(())
/// }
/// # let _ = drive;
/// ```
#[derive(Debug)]
pub struct ClientCore {
    config: Config,
    ids: MessageIdGenerator,
    rng: fastrand::Rng,
    origin: Instant,
    origin_unix_ms: u64,
    last_now: Instant,
    status: Status,
    transport: Transport,
    level: Level,
    attempts: u32,
    stopped_by_user: bool,
    timers: TimerTable,
    heartbeat: Heartbeat,
    heartbeat_interval: Duration,
    outbox: Outbox,
    channels: Channels,
    commands: VecDeque<Command>,
    events: VecDeque<Event>,
    /// [`Self::poll_timeout`] as of the end of the last input: no deadline can be due before it,
    /// so inputs skip the timer scan until then (checked in debug builds).
    wakeup: Option<Instant>,
}

impl ClientCore {
    /// A core for `config`, created at `now`, when the wall clock reads `unix_ms` (milliseconds
    /// since the Unix epoch). Envelope timestamps are `unix_ms + (now' − now)` for a later
    /// `now'`. The core starts `Disconnected`; nothing happens until [`connect`](Self::connect).
    ///
    /// Refuses an invalid config (see [`Config::validate`]).
    ///
    /// ```
    /// use std::time::Instant;
    /// use cerebrum_core::{ClientCore, Config, ConfigError};
    /// fn build(now: Instant) {
    ///     let bad = Config::new("localhost:8080");
    ///     assert!(matches!(ClientCore::new(bad, now, 0), Err(ConfigError::Url { .. })));
    /// }
    /// # let _ = build;
    /// ```
    pub fn new(config: Config, now: Instant, unix_ms: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        let node = (config.seed ^ (config.seed >> 32)) as u32;
        Ok(Self {
            ids: MessageIdGenerator::with_node(node),
            rng: fastrand::Rng::with_seed(config.seed),
            origin: now,
            origin_unix_ms: unix_ms,
            last_now: now,
            status: Status::Disconnected,
            transport: Transport::Idle,
            level: Level::Unknown,
            attempts: 0,
            stopped_by_user: false,
            timers: TimerTable::default(),
            heartbeat: Heartbeat::new(),
            heartbeat_interval: config.heartbeat_interval,
            outbox: Outbox::default(),
            channels: Channels::default(),
            commands: VecDeque::new(),
            events: VecDeque::new(),
            wakeup: None,
            config,
        })
    }

    // ----- user intents -------------------------------------------------------------------

    /// Starts connecting (status `Connecting`), unless a connection is open, opening, or a
    /// reconnect is already scheduled. Clears a previous [`disconnect`](Self::disconnect) and
    /// resets the attempt count.
    pub fn connect(&mut self, now: Instant) {
        self.connect_inner(now);
        self.refresh_wakeup();
    }

    /// Closes the connection with code 1000 and stays `Disconnected`: nothing reconnects until
    /// [`connect`](Self::connect) or [`reconnect`](Self::reconnect). Queued and in-flight
    /// messages are kept.
    pub fn disconnect(&mut self, now: Instant) {
        self.disconnect_inner(now);
        self.refresh_wakeup();
    }

    /// Starts over at once: closes any connection (code 1000), resets the attempt count and
    /// opens a new one, whatever the status (also after `Error` or `disconnect`).
    pub fn reconnect(&mut self, now: Instant) {
        self.reconnect_inner(now);
        self.refresh_wakeup();
    }

    /// Sends a message, or queues it while offline; returns the `messageId` it carries.
    ///
    /// While connected (and after any queued messages), the frame is transmitted at once. While
    /// offline it is queued (unless the queue is disabled or the send is volatile) and flushed
    /// in order after the next connect. With `ack: true` the outcome is reported later by
    /// [`Event::Acked`] or [`Event::SendFailed`]; against a server known not to support acks it
    /// is refused at once with [`SendError::AckUnsupported`].
    ///
    /// ```
    /// use std::time::Instant;
    /// use cerebrum_core::{ClientCore, Config, Outgoing, SendError};
    /// fn offline_send(now: Instant) -> Result<(), Box<dyn std::error::Error>> {
    ///     let mut config = Config::new("ws://localhost:8080/ws");
    ///     config.enable_queue = false;
    ///     let mut core = ClientCore::new(config, now, 0)?;
    ///     let err = core.send(Outgoing::value("quiz.answer", &1)?, now).unwrap_err();
    ///     assert_eq!(err, SendError::NotConnected);
    ///     Ok(())
    /// }
    /// # let _ = offline_send;
    /// ```
    pub fn send(&mut self, message: Outgoing, now: Instant) -> Result<MessageId, SendError> {
        let result = self.send_inner(message, now);
        self.refresh_wakeup();
        result
    }

    /// Subscribes to `channel`: sent now if connected to a v1 server, and again (with `since`,
    /// to resume) after every reconnect. Refuses a malformed channel name.
    pub fn subscribe(&mut self, channel: &str, now: Instant) -> Result<(), ProtocolError> {
        let result = self.subscribe_inner(channel, now);
        self.refresh_wakeup();
        result
    }

    /// Unsubscribes from `channel` and forgets its position; `false` if it was not subscribed.
    pub fn unsubscribe(&mut self, channel: &str, now: Instant) -> bool {
        let result = self.unsubscribe_inner(channel, now);
        self.refresh_wakeup();
        result
    }

    /// Replaces the auth token (`None` or empty removes it); used from the next connection on.
    /// After a close 4001 the core stays in `Error`; call this, then [`connect`](Self::connect).
    pub fn set_token(&mut self, token: Option<String>) {
        self.config.token = token
            .filter(|t| !t.is_empty())
            .map(crate::config::AuthToken::new);
    }

    /// Empties the offline queue; returns how many messages were removed (in-flight `ack`
    /// sends are not affected).
    pub fn clear_queue(&mut self) -> usize {
        self.outbox.clear().len()
    }

    /// An immediate liveness probe after a network change (new Wi-Fi, VPN up, wake-up): while
    /// connected a `ping` goes out now and the connection is declared dead unless a frame
    /// arrives within `heartbeat_timeout`; while waiting to reconnect, the attempt starts now.
    pub fn network_changed(&mut self, now: Instant) {
        self.network_changed_inner(now);
        self.refresh_wakeup();
    }

    // ----- handlers -----------------------------------------------------------------------

    /// Feeds what the transport reported. Never fails: a bad frame becomes
    /// [`Event::ProtocolViolation`], a lost connection a status change and maybe a reconnect.
    pub fn handle_transport(&mut self, event: TransportEvent, now: Instant) {
        self.handle_transport_inner(event, now);
        self.refresh_wakeup();
    }

    /// Runs every timer due at `now` (call it at [`poll_timeout`](Self::poll_timeout); calling it
    /// early or late is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.handle_timeout_inner(now);
        self.refresh_wakeup();
    }

    // ----- polls --------------------------------------------------------------------------

    /// The next command for the adapter, in order.
    #[must_use]
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// The next event for the app, in order.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next event, left in place: a driver with a fast path for one kind of event (the
    /// WebAssembly bindings and an inbound message) looks before it polls.
    #[must_use]
    pub fn peek_event(&self) -> Option<&Event> {
        self.events.front()
    }

    /// How many commands and how many events wait to be polled, in that order.
    ///
    /// ```
    /// use std::time::Instant;
    /// use cerebrum_core::{ClientCore, Config};
    /// fn connect(now: Instant) {
    ///     let mut core = ClientCore::new(Config::new("ws://localhost:8080/ws"), now, 0).unwrap();
    ///     assert_eq!(core.pending(), (0, 0));
    ///     core.connect(now);
    ///     assert_eq!(core.pending(), (1, 1)); // open; status → connecting
    ///     assert!(core.peek_event().is_some());
    /// }
    /// # let _ = connect;
    /// ```
    #[must_use]
    pub fn pending(&self) -> (usize, usize) {
        (self.commands.len(), self.events.len())
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next: the earliest of the
    /// reconnect, connection-timeout, heartbeat, liveness, welcome-window, stable-period and
    /// ack-timeout deadlines, as of the last input. `None` when nothing is pending.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wakeup
    }

    // ----- getters ------------------------------------------------------------------------

    /// The current status.
    #[must_use]
    pub fn status(&self) -> Status {
        self.status
    }

    /// Latency measured by the heartbeat (last, smoothed, minimum).
    #[must_use]
    pub fn latency(&self) -> LatencyStats {
        self.heartbeat.latency
    }

    /// The envelopes in the offline queue, oldest first, as they will be sent (stamped with
    /// their `messageId` and `timestamp`).
    pub fn queued(&self) -> impl ExactSizeIterator<Item = &Envelope> + '_ {
        self.outbox.iter().map(|m| &m.envelope)
    }

    /// Encoded bytes in the offline queue.
    #[must_use]
    pub fn queued_bytes(&self) -> usize {
        self.outbox.bytes()
    }

    /// The ids of transmitted `ack: true` messages still waiting for their `ack`, in send order.
    pub fn in_flight(&self) -> impl Iterator<Item = &MessageId> + '_ {
        self.outbox.in_flight_ids()
    }

    /// The channels subscribed to (re-subscribed after each reconnect), in name order.
    pub fn subscriptions(&self) -> impl Iterator<Item = &str> + '_ {
        self.channels.subscriptions()
    }

    /// Reconnect attempts made since the count was last reset.
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// What is known of the server on the current connection.
    #[must_use]
    pub fn server_level(&self) -> Option<ServerLevel> {
        self.level.public()
    }

    /// The heartbeat interval in use (the config's, or the server's smaller `welcome` hint,
    /// never below 1 s).
    #[must_use]
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval
    }

    /// The nonces of heartbeat pings sent on this connection and not answered yet.
    pub fn outstanding_pings(&self) -> impl Iterator<Item = u64> + '_ {
        self.heartbeat.outstanding()
    }

    /// The auth token, for adapters that send it as a header ([`TokenTransport::Header`]).
    #[must_use]
    pub fn token(&self) -> Option<&str> {
        self.config.token.as_ref().map(|t| t.expose())
    }

    /// The config in use.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ----- internals ----------------------------------------------------------------------

    /// Every input starts here: monotonic clock, then every due deadline.
    fn begin(&mut self, now: Instant) -> Instant {
        let now = self.clock(now);
        self.run_due(now);
        now
    }

    /// Runs the due timers, skipping the scan when the cached wake-up is still ahead. The cache
    /// is exact after every input and only a lower bound within one (an inbound frame moves the
    /// liveness deadline later), which is all this check needs.
    fn run_due(&mut self, now: Instant) {
        debug_assert!(
            match (self.wakeup, self.next_deadline()) {
                (None, Some(_)) => false,
                (Some(cached), Some(actual)) => cached <= actual,
                (_, None) => true,
            },
            "stale wake-up cache"
        );
        if self.wakeup.is_some_and(|wakeup| wakeup <= now) {
            self.run_timers(now);
        }
    }

    /// Recomputes the wake-up cache: the end of every input.
    fn refresh_wakeup(&mut self) {
        self.wakeup = self.next_deadline();
    }

    /// The earliest deadline of every kind.
    fn next_deadline(&self) -> Option<Instant> {
        [
            self.timers.next(),
            self.liveness_deadline(),
            self.outbox.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn clock(&mut self, now: Instant) -> Instant {
        if now > self.last_now {
            self.last_now = now;
        }
        self.last_now
    }

    fn unix_ms(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin).as_millis();
        self.origin_unix_ms
            .saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }

    fn limits(&self) -> Limits {
        Limits {
            capacity: self.config.queue_capacity,
            max_bytes: self.config.queue_max_bytes,
            policy: self.config.overflow_policy,
        }
    }

    fn liveness_deadline(&self) -> Option<Instant> {
        if self.transport == Transport::Open {
            self.heartbeat.deadline()
        } else {
            None
        }
    }

    fn set_status(&mut self, to: Status, reason: impl Into<String>) {
        if self.status != to {
            let from = self.status;
            self.status = to;
            self.events.push_back(Event::StatusChanged {
                from,
                to,
                reason: reason.into(),
            });
        }
    }

    fn run_timers(&mut self, now: Instant) {
        for _ in 0..MAX_TIMER_ROUNDS {
            let mut due: Option<(Due, Instant)> = self
                .timers
                .due(now)
                .map(|(timer, at)| (Due::Timer(timer), at));
            for (kind, at) in [
                (Due::Liveness, self.liveness_deadline()),
                (Due::Ack, self.outbox.next_deadline()),
            ] {
                if let Some(at) = at.filter(|&at| at <= now)
                    && due.is_none_or(|(_, best)| at < best)
                {
                    due = Some((kind, at));
                }
            }
            let Some((due, _)) = due else { return };
            self.fire(due, now);
        }
    }

    fn fire(&mut self, due: Due, now: Instant) {
        match due {
            Due::Timer(Timer::Reconnect) => {
                self.timers.stop(Timer::Reconnect);
                if self.transport == Transport::Idle && !self.stopped_by_user {
                    let reason = match self.config.reconnect_attempts {
                        crate::ReconnectAttempts::Limited(max) => {
                            format!("reconnect attempt {} of {max}", self.attempts)
                        }
                        _ => format!("reconnect attempt {}", self.attempts),
                    };
                    self.open(now, reason);
                }
            }
            Due::Timer(Timer::ConnectTimeout) => {
                self.timers.stop(Timer::ConnectTimeout);
                if self.transport == Transport::Opening {
                    let reason = "connection timeout";
                    self.commands.push_back(Command::Close {
                        code: CLOSE_CLIENT_TIMEOUT,
                        reason: reason.to_owned(),
                    });
                    self.connection_lost(now, None, reason.to_owned());
                }
            }
            Due::Timer(Timer::Ping) => {
                if self.transport == Transport::Open {
                    self.send_ping(now);
                    self.timers.set(Timer::Ping, now, self.heartbeat_interval);
                } else {
                    self.timers.stop(Timer::Ping);
                }
            }
            Due::Timer(Timer::Welcome) => {
                self.timers.stop(Timer::Welcome);
                if self.transport == Transport::Open && !self.level.known() {
                    self.set_level(Level::Level0, now);
                }
            }
            Due::Timer(Timer::Stable) => {
                self.timers.stop(Timer::Stable);
                if self.transport == Transport::Open {
                    self.attempts = 0;
                }
            }
            Due::Liveness => {
                let reason = "heartbeat timeout";
                self.commands.push_back(Command::Close {
                    code: CLOSE_CLIENT_TIMEOUT,
                    reason: reason.to_owned(),
                });
                self.connection_lost(now, Some(CLOSE_CLIENT_TIMEOUT), reason.to_owned());
            }
            Due::Ack => {
                for message_id in self.outbox.expire(now) {
                    self.events.push_back(Event::SendFailed {
                        message_id,
                        error: AckError::Timeout(self.config.ack_timeout),
                    });
                }
            }
        }
    }

    fn open(&mut self, now: Instant, reason: String) {
        self.transport = Transport::Opening;
        self.level = Level::Unknown;
        self.timers
            .set(Timer::ConnectTimeout, now, self.config.connection_timeout);
        self.set_status(Status::Connecting, reason);
        let url = self.open_url();
        self.commands.push_back(Command::Open { url });
    }

    fn open_url(&self) -> String {
        match (&self.config.token, self.config.token_transport) {
            (Some(token), TokenTransport::Query) => {
                with_query_param(&self.config.url, "token", token.expose())
            }
            _ => self.config.url.clone(),
        }
    }

    /// Drops the current transport's state (not the queue, in-flight table or subscriptions).
    fn teardown(&mut self) {
        self.transport = Transport::Idle;
        self.level = Level::Unknown;
        for timer in [
            Timer::ConnectTimeout,
            Timer::Ping,
            Timer::Welcome,
            Timer::Stable,
        ] {
            self.timers.stop(timer);
        }
        self.heartbeat.stop();
        self.heartbeat_interval = self.config.heartbeat_interval;
        for message_id in self.outbox.pause() {
            self.events.push_back(Event::SendFailed {
                message_id,
                error: AckError::ConnectionLost,
            });
        }
        self.channels.connection_lost();
        if !self.config.enable_queue {
            // Held only while connected: they cannot wait for the next connection.
            for message_id in self.outbox.clear() {
                self.events.push_back(Event::SendFailed {
                    message_id,
                    error: AckError::ConnectionLost,
                });
            }
        }
    }

    /// The transport is gone (closed by the server, failed, or abandoned by the core): apply the
    /// close rules of PROTOCOL.md section 7.
    fn connection_lost(&mut self, now: Instant, code: Option<u16>, reason: String) {
        self.teardown();
        let refused = match code {
            Some(CLOSE_UNAUTHORIZED) => Some("unauthorized"),
            Some(CLOSE_FORBIDDEN) => Some("forbidden"),
            _ => None,
        };
        let next_attempt = self.attempts.saturating_add(1);
        let will_reconnect = refused.is_none()
            && self.config.reconnect
            && !self.stopped_by_user
            && self.config.reconnect_attempts.allows(next_attempt);
        self.events.push_back(Event::Disconnected {
            code,
            reason: reason.clone(),
            will_reconnect,
        });
        if let Some(refused) = refused {
            let code = code.unwrap_or_default();
            self.set_status(
                Status::Error,
                format!("{refused} (close {code}): {reason}; not reconnecting"),
            );
        } else if !self.config.reconnect || self.stopped_by_user {
            self.set_status(Status::Disconnected, format!("{reason}; reconnect is off"));
        } else if will_reconnect {
            self.attempts = next_attempt;
            let delay = jittered_delay(&self.config, next_attempt, &mut self.rng);
            self.timers.set(Timer::Reconnect, now, delay);
            self.set_status(
                Status::Reconnecting,
                format!("{reason}; attempt {next_attempt} in {delay:?}"),
            );
            self.events.push_back(Event::ReconnectScheduled {
                attempt: next_attempt,
                delay,
            });
        } else {
            let attempts = self.attempts;
            self.set_status(
                Status::Error,
                format!("{reason}; gave up after {attempts} reconnect attempts"),
            );
            self.events.push_back(Event::GaveUp { attempts });
        }
    }

    fn on_opened(&mut self, now: Instant) {
        self.transport = Transport::Open;
        self.level = Level::Unknown;
        self.timers.stop(Timer::ConnectTimeout);
        self.heartbeat_interval = self.config.heartbeat_interval;
        self.heartbeat
            .start(now, self.heartbeat_interval, self.config.heartbeat_timeout);
        self.timers.set(Timer::Ping, now, self.heartbeat_interval);
        self.timers
            .set(Timer::Welcome, now, self.config.welcome_timeout);
        self.timers
            .set(Timer::Stable, now, self.config.stable_period);
        self.set_status(Status::Connected, "connection opened");
        self.events.push_back(Event::Connected);
        if self.config.token_transport == TokenTransport::AuthMessage
            && let Some(token) = &self.config.token
        {
            let auth = Auth {
                token: token.expose().to_owned(),
            };
            self.transmit_control(&auth, now);
        }
        self.flush(now);
    }

    /// Sends what may be sent now, oldest first: everything once the server's level is known;
    /// before that, the plain messages ahead of the first `ack: true` one or channel
    /// publication (and nothing while in-flight messages wait to be re-sent, so they keep
    /// their place). Publications wait for the level because the channels are re-subscribed
    /// then, just before the flush: a server processes a connection's frames in order, so the
    /// `subscribe` reaches it before the publication that needs it.
    fn flush(&mut self, now: Instant) {
        if self.transport != Transport::Open {
            return;
        }
        if !self.level.known() {
            if self.outbox.has_in_flight() {
                return;
            }
            while self
                .outbox
                .front()
                .is_some_and(|m| !m.ack && m.envelope.channel().is_none())
            {
                if let Some(message) = self.outbox.pop() {
                    self.commands.push_back(Command::Transmit(message.frame));
                }
            }
            return;
        }
        let acks = self.level.acks();
        while let Some(message) = self.outbox.pop() {
            if !message.ack {
                self.commands.push_back(Command::Transmit(message.frame));
            } else if acks {
                let deadline = crate::timer::after(now, self.config.ack_timeout);
                self.outbox
                    .track(message.id, message.frame.clone(), deadline, false);
                self.commands.push_back(Command::Transmit(message.frame));
            } else {
                self.events.push_back(Event::SendFailed {
                    message_id: message.id,
                    error: AckError::Unsupported,
                });
            }
        }
    }

    fn set_level(&mut self, level: Level, now: Instant) {
        self.timers.stop(Timer::Welcome);
        self.level = level;
        if let Some(public) = self.level.public() {
            self.events.push_back(Event::ServerLevel(public));
        }
        // Subscriptions first: a server processes a connection's frames in order, and a
        // publisher must be subscribed to its channel (PROTOCOL.md section 5), so a message
        // re-sent before its channel's `subscribe` would be refused with `not_subscribed`.
        let channels: Vec<String> = self.channels.subscriptions().map(str::to_owned).collect();
        for channel in channels {
            if matches!(self.level, Level::V1 { .. }) {
                self.send_subscribe(channel, now);
            } else {
                self.events.push_back(Event::SubscribeFailed {
                    channel,
                    error: SubscribeError::Unsupported,
                });
            }
        }
        if self.level.acks() {
            for frame in self.outbox.resend(now, self.config.ack_timeout) {
                self.commands.push_back(Command::Transmit(frame));
            }
        } else {
            for message_id in self.outbox.take_in_flight() {
                self.events.push_back(Event::SendFailed {
                    message_id,
                    error: AckError::Unsupported,
                });
            }
        }
        self.flush(now);
    }

    fn send_subscribe(&mut self, channel: String, now: Instant) {
        let payload = Subscribe {
            since: self.channels.since(&channel),
            channel,
        };
        if let Some(id) = self.transmit_control(&payload, now) {
            self.channels.expect(id, payload.channel);
        }
    }

    fn send_ping(&mut self, now: Instant) {
        let payload = self.heartbeat.ping(now);
        let envelope = RawValue::from_string(payload)
            .ok()
            .and_then(|raw| Envelope::new("ping", raw).ok());
        if let Some(envelope) = envelope {
            let ms = self.unix_ms(now);
            let envelope = envelope.stamped(&self.ids, ms);
            self.commands
                .push_back(Command::Transmit(encode(&envelope)));
        }
    }

    /// Transmits a control message of the core's own; returns its messageId.
    fn transmit_control<P: Payload>(&mut self, payload: &P, now: Instant) -> Option<MessageId> {
        let envelope = Envelope::from_payload(payload).ok()?;
        let envelope = envelope.stamped(&self.ids, self.unix_ms(now));
        let id = envelope.message_id().cloned();
        self.commands
            .push_back(Command::Transmit(encode(&envelope)));
        id
    }

    fn on_frame(&mut self, text: &str, now: Instant) {
        let envelope = match decode_frame(text) {
            Ok(envelope) => envelope,
            Err(err) => {
                self.events.push_back(Event::ProtocolViolation(err));
                return;
            }
        };
        let kind = envelope.kind();
        if !self.level.known() && kind != Welcome::TYPE && kind != ErrorPayload::TYPE {
            // A v1 server's first frame is `welcome`: anything else is a level-0 server talking.
            self.set_level(Level::Level0, now);
        }
        // A frame with a `channel` is a publication of that channel, whatever its type: only
        // frames without one are the server's control messages (PROTOCOL.md section 7), so a
        // forged `ack` or `error` published by a peer settles nothing.
        let control = if envelope.channel().is_some() {
            ""
        } else {
            kind
        };
        match control {
            "pong" => {
                if let Some(rtt) = self.heartbeat.pong(envelope.payload().get(), now) {
                    self.events.push_back(Event::Latency(rtt));
                }
            }
            "welcome" => match typed::<Welcome>(&envelope) {
                Ok(welcome) => self.on_welcome(welcome, now),
                Err(err) => self.events.push_back(Event::ProtocolViolation(err)),
            },
            "ack" => match typed::<Ack>(&envelope) {
                Ok(ack) => {
                    if self.outbox.settle(&ack.message_id) {
                        self.events.push_back(Event::Acked {
                            message_id: ack.message_id,
                        });
                    }
                }
                Err(err) => self.events.push_back(Event::ProtocolViolation(err)),
            },
            "error" => match typed::<ErrorPayload>(&envelope) {
                Ok(error) => self.on_error(error),
                Err(err) => self.events.push_back(Event::ProtocolViolation(err)),
            },
            "subscribed" => match typed::<Subscribed>(&envelope) {
                Ok(subscribed) => {
                    self.channels.answered_channel(&subscribed.channel);
                    self.channels.on_subscribed(&subscribed);
                    self.events.push_back(Event::Subscribed {
                        channel: subscribed.channel,
                        recovered: subscribed.recovered,
                        missed: subscribed.missed,
                    });
                }
                Err(err) => self.events.push_back(Event::ProtocolViolation(err)),
            },
            "unsubscribed" => match typed::<Unsubscribed>(&envelope) {
                Ok(unsubscribed) => self.events.push_back(Event::Unsubscribed {
                    channel: unsubscribed.channel,
                }),
                Err(err) => self.events.push_back(Event::ProtocolViolation(err)),
            },
            _ => {
                if let (Some(channel), Some(offset)) = (envelope.channel(), envelope.offset())
                    && !self.channels.deliver(channel, offset)
                {
                    // Already delivered (a replay overlapping what was seen): dropped.
                    return;
                }
                self.events.push_back(Event::Message(envelope));
            }
        }
    }

    fn on_welcome(&mut self, welcome: Welcome, now: Instant) {
        if welcome.heartbeat_interval_ms > 0 {
            // Floored, so that no server can talk the client into a ping storm.
            let hint = Duration::from_millis(welcome.heartbeat_interval_ms).max(MIN_HEARTBEAT_HINT);
            if hint < self.heartbeat_interval {
                self.heartbeat_interval = hint;
                self.heartbeat
                    .set_budget(hint, self.config.heartbeat_timeout);
                // The next ping comes no later than one new interval from now.
                let sooner = crate::timer::after(now, hint);
                let later = match (self.timers.get(Timer::Ping), sooner) {
                    (Some(at), Some(sooner)) => sooner < at,
                    (None, _) => true,
                    (Some(_), None) => false,
                };
                if later {
                    self.timers.set(Timer::Ping, now, hint);
                }
            }
        }
        let level = Level::V1 {
            features: welcome.features.clone(),
        };
        self.events.push_back(Event::Welcome(welcome));
        if matches!(self.level, Level::V1 { .. }) {
            self.level = level;
        } else {
            self.set_level(level, now);
        }
    }

    fn on_error(&mut self, error: ErrorPayload) {
        if let Some(ref_id) = &error.ref_id {
            if self.outbox.settle(ref_id) {
                self.events.push_back(Event::SendFailed {
                    message_id: ref_id.clone(),
                    error: AckError::Refused(error),
                });
                return;
            }
            if let Some(channel) = self.channels.answered(ref_id) {
                // Refused: not retried on every reconnect.
                self.channels.remove(&channel);
                self.events.push_back(Event::SubscribeFailed {
                    channel,
                    error: SubscribeError::Refused(error),
                });
                return;
            }
        }
        self.events.push_back(Event::ServerError(error));
    }
}

/// The bodies of the inputs; the public wrappers refresh the wake-up cache after each.
impl ClientCore {
    fn connect_inner(&mut self, now: Instant) {
        let now = self.begin(now);
        self.stopped_by_user = false;
        if self.transport != Transport::Idle || self.timers.get(Timer::Reconnect).is_some() {
            return;
        }
        self.attempts = 0;
        self.open(now, "connect requested".to_owned());
    }

    fn disconnect_inner(&mut self, now: Instant) {
        let _ = self.begin(now);
        self.stopped_by_user = true;
        self.timers.stop(Timer::Reconnect);
        self.attempts = 0;
        let reason = "disconnect requested";
        if self.transport != Transport::Idle {
            self.commands.push_back(Command::Close {
                code: CLOSE_NORMAL,
                reason: reason.to_owned(),
            });
            self.teardown();
            self.events.push_back(Event::Disconnected {
                code: Some(CLOSE_NORMAL),
                reason: reason.to_owned(),
                will_reconnect: false,
            });
        }
        self.set_status(Status::Disconnected, reason);
    }

    fn reconnect_inner(&mut self, now: Instant) {
        let now = self.begin(now);
        self.stopped_by_user = false;
        self.timers.stop(Timer::Reconnect);
        let reason = "reconnect requested";
        if self.transport != Transport::Idle {
            self.commands.push_back(Command::Close {
                code: CLOSE_NORMAL,
                reason: reason.to_owned(),
            });
            self.teardown();
            self.events.push_back(Event::Disconnected {
                code: Some(CLOSE_NORMAL),
                reason: reason.to_owned(),
                will_reconnect: true,
            });
        }
        self.attempts = 0;
        self.open(now, reason.to_owned());
    }

    fn send_inner(&mut self, message: Outgoing, now: Instant) -> Result<MessageId, SendError> {
        let now = self.begin(now);
        let (envelope, channel, ack, volatile) = message.into_parts();
        let mut envelope = match channel {
            Some(channel) => envelope.with_channel(channel)?,
            None => envelope,
        };
        if ack && self.level.known() && !self.level.acks() {
            return Err(SendError::AckUnsupported);
        }
        let open = self.transport == Transport::Open;
        if volatile && !(open && (!ack || self.level.known())) {
            return Err(SendError::NotConnected);
        }
        if !open && !volatile && !self.config.enable_queue {
            return Err(SendError::NotConnected);
        }
        let unix_ms = self.unix_ms(now);
        let id = self.ids.next(unix_ms);
        envelope = envelope
            .with_ack(ack)
            .with_timestamp(unix_ms)
            .with_message_id(id.clone());
        let frame = encode(&envelope);
        if frame.len() > MAX_FRAME_BYTES {
            return Err(SendError::TooLarge {
                size: frame.len(),
                limit: MAX_FRAME_BYTES,
            });
        }
        // Straight to the wire when nothing older waits and the message's fate is decided.
        // Volatile sends never wait (they may overtake queued ones: they are stale otherwise).
        let direct = open
            && (volatile
                || (self.outbox.is_empty()
                    && ((self.level.known() && !ack)
                        || (self.level.acks() && ack)
                        || (!self.level.known() && !ack && !self.outbox.has_in_flight()))));
        if direct {
            if ack {
                let deadline = crate::timer::after(now, self.config.ack_timeout);
                self.outbox
                    .track(id.clone(), frame.clone(), deadline, volatile);
            }
            self.commands.push_back(Command::Transmit(frame));
            return Ok(id);
        }
        let queued = Queued {
            envelope,
            id: id.clone(),
            frame,
            ack,
        };
        if self.config.enable_queue {
            let dropped = self.outbox.push(queued, self.limits())?;
            for dropped in dropped {
                self.events.push_back(Event::QueueOverflow { dropped });
            }
        } else {
            // Open, queue disabled: held only until the server's level is known.
            self.outbox.push_unbounded(queued);
        }
        if open {
            self.flush(now);
        }
        Ok(id)
    }

    fn subscribe_inner(&mut self, channel: &str, now: Instant) -> Result<(), ProtocolError> {
        let now = self.begin(now);
        validate_channel(channel)?;
        if self.channels.add(channel) && self.transport == Transport::Open {
            match self.level {
                Level::V1 { .. } => self.send_subscribe(channel.to_owned(), now),
                Level::Level0 => self.events.push_back(Event::SubscribeFailed {
                    channel: channel.to_owned(),
                    error: SubscribeError::Unsupported,
                }),
                Level::Unknown => {}
            }
        }
        Ok(())
    }

    fn unsubscribe_inner(&mut self, channel: &str, now: Instant) -> bool {
        let now = self.begin(now);
        let removed = self.channels.remove(channel);
        if removed && self.transport == Transport::Open && matches!(self.level, Level::V1 { .. }) {
            let payload = Unsubscribe {
                channel: channel.to_owned(),
            };
            self.transmit_control(&payload, now);
        }
        removed
    }

    fn network_changed_inner(&mut self, now: Instant) {
        let now = self.begin(now);
        match self.transport {
            Transport::Open => {
                self.send_ping(now);
                self.heartbeat.probe(now, self.config.heartbeat_timeout);
            }
            Transport::Idle if self.timers.get(Timer::Reconnect).is_some() => {
                self.timers.set(Timer::Reconnect, now, Duration::ZERO);
                self.run_timers(now);
            }
            _ => {}
        }
    }

    fn handle_transport_inner(&mut self, event: TransportEvent, now: Instant) {
        let now = self.clock(now);
        match event {
            TransportEvent::Frame(text) => {
                if self.transport == Transport::Open {
                    // Any inbound frame proves liveness, even one that fails to decode.
                    self.heartbeat.inbound(now);
                }
                self.run_due(now);
                if self.transport == Transport::Open {
                    self.on_frame(&text, now);
                }
            }
            TransportEvent::Invalid(err) => {
                if self.transport == Transport::Open {
                    self.heartbeat.inbound(now);
                }
                self.run_due(now);
                if self.transport == Transport::Open {
                    self.events.push_back(Event::ProtocolViolation(err));
                }
            }
            TransportEvent::Opened => {
                self.run_due(now);
                if self.transport == Transport::Opening {
                    self.on_opened(now);
                }
            }
            TransportEvent::Closed { code, reason } => {
                self.run_due(now);
                if self.transport != Transport::Idle {
                    let reason = if reason.is_empty() {
                        match code {
                            Some(code) => format!("connection closed (code {code})"),
                            None => "connection closed abnormally".to_owned(),
                        }
                    } else {
                        reason
                    };
                    self.connection_lost(now, code, reason);
                }
            }
            TransportEvent::Error(reason) => {
                self.run_due(now);
                if self.transport != Transport::Idle {
                    self.events.push_back(Event::Error {
                        reason: format!("transport error: {reason}"),
                    });
                    self.connection_lost(now, None, reason);
                }
            }
        }
    }

    fn handle_timeout_inner(&mut self, now: Instant) {
        let _ = self.begin(now);
    }
}

/// Every byte but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`) is percent-encoded.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `url` with `name=value` (value percent-encoded) added to its query, before any `#fragment`.
///
/// `percent-encoding` rather than the `url` crate: the core is compiled to wasm32 for the
/// browser, where `url` and its IDNA tables would cost far more size than this splice.
fn with_query_param(url: &str, name: &str, value: &str) -> String {
    let (base, fragment) = match url.find('#') {
        Some(at) => url.split_at(at),
        None => (url, ""),
    };
    let separator = match base.find('?') {
        None => "?",
        Some(at) if at + 1 == base.len() || base.ends_with('&') => "",
        Some(_) => "&",
    };
    let value = percent_encoding::utf8_percent_encode(value, QUERY_VALUE);
    format!("{base}{separator}{name}={value}{fragment}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_percent_encoded() {
        assert_eq!(
            with_query_param("ws://h/ws", "token", "a.b-c_d~"),
            "ws://h/ws?token=a.b-c_d~"
        );
        assert_eq!(
            with_query_param("ws://h/ws", "token", "a b&c=d/é"),
            "ws://h/ws?token=a%20b%26c%3Dd%2F%C3%A9"
        );
    }

    #[test]
    fn the_token_goes_into_the_query_before_a_fragment() {
        for (url, with_token) in [
            ("ws://h/ws#frag", "ws://h/ws?token=t%2B1#frag"),
            ("ws://h/ws?x=1#frag", "ws://h/ws?x=1&token=t%2B1#frag"),
            ("ws://h/ws?#frag?x", "ws://h/ws?token=t%2B1#frag?x"),
            ("ws://h/ws?x=1&", "ws://h/ws?x=1&token=t%2B1"),
            ("ws://h/ws?x=1", "ws://h/ws?x=1&token=t%2B1"),
            ("ws://h/ws", "ws://h/ws?token=t%2B1"),
        ] {
            assert_eq!(with_query_param(url, "token", "t+1"), with_token, "{url}");
        }
    }
}
