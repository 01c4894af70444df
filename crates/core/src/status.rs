//! The connection status: exactly the origin document's five.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The connection status, with the origin's lower-case names on the wire and in `Display`.
///
/// The transitions are the table in the crate docs; every change is reported as
/// [`crate::Event::StatusChanged`] with its reason.
///
/// ```
/// use cerebrum_core::Status;
/// assert_eq!(Status::default(), Status::Disconnected);
/// assert_eq!(Status::Reconnecting.to_string(), "reconnecting");
/// assert_eq!(serde_json::to_string(&Status::Connected).unwrap(), "\"connected\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// A connection attempt is under way (the first one, or one after a reconnect delay).
    Connecting,
    /// The transport is open.
    Connected,
    /// Not connected and not trying: the initial status, and the status after `disconnect()`
    /// or a lost connection when reconnecting is off.
    #[default]
    Disconnected,
    /// The connection was lost; the next attempt is scheduled.
    Reconnecting,
    /// Given up: every attempt failed, or the server refused the client (close 4001/4003).
    Error,
}

impl Status {
    /// The origin's name: `connecting`, `connected`, `disconnected`, `reconnecting`, `error`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Reconnecting => "reconnecting",
            Self::Error => "error",
        }
    }

    /// Whether the status is `Connected`.
    #[must_use]
    pub fn is_connected(self) -> bool {
        self == Self::Connected
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
