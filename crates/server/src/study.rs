//! Study sessions in progress: who studies which topic, since when, on which connections, and
//! the presence grace period after a connection loss.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use cerebrum_protocol::Participant;

use crate::clock::Now;
use crate::hub::ConnId;

/// A study session that just ended: what the store adds to the user's record.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedStudy {
    /// The user.
    pub user_id: String,
    /// The topic as the user wrote it.
    pub topic: String,
    /// The session channel, `session:<slug>`.
    pub channel: String,
    /// Length of the session, in seconds.
    pub duration_secs: f64,
    /// When it ended, ms since the Unix epoch.
    pub ended_ms: u64,
}

#[derive(Debug)]
struct Active {
    topic: String,
    participant: Participant,
    started_ms: u64,
    conns: HashSet<ConnId>,
    leaving_since: Option<Instant>,
}

/// What [`StudyTracker::start`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Joined {
    /// The user was not in the session: a new member.
    New,
    /// The user was already a member (another connection, or back within the grace period).
    Again,
}

/// The study sessions in progress. Synchronous, time passed in.
///
/// ```
/// use std::time::Duration;
/// use cerebrum_server::{clock::Now, study::StudyTracker};
///
/// let mut tracker = StudyTracker::new(Duration::from_secs(10));
/// let t0 = Now::current();
/// tracker.start(1, "ada", "Ada", "Genetics", "session:genetics", t0);
/// let done = tracker.end("ada", "session:genetics", t0.plus_ms(90_000)).unwrap();
/// assert_eq!(done.duration_secs, 90.0);
/// ```
#[derive(Debug)]
pub struct StudyTracker {
    grace: Duration,
    active: BTreeMap<(String, String), Active>,
}

impl StudyTracker {
    /// A tracker whose members stay present `grace` after losing their last connection.
    #[must_use]
    pub fn new(grace: Duration) -> Self {
        Self {
            grace,
            active: BTreeMap::new(),
        }
    }

    /// `user` starts (or, from another connection or back within the grace period, continues)
    /// studying `topic` on `channel`.
    pub fn start(
        &mut self,
        conn: ConnId,
        user: &str,
        name: &str,
        topic: &str,
        channel: &str,
        now: Now,
    ) -> Joined {
        let key = (user.to_owned(), channel.to_owned());
        if let Some(active) = self.active.get_mut(&key) {
            active.conns.insert(conn);
            active.leaving_since = None;
            return Joined::Again;
        }
        self.active.insert(
            key,
            Active {
                topic: topic.to_owned(),
                participant: Participant {
                    user_id: user.to_owned(),
                    user_name: name.to_owned(),
                    avatar_url: None,
                    joined_at: now.unix_ms,
                },
                started_ms: now.unix_ms,
                conns: HashSet::from([conn]),
                leaving_since: None,
            },
        );
        Joined::New
    }

    /// How many study sessions `user` is in (its grace periods included).
    #[must_use]
    pub fn sessions_of(&self, user: &str) -> usize {
        self.active
            .range((user.to_owned(), String::new())..)
            .take_while(|((owner, _), _)| owner == user)
            .count()
    }

    /// Whether `user` is in the study session of `channel`.
    #[must_use]
    pub fn is_member(&self, user: &str, channel: &str) -> bool {
        self.active
            .contains_key(&(user.to_owned(), channel.to_owned()))
    }

    /// The participant record of `user` in `channel`.
    #[must_use]
    pub fn participant(&self, user: &str, channel: &str) -> Option<&Participant> {
        self.active
            .get(&(user.to_owned(), channel.to_owned()))
            .map(|a| &a.participant)
    }

    /// `user` ends the session on `channel`.
    pub fn end(&mut self, user: &str, channel: &str, now: Now) -> Option<FinishedStudy> {
        let active = self.active.remove(&(user.to_owned(), channel.to_owned()))?;
        Some(finished(user, channel, active, now.unix_ms))
    }

    /// The channels `conn` studies on.
    #[must_use]
    pub fn channels_of(&self, conn: ConnId) -> Vec<String> {
        self.active
            .iter()
            .filter(|(_, a)| a.conns.contains(&conn))
            .map(|((_, channel), _)| channel.clone())
            .collect()
    }

    /// `conn` is gone: its sessions without another live connection enter the grace period.
    pub fn disconnect(&mut self, conn: ConnId, now: Instant) {
        for active in self.active.values_mut() {
            if active.conns.remove(&conn) && active.conns.is_empty() {
                active.leaving_since = Some(now);
            }
        }
    }

    /// `user` is back on `conn`: its sessions in the grace period continue there. Returns their
    /// channels.
    pub fn reattach(&mut self, conn: ConnId, user: &str) -> Vec<String> {
        let mut channels = Vec::new();
        for ((owner, channel), active) in &mut self.active {
            if owner == user && active.leaving_since.is_some() {
                active.leaving_since = None;
                active.conns.insert(conn);
                channels.push(channel.clone());
            }
        }
        channels
    }

    /// Ends the sessions whose grace period is over at `now`. The duration ends where the
    /// connection was lost.
    pub fn expire(&mut self, now: Now) -> Vec<FinishedStudy> {
        let grace = self.grace;
        let expired: Vec<(String, String)> = self
            .active
            .iter()
            .filter(|(_, a)| {
                a.leaving_since
                    .is_some_and(|since| now.mono.saturating_duration_since(since) >= grace)
            })
            .map(|(key, _)| key.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|key| {
                let active = self.active.remove(&key)?;
                let lost_ago = active.leaving_since.map_or(0, |since| {
                    now.mono.saturating_duration_since(since).as_millis()
                });
                let ended_ms = now
                    .unix_ms
                    .saturating_sub(u64::try_from(lost_ago).unwrap_or(u64::MAX));
                Some(finished(&key.0, &key.1, active, ended_ms))
            })
            .collect()
    }

    /// The earliest instant at which [`StudyTracker::expire`] has something to do.
    #[must_use]
    pub fn next_expiry(&self) -> Option<Instant> {
        self.active
            .values()
            .filter_map(|a| a.leaving_since.map(|since| since + self.grace))
            .min()
    }

    /// The topic of `channel` as its first member wrote it.
    #[must_use]
    pub fn topic_of(&self, channel: &str) -> Option<&str> {
        self.active
            .iter()
            .find(|((_, c), _)| c == channel)
            .map(|(_, a)| a.topic.as_str())
    }
}

fn finished(user: &str, channel: &str, active: Active, ended_ms: u64) -> FinishedStudy {
    let duration_ms = ended_ms.saturating_sub(active.started_ms);
    FinishedStudy {
        user_id: user.to_owned(),
        topic: active.topic,
        channel: channel.to_owned(),
        duration_secs: duration_ms as f64 / 1000.0,
        ended_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn presence_leaves_after_the_grace_period_and_not_before() {
        let mut tracker = StudyTracker::new(Duration::from_secs(10));
        let t0 = Now::current();
        tracker.start(1, "u", "U", "Genetics", "session:genetics", t0);
        let lost = t0.plus_ms(60_000);
        tracker.disconnect(1, lost.mono);
        assert!(tracker.expire(lost.plus_ms(9_999)).is_empty());
        assert!(tracker.participant("u", "session:genetics").is_some());
        let done = tracker.expire(lost.plus_ms(10_000));
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].duration_secs, 60.0);
        assert!(tracker.participant("u", "session:genetics").is_none());
    }

    #[test]
    fn a_quick_reconnect_does_not_flap() {
        let mut tracker = StudyTracker::new(Duration::from_secs(10));
        let t0 = Now::current();
        tracker.start(1, "u", "U", "Genetics", "session:genetics", t0);
        tracker.disconnect(1, t0.plus_ms(1_000).mono);
        assert_eq!(
            tracker.reattach(2, "u"),
            vec!["session:genetics".to_owned()]
        );
        assert!(tracker.expire(t0.plus_ms(60_000)).is_empty());
        let joined_at = tracker
            .participant("u", "session:genetics")
            .unwrap()
            .joined_at;
        assert_eq!(joined_at, t0.unix_ms);
    }

    proptest! {
        #[test]
        fn never_expires_before_grace(grace_ms in 1u64..20_000, after in 0u64..40_000) {
            let mut tracker = StudyTracker::new(Duration::from_millis(grace_ms));
            let t0 = Now::current();
            tracker.start(1, "u", "U", "T", "session:t", t0);
            tracker.disconnect(1, t0.mono);
            let expired = tracker.expire(t0.plus_ms(after));
            prop_assert_eq!(expired.len() == 1, after >= grace_ms);
        }
    }
}
