//! The simulated store: study records and notifications with acks, failing on demand.

use std::collections::BTreeMap;

use cerebrum_protocol::Notification;
use cerebrum_server_core::record::StudyRecord;

/// A store failure window.
#[derive(Debug, Default)]
pub(crate) struct SimStore {
    /// Calls fail until then (ms of simulated time).
    pub(crate) failing_until: u64,
    records: BTreeMap<String, StudyRecord>,
    /// Per user: notifications in save order, with whether they were acknowledged.
    pub(crate) notifications: BTreeMap<String, Vec<(Notification, bool)>>,
}

#[derive(Debug)]
pub(crate) struct StoreDown;

impl SimStore {
    fn up(&self, now_ms: u64) -> Result<(), StoreDown> {
        if now_ms >= self.failing_until {
            Ok(())
        } else {
            Err(StoreDown)
        }
    }

    pub(crate) fn record_session(
        &mut self,
        user: &str,
        secs: f64,
        now_ms: u64,
    ) -> Result<StudyRecord, StoreDown> {
        self.up(now_ms)?;
        let record = self.records.entry(user.to_owned()).or_default();
        record.total_hours += secs / 3600.0;
        record.last_session_secs = secs;
        Ok(*record)
    }

    pub(crate) fn study_record(&self, user: &str, now_ms: u64) -> Result<StudyRecord, StoreDown> {
        self.up(now_ms)?;
        Ok(self.records.get(user).copied().unwrap_or_default())
    }

    pub(crate) fn save(
        &mut self,
        user: &str,
        notification: Notification,
        now_ms: u64,
    ) -> Result<(), StoreDown> {
        self.up(now_ms)?;
        self.notifications
            .entry(user.to_owned())
            .or_default()
            .push((notification, false));
        Ok(())
    }

    pub(crate) fn pending(
        &self,
        user: &str,
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<Notification>, StoreDown> {
        self.up(now_ms)?;
        Ok(self
            .notifications
            .get(user)
            .map(|all| {
                all.iter()
                    .filter(|(_, acked)| !acked)
                    .take(limit)
                    .map(|(n, _)| n.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    pub(crate) fn ack(&mut self, user: &str, id: &str, now_ms: u64) -> Result<(), StoreDown> {
        self.up(now_ms)?;
        if let Some(all) = self.notifications.get_mut(user) {
            for (notification, acked) in all.iter_mut() {
                if notification.id == id {
                    *acked = true;
                }
            }
        }
        Ok(())
    }
}
