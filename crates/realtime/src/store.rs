//! The dashboard state store: every message folded into one view, by a pure reducer.
//!
//! [`DashboardState::apply`] is a plain function of (state, event): it reads no clock and does
//! no I/O, so it is unit-tested without sockets. A [`Client`](crate::Client) feeds its
//! [`Store`] with every message, status change, latency sample and queue change; apps (the
//! terminal dashboard, a desktop UI) read the latest state or wait for changes.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use cerebrum_core::Status;
use cerebrum_protocol::{
    CollaborativeSession, Envelope, Notification, Payload, StudyMetrics, SystemStatus,
};
use tokio::sync::watch;

/// How many notifications the state keeps by default (the newest).
pub const DEFAULT_NOTIFICATION_HISTORY: usize = 50;

/// How many latency samples the state keeps (the newest).
pub const LATENCY_HISTORY: usize = 60;

/// What the store folds in: a message of the four origin types, or a change of the connection.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StoreEvent {
    /// A `study_metrics_update`.
    StudyMetrics(StudyMetrics),
    /// A `collaborative_session_update`.
    CollaborativeSession(CollaborativeSession),
    /// A `notification`.
    Notification(Notification),
    /// A `system_status`.
    SystemStatus(SystemStatus),
    /// The connection status changed.
    Status(Status),
    /// A round-trip latency sample.
    Latency(Duration),
    /// The number of messages in the offline queue changed.
    Queued(usize),
}

impl StoreEvent {
    /// The store event of an inbound envelope: one of the four origin types with a valid
    /// payload, else `None`.
    ///
    /// ```
    /// use cerebrum_realtime::store::StoreEvent;
    /// let envelope = cerebrum_realtime::decode(
    ///     r#"{"type":"notification","payload":{"id":"n1","title":"Hi","message":"Welcome","type":"info","priority":"low"}}"#,
    /// )?;
    /// assert!(matches!(StoreEvent::from_envelope(&envelope), Some(StoreEvent::Notification(_))));
    /// # Ok::<(), cerebrum_realtime::ProtocolError>(())
    /// ```
    #[must_use]
    pub fn from_envelope(envelope: &Envelope) -> Option<Self> {
        match envelope.kind() {
            StudyMetrics::TYPE => envelope.typed().ok().map(Self::StudyMetrics),
            CollaborativeSession::TYPE => envelope.typed().ok().map(Self::CollaborativeSession),
            Notification::TYPE => envelope.typed().ok().map(Self::Notification),
            SystemStatus::TYPE => envelope.typed().ok().map(Self::SystemStatus),
            _ => None,
        }
    }
}

/// Everything a dashboard shows, as the messages left it.
///
/// ```
/// use std::time::Duration;
/// use cerebrum_realtime::store::{DashboardState, StoreEvent};
/// use cerebrum_realtime::Status;
///
/// let mut state = DashboardState::default();
/// state.apply(&StoreEvent::Status(Status::Connected));
/// state.apply(&StoreEvent::Latency(Duration::from_millis(42)));
/// assert_eq!(state.status, Status::Connected);
/// assert_eq!(state.latency, Some(Duration::from_millis(42)));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DashboardState {
    /// The connection status.
    pub status: Status,
    /// The latest study metrics.
    pub study_metrics: Option<StudyMetrics>,
    /// The live study sessions by topic, each with its participants; a session whose last
    /// participant left is removed.
    pub sessions: BTreeMap<String, CollaborativeSession>,
    /// The newest notifications, oldest first, at most `notification_history`; a notification
    /// re-sent with the same `id` replaces the earlier copy in place.
    pub notifications: VecDeque<Notification>,
    /// How many notifications are kept.
    pub notification_history: usize,
    /// The latest system status.
    pub system_status: Option<SystemStatus>,
    /// The latest round-trip latency.
    pub latency: Option<Duration>,
    /// The newest latency samples, oldest first, at most [`LATENCY_HISTORY`].
    pub latency_history: VecDeque<Duration>,
    /// Messages waiting in the offline queue.
    pub queued: usize,
    /// Messages of the four origin types folded in so far.
    pub messages: u64,
}

impl Default for DashboardState {
    fn default() -> Self {
        Self::with_notification_history(DEFAULT_NOTIFICATION_HISTORY)
    }
}

impl DashboardState {
    /// An empty state keeping the newest `history` notifications.
    #[must_use]
    pub fn with_notification_history(history: usize) -> Self {
        Self {
            status: Status::Disconnected,
            study_metrics: None,
            sessions: BTreeMap::new(),
            notifications: VecDeque::new(),
            notification_history: history,
            system_status: None,
            latency: None,
            latency_history: VecDeque::new(),
            queued: 0,
            messages: 0,
        }
    }

    /// Folds one event into the state (the reducer).
    pub fn apply(&mut self, event: &StoreEvent) {
        match event {
            StoreEvent::StudyMetrics(metrics) => {
                self.messages += 1;
                self.study_metrics = Some(metrics.clone());
            }
            StoreEvent::CollaborativeSession(session) => {
                self.messages += 1;
                if session.participants.is_empty() || session.active_users == 0 {
                    self.sessions.remove(&session.topic);
                } else {
                    self.sessions.insert(session.topic.clone(), session.clone());
                }
            }
            StoreEvent::Notification(notification) => {
                self.messages += 1;
                if let Some(slot) = self
                    .notifications
                    .iter_mut()
                    .find(|n| n.id == notification.id)
                {
                    *slot = notification.clone();
                } else {
                    self.notifications.push_back(notification.clone());
                    while self.notifications.len() > self.notification_history {
                        self.notifications.pop_front();
                    }
                }
            }
            StoreEvent::SystemStatus(status) => {
                self.messages += 1;
                self.system_status = Some(status.clone());
            }
            StoreEvent::Status(status) => self.status = *status,
            StoreEvent::Latency(sample) => {
                self.latency = Some(*sample);
                self.latency_history.push_back(*sample);
                while self.latency_history.len() > LATENCY_HISTORY {
                    self.latency_history.pop_front();
                }
            }
            StoreEvent::Queued(count) => self.queued = *count,
        }
    }

    /// The reducer in functional form: `state` with `event` folded in.
    #[must_use]
    pub fn reduce(mut self, event: &StoreEvent) -> Self {
        self.apply(event);
        self
    }

    /// The participants of the session on `topic`, if one is live.
    #[must_use]
    pub fn participants(&self, topic: &str) -> &[cerebrum_protocol::Participant] {
        self.sessions
            .get(topic)
            .map_or(&[], |session| session.participants.as_slice())
    }
}

/// The observable store a [`Client`](crate::Client) feeds: read the latest
/// [`DashboardState`], or wait for the next change.
///
/// ```no_run
/// # async fn demo(client: cerebrum_realtime::Client) {
/// let store = client.store();
/// let mut changes = store.watch();
/// while changes.changed().await.is_ok() {
///     let state = changes.borrow_and_update();
///     tracing::info!(hours = ?state.study_metrics.as_ref().map(|m| m.study_hours));
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Store {
    state: watch::Receiver<DashboardState>,
}

impl Store {
    pub(crate) fn new(state: watch::Receiver<DashboardState>) -> Self {
        Self { state }
    }

    /// A copy of the current state.
    #[must_use]
    pub fn snapshot(&self) -> DashboardState {
        self.state.borrow().clone()
    }

    /// A watch of the state: `changed().await`, then `borrow()`.
    #[must_use]
    pub fn watch(&self) -> watch::Receiver<DashboardState> {
        self.state.clone()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use cerebrum_protocol::{
        NotificationKind, OverallStatus, Participant, Priority, Services, decode,
    };

    use super::*;

    fn metrics(hours: f64) -> StudyMetrics {
        StudyMetrics {
            user_id: "user-123".into(),
            study_hours: hours,
            progress: 50.0,
            current_topic: Some("Genetics".into()),
            session_duration: 60.0,
            streak: 3,
        }
    }

    fn session(topic: &str, users: &[&str]) -> CollaborativeSession {
        CollaborativeSession {
            session_id: format!("session:{topic}"),
            topic: topic.into(),
            participants: users
                .iter()
                .map(|u| Participant {
                    user_id: (*u).into(),
                    user_name: u.to_uppercase(),
                    avatar_url: None,
                    joined_at: 1,
                })
                .collect(),
            active_users: users.len() as u32,
        }
    }

    fn notification(id: &str, title: &str) -> Notification {
        Notification {
            id: id.into(),
            title: title.into(),
            message: "m".into(),
            kind: NotificationKind::Info,
            priority: Priority::Low,
            action_url: None,
            action_text: None,
        }
    }

    #[test]
    fn latest_metrics_and_system_status_win() {
        let status = SystemStatus {
            status: OverallStatus::Degraded,
            services: Services {
                api: true,
                database: true,
                cache: false,
                storage: true,
            },
            uptime: 5.0,
            last_check: 1,
        };
        let state = DashboardState::default()
            .reduce(&StoreEvent::StudyMetrics(metrics(1.0)))
            .reduce(&StoreEvent::StudyMetrics(metrics(2.5)))
            .reduce(&StoreEvent::SystemStatus(status.clone()));
        assert_eq!(state.study_metrics.unwrap().study_hours, 2.5);
        assert_eq!(state.system_status, Some(status));
        assert_eq!(state.messages, 3);
    }

    #[test]
    fn sessions_are_kept_by_topic_and_removed_when_empty() {
        let mut state = DashboardState::default();
        state.apply(&StoreEvent::CollaborativeSession(session(
            "Genetics",
            &["a", "b"],
        )));
        state.apply(&StoreEvent::CollaborativeSession(session(
            "Evolution",
            &["c"],
        )));
        state.apply(&StoreEvent::CollaborativeSession(session(
            "Genetics",
            &["b"],
        )));
        assert_eq!(state.sessions.len(), 2);
        assert_eq!(state.participants("Genetics").len(), 1);
        assert_eq!(state.participants("Genetics")[0].user_id, "b");
        state.apply(&StoreEvent::CollaborativeSession(session("Evolution", &[])));
        assert!(!state.sessions.contains_key("Evolution"));
        assert!(state.participants("Evolution").is_empty());
    }

    #[test]
    fn notifications_keep_the_newest_n_and_replace_resent_ones() {
        let mut state = DashboardState::with_notification_history(3);
        for i in 0..5 {
            state.apply(&StoreEvent::Notification(notification(
                &format!("n{i}"),
                "t",
            )));
        }
        let ids: Vec<&str> = state.notifications.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["n2", "n3", "n4"]);
        state.apply(&StoreEvent::Notification(notification("n3", "again")));
        let ids: Vec<&str> = state.notifications.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["n2", "n3", "n4"]);
        assert_eq!(state.notifications[1].title, "again");
        assert_eq!(DashboardState::default().notification_history, 50);
    }

    #[test]
    fn latency_history_keeps_the_last_sixty_samples() {
        let mut state = DashboardState::default();
        for ms in 0..100u64 {
            state.apply(&StoreEvent::Latency(Duration::from_millis(ms)));
        }
        assert_eq!(state.latency_history.len(), LATENCY_HISTORY);
        assert_eq!(
            state.latency_history.front(),
            Some(&Duration::from_millis(40))
        );
        assert_eq!(state.latency, Some(Duration::from_millis(99)));
    }

    #[test]
    fn status_and_queue_are_tracked() {
        let state = DashboardState::default()
            .reduce(&StoreEvent::Status(Status::Reconnecting))
            .reduce(&StoreEvent::Queued(4));
        assert_eq!(state.status, Status::Reconnecting);
        assert_eq!(state.queued, 4);
        assert_eq!(state.messages, 0);
    }

    #[test]
    fn envelopes_become_store_events_only_when_valid() {
        let good = decode(r#"{"type":"study_metrics_update","payload":{"userId":"u","studyHours":1,"progress":2,"sessionDuration":3,"streak":4}}"#).unwrap();
        assert!(matches!(
            StoreEvent::from_envelope(&good),
            Some(StoreEvent::StudyMetrics(_))
        ));
        let bad = decode(r#"{"type":"study_metrics_update","payload":{"userId":"u"}}"#).unwrap();
        assert_eq!(StoreEvent::from_envelope(&bad), None);
        let custom = decode(r#"{"type":"quiz.started","payload":{}}"#).unwrap();
        assert_eq!(StoreEvent::from_envelope(&custom), None);
    }
}
