//! [`WasmClient`]: a [`ClientCore`] for the JavaScript driver.

use std::time::Duration;

use cerebrum_core::{
    AckError, ClientCore, Command, Config, Event, Outgoing, ReconnectAttempts, ServerLevel,
    SubscribeError, TokenTransport, TransportEvent,
};
use cerebrum_protocol::{Ack, Envelope, Notification, Payload, encode};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use wasm_bindgen::prelude::*;

use crate::BindingError;
use crate::time::{Clock, duration_ms};

/// The options JavaScript passes (as JSON) to [`WasmClient::new`]: the origin's
/// `WebSocketConfig` names, durations in milliseconds, plus ours.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    url: String,
    /// `"origin"` (default) or `"fleet"`.
    preset: Option<String>,
    reconnect: Option<bool>,
    /// A count, or the string `"unlimited"`.
    reconnect_attempts: Option<Attempts>,
    reconnect_interval: Option<f64>,
    reconnect_factor: Option<f64>,
    max_reconnect_delay: Option<f64>,
    jitter: Option<f64>,
    heartbeat_interval: Option<f64>,
    heartbeat_timeout: Option<f64>,
    connection_timeout: Option<f64>,
    enable_queue: Option<bool>,
    queue_capacity: Option<usize>,
    ack_timeout: Option<f64>,
    token: Option<String>,
    /// `"query"`, `"auth"` or `"header"`.
    token_transport: Option<String>,
    debug: Option<bool>,
    seed: Option<u64>,
    /// Answer every notification with `ack` (default `true`), like the Rust facade.
    auto_ack_notifications: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Attempts {
    Count(u32),
    Word(String),
}

impl Options {
    fn into_config(self) -> Result<Config, BindingError> {
        let mut config = match self.preset.as_deref() {
            None | Some("origin") => Config::new(self.url),
            Some("fleet") => Config::fleet(self.url),
            Some(other) => {
                return Err(BindingError::Options(format!(
                    "preset must be \"origin\" or \"fleet\", not {other:?}"
                )));
            }
        };
        let set = |target: &mut Duration, field: &str, value: Option<f64>| {
            if let Some(ms) = value {
                *target = duration_ms(field, ms)?;
            }
            Ok::<(), BindingError>(())
        };
        set(
            &mut config.reconnect_interval,
            "reconnectInterval",
            self.reconnect_interval,
        )?;
        set(
            &mut config.max_reconnect_delay,
            "maxReconnectDelay",
            self.max_reconnect_delay,
        )?;
        set(
            &mut config.heartbeat_interval,
            "heartbeatInterval",
            self.heartbeat_interval,
        )?;
        set(
            &mut config.heartbeat_timeout,
            "heartbeatTimeout",
            self.heartbeat_timeout,
        )?;
        set(
            &mut config.connection_timeout,
            "connectionTimeout",
            self.connection_timeout,
        )?;
        set(&mut config.ack_timeout, "ackTimeout", self.ack_timeout)?;
        if let Some(reconnect) = self.reconnect {
            config.reconnect = reconnect;
        }
        match self.reconnect_attempts {
            None => {}
            Some(Attempts::Count(n)) => config.reconnect_attempts = ReconnectAttempts::Limited(n),
            Some(Attempts::Word(word)) if word == "unlimited" => {
                config.reconnect_attempts = ReconnectAttempts::Unlimited;
            }
            Some(Attempts::Word(word)) => {
                return Err(BindingError::Options(format!(
                    "reconnectAttempts must be a count or \"unlimited\", not {word:?}"
                )));
            }
        }
        if let Some(factor) = self.reconnect_factor {
            config.reconnect_factor = factor;
        }
        if let Some(jitter) = self.jitter {
            config.jitter = jitter;
        }
        if let Some(enable) = self.enable_queue {
            config.enable_queue = enable;
        }
        if let Some(capacity) = self.queue_capacity {
            config.queue_capacity = capacity;
        }
        if let Some(token) = self.token {
            config = config.with_token(token);
        }
        config.token_transport = match self.token_transport.as_deref() {
            None | Some("auth") => TokenTransport::AuthMessage,
            Some("query") => TokenTransport::Query,
            Some("header") => TokenTransport::Header,
            Some(other) => {
                return Err(BindingError::Options(format!(
                    "tokenTransport must be \"auth\", \"query\" or \"header\", not {other:?}"
                )));
            }
        };
        if let Some(debug) = self.debug {
            config.debug = debug;
        }
        if let Some(seed) = self.seed {
            config.seed = seed;
        }
        Ok(config)
    }
}

/// A command for the driver, as JSON.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum JsCommand {
    Open { url: String },
    Transmit { frame: String },
    Close { code: u16, reason: String },
}

/// An event for the driver, as JSON (messages are written by hand, see [`message_json`]).
#[derive(Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
enum JsEvent {
    Status {
        from: &'static str,
        to: &'static str,
        reason: String,
    },
    Connected,
    ServerLevel {
        level: &'static str,
        features: Vec<String>,
    },
    Welcome {
        welcome: cerebrum_protocol::Welcome,
    },
    Disconnected {
        code: Option<u16>,
        reason: String,
        will_reconnect: bool,
    },
    ReconnectScheduled {
        attempt: u32,
        delay_ms: f64,
    },
    GaveUp {
        attempts: u32,
    },
    Latency {
        ms: f64,
    },
    Acked {
        message_id: String,
    },
    SendFailed {
        message_id: String,
        reason: String,
        /// The server's error, when it refused the message.
        error: Option<cerebrum_protocol::ErrorPayload>,
    },
    QueueOverflow {
        dropped: String,
    },
    Subscribed {
        channel: String,
        recovered: bool,
        missed: u64,
    },
    Unsubscribed {
        channel: String,
    },
    SubscribeFailed {
        channel: String,
        reason: String,
        error: Option<cerebrum_protocol::ErrorPayload>,
    },
    ServerError {
        error: cerebrum_protocol::ErrorPayload,
    },
    ProtocolViolation {
        reason: String,
    },
    Error {
        reason: String,
    },
    Other {
        debug: String,
    },
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// `{"kind":"message","message":<the envelope as the wire has it>}`: the payload is copied
/// verbatim, so JavaScript's one `JSON.parse` gives the origin's `WebSocketMessage`.
fn message_json(envelope: &Envelope) -> String {
    let wire = encode(envelope);
    let mut out = String::with_capacity(wire.len() + 48);
    out.push_str(r#"{"kind":"message","#);
    if is_app_data(envelope) {
        out.push_str(r#""appData":true,"#);
    }
    out.push_str(r#""message":"#);
    out.push_str(&wire);
    out.push('}');
    out
}

/// A server type that came from a channel where only apps publish: app data of that channel,
/// never the server's own message (PROTOCOL.md section 7). The driver then hands it to the
/// channel's subscribers and `onMessage` only, not to the handlers of its type.
fn is_app_data(envelope: &Envelope) -> bool {
    cerebrum_protocol::is_server_type(envelope.kind())
        && !cerebrum_protocol::is_server_message(envelope)
}

fn event_json(event: Event) -> String {
    let js = match event {
        Event::Message(envelope) => return message_json(&envelope),
        Event::StatusChanged { from, to, reason } => JsEvent::Status {
            from: from.as_str(),
            to: to.as_str(),
            reason,
        },
        Event::Connected => JsEvent::Connected,
        Event::ServerLevel(ServerLevel::V1 { features }) => JsEvent::ServerLevel {
            level: "v1",
            features,
        },
        Event::ServerLevel(_) => JsEvent::ServerLevel {
            level: "level0",
            features: Vec::new(),
        },
        Event::Welcome(welcome) => JsEvent::Welcome { welcome },
        Event::Disconnected {
            code,
            reason,
            will_reconnect,
        } => JsEvent::Disconnected {
            code,
            reason,
            will_reconnect,
        },
        Event::ReconnectScheduled { attempt, delay } => JsEvent::ReconnectScheduled {
            attempt,
            delay_ms: ms(delay),
        },
        Event::GaveUp { attempts } => JsEvent::GaveUp { attempts },
        Event::Latency(rtt) => JsEvent::Latency { ms: ms(rtt) },
        Event::Acked { message_id } => JsEvent::Acked {
            message_id: message_id.to_string(),
        },
        Event::SendFailed { message_id, error } => {
            let reason = error.to_string();
            JsEvent::SendFailed {
                message_id: message_id.to_string(),
                reason,
                error: match error {
                    AckError::Refused(payload) => Some(payload),
                    _ => None,
                },
            }
        }
        Event::QueueOverflow { dropped } => JsEvent::QueueOverflow {
            dropped: dropped.to_string(),
        },
        Event::Subscribed {
            channel,
            recovered,
            missed,
        } => JsEvent::Subscribed {
            channel,
            recovered,
            missed,
        },
        Event::Unsubscribed { channel } => JsEvent::Unsubscribed { channel },
        Event::SubscribeFailed { channel, error } => {
            let reason = error.to_string();
            JsEvent::SubscribeFailed {
                channel,
                reason,
                error: match error {
                    SubscribeError::Refused(payload) => Some(payload),
                    _ => None,
                },
            }
        }
        Event::ServerError(error) => JsEvent::ServerError { error },
        Event::ProtocolViolation(err) => JsEvent::ProtocolViolation {
            reason: err.to_string(),
        },
        Event::Error { reason } => JsEvent::Error { reason },
        // An event this version does not know (the core's enum is non-exhaustive). Its name
        // only: `Debug` of every event would be compiled in for this one line.
        _ => JsEvent::Other {
            debug: "an event this version of the bindings does not know".to_owned(),
        },
    };
    // Serialising these plain values cannot fail; an empty object is never produced.
    serde_json::to_string(&js).unwrap_or_else(|_| r#"{"kind":"other","debug":""}"#.to_owned())
}

fn command_json(command: Command) -> String {
    let js = match command {
        Command::Open { url } => JsCommand::Open { url },
        Command::Transmit(frame) => JsCommand::Transmit { frame },
        Command::Close { code, reason } => JsCommand::Close { code, reason },
        // A command this version does not know: closing is the safe answer.
        _ => JsCommand::Close {
            code: cerebrum_core::CLOSE_NORMAL,
            reason: "unsupported command".to_owned(),
        },
    };
    serde_json::to_string(&js).unwrap_or_default()
}

/// `url` with its `token` query parameter replaced by `token` (or removed when `None`).
fn with_query_token(url: &str, token: Option<&str>) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("token="))
        .map(str::to_owned)
        .collect();
    if let Some(token) = token {
        let mut encoded = String::with_capacity(token.len());
        for byte in token.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                encoded.push(char::from(byte));
            } else {
                encoded.push_str(&format!("%{byte:02X}"));
            }
        }
        pairs.push(format!("token={encoded}"));
    }
    if pairs.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", pairs.join("&"))
    }
}

/// The sans-IO client core, driven from JavaScript.
///
/// Every input takes `now_ms`, the driver's monotonic clock in milliseconds
/// (`performance.now()`); after every input the driver drains [`poll_command`](Self::poll_command)
/// and [`poll_event`](Self::poll_event) and re-reads [`poll_timeout`](Self::poll_timeout).
///
/// Not `Debug`: the core's `Debug` output (every internal table) would be compiled into the
/// module for nothing JavaScript can use.
#[wasm_bindgen]
#[allow(missing_debug_implementations)]
pub struct WasmClient {
    core: ClientCore,
    clock: Clock,
    /// The server spoke v1 (acks exist).
    v1: bool,
    auto_ack_notifications: bool,
    /// Messages to send in answer to events, fed by [`WasmClient::flush_follow_ups`] once the
    /// events are drained (the core takes no input while its outputs are being drained).
    follow_ups: Vec<Outgoing>,
    /// The latest `now` the driver passed in.
    last_now_ms: f64,
    /// The last input was [`WasmClient::handle_frame`]: a `Message` event now is that frame
    /// (the core delivers at most one message per frame, unchanged), so [`WasmClient::drain`]
    /// tells the driver to use the text it already holds instead of copying it back.
    frame_fed: bool,
}

impl WasmClient {
    /// [`WasmClient::new`] with a Rust error.
    pub fn try_new(options_json: &str, now_ms: f64, unix_ms: f64) -> Result<Self, BindingError> {
        let options: Options = serde_json::from_str(options_json)
            .map_err(|err| BindingError::Options(err.to_string()))?;
        let auto_ack_notifications = options.auto_ack_notifications.unwrap_or(true);
        let config = options.into_config()?;
        let clock = Clock::new();
        let unix_ms = if unix_ms.is_finite() && unix_ms >= 0.0 {
            // Truncation is the intent: the core counts whole milliseconds.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let whole = unix_ms as u64;
            whole
        } else {
            0
        };
        let core = ClientCore::new(config, clock.at(now_ms), unix_ms)?;
        Ok(Self {
            core,
            clock,
            v1: false,
            auto_ack_notifications,
            follow_ups: Vec::new(),
            last_now_ms: now_ms,
            frame_fed: false,
        })
    }

    /// [`WasmClient::send`] with a Rust error.
    pub fn try_send(
        &mut self,
        kind: &str,
        payload_json: &str,
        channel: Option<String>,
        ack: bool,
        volatile: bool,
        now_ms: f64,
    ) -> Result<String, BindingError> {
        let payload = RawValue::from_string(payload_json.to_owned())
            .map_err(|err| BindingError::Payload(err.to_string()))?;
        let mut message = Outgoing::new(Envelope::new(kind, payload)?).with_ack(ack);
        if let Some(channel) = channel {
            message = message.to_channel(channel);
        }
        if volatile {
            message = message.volatile();
        }
        let now = self.at(now_ms);
        let id = self.core.send(message, now)?;
        Ok(id.to_string())
    }

    /// Notes what the driver must answer (the notification acks of the Rust facade).
    fn observe(&mut self, event: &Event) {
        match event {
            Event::ServerLevel(level) => self.v1 = matches!(level, ServerLevel::V1 { .. }),
            Event::Message(envelope)
                if self.auto_ack_notifications
                    && self.v1
                    && envelope.kind() == Notification::TYPE
                    && envelope.channel().is_none()
                    && !is_app_data(envelope) =>
            {
                if let Some(id) = envelope.message_id() {
                    let ack = Ack {
                        message_id: id.clone(),
                    };
                    if let Ok(message) = Outgoing::payload(&ack) {
                        // Volatile: an ack is only worth sending on the connection it answers.
                        self.follow_ups.push(message.volatile());
                    }
                }
            }
            _ => {}
        }
    }

    fn at(&mut self, now_ms: f64) -> cerebrum_core::Instant {
        self.frame_fed = false;
        if now_ms > self.last_now_ms {
            self.last_now_ms = now_ms;
        }
        self.clock.at(now_ms)
    }

    /// [`WasmClient::subscribe`] with a Rust error.
    pub fn try_subscribe(&mut self, channel: &str, now_ms: f64) -> Result<(), BindingError> {
        let now = self.at(now_ms);
        Ok(self.core.subscribe(channel, now)?)
    }
}

#[wasm_bindgen]
impl WasmClient {
    /// A core for the options in `options_json` (see the package's `WebSocketConfig`), created
    /// at `now_ms` on the driver's clock when the wall clock reads `unix_ms`. Throws on invalid
    /// options.
    #[wasm_bindgen(constructor)]
    pub fn new(options_json: &str, now_ms: f64, unix_ms: f64) -> Result<Self, JsError> {
        Ok(Self::try_new(options_json, now_ms, unix_ms)?)
    }

    /// User intent: start connecting.
    pub fn connect(&mut self, now_ms: f64) {
        let now = self.at(now_ms);
        self.core.connect(now);
    }

    /// User intent: close with 1000 and stay disconnected.
    pub fn disconnect(&mut self, now_ms: f64) {
        let now = self.at(now_ms);
        self.core.disconnect(now);
    }

    /// User intent: close now and reconnect, resetting the attempt count.
    pub fn reconnect(&mut self, now_ms: f64) {
        let now = self.at(now_ms);
        self.core.reconnect(now);
    }

    /// User intent: the network changed (browser `online` event): probe or retry now.
    #[wasm_bindgen(js_name = networkChanged)]
    pub fn network_changed(&mut self, now_ms: f64) {
        let now = self.at(now_ms);
        self.core.network_changed(now);
    }

    /// Replaces the token used from the next connection attempt on.
    #[wasm_bindgen(js_name = setToken)]
    pub fn set_token(&mut self, token: Option<String>) {
        self.core.set_token(token.filter(|t| !t.is_empty()));
    }

    /// The URL to open for `url` with the current token, following the token transport (the
    /// query parameter is set, replaced or removed). Used after an async token provider answered.
    #[wasm_bindgen(js_name = openUrl)]
    pub fn open_url(&self, url: &str) -> String {
        match self.core.config().token_transport {
            TokenTransport::Query => with_query_token(url, self.core.token()),
            _ => with_query_token(url, None),
        }
    }

    /// Sends (or queues) a message of type `kind` whose payload is the JSON text
    /// `payload_json`; returns its `messageId`. Throws when the core refuses it (full queue,
    /// not connected with the queue off, too large, bad type or channel name, bad JSON).
    pub fn send(
        &mut self,
        kind: &str,
        payload_json: &str,
        channel: Option<String>,
        ack: bool,
        volatile: bool,
        now_ms: f64,
    ) -> Result<String, JsError> {
        Ok(self.try_send(kind, payload_json, channel, ack, volatile, now_ms)?)
    }

    /// Subscribes to `channel` (re-subscribed with resume after every reconnect). Throws on a
    /// malformed channel name.
    pub fn subscribe(&mut self, channel: &str, now_ms: f64) -> Result<(), JsError> {
        Ok(self.try_subscribe(channel, now_ms)?)
    }

    /// Unsubscribes; `false` if the channel was not subscribed.
    pub fn unsubscribe(&mut self, channel: &str, now_ms: f64) -> bool {
        let now = self.at(now_ms);
        self.core.unsubscribe(channel, now)
    }

    /// Empties the offline queue; returns the removed messages' ids as a JSON array.
    #[wasm_bindgen(js_name = clearQueue)]
    pub fn clear_queue(&mut self) -> String {
        let ids: Vec<String> = self
            .core
            .queued()
            .filter_map(|envelope| envelope.message_id().map(ToString::to_string))
            .collect();
        let _removed = self.core.clear_queue();
        serde_json::to_string(&ids).unwrap_or_else(|_| "[]".to_owned())
    }

    /// Transport report: the WebSocket opened.
    #[wasm_bindgen(js_name = handleOpen)]
    pub fn handle_open(&mut self, now_ms: f64) {
        let now = self.at(now_ms);
        self.core.handle_transport(TransportEvent::Opened, now);
    }

    /// Transport report: a text frame arrived.
    #[wasm_bindgen(js_name = handleFrame)]
    pub fn handle_frame(&mut self, frame: String, now_ms: f64) {
        let now = self.at(now_ms);
        self.core
            .handle_transport(TransportEvent::Frame(frame), now);
        self.frame_fed = true;
    }

    /// Transport report: the WebSocket closed (`code` is absent for 1005/1006: no close frame).
    #[wasm_bindgen(js_name = handleClose)]
    pub fn handle_close(&mut self, code: Option<u16>, reason: String, now_ms: f64) {
        let now = self.at(now_ms);
        self.core
            .handle_transport(TransportEvent::Closed { code, reason }, now);
    }

    /// Transport report: the WebSocket failed.
    #[wasm_bindgen(js_name = handleError)]
    pub fn handle_error(&mut self, reason: String, now_ms: f64) {
        let now = self.at(now_ms);
        self.core
            .handle_transport(TransportEvent::Error(reason), now);
    }

    /// Timer input: call at (or after) [`poll_timeout`](Self::poll_timeout).
    #[wasm_bindgen(js_name = handleTimeout)]
    pub fn handle_timeout(&mut self, now_ms: f64) {
        let now = self.at(now_ms);
        self.core.handle_timeout(now);
    }

    /// The next command as JSON: `{"kind":"open","url"}`, `{"kind":"transmit","frame"}` or
    /// `{"kind":"close","code","reason"}`; `undefined` when drained.
    #[wasm_bindgen(js_name = pollCommand)]
    pub fn poll_command(&mut self) -> Option<String> {
        self.core.poll_command().map(command_json)
    }

    /// The next event as JSON (`{"kind": …}`); `undefined` when drained.
    #[wasm_bindgen(js_name = pollEvent)]
    pub fn poll_event(&mut self) -> Option<String> {
        let event = self.core.poll_event()?;
        self.observe(&event);
        Some(event_json(event))
    }

    /// Drains every output in one call (the fast path of the driver; equivalent to polling):
    /// `{"commands":[…],"events":[…],"timeout":ms|null}` with the commands and events of
    /// [`poll_command`](Self::poll_command) and [`poll_event`](Self::poll_event) in order,
    /// the follow-ups (notification acks) fed and their outputs drained too, and
    /// [`poll_timeout`](Self::poll_timeout) last. A message delivered from the frame of the
    /// last [`handle_frame`](Self::handle_frame) is `{"kind":"message","fed":true}`: the driver
    /// parses the frame it passed in (the core delivers it unchanged) rather than a copy.
    pub fn drain(&mut self) -> String {
        let mut commands = String::from("[");
        let mut events = String::from("[");
        loop {
            while let Some(command) = self.core.poll_command() {
                if commands.len() > 1 {
                    commands.push(',');
                }
                commands.push_str(&command_json(command));
            }
            while let Some(event) = self.core.poll_event() {
                self.observe(&event);
                if events.len() > 1 {
                    events.push(',');
                }
                match event {
                    Event::Message(envelope) if self.frame_fed => {
                        if is_app_data(&envelope) {
                            events.push_str(r#"{"kind":"message","fed":true,"appData":true}"#);
                        } else {
                            events.push_str(r#"{"kind":"message","fed":true}"#);
                        }
                    }
                    other => events.push_str(&event_json(other)),
                }
            }
            if !self.flush_follow_ups() {
                break;
            }
        }
        self.frame_fed = false;
        commands.push(']');
        events.push(']');
        let mut out = String::with_capacity(commands.len() + events.len() + 48);
        out.push_str(r#"{"commands":"#);
        out.push_str(&commands);
        out.push_str(r#","events":"#);
        out.push_str(&events);
        out.push_str(r#","timeout":"#);
        match self.poll_timeout() {
            None => out.push_str("null"),
            // Whole milliseconds (the usual case) without float formatting, which is slow in
            // WebAssembly; fractions (15 187.5 ms) as the float they are.
            Some(ms) if ms.fract() == 0.0 && ms < 9_007_199_254_740_992.0 => {
                // Exact: integral and below 2^53.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let whole = ms as u64;
                out.push_str(&whole.to_string());
            }
            Some(ms) => out.push_str(&ms.to_string()),
        }
        out.push('}');
        out
    }

    /// Feeds the answers the drained events call for (notification acks); returns whether it
    /// fed any, in which case the driver drains commands and events again. Refused answers
    /// (not connected any more) are dropped: they are best effort.
    #[wasm_bindgen(js_name = flushFollowUps)]
    pub fn flush_follow_ups(&mut self) -> bool {
        if self.follow_ups.is_empty() {
            return false;
        }
        let now = self.clock.at(self.last_now_ms);
        for message in std::mem::take(&mut self.follow_ups) {
            let _refused = self.core.send(message, now);
        }
        true
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next, on the driver's clock (ms);
    /// `undefined` when no timer is armed.
    #[wasm_bindgen(js_name = pollTimeout)]
    pub fn poll_timeout(&self) -> Option<f64> {
        self.core.poll_timeout().map(|at| self.clock.ms(at))
    }

    /// The origin's status name: `connecting`, `connected`, `disconnected`, `reconnecting` or
    /// `error`.
    pub fn status(&self) -> String {
        self.core.status().as_str().to_owned()
    }

    /// The last round-trip time from a matched pong, in ms (`undefined` before the first).
    pub fn latency(&self) -> Option<f64> {
        self.core.latency().last.map(ms)
    }

    /// The messages waiting in the offline queue, in order, as a JSON array of envelopes.
    pub fn queued(&self) -> String {
        let mut out = String::from("[");
        for (i, envelope) in self.core.queued().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&encode(envelope));
        }
        out.push(']');
        out
    }

    /// How many messages wait in the offline queue.
    #[wasm_bindgen(js_name = queuedCount)]
    pub fn queued_count(&self) -> usize {
        self.core.queued().len()
    }

    /// Whether a token is set.
    #[wasm_bindgen(js_name = hasToken)]
    pub fn has_token(&self) -> bool {
        self.core.token().is_some()
    }
}

/// The channel of the collaborative study session on `topic` (`session:<slug>`), as the server
/// names it. Throws when the topic has no letter or digit to make a slug of.
#[wasm_bindgen(js_name = sessionChannel)]
pub fn session_channel(topic: &str) -> Result<String, JsError> {
    Ok(cerebrum_protocol::session_channel(topic).map_err(BindingError::from)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(client: &mut WasmClient) -> (Vec<String>, Vec<String>) {
        let mut commands = Vec::new();
        while let Some(c) = client.poll_command() {
            commands.push(c);
        }
        let mut events = Vec::new();
        while let Some(e) = client.poll_event() {
            events.push(e);
        }
        (commands, events)
    }

    #[test]
    fn options_map_to_the_core_config_and_bad_ones_are_refused() {
        let client = WasmClient::try_new(
            r#"{"url":"ws://h/ws","reconnectAttempts":"unlimited","heartbeatInterval":1000}"#,
            0.0,
            1_732_752_000_000.0,
        );
        assert!(client.is_ok());
        let bad = [
            r#"{"url":"http://h/ws"}"#,
            r#"{"url":"ws://h/ws","heartbeatInterval":-1}"#,
            r#"{"url":"ws://h/ws","preset":"huge"}"#,
            r#"{"url":"ws://h/ws","reconnectAttempts":"many"}"#,
            r#"{"url":"ws://h/ws","surprise":true}"#,
            r#"not json"#,
        ];
        for options in bad {
            assert!(WasmClient::try_new(options, 0.0, 0.0).is_err(), "{options}");
        }
    }

    #[test]
    fn a_frame_travels_from_handle_frame_to_a_message_event() {
        let mut client =
            WasmClient::try_new(r#"{"url":"ws://h/ws"}"#, 0.0, 1_732_752_000_000.0).unwrap();
        client.connect(0.0);
        let (commands, events) = drain(&mut client);
        assert_eq!(commands, [r#"{"kind":"open","url":"ws://h/ws"}"#]);
        assert!(events[0].contains(r#""to":"connecting""#));
        client.handle_open(10.0);
        let _ = drain(&mut client);
        assert_eq!(client.status(), "connected");
        client.handle_frame(
            r#"{"type":"study_metrics_update","payload":{"userId":"u","studyHours":1.5,"progress":10,"sessionDuration":60,"streak":2},"timestamp":1,"messageId":"m1"}"#.to_owned(),
            20.0,
        );
        let (_, events) = drain(&mut client);
        let message = events
            .iter()
            .find(|e| e.starts_with(r#"{"kind":"message""#))
            .unwrap();
        let parsed: serde_json::Value = serde_json::from_str(message).unwrap();
        assert_eq!(parsed["message"]["type"], "study_metrics_update");
        assert_eq!(parsed["message"]["payload"]["studyHours"], 1.5);
        assert_eq!(parsed["message"]["messageId"], "m1");
    }

    #[test]
    fn a_server_type_from_an_app_channel_is_flagged_as_app_data() {
        let mut client = WasmClient::try_new(r#"{"url":"ws://h/ws"}"#, 0.0, 0.0).unwrap();
        client.connect(0.0);
        let _ = client.drain();
        client.handle_open(5.0);
        let _ = client.drain();
        let cases = [
            (
                r#"{"type":"notification","payload":{},"channel":"chat:1","offset":1,"messageId":"f1"}"#,
                true,
            ),
            (
                r#"{"type":"ack","payload":{"messageId":"x"},"channel":"chat:1","offset":2,"messageId":"f2"}"#,
                true,
            ),
            (
                r#"{"type":"system_status","payload":{},"channel":"system","offset":3,"messageId":"s1"}"#,
                false,
            ),
            (
                r#"{"type":"chat.message","payload":{},"channel":"chat:1","offset":3,"messageId":"c1"}"#,
                false,
            ),
        ];
        for (i, (frame, app_data)) in cases.into_iter().enumerate() {
            client.handle_frame(frame.to_owned(), 6.0 + i as f64);
            let out: serde_json::Value = serde_json::from_str(&client.drain()).unwrap();
            let message = out["events"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["kind"] == "message")
                .unwrap_or_else(|| panic!("no message event for {frame}: {out}"));
            assert_eq!(message["appData"] == true, app_data, "{frame}: {message}");
        }
    }

    #[test]
    fn drain_returns_everything_at_once_and_marks_the_fed_frame() {
        let mut client = WasmClient::try_new(r#"{"url":"ws://h/ws"}"#, 0.0, 0.0).unwrap();
        client.connect(0.0);
        let out: serde_json::Value = serde_json::from_str(&client.drain()).unwrap();
        assert_eq!(out["commands"][0]["kind"], "open");
        assert_eq!(out["events"][0]["kind"], "status");
        assert_eq!(out["timeout"], 10_000.0);
        client.handle_open(5.0);
        let _ = client.drain();
        client.handle_frame(
            r#"{"type":"news","payload":{"n":1},"timestamp":1,"messageId":"m1"}"#.to_owned(),
            6.0,
        );
        let out: serde_json::Value = serde_json::from_str(&client.drain()).unwrap();
        let events = out["events"].as_array().unwrap();
        assert!(events.contains(&serde_json::json!({"kind":"message","fed":true})));
        // Nothing left, and nothing pending: an empty drain.
        let out: serde_json::Value = serde_json::from_str(&client.drain()).unwrap();
        assert_eq!(out["commands"], serde_json::json!([]));
        assert_eq!(out["events"], serde_json::json!([]));
    }

    #[test]
    fn the_origin_backoff_schedule_reaches_javascript_in_milliseconds() {
        let mut client = WasmClient::try_new(r#"{"url":"ws://h/ws"}"#, 0.0, 0.0).unwrap();
        client.connect(0.0);
        let _ = drain(&mut client);
        let mut now = 0.0;
        let mut delays = Vec::new();
        for _ in 0..6 {
            client.handle_error("refused".to_owned(), now);
            let (_, events) = drain(&mut client);
            for event in events {
                let value: serde_json::Value = serde_json::from_str(&event).unwrap();
                if value["kind"] == "reconnectScheduled" {
                    delays.push(value["delayMs"].as_f64().unwrap());
                }
            }
            match client.poll_timeout() {
                Some(at) => {
                    now = at;
                    client.handle_timeout(now);
                    let _ = drain(&mut client);
                }
                None => break,
            }
        }
        assert_eq!(delays, [3000.0, 4500.0, 6750.0, 10125.0, 15187.5]);
        assert_eq!(client.status(), "error");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut client = WasmClient::try_new(r#"{"url":"ws://h/ws"}"#, 0.0, 0.0).unwrap();
        assert!(matches!(
            client.try_send("x", "{not json", None, false, false, 0.0),
            Err(BindingError::Payload(_))
        ));
        assert!(matches!(
            client.try_send("BAD TYPE", "1", None, false, false, 0.0),
            Err(BindingError::Protocol(_))
        ));
        assert!(client.try_subscribe("no spaces allowed", 0.0).is_err());
        let id = client
            .try_send("quiz.answer", "2", None, false, false, 0.0)
            .unwrap();
        assert_eq!(client.queued_count(), 1);
        assert!(client.queued().contains(&id));
        assert_eq!(client.clear_queue(), format!("[\"{id}\"]"));
        assert_eq!(client.queued_count(), 0);
        client.handle_frame("garbage".to_owned(), 1.0);
        client.handle_close(Some(1006), String::new(), f64::NAN);
    }

    #[test]
    fn open_url_follows_the_token_transport() {
        let mut client = WasmClient::try_new(
            r#"{"url":"ws://h/ws?x=1","tokenTransport":"query"}"#,
            0.0,
            0.0,
        )
        .unwrap();
        client.set_token(Some("a b".to_owned()));
        assert_eq!(
            client.open_url("ws://h/ws?x=1&token=old"),
            "ws://h/ws?x=1&token=a%20b"
        );
        let client = WasmClient::try_new(r#"{"url":"ws://h/ws","token":"t"}"#, 0.0, 0.0).unwrap();
        assert_eq!(client.open_url("ws://h/ws?token=t"), "ws://h/ws");
    }
}
