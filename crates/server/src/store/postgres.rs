//! The shared [`Store`] for several server nodes: PostgreSQL through the synchronous `postgres`
//! crate, a small connection pool, versioned migrations run under an advisory lock.
//!
//! The semantics are exactly those of [`crate::sqlite::SqliteStore`]: hours add up exactly,
//! today is the UTC day, a streak counts consecutive UTC days ending today or yesterday,
//! notifications are for one user or for everyone, pending ones come oldest first.
//!
//! Like every [`Store`], its calls block: async code runs them on a blocking thread
//! ([`tokio::task::spawn_blocking`]), never directly on a runtime's worker (the `postgres` crate
//! drives its own small runtime and refuses to run inside another one).

use std::fmt;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use ::postgres::{Client, Config, GenericClient, NoTls, Row};
use cerebrum_protocol::Notification;

use crate::outbox::lock;
use crate::store::{Retention, Store, StoreError, StudyRecord, session_length, utc_day};

/// Connections of the pool by default.
pub const DEFAULT_POOL_SIZE: usize = 4;

/// How long opening a connection may take when the URL sets no `connect_timeout`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a call waits for a free connection when all of the pool's are busy.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);

/// Key of the advisory lock that serialises the migrations of nodes starting at once
/// (`"cerebrum"` in ASCII).
const MIGRATION_LOCK: i64 = 0x6365_7265_6272_756d;

/// The migrations, in order; `schema_migrations` records which ran. The tables match
/// [`crate::sqlite`]'s: floats are `double precision`, timestamps `bigint` milliseconds.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE study_totals (
        user_id TEXT PRIMARY KEY,
        total_hours DOUBLE PRECISION NOT NULL,
        last_session_secs DOUBLE PRECISION NOT NULL,
        updated_ms BIGINT NOT NULL
    );
    CREATE TABLE study_days (
        user_id TEXT NOT NULL,
        day BIGINT NOT NULL,
        hours DOUBLE PRECISION NOT NULL,
        sessions BIGINT NOT NULL,
        PRIMARY KEY (user_id, day)
    );
    CREATE TABLE notifications (
        seq BIGSERIAL PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        user_id TEXT,
        payload TEXT NOT NULL,
        created_ms BIGINT NOT NULL
    );
    CREATE INDEX notifications_user ON notifications (user_id);
    CREATE TABLE notification_acks (
        notification_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        acked_ms BIGINT NOT NULL,
        PRIMARY KEY (notification_id, user_id)
    );",
    ),
    // Retention: the newest of a user's notifications, and the oldest of all, are found by index.
    (
        2,
        "CREATE INDEX notifications_user_seq ON notifications (user_id, seq);
         CREATE INDEX notifications_created ON notifications (created_ms);",
    ),
];

/// The PostgreSQL store.
///
/// ```no_run
/// use cerebrum_server::{postgres::PostgresStore, store::Store};
/// let store = PostgresStore::connect("postgres://cerebrum@127.0.0.1:5432/cerebrum")?;
/// let record = store.record_session("ada", 1800.0, 1_732_752_000_000)?;
/// assert_eq!(record.total_hours, 0.5);
/// # Ok::<(), cerebrum_server::store::StoreError>(())
/// ```
pub struct PostgresStore {
    pool: Pool,
    retention: Retention,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.pool.target)
            .field("pool_size", &self.pool.size)
            .finish_non_exhaustive()
    }
}

fn db(err: &::postgres::Error) -> StoreError {
    match err.as_db_error() {
        Some(db) => StoreError::Database(format!(
            "postgres {} {}: {}",
            db.severity(),
            db.code().code(),
            db.message()
        )),
        None => StoreError::Database(format!("postgres: {err}")),
    }
}

fn corrupt(err: &::postgres::Error) -> StoreError {
    StoreError::Corrupt(format!("postgres: {err}"))
}

fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Where a config points, without its password: `user@host:port/dbname`.
fn target(config: &Config) -> String {
    let hosts = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            ::postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            ::postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",");
    let ports = config
        .get_ports()
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "{}@{}:{}/{}",
        config.get_user().unwrap_or("?"),
        hosts,
        if ports.is_empty() { "5432" } else { &ports },
        config.get_dbname().or(config.get_user()).unwrap_or("?")
    )
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/dbname[?options]`, or
    /// `postgresql://…`) with a pool of [`DEFAULT_POOL_SIZE`] connections and runs the
    /// migrations the database lacks.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_pool(url, DEFAULT_POOL_SIZE)
    }

    /// Like [`PostgresStore::connect`] with at most `pool_size` connections (at least 1).
    ///
    /// Connections open on demand up to `pool_size`; one that failed is dropped, and the next
    /// call opens a new one. Opening times out after [`CONNECT_TIMEOUT`] unless the URL sets
    /// `connect_timeout`. TLS is not supported (`sslmode=require` fails to connect).
    pub fn connect_with_pool(url: &str, pool_size: usize) -> Result<Self, StoreError> {
        let url = url.trim();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::Database(
                "a PostgreSQL URL starts with postgres:// or postgresql://".into(),
            ));
        }
        let mut config: Config = url
            .parse()
            .map_err(|err| StoreError::Database(format!("invalid PostgreSQL URL: {err}")))?;
        if config.get_hosts().is_empty() {
            return Err(StoreError::Database(
                "the PostgreSQL URL names no host (postgres://user@host:port/dbname)".into(),
            ));
        }
        if config.get_user().is_none() {
            return Err(StoreError::Database(
                "the PostgreSQL URL names no user (postgres://user@host:port/dbname)".into(),
            ));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("cerebrum-server");
        }
        let store = Self {
            pool: Pool {
                target: target(&config),
                config,
                size: pool_size.max(1),
                state: Mutex::new(PoolState::default()),
                freed: Condvar::new(),
            },
            retention: Retention::default(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The store with `retention` instead of [`Retention::default`].
    #[must_use]
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The most connections the pool opens.
    #[must_use]
    pub fn pool_size(&self) -> usize {
        self.pool.size
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.pool.with(|client| {
            let row = client
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                    &[],
                )
                .map_err(|err| db(&err))?;
            row.try_get(0).map_err(|err| corrupt(&err))
        })
    }

    /// Runs the missing migrations in one transaction, under an advisory lock so that nodes
    /// starting together apply each migration once.
    fn migrate(&self) -> Result<(), StoreError> {
        self.pool.with(|client| {
            let mut tx = client.transaction().map_err(|err| db(&err))?;
            tx.batch_execute(&format!(
                "SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
                 CREATE TABLE IF NOT EXISTS schema_migrations (
                    version BIGINT PRIMARY KEY,
                    applied_ms BIGINT NOT NULL
                 );"
            ))
            .map_err(|err| db(&err))?;
            let current: i64 = tx
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                    &[],
                )
                .map_err(|err| db(&err))?
                .try_get(0)
                .map_err(|err| corrupt(&err))?;
            for (version, sql) in MIGRATIONS {
                if *version > current {
                    tx.batch_execute(sql).map_err(|err| db(&err))?;
                    tx.execute(
                        "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
                        &[version, &ms(crate::clock::unix_ms())],
                    )
                    .map_err(|err| db(&err))?;
                }
            }
            tx.commit().map_err(|err| db(&err))
        })
    }
}

fn record(
    client: &mut impl GenericClient,
    user_id: &str,
    now_ms: u64,
) -> Result<StudyRecord, StoreError> {
    let totals = client
        .query_opt(
            "SELECT total_hours, last_session_secs FROM study_totals WHERE user_id = $1",
            &[&user_id],
        )
        .map_err(|err| db(&err))?;
    let (total_hours, last_session_secs) = match totals {
        Some(row) => (
            row.try_get::<_, f64>(0).map_err(|err| corrupt(&err))?,
            row.try_get::<_, f64>(1).map_err(|err| corrupt(&err))?,
        ),
        None => (0.0, 0.0),
    };
    let today = utc_day(now_ms);
    let days = client
        .query(
            "SELECT day, hours FROM study_days WHERE user_id = $1 AND day <= $2 ORDER BY day DESC",
            &[&user_id, &today],
        )
        .map_err(|err| db(&err))?
        .iter()
        .map(|row| Ok((row.try_get::<_, i64>(0)?, row.try_get::<_, f64>(1)?)))
        .collect::<Result<Vec<_>, ::postgres::Error>>()
        .map_err(|err| corrupt(&err))?;
    Ok(StudyRecord::from_days(
        total_hours,
        last_session_secs,
        &days,
        today,
    ))
}

fn payloads(rows: &[Row]) -> Result<Vec<Notification>, StoreError> {
    rows.iter()
        .map(|row| {
            let text: &str = row.try_get(0).map_err(|err| corrupt(&err))?;
            serde_json::from_str(text).map_err(|err| StoreError::Corrupt(err.to_string()))
        })
        .collect()
}

impl Store for PostgresStore {
    fn record_session(
        &self,
        user_id: &str,
        duration_secs: f64,
        ended_ms: u64,
    ) -> Result<StudyRecord, StoreError> {
        let (duration_secs, hours) = session_length(duration_secs);
        self.pool.with(|client| {
            let mut tx = client.transaction().map_err(|err| db(&err))?;
            tx.execute(
                "INSERT INTO study_totals (user_id, total_hours, last_session_secs, updated_ms)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (user_id) DO UPDATE SET
                    total_hours = study_totals.total_hours + EXCLUDED.total_hours,
                    last_session_secs = EXCLUDED.last_session_secs,
                    updated_ms = EXCLUDED.updated_ms",
                &[&user_id, &hours, &duration_secs, &ms(ended_ms)],
            )
            .map_err(|err| db(&err))?;
            tx.execute(
                "INSERT INTO study_days (user_id, day, hours, sessions) VALUES ($1, $2, $3, 1)
                 ON CONFLICT (user_id, day) DO UPDATE SET
                    hours = study_days.hours + EXCLUDED.hours,
                    sessions = study_days.sessions + 1",
                &[&user_id, &utc_day(ended_ms), &hours],
            )
            .map_err(|err| db(&err))?;
            tx.commit().map_err(|err| db(&err))?;
            record(client, user_id, ended_ms.max(crate::clock::unix_ms()))
        })
    }

    fn study_record(&self, user_id: &str, now_ms: u64) -> Result<StudyRecord, StoreError> {
        self.pool.with(|client| record(client, user_id, now_ms))
    }

    fn save_notification(
        &self,
        notification: &Notification,
        user_id: Option<&str>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let payload = serde_json::to_string(notification)
            .map_err(|err| StoreError::Corrupt(err.to_string()))?;
        let retention = self.retention;
        self.pool.with(|client| {
            let mut tx = client.transaction().map_err(|err| db(&err))?;
            tx.execute(
                "INSERT INTO notifications (id, user_id, payload, created_ms)
                 VALUES ($1, $2, $3, $4)",
                &[&notification.id, &user_id, &payload, &ms(now_ms)],
            )
            .map_err(|err| db(&err))?;
            // Retention: by age for everyone, by count for this user.
            let cutoff = retention.cutoff_ms(now_ms);
            tx.execute(
                "DELETE FROM notification_acks WHERE notification_id IN
                    (SELECT id FROM notifications WHERE created_ms < $1)",
                &[&cutoff],
            )
            .map_err(|err| db(&err))?;
            tx.execute(
                "DELETE FROM notifications WHERE created_ms < $1",
                &[&cutoff],
            )
            .map_err(|err| db(&err))?;
            // `IS NOT DISTINCT FROM` would match NULL too, but no index serves it.
            let whose = if user_id.is_some() {
                "user_id = $1"
            } else {
                "user_id IS NULL AND $1::text IS NULL"
            };
            let last_dropped = tx
                .query_opt(
                    &format!(
                        "SELECT seq FROM notifications WHERE {whose}
                         ORDER BY seq DESC LIMIT 1 OFFSET $2"
                    ),
                    &[&user_id, &retention.keep()],
                )
                .map_err(|err| db(&err))?;
            if let Some(row) = last_dropped {
                let seq: i64 = row.try_get(0).map_err(|err| corrupt(&err))?;
                tx.execute(
                    &format!(
                        "DELETE FROM notification_acks WHERE notification_id IN
                            (SELECT id FROM notifications WHERE {whose} AND seq <= $2)"
                    ),
                    &[&user_id, &seq],
                )
                .map_err(|err| db(&err))?;
                tx.execute(
                    &format!("DELETE FROM notifications WHERE {whose} AND seq <= $2"),
                    &[&user_id, &seq],
                )
                .map_err(|err| db(&err))?;
            }
            tx.commit().map_err(|err| db(&err))
        })
    }

    fn pending_notifications(
        &self,
        user_id: &str,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.pool.with(|client| {
            client
                .query(
                    "SELECT n.payload FROM notifications n
                     WHERE (n.user_id = $1 OR n.user_id IS NULL)
                       AND NOT EXISTS (SELECT 1 FROM notification_acks a
                                       WHERE a.notification_id = n.id AND a.user_id = $1)
                     ORDER BY n.seq LIMIT $2",
                    &[&user_id, &limit],
                )
                .map_err(|err| db(&err))
        })?;
        payloads(&rows)
    }

    fn ack_notification(&self, user_id: &str, id: &str, now_ms: u64) -> Result<bool, StoreError> {
        self.pool.with(|client| {
            let theirs = client
                .query_opt(
                    "SELECT seq FROM notifications
                     WHERE id = $1 AND (user_id = $2 OR user_id IS NULL)",
                    &[&id, &user_id],
                )
                .map_err(|err| db(&err))?;
            if theirs.is_none() {
                return Ok(false);
            }
            client
                .execute(
                    "INSERT INTO notification_acks (notification_id, user_id, acked_ms)
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&id, &user_id, &ms(now_ms)],
                )
                .map_err(|err| db(&err))?;
            Ok(true)
        })
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.pool.with(|client| {
            client
                .query_one("SELECT 1", &[])
                .map(drop)
                .map_err(|err| db(&err))
        })
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Every call commits before it returns, and PostgreSQL commits are durable.
        Ok(())
    }
}

/// A small blocking pool: idle connections are reused, new ones open on demand up to `size`,
/// and a connection whose call failed is dropped (the next call opens a fresh one).
struct Pool {
    config: Config,
    /// `user@host:port/dbname`, for messages (never the password).
    target: String,
    size: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Client>,
    /// Connections handed out (or being opened) right now.
    leased: usize,
}

impl Pool {
    /// Runs `call` on a pooled connection.
    fn with<T>(
        &self,
        call: impl FnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut client = self.checkout()?;
        let result = call(&mut client);
        // A failed call may leave the connection broken or inside an aborted transaction:
        // drop it rather than reuse it.
        self.give_back(result.is_ok().then_some(client));
        result
    }

    fn checkout(&self) -> Result<Client, StoreError> {
        let deadline = Instant::now() + CHECKOUT_TIMEOUT;
        let mut state = lock(&self.state);
        loop {
            while let Some(client) = state.idle.pop() {
                if !client.is_closed() {
                    state.leased += 1;
                    return Ok(client);
                }
                // Closed while idle (e.g. the server restarted): drop it off the lock.
                drop(state);
                drop(client);
                state = lock(&self.state);
            }
            if state.leased < self.size {
                state.leased += 1;
                drop(state);
                return self.config.connect(NoTls).map_err(|err| {
                    self.give_back(None);
                    StoreError::Database(format!(
                        "cannot connect to PostgreSQL at {}: {err}",
                        self.target
                    ))
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::Database(format!(
                    "all {} PostgreSQL connections stayed busy for {} s",
                    self.size,
                    CHECKOUT_TIMEOUT.as_secs()
                )));
            }
            state = self
                .freed
                .wait_timeout(state, deadline - now)
                .map(|(state, _)| state)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
    }

    /// Ends a lease: `Some` goes back to the idle list, `None` only frees its slot.
    fn give_back(&self, client: Option<Client>) {
        let mut state = lock(&self.state);
        state.leased = state.leased.saturating_sub(1);
        let dropped = match client {
            Some(client) if !client.is_closed() => {
                state.idle.push(client);
                None
            }
            other => other,
        };
        drop(state);
        self.freed.notify_one();
        drop(dropped);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing a `postgres::Client` blocks on its own runtime, which panics inside an async
        // context (the last `Arc` of the server's store may go away on a runtime worker): close
        // them on a plain thread.
        let idle = std::mem::take(
            &mut self
                .state
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .idle,
        );
        if idle.is_empty() {
            return;
        }
        let slot = std::sync::Arc::new(Mutex::new(Some(idle)));
        let theirs = slot.clone();
        match std::thread::Builder::new()
            .name("cerebrum-pg-close".into())
            .spawn(move || drop(lock(&theirs).take()))
        {
            Ok(closer) => {
                let _ = closer.join();
            }
            // No thread: leak the connections rather than risk a panic; the server closes
            // them when the process ends.
            Err(err) => {
                tracing::warn!(%err, "could not close the PostgreSQL connections");
                std::mem::forget(lock(&slot).take());
            }
        }
    }
}
