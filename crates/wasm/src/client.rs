//! [`WasmClient`]: a [`ClientCore`] for the JavaScript driver.

use std::time::Duration;

use cerebrum_core::{
    AckError, ClientCore, Command, Config, Event, Outgoing, ReconnectAttempts, ServerLevel,
    SubscribeError, TokenTransport, TransportEvent,
};
use cerebrum_protocol::{Ack, Envelope, ErrorPayload, Notification, Payload, Welcome, encode};
use serde_json::value::RawValue;
use wasm_bindgen::prelude::*;

use crate::BindingError;
use crate::json::{Object, push_ms, str_array};
use crate::time::{Clock, duration_ms};

/// The options of [`WasmClient::new`]: the origin's `WebSocketConfig` names, durations in
/// milliseconds, plus ours. `None` keeps the core's default (of the preset).
///
/// They cross the boundary as arguments, not as a JSON document: a deserialiser for them would
/// be a twentieth of the module.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientOptions {
    /// The server's `ws://` or `wss://` URL.
    pub url: String,
    /// `"origin"` (default) or `"fleet"`.
    pub preset: Option<String>,
    /// Reconnect after a lost connection.
    pub reconnect: Option<bool>,
    /// How many reconnect attempts: a count, or infinity for unlimited.
    pub reconnect_attempts: Option<f64>,
    /// The first reconnect delay, ms.
    pub reconnect_interval: Option<f64>,
    /// The growth of the reconnect delay per attempt.
    pub reconnect_factor: Option<f64>,
    /// The largest reconnect delay, ms.
    pub max_reconnect_delay: Option<f64>,
    /// The random share of each delay, `0.0..=1.0`.
    pub jitter: Option<f64>,
    /// Between pings, ms.
    pub heartbeat_interval: Option<f64>,
    /// How long a ping may go unanswered, ms.
    pub heartbeat_timeout: Option<f64>,
    /// How long opening may take, ms.
    pub connection_timeout: Option<f64>,
    /// Queue messages sent while offline.
    pub enable_queue: Option<bool>,
    /// How many messages the offline queue holds.
    pub queue_capacity: Option<u32>,
    /// How long an acknowledged send waits for its `ack`, ms.
    pub ack_timeout: Option<f64>,
    /// The auth token.
    pub token: Option<String>,
    /// `"query"`, `"auth"` or `"header"`.
    pub token_transport: Option<String>,
    /// Debug logging.
    pub debug: Option<bool>,
    /// The seed of the jitter and of the message ids (an integer below 2^53).
    pub seed: Option<f64>,
    /// Answer every notification with `ack` (default `true`), like the Rust facade.
    pub auto_ack_notifications: Option<bool>,
}

/// `value` as a whole number of at most `max`, if it is one.
fn whole(value: f64, max: u64) -> Option<u64> {
    // Exact: checked to be integral and within range first.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (value.fract() == 0.0 && value >= 0.0 && value <= max as f64).then_some(value as u64)
}

/// `value` as a JSON string, for error messages (not `{:?}`: Rust's `Debug` of a `str` brings
/// ~3 kB of Unicode tables into the module).
fn quoted(value: &str) -> String {
    let mut out = String::new();
    crate::json::push_str(&mut out, value);
    out
}

impl ClientOptions {
    fn into_config(self) -> Result<Config, BindingError> {
        let mut config = match self.preset.as_deref() {
            None | Some("origin") => Config::new(self.url),
            Some("fleet") => Config::fleet(self.url),
            Some(other) => {
                return Err(BindingError::Options(format!(
                    "preset must be \"origin\" or \"fleet\", not {}",
                    quoted(other)
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
            Some(n) if n == f64::INFINITY => {
                config.reconnect_attempts = ReconnectAttempts::Unlimited;
            }
            Some(n) => match whole(n, u32::MAX.into()).and_then(|n| u32::try_from(n).ok()) {
                Some(n) => config.reconnect_attempts = ReconnectAttempts::Limited(n),
                None => {
                    return Err(BindingError::Options(
                        "reconnectAttempts must be a non-negative integer or Infinity".to_owned(),
                    ));
                }
            },
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
            config.queue_capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
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
                    "tokenTransport must be \"auth\", \"query\" or \"header\", not {}",
                    quoted(other)
                )));
            }
        };
        if let Some(debug) = self.debug {
            config.debug = debug;
        }
        if let Some(seed) = self.seed {
            config.seed = whole(seed, (1 << 53) - 1).ok_or_else(|| {
                BindingError::Options("seed must be an integer from 0 to 2^53 - 1".to_owned())
            })?;
        }
        Ok(config)
    }
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

/// `welcome`'s payload, as the wire has it.
fn welcome_json(welcome: &Welcome) -> String {
    let mut object = Object::plain();
    object.str("connectionId", &welcome.connection_id);
    if let Some(user) = &welcome.user_id {
        object.str("userId", user);
    }
    object
        .uint("protocol", welcome.protocol.into())
        .uint("heartbeatIntervalMs", welcome.heartbeat_interval_ms)
        .raw(
            "features",
            &str_array(welcome.features.iter().map(String::as_str)),
        )
        .uint("serverTime", welcome.server_time)
        .finish()
}

/// An `error` payload, as the wire has it.
fn error_json(error: &ErrorPayload) -> String {
    let mut object = Object::plain();
    object
        .str("code", error.code.as_str())
        .str("message", &error.message);
    if let Some(ref_id) = &error.ref_id {
        object.str("refId", ref_id.as_str());
    }
    object.finish()
}

fn event_json(event: Event) -> String {
    match event {
        Event::Message(envelope) => message_json(&envelope),
        Event::StatusChanged { from, to, reason } => Object::new("status")
            .str("from", from.as_str())
            .str("to", to.as_str())
            .str("reason", &reason)
            .finish(),
        Event::Connected => Object::new("connected").finish(),
        Event::ServerLevel(ServerLevel::V1 { features }) => Object::new("serverLevel")
            .str("level", "v1")
            .raw("features", &str_array(features.iter().map(String::as_str)))
            .finish(),
        Event::ServerLevel(_) => Object::new("serverLevel")
            .str("level", "level0")
            .raw("features", "[]")
            .finish(),
        Event::Welcome(welcome) => Object::new("welcome")
            .raw("welcome", &welcome_json(&welcome))
            .finish(),
        Event::Disconnected {
            code,
            reason,
            will_reconnect,
        } => {
            let mut object = Object::new("disconnected");
            match code {
                Some(code) => object.uint("code", code.into()),
                None => object.raw("code", "null"),
            }
            .str("reason", &reason)
            .bool("willReconnect", will_reconnect)
            .finish()
        }
        Event::ReconnectScheduled { attempt, delay } => Object::new("reconnectScheduled")
            .uint("attempt", attempt.into())
            .ms("delayMs", delay)
            .finish(),
        Event::GaveUp { attempts } => Object::new("gaveUp")
            .uint("attempts", attempts.into())
            .finish(),
        Event::Latency(rtt) => Object::new("latency").ms("ms", rtt).finish(),
        Event::Acked { message_id } => Object::new("acked")
            .str("messageId", message_id.as_str())
            .finish(),
        Event::SendFailed { message_id, error } => Object::new("sendFailed")
            .str("messageId", message_id.as_str())
            .str("reason", &error.to_string())
            .raw(
                "error",
                &match &error {
                    AckError::Refused(payload) => error_json(payload),
                    _ => "null".to_owned(),
                },
            )
            .finish(),
        Event::QueueOverflow { dropped } => Object::new("queueOverflow")
            .str("dropped", dropped.as_str())
            .finish(),
        Event::Subscribed {
            channel,
            recovered,
            missed,
        } => Object::new("subscribed")
            .str("channel", &channel)
            .bool("recovered", recovered)
            .uint("missed", missed)
            .finish(),
        Event::Unsubscribed { channel } => Object::new("unsubscribed")
            .str("channel", &channel)
            .finish(),
        Event::SubscribeFailed { channel, error } => Object::new("subscribeFailed")
            .str("channel", &channel)
            .str("reason", &error.to_string())
            .raw(
                "error",
                &match &error {
                    SubscribeError::Refused(payload) => error_json(payload),
                    _ => "null".to_owned(),
                },
            )
            .finish(),
        Event::ServerError(error) => Object::new("serverError")
            .raw("error", &error_json(&error))
            .finish(),
        Event::ProtocolViolation(err) => Object::new("protocolViolation")
            .str("reason", &err.to_string())
            .finish(),
        Event::Error { reason } => Object::new("error").str("reason", &reason).finish(),
        // An event this version does not know (the core's enum is non-exhaustive). Its name
        // only: `Debug` of every event would be compiled in for this one line.
        _ => Object::new("other")
            .str(
                "debug",
                "an event this version of the bindings does not know",
            )
            .finish(),
    }
}

fn command_json(command: Command) -> String {
    match command {
        Command::Open { url } => Object::new("open").str("url", &url).finish(),
        Command::Transmit(frame) => Object::new("transmit").str("frame", &frame).finish(),
        Command::Close { code, reason } => Object::new("close")
            .uint("code", code.into())
            .str("reason", &reason)
            .finish(),
        // A command this version does not know: closing is the safe answer.
        _ => Object::new("close")
            .uint("code", cerebrum_core::CLOSE_NORMAL.into())
            .str("reason", "unsupported command")
            .finish(),
    }
}

/// `url` with its `token` query parameter replaced by `token` (or removed when `None`).
fn with_query_token(url: &str, token: Option<&str>) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut out = String::with_capacity(url.len() + token.map_or(0, |t| t.len() * 3 + 7));
    out.push_str(base);
    let mut separator = '?';
    let kept = query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("token="));
    for pair in kept {
        out.push(separator);
        out.push_str(pair);
        separator = '&';
    }
    if let Some(token) = token {
        out.push(separator);
        out.push_str("token=");
        for byte in token.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(byte));
            } else {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xf)]));
            }
        }
    }
    out
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
    /// The deadline the last [`WasmClient::drain`] reported (`None` before the first): the
    /// driver's timer is armed at it.
    reported_timeout: Option<Option<f64>>,
}

/// [`WasmClient::handle_frame`]: outputs wait, call `drain()`.
pub const FRAME_DRAIN: u8 = 0;
/// [`WasmClient::handle_frame`]: the frame is delivered as it is, nothing else happened.
pub const FRAME_MESSAGE: u8 = 1;
/// [`WasmClient::handle_frame`]: the frame is delivered as it is, flagged `appData`; nothing
/// else happened.
pub const FRAME_APP_DATA: u8 = 2;
/// [`WasmClient::handle_frame`]: nothing to hand out, nothing else happened.
pub const FRAME_NOTHING: u8 = 3;

impl WasmClient {
    /// [`WasmClient::new`] with a Rust error.
    pub fn try_new(
        options: ClientOptions,
        now_ms: f64,
        unix_ms: f64,
    ) -> Result<Self, BindingError> {
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
            reported_timeout: None,
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

    /// After a frame: hands the usual outcome (exactly one message, from that frame) to the
    /// driver as a code instead of through [`WasmClient::drain`]; see
    /// [`WasmClient::handle_frame`].
    fn settle_frame(&mut self) -> u8 {
        let (commands, events) = self.core.pending();
        if commands != 0
            || !self.follow_ups.is_empty()
            || self.reported_timeout != Some(self.poll_timeout())
        {
            return FRAME_DRAIN;
        }
        let code = match (events, self.core.peek_event()) {
            (0, _) => FRAME_NOTHING,
            (1, Some(Event::Message(envelope))) if !self.answers(envelope) => {
                if is_app_data(envelope) {
                    FRAME_APP_DATA
                } else {
                    FRAME_MESSAGE
                }
            }
            _ => return FRAME_DRAIN,
        };
        // The message the driver delivers from the text it holds (nothing for `observe` to
        // note: it is not a notification to ack).
        let _delivered = self.core.poll_event();
        self.frame_fed = false;
        code
    }

    /// Whether `envelope` is a notification that the client answers with an `ack`.
    fn answers(&self, envelope: &Envelope) -> bool {
        self.auto_ack_notifications
            && self.v1
            && envelope.kind() == Notification::TYPE
            && envelope.channel().is_none()
            && !is_app_data(envelope)
    }

    /// Notes what the driver must answer (the notification acks of the Rust facade).
    fn observe(&mut self, event: &Event) {
        match event {
            Event::ServerLevel(level) => self.v1 = matches!(level, ServerLevel::V1 { .. }),
            Event::Message(envelope) if self.answers(envelope) => {
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
    /// A core for the options (those of [`ClientOptions`], in its order; `undefined` keeps a
    /// default), created at `now_ms` on the driver's clock when the wall clock reads `unix_ms`.
    /// Throws on invalid options.
    #[wasm_bindgen(constructor)]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        url: String,
        preset: Option<String>,
        reconnect: Option<bool>,
        reconnect_attempts: Option<f64>,
        reconnect_interval: Option<f64>,
        reconnect_factor: Option<f64>,
        max_reconnect_delay: Option<f64>,
        jitter: Option<f64>,
        heartbeat_interval: Option<f64>,
        heartbeat_timeout: Option<f64>,
        connection_timeout: Option<f64>,
        enable_queue: Option<bool>,
        queue_capacity: Option<u32>,
        ack_timeout: Option<f64>,
        token: Option<String>,
        token_transport: Option<String>,
        debug: Option<bool>,
        seed: Option<f64>,
        auto_ack_notifications: Option<bool>,
        now_ms: f64,
        unix_ms: f64,
    ) -> Result<Self, JsError> {
        let options = ClientOptions {
            url,
            preset,
            reconnect,
            reconnect_attempts,
            reconnect_interval,
            reconnect_factor,
            max_reconnect_delay,
            jitter,
            heartbeat_interval,
            heartbeat_timeout,
            connection_timeout,
            enable_queue,
            queue_capacity,
            ack_timeout,
            token,
            token_transport,
            debug,
            seed,
            auto_ack_notifications,
        };
        Ok(Self::try_new(options, now_ms, unix_ms)?)
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
        str_array(ids.iter().map(String::as_str))
    }

    /// Transport report: the WebSocket opened.
    #[wasm_bindgen(js_name = handleOpen)]
    pub fn handle_open(&mut self, now_ms: f64) {
        let now = self.at(now_ms);
        self.core.handle_transport(TransportEvent::Opened, now);
    }

    /// Transport report: a text frame arrived. Returns what the driver does next, so that the
    /// common case (one message, nothing else) needs no [`drain`](Self::drain) call:
    ///
    /// - [`FRAME_DRAIN`] (0): outputs wait: call `drain()` (a message from this frame is in it as
    ///   `{"kind":"message","fed":true}`);
    /// - [`FRAME_MESSAGE`] (1): the frame is delivered unchanged as a message, and that is all:
    ///   no command, no other event, the deadline of the last `drain()` stands;
    /// - [`FRAME_APP_DATA`] (2): the same, for a message flagged `appData`;
    /// - [`FRAME_NOTHING`] (3): nothing to hand out (a replayed publication already seen), the
    ///   deadline of the last `drain()` stands.
    #[wasm_bindgen(js_name = handleFrame)]
    pub fn handle_frame(&mut self, frame: String, now_ms: f64) -> u8 {
        let now = self.at(now_ms);
        self.core
            .handle_transport(TransportEvent::Frame(frame), now);
        self.frame_fed = true;
        self.settle_frame()
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
        let timeout = self.core.poll_timeout().map(|at| self.clock.since(at));
        self.reported_timeout = Some(timeout.map(Clock::as_ms));
        match timeout {
            None => out.push_str("null"),
            // Exact, and without float formatting (slow, and large, in WebAssembly).
            Some(since) => push_ms(&mut out, since),
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
        self.core.latency().last.map(Clock::as_ms)
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

    fn url(url: &str) -> ClientOptions {
        ClientOptions {
            url: url.to_owned(),
            ..ClientOptions::default()
        }
    }

    fn client(options: ClientOptions, unix_ms: f64) -> WasmClient {
        WasmClient::try_new(options, 0.0, unix_ms).unwrap()
    }

    #[test]
    fn options_map_to_the_core_config_and_bad_ones_are_refused() {
        let good = ClientOptions {
            reconnect_attempts: Some(f64::INFINITY),
            heartbeat_interval: Some(1000.0),
            seed: Some(9_007_199_254_740_991.0),
            queue_capacity: Some(5),
            ..url("ws://h/ws")
        };
        let core = client(good, 1_732_752_000_000.0).core;
        assert_eq!(
            core.config().reconnect_attempts,
            ReconnectAttempts::Unlimited
        );
        assert_eq!(core.config().heartbeat_interval, Duration::from_secs(1));
        assert_eq!(core.config().seed, 9_007_199_254_740_991);
        assert_eq!(core.config().queue_capacity, 5);
        let limited = ClientOptions {
            reconnect_attempts: Some(3.0),
            ..url("ws://h/ws")
        };
        assert_eq!(
            client(limited, 0.0).core.config().reconnect_attempts,
            ReconnectAttempts::Limited(3)
        );
        let bad = [
            url("http://h/ws"),
            ClientOptions {
                heartbeat_interval: Some(-1.0),
                ..url("ws://h/ws")
            },
            ClientOptions {
                preset: Some("huge".to_owned()),
                ..url("ws://h/ws")
            },
            ClientOptions {
                reconnect_attempts: Some(1.5),
                ..url("ws://h/ws")
            },
            ClientOptions {
                reconnect_attempts: Some(-1.0),
                ..url("ws://h/ws")
            },
            ClientOptions {
                seed: Some(f64::NAN),
                ..url("ws://h/ws")
            },
            ClientOptions {
                token_transport: Some("pigeon".to_owned()),
                ..url("ws://h/ws")
            },
        ];
        for options in bad {
            assert!(
                WasmClient::try_new(options.clone(), 0.0, 0.0).is_err(),
                "{options:?}"
            );
        }
    }

    #[test]
    fn a_frame_travels_from_handle_frame_to_a_message_event() {
        let mut client = client(url("ws://h/ws"), 1_732_752_000_000.0);
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
        let mut client = client(url("ws://h/ws"), 0.0);
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
            let code = client.handle_frame(frame.to_owned(), 6.0 + i as f64);
            // The fast path flags the message in its code, `drain()` in the event.
            let flagged = match code {
                FRAME_MESSAGE => false,
                FRAME_APP_DATA => true,
                _ => {
                    assert_eq!(code, FRAME_DRAIN, "{frame}");
                    let out: serde_json::Value = serde_json::from_str(&client.drain()).unwrap();
                    let message = out["events"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|e| e["kind"] == "message")
                        .unwrap_or_else(|| panic!("no message event for {frame}: {out}"))
                        .clone();
                    message["appData"] == true
                }
            };
            assert_eq!(flagged, app_data, "{frame}");
        }
    }

    #[test]
    fn drain_returns_everything_at_once_and_marks_the_fed_frame() {
        let mut client = client(url("ws://h/ws"), 0.0);
        client.connect(0.0);
        let out: serde_json::Value = serde_json::from_str(&client.drain()).unwrap();
        assert_eq!(out["commands"][0]["kind"], "open");
        assert_eq!(out["events"][0]["kind"], "status");
        assert_eq!(out["timeout"], 10_000.0);
        client.handle_open(5.0);
        let _ = client.drain();
        // The first frame from the server settles its level (an event besides the message):
        // the frame goes through `drain()`.
        let code = client.handle_frame(
            r#"{"type":"news","payload":{"n":1},"timestamp":1,"messageId":"m1"}"#.to_owned(),
            6.0,
        );
        assert_eq!(code, FRAME_DRAIN);
        let out: serde_json::Value = serde_json::from_str(&client.drain()).unwrap();
        let events = out["events"].as_array().unwrap();
        assert!(events.contains(&serde_json::json!({"kind":"message","fed":true})));
        // Nothing left, and nothing pending: an empty drain.
        let out: serde_json::Value = serde_json::from_str(&client.drain()).unwrap();
        assert_eq!(out["commands"], serde_json::json!([]));
        assert_eq!(out["events"], serde_json::json!([]));
    }

    #[test]
    fn a_lone_message_skips_drain_and_anything_more_goes_through_it() {
        let mut client = client(url("ws://h/ws"), 0.0);
        // Before any drain() the driver's timer is unknown: always drain.
        client.connect(0.0);
        client.handle_open(1.0);
        let frame = |id: &str| {
            format!(r#"{{"type":"news","payload":{{"n":1}},"timestamp":1,"messageId":"{id}"}}"#)
        };
        assert_eq!(client.handle_frame(frame("m0"), 2.0), FRAME_DRAIN);
        let _ = client.drain();
        // A v1 server's welcome (events besides any message): drain.
        let welcome = r#"{"type":"welcome","payload":{"connectionId":"c","protocol":1,"heartbeatIntervalMs":30000,"features":["ack","channels","resume"],"serverTime":5},"messageId":"w"}"#;
        assert_eq!(client.handle_frame(welcome.to_owned(), 3.0), FRAME_DRAIN);
        let _ = client.drain();
        // One message and nothing else: delivered by its code, nothing left to drain.
        assert_eq!(client.handle_frame(frame("m1"), 4.0), FRAME_MESSAGE);
        let out: serde_json::Value = serde_json::from_str(&client.drain()).unwrap();
        assert_eq!(out["events"], serde_json::json!([]));
        assert_eq!(out["commands"], serde_json::json!([]));
        // A notification the client acks: the ack is a command, so drain.
        let notification = r#"{"type":"notification","payload":{"id":"n","title":"t","message":"m","type":"info","priority":"low"},"messageId":"n1"}"#;
        assert_eq!(
            client.handle_frame(notification.to_owned(), 5.0),
            FRAME_DRAIN
        );
        let out: serde_json::Value = serde_json::from_str(&client.drain()).unwrap();
        assert_eq!(
            out["events"][0],
            serde_json::json!({"kind":"message","fed":true})
        );
        assert_eq!(out["commands"][0]["kind"], "transmit");
        // A frame that fails to decode is an event of its own: drain.
        assert_eq!(client.handle_frame("garbage".to_owned(), 6.0), FRAME_DRAIN);
        let out: serde_json::Value = serde_json::from_str(&client.drain()).unwrap();
        assert_eq!(out["events"][0]["kind"], "protocolViolation");
        // A channel publication already delivered (a replay): nothing.
        client.try_subscribe("chat:1", 7.0).unwrap();
        let _ = client.drain();
        let publication = r#"{"type":"chat.message","payload":{},"channel":"chat:1","offset":4,"messageId":"p4"}"#;
        assert_eq!(
            client.handle_frame(publication.to_owned(), 8.0),
            FRAME_MESSAGE
        );
        assert_eq!(
            client.handle_frame(publication.to_owned(), 9.0),
            FRAME_NOTHING
        );
        // A deadline other than the one the driver's timer is armed at: drain, even for a
        // lone message, so that the driver re-arms.
        client.reported_timeout = Some(Some(1.5));
        assert_eq!(client.handle_frame(frame("m2"), 10.0), FRAME_DRAIN);
        let out: serde_json::Value = serde_json::from_str(&client.drain()).unwrap();
        assert!(
            out["events"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!({"kind":"message","fed":true}))
        );
    }

    #[test]
    fn the_origin_backoff_schedule_reaches_javascript_in_milliseconds() {
        let mut client = client(url("ws://h/ws"), 0.0);
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
        let mut client = client(url("ws://h/ws"), 0.0);
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
        let mut query = client(
            ClientOptions {
                token_transport: Some("query".to_owned()),
                ..url("ws://h/ws?x=1")
            },
            0.0,
        );
        query.set_token(Some("a b".to_owned()));
        assert_eq!(
            query.open_url("ws://h/ws?x=1&token=old"),
            "ws://h/ws?x=1&token=a%20b"
        );
        let client = client(
            ClientOptions {
                token: Some("t".to_owned()),
                ..url("ws://h/ws")
            },
            0.0,
        );
        assert_eq!(client.open_url("ws://h/ws?token=t"), "ws://h/ws");
        assert_eq!(
            with_query_token("ws://h/ws", Some("é/+~")),
            "ws://h/ws?token=%C3%A9%2F%2B~"
        );
        assert_eq!(
            with_query_token("ws://h/ws?a=1&&token=x&b=2", None),
            "ws://h/ws?a=1&b=2"
        );
    }
}
