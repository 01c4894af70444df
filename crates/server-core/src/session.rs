//! The socket-free protocol of one connection: validation, auth state, rate limit, acks and
//! dedupe, dispatch to the hub and the study tracker.
//!
//! The connection task feeds frames and timer ticks in with the current time, drains
//! [`Session::poll_effect`] after every call, carries the effects out **in order** and feeds
//! each one's answer back (the `handle_*` methods its variant names), and writes what the
//! session queued in its [`Outbox`]. While an effect that the frame's processing waits on is
//! out ([`Session::is_waiting`]), the driver reads no further frame: a connection's frames are
//! processed one after the other, as the protocol requires. Nothing here touches a socket, a
//! clock or the network, so tests and the simulation drive it directly.

use std::sync::Arc;
use std::time::Instant;

use cerebrum_protocol::{
    Ack, ClientMessage, Envelope, ErrorCode, ErrorPayload, MessageId, Namespace, PROTOCOL_VERSION,
    Participant, Payload, ProtocolError, SYSTEM_CHANNEL, StreamPosition, StudySessionEnd,
    StudySessionStart, Subscribe, Unsubscribe, Unsubscribed, Welcome, decode, encode, features,
    is_server_type, session_channel, user_channel,
};
use serde::Deserialize;

use crate::Text;
use crate::auth::{AuthError, Claims};
use crate::broker::{BrokerError, Claimed, Replay};
use crate::clock::Now;
use crate::context::Context;
use crate::hub::ConnId;
use crate::outbox::{Outbox, lock};
use crate::permissions::Principal;
use crate::ratelimit::{AbuseCounter, TokenBucket};
use crate::study::{FinishedStudy, Joined};

/// Close codes of PROTOCOL.md section 7.
pub mod close_code {
    /// Server going away: idle connection or shutdown.
    pub const GOING_AWAY: u16 = 1001;
    /// Policy violation: repeated rate-limit abuse.
    pub const POLICY: u16 = 1008;
    /// Frame too large.
    pub const TOO_BIG: u16 = 1009;
    /// Internal failure.
    pub const INTERNAL: u16 = 1011;
    /// Bad, expired or missing token.
    pub const UNAUTHORIZED: u16 = 4001;
    /// Slow consumer: the outbound queue overflowed.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// Too many connections for one user.
    pub const TOO_MANY_CONNECTIONS: u16 = 4029;
}

/// Work the session hands to its owner: closing, and the steps that need the store.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Effect {
    /// Close the connection with this code.
    Close {
        /// The close code.
        code: u16,
        /// A short reason.
        reason: &'static str,
    },
    /// Add the finished session (if any) to the user's record durably, publish the user's
    /// `study_metrics_update`, then send `ack` for `ack` when set.
    FinishStudy {
        /// The user.
        user_id: String,
        /// The session that ended (`None`: there was none, only send the metrics).
        finished: Option<FinishedStudy>,
        /// The frame to acknowledge after the write.
        ack: Option<MessageId>,
    },
    /// Publish the user's `study_metrics_update` with `currentTopic` (a session started).
    StudyStarted {
        /// The user.
        user_id: String,
        /// The topic being studied.
        topic: String,
    },
    /// Publish on a channel of a remote broker (the broker call waits on the network), then
    /// send `ack` for `ack` when set, or `internal` when the broker failed.
    Publish {
        /// The channel.
        channel: String,
        /// The publication, stamped.
        envelope: Box<Envelope>,
        /// The frame to acknowledge once the broker took it.
        ack: Option<MessageId>,
    },
    /// Read the next page of the user's pending notifications (at most
    /// `ServerConfig::pending_page_size`, oldest first) and hand it to
    /// [`Session::handle_pending_page`]. Asked for again while a page is out, after
    /// `ServerConfig::pending_recheck`: the read then tells which of the page's notifications
    /// were acknowledged elsewhere (on another node).
    DeliverPending {
        /// The user.
        user_id: String,
    },
    /// Record the user's `ack` of a notification, then call
    /// [`Session::handle_notification_acked`] and `ack` the frame when set.
    AckNotification {
        /// The user.
        user_id: String,
        /// The acknowledged notification (its envelope's `messageId`).
        notification_id: MessageId,
        /// The frame to acknowledge after the write.
        ack: Option<MessageId>,
    },
    /// Remote broker: claim message `id` of dedupe `key` cluster-wide (first writer wins; the
    /// claim stays "in progress" until settled), then call [`Session::handle_claimed`]. The
    /// session waits for the answer.
    Claim {
        /// The dedupe key (`u:USER`).
        key: String,
        /// The message id.
        id: MessageId,
    },
    /// Remote broker: the claimed message took effect (and was acknowledged): its claim is
    /// settled, so that a re-send on any node is acknowledged again. Nothing to answer.
    Settle {
        /// The dedupe key.
        key: String,
        /// The message id.
        id: MessageId,
    },
    /// Remote broker: forget a claimed message id (its frame failed, so a re-send must take
    /// effect). Nothing to answer.
    Release {
        /// The dedupe key.
        key: String,
        /// The message id.
        id: MessageId,
    },
    /// Remote broker: count a connection of `user` on every node (at most `limit`), then call
    /// [`Session::handle_user_counted`]. The session waits for the answer.
    CountUser {
        /// The user.
        user: String,
        /// The per-user limit.
        limit: usize,
    },
    /// Remote broker: un-count a connection counted by [`Effect::CountUser`]. Nothing to answer.
    UncountUser {
        /// The user.
        user: String,
    },
    /// Remote broker: start receiving `channel`'s publications (one watch per local subscriber);
    /// on failure call [`Session::handle_watch_failed`].
    Watch {
        /// The channel.
        channel: String,
    },
    /// Remote broker: one local subscriber of `channel` left. Nothing to answer.
    Unwatch {
        /// The channel.
        channel: String,
    },
    /// Remote broker: watch `channel` first when `watch`, then read its replay since `since`,
    /// and call [`Session::handle_replay`]. The session waits for the answer.
    Replay {
        /// The channel.
        channel: String,
        /// The client's resume position.
        since: Option<StreamPosition>,
        /// Whether the channel must be watched for this connection first.
        watch: bool,
    },
    /// Remote broker: add `participant` to the presence of `channel` (refreshed by the node
    /// until it leaves), then call [`Session::handle_presence_joined`].
    PresenceJoin {
        /// The study session's channel.
        channel: String,
        /// The member.
        participant: Participant,
    },
    /// Remote broker: remove `user_id` from the presence of `channel` — the entry of the study
    /// session that `joined_at` started only (another connection of the user may have started
    /// a newer one, whose join can be carried out before this leave). Nothing to answer.
    PresenceLeave {
        /// The channel.
        channel: String,
        /// The member who left.
        user_id: String,
        /// When the session that ended started (its participant's `joinedAt`).
        joined_at: u64,
    },
    /// Remote broker: read the presence of `channel` and publish its
    /// `collaborative_session_update` ([`Context::session_update`]). Nothing to answer.
    SessionUpdate {
        /// The study session's channel.
        channel: String,
        /// Its topic.
        topic: String,
    },
}

/// What the session waits for before it takes the next frame (with a remote broker only).
#[derive(Debug)]
enum Waiting {
    /// The cluster-wide dedupe claim of a frame that asked for an ack.
    Claim {
        envelope: Box<Envelope>,
        encoded_len: usize,
        ack: MessageId,
        key: String,
    },
    /// The cluster-wide per-user count of the connection being authenticated.
    Count { claims: Box<Claims> },
    /// The replay of a remote subscription.
    Replay {
        channel: String,
        ack: Option<MessageId>,
        ref_id: Option<MessageId>,
        key: String,
    },
    /// The presence of a study session being started.
    StudyJoin {
        channel: String,
        topic: String,
        user_id: String,
        joined_at: u64,
        ack: Option<MessageId>,
        ref_id: Option<MessageId>,
        key: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Auth on, waiting for a token until the deadline.
    Authenticating { deadline: Instant },
    /// Welcome sent.
    Ready,
    /// A close effect was emitted.
    Closing,
}

/// What a frame's processing came to.
enum Outcome {
    /// Processed: acknowledge it now when it asked for it.
    Done,
    /// Processing continues in an effect that sends the ack itself.
    Deferred,
}

/// The protocol state of one connection.
///
/// ```
/// use std::time::{Duration, Instant};
/// use cerebrum_server_core::{broker::MemoryBroker, clock::Now, context::Context, outbox::Outbox, session::Session, ServerConfig};
///
/// let now = Now { mono: Instant::now(), unix_ms: 1_700_000_000_000 };
/// let ctx = Context::new(ServerConfig::default(), MemoryBroker::new(100, Duration::from_secs(300), 1), false, 7, now)?;
/// let outbox = Outbox::new(1024);
/// let mut session = Session::new(ctx, outbox.clone(), None, now);
/// session.handle_text(r#"{"type":"ping","payload":{"nonce":1}}"#, now);
/// let mut frames = Vec::new();
/// outbox.drain_into(&mut frames);
/// assert!(frames[0].text.as_str().starts_with(r#"{"type":"welcome""#));
/// assert!(frames[1].text.as_str().starts_with(r#"{"type":"system_status""#));
/// assert!(frames[2].text.as_str().starts_with(r#"{"type":"pong","payload":{"nonce":1}"#));
/// # Ok::<(), cerebrum_server_core::auth::AuthError>(())
/// ```
pub struct Session {
    ctx: Arc<Context>,
    conn: ConnId,
    /// The random half of the connection's id (`c{conn:x}-{salt:08x}`), which is written out
    /// only when asked for: 4 bytes instead of a string in every session.
    salt: u32,
    outbox: Arc<Outbox>,
    state: State,
    /// Boxed: most connections have none (auth off) and an idle connection pays every byte.
    claims: Option<Box<Claims>>,
    user: Option<String>,
    counted_user: Option<String>,
    bucket: TokenBucket,
    /// Inbound bytes per second.
    bytes: TokenBucket,
    /// When the token's `exp` passes (auth on): the connection closes with 4001 then.
    expires_at: Option<Instant>,
    /// Created on the first rate-limited frame.
    abuse: Option<Box<AbuseCounter>>,
    last_inbound: Instant,
    channels: ChannelSet,
    /// The full page of pending notifications delivered and not yet all acknowledged (boxed:
    /// most connections have none).
    pending: Option<Box<PendingPage>>,
    /// The answer the session waits for (boxed: most connections never wait).
    waiting: Option<Box<Waiting>>,
    /// Messages claimed cluster-wide whose effect is under way: settled when acknowledged,
    /// released when they fail (boxed: most connections have none).
    // Boxed although a `Vec` is on the heap already: an empty `Vec` is 24 bytes in every idle
    // session, the `Option<Box>` 8 (idle memory per connection, docs/benchmarks.md).
    #[allow(clippy::box_collection)]
    claimed: Option<Box<Vec<(MessageId, String)>>>,
    effects: std::collections::VecDeque<Effect>,
}

/// A full page of pending notifications on its way: the next page is read once every
/// notification of this one was acknowledged, so a user with thousands never overflows the
/// outbox. Its notifications not acknowledged yet are in the node's registry
/// ([`crate::pending::PendingPages`]), where an ack on any connection of the user reaches them.
#[derive(Debug)]
struct PendingPage {
    /// Set by the registry once every notification of the page was acknowledged.
    done: Arc<std::sync::atomic::AtomicBool>,
    /// When to read the store again, for acks made on another node (`None` while a read is
    /// out).
    recheck_at: Option<Instant>,
    /// The wait before the next such read: doubles after each read that found no ack.
    recheck_after: std::time::Duration,
}

/// How many times `ServerConfig::pending_recheck` a page waits at most between two reads.
const RECHECK_BACKOFF_MAX: u32 = 16;

/// How long after the last page of pending notifications a live delivery of one of them is
/// still recognised as a repeat and dropped ([`Outbox::watch_notifications`]).
const NOTIFICATION_REPEAT_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("connection_id", &self.connection_id())
            .field("state", &self.state)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct UserIdProbe {
    #[serde(rename = "userId", default)]
    user_id: Option<serde_json::Value>,
}

impl Session {
    /// A session for a connection that just completed its upgrade, with the token it presented
    /// there (`?token=` or `Authorization: Bearer`), if any. Queues `welcome` at once unless
    /// auth is on and no valid token was presented yet.
    pub fn new(ctx: Arc<Context>, outbox: Arc<Outbox>, token: Option<&str>, now: Now) -> Self {
        let conn = ctx.next_conn_id();
        let salt = ctx.random_u32();
        let bucket = TokenBucket::new(
            ctx.config.rate_limit_per_sec,
            ctx.config.rate_burst,
            now.mono,
        );
        let bytes = TokenBucket::new(
            ctx.config.inbound_bytes_per_sec,
            ctx.config.inbound_bytes_burst,
            now.mono,
        );
        let deadline = now.mono + ctx.config.auth_timeout;
        // The connection's rules include when its queue conflates.
        outbox.set_conflation_threshold(ctx.config.conflate_threshold);
        let mut session = Self {
            ctx,
            conn,
            salt,
            outbox,
            state: State::Authenticating { deadline },
            claims: None,
            user: None,
            counted_user: None,
            bucket,
            bytes,
            expires_at: None,
            abuse: None,
            last_inbound: now.mono,
            channels: ChannelSet::default(),
            pending: None,
            waiting: None,
            claimed: None,
            effects: std::collections::VecDeque::new(),
        };
        if !session.ctx.auth_enabled() {
            session.welcome(now);
        } else if let Some(token) = token {
            session.authenticate(token, None, now);
        }
        session
    }

    /// The connection's id (as in `welcome`).
    #[must_use]
    pub fn connection_id(&self) -> String {
        format!("c{:x}-{:08x}", self.conn, self.salt)
    }

    /// The connection's number within the hub.
    #[must_use]
    pub fn conn(&self) -> ConnId {
        self.conn
    }

    /// The connection's user, once known.
    #[must_use]
    pub fn user_id(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Whether `welcome` was sent and the session is not closing.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// Whether the session waits for the answer to an effect it handed out: the driver feeds
    /// no frame meanwhile (timeouts and answers only).
    #[must_use]
    pub fn is_waiting(&self) -> bool {
        self.waiting.is_some()
    }

    /// Whether [`Session::poll_effect`] has an effect to hand out: one queued by a call, or
    /// the next page of pending notifications once another connection of the user on this
    /// node acknowledged the rest of the current one (that connection's ack wakes this one's
    /// driver through its [`Outbox`]).
    #[must_use]
    pub fn has_effects(&self) -> bool {
        !self.effects.is_empty() || self.page_done()
    }

    /// The next effect to carry out, in order.
    #[must_use]
    pub fn poll_effect(&mut self) -> Option<Effect> {
        if self.effects.is_empty() {
            self.next_page_if_done();
        }
        self.effects.pop_front()
    }

    /// When [`Session::handle_timeout`] must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Instant {
        let idle = self.last_inbound + self.ctx.config.heartbeat_interval * 2;
        let next = match self.state {
            State::Authenticating { deadline } => idle.min(deadline),
            _ => idle,
        };
        let next = self.expires_at.map_or(next, |at| next.min(at));
        let recheck = self.pending.as_ref().and_then(|page| page.recheck_at);
        recheck.map_or(next, |at| next.min(at))
    }

    /// Closes the connection for silence or a missing token when their time has come.
    pub fn handle_timeout(&mut self, now: Now) {
        self.outbox.expire_notifications(now.mono);
        if let State::Authenticating { deadline } = self.state
            && now.mono >= deadline
        {
            self.close(close_code::UNAUTHORIZED, "no token before the deadline");
            return;
        }
        if self.state == State::Ready
            && let Some(at) = self.expires_at
            && now.mono >= at
        {
            self.error_code(ErrorCode::Unauthorized, "the token has expired", None, now);
            self.close(close_code::UNAUTHORIZED, "token expired");
            return;
        }
        if self.state != State::Closing
            && now.mono >= self.last_inbound + self.ctx.config.heartbeat_interval * 2
        {
            self.close(close_code::GOING_AWAY, "idle");
            return;
        }
        if self.state == State::Ready
            && let Some(page) = &mut self.pending
            && page.recheck_at.is_some_and(|at| now.mono >= at)
            && let Some(user) = &self.user
        {
            // The page's acks may have been made on another node: the store knows.
            page.recheck_at = None;
            self.effects.push_back(Effect::DeliverPending {
                user_id: user.clone(),
            });
        }
    }

    /// A control frame (WebSocket ping or pong) arrived: the connection is alive.
    pub fn handle_activity(&mut self, now: Now) {
        self.last_inbound = now.mono;
    }

    /// A binary frame arrived on a connection of JSON text: refused with `unsupported_frame`.
    pub fn handle_binary(&mut self, len: usize, now: Now) {
        if !self.inbound(len, now) || !self.admit(None, len, now) {
            return;
        }
        self.error_code(
            ErrorCode::UnsupportedFrame,
            "binary frames are not supported; send JSON text frames",
            None,
            now,
        );
    }

    /// A text frame arrived.
    pub fn handle_text(&mut self, text: &str, now: Now) {
        if !self.inbound(text.len(), now) {
            return;
        }
        self.handle_json(text, text.len(), now);
    }

    /// A binary frame arrived on a connection that selected MessagePack
    /// ([`crate::Encoding::MessagePack`]): it is read as the JSON text it transcodes to.
    ///
    /// The rate limits count the frame's own bytes. A frame that is not the MessagePack form
    /// of a JSON value is answered `invalid_json` (nesting too deep: `validation_failed`), one
    /// whose JSON text would exceed the frame limit `too_large`; the connection stays, as for
    /// text that is not JSON.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use cerebrum_server_core::{broker::MemoryBroker, clock::Now, context::Context, outbox::Outbox, session::Session, Encoding, ServerConfig};
    /// # let now = Now { mono: Instant::now(), unix_ms: 1_700_000_000_000 };
    /// # let ctx = Context::new(ServerConfig::default(), MemoryBroker::new(100, Duration::from_secs(300), 1), false, 7, now)?;
    /// let outbox = Outbox::with_encoding(64, Encoding::MessagePack);
    /// let mut session = Session::new(ctx, outbox.clone(), None, now);
    /// let ping = cerebrum_protocol::json_to_msgpack(r#"{"type":"ping","payload":{"nonce":1}}"#)?;
    /// session.handle_msgpack(&ping, now);
    /// session.handle_msgpack(&[0xc1], now);
    /// let frames = outbox.take_all();
    /// assert!(frames[2].text.as_str().starts_with(r#"{"type":"pong","payload":{"nonce":1}"#));
    /// assert!(frames[3].text.as_str().contains(r#""code":"invalid_json","message":"not valid MessagePack"#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle_msgpack(&mut self, frame: &[u8], now: Now) {
        if !self.inbound(frame.len(), now) {
            return;
        }
        match cerebrum_protocol::msgpack_to_json_within(frame, self.ctx.config.max_frame_bytes) {
            Ok(text) => self.handle_json(&text, frame.len(), now),
            Err(err) => {
                if self.admit(None, frame.len(), now) {
                    self.protocol_error(&ProtocolError::from(err), None, now);
                }
            }
        }
    }

    /// A frame's JSON text, counted already as a frame of `wire_len` bytes: the rate limits,
    /// then the envelope rules, dedupe and dispatch.
    fn handle_json(&mut self, text: &str, wire_len: usize, now: Now) {
        let decoded = decode(text);
        let ref_id = match &decoded {
            Ok(envelope) => envelope.message_id().cloned(),
            Err(err) => probe_message_id(text, err),
        };
        if !self.admit(ref_id.as_ref(), wire_len, now) {
            return;
        }
        let envelope = match decoded {
            Ok(envelope) => envelope,
            Err(err) => {
                self.protocol_error(&err, ref_id, now);
                return;
            }
        };
        if let State::Authenticating { .. } = self.state {
            if envelope.kind() == cerebrum_protocol::Auth::TYPE {
                match envelope.typed::<cerebrum_protocol::Auth>() {
                    Ok(auth) => self.authenticate(&auth.token, ref_id, now),
                    Err(err) => self.protocol_error(&err, ref_id, now),
                }
            } else {
                self.error_code(
                    ErrorCode::Unauthorized,
                    "authenticate first: send an `auth` frame with a token",
                    ref_id,
                    now,
                );
            }
            return;
        }
        let ack = if envelope.ack() { ref_id } else { None };
        // Only frames that ask for an ack are deduplicated (no key to build for the others).
        let Some(id) = ack else {
            self.process(envelope, text.len(), None, String::new(), now);
            return;
        };
        if envelope
            .channel()
            .is_some_and(|channel| self.ctx.hub.is_remote(channel))
        {
            // A publication through the remote broker: its append is idempotent per message
            // id (on every node), which also covers a retry whose first attempt was still in
            // flight when its connection died; a dedupe record here would ack that retry
            // without the publication ever taking effect.
            self.process(envelope, text.len(), Some(id), String::new(), now);
            return;
        }
        let key = self.dedupe_key();
        // This node's record first; a user's key is then claimed cluster-wide too.
        if !self.ctx.dedupe.first_time(&key, id.as_str(), now.mono) {
            // A re-sent duplicate: acknowledged again, not processed twice.
            self.send_ack(id, now);
            return;
        }
        if key.starts_with("u:") && self.ctx.hub.has_remote_broker() {
            // The user's other connections may be on other nodes: the claim is cluster-wide.
            self.effects.push_back(Effect::Claim {
                key: key.clone(),
                id: id.clone(),
            });
            self.waiting = Some(Box::new(Waiting::Claim {
                envelope: Box::new(envelope),
                encoded_len: text.len(),
                ack: id,
                key,
            }));
            return;
        }
        self.process(envelope, text.len(), Some(id), key, now);
    }

    /// Processes a frame that passed the envelope rules and the dedupe check: dispatches it,
    /// then acknowledges it, or answers with an error and forgets its id (so that a retry takes
    /// effect).
    fn process(
        &mut self,
        envelope: Envelope,
        encoded_len: usize,
        ack: Option<MessageId>,
        key: String,
        now: Now,
    ) {
        match self.dispatch(envelope, encoded_len, ack.clone(), &key, now) {
            Ok(Outcome::Done) => {
                if let Some(id) = ack {
                    self.send_ack(id, now);
                }
            }
            Ok(Outcome::Deferred) => {}
            Err(error) => {
                if let Some(id) = &ack {
                    self.forget(&key, id);
                }
                self.send_error(error, now);
            }
        }
    }

    /// Forgets message `id` of dedupe `key` (its frame failed), on this node and, for a user's
    /// key with a remote broker, cluster-wide.
    fn forget(&mut self, key: &str, id: &MessageId) {
        self.ctx.dedupe.forget(key, id.as_str());
        self.unclaim(id);
        if key.starts_with("u:") && self.ctx.hub.has_remote_broker() {
            self.effects.push_back(Effect::Release {
                key: key.to_owned(),
                id: id.clone(),
            });
        }
    }

    /// Takes `id` off the claims under way; `Some(key)` when it was one.
    fn unclaim(&mut self, id: &MessageId) -> Option<String> {
        let claimed = self.claimed.as_mut()?;
        let at = claimed.iter().position(|(claimed, _)| claimed == id)?;
        let (_, key) = claimed.swap_remove(at);
        if claimed.is_empty() {
            self.claimed = None;
        }
        Some(key)
    }

    /// The answer to [`Effect::Claim`]: [`Claimed::Done`] when the message took effect already
    /// (on this node or another); a broker failure lets the node's own window decide (it said
    /// first). Processes the frame that waited, or acknowledges the duplicate; a claim still
    /// in progress elsewhere (the driver stopped asking) is answered `internal`.
    pub fn handle_claimed(&mut self, claimed: Result<Claimed, BrokerError>, now: Now) {
        let Some(waiting) = self
            .waiting
            .take_if(|w| matches!(**w, Waiting::Claim { .. }))
        else {
            return;
        };
        let Waiting::Claim {
            envelope,
            encoded_len,
            ack,
            key,
        } = *waiting
        else {
            return;
        };
        if self.state == State::Closing {
            // Not processed: a retry (on any node) must be.
            self.ctx.dedupe.forget(&key, ack.as_str());
            if matches!(claimed, Ok(Claimed::First)) {
                self.effects.push_back(Effect::Release { key, id: ack });
            }
            return;
        }
        match claimed {
            Ok(Claimed::Done) => self.send_ack(ack, now),
            Ok(Claimed::InProgress) => {
                // Not ours to process, not known to have taken effect.
                self.ctx.dedupe.forget(&key, ack.as_str());
                self.answer_internal(Some(ack), now);
            }
            Ok(Claimed::First) => {
                self.claimed
                    .get_or_insert_with(Box::default)
                    .push((ack.clone(), key.clone()));
                self.process(*envelope, encoded_len, Some(ack), key, now);
            }
            Err(_) => self.process(*envelope, encoded_len, Some(ack), key, now),
        }
    }

    /// The connection is gone: leaves every channel, starts the presence grace period of its
    /// study sessions, releases its per-user slot.
    ///
    /// With a remote broker this queues the effects that give back what the connection held
    /// there ([`Effect::Unwatch`], [`Effect::UncountUser`]): the driver carries them out after.
    pub fn disconnect(&mut self, now: Now) {
        self.state = State::Closing;
        self.outbox.close();
        if let Some(waiting) = self.waiting.take()
            && let Waiting::Replay { channel, .. } = *waiting
        {
            self.ctx
                .hub
                .abort_remote_subscribe(self.conn, &channel, false);
        }
        for channel in std::mem::take(&mut self.channels).0 {
            self.leave(&channel);
        }
        lock(&self.ctx.study).disconnect(self.conn, now.mono);
        if self.pending.take().is_some()
            && let Some(user) = &self.user
        {
            self.ctx.pages.close(user, self.conn);
        }
        if self.user.is_none() {
            self.ctx.dedupe.forget_user(&self.dedupe_key());
        }
        if let Some(user) = self.counted_user.take() {
            self.ctx.user_disconnected(&user);
            if self.ctx.hub.has_remote_broker() {
                self.effects.push_back(Effect::UncountUser { user });
            }
        }
    }

    /// Removes the connection from `channel` in the hub (and gives back its watch of a remote
    /// channel); `false` when it was not subscribed.
    fn leave(&mut self, channel: &str) -> bool {
        let removed = self.ctx.hub.unsubscribe(self.conn, channel);
        if removed && self.ctx.hub.is_remote(channel) {
            self.effects.push_back(Effect::Unwatch {
                channel: channel.to_owned(),
            });
        }
        removed
    }

    /// Queues the `ack` of frame `id` (used by the owner after a deferred effect); a message
    /// claimed cluster-wide has its claim settled.
    pub fn send_ack(&mut self, id: MessageId, now: Now) {
        if let Some(key) = self.unclaim(&id) {
            self.effects.push_back(Effect::Settle {
                key,
                id: id.clone(),
            });
        }
        if let Some(frame) = self.ctx.frame(&Ack { message_id: id }, now) {
            self.push(frame, now);
        }
    }

    /// Queues an `internal` error for frame `ref_id` (a deferred effect failed) and forgets
    /// its dedupe id, so that the client's retry is processed rather than acknowledged as a
    /// duplicate.
    pub fn send_internal_error(&mut self, ref_id: Option<MessageId>, now: Now) {
        if let Some(id) = &ref_id {
            // The id was recorded under the key of the moment the frame arrived: the
            // connection's own before its user was known, the user's after.
            if self.user.is_some() {
                self.forget(&self.dedupe_key(), id);
            }
            self.forget(&format!("c:{}", self.conn), id);
        }
        self.error_code(
            ErrorCode::Internal,
            "the server could not process the message",
            ref_id,
            now,
        );
    }

    /// A page of the user's pending notifications was read ([`Effect::DeliverPending`]):
    /// queues them; once all are acknowledged, on any connection of the user on this node
    /// ([`Session::handle_notification_acked`]), a full page asks for the next one.
    ///
    /// While a page is out, the read is the store's answer to a recheck: the page's
    /// notifications it no longer lists were acknowledged elsewhere (or dropped by retention;
    /// the page's notifications still pending are the oldest, so a page-sized read lists all of
    /// them). Nothing is sent until the whole page is acknowledged; then `page` is the next one.
    pub fn handle_pending_page(&mut self, page: &[cerebrum_protocol::Notification], now: Now) {
        if let Some(open) = self.pending.as_mut() {
            let (before, left) = match self.user.as_deref() {
                Some(user) => self.ctx.pages.retain(user, self.conn, |id| {
                    page.iter().any(|listed| listed.id == id.as_str())
                }),
                None => (0, 0),
            };
            if left > 0 {
                let base = self.ctx.config.pending_recheck;
                open.recheck_after = if left < before {
                    base
                } else {
                    (open.recheck_after * 2).min(base * RECHECK_BACKOFF_MAX)
                };
                open.recheck_at = Some(now.mono + open.recheck_after);
                return;
            }
            self.pending = None;
        }
        let full = page.len() >= self.ctx.config.pending_page();
        let mut unacked = std::collections::HashSet::with_capacity(page.len());
        for notification in page {
            let Ok(id) = MessageId::new(notification.id.clone()) else {
                continue;
            };
            let Ok(envelope) = Envelope::from_payload(notification) else {
                continue;
            };
            let envelope = envelope
                .with_timestamp(now.unix_ms)
                .with_message_id(id.clone());
            self.push(Text::from(encode(&envelope)), now);
            unacked.insert(id);
        }
        // A short page is the last one: nothing waits on its acks. A page none of which could
        // be sent asks for no more (it would come back the same).
        if !full || unacked.is_empty() || self.state == State::Closing {
            // A live delivery of one of its notifications can still come (the store is written
            // before the publication, and a broker may relay it later): it is dropped until
            // then.
            self.outbox
                .settle_notifications(now.mono + NOTIFICATION_REPEAT_WINDOW);
            return;
        }
        let Some(user) = self.user.as_deref() else {
            return;
        };
        let done = self.ctx.pages.open(user, self.conn, &self.outbox, unacked);
        let recheck_after = self.ctx.config.pending_recheck;
        self.pending = Some(Box::new(PendingPage {
            done,
            recheck_at: Some(now.mono + recheck_after),
            recheck_after,
        }));
    }

    /// The user's ack of notification `id` was recorded ([`Effect::AckNotification`]): it
    /// leaves the open page of every connection of the user on this node; when it was the
    /// last of this connection's page, the next page is asked for (the other connections whose
    /// page it completed are woken to do the same).
    pub fn handle_notification_acked(&mut self, id: &MessageId) {
        if let Some(user) = &self.user {
            self.ctx.pages.acked(user, id);
        }
        self.next_page_if_done();
    }

    /// Whether the open page was acknowledged in full (here or on another connection).
    fn page_done(&self) -> bool {
        self.pending
            .as_ref()
            .is_some_and(|page| page.done.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Asks for the next page of pending notifications when the open one was acknowledged in
    /// full.
    fn next_page_if_done(&mut self) {
        if !self.page_done() {
            return;
        }
        self.pending = None;
        if self.state != State::Closing
            && let Some(user) = &self.user
        {
            self.effects.push_back(Effect::DeliverPending {
                user_id: user.clone(),
            });
        }
    }

    /// The write of a study session that `study_session_end` ended failed
    /// ([`Effect::FinishStudy`]): the session is taken back (the user studies on, on this
    /// connection, from the same start) so that the retry records it, and frame `ack` gets
    /// `internal`.
    pub fn study_end_failed(&mut self, finished: &FinishedStudy, ack: Option<MessageId>, now: Now) {
        let name = self.display_name(&finished.user_id);
        let restored = lock(&self.ctx.study).restore(self.conn, finished, &name);
        if let Some(participant) = restored {
            let channel = &finished.channel;
            self.presence_join(channel, participant);
            if self.state != State::Closing {
                self.join_silently(channel);
            }
            self.session_update(channel, &finished.topic, now);
        }
        self.send_internal_error(ack, now);
    }

    /// Queues a frame.
    pub fn push(&mut self, frame: Text, now: Now) {
        self.outbox.push(frame, now.mono);
    }

    // ----- internals -----

    fn inbound(&mut self, len: usize, now: Now) -> bool {
        if self.state == State::Closing {
            return false;
        }
        let metrics = &self.ctx.metrics;
        metrics
            .frames_received
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics
            .bytes_received
            .fetch_add(len as u64, std::sync::atomic::Ordering::Relaxed);
        self.last_inbound = now.mono;
        true
    }

    /// The rate limits (frames and bytes per second): `false` when the frame of `len` bytes
    /// was refused (and maybe the connection closed).
    fn admit(&mut self, ref_id: Option<&MessageId>, len: usize, now: Now) -> bool {
        let message = if !self.bucket.try_take(now.mono) {
            "too many messages; slow down"
        } else if !self.bytes.try_take_n(len as f64, now.mono) {
            "too many bytes per second; slow down"
        } else {
            return true;
        };
        self.ctx
            .metrics
            .rate_limited
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.error_code(ErrorCode::RateLimited, message, ref_id.cloned(), now);
        let config = &self.ctx.config;
        let abuse = self.abuse.get_or_insert_with(|| {
            Box::new(AbuseCounter::new(config.abuse_limit, config.abuse_window))
        });
        if abuse.hit(now.mono) {
            self.close(close_code::POLICY, "rate limit exceeded repeatedly");
        }
        false
    }

    fn close(&mut self, code: u16, reason: &'static str) {
        if self.state != State::Closing {
            self.state = State::Closing;
            self.effects.push_back(Effect::Close { code, reason });
        }
    }

    fn dedupe_key(&self) -> String {
        match &self.user {
            Some(user) => format!("u:{user}"),
            None => format!("c:{}", self.conn),
        }
    }

    fn authenticate(&mut self, token: &str, ref_id: Option<MessageId>, now: Now) {
        let Some(verifier) = &self.ctx.verifier else {
            return;
        };
        match verifier.verify(token, now.unix_ms / 1000) {
            Ok(claims) => {
                if let State::Authenticating { .. } = self.state {
                    if self.ctx.hub.has_remote_broker() {
                        // The user's connections on every node count.
                        self.effects.push_back(Effect::CountUser {
                            user: claims.sub.clone(),
                            limit: self.ctx.config.max_connections_per_user,
                        });
                        self.waiting = Some(Box::new(Waiting::Count {
                            claims: Box::new(claims),
                        }));
                        return;
                    }
                    if !self.ctx.user_connected(&claims.sub, true) {
                        self.close(
                            close_code::TOO_MANY_CONNECTIONS,
                            "too many connections for this user",
                        );
                        return;
                    }
                    self.admit_user(claims, now);
                } else if self.claims.as_ref().is_some_and(|c| c.sub == claims.sub) {
                    // A fresh token of the same user extends the connection's life.
                    self.expires_at = Some(expiry(claims.exp, now));
                    self.claims = Some(Box::new(claims));
                    if let Some(id) = ref_id {
                        self.send_ack(id, now);
                    }
                } else {
                    self.error_code(
                        ErrorCode::Forbidden,
                        "a connection cannot change its user",
                        ref_id,
                        now,
                    );
                }
            }
            Err(err) => {
                let message = match err {
                    AuthError::Expired => "the token has expired",
                    _ => "the token is not valid",
                };
                self.error_code(ErrorCode::Unauthorized, message, ref_id, now);
                self.close(close_code::UNAUTHORIZED, "unauthorized");
            }
        }
    }

    /// The token was valid and the user's connection counted: `welcome`.
    fn admit_user(&mut self, claims: Claims, now: Now) {
        self.counted_user = Some(claims.sub.clone());
        self.expires_at = Some(expiry(claims.exp, now));
        self.claims = Some(Box::new(claims));
        self.welcome(now);
    }

    /// The answer to [`Effect::CountUser`]: admits the connection, or closes it with 4029
    /// when the user has too many on every node together. When the broker could not count,
    /// the node's own count decides.
    pub fn handle_user_counted(&mut self, admitted: Result<bool, BrokerError>, now: Now) {
        let Some(waiting) = self
            .waiting
            .take_if(|w| matches!(**w, Waiting::Count { .. }))
        else {
            return;
        };
        let Waiting::Count { claims } = *waiting else {
            return;
        };
        if self.state == State::Closing {
            if matches!(admitted, Ok(true)) {
                self.effects
                    .push_back(Effect::UncountUser { user: claims.sub });
            }
            return;
        }
        let admitted = match admitted {
            Ok(admitted) => admitted && self.ctx.user_connected(&claims.sub, false),
            Err(_) => self.ctx.user_connected(&claims.sub, true),
        };
        if admitted {
            self.admit_user(*claims, now);
        } else {
            self.close(
                close_code::TOO_MANY_CONNECTIONS,
                "too many connections for this user",
            );
        }
    }

    fn welcome(&mut self, now: Now) {
        self.state = State::Ready;
        let welcome = Welcome {
            connection_id: self.connection_id(),
            user_id: self.claims.as_ref().map(|c| c.sub.clone()),
            protocol: PROTOCOL_VERSION,
            heartbeat_interval_ms: u64::try_from(self.ctx.config.heartbeat_interval.as_millis())
                .unwrap_or(u64::MAX),
            features: features::ALL.iter().map(|f| (*f).to_owned()).collect(),
            server_time: now.unix_ms,
        };
        if let Some(frame) = self.ctx.frame(&welcome, now) {
            self.push(frame, now);
        }
        let status = self.ctx.status();
        if let Some(frame) = self.ctx.frame(&status, now) {
            self.push(frame, now);
        }
        self.join_silently(SYSTEM_CHANNEL);
        if let Some(sub) = self.claims.as_ref().map(|c| c.sub.clone()) {
            self.bind_user(&sub);
        }
    }

    /// Subscribes to an automatic channel; a broker failure is logged (the client sees the
    /// node's `degraded` status) and the connection goes on without the channel.
    fn join_silently(&mut self, channel: &str) {
        let watch = self
            .ctx
            .hub
            .subscribe_silently(self.conn, &self.outbox, channel);
        self.channels.insert(channel);
        if watch {
            self.effects.push_back(Effect::Watch {
                channel: channel.to_owned(),
            });
        }
    }

    /// The answer to a failed [`Effect::Watch`]: the remote broker could not be asked for the
    /// channel's publications, so the connection goes on without the channel (the client sees
    /// the node's `degraded` status).
    pub fn handle_watch_failed(&mut self, channel: &str) {
        tracing::warn!(channel, "could not subscribe to an automatic channel");
        if self.channels.remove(channel) {
            // Not watched: nothing to give back.
            self.ctx.hub.unsubscribe(self.conn, channel);
        }
    }

    /// Adds `participant` to the presence of a study session: in the memory broker, or as an
    /// effect for the remote one.
    fn presence_join(&mut self, channel: &str, participant: Participant) {
        if self.ctx.hub.is_remote(channel) {
            self.effects.push_back(Effect::PresenceJoin {
                channel: channel.to_owned(),
                participant,
            });
        } else {
            self.ctx.hub.memory().presence_join(channel, participant);
        }
    }

    /// Publishes the `collaborative_session_update` of `channel`: at once from the memory
    /// broker's presence, or as an effect that reads the remote one's.
    fn session_update(&mut self, channel: &str, topic: &str, now: Now) {
        if self.ctx.hub.is_remote(channel) {
            self.effects.push_back(Effect::SessionUpdate {
                channel: channel.to_owned(),
                topic: topic.to_owned(),
            });
        } else {
            self.ctx.publish_session_update(channel, topic, now);
        }
    }

    /// The connection's user became known: its channel, its sessions in their grace period,
    /// its pending notifications.
    fn bind_user(&mut self, user: &str) {
        if self.user.is_some() {
            return;
        }
        self.user = Some(user.to_owned());
        // From here until the pending pages are read, a notification is queued once.
        self.outbox.watch_notifications();
        if let Ok(channel) = user_channel(user) {
            self.join_silently(&channel);
        }
        let back = lock(&self.ctx.study).reattach(self.conn, user);
        for channel in back {
            self.join_silently(&channel);
        }
        self.effects.push_back(Effect::DeliverPending {
            user_id: user.to_owned(),
        });
    }

    /// The channels that count toward the per-connection cap: all but `system` and the user's
    /// own channel, which every connection is on.
    fn counted_channels(&self) -> usize {
        let own = self
            .user
            .as_deref()
            .and_then(|user| user_channel(user).ok())
            .is_some_and(|channel| self.channels.contains(&channel));
        let system = self.channels.contains(SYSTEM_CHANNEL);
        self.channels.len() - usize::from(own) - usize::from(system)
    }

    fn principal(&self) -> Principal<'_> {
        Principal {
            auth_on: self.ctx.auth_enabled(),
            claims: self.claims.as_deref(),
            user: self.user.as_deref(),
        }
    }

    /// With auth on, a payload `userId` must be `sub`; with auth off the first one names the
    /// connection's user.
    fn check_user(&mut self, user_id: &str) -> Result<(), ErrorPayload> {
        if let Some(claims) = &self.claims {
            if claims.sub != user_id {
                return Err(error(
                    ErrorCode::Forbidden,
                    "`userId` is not the authenticated user",
                ));
            }
        } else if !self.ctx.auth_enabled() {
            self.bind_user(user_id);
        }
        Ok(())
    }

    fn dispatch(
        &mut self,
        envelope: Envelope,
        encoded_len: usize,
        ack: Option<MessageId>,
        key: &str,
        now: Now,
    ) -> Result<Outcome, ErrorPayload> {
        let ref_id = envelope.message_id().cloned();
        let with_ref = |mut e: ErrorPayload| {
            e.ref_id.clone_from(&ref_id);
            e
        };
        if envelope.kind() == cerebrum_protocol::Ping::TYPE {
            // The payload is echoed byte for byte.
            let pong = Envelope::new("pong", envelope.payload().to_owned())
                .map_err(|e| protocol(&e, ref_id.clone()))?
                .stamped(&self.ctx.ids, now.unix_ms);
            self.push(Text::from(encode(&pong)), now);
            return Ok(Outcome::Done);
        }
        if envelope.channel().is_some() && is_server_type(envelope.kind()) {
            return Err(with_ref(error(
                ErrorCode::Forbidden,
                &format!(
                    "`{}` is a server message type; only the server sends it",
                    envelope.kind()
                ),
            )));
        }
        // An app's own type keeps its envelope, uncopied, for the publication.
        let message = ClientMessage::from_owned_envelope(envelope)
            .map_err(|e| protocol(&e, ref_id.clone()))?;
        match message {
            ClientMessage::StudySessionStart(start) => self
                .study_start(&start, ack, ref_id.clone(), key, now)
                .map_err(with_ref),
            ClientMessage::StudySessionEnd(end) => {
                self.study_end(&end, ack, now).map_err(with_ref)?;
                Ok(Outcome::Deferred)
            }
            ClientMessage::Subscribe(subscribe) => self
                .subscribe(&subscribe, ack, ref_id.clone(), key, now)
                .map_err(with_ref),
            ClientMessage::Unsubscribe(unsubscribe) => {
                self.unsubscribe(&unsubscribe, now).map_err(with_ref)?;
                Ok(Outcome::Done)
            }
            ClientMessage::Auth(auth) => {
                if self.ctx.auth_enabled() {
                    self.authenticate(&auth.token, None, now);
                }
                Ok(Outcome::Done)
            }
            ClientMessage::Ack(client_ack) => match &self.user {
                Some(user) => {
                    self.effects.push_back(Effect::AckNotification {
                        user_id: user.clone(),
                        notification_id: client_ack.message_id,
                        ack,
                    });
                    Ok(Outcome::Deferred)
                }
                None => Ok(Outcome::Done),
            },
            ClientMessage::Ping(_) => Ok(Outcome::Done),
            ClientMessage::Other(envelope) => match envelope.channel() {
                Some(channel) => {
                    let channel = channel.to_owned();
                    self.publish(&channel, envelope, encoded_len, ack, now)
                        .map_err(with_ref)
                }
                None => Err(with_ref(error(
                    ErrorCode::UnknownType,
                    &format!(
                        "unknown message type `{}` (app messages need a `channel`)",
                        envelope.kind()
                    ),
                ))),
            },
            // Every known client type is handled above.
            other => Err(with_ref(error(
                ErrorCode::UnknownType,
                &format!("`{}` is not handled by this server", other.kind()),
            ))),
        }
    }

    fn study_start(
        &mut self,
        start: &StudySessionStart,
        ack: Option<MessageId>,
        ref_id: Option<MessageId>,
        key: &str,
        now: Now,
    ) -> Result<Outcome, ErrorPayload> {
        self.check_user(&start.user_id)?;
        let channel = session_channel(&start.topic).map_err(|e| protocol(&e, None))?;
        let name = self.display_name(&start.user_id);
        let participant = {
            let mut study = lock(&self.ctx.study);
            let cap = self.ctx.config.max_study_sessions_per_user;
            if !study.is_member(&start.user_id, &channel)
                && study.sessions_of(&start.user_id) >= cap
            {
                return Err(error(
                    ErrorCode::LimitExceeded,
                    &format!("too many study sessions at once for this user (the cap is {cap})"),
                ));
            }
            let joined = study.start(
                self.conn,
                &start.user_id,
                &name,
                &start.topic,
                &channel,
                now,
            );
            match joined {
                Joined::New => study.participant(&start.user_id, &channel).cloned(),
                _ => None,
            }
        };
        if let Some(participant) = participant {
            if self.ctx.hub.is_remote(&channel) {
                // The member is announced before anyone is told: the rest waits for the answer.
                let joined_at = participant.joined_at;
                self.effects.push_back(Effect::PresenceJoin {
                    channel: channel.clone(),
                    participant,
                });
                self.waiting = Some(Box::new(Waiting::StudyJoin {
                    channel,
                    topic: start.topic.clone(),
                    user_id: start.user_id.clone(),
                    joined_at,
                    ack,
                    ref_id,
                    key: key.to_owned(),
                }));
                return Ok(Outcome::Deferred);
            }
            self.ctx.hub.memory().presence_join(&channel, participant);
        }
        self.study_joined(&channel, &start.topic, &start.user_id, now);
        Ok(Outcome::Done)
    }

    /// A study session's member is in its presence: joins its channel, tells its members,
    /// publishes the user's metrics with `currentTopic`.
    fn study_joined(&mut self, channel: &str, topic: &str, user_id: &str, now: Now) {
        self.join_silently(channel);
        self.session_update(channel, topic, now);
        self.effects.push_back(Effect::StudyStarted {
            user_id: user_id.to_owned(),
            topic: topic.to_owned(),
        });
    }

    /// The answer to [`Effect::PresenceJoin`]: a study session that waited for it goes on
    /// (and its frame is acknowledged); when the broker failed, the start is undone and the
    /// frame answered with `internal`. (A presence restored after a failed end waits for
    /// nothing: a failure is only logged.)
    pub fn handle_presence_joined(&mut self, joined: Result<(), BrokerError>, now: Now) {
        let Some(waiting) = self
            .waiting
            .take_if(|w| matches!(**w, Waiting::StudyJoin { .. }))
        else {
            if let Err(err) = joined {
                tracing::warn!(%err, "could not restore a study session's presence");
            }
            return;
        };
        let Waiting::StudyJoin {
            channel,
            topic,
            user_id,
            joined_at,
            ack,
            ref_id,
            key,
        } = *waiting
        else {
            return;
        };
        let current = lock(&self.ctx.study)
            .participant(&user_id, &channel)
            .cloned();
        if joined.is_ok() && current.as_ref().is_none_or(|p| p.joined_at != joined_at) {
            // Ended meanwhile from another connection of the user (which may have started a
            // newer session since, whose join this one overwrote): the broker is given the
            // tracker's state again, and the start, which took effect, is acknowledged.
            match current {
                Some(participant) => self.effects.push_back(Effect::PresenceJoin {
                    channel,
                    participant,
                }),
                None => self.effects.push_back(Effect::PresenceLeave {
                    channel,
                    user_id,
                    joined_at,
                }),
            }
            if let Some(id) = ack
                && self.state != State::Closing
            {
                self.send_ack(id, now);
            }
            return;
        }
        match joined {
            Ok(()) if self.state != State::Closing => {
                self.study_joined(&channel, &topic, &user_id, now);
                if let Some(id) = ack {
                    self.send_ack(id, now);
                }
            }
            Ok(()) => {}
            Err(err) => {
                tracing::warn!(%err, channel, "could not announce a study session's member");
                // Not a member after all: a retry starts afresh (and is announced then). The
                // broker may keep the member for its refreshes: it is told to forget it.
                let undone = lock(&self.ctx.study).end(&user_id, &channel, now);
                if let Some(undone) = undone {
                    self.effects.push_back(Effect::PresenceLeave {
                        channel: channel.clone(),
                        user_id: user_id.clone(),
                        joined_at: undone.started_ms,
                    });
                }
                if let Some(id) = &ack {
                    self.forget(&key, id);
                }
                self.answer_internal(ref_id, now);
            }
        }
    }

    /// Queues `internal` for frame `ref_id`.
    fn answer_internal(&mut self, ref_id: Option<MessageId>, now: Now) {
        let mut payload = internal();
        payload.ref_id = ref_id;
        self.send_error(payload, now);
    }

    /// The name `user_id` is shown with in presence: the token's `name`, else the id.
    fn display_name(&self, user_id: &str) -> String {
        let name = self
            .claims
            .as_ref()
            .and_then(|c| c.name.as_deref())
            .unwrap_or(user_id);
        // Bounded, so that a presence update listing 100 members stays under the frame limit.
        name.chars()
            .take(cerebrum_protocol::MAX_USER_NAME_LEN)
            .collect()
    }

    fn study_end(
        &mut self,
        end: &StudySessionEnd,
        ack: Option<MessageId>,
        now: Now,
    ) -> Result<(), ErrorPayload> {
        self.check_user(&end.user_id)?;
        let channel = session_channel(&end.topic).map_err(|e| protocol(&e, None))?;
        let finished = lock(&self.ctx.study).end(&end.user_id, &channel, now);
        if let Some(finished) = &finished {
            if self.ctx.hub.is_remote(&channel) {
                self.effects.push_back(Effect::PresenceLeave {
                    channel: channel.clone(),
                    user_id: end.user_id.clone(),
                    joined_at: finished.started_ms,
                });
            } else {
                self.ctx.hub.memory().presence_leave(&channel, &end.user_id);
            }
            if self.channels.remove(&channel) {
                self.leave(&channel);
            }
            self.session_update(&channel, &finished.topic, now);
        }
        self.effects.push_back(Effect::FinishStudy {
            user_id: end.user_id.clone(),
            finished,
            ack,
        });
        Ok(())
    }

    fn subscribe(
        &mut self,
        subscribe: &Subscribe,
        ack: Option<MessageId>,
        ref_id: Option<MessageId>,
        key: &str,
        now: Now,
    ) -> Result<Outcome, ErrorPayload> {
        let channel = subscribe.channel.as_str();
        if !self.principal().may_subscribe(channel) {
            return Err(error(
                ErrorCode::Forbidden,
                "not allowed to subscribe to this channel",
            ));
        }
        let cap = self.ctx.config.max_channels_per_connection;
        if !self.channels.contains(channel) && self.counted_channels() >= cap {
            return Err(error(
                ErrorCode::LimitExceeded,
                &format!("too many channels on this connection (the cap is {cap})"),
            ));
        }
        if let Namespace::User(user) = Namespace::of(channel)
            && self.user.is_none()
        {
            let user = user.to_owned();
            self.bind_user(&user);
        }
        if self.ctx.hub.is_remote(channel) {
            let watch = self.ctx.hub.begin_remote_subscribe(self.conn, channel);
            self.effects.push_back(Effect::Replay {
                channel: channel.to_owned(),
                since: subscribe.since.clone(),
                watch,
            });
            self.waiting = Some(Box::new(Waiting::Replay {
                channel: channel.to_owned(),
                ack,
                ref_id,
                key: key.to_owned(),
            }));
            return Ok(Outcome::Deferred);
        }
        self.ctx
            .hub
            .subscribe(
                self.conn,
                &self.outbox,
                channel,
                subscribe.since.as_ref(),
                now,
            )
            .map_err(|_| internal())?;
        self.channels.insert(channel);
        Ok(Outcome::Done)
    }

    /// The answer to [`Effect::Replay`] (`watched`: whether the broker counts a watch of the
    /// channel for this connection now): queues `subscribed`, the replay and what arrived
    /// meanwhile, and acknowledges the frame; or answers `internal` when the broker failed.
    pub fn handle_replay(&mut self, replay: Result<Replay, BrokerError>, watched: bool, now: Now) {
        let Some(waiting) = self
            .waiting
            .take_if(|w| matches!(**w, Waiting::Replay { .. }))
        else {
            return;
        };
        let Waiting::Replay {
            channel,
            ack,
            ref_id,
            key,
        } = *waiting
        else {
            return;
        };
        let hub = &self.ctx.hub;
        let done = match replay {
            Ok(replay) if self.state != State::Closing => hub
                .finish_remote_subscribe(self.conn, &self.outbox, &channel, &replay, now)
                .is_ok(),
            _ => false,
        };
        if done {
            self.channels.insert(&channel);
            if let Some(id) = ack {
                self.send_ack(id, now);
            }
            return;
        }
        if hub.abort_remote_subscribe(self.conn, &channel, watched) {
            self.effects.push_back(Effect::Unwatch {
                channel: channel.clone(),
            });
        }
        if self.state == State::Closing {
            return;
        }
        if let Some(id) = &ack {
            self.forget(&key, id);
        }
        self.answer_internal(ref_id, now);
    }

    fn unsubscribe(&mut self, unsubscribe: &Unsubscribe, now: Now) -> Result<(), ErrorPayload> {
        let channel = unsubscribe.channel.as_str();
        if channel == SYSTEM_CHANNEL {
            return Err(error(
                ErrorCode::Forbidden,
                "the `system` channel cannot be left",
            ));
        }
        if !self.channels.remove(channel) || !self.leave(channel) {
            return Err(error(
                ErrorCode::NotSubscribed,
                "not subscribed to this channel",
            ));
        }
        let done = Unsubscribed {
            channel: channel.to_owned(),
        };
        if let Some(frame) = self.ctx.frame(&done, now) {
            self.push(frame, now);
        }
        Ok(())
    }

    fn publish(
        &mut self,
        channel: &str,
        envelope: Envelope,
        encoded_len: usize,
        ack: Option<MessageId>,
        now: Now,
    ) -> Result<Outcome, ErrorPayload> {
        if !self.principal().may_publish(channel) {
            return Err(error(
                ErrorCode::Forbidden,
                "not allowed to publish to this channel",
            ));
        }
        if !self.channels.contains(channel) {
            return Err(error(
                ErrorCode::NotSubscribed,
                "subscribe to the channel before publishing to it",
            ));
        }
        if let Some(claims) = &self.claims
            && let Ok(probe) = serde_json::from_str::<UserIdProbe>(envelope.payload().get())
            && probe
                .user_id
                .is_some_and(|id| id.as_str() != Some(claims.sub.as_str()))
        {
            return Err(error(
                ErrorCode::Forbidden,
                "`userId` is not the authenticated user",
            ));
        }
        if delivered_len_bound(&envelope, encoded_len) > self.ctx.config.max_frame_bytes {
            return Err(error(
                ErrorCode::TooLarge,
                "the publication would be larger than 64 KiB once delivered",
            ));
        }
        let mut publication = envelope.with_ack(false);
        if publication.timestamp().is_none() {
            publication = publication.with_timestamp(now.unix_ms);
        }
        if publication.message_id().is_none() {
            publication = publication.with_message_id(self.ctx.ids.next(now.unix_ms));
        }
        if self.ctx.hub.is_remote(channel) {
            // Through the network: the owner awaits the broker, then acks (or answers
            // `internal`), before it reads the connection's next frame.
            self.effects.push_back(Effect::Publish {
                channel: channel.to_owned(),
                envelope: Box::new(publication),
                ack,
            });
            return Ok(Outcome::Deferred);
        }
        self.ctx
            .hub
            .publish(channel, publication, now)
            .map_err(|_| internal())?;
        Ok(Outcome::Done)
    }

    fn protocol_error(&mut self, err: &ProtocolError, ref_id: Option<MessageId>, now: Now) {
        self.send_error(protocol(err, ref_id), now);
    }

    fn error_code(&mut self, code: ErrorCode, message: &str, ref_id: Option<MessageId>, now: Now) {
        let mut payload = error(code, message);
        payload.ref_id = ref_id;
        self.send_error(payload, now);
    }

    fn send_error(&mut self, payload: ErrorPayload, now: Now) {
        self.ctx.metrics.error(&payload.code);
        if let Some(frame) = self.ctx.frame(&payload, now) {
            self.push(frame, now);
        }
    }
}

/// The channels of one connection: a sorted vector (a connection has a handful; a `BTreeSet`
/// would cost a 288-byte node per idle connection).
#[derive(Debug, Default)]
struct ChannelSet(Vec<Box<str>>);

impl ChannelSet {
    fn insert(&mut self, channel: &str) {
        if let Err(at) = self.0.binary_search_by(|c| (**c).cmp(channel)) {
            self.0.insert(at, channel.into());
        }
    }

    fn remove(&mut self, channel: &str) -> bool {
        match self.0.binary_search_by(|c| (**c).cmp(channel)) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    fn contains(&self, channel: &str) -> bool {
        self.0.binary_search_by(|c| (**c).cmp(channel)).is_ok()
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// The monotonic instant at which a token with `exp` (seconds since the Unix epoch) expires.
fn expiry(exp: u64, now: Now) -> Instant {
    let left_ms = exp.saturating_mul(1000).saturating_sub(now.unix_ms);
    now.mono + std::time::Duration::from_millis(left_ms)
}

/// An upper bound of the length of `envelope` (received as `encoded_len` bytes) once delivered:
/// the server adds `messageId` when absent and always `offset`, and writes `timestamp` anew
/// (a received `1e15` comes out as 16 digits), so its full length is allowed for whether or not
/// the frame had one.
fn delivered_len_bound(envelope: &Envelope, encoded_len: usize) -> usize {
    const TIMESTAMP: usize = ",\"timestamp\":".len() + 20;
    const MESSAGE_ID: usize = ",\"messageId\":\"\"".len() + 26;
    const OFFSET: usize = ",\"offset\":".len() + 20;
    let mut len = encoded_len + OFFSET + TIMESTAMP;
    if envelope.message_id().is_none() {
        len += MESSAGE_ID;
    }
    len
}

/// The `messageId` of a frame the envelope rules refused, when it has a well-formed one (so
/// that its `error` carries it as `refId`).
fn probe_message_id(text: &str, err: &ProtocolError) -> Option<MessageId> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "messageId", default)]
        message_id: Option<serde_json::Value>,
    }
    if !matches!(
        err,
        ProtocolError::InvalidEnvelope { .. }
            | ProtocolError::MissingType
            | ProtocolError::Validation { .. }
    ) {
        return None;
    }
    let probe: Probe = serde_json::from_str(text).ok()?;
    MessageId::new(probe.message_id?.as_str()?).ok()
}

fn error(code: ErrorCode, message: &str) -> ErrorPayload {
    ErrorPayload {
        code,
        message: message.to_owned(),
        ref_id: None,
    }
}

fn protocol(err: &ProtocolError, ref_id: Option<MessageId>) -> ErrorPayload {
    ErrorPayload::from_protocol_error(err, ref_id)
}

fn internal() -> ErrorPayload {
    error(
        ErrorCode::Internal,
        "the server could not process the message",
    )
}

#[cfg(test)]
mod tests;
