//! System status from real checks: the database answers, the data directory is writable, the
//! broker is reachable.

use std::time::Instant;

use cerebrum_protocol::{OverallStatus, Services, SystemStatus};

/// The results of one round of checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    /// `SELECT 1` answered.
    pub database: bool,
    /// A temporary file could be written in the data directory.
    pub storage: bool,
    /// The broker is reachable.
    pub cache: bool,
}

impl Checks {
    /// The overall status these checks give: `outage` without a database, `degraded` when
    /// another service is down, `operational` otherwise.
    ///
    /// ```
    /// use cerebrum_protocol::OverallStatus;
    /// use cerebrum_server_core::status::Checks;
    /// let all = Checks { database: true, storage: true, cache: true };
    /// assert_eq!(all.overall(), OverallStatus::Operational);
    /// assert_eq!(Checks { storage: false, ..all }.overall(), OverallStatus::Degraded);
    /// assert_eq!(Checks { database: false, ..all }.overall(), OverallStatus::Outage);
    /// ```
    #[must_use]
    pub fn overall(&self) -> OverallStatus {
        if !self.database {
            OverallStatus::Outage
        } else if !self.storage || !self.cache {
            OverallStatus::Degraded
        } else {
            OverallStatus::Operational
        }
    }

    /// The `system_status` payload.
    #[must_use]
    pub fn to_status(&self, started: Instant, now: crate::clock::Now) -> SystemStatus {
        SystemStatus {
            status: self.overall(),
            services: Services {
                api: true,
                database: self.database,
                cache: self.cache,
                storage: self.storage,
            },
            uptime: now.mono.saturating_duration_since(started).as_secs_f64(),
            last_check: now.unix_ms,
        }
    }
}
