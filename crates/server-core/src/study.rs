//! Study sessions in progress: who studies which topic, since when, on which connections, and
//! the presence grace period after a connection loss.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
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
    /// When it started, ms since the Unix epoch.
    pub started_ms: u64,
}

/// A session's key: (user, channel).
type Key = (String, String);

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
/// Sessions are indexed by user (the map's order), by connection and by the moment their grace
/// period started, so a disconnect, a user's return and the periodic expiry touch only the
/// sessions concerned, however many are in progress.
///
/// ```
/// use std::time::{Duration, Instant};
/// use cerebrum_server_core::{clock::Now, study::StudyTracker};
///
/// let mut tracker = StudyTracker::new(Duration::from_secs(10));
/// let t0 = Now { mono: Instant::now(), unix_ms: 1_700_000_000_000 };
/// tracker.start(1, "ada", "Ada", "Genetics", "session:genetics", t0);
/// let done = tracker.end("ada", "session:genetics", t0.plus_ms(90_000)).unwrap();
/// assert_eq!(done.duration_secs, 90.0);
/// ```
#[derive(Debug)]
pub struct StudyTracker {
    grace: Duration,
    active: BTreeMap<Key, Active>,
    /// The sessions each connection studies on (a connection has a handful).
    by_conn: HashMap<ConnId, Vec<Key>>,
    /// The sessions in their grace period, by when their last connection was lost.
    leaving: BTreeSet<(Instant, Key)>,
}

impl StudyTracker {
    /// A tracker whose members stay present `grace` after losing their last connection.
    #[must_use]
    pub fn new(grace: Duration) -> Self {
        Self {
            grace,
            active: BTreeMap::new(),
            by_conn: HashMap::new(),
            leaving: BTreeSet::new(),
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
            if active.conns.insert(conn) {
                self.by_conn.entry(conn).or_default().push(key.clone());
            }
            if let Some(since) = active.leaving_since.take() {
                self.leaving.remove(&(since, key));
            }
            return Joined::Again;
        }
        self.by_conn.entry(conn).or_default().push(key.clone());
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
        let key = (user.to_owned(), channel.to_owned());
        let active = self.active.remove(&key)?;
        self.unindex(&key, &active);
        Some(finished(user, channel, active, now.unix_ms))
    }

    /// Takes back a session that [`StudyTracker::end`] ended but whose record could not be
    /// written: `user` studies on, on `conn`, from the same start, so that ending it again
    /// records it. Returns the participant when it was re-added (`None` when the user started
    /// the session again meanwhile: that one goes on).
    pub fn restore(
        &mut self,
        conn: ConnId,
        finished: &FinishedStudy,
        name: &str,
    ) -> Option<Participant> {
        let key = (finished.user_id.clone(), finished.channel.clone());
        if self.active.contains_key(&key) {
            return None;
        }
        self.by_conn.entry(conn).or_default().push(key.clone());
        let participant = Participant {
            user_id: finished.user_id.clone(),
            user_name: name.to_owned(),
            avatar_url: None,
            joined_at: finished.started_ms,
        };
        self.active.insert(
            key,
            Active {
                topic: finished.topic.clone(),
                participant: participant.clone(),
                started_ms: finished.started_ms,
                conns: HashSet::from([conn]),
                leaving_since: None,
            },
        );
        Some(participant)
    }

    /// The channels `conn` studies on.
    #[must_use]
    pub fn channels_of(&self, conn: ConnId) -> Vec<String> {
        let mut keys: Vec<&Key> = self.by_conn.get(&conn).into_iter().flatten().collect();
        keys.sort_unstable();
        keys.into_iter()
            .map(|(_, channel)| channel.clone())
            .collect()
    }

    /// `conn` is gone: its sessions without another live connection enter the grace period.
    pub fn disconnect(&mut self, conn: ConnId, now: Instant) {
        let Some(keys) = self.by_conn.remove(&conn) else {
            return;
        };
        for key in keys {
            if let Some(active) = self.active.get_mut(&key)
                && active.conns.remove(&conn)
                && active.conns.is_empty()
            {
                active.leaving_since = Some(now);
                self.leaving.insert((now, key));
            }
        }
    }

    /// `user` is back on `conn`: its sessions in the grace period continue there. Returns their
    /// channels.
    pub fn reattach(&mut self, conn: ConnId, user: &str) -> Vec<String> {
        let mut channels = Vec::new();
        // The user's sessions are contiguous in the map, from (user, "").
        for (key, active) in self.active.range_mut((user.to_owned(), String::new())..) {
            if key.0 != user {
                break;
            }
            if let Some(since) = active.leaving_since.take() {
                self.leaving.remove(&(since, key.clone()));
                active.conns.insert(conn);
                self.by_conn.entry(conn).or_default().push(key.clone());
                channels.push(key.1.clone());
            }
        }
        channels
    }

    /// Ends the sessions whose grace period is over at `now`. The duration ends where the
    /// connection was lost.
    pub fn expire(&mut self, now: Now) -> Vec<FinishedStudy> {
        let mut expired = Vec::new();
        // Oldest first: once one is still within its grace period, so are the rest.
        while let Some((since, _)) = self.leaving.first()
            && now.mono.saturating_duration_since(*since) >= self.grace
        {
            let Some((since, key)) = self.leaving.pop_first() else {
                break;
            };
            // In its grace period, the session has no connection left to unindex.
            if let Some(active) = self.active.remove(&key) {
                let ended_ms = ended_ms(Some(since), now);
                expired.push(finished(&key.0, &key.1, active, ended_ms));
            }
        }
        // In key order, as a scan of the sessions would list them.
        expired.sort_unstable_by(|a, b| (&a.user_id, &a.channel).cmp(&(&b.user_id, &b.channel)));
        expired
    }

    /// Ends every session (the server shuts down): those in their grace period where their
    /// connection was lost, the others at `now`.
    pub fn end_all(&mut self, now: Now) -> Vec<FinishedStudy> {
        self.by_conn.clear();
        self.leaving.clear();
        std::mem::take(&mut self.active)
            .into_iter()
            .map(|((user, channel), active)| {
                let ended_ms = ended_ms(active.leaving_since, now);
                finished(&user, &channel, active, ended_ms)
            })
            .collect()
    }

    /// The earliest instant at which [`StudyTracker::expire`] has something to do.
    #[must_use]
    pub fn next_expiry(&self) -> Option<Instant> {
        self.leaving.first().map(|(since, _)| *since + self.grace)
    }

    /// The topic of `channel` as its first member wrote it.
    #[must_use]
    pub fn topic_of(&self, channel: &str) -> Option<&str> {
        self.active
            .iter()
            .find(|((_, c), _)| c == channel)
            .map(|(_, a)| a.topic.as_str())
    }

    /// Every member of every study session on this node (grace periods included), as
    /// `(channel, participant)`: what this node's presence entries must be. The driver gives it
    /// to a remote broker at each refresh, which heals the races of concurrent joins and leaves
    /// of one user's connections.
    #[must_use]
    pub fn members(&self) -> Vec<(String, Participant)> {
        self.active
            .iter()
            .map(|((_, channel), active)| (channel.clone(), active.participant.clone()))
            .collect()
    }
}

impl StudyTracker {
    /// Removes the indexes of the session `key` (just removed from the map).
    fn unindex(&mut self, key: &Key, active: &Active) {
        for conn in &active.conns {
            if let Some(keys) = self.by_conn.get_mut(conn) {
                keys.retain(|k| k != key);
                if keys.is_empty() {
                    self.by_conn.remove(conn);
                }
            }
        }
        if let Some(since) = active.leaving_since {
            self.leaving.remove(&(since, key.clone()));
        }
    }
}

/// When a session ends at `now`: where its connection was lost (`leaving_since`), else now.
fn ended_ms(leaving_since: Option<Instant>, now: Now) -> u64 {
    let lost_ago = leaving_since.map_or(0, |since| {
        now.mono.saturating_duration_since(since).as_millis()
    });
    now.unix_ms
        .saturating_sub(u64::try_from(lost_ago).unwrap_or(u64::MAX))
}

fn finished(user: &str, channel: &str, active: Active, ended_ms: u64) -> FinishedStudy {
    let duration_ms = ended_ms.saturating_sub(active.started_ms);
    FinishedStudy {
        user_id: user.to_owned(),
        topic: active.topic,
        channel: channel.to_owned(),
        duration_secs: duration_ms as f64 / 1000.0,
        ended_ms,
        started_ms: active.started_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn presence_leaves_after_the_grace_period_and_not_before() {
        let mut tracker = StudyTracker::new(Duration::from_secs(10));
        let t0 = crate::testing::now();
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
        let t0 = crate::testing::now();
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

    /// The tracker as it was before its indexes: every call scans every session. The indexed
    /// tracker must answer exactly as it does.
    struct Naive {
        grace: Duration,
        /// (user, channel) → (connections, grace period start, start ms).
        active: BTreeMap<Key, (HashSet<ConnId>, Option<Instant>, u64)>,
    }

    impl Naive {
        fn start(&mut self, conn: ConnId, user: &str, channel: &str, now: Now) -> Joined {
            let key = (user.to_owned(), channel.to_owned());
            if let Some((conns, leaving, _)) = self.active.get_mut(&key) {
                conns.insert(conn);
                *leaving = None;
                return Joined::Again;
            }
            self.active
                .insert(key, (HashSet::from([conn]), None, now.unix_ms));
            Joined::New
        }
        fn end(
            &mut self,
            user: &str,
            channel: &str,
            now: Now,
        ) -> Option<(String, String, u64, u64)> {
            let (_, _, started) = self.active.remove(&(user.to_owned(), channel.to_owned()))?;
            Some((user.to_owned(), channel.to_owned(), started, now.unix_ms))
        }
        fn disconnect(&mut self, conn: ConnId, now: Instant) {
            for (conns, leaving, _) in self.active.values_mut() {
                if conns.remove(&conn) && conns.is_empty() {
                    *leaving = Some(now);
                }
            }
        }
        fn reattach(&mut self, conn: ConnId, user: &str) -> Vec<String> {
            let mut channels = Vec::new();
            for ((owner, channel), (conns, leaving, _)) in &mut self.active {
                if owner == user && leaving.is_some() {
                    *leaving = None;
                    conns.insert(conn);
                    channels.push(channel.clone());
                }
            }
            channels
        }
        fn expire(&mut self, now: Now) -> Vec<(String, String, u64, u64)> {
            let grace = self.grace;
            let due: Vec<Key> = self
                .active
                .iter()
                .filter(|(_, (_, leaving, _))| {
                    leaving.is_some_and(|since| now.mono.saturating_duration_since(since) >= grace)
                })
                .map(|(key, _)| key.clone())
                .collect();
            due.into_iter()
                .filter_map(|key| {
                    let (_, leaving, started) = self.active.remove(&key)?;
                    Some((key.0, key.1, started, ended_ms(leaving, now)))
                })
                .collect()
        }
        fn next_expiry(&self) -> Option<Instant> {
            self.active
                .values()
                .filter_map(|(_, leaving, _)| leaving.map(|since| since + self.grace))
                .min()
        }
        fn channels_of(&self, conn: ConnId) -> Vec<String> {
            self.active
                .iter()
                .filter(|(_, (conns, _, _))| conns.contains(&conn))
                .map(|((_, channel), _)| channel.clone())
                .collect()
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Start(ConnId, u8, u8),
        End(u8, u8),
        Disconnect(ConnId),
        Reattach(ConnId, u8),
        Expire,
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1u64..6, 0u8..4, 0u8..3).prop_map(|(c, u, t)| Op::Start(c, u, t)),
            (0u8..4, 0u8..3).prop_map(|(u, t)| Op::End(u, t)),
            (1u64..6).prop_map(Op::Disconnect),
            (1u64..6, 0u8..4).prop_map(|(c, u)| Op::Reattach(c, u)),
            Just(Op::Expire),
            (0u64..8_000).prop_map(Op::Advance),
        ]
    }

    fn brief(done: &FinishedStudy) -> (String, String, u64, u64) {
        (
            done.user_id.clone(),
            done.channel.clone(),
            done.started_ms,
            done.ended_ms,
        )
    }

    proptest! {
        #[test]
        fn the_indexes_answer_as_a_scan_of_every_session(ops in proptest::collection::vec(op(), 1..80)) {
            let grace = Duration::from_secs(5);
            let mut tracker = StudyTracker::new(grace);
            let mut naive = Naive { grace, active: BTreeMap::new() };
            let mut now = crate::testing::now();
            for op in ops {
                match op {
                    Op::Start(conn, u, t) => {
                        let (user, channel) = (format!("u{u}"), format!("session:t{t}"));
                        let got = tracker.start(conn, &user, &user, "T", &channel, now);
                        prop_assert_eq!(got, naive.start(conn, &user, &channel, now));
                    }
                    Op::End(u, t) => {
                        let (user, channel) = (format!("u{u}"), format!("session:t{t}"));
                        let got = tracker.end(&user, &channel, now).map(|d| brief(&d));
                        prop_assert_eq!(got, naive.end(&user, &channel, now));
                    }
                    Op::Disconnect(conn) => {
                        tracker.disconnect(conn, now.mono);
                        naive.disconnect(conn, now.mono);
                    }
                    Op::Reattach(conn, u) => {
                        let user = format!("u{u}");
                        prop_assert_eq!(tracker.reattach(conn, &user), naive.reattach(conn, &user));
                    }
                    Op::Expire => {
                        let got: Vec<_> = tracker.expire(now).iter().map(brief).collect();
                        prop_assert_eq!(got, naive.expire(now));
                    }
                    Op::Advance(ms) => now = now.plus_ms(ms),
                }
                prop_assert_eq!(tracker.next_expiry(), naive.next_expiry());
                for conn in 1..6 {
                    prop_assert_eq!(tracker.channels_of(conn), naive.channels_of(conn));
                }
                for u in 0..4 {
                    let user = format!("u{u}");
                    let count = naive.active.keys().filter(|(owner, _)| *owner == user).count();
                    prop_assert_eq!(tracker.sessions_of(&user), count);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn never_expires_before_grace(grace_ms in 1u64..20_000, after in 0u64..40_000) {
            let mut tracker = StudyTracker::new(Duration::from_millis(grace_ms));
            let t0 = crate::testing::now();
            tracker.start(1, "u", "U", "T", "session:t", t0);
            tracker.disconnect(1, t0.mono);
            let expired = tracker.expire(t0.plus_ms(after));
            prop_assert_eq!(expired.len() == 1, after >= grace_ms);
        }
    }
}
