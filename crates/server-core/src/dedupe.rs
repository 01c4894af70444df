//! Recent message ids per user, so that a re-sent `ack:true` frame takes effect once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::outbox::lock;

/// Hard cap per user, whatever the window (bounds memory under floods).
const HARD_CAP: usize = 16 * 1024;

#[derive(Debug, Default)]
struct Recent {
    order: VecDeque<(String, Instant)>,
    ids: HashSet<String>,
}

/// Remembers message ids per user for `window`, and always at least the `min_entries` newest.
///
/// ```
/// use std::time::{Duration, Instant};
/// use cerebrum_server_core::dedupe::Dedupe;
///
/// let dedupe = Dedupe::new(Duration::from_secs(600), 1024);
/// let now = Instant::now();
/// assert!(dedupe.first_time("alice", "m-1", now));
/// assert!(!dedupe.first_time("alice", "m-1", now));
/// assert!(dedupe.first_time("bob", "m-1", now));
/// ```
#[derive(Debug)]
pub struct Dedupe {
    window: Duration,
    min_entries: usize,
    users: Mutex<HashMap<String, Recent>>,
}

impl Dedupe {
    /// A cache remembering ids for `window`, and at least `min_entries` per user.
    #[must_use]
    pub fn new(window: Duration, min_entries: usize) -> Self {
        Self {
            window,
            min_entries,
            users: Mutex::new(HashMap::new()),
        }
    }

    /// Records `id` for `user`; `false` when it was already seen (a duplicate).
    pub fn first_time(&self, user: &str, id: &str, now: Instant) -> bool {
        let mut users = lock(&self.users);
        let recent = users.entry(user.to_owned()).or_default();
        if recent.ids.contains(id) {
            return false;
        }
        recent.ids.insert(id.to_owned());
        recent.order.push_back((id.to_owned(), now));
        while let Some((old, at)) = recent.order.front() {
            let expired = now.saturating_duration_since(*at) > self.window;
            if (recent.order.len() > self.min_entries && expired) || recent.order.len() > HARD_CAP {
                recent.ids.remove(old);
                recent.order.pop_front();
            } else {
                break;
            }
        }
        true
    }

    /// Forgets everything about `user` (an anonymous connection's key, when it closes).
    pub fn forget_user(&self, user: &str) {
        lock(&self.users).remove(user);
    }

    /// Drops the users whose every remembered id is older than the window.
    pub fn sweep(&self, now: Instant) {
        lock(&self.users).retain(|_, recent| {
            recent
                .order
                .back()
                .is_some_and(|(_, at)| now.saturating_duration_since(*at) <= self.window)
        });
    }

    /// Number of users (or anonymous connections) with remembered ids.
    #[must_use]
    pub fn users(&self) -> usize {
        lock(&self.users).len()
    }

    /// Forgets `id` (its processing failed, so a retry must be processed).
    pub fn forget(&self, user: &str, id: &str) {
        let mut users = lock(&self.users);
        if let Some(recent) = users.get_mut(user) {
            recent.ids.remove(id);
            recent.order.retain(|(other, _)| other != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_least_min_entries_and_forgets_after_the_window() {
        let dedupe = Dedupe::new(Duration::from_secs(600), 4);
        let start = Instant::now();
        for i in 0..4 {
            assert!(dedupe.first_time("u", &i.to_string(), start));
        }
        let later = start + Duration::from_secs(601);
        // Still remembered: only 4 entries.
        assert!(!dedupe.first_time("u", "0", later));
        assert!(dedupe.first_time("u", "4", later));
        // The fifth insert let the expired oldest go.
        assert!(dedupe.first_time("u", "0", later));
        dedupe.forget("u", "4");
        assert!(dedupe.first_time("u", "4", later));
        dedupe.first_time("v", "1", later);
        dedupe.forget_user("v");
        assert_eq!(dedupe.users(), 1);
        dedupe.sweep(later + Duration::from_secs(601));
        assert_eq!(dedupe.users(), 0);
    }
}
