//! A few [`Session`]s of one server fed arbitrary operations, without sockets or a runtime.

use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use cerebrum_protocol::{
    ClientMessage, Envelope, ErrorCode, ErrorPayload, MAX_FRAME_BYTES, ServerMessage, StudyMetrics,
    decode, encode,
};
use cerebrum_server::ServerConfig;
use cerebrum_server::auth::{JwtKey, mint_hs256};
use cerebrum_server::broker::MemoryBroker;
use cerebrum_server::clock::Now;
use cerebrum_server::context::Context;
use cerebrum_server::outbox::Outbox;
use cerebrum_server::session::{Effect, Session};
use serde_json::json;

/// How many connections a scenario juggles at once.
const SLOTS: usize = 3;
/// Operations run per input at most (keeps one input fast).
const MAX_OPS: usize = 256;
/// The HS256 secret of the scenarios that turn auth on.
const SECRET: &[u8] = b"fuzz-harness-session-secret-32by";

/// One scenario: the server's configuration and the operations on its connections.
#[derive(Debug, Arbitrary)]
pub struct Scenario {
    auth: bool,
    /// Whether the store fails the effects that write (`internal` instead of `ack`).
    store_fails: bool,
    /// Per-user connection limit, 1-4.
    per_user: u8,
    ops: Vec<Op>,
}

/// One step.
#[derive(Debug, Arbitrary)]
enum Op {
    /// A text frame built from structured input.
    Frame { slot: u8, frame: Frame },
    /// The same frame many times at one instant (the rate limit).
    Burst { slot: u8, count: u8, frame: Frame },
    /// A text frame of arbitrary text.
    Text { slot: u8, text: String },
    /// A binary frame of this length.
    Binary { slot: u8, len: u16 },
    /// A WebSocket ping or pong.
    Activity { slot: u8 },
    /// Time passes; sessions whose timer is due get `handle_timeout`, the server's sweeps run.
    Advance { ms: u32 },
    /// `handle_timeout` now, due or not.
    Timeout { slot: u8 },
    /// The peer goes away.
    Disconnect { slot: u8 },
    /// A new connection in the slot (the old one, if any, goes away first).
    Connect { slot: u8, token: Option<Token> },
    /// A server-side publication (`POST /api/publish`).
    ServerPublish {
        channel: Channel,
        kind: Kind,
        payload: Json,
    },
}

/// A token presented at the upgrade or in `auth`.
#[derive(Debug, Arbitrary)]
enum Token {
    Valid {
        user: User,
        ttl: u16,
        name: Option<Text>,
        channels: Option<Vec<Glob>>,
    },
    Expired {
        user: User,
    },
    WrongKey {
        user: User,
    },
    Garbage(String),
}

#[derive(Debug, Arbitrary)]
enum User {
    U1,
    U2,
    Email,
    Any(String),
}

#[derive(Debug, Arbitrary)]
enum Glob {
    All,
    Chat,
    Room,
    Any(String),
}

#[derive(Debug, Arbitrary)]
enum Topic {
    Genetics,
    CellBiology,
    Any(String),
}

#[derive(Debug, Arbitrary)]
enum Channel {
    System,
    OwnUser(User),
    Session(Topic),
    Chat(u8),
    Room(u8),
    Any(String),
}

#[derive(Debug, Arbitrary)]
enum Kind {
    App,
    Chat,
    /// One of the server's own types.
    Server(u8),
    /// One of the client's types.
    Client(u8),
    Any(String),
}

/// Arbitrary JSON, bounded by the input and nested at most [`MAX_JSON_DEPTH`] levels (a derived
/// `Arbitrary` would recurse as deep as the input lets it, overflowing a test thread's stack).
#[derive(Debug)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Self>),
    Object(Vec<(String, Self)>),
    /// A payload with a `userId` (the publish check reads it).
    WithUser(User, Box<Self>),
    /// Raw text put in place of the payload (may break the frame).
    Raw(String),
}

/// Deeper than the protocol's limit (32), so that the refusal of deep frames is reached too.
const MAX_JSON_DEPTH: usize = 40;

impl<'a> Arbitrary<'a> for Json {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Self::nested(u, 0)
    }
}

impl Json {
    fn nested(u: &mut Unstructured<'_>, depth: usize) -> arbitrary::Result<Self> {
        let last = if depth >= MAX_JSON_DEPTH { 5 } else { 8 };
        Ok(match u.int_in_range(0..=last)? {
            0 => Self::Null,
            1 => Self::Bool(u.arbitrary()?),
            2 => Self::Int(u.arbitrary()?),
            3 => Self::Float(u.arbitrary()?),
            4 => Self::Str(u.arbitrary()?),
            5 => Self::Raw(u.arbitrary()?),
            6 => {
                let len = u.arbitrary_len::<u8>()?.min(8);
                Self::Array(
                    (0..len)
                        .map(|_| Self::nested(u, depth + 1))
                        .collect::<arbitrary::Result<_>>()?,
                )
            }
            7 => {
                let len = u.arbitrary_len::<u8>()?.min(8);
                Self::Object(
                    (0..len)
                        .map(|_| Ok((u.arbitrary()?, Self::nested(u, depth + 1)?)))
                        .collect::<arbitrary::Result<_>>()?,
                )
            }
            _ => Self::WithUser(u.arbitrary()?, Box::new(Self::nested(u, depth + 1)?)),
        })
    }
}

/// A `text` of the structured frames: short, long, or arbitrary.
#[derive(Debug, Arbitrary)]
enum Text {
    Short,
    Long(u16),
    Any(String),
}

/// A client frame: envelope fields and a payload of one of the client types.
#[derive(Debug, Arbitrary)]
struct Frame {
    body: Body,
    message_id: Option<MessageIdInput>,
    ack: bool,
    channel: Option<Channel>,
    timestamp: Option<u64>,
}

#[derive(Debug, Arbitrary)]
enum MessageIdInput {
    Counter(u8),
    Any(String),
}

#[derive(Debug, Arbitrary)]
enum Body {
    Ping(Json),
    StudyStart {
        user: User,
        topic: Topic,
        timestamp: Option<u64>,
    },
    StudyEnd {
        user: User,
        topic: Topic,
    },
    Subscribe {
        channel: Channel,
        since: Option<(u64, Epoch)>,
    },
    Unsubscribe(Channel),
    Auth(Token),
    Ack(MessageIdInput),
    /// An app message (or a forged server one), payload arbitrary.
    Typed {
        kind: Kind,
        payload: Json,
    },
}

#[derive(Debug, Arbitrary)]
enum Epoch {
    /// The epoch of the channel as the last `subscribed` of the slot told it.
    Seen,
    Any(String),
}

const SERVER_TYPES: [&str; 10] = [
    "welcome",
    "pong",
    "ack",
    "error",
    "subscribed",
    "unsubscribed",
    "study_metrics_update",
    "collaborative_session_update",
    "notification",
    "system_status",
];

impl User {
    fn id(&self) -> String {
        match self {
            Self::U1 => "u1".to_owned(),
            Self::U2 => "u2".to_owned(),
            Self::Email => "ada@example.org".to_owned(),
            Self::Any(id) => id.clone(),
        }
    }
}

impl Glob {
    fn text(&self) -> String {
        match self {
            Self::All => "*".to_owned(),
            Self::Chat => "chat:*".to_owned(),
            Self::Room => "room-?".to_owned(),
            Self::Any(glob) => glob.clone(),
        }
    }
}

impl Topic {
    fn text(&self) -> String {
        match self {
            Self::Genetics => "Genetics".to_owned(),
            Self::CellBiology => "Cell Biology".to_owned(),
            Self::Any(topic) => topic.clone(),
        }
    }
}

impl Channel {
    fn name(&self) -> String {
        match self {
            Self::System => "system".to_owned(),
            Self::OwnUser(user) => format!("user:{}", user.id()),
            Self::Session(topic) => cerebrum_protocol::session_channel(&topic.text())
                .unwrap_or_else(|_| "session:".to_owned()),
            Self::Chat(n) => format!("chat:{n}"),
            Self::Room(n) => format!("room-{}", n % 10),
            Self::Any(name) => name.clone(),
        }
    }
}

impl Kind {
    fn name(&self) -> String {
        match self {
            Self::App => "quiz.answer".to_owned(),
            Self::Chat => "chat.message".to_owned(),
            Self::Server(n) => SERVER_TYPES[usize::from(*n) % SERVER_TYPES.len()].to_owned(),
            Self::Client(n) => {
                let types = ClientMessage::TYPES;
                types[usize::from(*n) % types.len()].to_owned()
            }
            Self::Any(kind) => kind.clone(),
        }
    }
}

impl Text {
    fn text(&self) -> String {
        match self {
            Self::Short => "Ada".to_owned(),
            Self::Long(n) => "n".repeat(usize::from(*n)),
            Self::Any(text) => text.clone(),
        }
    }
}

impl MessageIdInput {
    fn text(&self) -> String {
        match self {
            Self::Counter(n) => format!("m-{n}"),
            Self::Any(id) => id.clone(),
        }
    }
}

impl Json {
    /// The JSON text (not always valid, for [`Json::Raw`]).
    fn text(&self) -> String {
        match self {
            Self::Raw(raw) => raw.clone(),
            other => other.value().to_string(),
        }
    }

    fn value(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Self::Null | Self::Raw(_) => J::Null,
            Self::Bool(b) => J::Bool(*b),
            Self::Int(n) => J::from(*n),
            Self::Float(x) => serde_json::Number::from_f64(*x).map_or(J::Null, J::Number),
            Self::Str(s) => J::String(s.clone()),
            Self::Array(items) => J::Array(items.iter().map(Self::value).collect()),
            Self::Object(fields) => {
                J::Object(fields.iter().map(|(k, v)| (k.clone(), v.value())).collect())
            }
            Self::WithUser(user, rest) => {
                let mut value = rest.value();
                if let J::Object(fields) = &mut value {
                    fields.insert("userId".to_owned(), J::String(user.id()));
                    value
                } else {
                    json!({ "userId": user.id(), "value": value })
                }
            }
        }
    }
}

impl Token {
    fn text(&self) -> String {
        let mint = |secret: &[u8], user: &User, ttl: u64, name: Option<String>, channels| {
            mint_hs256(secret, &user.id(), name.as_deref(), ttl, channels).unwrap_or_default()
        };
        match self {
            Self::Valid {
                user,
                ttl,
                name,
                channels,
            } => mint(
                SECRET,
                user,
                u64::from(*ttl) + 60,
                name.as_ref().map(Text::text),
                channels
                    .as_ref()
                    .map(|globs| globs.iter().map(Glob::text).collect()),
            ),
            // `exp` is now + 0: past by the time it is checked? Not reliably; use a token
            // minted for 0 s and an `exp` that the verifier sees as now or past.
            Self::Expired { user } => {
                let claims = json!({ "sub": user.id(), "exp": 1 });
                jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                    &claims,
                    &jsonwebtoken::EncodingKey::from_secret(SECRET),
                )
                .unwrap_or_default()
            }
            Self::WrongKey { user } => {
                mint(b"another-secret-of-enough-length!", user, 600, None, None)
            }
            Self::Garbage(text) => text.clone(),
        }
    }
}

/// One connection of the scenario.
struct Client {
    session: Session,
    outbox: Arc<Outbox>,
    /// The epoch of the last `subscribed` frame seen.
    epoch: Option<String>,
}

struct World {
    ctx: Arc<Context>,
    slots: [Option<Client>; SLOTS],
    now: Now,
    store_fails: bool,
}

/// Runs the scenario read from `data`; panics when an invariant breaks.
///
/// After every operation, every queued frame of every connection is drained and checked: at
/// most 64 KiB, accepted by `decode`, an `error`'s code is one this version knows, and a frame
/// of one of the server's own types sent without a `channel` validates as that type.
pub fn run(data: &[u8]) {
    let input = Unstructured::new(data);
    let Ok(scenario) = Scenario::arbitrary_take_rest(input) else {
        return;
    };
    run_scenario(&scenario);
}

fn run_scenario(scenario: &Scenario) {
    let mut config = ServerConfig::default();
    config.max_connections_per_user = usize::from(scenario.per_user % 4) + 1;
    if scenario.auth {
        config.jwt = Some(JwtKey::hs256(SECRET));
    }
    let history_ttl = config.history_ttl;
    let history_size = config.history_size;
    let start = cerebrum_server::clock::now();
    let ctx = Context::new(
        config,
        MemoryBroker::new(history_size, history_ttl, 1),
        false,
        7,
        start,
    )
    .expect("a valid configuration");
    let mut world = World {
        ctx,
        slots: [None, None, None],
        now: start,
        store_fails: scenario.store_fails,
    };
    world.connect(0, None);
    for op in scenario.ops.iter().take(MAX_OPS) {
        world.apply(op);
        world.settle();
    }
    for slot in 0..SLOTS {
        world.disconnect(slot);
    }
    world.settle();
}

impl World {
    fn apply(&mut self, op: &Op) {
        let now = self.now;
        match op {
            Op::Frame { slot, frame } => {
                let slot = usize::from(*slot) % SLOTS;
                let text = self.frame_text(slot, frame);
                if let Some(client) = self.client(slot) {
                    client.session.handle_text(&text, now);
                }
            }
            Op::Burst { slot, count, frame } => {
                let slot = usize::from(*slot) % SLOTS;
                let text = self.frame_text(slot, frame);
                for _ in 0..(*count % 64) {
                    if let Some(client) = self.client(slot) {
                        client.session.handle_text(&text, now);
                    }
                    self.settle();
                }
            }
            Op::Text { slot, text } => {
                if let Some(client) = self.client(usize::from(*slot) % SLOTS) {
                    client.session.handle_text(text, now);
                }
            }
            Op::Binary { slot, len } => {
                if let Some(client) = self.client(usize::from(*slot) % SLOTS) {
                    client.session.handle_binary(usize::from(*len), now);
                }
            }
            Op::Activity { slot } => {
                if let Some(client) = self.client(usize::from(*slot) % SLOTS) {
                    client.session.handle_activity(now);
                }
            }
            Op::Advance { ms } => self.advance(u64::from(*ms % 120_000)),
            Op::Timeout { slot } => {
                if let Some(client) = self.client(usize::from(*slot) % SLOTS) {
                    client.session.handle_timeout(now);
                }
            }
            Op::Disconnect { slot } => self.disconnect(usize::from(*slot) % SLOTS),
            Op::Connect { slot, token } => {
                let slot = usize::from(*slot) % SLOTS;
                self.disconnect(slot);
                let token = token.as_ref().map(Token::text);
                self.connect(slot, token.as_deref());
            }
            Op::ServerPublish {
                channel,
                kind,
                payload,
            } => {
                // The checks of `POST /api/publish`, then the hub.
                let body = format!(
                    r#"{{"channel":{},"type":{},"payload":{}}}"#,
                    serde_json::Value::String(channel.name()),
                    serde_json::Value::String(kind.name()),
                    payload.text()
                );
                if let Ok((channel, envelope)) = cerebrum_server::publish_body(body.as_bytes()) {
                    let envelope = envelope.stamped(&self.ctx.ids, now.unix_ms);
                    let _ = self.ctx.hub.publish(&channel, envelope, now);
                }
            }
        }
    }

    fn client(&mut self, slot: usize) -> Option<&mut Client> {
        self.slots[slot].as_mut()
    }

    fn connect(&mut self, slot: usize, token: Option<&str>) {
        let outbox = Outbox::new(self.ctx.config.outbound_queue);
        let session = Session::new(self.ctx.clone(), outbox.clone(), token, self.now);
        self.slots[slot] = Some(Client {
            session,
            outbox,
            epoch: None,
        });
    }

    fn disconnect(&mut self, slot: usize) {
        if let Some(mut client) = self.slots[slot].take() {
            client.session.disconnect(self.now);
        }
    }

    /// Time passes by `ms`: due timers fire, and the server's periodic work runs (presence
    /// expiry, history and dedupe sweeps).
    fn advance(&mut self, ms: u64) {
        self.now = self.now.plus_ms(ms);
        let now = self.now;
        for client in self.slots.iter_mut().flatten() {
            if client.session.poll_timeout() <= now.mono {
                client.session.handle_timeout(now);
            }
        }
        let expired = self
            .ctx
            .study
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .expire(now);
        for finished in expired {
            self.ctx
                .hub
                .memory()
                .presence_leave(&finished.channel, &finished.user_id);
            self.publish_metrics(&finished.user_id, None, finished.duration_secs);
            self.ctx
                .publish_session_update(&finished.channel, &finished.topic, now);
        }
        self.ctx.hub.sweep(now.mono);
        self.ctx.dedupe.sweep(now.mono);
    }

    fn publish_metrics(&self, user: &str, topic: Option<String>, duration: f64) {
        let metrics = StudyMetrics {
            user_id: user.to_owned(),
            study_hours: duration / 3600.0,
            progress: 0.0,
            current_topic: topic,
            session_duration: duration,
            streak: 1,
        };
        self.ctx.publish_metrics(&metrics, self.now);
    }

    /// Carries out every effect as the connection task would (with a store that always
    /// succeeds or always fails), then drains and checks every outbox, until all is quiet.
    fn settle(&mut self) {
        loop {
            let mut quiet = true;
            for slot in 0..SLOTS {
                while let Some(effect) = self.slots[slot]
                    .as_mut()
                    .and_then(|client| client.session.poll_effect())
                {
                    quiet = false;
                    self.carry_out(slot, effect);
                }
            }
            for slot in 0..SLOTS {
                self.check_outbox(slot);
            }
            if quiet {
                break;
            }
        }
    }

    fn carry_out(&mut self, slot: usize, effect: Effect) {
        let now = self.now;
        let fails = self.store_fails;
        let acked = |world: &mut Self, ack: Option<cerebrum_protocol::MessageId>| {
            if let Some(client) = world.slots[slot].as_mut() {
                if fails {
                    client.session.send_internal_error(ack, now);
                } else if let Some(id) = ack {
                    client.session.send_ack(id, now);
                }
            }
        };
        match effect {
            Effect::Close { code, .. } => {
                assert!(
                    matches!(code, 1001 | 1008 | 1009 | 1011 | 4001 | 4008 | 4029),
                    "close code {code} is not one of PROTOCOL.md section 7"
                );
                self.disconnect(slot);
            }
            Effect::Publish {
                channel,
                envelope,
                ack,
            } => {
                let _ = self.ctx.hub.publish(&channel, *envelope, now);
                acked(self, ack);
            }
            Effect::FinishStudy {
                user_id,
                finished,
                ack,
            } => {
                if !fails {
                    let duration = finished.map_or(0.0, |f| f.duration_secs);
                    self.publish_metrics(&user_id, None, duration);
                }
                acked(self, ack);
            }
            Effect::StudyStarted { user_id, topic } => {
                if !fails {
                    self.publish_metrics(&user_id, Some(topic), 0.0);
                }
            }
            Effect::DeliverPending { user_id } => {
                let _ = user_id;
            }
            Effect::AckNotification { ack, .. } => acked(self, ack),
            other => panic!("an effect the harness does not know: {other:?}"),
        }
    }

    fn check_outbox(&mut self, slot: usize) {
        let Some(client) = self.slots[slot].as_mut() else {
            return;
        };
        let mut frames = Vec::new();
        client.outbox.drain_into(&mut frames);
        for frame in frames {
            let text = frame.text.as_str();
            assert!(
                text.len() <= MAX_FRAME_BYTES,
                "an outbound frame of {} bytes: {}",
                text.len(),
                &text[..200.min(text.len())]
            );
            let envelope = decode(text)
                .unwrap_or_else(|err| panic!("an outbound frame decode refuses ({err}): {text}"));
            check_server_frame(&envelope, text);
            if envelope.kind() == "subscribed"
                && let Ok(subscribed) = envelope.typed::<cerebrum_protocol::Subscribed>()
            {
                client.epoch = Some(subscribed.epoch);
            }
        }
    }

    fn frame_text(&self, slot: usize, frame: &Frame) -> String {
        let epoch = self.slots[slot]
            .as_ref()
            .and_then(|client| client.epoch.clone())
            .unwrap_or_default();
        let (kind, payload) = match &frame.body {
            Body::Ping(payload) => ("ping".to_owned(), payload.text()),
            Body::StudyStart {
                user,
                topic,
                timestamp,
            } => {
                let mut payload = json!({ "userId": user.id(), "topic": topic.text() });
                if let Some(ts) = timestamp {
                    payload["timestamp"] = json!(ts);
                }
                ("study_session_start".to_owned(), payload.to_string())
            }
            Body::StudyEnd { user, topic } => (
                "study_session_end".to_owned(),
                json!({ "userId": user.id(), "topic": topic.text() }).to_string(),
            ),
            Body::Subscribe { channel, since } => {
                let mut payload = json!({ "channel": channel.name() });
                if let Some((offset, seen)) = since {
                    let epoch = match seen {
                        Epoch::Seen => epoch,
                        Epoch::Any(text) => text.clone(),
                    };
                    payload["since"] = json!({ "offset": offset % 8, "epoch": epoch });
                }
                ("subscribe".to_owned(), payload.to_string())
            }
            Body::Unsubscribe(channel) => (
                "unsubscribe".to_owned(),
                json!({ "channel": channel.name() }).to_string(),
            ),
            Body::Auth(token) => (
                "auth".to_owned(),
                json!({ "token": token.text() }).to_string(),
            ),
            Body::Ack(id) => (
                "ack".to_owned(),
                json!({ "messageId": id.text() }).to_string(),
            ),
            Body::Typed { kind, payload } => (kind.name(), payload.text()),
        };
        let mut text = format!(
            r#"{{"type":{},"payload":{payload}"#,
            serde_json::Value::String(kind)
        );
        if let Some(ts) = frame.timestamp {
            text.push_str(&format!(r#","timestamp":{ts}"#));
        }
        if let Some(id) = &frame.message_id {
            text.push_str(&format!(
                r#","messageId":{}"#,
                serde_json::Value::String(id.text())
            ));
        }
        if let Some(channel) = &frame.channel {
            text.push_str(&format!(
                r#","channel":{}"#,
                serde_json::Value::String(channel.name())
            ));
        }
        if frame.ack {
            text.push_str(r#","ack":true"#);
        }
        text.push('}');
        text
    }
}

/// The invariants of one frame the server sends.
fn check_server_frame(envelope: &Envelope, text: &str) {
    // A frame with a `channel` is a publication (a client's, or `POST /api/publish`'s), whatever
    // its type: clients treat it as app data of that channel (PROTOCOL.md section 7).
    if envelope.channel().is_none() && envelope.kind() == "error" {
        let error: ErrorPayload = envelope
            .typed()
            .unwrap_or_else(|err| panic!("an error frame that does not validate ({err}): {text}"));
        assert!(
            !matches!(error.code, ErrorCode::Other(_)),
            "an error code this version does not know: {text}"
        );
        assert!(
            !error.message.is_empty(),
            "an error without a message: {text}"
        );
    }
    // The server's own frames are valid messages.
    if envelope.channel().is_none() && SERVER_TYPES.contains(&envelope.kind()) {
        ServerMessage::from_envelope(envelope)
            .unwrap_or_else(|err| panic!("a server frame that does not validate ({err}): {text}"));
    }
    assert!(
        encode(envelope).len() <= MAX_FRAME_BYTES,
        "re-encoding grew the frame past the limit: {text}"
    );
}
