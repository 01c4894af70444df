//! Study records and notification retention: what the store keeps, and the rules that turn a
//! record into the `study_metrics_update` the user sees. The store itself is the driver's.

use cerebrum_protocol::StudyMetrics;

/// A user's durable study record, as the store keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StudyRecord {
    /// Total hours studied.
    pub total_hours: f64,
    /// Hours studied on the current UTC day.
    pub today_hours: f64,
    /// Seconds of the last finished session.
    pub last_session_secs: f64,
    /// Consecutive UTC days with at least one finished session, ending today or yesterday.
    pub streak: u32,
}

impl StudyRecord {
    /// The `study_metrics_update` payload of this record (`progress` against `goal_hours`, no
    /// `currentTopic`).
    ///
    /// ```
    /// use cerebrum_server_core::record::StudyRecord;
    /// let record = StudyRecord { total_hours: 3.0, today_hours: 1.0, last_session_secs: 3600.0, streak: 2 };
    /// let metrics = record.to_metrics("u1", 2.0);
    /// assert_eq!(metrics.progress, 50.0);
    /// assert_eq!(metrics.current_topic, None);
    /// ```
    #[must_use]
    pub fn to_metrics(&self, user_id: &str, goal_hours: f64) -> StudyMetrics {
        let progress = if goal_hours > 0.0 {
            (self.today_hours / goal_hours * 100.0).clamp(0.0, 100.0)
        } else {
            100.0
        };
        StudyMetrics {
            user_id: user_id.to_owned(),
            study_hours: self.total_hours.max(0.0),
            progress,
            current_topic: None,
            session_duration: self.last_session_secs.max(0.0),
            streak: self.streak,
        }
    }
}

impl StudyRecord {
    /// The record from its stored parts: `days` holds (UTC day, hours) pairs, newest first;
    /// today's hours are those of `today`, and the streak counts consecutive days back from
    /// today or yesterday (the same rule for every store).
    ///
    /// ```
    /// use cerebrum_server_core::record::StudyRecord;
    /// let record = StudyRecord::from_days(5.0, 600.0, &[(100, 1.0), (99, 2.0), (97, 2.0)], 100);
    /// assert_eq!((record.today_hours, record.streak), (1.0, 2));
    /// assert_eq!(StudyRecord::from_days(5.0, 600.0, &[(98, 1.0)], 100).streak, 0);
    /// ```
    #[must_use]
    pub fn from_days(
        total_hours: f64,
        last_session_secs: f64,
        days: &[(i64, f64)],
        today: i64,
    ) -> Self {
        let today_hours = days
            .iter()
            .find(|(day, _)| *day == today)
            .map_or(0.0, |(_, h)| *h);
        let mut streak = 0u32;
        if let Some((first, _)) = days.first()
            && (*first == today || *first == today - 1)
        {
            let mut expected = *first;
            for (day, _) in days {
                if *day == expected {
                    streak += 1;
                    expected -= 1;
                } else {
                    break;
                }
            }
        }
        Self {
            total_hours,
            today_hours,
            last_session_secs,
            streak,
        }
    }
}

/// A finished session's length as stored: negative or non-finite durations count as 0 (the
/// same rule for every store). Returns the seconds and the hours.
///
/// ```
/// use cerebrum_server_core::record::session_length;
/// assert_eq!(session_length(5400.0), (5400.0, 1.5));
/// assert_eq!(session_length(f64::NAN), (0.0, 0.0));
/// assert_eq!(session_length(-3.0), (0.0, 0.0));
/// ```
#[must_use]
pub fn session_length(duration_secs: f64) -> (f64, f64) {
    let secs = if duration_secs.is_finite() {
        duration_secs.max(0.0)
    } else {
        0.0
    };
    (secs, secs / 3600.0)
}

/// The UTC day number (days since the Unix epoch) of `unix_ms`.
#[must_use]
pub fn utc_day(unix_ms: u64) -> i64 {
    i64::try_from(unix_ms / 86_400_000).unwrap_or(i64::MAX)
}

/// How long notifications are kept, and how many: enforced by every store when it saves one.
///
/// A user's notifications (and those for everyone) beyond the newest `max_per_user`, and every
/// notification older than `max_age`, are deleted with their acks, acknowledged or not.
///
/// ```
/// use cerebrum_server_core::record::Retention;
/// let retention = Retention::default();
/// assert_eq!(retention.max_per_user, 500);
/// assert_eq!(retention.max_age.as_secs(), 30 * 86_400);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// Notifications kept per user (and for everyone), the newest.
    pub max_per_user: usize,
    /// Age after which a notification is deleted.
    pub max_age: std::time::Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_per_user: 500,
            max_age: std::time::Duration::from_secs(30 * 86_400),
        }
    }
}

impl Retention {
    /// Keeps `max_per_user` notifications per user for at most `max_age`.
    #[must_use]
    pub fn new(max_per_user: usize, max_age: std::time::Duration) -> Self {
        Self {
            max_per_user,
            max_age,
        }
    }

    /// The creation time (ms since the Unix epoch) before which notifications are deleted,
    /// as of `now_ms`.
    #[must_use]
    pub fn cutoff_ms(&self, now_ms: u64) -> i64 {
        let age = u64::try_from(self.max_age.as_millis()).unwrap_or(u64::MAX);
        i64::try_from(now_ms.saturating_sub(age)).unwrap_or(i64::MAX)
    }

    /// `max_per_user` as an SQL `OFFSET`.
    #[must_use]
    pub fn keep(&self) -> i64 {
        i64::try_from(self.max_per_user).unwrap_or(i64::MAX)
    }
}
