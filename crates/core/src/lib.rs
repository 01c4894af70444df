//! The sans-IO client core of cerebrum-realtime: status, reconnection with backoff, heartbeat
//! and latency, the offline queue, acknowledged sends and channel resume, in one plain state
//! machine, [`ClientCore`].
//!
//! The core reads no clock, opens no socket, spawns nothing and draws no randomness it was not
//! given (the jitter RNG is seeded from [`Config::seed`]). Its owner — a transport adapter, or a
//! simulator in tests — feeds it inputs with the current [`Instant`] (`std::time::Instant`; on
//! `wasm32-unknown-unknown`, which has no clock, an offset from an origin the owner picks) and
//! drains its outputs, in the style of `quinn-proto` and `str0m`.
//!
//! # Driving contract
//!
//! ```text
//! loop {
//!     wait for the earliest of: a transport report, the instant of poll_timeout(), a user command
//!     feed it:   core.handle_transport(report, now) | core.handle_timeout(now) | core.send(msg, now) | …
//!     drain:     while let Some(cmd) = core.poll_command() { execute it: Open / Transmit / Close }
//!                while let Some(ev)  = core.poll_event()   { hand it to the app }
//!     re-read:   core.poll_timeout()
//! }
//! ```
//!
//! After **every** input, drain [`ClientCore::poll_command`] and [`ClientCore::poll_event`]
//! before the next input. Handlers never fail: a bad frame becomes
//! [`Event::ProtocolViolation`], a lost link a status change. Only user intents that can be
//! refused return `Result` ([`ClientCore::send`], [`ClientCore::subscribe`]). Deadlines are
//! checked against the `now` of every input, so a laptop that slept through its timers notices a
//! dead connection on its next `send`.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use cerebrum_core::{ClientCore, Command, Config, Event, Status, TransportEvent};
//!
//! // `t0` comes from the owner's clock (or a simulator): the core never reads one.
//! fn first_failure(t0: Instant) -> Result<(), cerebrum_core::ConfigError> {
//!     let mut core = ClientCore::new(Config::new("ws://localhost:8080/ws"), t0, 1_732_752_000_000)?;
//!     core.connect(t0);
//!     assert!(matches!(core.poll_command(), Some(Command::Open { .. })));
//!     // The server is down: the adapter reports the failure.
//!     core.handle_transport(TransportEvent::Error("connection refused".into()), t0);
//!     let mut delays = Vec::new();
//!     while let Some(event) = core.poll_event() {
//!         if let Event::ReconnectScheduled { delay, .. } = event {
//!             delays.push(delay);
//!         }
//!     }
//!     assert_eq!(delays, [Duration::from_secs(3)]);
//!     assert_eq!(core.status(), Status::Reconnecting);
//!     assert_eq!(core.poll_timeout(), Some(t0 + Duration::from_secs(3)));
//!     Ok(())
//! }
//! # let _ = first_failure;
//! ```
//!
//! # Status transitions
//!
//! The five statuses of the origin document; each change is an [`Event::StatusChanged`] with a
//! reason.
//!
//! | from | input | to |
//! |---|---|---|
//! | `Disconnected`, `Error` | `connect()` / `reconnect()` | `Connecting` |
//! | `Connecting` | transport `Opened` | `Connected` |
//! | `Connecting`, `Connected` | closed / failed / connection timeout / heartbeat timeout, an attempt left | `Reconnecting` |
//! | `Connecting`, `Connected` | closed / failed, reconnect off | `Disconnected` |
//! | `Connecting`, `Connected` | closed 4001 (unauthorized) or 4003 (forbidden) | `Error` (no reconnect) |
//! | `Connecting`, `Connected` | closed / failed, no attempt left | `Error` (+ [`Event::GaveUp`]) |
//! | `Reconnecting` | reconnect timer (or `network_changed()`) | `Connecting` |
//! | `Connected`, `Connecting`, `Reconnecting` | `reconnect()` | `Connecting` (attempts reset) |
//! | any | `disconnect()` | `Disconnected` (sticky until `connect()`/`reconnect()`) |
//!
//! A connection that stays `Connected` for [`Config::stable_period`] (5 s) resets the attempt
//! count; one that drops sooner keeps backing off. Close rules (PROTOCOL.md section 7): no
//! reconnect after a client-initiated close (`disconnect()`), 4001 or 4003; every other close
//! (1001 server shutdown, 1006, 4008 slow consumer, …) reconnects. The core's own closes use
//! code 4000 (connection timeout, heartbeat timeout) and reconnect.
//!
//! # The two presets
//!
//! | option | [`Config::new`] (origin, default) | [`Config::fleet`] |
//! |---|---|---|
//! | attempts | 5, then `Error` | unlimited |
//! | delays (attempt n = 1, 2, …) | 3, 4.5, 6.75, 10.125, 15.1875 s: 3 s·1.5ⁿ⁻¹ | random(100 ms, min(30 s, 3 s·1.5ⁿ⁻¹)): full jitter |
//! | cap | 30 s (above the schedule: no effect) | 30 s |
//! | jitter | 0 (the exact schedule) | 1.0 |
//! | gives up after | ≈ 40 s of outage (3 + 4.5 + 6.75 + 10.125 + 15.1875 = 39.5625 s of waiting, plus the attempts' own time) | never |
//! | suits | one interactive app, where "error" after 40 s is a useful answer | many clients that must come back on their own, without a thundering herd |
//!
//! Everything else is shared: heartbeat 30 s + 10 s timeout, connection timeout 10 s, queue on
//! with 100 messages / 1 MiB, `RejectNew`, ack timeout 10 s, stable period 5 s, welcome window
//! 2 s. Delays are exact [`Duration`](std::time::Duration)s (15.1875 s is 15 187.5 ms, not
//! rounded to a millisecond); exponents are clamped and arithmetic saturates, so no attempt
//! count (even `u32::MAX`) turns a delay into 0 ms ([`scheduled_delay`]).
//!
//! # Server levels
//!
//! A v1 server's first frame is `welcome`: the core records its features (`ack`, `channels`, …)
//! and its heartbeat hint (a smaller interval than the config's is adopted). If the first frame
//! is anything else, or nothing arrives within [`Config::welcome_timeout`] (2 s) of opening, the
//! core works in level-0 mode: plain sends, no acks (an `ack: true` send fails at once with
//! [`SendError::AckUnsupported`] or, if it was queued, [`Event::SendFailed`] with
//! [`AckError::Unsupported`]), no channels.
//!
//! # Outbox
//!
//! Offline sends are queued (FIFO, message and byte caps, [`OverflowPolicy`]) and flushed in
//! order right after the transport opens, before any newer send: plain messages at once,
//! `ack: true` ones and channel publications (and everything behind them) once the server's
//! level is known, publications after their channels' re-subscription. `ack: true`
//! sends stay in an in-flight table until `ack{messageId}`; after a reconnect they are re-sent
//! with the same messageId, in their original order, ahead of the queue. Nothing accepted is
//! dropped silently: every message ends transmitted, acked, reported by an event
//! ([`Event::SendFailed`], [`Event::QueueOverflow`]) or removed by [`ClientCore::clear_queue`]
//! (which returns the count). The ack timeout runs only while a connection carries the message:
//! it restarts at each (re-)transmission. Volatile sends ([`Outgoing::volatile`]) are never
//! queued nor re-sent.
//!
//! # Channels and resume
//!
//! [`ClientCore::subscribe`] is remembered and re-sent after every reconnect with
//! `since: {offset, epoch}` of the last publication delivered; [`Event::Subscribed`] reports
//! whether the server `recovered` the gap and how many publications it replays (`missed`).
//! A publication whose offset is not above the last one delivered from its channel (in the same
//! epoch) is a duplicate and is dropped; a new epoch starts the count over.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backoff;
mod channels;
mod config;
mod core;
mod error;
mod event;
mod heartbeat;
mod instant;
mod outbox;
mod status;
mod timer;
mod vec_map;

pub use crate::backoff::{MIN_DELAY, delay_bounds, scheduled_delay};
pub use crate::config::{
    AuthToken, Config, ConfigError, DEFAULT_SEED, MIN_JITTERED_DELAY, OverflowPolicy,
    ReconnectAttempts, TokenTransport,
};
pub use crate::core::{
    CLOSE_CLIENT_TIMEOUT, CLOSE_FORBIDDEN, CLOSE_NORMAL, CLOSE_UNAUTHORIZED, ClientCore,
};
pub use crate::error::{AckError, SendError, SubscribeError};
pub use crate::event::{Command, Event, Outgoing, ServerLevel, TransportEvent};
pub use crate::heartbeat::{LATENCY_ALPHA, LatencyStats};
pub use crate::instant::Instant;
pub use crate::status::Status;
