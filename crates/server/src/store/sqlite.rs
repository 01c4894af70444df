//! The embedded [`Store`]: one SQLite file in the data directory, WAL mode with
//! `synchronous=FULL` (every commit durable before it returns), versioned migrations.

use std::path::Path;
use std::sync::Mutex;

use cerebrum_protocol::Notification;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::outbox::lock;
use crate::store::{Retention, Store, StoreError, StudyRecord, session_length, utc_day};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "cerebrum.sqlite3";

/// The migrations, in order; `schema_migrations` records which ran.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE study_totals (
        user_id TEXT PRIMARY KEY,
        total_hours REAL NOT NULL,
        last_session_secs REAL NOT NULL,
        updated_ms INTEGER NOT NULL
    );
    CREATE TABLE study_days (
        user_id TEXT NOT NULL,
        day INTEGER NOT NULL,
        hours REAL NOT NULL,
        sessions INTEGER NOT NULL,
        PRIMARY KEY (user_id, day)
    );
    CREATE TABLE notifications (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        user_id TEXT,
        payload TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE INDEX notifications_user ON notifications (user_id);
    CREATE TABLE notification_acks (
        notification_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        acked_ms INTEGER NOT NULL,
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

/// The SQLite store.
///
/// ```
/// use cerebrum_server::{sqlite::SqliteStore, store::Store};
/// let dir = std::env::temp_dir().join(format!("cerebrum-doc-{}", std::process::id()));
/// let store = SqliteStore::open(&dir)?;
/// let record = store.record_session("ada", 1800.0, 1_732_752_000_000)?;
/// assert_eq!(record.total_hours, 0.5);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), cerebrum_server::store::StoreError>(())
/// ```
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    retention: Retention,
}

fn db(err: rusqlite::Error) -> StoreError {
    StoreError::Database(err.to_string())
}

impl SqliteStore {
    /// Opens (creating it and the directory when needed) the database in `data_dir` and runs
    /// the migrations it lacks.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let mut conn = Connection::open(data_dir.join(DB_FILE)).map_err(db)?;
        // First, so that the set-up below waits for other processes opening the same file.
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        // FULL: every commit syncs the WAL before it returns, so a write the server has
        // acknowledged (a study session, a notification ack) survives a power loss. NORMAL
        // would sync only at checkpoints (the cost is in docs/benchmarks.md).
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY,
                applied_ms INTEGER NOT NULL
            );",
        )
        .map_err(db)?;
        // One write transaction that reads the version and applies what is missing: stores
        // opened at once on the same file migrate one after the other, each migration once.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let current: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |row| row.get(0),
            )
            .map_err(db)?;
        for (version, sql) in MIGRATIONS {
            if *version > current {
                tx.execute_batch(sql).map_err(db)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_ms) VALUES (?1, ?2)",
                    params![version, now_ms()],
                )
                .map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        Ok(Self {
            conn: Mutex::new(conn),
            retention: Retention::default(),
        })
    }

    /// The store with `retention` instead of [`Retention::default`].
    #[must_use]
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        lock(&self.conn)
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |row| {
                row.get(0)
            })
            .map_err(db)
    }
}

fn now_ms() -> i64 {
    i64::try_from(crate::clock::unix_ms()).unwrap_or(i64::MAX)
}

fn record(conn: &Connection, user_id: &str, now_ms: u64) -> Result<StudyRecord, StoreError> {
    let totals: Option<(f64, f64)> = conn
        .query_row(
            "SELECT total_hours, last_session_secs FROM study_totals WHERE user_id = ?1",
            params![user_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(db)?;
    let (total_hours, last_session_secs) = totals.unwrap_or((0.0, 0.0));
    let today = utc_day(now_ms);
    let mut stmt = conn
        .prepare_cached(
            "SELECT day, hours FROM study_days WHERE user_id = ?1 AND day <= ?2 ORDER BY day DESC",
        )
        .map_err(db)?;
    let days = stmt
        .query_map(params![user_id, today], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, f64>(1)?))
        })
        .map_err(db)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db)?;
    Ok(StudyRecord::from_days(
        total_hours,
        last_session_secs,
        &days,
        today,
    ))
}

impl Store for SqliteStore {
    fn record_session(
        &self,
        user_id: &str,
        duration_secs: f64,
        ended_ms: u64,
    ) -> Result<StudyRecord, StoreError> {
        let (duration_secs, hours) = session_length(duration_secs);
        let mut conn = lock(&self.conn);
        let tx = conn.transaction().map_err(db)?;
        let ended = i64::try_from(ended_ms).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO study_totals (user_id, total_hours, last_session_secs, updated_ms)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (user_id) DO UPDATE SET
                total_hours = total_hours + excluded.total_hours,
                last_session_secs = excluded.last_session_secs,
                updated_ms = excluded.updated_ms",
            params![user_id, hours, duration_secs, ended],
        )
        .map_err(db)?;
        tx.execute(
            "INSERT INTO study_days (user_id, day, hours, sessions) VALUES (?1, ?2, ?3, 1)
             ON CONFLICT (user_id, day) DO UPDATE SET
                hours = hours + excluded.hours, sessions = sessions + 1",
            params![user_id, utc_day(ended_ms), hours],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        record(&conn, user_id, ended_ms.max(crate::clock::unix_ms()))
    }

    fn study_record(&self, user_id: &str, now_ms: u64) -> Result<StudyRecord, StoreError> {
        record(&lock(&self.conn), user_id, now_ms)
    }

    fn save_notification(
        &self,
        notification: &Notification,
        user_id: Option<&str>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let payload = serde_json::to_string(notification)
            .map_err(|err| StoreError::Corrupt(err.to_string()))?;
        let mut conn = lock(&self.conn);
        let tx = conn.transaction().map_err(db)?;
        tx.execute(
            "INSERT INTO notifications (id, user_id, payload, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![
                notification.id,
                user_id,
                payload,
                i64::try_from(now_ms).unwrap_or(i64::MAX)
            ],
        )
        .map_err(db)?;
        // Retention: by age for everyone, by count for this user (`IS` matches NULL too).
        let cutoff = self.retention.cutoff_ms(now_ms);
        tx.execute(
            "DELETE FROM notification_acks WHERE notification_id IN
                (SELECT id FROM notifications WHERE created_ms < ?1)",
            params![cutoff],
        )
        .map_err(db)?;
        tx.execute(
            "DELETE FROM notifications WHERE created_ms < ?1",
            params![cutoff],
        )
        .map_err(db)?;
        let last_dropped: Option<i64> = tx
            .query_row(
                "SELECT seq FROM notifications WHERE user_id IS ?1
                 ORDER BY seq DESC LIMIT 1 OFFSET ?2",
                params![user_id, self.retention.keep()],
                |row| row.get(0),
            )
            .optional()
            .map_err(db)?;
        if let Some(seq) = last_dropped {
            tx.execute(
                "DELETE FROM notification_acks WHERE notification_id IN
                    (SELECT id FROM notifications WHERE user_id IS ?1 AND seq <= ?2)",
                params![user_id, seq],
            )
            .map_err(db)?;
            tx.execute(
                "DELETE FROM notifications WHERE user_id IS ?1 AND seq <= ?2",
                params![user_id, seq],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    fn pending_notifications(
        &self,
        user_id: &str,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let conn = lock(&self.conn);
        let mut stmt = conn
            .prepare_cached(
                "SELECT n.payload FROM notifications n
                 WHERE (n.user_id = ?1 OR n.user_id IS NULL)
                   AND NOT EXISTS (SELECT 1 FROM notification_acks a
                                   WHERE a.notification_id = n.id AND a.user_id = ?1)
                 ORDER BY n.seq LIMIT ?2",
            )
            .map_err(db)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![user_id, limit], |row| row.get::<_, String>(0))
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        rows.iter()
            .map(|text| {
                serde_json::from_str(text).map_err(|err| StoreError::Corrupt(err.to_string()))
            })
            .collect()
    }

    fn ack_notification(&self, user_id: &str, id: &str, now_ms: u64) -> Result<bool, StoreError> {
        let conn = lock(&self.conn);
        let theirs: Option<i64> = conn
            .query_row(
                "SELECT seq FROM notifications WHERE id = ?1 AND (user_id = ?2 OR user_id IS NULL)",
                params![id, user_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(db)?;
        if theirs.is_none() {
            return Ok(false);
        }
        conn.execute(
            "INSERT OR IGNORE INTO notification_acks (notification_id, user_id, acked_ms) VALUES (?1, ?2, ?3)",
            params![id, user_id, i64::try_from(now_ms).unwrap_or(i64::MAX)],
        )
        .map_err(db)?;
        Ok(true)
    }

    fn ping(&self) -> Result<(), StoreError> {
        lock(&self.conn)
            .query_row("SELECT 1", [], |row| row.get::<_, i64>(0))
            .map(drop)
            .map_err(db)
    }

    fn flush(&self) -> Result<(), StoreError> {
        lock(&self.conn)
            .execute_batch("PRAGMA wal_checkpoint(PASSIVE);")
            .map_err(db)
    }
}

// The behaviour tests are in `tests/store_suite.rs`, shared with the PostgreSQL store.

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_are_synced_before_they_return() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let journal: String = lock(&store.conn)
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        let synchronous: i64 = lock(&store.conn)
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .unwrap();
        // WAL with synchronous=FULL (2): the WAL is synced at every commit, so what the server
        // acknowledged survives a power loss (NORMAL, 1, syncs only at checkpoints).
        assert_eq!((journal.as_str(), synchronous), ("wal", 2));
    }
}
