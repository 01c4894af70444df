//! Realistic, seeded data for mock mode: what a live server would send one student.

use std::collections::BTreeMap;

use cerebrum_protocol::{
    CollaborativeSession, Notification, OverallStatus, Participant, Services, StudyMetrics,
    SystemStatus, session_channel,
};

use crate::curriculum::{NOTIFICATIONS, STUDENTS, Student, TOPICS};

/// One message the simulated server sends.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MockMessage {
    /// `study_metrics_update` for the simulated user.
    StudyMetrics(StudyMetrics),
    /// `collaborative_session_update` of one topic.
    CollaborativeSession(CollaborativeSession),
    /// `notification` for the simulated user.
    Notification(Notification),
    /// `system_status`.
    SystemStatus(SystemStatus),
}

/// How many topics have live study sessions at once.
const LIVE_TOPICS: usize = 4;
/// Daily goal used for `progress`, in hours (the server's default).
const DAILY_GOAL_HOURS: f64 = 2.0;
const DAY_MS: u64 = 86_400_000;

/// Generates the stream a student sees: study metrics whose hours only grow, collaborative
/// sessions on curriculum topics with students joining and leaving, notifications from
/// templates, and a system status that is mostly operational with occasional degradation.
///
/// Deterministic: the same seed and the same tick times give the same stream.
///
/// ```
/// use cerebrum_mock::{DataGenerator, MockMessage};
/// let mut a = DataGenerator::new(7, "user-123", 1_732_752_000_000);
/// let mut b = DataGenerator::new(7, "user-123", 1_732_752_000_000);
/// let first = a.tick(1_732_752_005_000);
/// assert_eq!(first, b.tick(1_732_752_005_000));
/// assert!(first.iter().any(|m| matches!(m, MockMessage::StudyMetrics(_))));
/// ```
#[derive(Debug, Clone)]
pub struct DataGenerator {
    rng: fastrand::Rng,
    user_id: String,
    started_ms: u64,
    last_ms: u64,
    study_hours: f64,
    hours_today: f64,
    day: u64,
    streak: u32,
    current_topic: Option<&'static str>,
    session_seconds: f64,
    sessions: BTreeMap<&'static str, Vec<Participant>>,
    degraded_ticks: u32,
    notification_seq: u64,
}

impl DataGenerator {
    /// A generator for `user_id`, whose simulated server started at `now_ms`.
    #[must_use]
    pub fn new(seed: u64, user_id: &str, now_ms: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let study_hours = (rng.u32(200..4_000) as f64) / 100.0;
        let streak = rng.u32(1..30);
        let mut generator = Self {
            rng,
            user_id: user_id.to_owned(),
            started_ms: now_ms,
            last_ms: now_ms,
            study_hours,
            hours_today: 0.0,
            day: now_ms / DAY_MS,
            streak,
            current_topic: None,
            session_seconds: 0.0,
            sessions: BTreeMap::new(),
            degraded_ticks: 0,
            notification_seq: 0,
        };
        while generator.sessions.len() < LIVE_TOPICS {
            let topic = generator.pick_topic();
            let members = pick(&mut generator.rng, 4) + 1;
            let mut participants = Vec::new();
            for _ in 0..members {
                let student = generator.pick_student();
                if participants
                    .iter()
                    .all(|p: &Participant| p.user_id != student.id)
                {
                    let joined_at = now_ms.saturating_sub(generator.rng.u64(0..1_800_000));
                    participants.push(participant(student, joined_at));
                }
            }
            generator.sessions.insert(topic, participants);
        }
        generator.current_topic = generator.sessions.keys().next().copied();
        generator
    }

    /// The messages of one tick at `now_ms` (the mock sends a batch every 5 s by default):
    /// always study metrics, the update of one live session, the system status, and sometimes
    /// a notification.
    pub fn tick(&mut self, now_ms: u64) -> Vec<MockMessage> {
        let elapsed_s = now_ms.saturating_sub(self.last_ms) as f64 / 1_000.0;
        self.last_ms = self.last_ms.max(now_ms);
        self.advance_day(now_ms);
        self.advance_study(elapsed_s);
        let mut batch = vec![MockMessage::StudyMetrics(self.metrics())];
        if let Some(update) = self.advance_sessions(now_ms) {
            batch.push(MockMessage::CollaborativeSession(update));
        }
        if self.rng.f64() < 0.35 {
            batch.push(MockMessage::Notification(self.notification()));
        }
        batch.push(MockMessage::SystemStatus(self.system_status(now_ms)));
        batch
    }

    fn advance_day(&mut self, now_ms: u64) {
        let day = now_ms / DAY_MS;
        if day > self.day {
            // A new UTC day: yesterday counted if the student studied.
            if self.hours_today > 0.0 {
                self.streak = self.streak.saturating_add(1);
            } else {
                self.streak = 0;
            }
            self.hours_today = 0.0;
            self.day = day;
        }
    }

    fn advance_study(&mut self, elapsed_s: f64) {
        if self.current_topic.is_some() {
            self.session_seconds += elapsed_s;
            self.study_hours += elapsed_s / 3_600.0;
            self.hours_today += elapsed_s / 3_600.0;
            // Now and then the student finishes the session.
            if self.rng.f64() < 0.08 {
                self.current_topic = None;
            }
        } else if self.rng.f64() < 0.3 {
            self.current_topic = Some(self.pick_live_topic());
            self.session_seconds = 0.0;
        }
    }

    fn metrics(&self) -> StudyMetrics {
        StudyMetrics {
            user_id: self.user_id.clone(),
            study_hours: round2(self.study_hours),
            progress: round2((self.hours_today / DAILY_GOAL_HOURS * 100.0).min(100.0)),
            current_topic: self.current_topic.map(str::to_owned),
            session_duration: self.session_seconds.round(),
            streak: self.streak,
        }
    }

    fn advance_sessions(&mut self, now_ms: u64) -> Option<CollaborativeSession> {
        let topic = self.pick_live_topic();
        let joining = self.pick_student();
        let leave = self.rng.f64() < 0.4;
        let participants = self.sessions.entry(topic).or_default();
        if leave && participants.len() > 1 {
            let index = pick(&mut self.rng, participants.len());
            participants.remove(index);
        } else if participants.iter().all(|p| p.user_id != joining.id) {
            participants.push(participant(joining, now_ms));
        }
        let participants = participants.clone();
        Some(CollaborativeSession {
            session_id: session_channel(topic).ok()?,
            topic: topic.to_owned(),
            active_users: u32::try_from(participants.len()).unwrap_or(u32::MAX),
            participants,
        })
    }

    fn notification(&mut self) -> Notification {
        let template = NOTIFICATIONS[pick(&mut self.rng, NOTIFICATIONS.len())];
        let topic = self.pick_topic();
        let n = match template.title {
            "Streak extended" => self.streak.max(1),
            "Study reminder" => (self.hours_today / DAILY_GOAL_HOURS * 100.0)
                .min(100.0)
                .round() as u32,
            "Quiz result" => self.rng.u32(25..46),
            _ => self.rng.u32(5..31),
        };
        self.notification_seq += 1;
        template.render(&format!("mock-{}", self.notification_seq), topic, n)
    }

    fn system_status(&mut self, now_ms: u64) -> SystemStatus {
        if self.degraded_ticks > 0 {
            self.degraded_ticks -= 1;
        } else if self.rng.f64() < 0.05 {
            self.degraded_ticks = self.rng.u32(1..4);
        }
        let degraded = self.degraded_ticks > 0;
        SystemStatus {
            status: if degraded {
                OverallStatus::Degraded
            } else {
                OverallStatus::Operational
            },
            services: Services {
                api: true,
                database: true,
                cache: !degraded,
                storage: true,
            },
            uptime: (now_ms.saturating_sub(self.started_ms) / 1_000) as f64,
            last_check: now_ms,
        }
    }

    fn pick_topic(&mut self) -> &'static str {
        TOPICS[pick(&mut self.rng, TOPICS.len())]
    }

    fn pick_live_topic(&mut self) -> &'static str {
        let index = pick(&mut self.rng, self.sessions.len().max(1));
        match self.sessions.keys().nth(index) {
            Some(topic) => topic,
            None => self.pick_topic(),
        }
    }

    fn pick_student(&mut self) -> Student {
        STUDENTS[pick(&mut self.rng, STUDENTS.len())]
    }
}

fn participant(student: Student, joined_at: u64) -> Participant {
    Participant {
        user_id: student.id.to_owned(),
        user_name: student.name.to_owned(),
        avatar_url: None,
        joined_at,
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// A uniform index below `len` (`len` ≥ 1), drawn as a `u32` so that the same seed picks the
/// same index on 64-bit hosts and on `wasm32` (`fastrand`'s `usize` draws depend on the
/// pointer width, which made the browser's mock stream differ from the Rust crate's).
fn pick(rng: &mut fastrand::Rng, len: usize) -> usize {
    let bound = u32::try_from(len).unwrap_or(u32::MAX).max(1);
    usize::try_from(rng.u32(0..bound)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use cerebrum_protocol::{Envelope, Payload};

    use super::*;

    const T0: u64 = 1_732_752_000_000;

    fn run(seed: u64, ticks: u64) -> Vec<MockMessage> {
        let mut generator = DataGenerator::new(seed, "user-123", T0);
        (1..=ticks)
            .flat_map(|i| generator.tick(T0 + i * 5_000))
            .collect()
    }

    fn validate<P: Payload>(payload: &P) {
        Envelope::from_payload(payload).unwrap();
    }

    #[test]
    fn same_seed_same_stream_other_seed_other_stream() {
        assert_eq!(run(1, 50), run(1, 50));
        assert_ne!(run(1, 50), run(2, 50));
    }

    #[test]
    fn hours_only_grow_and_every_payload_is_valid() {
        let mut last_hours = 0.0;
        let mut kinds = [0usize; 4];
        for message in run(3, 2_000) {
            match message {
                MockMessage::StudyMetrics(m) => {
                    assert!(m.study_hours >= last_hours);
                    last_hours = m.study_hours;
                    validate(&m);
                    kinds[0] += 1;
                }
                MockMessage::CollaborativeSession(s) => {
                    assert_eq!(s.active_users as usize, s.participants.len());
                    validate(&s);
                    kinds[1] += 1;
                }
                MockMessage::Notification(n) => {
                    assert!(!n.message.contains('{'));
                    validate(&n);
                    kinds[2] += 1;
                }
                MockMessage::SystemStatus(s) => {
                    validate(&s);
                    kinds[3] += 1;
                }
            }
        }
        assert!(kinds.iter().all(|&k| k > 0), "{kinds:?}");
    }

    #[test]
    fn status_is_mostly_operational_with_some_degradation() {
        let statuses: Vec<_> = run(4, 2_000)
            .into_iter()
            .filter_map(|m| match m {
                MockMessage::SystemStatus(s) => Some(s.status),
                _ => None,
            })
            .collect();
        let degraded = statuses
            .iter()
            .filter(|s| **s == OverallStatus::Degraded)
            .count();
        assert!(degraded > 0);
        assert!(degraded * 5 < statuses.len());
    }

    #[test]
    fn streak_counts_days_with_study() {
        let mut generator = DataGenerator::new(5, "u", T0);
        let before = generator.metrics().streak;
        generator.current_topic = Some(TOPICS[0]);
        generator.advance_study(600.0);
        generator.advance_day(T0 + DAY_MS);
        assert_eq!(generator.metrics().streak, before + 1);
        generator.advance_day(T0 + 2 * DAY_MS);
        assert_eq!(generator.metrics().streak, 0);
    }
}
