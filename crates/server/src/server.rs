//! Binding, the background tasks (status checks, presence expiry), and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::time::{Duration, Instant};

use axum::serve::ListenerExt as _;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::ServerConfig;
use crate::app::App;
use crate::auth::AuthError;
use crate::broker::redis::{RedisBroker, RedisConfig};
use crate::broker::{BrokerEvent, MemoryBroker, RemoteBroker};
use crate::context::Context;
use crate::outbox::lock;
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};
use crate::study::FinishedStudy;
use cerebrum_server_core::Database;

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
    Redis(#[from] crate::broker::redis::RedisSetupError),
    /// Serving failed.
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
    /// The configuration breaks a rule ([`ServerConfig::validate`]).
    #[error("{0}")]
    Config(#[from] cerebrum_server_core::ConfigError),
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

/// A seed for the core's random number generators, from the OS (a restarted server must not
/// draw the channel epochs of its previous life).
fn seed() -> u64 {
    fastrand::u64(..)
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
    let retention = config.notification_retention;
    tokio::task::spawn_blocking(move || -> Result<Arc<dyn Store>, StoreError> {
        Ok(match database {
            Database::Postgres { url, pool_size } => Arc::new(
                PostgresStore::connect_with_pool(&url, pool_size)?.with_retention(retention),
            ),
            Database::Sqlite => Arc::new(SqliteStore::open(&data_dir)?.with_retention(retention)),
            other => {
                return Err(StoreError::Database(format!(
                    "no store for the database {other:?}"
                )));
            }
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
        let remote: Option<Arc<dyn RemoteBroker>> = match &config.redis_url {
            Some(url) => {
                let mut redis = RedisConfig::new(url);
                redis.history_size = config.history_size;
                redis.history_ttl = config.history_ttl;
                redis.presence_ttl = config.presence_ttl;
                redis.presence_refresh = config.presence_refresh;
                redis.dedupe_window = config.dedupe_window;
                Some(Arc::new(RedisBroker::connect(redis).await?))
            }
            None => None,
        };
        Self::bind_with(config, store, remote).await
    }

    /// Like [`Server::bind`] with a given store and, for a node of a group, a given remote
    /// broker (`None`: the core's memory broker orders every channel).
    pub async fn bind_with(
        mut config: ServerConfig,
        store: Arc<dyn Store>,
        remote: Option<Arc<dyn RemoteBroker>>,
    ) -> Result<RunningServer, ServerError> {
        config.validate()?;
        let tls = config
            .tls
            .as_ref()
            .map(crate::net::tls::acceptor)
            .transpose()?;
        let listener = listen(config.addr)?;
        let local_addr = listener.local_addr()?;
        config.hub_shards = std::thread::available_parallelism().map_or(4, |n| n.get() * 8);
        // With a remote broker the memory broker orders the node's own `system` channel only.
        let memory = match remote {
            Some(_) => MemoryBroker::new(16, Duration::from_secs(300), seed()),
            None => MemoryBroker::new(config.history_size, config.history_ttl, seed())
                .with_history_budget(config.history_budget_bytes),
        };
        let ctx = Context::new(
            config,
            memory,
            remote.is_some(),
            seed(),
            crate::clock::now(),
        )?;
        let (tx, rx) = watch::channel(false);
        let app = Arc::new(App {
            ctx: ctx.clone(),
            store,
            remote: remote.clone(),
            shutdown: rx,
            open: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            drained: Notify::new(),
            stopping: AtomicBool::new(false),
            live: std::sync::Mutex::new(std::collections::HashMap::new()),
            resyncing: std::sync::Mutex::new(std::collections::HashSet::new()),
        });
        if let Some(remote) = &remote {
            let weak = Arc::downgrade(&app);
            remote.attach(Arc::new(move |event| {
                let Some(app) = weak.upgrade() else {
                    return;
                };
                match event {
                    BrokerEvent::Publication(delivery) => {
                        if app.ctx.hub.deliver(&delivery, Instant::now()) {
                            let channel = delivery.channel;
                            tokio::spawn(async move { app.resync_gap(&channel).await });
                        }
                    }
                    BrokerEvent::Resubscribed => {
                        tokio::spawn(async move { app.resync().await });
                    }
                }
            }));
        }
        let handle = ShutdownHandle { tx: Arc::new(tx) };
        let background = spawn_background(app.clone());
        let router = crate::net::http::router(app.clone());
        let is_tls = tls.is_some();
        let task = tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    let listener = crate::net::tls::TlsListener::new(
                        listener,
                        acceptor,
                        app.ctx.config.max_tls_handshakes,
                        app.ctx.config.send_buffer,
                    );
                    crate::net::acceptor::serve(listener, router, app.clone()).await;
                }
                None => {
                    // TCP_NODELAY, and the send buffer's cap if any.
                    let send_buffer = app.ctx.config.send_buffer;
                    let listener =
                        listener.tap_io(move |tcp| crate::net::acceptor::tune(tcp, send_buffer));
                    crate::net::acceptor::serve(listener, router, app.clone()).await;
                }
            }
            app.stop_connections();
            drain(&app).await;
            for task in background {
                task.abort();
            }
            record_study_in_progress(&app).await;
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

/// Records every study session still in progress (or in its grace period) as finished now,
/// so that a graceful shutdown loses no study time.
async fn record_study_in_progress(app: &App) {
    let mut in_progress = app.ctx.take_unrecorded();
    in_progress.extend(lock(&app.ctx.study).end_all(crate::clock::now()));
    for finished in in_progress {
        let FinishedStudy {
            user_id,
            duration_secs,
            ended_ms,
            ..
        } = finished;
        let user = user_id.clone();
        let recorded = app
            .blocking(move |store| store.record_session(&user, duration_secs, ended_ms))
            .await;
        if let Err(err) = recorded {
            tracing::error!(%err, user = user_id, "could not record a study session at shutdown");
        }
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
            if sweeps.is_multiple_of(8) {
                app.presence_tasks().await;
            }
            if sweeps.is_multiple_of(240) {
                app.ctx.hub.sweep(Instant::now());
                app.ctx.dedupe.sweep(Instant::now());
            }
        }
    });
    vec![status, presence]
}
