//! The durable store boundary: study records and notifications.
//!
//! [`Store`] calls block (SQLite runs in process); async code calls them on a blocking thread
//! ([`tokio::task::spawn_blocking`]). [`crate::sqlite::SqliteStore`] is the embedded default; a
//! PostgreSQL implementation fills the same trait.

use cerebrum_protocol::Notification;

pub use cerebrum_server_core::record::{Retention, StudyRecord, session_length, utc_day};

pub mod postgres;
pub mod sqlite;

/// A store failure. Its message is for logs; clients only ever see `internal`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(String),
    /// A stored value could not be read back.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The data directory could not be created or used.
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
}

/// The durable state of the server.
pub trait Store: Send + Sync + 'static {
    /// Adds a finished session of `duration_secs` that ended at `ended_ms` to `user_id`'s
    /// record (exactly `duration_secs / 3600` hours), durably.
    fn record_session(
        &self,
        user_id: &str,
        duration_secs: f64,
        ended_ms: u64,
    ) -> Result<StudyRecord, StoreError>;

    /// `user_id`'s record as of `now_ms` (today and the streak depend on it).
    fn study_record(&self, user_id: &str, now_ms: u64) -> Result<StudyRecord, StoreError>;

    /// Stores a notification for `user_id`, or for everyone when `None`, and applies the
    /// store's [`Retention`] as of `now_ms` (to that user's notifications, and by age to all).
    fn save_notification(
        &self,
        notification: &Notification,
        user_id: Option<&str>,
        now_ms: u64,
    ) -> Result<(), StoreError>;

    /// The notifications `user_id` has not acknowledged, oldest first, at most `limit` of them
    /// (the server delivers them a page at a time).
    fn pending_notifications(
        &self,
        user_id: &str,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError>;

    /// `user_id` acknowledged notification `id`; `false` when no such notification is theirs.
    fn ack_notification(&self, user_id: &str, id: &str, now_ms: u64) -> Result<bool, StoreError>;

    /// A trivial query: whether the database answers.
    fn ping(&self) -> Result<(), StoreError>;

    /// Makes everything written so far durable (called at shutdown).
    fn flush(&self) -> Result<(), StoreError>;
}
