//! The state shared by every connection of one server: configuration, hub, study tracker,
//! dedupe cache, auth verifier, metrics, status.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;
use cerebrum_protocol::{
    CollaborativeSession, Envelope, MessageIdGenerator, Payload, StudyMetrics, SystemStatus,
    encode, user_channel,
};

use crate::ServerConfig;
use crate::auth::{AuthError, Verifier};
use crate::broker::Broker;
use crate::clock::Now;
use crate::dedupe::Dedupe;
use crate::hub::{ConnId, Hub};
use crate::metrics::Metrics;
use crate::outbox::lock;
use crate::status::Checks;
use crate::study::StudyTracker;

/// What every [`crate::session::Session`] of a server shares.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use cerebrum_server::{broker::MemoryBroker, context::Context, ServerConfig};
///
/// let ctx = Context::new(ServerConfig::default(), Arc::new(MemoryBroker::new(100, Duration::from_secs(300))))?;
/// assert!(!ctx.auth_enabled());
/// # Ok::<(), cerebrum_server::auth::AuthError>(())
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
    /// The shared state of a server with `config` over `broker`.
    pub fn new(config: ServerConfig, broker: Arc<dyn Broker>) -> Result<Arc<Self>, AuthError> {
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
        let started = Instant::now();
        let checks = Checks {
            database: true,
            storage: true,
            cache: broker.is_healthy(),
        };
        Ok(Arc::new(Self {
            hub: Hub::new(broker, ids.clone()),
            study: Mutex::new(StudyTracker::new(config.presence_grace)),
            dedupe: Dedupe::new(config.dedupe_window, config.dedupe_min_entries),
            verifier,
            metrics: Metrics::default(),
            ids,
            started,
            status: Mutex::new(checks.to_status(started, Now::current())),
            user_conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            config,
        }))
    }

    /// Whether tokens are required.
    #[must_use]
    pub fn auth_enabled(&self) -> bool {
        self.verifier.is_some()
    }

    /// A fresh connection id.
    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Encodes `payload` in a stamped envelope.
    #[must_use]
    pub fn frame<P: Payload>(&self, payload: &P, now: Now) -> Option<Utf8Bytes> {
        let envelope = Envelope::from_payload(payload).ok()?;
        Some(Utf8Bytes::from(encode(
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

    /// Records message `id` of dedupe `key`; `false` when it was seen already, on this node or
    /// (for a user's key, with a shared broker) on any node.
    pub(crate) fn first_time(&self, key: &str, id: &str, now: Instant) -> bool {
        if !self.dedupe.first_time(key, id, now) {
            return false;
        }
        if key.starts_with("u:")
            && let Some(first) = self
                .hub
                .broker()
                .first_time(key, id, self.config.dedupe_window)
        {
            return first;
        }
        true
    }

    /// Forgets message `id` of dedupe `key` (its frame failed).
    pub(crate) fn forget_message(&self, key: &str, id: &str) {
        self.dedupe.forget(key, id);
        if key.starts_with("u:") {
            self.hub.broker().forget(key, id);
        }
    }

    /// Counts a connection of `user`; `false` (not counted) past the per-user limit, counted
    /// over every node when the broker shares the counts.
    pub(crate) fn user_connected(&self, user: &str) -> bool {
        let limit = self.config.max_connections_per_user;
        let shared = self.hub.broker().user_connected(user, limit);
        if shared == Some(false) {
            return false;
        }
        let mut conns = lock(&self.user_conns);
        let count = conns.entry(user.to_owned()).or_insert(0);
        if shared.is_none() && *count >= limit {
            return false;
        }
        *count += 1;
        true
    }

    /// Un-counts a connection of `user`.
    pub(crate) fn user_disconnected(&self, user: &str) {
        self.hub.broker().user_disconnected(user);
        let mut conns = lock(&self.user_conns);
        if let Some(count) = conns.get_mut(user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                conns.remove(user);
            }
        }
    }

    /// Publishes the `collaborative_session_update` of `channel` to its members.
    pub fn publish_session_update(&self, channel: &str, topic: &str, now: Now) {
        let mut participants = self.hub.broker().presence(channel).unwrap_or_default();
        let active_users = u32::try_from(participants.len()).unwrap_or(u32::MAX);
        // The earliest joined are listed (`Broker::presence` is in join order); everyone counts.
        participants.truncate(cerebrum_protocol::MAX_LISTED_PARTICIPANTS);
        let update = CollaborativeSession {
            session_id: channel.to_owned(),
            topic: topic.to_owned(),
            active_users,
            participants,
        };
        if let Ok(envelope) = Envelope::from_payload(&update) {
            let envelope = envelope.stamped(&self.ids, now.unix_ms);
            if let Err(err) = self.hub.publish(channel, envelope, now) {
                tracing::warn!(%err, channel, "could not publish a session update");
            }
        }
    }

    /// Publishes `metrics` on its user's channel (every connection of the user gets it).
    pub fn publish_metrics(&self, metrics: &StudyMetrics, now: Now) {
        let Ok(channel) = user_channel(&metrics.user_id) else {
            return;
        };
        if let Ok(envelope) = Envelope::from_payload(metrics) {
            let envelope = envelope.stamped(&self.ids, now.unix_ms);
            if let Err(err) = self.hub.publish(&channel, envelope, now) {
                tracing::warn!(%err, "could not publish study metrics");
            }
        }
    }
}
