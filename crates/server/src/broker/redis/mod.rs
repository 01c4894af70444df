//! The Redis broker: several server processes act as one.
//!
//! | what | where in Redis |
//! |---|---|
//! | offsets and epoch of channel `C` | hash `cerebrum:{C}:meta` (`epoch`, `offset`), expires with the history TTL |
//! | history | stream `cerebrum:{C}:hist`, `XADD … MAXLEN ~ history_size`, entry id `OFFSET-1` |
//! | fan-out | pub/sub channel `cerebrum:{C}` (sharded `SPUBLISH`/`SSUBSCRIBE` on Redis 7+), message `EPOCH OFFSET FRAME` |
//! | presence | hash `cerebrum:{C}:presence`, one entry per user with its own expiry, refreshed by the owning node |
//! | dedupe | `cerebrum:dedupe:{USER}:ID`: `pending` while its effect is under way (claim script), `done` for the window once settled; publications also per channel: sorted set `cerebrum:{C}:ids` (message id → time, pruned to the window) checked by the append script |
//! | connections per user | hash `cerebrum:user:{USER}:conns`, one `COUNT:EXPIRES` field per node |
//!
//! A publication gets its offset, enters the history and is published in **one** Lua script,
//! so every node receives a channel's publications in offset order. Each node holds one
//! Redis subscription per channel with local subscribers (the sessions ask through
//! [`FanOut::watch`]/[`FanOut::unwatch`]) and hands what arrives to the hub, which queues the
//! same bytes to every local subscriber.
//!
//! Every call is asynchronous, on one multiplexed connection (concurrent calls pipeline), and
//! bounded by the op timeout: nothing blocks a runtime thread. When Redis cannot be reached
//! the calls fail fast with [`BrokerError::Unavailable`], the node reports itself `degraded`,
//! keeps its connections, and reconnects with backoff.

mod pubsub;
mod scripts;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cerebrum_protocol::{Envelope, Participant, StreamPosition, encode};
use cerebrum_server_core::Text;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Value};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use self::pubsub::Ctl;
use self::scripts::Scripts;
use crate::broker::{
    BrokerError, BrokerEvent, Claimed, ClusterLimits, DeliverFn, FanOut, Health, History, Presence,
    Publication, Replay,
};
use cerebrum_server_core::outbox::lock;
use cerebrum_server_core::redact_password;

/// The offset written into a frame before the script replaces it with the real one.
const OFFSET_MARK: u64 = u64::MAX;

/// Settings of the Redis broker. Its `Debug` hides the URL's password.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Publications kept per channel.
    pub history_size: usize,
    /// How long a channel's history (and its epoch) lives after its last use.
    pub history_ttl: Duration,
    /// How long a presence entry lives unless its node refreshes it (30 s).
    pub presence_ttl: Duration,
    /// How often a node refreshes its members' presence and connection counts (10 s).
    pub presence_refresh: Duration,
    /// Longest wait for one Redis call before it counts as a failure (2 s).
    pub op_timeout: Duration,
    /// How long a publication's message id is remembered per channel, so that a retry is not
    /// appended twice (the server's dedupe window).
    pub dedupe_window: Duration,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_password(&self.url))
            .field("history_size", &self.history_size)
            .field("history_ttl", &self.history_ttl)
            .field("presence_ttl", &self.presence_ttl)
            .field("presence_refresh", &self.presence_refresh)
            .field("op_timeout", &self.op_timeout)
            .field("dedupe_window", &self.dedupe_window)
            .finish()
    }
}

impl RedisConfig {
    /// The defaults for `url`.
    ///
    /// ```
    /// let config = cerebrum_server::redis_broker::RedisConfig::new("redis://127.0.0.1:6379");
    /// assert_eq!(config.presence_ttl.as_secs(), 30);
    /// ```
    #[must_use]
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            history_size: 100,
            history_ttl: Duration::from_secs(300),
            presence_ttl: Duration::from_secs(30),
            presence_refresh: Duration::from_secs(10),
            op_timeout: Duration::from_secs(2),
            dedupe_window: Duration::from_secs(300),
        }
    }
}

/// A Redis broker could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisSetupError {
    /// The URL is not a Redis URL.
    #[error("bad Redis URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given, its password replaced by `***` (errors end up in logs).
        url: String,
        /// Why it was refused.
        reason: String,
    },
}

/// One presence entry as stored (expiry first: the expiry script reads it with a pattern).
#[derive(Debug, Serialize, Deserialize)]
struct PresenceEntry {
    expires: u64,
    node: String,
    participant: Participant,
}

/// What the node's tasks share.
pub(crate) struct Inner {
    config: RedisConfig,
    node: String,
    commands: ConnectionManager,
    pubsub_client: redis::Client,
    sharded: bool,
    scripts: Scripts,
    commands_up: AtomicBool,
    pubsub_up: AtomicBool,
    ctl: mpsc::UnboundedSender<Ctl>,
    sink: OnceLock<DeliverFn>,
    /// The members this node announced, refreshed until they leave.
    members: Mutex<HashMap<(String, String), Participant>>,
    /// Connections per user on this node.
    users: Mutex<HashMap<String, usize>>,
}

/// The broker of a node in a group of servers sharing one Redis.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use cerebrum_server::redis_broker::{RedisBroker, RedisConfig};
/// let broker = RedisBroker::connect(RedisConfig::new("redis://127.0.0.1:6379")).await?;
/// # let _ = broker;
/// # Ok(())
/// # }
/// ```
pub struct RedisBroker {
    inner: Arc<Inner>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker")
            .field("node", &self.inner.node)
            .field("sharded", &self.inner.sharded)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisBroker {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The pub/sub channel (and hash tag) of a cerebrum channel.
pub(crate) fn channel_key(channel: &str) -> String {
    format!("cerebrum:{{{channel}}}")
}

fn meta_key(channel: &str) -> String {
    format!("cerebrum:{{{channel}}}:meta")
}

fn hist_key(channel: &str) -> String {
    format!("cerebrum:{{{channel}}}:hist")
}

fn ids_key(channel: &str) -> String {
    format!("cerebrum:{{{channel}}}:ids")
}

fn presence_key(channel: &str) -> String {
    format!("cerebrum:{{{channel}}}:presence")
}

fn users_key(user: &str) -> String {
    format!("cerebrum:user:{{{user}}}:conns")
}

fn unix_ms() -> u64 {
    crate::clock::unix_ms()
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn new_epoch() -> String {
    format!("{:016x}", fastrand::u64(..))
}

impl RedisBroker {
    /// Connects to Redis (lazily: an unreachable Redis leaves the node `degraded` and retried
    /// with backoff, not failed) and starts the node's pub/sub link and refresh task.
    pub async fn connect(config: RedisConfig) -> Result<Self, RedisSetupError> {
        let bad = |reason: String| RedisSetupError::BadUrl {
            url: redact_password(&config.url),
            reason,
        };
        let client = redis::Client::open(config.url.as_str()).map_err(|e| bad(e.to_string()))?;
        let info = client.get_connection_info().clone();
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let pubsub_client =
            redis::Client::open(info.set_redis_settings(resp3)).map_err(|e| bad(e.to_string()))?;
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(config.op_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let commands = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
            .map_err(|e| bad(e.to_string()))?;
        let sharded = supports_sharded_pubsub(&commands).await;
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let (delivery_tx, mut delivery_rx) = mpsc::unbounded_channel::<BrokerEvent>();
        let inner = Arc::new(Inner {
            node: format!("{:08x}", fastrand::u32(..)),
            commands,
            pubsub_client,
            sharded,
            scripts: Scripts::new(),
            commands_up: AtomicBool::new(true),
            pubsub_up: AtomicBool::new(false),
            ctl: ctl_tx,
            sink: OnceLock::new(),
            members: Mutex::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
            config,
        });
        tracing::info!(node = %inner.node, sharded, "Redis broker started");
        let link = tokio::spawn(pubsub::run(inner.clone(), ctl_rx, delivery_tx));
        let dispatch_inner = inner.clone();
        let dispatch = tokio::spawn(async move {
            while let Some(delivery) = delivery_rx.recv().await {
                if let Some(sink) = dispatch_inner.sink.get() {
                    sink(delivery);
                }
            }
        });
        let refresh_inner = inner.clone();
        let refresh = tokio::spawn(async move {
            let mut tick = tokio::time::interval(refresh_inner.config.presence_refresh);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                refresh_inner.refresh().await;
            }
        });
        Ok(Self {
            inner,
            tasks: vec![link, dispatch, refresh],
        })
    }

    /// This node's id in Redis (presence entries and connection counts carry it).
    #[must_use]
    pub fn node_id(&self) -> &str {
        &self.inner.node
    }

    /// Whether sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`, Redis 7+) is used.
    #[must_use]
    pub fn is_sharded(&self) -> bool {
        self.inner.sharded
    }
}

/// Redis 7 and later have sharded pub/sub.
async fn supports_sharded_pubsub(commands: &ConnectionManager) -> bool {
    let mut conn = commands.clone();
    let info: redis::RedisResult<String> = tokio::time::timeout(
        Duration::from_secs(2),
        redis::cmd("INFO").arg("server").query_async(&mut conn),
    )
    .await
    .unwrap_or_else(|_| Err((redis::ErrorKind::Io, "timeout").into()));
    let Ok(info) = info else {
        // Unknown (Redis down at start): plain pub/sub works everywhere.
        return false;
    };
    info.lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .and_then(|version| version.split('.').next())
        .and_then(|major| major.trim().parse::<u32>().ok())
        .is_some_and(|major| major >= 7)
}

impl Inner {
    /// Runs a Redis call, bounded by the op timeout, and records the health it showed.
    async fn call<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = redis::RedisResult<T>> + Send,
    ) -> Result<T, BrokerError> {
        let outcome = tokio::time::timeout(self.config.op_timeout, call)
            .await
            .unwrap_or_else(|_| Err(timed_out()));
        self.settle(what, outcome)
    }

    /// Records the health a call showed.
    fn settle<T>(
        &self,
        what: &'static str,
        result: redis::RedisResult<T>,
    ) -> Result<T, BrokerError> {
        match result {
            Ok(value) => {
                if !self.commands_up.swap(true, Ordering::Relaxed) {
                    tracing::info!("Redis reachable again");
                }
                Ok(value)
            }
            Err(err) => {
                if self.commands_up.swap(false, Ordering::Relaxed) {
                    tracing::warn!(%err, what, "Redis call failed; the node is degraded");
                } else {
                    tracing::debug!(%err, what, "Redis call failed");
                }
                Err(BrokerError::Unavailable)
            }
        }
    }

    fn conn(&self) -> ConnectionManager {
        self.commands.clone()
    }

    /// Rewrites this node's presence entries and connection counts with fresh expiries.
    async fn refresh(&self) {
        let now = unix_ms();
        let members: Vec<((String, String), Participant)> = lock(&self.members)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let users: Vec<(String, usize)> = lock(&self.users)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        if members.is_empty() && users.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for ((channel, user), participant) in members {
            let entry = self.presence_entry(participant, now);
            pipe.cmd("HSET")
                .arg(presence_key(&channel))
                .arg(&user)
                .arg(entry)
                .ignore();
            pipe.cmd("PEXPIRE")
                .arg(presence_key(&channel))
                .arg(millis(self.config.presence_ttl) * 2)
                .ignore();
        }
        let field_expiry = now + millis(self.config.presence_ttl);
        for (user, count) in users {
            pipe.cmd("HSET")
                .arg(users_key(&user))
                .arg(&self.node)
                .arg(format!("{count}:{field_expiry}"))
                .ignore();
            pipe.cmd("PEXPIRE")
                .arg(users_key(&user))
                .arg(millis(self.config.presence_ttl) * 2)
                .ignore();
        }
        let mut conn = self.conn();
        let result: redis::RedisResult<()> =
            tokio::time::timeout(self.config.op_timeout, pipe.query_async(&mut conn))
                .await
                .unwrap_or_else(|_| Err(timed_out()));
        let _ = self.settle("refresh presence", result);
    }

    fn presence_entry(&self, participant: Participant, now: u64) -> String {
        let entry = PresenceEntry {
            expires: now + millis(self.config.presence_ttl),
            node: self.node.clone(),
            participant,
        };
        serde_json::to_string(&entry).unwrap_or_default()
    }
}

fn timed_out() -> redis::RedisError {
    (redis::ErrorKind::Io, "Redis call timed out").into()
}

/// Gives `envelope` the channel's next offset, keeps it in the history and publishes it to
/// every node, in one script; a message id the channel took within the dedupe window is not
/// taken again (offset 0 in the answer).
async fn append(
    inner: Arc<Inner>,
    channel: String,
    envelope: Envelope,
    now: Instant,
) -> Result<Publication, BrokerError> {
    let envelope = envelope.with_channel(&channel)?.with_offset(OFFSET_MARK);
    let message_id = envelope
        .message_id()
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default();
    let text = encode(&envelope);
    let (head, tail) = frame_parts(&text).ok_or(BrokerError::Unavailable)?;
    let publish = if inner.sharded { "SPUBLISH" } else { "PUBLISH" };
    let mut invocation = inner.scripts.append.prepare_invoke();
    invocation
        .key(meta_key(&channel))
        .key(hist_key(&channel))
        .key(ids_key(&channel))
        .arg(head)
        .arg(tail)
        .arg(inner.config.history_size)
        .arg(millis(inner.config.history_ttl))
        .arg(channel_key(&channel))
        .arg(new_epoch())
        .arg(publish)
        .arg(unix_ms())
        .arg(message_id)
        .arg(millis(inner.config.dedupe_window).max(1));
    let mut conn = inner.conn();
    let result: redis::RedisResult<(u64, String)> =
        tokio::time::timeout(inner.config.op_timeout, invocation.invoke_async(&mut conn))
            .await
            .unwrap_or_else(|_| Err(timed_out()));
    let (offset, _epoch) = inner.settle("append", result)?;
    Ok(Publication {
        channel: Arc::from(channel.as_str()),
        offset,
        text: Text::from(format!("{head}{offset}{tail}")),
        at: now,
    })
}

/// Splits the encoded frame around the offset mark: the script writes the offset between.
fn frame_parts(text: &str) -> Option<(&str, &str)> {
    let key = ",\"offset\":";
    let mark = format!("{key}{OFFSET_MARK}");
    let at = text.rfind(&mark)?;
    Some((&text[..at + key.len()], &text[at + mark.len()..]))
}

#[async_trait]
impl History for RedisBroker {
    async fn append(
        &self,
        channel: &str,
        envelope: Envelope,
        now: Instant,
    ) -> Result<Publication, BrokerError> {
        append(self.inner.clone(), channel.to_owned(), envelope, now).await
    }

    async fn replay(
        &self,
        channel: &str,
        since: Option<&StreamPosition>,
        now: Instant,
    ) -> Result<Replay, BrokerError> {
        let inner = &self.inner;
        let ttl = millis(inner.config.history_ttl);
        let (since_offset, since_epoch) = since.map_or((-1i64, String::new()), |s| {
            (i64::try_from(s.offset).unwrap_or(i64::MAX), s.epoch.clone())
        });
        let mut invocation = inner.scripts.replay.prepare_invoke();
        invocation
            .key(meta_key(channel))
            .key(hist_key(channel))
            .arg(since_offset)
            .arg(since_epoch)
            .arg(new_epoch())
            .arg(ttl)
            .arg(inner.config.history_size)
            .arg(unix_ms().saturating_sub(ttl));
        let mut conn = inner.conn();
        let reply: Vec<Value> = inner
            .call("replay", invocation.invoke_async(&mut conn))
            .await?;
        parse_replay(channel, since.map_or(0, |s| s.offset), &reply, now)
            .ok_or(BrokerError::Unavailable)
    }
}

#[async_trait]
impl Presence for RedisBroker {
    async fn join(&self, channel: &str, participant: Participant) -> Result<(), BrokerError> {
        let inner = &self.inner;
        let entry = inner.presence_entry(participant.clone(), unix_ms());
        lock(&inner.members).insert(
            (channel.to_owned(), participant.user_id.clone()),
            participant.clone(),
        );
        let key = presence_key(channel);
        let key_ttl = millis(inner.config.presence_ttl) * 2;
        let mut conn = inner.conn();
        let mut pipe = redis::pipe();
        pipe.cmd("HSET")
            .arg(&key)
            .arg(&participant.user_id)
            .arg(entry)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(key_ttl)
            .ignore();
        inner
            .call("presence join", pipe.query_async::<()>(&mut conn))
            .await
    }

    async fn leave(&self, channel: &str, user_id: &str, joined_at: u64) -> Result<(), BrokerError> {
        let inner = &self.inner;
        {
            let mut members = lock(&inner.members);
            let key = (channel.to_owned(), user_id.to_owned());
            if members.get(&key).is_some_and(|p| p.joined_at == joined_at) {
                members.remove(&key);
            }
        }
        let mut invocation = inner.scripts.presence_leave.prepare_invoke();
        invocation
            .key(presence_key(channel))
            .arg(user_id)
            .arg(joined_at);
        let mut conn = inner.conn();
        inner
            .call("presence leave", invocation.invoke_async::<i64>(&mut conn))
            .await
            .map(drop)
    }

    async fn members(&self, channel: &str) -> Result<Vec<Participant>, BrokerError> {
        let inner = &self.inner;
        let key = presence_key(channel);
        let mut conn = inner.conn();
        let all: HashMap<String, String> = inner.call("presence", conn.hgetall(&key)).await?;
        let now = unix_ms();
        let mut members: Vec<Participant> = all
            .into_values()
            .filter_map(|json| serde_json::from_str::<PresenceEntry>(&json).ok())
            .filter(|entry| entry.expires >= now)
            .map(|entry| entry.participant)
            .collect();
        members.sort_by(|a, b| {
            a.joined_at
                .cmp(&b.joined_at)
                .then_with(|| a.user_id.cmp(&b.user_id))
        });
        Ok(members)
    }

    async fn reconcile(&self, members: Vec<(String, Participant)>) -> Result<(), BrokerError> {
        let desired: HashMap<(String, String), Participant> = members
            .into_iter()
            .map(|(channel, p)| ((channel, p.user_id.clone()), p))
            .collect();
        let stale: Vec<(String, String, u64)> = {
            let mut owned = lock(&self.inner.members);
            let stale = owned
                .iter()
                .filter(|(key, p)| desired.get(*key).is_none_or(|d| d.joined_at != p.joined_at))
                .map(|((channel, user), p)| (channel.clone(), user.clone(), p.joined_at))
                .collect();
            owned.clone_from(&desired);
            stale
        };
        for (channel, user, joined_at) in stale {
            let mut invocation = self.inner.scripts.presence_leave.prepare_invoke();
            invocation
                .key(presence_key(&channel))
                .arg(&user)
                .arg(joined_at);
            let mut conn = self.inner.conn();
            self.inner
                .call(
                    "presence reconcile",
                    invocation.invoke_async::<i64>(&mut conn),
                )
                .await?;
        }
        // The refresh task writes the desired entries (re-adding any that are missing).
        Ok(())
    }

    async fn expire(&self, channel: &str) -> Result<Vec<String>, BrokerError> {
        let inner = &self.inner;
        let mut invocation = inner.scripts.presence_expire.prepare_invoke();
        invocation.key(presence_key(channel)).arg(unix_ms());
        let mut conn = inner.conn();
        inner
            .call(
                "presence expiry",
                invocation.invoke_async::<Vec<String>>(&mut conn),
            )
            .await
    }
}

#[async_trait]
impl Health for RedisBroker {
    async fn is_healthy(&self) -> bool {
        let inner = &self.inner;
        if !inner.pubsub_up.load(Ordering::Relaxed) {
            return false;
        }
        let mut conn = inner.conn();
        inner
            .call(
                "health check",
                redis::cmd("PING").query_async::<String>(&mut conn),
            )
            .await
            .is_ok()
    }
}

#[async_trait]
impl FanOut for RedisBroker {
    fn attach(&self, sink: DeliverFn) {
        let _ = self.inner.sink.set(sink);
    }

    async fn watch(&self, channel: &str) -> Result<(), BrokerError> {
        let (done, confirmed) = oneshot::channel();
        self.inner
            .ctl
            .send(Ctl::Watch(channel.to_owned(), done))
            .map_err(|_| BrokerError::Unavailable)?;
        match tokio::time::timeout(self.inner.config.op_timeout, confirmed).await {
            Ok(Ok(result)) => result,
            _ => Err(BrokerError::Unavailable),
        }
    }

    fn unwatch(&self, channel: &str) {
        let _ = self.inner.ctl.send(Ctl::Unwatch(channel.to_owned()));
    }
}

#[async_trait]
impl ClusterLimits for RedisBroker {
    async fn claim(&self, key: &str, id: &str, pending: Duration) -> Result<Claimed, BrokerError> {
        let inner = &self.inner;
        let mut invocation = inner.scripts.claim.prepare_invoke();
        invocation
            .key(format!("cerebrum:dedupe:{{{key}}}:{id}"))
            .arg(millis(pending).max(1));
        let mut conn = inner.conn();
        let reply: i64 = inner
            .call("dedupe", invocation.invoke_async(&mut conn))
            .await?;
        Ok(match reply {
            1 => Claimed::First,
            0 => Claimed::Done,
            _ => Claimed::InProgress,
        })
    }

    async fn settle(&self, key: &str, id: &str, window: Duration) -> Result<(), BrokerError> {
        let inner = &self.inner;
        let key = format!("cerebrum:dedupe:{{{key}}}:{id}");
        let mut conn = inner.conn();
        let mut set = redis::cmd("SET");
        set.arg(&key)
            .arg("done")
            .arg("PX")
            .arg(millis(window).max(1));
        inner.call("dedupe", set.query_async::<()>(&mut conn)).await
    }

    async fn release(&self, key: &str, id: &str) -> Result<(), BrokerError> {
        let inner = &self.inner;
        let key = format!("cerebrum:dedupe:{{{key}}}:{id}");
        let mut conn = inner.conn();
        inner.call("dedupe", conn.del::<_, ()>(&key)).await
    }

    async fn user_connected(&self, user: &str, limit: usize) -> Result<bool, BrokerError> {
        let inner = &self.inner;
        let now = unix_ms();
        let mut invocation = inner.scripts.user_connect.prepare_invoke();
        invocation
            .key(users_key(user))
            .arg(&inner.node)
            .arg(limit)
            .arg(now)
            .arg(now + millis(inner.config.presence_ttl))
            .arg(millis(inner.config.presence_ttl) * 2);
        let mut conn = inner.conn();
        let admitted: i64 = inner
            .call("connection count", invocation.invoke_async(&mut conn))
            .await?;
        let admitted = admitted == 1;
        if admitted {
            *lock(&inner.users).entry(user.to_owned()).or_insert(0) += 1;
        }
        Ok(admitted)
    }

    async fn user_disconnected(&self, user: &str) -> Result<(), BrokerError> {
        let inner = &self.inner;
        let remaining = {
            let mut users = lock(&inner.users);
            let Some(count) = users.get_mut(user) else {
                return Ok(());
            };
            *count = count.saturating_sub(1);
            let remaining = *count;
            if remaining == 0 {
                users.remove(user);
            }
            remaining
        };
        let key = users_key(user);
        let node = inner.node.clone();
        let value = format!(
            "{remaining}:{}",
            unix_ms() + millis(inner.config.presence_ttl)
        );
        let mut conn = inner.conn();
        if remaining == 0 {
            inner
                .call("connection count", conn.hdel::<_, _, ()>(&key, &node))
                .await
        } else {
            inner
                .call(
                    "connection count",
                    conn.hset::<_, _, _, ()>(&key, &node, value),
                )
                .await
        }
    }
}

/// `{last, epoch, recovered, frame...}` → [`Replay`].
fn parse_replay(channel: &str, since: u64, reply: &[Value], now: Instant) -> Option<Replay> {
    let [last, epoch, recovered, frames @ ..] = reply else {
        return None;
    };
    let last = match last {
        Value::Int(n) => u64::try_from(*n).ok()?,
        _ => return None,
    };
    let epoch = match epoch {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok()?,
        Value::SimpleString(text) => text.clone(),
        _ => return None,
    };
    let recovered = matches!(recovered, Value::Int(1));
    let channel: Arc<str> = Arc::from(channel);
    let mut publications = Vec::with_capacity(frames.len());
    for (i, frame) in frames.iter().enumerate() {
        let Value::BulkString(bytes) = frame else {
            return None;
        };
        let text = String::from_utf8(bytes.clone()).ok()?;
        publications.push(Publication {
            channel: channel.clone(),
            offset: since + 1 + i as u64,
            text: Text::from(text),
            at: now,
        });
    }
    Some(Replay {
        offset: last,
        epoch: Arc::from(epoch.as_str()),
        recovered,
        publications,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_mark_splits_the_frame() {
        let envelope = Envelope::from_value("chat.msg", &"offset")
            .unwrap()
            .with_channel("chat:1")
            .unwrap()
            .with_offset(OFFSET_MARK);
        let text = encode(&envelope);
        let (head, tail) = frame_parts(&text).unwrap();
        let joined = format!("{head}42{tail}");
        let decoded = cerebrum_protocol::decode(&joined).unwrap();
        assert_eq!(decoded.offset(), Some(42));
        assert_eq!(decoded.channel(), Some("chat:1"));
    }

    #[test]
    fn a_replay_reply_is_parsed_with_consecutive_offsets() {
        let reply = vec![
            Value::Int(7),
            Value::BulkString(b"abc".to_vec()),
            Value::Int(1),
            Value::BulkString(b"{\"a\":1}".to_vec()),
            Value::BulkString(b"{\"a\":2}".to_vec()),
        ];
        let replay = parse_replay("c", 5, &reply, Instant::now()).unwrap();
        assert_eq!(replay.offset, 7);
        assert_eq!(&*replay.epoch, "abc");
        assert!(replay.recovered);
        let offsets: Vec<u64> = replay.publications.iter().map(|p| p.offset).collect();
        assert_eq!(offsets, vec![6, 7]);
        assert!(parse_replay("c", 0, &reply[..2], Instant::now()).is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_bad_url_is_reported_without_its_password() {
        let url = "redis://admin:hunter2-secret@cache.internal:99999999/0";
        let err = RedisBroker::connect(RedisConfig::new(url))
            .await
            .expect_err("the port is out of range");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("admin:***@cache.internal"), "{shown}");
        let config = format!("{:?}", RedisConfig::new(url));
        assert!(!config.contains("hunter2"), "{config}");
    }
}
