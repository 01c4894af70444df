//! Level 0: the messages of the origin document, field names byte for byte.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Payload, in_range, js_number, non_empty};
use crate::ProtocolError;

/// `ping` (client→server): any JSON; our clients put a nonce in it.
///
/// ```
/// use cerebrum_protocol::Ping;
/// let ping = Ping(serde_json::json!({"nonce": 42}));
/// assert_eq!(serde_json::to_string(&ping).unwrap(), r#"{"nonce":42}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ping(pub Value);

impl Payload for Ping {
    const TYPE: &'static str = "ping";
    const FREE_FORM: bool = true;
}

/// `pong` (server→client): the ping's payload, echoed verbatim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pong(pub Value);

impl Payload for Pong {
    const TYPE: &'static str = "pong";
    const FREE_FORM: bool = true;
}

/// `study_metrics_update` (server→client): a user's study record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StudyMetrics {
    /// The user the metrics belong to.
    pub user_id: String,
    /// Total hours studied.
    #[serde(serialize_with = "js_number")]
    pub study_hours: f64,
    /// Percent (0-100) of today's goal reached.
    #[serde(serialize_with = "js_number")]
    pub progress: f64,
    /// The topic being studied now; absent when not studying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_topic: Option<String>,
    /// Seconds of the current or last session.
    #[serde(serialize_with = "js_number")]
    pub session_duration: f64,
    /// Consecutive UTC days with at least one finished session.
    pub streak: u32,
}

impl Payload for StudyMetrics {
    const TYPE: &'static str = "study_metrics_update";

    fn validate(&self) -> Result<(), ProtocolError> {
        non_empty("userId", &self.user_id)?;
        in_range("studyHours", self.study_hours, 0.0, f64::MAX)?;
        in_range("progress", self.progress, 0.0, 100.0)?;
        in_range("sessionDuration", self.session_duration, 0.0, f64::MAX)?;
        if let Some(topic) = &self.current_topic {
            non_empty("currentTopic", topic)?;
        }
        Ok(())
    }
}

/// One member of a collaborative study session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    /// The member's user id.
    pub user_id: String,
    /// The member's display name.
    pub user_name: String,
    /// URL of the member's avatar picture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    /// When the member joined, ms since the Unix epoch.
    pub joined_at: u64,
}

/// `collaborative_session_update` (server→client): who studies a topic right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollaborativeSession {
    /// The session's id (our server uses the channel name, `session:<slug>`).
    pub session_id: String,
    /// The topic as people wrote it.
    pub topic: String,
    /// The members present.
    pub participants: Vec<Participant>,
    /// How many users are active in the session.
    pub active_users: u32,
}

impl Payload for CollaborativeSession {
    const TYPE: &'static str = "collaborative_session_update";

    fn validate(&self) -> Result<(), ProtocolError> {
        non_empty("sessionId", &self.session_id)?;
        non_empty("topic", &self.topic)?;
        if let Some(i) = self.participants.iter().position(|p| p.user_id.is_empty()) {
            return Err(ProtocolError::validation(
                format!("participants[{i}].userId"),
                "must not be empty",
            ));
        }
        Ok(())
    }
}

/// The kind of a notification (its `type` field on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    /// Neutral information.
    Info,
    /// Something went well (an achievement).
    Success,
    /// Needs attention soon.
    Warning,
    /// Something failed.
    Error,
}

/// How urgent a notification is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Can wait.
    Low,
    /// Normal.
    Medium,
    /// Show at once.
    High,
}

/// `notification` (server→client): an alert for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Unique id of the notification.
    pub id: String,
    /// Short title.
    pub title: String,
    /// The text.
    pub message: String,
    /// Its kind (`type` on the wire).
    #[serde(rename = "type")]
    pub kind: NotificationKind,
    /// Its urgency.
    pub priority: Priority,
    /// Where the action leads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_url: Option<String>,
    /// The action's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_text: Option<String>,
}

impl Payload for Notification {
    const TYPE: &'static str = "notification";

    fn validate(&self) -> Result<(), ProtocolError> {
        non_empty("id", &self.id)?;
        non_empty("title", &self.title)
    }
}

/// Overall state of the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverallStatus {
    /// Everything works.
    Operational,
    /// Some service is down; the rest works.
    Degraded,
    /// Planned downtime.
    Maintenance,
    /// Not usable.
    Outage,
}

/// Health of each service behind the system (true = up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Services {
    /// The API (the server itself).
    pub api: bool,
    /// The durable store.
    pub database: bool,
    /// The cache or broker.
    pub cache: bool,
    /// File storage.
    pub storage: bool,
}

/// `system_status` (server→client): the system's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemStatus {
    /// Overall state.
    pub status: OverallStatus,
    /// Per-service health.
    pub services: Services,
    /// Seconds since the server started.
    #[serde(serialize_with = "js_number")]
    pub uptime: f64,
    /// When the checks ran, ms since the Unix epoch.
    pub last_check: u64,
}

impl Payload for SystemStatus {
    const TYPE: &'static str = "system_status";

    fn validate(&self) -> Result<(), ProtocolError> {
        in_range("uptime", self.uptime, 0.0, f64::MAX)
    }
}

/// `study_session_start` (client→server): the user starts studying a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StudySessionStart {
    /// The user starting the session.
    pub user_id: String,
    /// The topic as the user wrote it.
    pub topic: String,
    /// When the session started, ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
}

impl Payload for StudySessionStart {
    const TYPE: &'static str = "study_session_start";

    fn validate(&self) -> Result<(), ProtocolError> {
        non_empty("userId", &self.user_id)?;
        crate::validate_topic(&self.topic)
    }
}
