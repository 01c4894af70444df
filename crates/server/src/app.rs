//! The state of a running server shared by the HTTP routes and the connection tasks, and the
//! async half of the features: store reads and writes, and calls to the remote broker. The
//! rules stay in the core; this carries out what they ask for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use cerebrum_protocol::{Envelope, MessageId, Notification, StudyMetrics};
use tokio::sync::{Notify, watch};

use crate::broker::{BrokerError, RemoteBroker};
use crate::clock::Now;
use crate::context::Context;
use crate::outbox::{Outbox, lock};
use crate::status::{Checks, dir_writable};
use crate::store::{Store, StoreError};
use crate::study::FinishedStudy;
use cerebrum_server_core::Database;
use cerebrum_server_core::node::NodeEffect;

/// State of a running server, shared by the HTTP routes and the connection tasks.
pub(crate) struct App {
    pub(crate) ctx: Arc<Context>,
    pub(crate) store: Arc<dyn Store>,
    /// The broker shared with other nodes (`--redis`); `None`: the core's memory broker orders
    /// every channel.
    pub(crate) remote: Option<Arc<dyn RemoteBroker>>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) open: AtomicUsize,
    /// Accepted connections that are not (yet) WebSockets: they count toward the cap too.
    pub(crate) pending: AtomicUsize,
    pub(crate) drained: Notify,
    /// Channels being replayed to fill a delivery gap (one replay per channel at a time).
    pub(crate) resyncing: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Set once the server stops: each connection reads it when it wakes.
    pub(crate) stopping: AtomicBool,
    /// The outbox of every open WebSocket, to wake them all when the server stops (a map entry
    /// costs a connection less than a registration with the shutdown `watch` in its future).
    pub(crate) live: std::sync::Mutex<HashMap<usize, Weak<Outbox>>>,
}

impl App {
    pub(crate) fn shutdown_rx(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// Lists an open connection's outbox, so that [`App::stop_connections`] reaches it; the
    /// key gives its place back ([`App::unlist_connection`]).
    pub(crate) fn list_connection(&self, outbox: &Arc<Outbox>) -> usize {
        let key = Arc::as_ptr(outbox) as usize;
        lock(&self.live).insert(key, Arc::downgrade(outbox));
        key
    }

    /// Takes a closed connection off the list.
    pub(crate) fn unlist_connection(&self, key: usize) {
        lock(&self.live).remove(&key);
    }

    /// Whether the server is stopping (the connections close with 1001).
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Tells every open connection that the server is stopping. A connection listed after the
    /// flag is set reads it on its first turn: the flag is set before the list is walked.
    pub(crate) fn stop_connections(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let outboxes: Vec<Arc<Outbox>> = lock(&self.live)
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for outbox in outboxes {
            outbox.wake();
        }
    }

    /// Reserves a connection slot; `false` at the global cap.
    pub(crate) fn try_open_connection(&self) -> bool {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if before >= self.ctx.config.max_connections {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        self.ctx.metrics.connections.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Reserves a place for an accepted connection before its request arrives; `false` when
    /// open WebSockets and such connections together are at the global cap.
    pub(crate) fn try_open_pending(&self) -> bool {
        let before = self.pending.fetch_add(1, Ordering::AcqRel);
        if before + self.open.load(Ordering::Acquire) >= self.ctx.config.max_connections {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// An accepted connection's HTTP exchange ended (closed, or upgraded to a WebSocket, which
    /// holds its own place).
    pub(crate) fn pending_closed(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    pub(crate) fn connection_closed(&self) {
        self.ctx.metrics.connections.fetch_sub(1, Ordering::Relaxed);
        if self.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.drained.notify_waiters();
        }
    }

    pub(crate) fn open_connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Runs a store call on a blocking thread.
    pub(crate) async fn blocking<T, F>(&self, call: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || call(store.as_ref()))
            .await
            .map_err(|err| StoreError::Database(format!("store task failed: {err}")))?
    }

    /// Publishes `envelope` on `channel`: through the remote broker when it orders the channel
    /// (every node, this one included, gets it back through the hub's `deliver`), else in the
    /// core's hub at once. Returns the offset.
    pub(crate) async fn publish(
        &self,
        channel: &str,
        envelope: Envelope,
        now: Now,
    ) -> Result<u64, BrokerError> {
        match &self.remote {
            Some(remote) if self.ctx.hub.is_remote(channel) => {
                Ok(remote.append(channel, envelope, now.mono).await?.offset)
            }
            _ => self.ctx.hub.publish(channel, envelope, now),
        }
    }

    /// Publishes the user's `study_metrics_update`.
    async fn publish_metrics(&self, metrics: &StudyMetrics) {
        let now = crate::clock::now();
        if let Some((channel, envelope)) = self.ctx.metrics_publication(metrics, now)
            && let Err(err) = self.publish(&channel, envelope, now).await
        {
            tracing::warn!(%err, "could not publish study metrics");
        }
    }

    /// Publishes the `collaborative_session_update` of `channel`, from the remote broker's
    /// presence when it orders the channel.
    pub(crate) async fn publish_session_update(&self, channel: &str, topic: &str) {
        let now = crate::clock::now();
        let Some(remote) = self
            .remote
            .as_ref()
            .filter(|_| self.ctx.hub.is_remote(channel))
        else {
            self.ctx.publish_session_update(channel, topic, now);
            return;
        };
        let members = match remote.members(channel).await {
            Ok(members) => members,
            Err(err) => {
                tracing::warn!(%err, channel, "could not read a study session's presence");
                return;
            }
        };
        if let Some(envelope) = self.ctx.session_update(channel, topic, members, now)
            && let Err(err) = self.publish(channel, envelope, now).await
        {
            tracing::warn!(%err, channel, "could not publish a session update");
        }
    }

    /// Adds a finished session to the record durably, then publishes the user's metrics.
    pub(crate) async fn finish_study(
        &self,
        user_id: String,
        finished: Option<FinishedStudy>,
    ) -> Result<StudyMetrics, StoreError> {
        let user = user_id.clone();
        let record = self
            .blocking(move |store| match finished {
                Some(done) => store.record_session(&user, done.duration_secs, done.ended_ms),
                None => store.study_record(&user, crate::clock::unix_ms()),
            })
            .await?;
        let metrics = self.ctx.study_metrics(&user_id, &record, None);
        self.publish_metrics(&metrics).await;
        Ok(metrics)
    }

    /// Publishes the user's metrics while studying `topic`: the stored record, this
    /// session's duration so far (0 at its start) and `currentTopic`.
    pub(crate) async fn study_started(
        &self,
        user_id: &str,
        topic: String,
    ) -> Result<(), StoreError> {
        let user = user_id.to_owned();
        let record = self
            .blocking(move |store| store.study_record(&user, crate::clock::unix_ms()))
            .await?;
        let metrics = self.ctx.study_metrics(user_id, &record, Some(topic));
        self.publish_metrics(&metrics).await;
        Ok(())
    }

    /// The next page of `user_id`'s pending notifications.
    pub(crate) async fn pending(&self, user_id: &str) -> Result<Vec<Notification>, StoreError> {
        let user = user_id.to_owned();
        let limit = self.ctx.config.pending_page();
        self.blocking(move |store| store.pending_notifications(&user, limit))
            .await
    }

    pub(crate) async fn ack_notification(
        &self,
        user_id: &str,
        id: &MessageId,
    ) -> Result<(), StoreError> {
        let (user, id) = (user_id.to_owned(), id.as_str().to_owned());
        self.blocking(move |store| store.ack_notification(&user, &id, crate::clock::unix_ms()))
            .await
            .map(drop)
    }

    /// Stores a notification and delivers it to the live connections of its user (or of
    /// everyone).
    pub(crate) async fn notify(
        &self,
        notification: Notification,
        user_id: Option<String>,
    ) -> Result<(), StoreError> {
        let (stored, user) = (notification.clone(), user_id.clone());
        self.blocking(move |store| {
            store.save_notification(&stored, user.as_deref(), crate::clock::unix_ms())
        })
        .await?;
        let now = crate::clock::now();
        if let Some((channel, envelope)) =
            self.ctx
                .notification_publication(&notification, user_id.as_deref(), now)
            && let Err(err) = self.publish(&channel, envelope, now).await
        {
            tracing::warn!(%err, "could not deliver a notification");
        }
        Ok(())
    }

    /// One round of health checks; publishes the status when it changed or `force`.
    pub(crate) async fn check_status(&self, force: bool) {
        let data_dir = self.ctx.config.data_dir.clone();
        let database = self.blocking(|store| store.ping()).await.is_ok();
        // PostgreSQL keeps nothing on the local disk.
        let local = self.ctx.config.database == Database::Sqlite;
        let storage = tokio::task::spawn_blocking(move || !local || dir_writable(&data_dir))
            .await
            .unwrap_or(false);
        let cache = match &self.remote {
            Some(remote) => remote.is_healthy().await,
            None => true,
        };
        let checks = Checks {
            database,
            storage,
            cache,
        };
        if self.ctx.publish_status(checks, force, crate::clock::now()) {
            let status = self.ctx.status();
            tracing::warn!(status = ?status.status, services = ?status.services, "system status changed");
        }
    }

    /// The grace-period sweep: the core decides (`Context::expire_study`), this carries it out.
    pub(crate) async fn expire_presence(&self) {
        let effects = self.ctx.expire_study(crate::clock::now());
        self.run_node_effects(effects).await;
    }

    /// With a remote broker: the dead nodes' members leave, and this node's entries are
    /// reconciled with its study tracker (`Context::presence_tasks`).
    pub(crate) async fn presence_tasks(&self) {
        let effects = self.ctx.presence_tasks();
        self.run_node_effects(effects).await;
    }

    /// Carries out a node's periodic effects in order.
    async fn run_node_effects(&self, effects: Vec<NodeEffect>) {
        for effect in effects {
            match effect {
                NodeEffect::PresenceLeave {
                    channel,
                    user_id,
                    joined_at,
                } => self.presence_leave(&channel, &user_id, joined_at).await,
                NodeEffect::RecordStudy { finished } => {
                    let user = finished.user_id.clone();
                    if let Err(err) = self.finish_study(user, Some(finished.clone())).await {
                        tracing::warn!(%err, "could not record an expired study session yet");
                        self.ctx.study_unrecorded(finished);
                    }
                }
                NodeEffect::SessionUpdate { channel, topic } => {
                    self.publish_session_update(&channel, &topic).await;
                }
                NodeEffect::ExpirePresence { channel } => {
                    let Some(remote) = &self.remote else {
                        continue;
                    };
                    match remote.expire(&channel).await {
                        Ok(gone) => {
                            if !gone.is_empty() {
                                tracing::info!(channel, members = ?gone, "presence expired (their node stopped refreshing)");
                            }
                            if let Some(NodeEffect::SessionUpdate { channel, topic }) =
                                self.ctx.presence_expired(&channel, &gone)
                            {
                                self.publish_session_update(&channel, &topic).await;
                            }
                        }
                        Err(err) => tracing::debug!(%err, channel, "could not expire presence"),
                    }
                }
                NodeEffect::ReconcilePresence { members } => {
                    if let Some(remote) = &self.remote
                        && let Err(err) = remote.reconcile(members).await
                    {
                        tracing::debug!(%err, "could not reconcile presence");
                    }
                }
                other => tracing::warn!(?other, "a node effect this driver does not know"),
            }
        }
    }

    /// Removes `user_id`'s entry that joined at `joined_at` from the presence of `channel`
    /// (remote or in memory).
    pub(crate) async fn presence_leave(&self, channel: &str, user_id: &str, joined_at: u64) {
        match &self.remote {
            Some(remote) if self.ctx.hub.is_remote(channel) => {
                if let Err(err) = remote.leave(channel, user_id, joined_at).await {
                    tracing::warn!(%err, channel, "could not remove a study session's member");
                }
            }
            _ => self.ctx.hub.memory().presence_leave(channel, user_id),
        }
    }

    /// After the remote broker's link was down: fetches what each remote channel's local
    /// subscribers missed meanwhile and hands it to the hub.
    pub(crate) async fn resync(&self) {
        for (channel, since) in self.ctx.hub.resync_positions() {
            self.resync_channel(&channel, &since).await;
        }
    }

    /// A delivery found subscribers of `channel` missing publications before it (the hub
    /// holds it for them): replays the channel from the one furthest behind.
    pub(crate) async fn resync_gap(&self, channel: &str) {
        if !lock(&self.resyncing).insert(channel.to_owned()) {
            return;
        }
        if let Some(since) = self.ctx.hub.resync_position(channel) {
            self.resync_channel(channel, &since).await;
        }
        lock(&self.resyncing).remove(channel);
    }

    /// Replays `channel` after `since` into the hub; when history no longer reaches back, the
    /// held subscribers go on after the gap.
    async fn resync_channel(&self, channel: &str, since: &cerebrum_protocol::StreamPosition) {
        let Some(remote) = &self.remote else {
            return;
        };
        {
            match remote.replay(channel, Some(since), Instant::now()).await {
                Ok(replay) if replay.recovered => {
                    for publication in replay.publications {
                        self.ctx.hub.deliver(
                            &crate::broker::Delivery {
                                channel: channel.to_owned(),
                                epoch: replay.epoch.clone(),
                                offset: publication.offset,
                                text: publication.text,
                            },
                            Instant::now(),
                        );
                    }
                }
                Ok(replay) => {
                    tracing::warn!(
                        channel,
                        from = since.offset,
                        to = replay.offset,
                        "publications missed while the broker link was down are gone from history"
                    );
                    self.ctx.hub.skip_gaps(channel, Instant::now());
                }
                Err(err) => tracing::warn!(%err, channel, "could not catch up a channel"),
            }
        }
    }
}
