//! Binding, the background tasks (status checks, presence expiry), and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::serve::ListenerExt as _;
use cerebrum_protocol::{
    Envelope, MessageId, Notification, SYSTEM_CHANNEL, StudyMetrics, user_channel,
};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::ServerConfig;
use crate::auth::AuthError;
use crate::broker::{Broker, BrokerEvent, MemoryBroker};
use crate::clock::Now;
use crate::config::Database;
use crate::context::Context;
use crate::outbox::lock;
use crate::postgres::PostgresStore;
use crate::redis_broker::{RedisBroker, RedisConfig};
use crate::sqlite::SqliteStore;
use crate::status::{Checks, dir_writable};
use crate::store::{Store, StoreError};
use crate::study::FinishedStudy;

/// Why the server could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    /// The JWT key is unusable.
    #[error("auth: {0}")]
    Auth(#[from] AuthError),
    /// The TLS files are unusable.
    #[error("TLS: {0}")]
    Tls(String),
    /// The Redis broker could not be set up.
    #[error("Redis: {0}")]
    Redis(#[from] crate::redis_broker::RedisSetupError),
    /// Serving failed.
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
    /// The configuration breaks a rule ([`ServerConfig::validate`]).
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
}

/// State of a running server, shared by the HTTP routes and the connection tasks.
pub(crate) struct App {
    pub(crate) ctx: Arc<Context>,
    pub(crate) store: Arc<dyn Store>,
    shutdown: watch::Receiver<bool>,
    open: AtomicUsize,
    /// Accepted connections that are not (yet) WebSockets: they count toward the cap too.
    pending: AtomicUsize,
    drained: Notify,
}

impl App {
    pub(crate) fn shutdown_rx(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
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

    fn open_connections(&self) -> usize {
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
        let metrics = record.to_metrics(&user_id, self.ctx.config.daily_goal_hours);
        self.ctx.publish_metrics(&metrics, Now::current());
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
        let mut metrics = record.to_metrics(user_id, self.ctx.config.daily_goal_hours);
        metrics.current_topic = Some(topic);
        metrics.session_duration = 0.0;
        self.ctx.publish_metrics(&metrics, Now::current());
        Ok(())
    }

    pub(crate) async fn pending(&self, user_id: &str) -> Result<Vec<Notification>, StoreError> {
        let user = user_id.to_owned();
        self.blocking(move |store| store.pending_notifications(&user))
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
        let now = Now::current();
        let channel = match &user_id {
            Some(user) => match user_channel(user) {
                Ok(channel) => channel,
                Err(_) => return Ok(()),
            },
            None => SYSTEM_CHANNEL.to_owned(),
        };
        let Ok(id) = MessageId::new(notification.id.clone()) else {
            return Ok(());
        };
        if let Ok(envelope) = Envelope::from_payload(&notification) {
            let envelope = envelope.with_timestamp(now.unix_ms).with_message_id(id);
            if let Err(err) = self.ctx.hub.publish(&channel, envelope, now) {
                tracing::warn!(%err, "could not deliver a notification");
            }
        }
        Ok(())
    }

    /// One round of health checks; publishes the status when it changed or `force`.
    async fn check_status(&self, force: bool) {
        let data_dir = self.ctx.config.data_dir.clone();
        let database = self.blocking(|store| store.ping()).await.is_ok();
        // PostgreSQL keeps nothing on the local disk.
        let local = self.ctx.config.database == Database::Sqlite;
        let storage = tokio::task::spawn_blocking(move || !local || dir_writable(&data_dir))
            .await
            .unwrap_or(false);
        let checks = Checks {
            database,
            storage,
            cache: self.ctx.hub.broker().is_healthy(),
        };
        let now = Now::current();
        let status = checks.to_status(self.ctx.started, now);
        let changed = self.ctx.set_status(status.clone());
        if changed {
            tracing::warn!(status = ?status.status, services = ?status.services, "system status changed");
        }
        if (changed || force)
            && let Ok(envelope) = Envelope::from_payload(&status)
        {
            let envelope = envelope.stamped(&self.ctx.ids, now.unix_ms);
            let _ = self.ctx.hub.publish(SYSTEM_CHANNEL, envelope, now);
        }
    }

    /// With a shared broker: removes the members whose node stopped refreshing them (killed
    /// without leaving) from the sessions this node has subscribers on, and tells those.
    fn expire_remote_presence(&self) {
        let now = Now::current();
        for channel in self.ctx.hub.local_channels() {
            if !channel.starts_with(cerebrum_protocol::SESSION_PREFIX) {
                continue;
            }
            let gone = self.ctx.hub.broker().presence_expire(&channel);
            if gone.is_empty() {
                continue;
            }
            tracing::info!(channel, members = ?gone, "presence expired (their node stopped refreshing)");
            let topic = lock(&self.ctx.study)
                .topic_of(&channel)
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    channel
                        .strip_prefix(cerebrum_protocol::SESSION_PREFIX)
                        .unwrap_or(&channel)
                        .to_owned()
                });
            self.ctx.publish_session_update(&channel, &topic, now);
        }
    }

    /// Ends the study sessions whose grace period is over.
    async fn expire_presence(&self) {
        let now = Now::current();
        let expired = lock(&self.ctx.study).expire(now);
        for finished in expired {
            let _ = self
                .ctx
                .hub
                .broker()
                .presence_leave(&finished.channel, &finished.user_id);
            let (channel, topic) = (finished.channel.clone(), finished.topic.clone());
            let user = finished.user_id.clone();
            // The record is durable before the remaining members hear that the user left.
            if let Err(err) = self.finish_study(user, Some(finished)).await {
                tracing::error!(%err, "could not record an expired study session");
            }
            self.ctx
                .publish_session_update(&channel, &topic, Now::current());
        }
    }
}

/// Starts servers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Server;

/// Stops a running server: stop accepting, close every connection with 1001, drain, flush
/// the store.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    tx: Arc<watch::Sender<bool>>,
}

impl ShutdownHandle {
    /// Asks the server to shut down (idempotent).
    pub fn shutdown(&self) {
        self.tx.send_replace(true);
    }
}

/// A server that accepts connections.
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    tls: bool,
    handle: ShutdownHandle,
    task: JoinHandle<Result<(), ServerError>>,
    ctx: Arc<Context>,
}

impl RunningServer {
    /// The address it listens on (the real port when bound to port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `ws://HOST:PORT/ws`, or `wss://` with TLS.
    #[must_use]
    pub fn ws_url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}/ws", self.local_addr)
    }

    /// `http://HOST:PORT`, or `https://` with TLS.
    #[must_use]
    pub fn http_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// A handle that shuts the server down.
    #[must_use]
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.handle.clone()
    }

    /// The shared state (hub, metrics, status) of the server.
    #[must_use]
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Waits until the server has shut down (after [`ShutdownHandle::shutdown`]).
    pub async fn wait(self) -> Result<(), ServerError> {
        match self.task.await {
            Ok(result) => result,
            Err(err) => Err(ServerError::Io(std::io::Error::other(err.to_string()))),
        }
    }

    /// Shuts down and waits for the end.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.handle.shutdown();
        self.wait().await
    }
}

fn listen(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    let bind = |source| ServerError::Bind { addr, source };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(bind)?;
    socket.set_reuseaddr(true).map_err(bind)?;
    socket.bind(addr).map_err(bind)?;
    socket.listen(1024).map_err(bind)
}

/// Opens the store of [`ServerConfig::database`] on a blocking thread.
async fn open_store(config: &ServerConfig) -> Result<Arc<dyn Store>, ServerError> {
    let data_dir = config.data_dir.clone();
    let database = config.database.clone();
    tokio::task::spawn_blocking(move || -> Result<Arc<dyn Store>, StoreError> {
        Ok(match database {
            Database::Postgres { url, pool_size } => {
                Arc::new(PostgresStore::connect_with_pool(&url, pool_size)?)
            }
            Database::Sqlite => Arc::new(SqliteStore::open(&data_dir)?),
        })
    })
    .await
    .map_err(|err| ServerError::Io(std::io::Error::other(err.to_string())))?
    .map_err(ServerError::Store)
}

impl Server {
    /// Opens the store, binds the address and starts serving; returns once connections are
    /// accepted.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), cerebrum_server::ServerError> {
    /// let mut config = cerebrum_server::ServerConfig::default();
    /// config.addr = "127.0.0.1:0".parse().expect("address");
    /// let server = cerebrum_server::Server::bind(config).await?;
    /// let url = server.ws_url();
    /// server.shutdown().await?;
    /// # let _ = url;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn bind(config: ServerConfig) -> Result<RunningServer, ServerError> {
        let store = open_store(&config).await?;
        let broker: Arc<dyn Broker> = match &config.redis_url {
            Some(url) => {
                let mut redis = RedisConfig::new(url);
                redis.history_size = config.history_size;
                redis.history_ttl = config.history_ttl;
                redis.presence_ttl = config.presence_ttl;
                redis.presence_refresh = config.presence_refresh;
                Arc::new(RedisBroker::connect(redis).await?)
            }
            None => Arc::new(
                MemoryBroker::new(config.history_size, config.history_ttl)
                    .with_history_budget(config.history_budget_bytes),
            ),
        };
        Self::bind_with(config, store, broker).await
    }

    /// Like [`Server::bind`] with a given store and broker.
    pub async fn bind_with(
        config: ServerConfig,
        store: Arc<dyn Store>,
        broker: Arc<dyn Broker>,
    ) -> Result<RunningServer, ServerError> {
        config.validate()?;
        let tls = config.tls.as_ref().map(crate::tls::acceptor).transpose()?;
        let listener = listen(config.addr)?;
        let local_addr = listener.local_addr()?;
        let ctx = Context::new(config, broker)?;
        let weak = Arc::downgrade(&ctx);
        ctx.hub.broker().attach(Arc::new(move |event| {
            if let Some(ctx) = weak.upgrade() {
                match event {
                    BrokerEvent::Publication(delivery) => ctx.hub.deliver(&delivery),
                    BrokerEvent::Resubscribed => ctx.hub.resync(Instant::now()),
                }
            }
        }));
        let (tx, rx) = watch::channel(false);
        let app = Arc::new(App {
            ctx: ctx.clone(),
            store,
            shutdown: rx,
            open: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            drained: Notify::new(),
        });
        let handle = ShutdownHandle { tx: Arc::new(tx) };
        let background = spawn_background(app.clone());
        let router = crate::http::router(app.clone());
        let is_tls = tls.is_some();
        let task = tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    let listener = crate::tls::TlsListener::new(
                        listener,
                        acceptor,
                        app.ctx.config.max_tls_handshakes,
                    );
                    crate::acceptor::serve(listener, router, app.clone()).await;
                }
                None => {
                    // Small frames go out at once: without TCP_NODELAY, Nagle's algorithm and
                    // delayed ACKs hold them ~40 ms (measured: rooms p99 42 ms before, see
                    // docs/benchmarks.md).
                    let listener = listener.tap_io(|tcp| {
                        if let Err(err) = tcp.set_nodelay(true) {
                            tracing::debug!(%err, "cannot set TCP_NODELAY");
                        }
                    });
                    crate::acceptor::serve(listener, router, app.clone()).await;
                }
            }
            drain(&app).await;
            for task in background {
                task.abort();
            }
            let flushed = app.blocking(|store| store.flush()).await;
            if let Err(err) = &flushed {
                tracing::error!(%err, "could not flush the store");
            }
            tracing::info!("server stopped");
            flushed?;
            Ok(())
        });
        Ok(RunningServer {
            local_addr,
            tls: is_tls,
            handle,
            task,
            ctx,
        })
    }
}

/// Waits for every connection to close, up to the drain timeout.
async fn drain(app: &App) {
    let deadline = Instant::now() + app.ctx.config.drain_timeout;
    while app.open_connections() > 0 {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            tracing::warn!(
                open = app.open_connections(),
                "drain timeout: dropping the remaining connections"
            );
            break;
        }
        let drained = app.drained.notified();
        if app.open_connections() == 0 {
            break;
        }
        let _ = tokio::time::timeout(remaining.min(Duration::from_millis(200)), drained).await;
    }
}

fn spawn_background(app: Arc<App>) -> Vec<JoinHandle<()>> {
    let status_app = app.clone();
    let status = tokio::spawn(async move {
        let config = &status_app.ctx.config;
        let mut last_broadcast = Instant::now();
        let mut tick = tokio::time::interval(config.status_check_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let force = last_broadcast.elapsed() >= config.status_interval;
            status_app.check_status(force).await;
            if force {
                last_broadcast = Instant::now();
            }
        }
    });
    let presence = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sweeps = 0u32;
        loop {
            tick.tick().await;
            app.expire_presence().await;
            sweeps = sweeps.wrapping_add(1);
            if app.ctx.hub.broker().is_remote() && sweeps.is_multiple_of(8) {
                app.expire_remote_presence();
            }
            if sweeps.is_multiple_of(240) {
                app.ctx.hub.sweep(Instant::now());
                app.ctx.dedupe.sweep(Instant::now());
            }
        }
    });
    vec![status, presence]
}
