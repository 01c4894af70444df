//! The state shared by every connection of one server: configuration, hub, study tracker,
//! dedupe cache, auth verifier, metrics, status.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cerebrum_protocol::{
    CollaborativeSession, Envelope, MessageId, MessageIdGenerator, Notification, Participant,
    Payload, SYSTEM_CHANNEL, StudyMetrics, SystemStatus, encode, user_channel,
};

use crate::auth::{AuthError, Verifier};
use crate::broker::MemoryBroker;
use crate::clock::Now;
use crate::conflate::ConflationRules;
use crate::dedupe::Dedupe;
use crate::hub::{ConnId, Hub};
use crate::metrics::Metrics;
use crate::outbox::lock;
use crate::status::Checks;
use crate::study::StudyTracker;
use crate::{ServerConfig, Text};

/// What every [`crate::session::Session`] of a server shares.
///
/// ```
/// use std::time::{Duration, Instant};
/// use cerebrum_server_core::{broker::MemoryBroker, clock::Now, context::Context, ServerConfig};
///
/// let now = Now { mono: Instant::now(), unix_ms: 1_700_000_000_000 };
/// let ctx = Context::new(ServerConfig::default(), MemoryBroker::new(100, Duration::from_secs(300), 1), false, 7, now)?;
/// assert!(!ctx.auth_enabled());
/// # Ok::<(), cerebrum_server_core::auth::AuthError>(())
/// ```
pub struct Context {
    /// The configuration.
    pub config: ServerConfig,
    /// The channel hub.
    pub hub: Hub,
    /// Study sessions in progress.
    pub study: Mutex<StudyTracker>,
    /// Recent message ids per user.
    pub dedupe: Dedupe,
    /// The token verifier (auth on when set).
    pub verifier: Option<Verifier>,
    /// Metrics.
    pub metrics: Metrics,
    /// The message id generator.
    pub ids: Arc<MessageIdGenerator>,
    /// When the server started (uptime).
    pub started: Instant,
    status: Mutex<SystemStatus>,
    user_conns: Mutex<HashMap<String, usize>>,
    next_conn: AtomicU64,
    /// Draws connection ids (seeded by the owner).
    rng: Mutex<fastrand::Rng>,
    /// Study sessions that ended while the store failed (written again at each sweep).
    pub(crate) unrecorded: Mutex<Vec<crate::study::FinishedStudy>>,
    /// The pages of pending notifications out on this node's connections, by user.
    pub(crate) pages: crate::pending::PendingPages,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .field("hub", &self.hub)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// The shared state of a server with `config`: `memory` orders every channel, or only
    /// `system` when `remote` (a remote broker in the driver orders the others); `seed` seeds
    /// the connection ids and `now` is the start.
    ///
    /// # Errors
    /// [`AuthError::BadKey`] when the configured JWT key is unusable.
    pub fn new(
        config: ServerConfig,
        memory: MemoryBroker,
        remote: bool,
        seed: u64,
        now: Now,
    ) -> Result<Arc<Self>, AuthError> {
        let verifier = config
            .jwt
            .as_ref()
            .map(Verifier::new)
            .transpose()?
            .map(|verifier| {
                verifier.with_audience_and_issuer(
                    config.jwt_audience.as_deref(),
                    config.jwt_issuer.as_deref(),
                )
            });
        let ids = Arc::new(MessageIdGenerator::new());
        let started = now.mono;
        let checks = Checks {
            database: true,
            storage: true,
            cache: true,
        };
        Ok(Arc::new(Self {
            hub: Hub::new(memory, remote, ids.clone(), config.hub_shards)
                .with_conflation(ConflationRules::new(config.conflate.iter().cloned())),
            study: Mutex::new(StudyTracker::new(config.presence_grace)),
            dedupe: Dedupe::new(config.dedupe_window, config.dedupe_min_entries),
            verifier,
            metrics: Metrics::default(),
            ids,
            started,
            status: Mutex::new(checks.to_status(started, now)),
            user_conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            unrecorded: Mutex::new(Vec::new()),
            pages: crate::pending::PendingPages::default(),
            config,
        }))
    }

    /// Whether tokens are required.
    #[must_use]
    pub fn auth_enabled(&self) -> bool {
        self.verifier.is_some()
    }

    /// A fresh connection number.
    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// A random 32-bit number (connection ids' suffix), from the seeded generator.
    pub fn random_u32(&self) -> u32 {
        lock(&self.rng).u32(..)
    }

    /// Encodes `payload` in a stamped envelope.
    #[must_use]
    pub fn frame<P: Payload>(&self, payload: &P, now: Now) -> Option<Text> {
        let envelope = Envelope::from_payload(payload).ok()?;
        Some(Text::from(encode(
            &envelope.stamped(&self.ids, now.unix_ms),
        )))
    }

    /// The current system status.
    #[must_use]
    pub fn status(&self) -> SystemStatus {
        lock(&self.status).clone()
    }

    /// Replaces the status; `true` when its state or a service changed.
    pub fn set_status(&self, status: SystemStatus) -> bool {
        let mut current = lock(&self.status);
        let changed = current.status != status.status || current.services != status.services;
        *current = status;
        changed
    }

    /// Counts a connection of `user` on this node; `false` (not counted) past the per-user
    /// limit when `enforce` (without a cluster-wide count, the node's decides).
    pub(crate) fn user_connected(&self, user: &str, enforce: bool) -> bool {
        let limit = self.config.max_connections_per_user;
        let mut conns = lock(&self.user_conns);
        let count = conns.entry(user.to_owned()).or_insert(0);
        if enforce && *count >= limit {
            return false;
        }
        *count += 1;
        true
    }

    /// Un-counts a connection of `user` on this node.
    pub(crate) fn user_disconnected(&self, user: &str) {
        let mut conns = lock(&self.user_conns);
        if let Some(count) = conns.get_mut(user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                conns.remove(user);
            }
        }
    }

    /// The `collaborative_session_update` of `channel` with `members` (in join order): the
    /// earliest joined are listed, up to the protocol's cap; everyone counts.
    #[must_use]
    pub fn session_update(
        &self,
        channel: &str,
        topic: &str,
        mut members: Vec<Participant>,
        now: Now,
    ) -> Option<Envelope> {
        let active_users = u32::try_from(members.len()).unwrap_or(u32::MAX);
        members.truncate(cerebrum_protocol::MAX_LISTED_PARTICIPANTS);
        let update = CollaborativeSession {
            session_id: channel.to_owned(),
            topic: topic.to_owned(),
            active_users,
            participants: members,
        };
        Envelope::from_payload(&update)
            .ok()
            .map(|envelope| envelope.stamped(&self.ids, now.unix_ms))
    }

    /// The `study_metrics_update` of `user_id` from its stored `record`: after a session was
    /// recorded (`studying: None`), or as a session on `studying` starts (`currentTopic`, a
    /// session duration of 0), against the configured daily goal.
    #[must_use]
    pub fn study_metrics(
        &self,
        user_id: &str,
        record: &crate::record::StudyRecord,
        studying: Option<String>,
    ) -> StudyMetrics {
        let mut metrics = record.to_metrics(user_id, self.config.daily_goal_hours);
        if let Some(topic) = studying {
            metrics.current_topic = Some(topic);
            metrics.session_duration = 0.0;
        }
        metrics
    }

    /// The user's `study_metrics_update` and the channel it goes to.
    #[must_use]
    pub fn metrics_publication(
        &self,
        metrics: &StudyMetrics,
        now: Now,
    ) -> Option<(String, Envelope)> {
        let channel = user_channel(&metrics.user_id).ok()?;
        let envelope = Envelope::from_payload(metrics).ok()?;
        Some((channel, envelope.stamped(&self.ids, now.unix_ms)))
    }

    /// Where and how a stored notification is delivered: on its user's channel (or the system
    /// channel when it is for everyone), with the notification's own id as the `messageId`, so
    /// that the client's ack names the stored row. `None` when the user id makes no channel or
    /// the id is not a message id (the admin API refuses both before storing).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use cerebrum_protocol::{Notification, NotificationKind, Priority};
    /// use cerebrum_server_core::{broker::MemoryBroker, clock::Now, context::Context, ServerConfig};
    ///
    /// let now = Now { mono: Instant::now(), unix_ms: 1_700_000_000_000 };
    /// let ctx = Context::new(ServerConfig::default(), MemoryBroker::new(100, Duration::from_secs(300), 1), false, 7, now)?;
    /// let note = Notification {
    ///     id: "n-1".into(),
    ///     title: "Quiz".into(),
    ///     message: "Starts in 5 minutes".into(),
    ///     kind: NotificationKind::Info,
    ///     priority: Priority::Medium,
    ///     action_url: None,
    ///     action_text: None,
    /// };
    /// let (channel, envelope) = ctx.notification_publication(&note, Some("alice"), now).unwrap();
    /// assert_eq!(channel, "user:alice");
    /// assert_eq!(envelope.message_id().map(|id| id.as_str()), Some("n-1"));
    /// let (channel, _) = ctx.notification_publication(&note, None, now).unwrap();
    /// assert_eq!(channel, "system");
    /// # Ok::<(), cerebrum_server_core::auth::AuthError>(())
    /// ```
    #[must_use]
    pub fn notification_publication(
        &self,
        notification: &Notification,
        user_id: Option<&str>,
        now: Now,
    ) -> Option<(String, Envelope)> {
        let channel = match user_id {
            Some(user) => user_channel(user).ok()?,
            None => SYSTEM_CHANNEL.to_owned(),
        };
        let id = MessageId::new(notification.id.clone()).ok()?;
        let envelope = Envelope::from_payload(notification).ok()?;
        Some((
            channel,
            envelope.with_timestamp(now.unix_ms).with_message_id(id),
        ))
    }

    /// Records the outcome of a round of health checks and, when the status changed or
    /// `force`, publishes it on the system channel. Returns whether it changed.
    pub fn publish_status(&self, checks: Checks, force: bool, now: Now) -> bool {
        let status = checks.to_status(self.started, now);
        let changed = self.set_status(status.clone());
        if (changed || force)
            && let Ok(envelope) = Envelope::from_payload(&status)
        {
            let envelope = envelope.stamped(&self.ids, now.unix_ms);
            let _ = self.hub.publish(SYSTEM_CHANNEL, envelope, now);
        }
        changed
    }

    /// Publishes the `collaborative_session_update` of `channel` to its members, when the
    /// memory broker orders it (with a remote broker the session asks for
    /// [`crate::session::Effect::SessionUpdate`] instead).
    pub fn publish_session_update(&self, channel: &str, topic: &str, now: Now) {
        let members = self.hub.memory().presence(channel);
        if let Some(envelope) = self.session_update(channel, topic, members, now)
            && let Err(err) = self.hub.publish(channel, envelope, now)
        {
            tracing::warn!(%err, channel, "could not publish a session update");
        }
    }

    /// Publishes `metrics` on its user's channel (every connection of the user gets it), when
    /// the memory broker orders it; otherwise returns the channel and envelope for the driver
    /// to append on the remote broker.
    pub fn publish_metrics(&self, metrics: &StudyMetrics, now: Now) -> Option<(String, Envelope)> {
        let (channel, envelope) = self.metrics_publication(metrics, now)?;
        if self.hub.is_remote(&channel) {
            return Some((channel, envelope));
        }
        if let Err(err) = self.hub.publish(&channel, envelope, now) {
            tracing::warn!(%err, "could not publish study metrics");
        }
        None
    }
}
