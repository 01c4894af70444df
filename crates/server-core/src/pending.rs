//! The pages of pending notifications out on this node's connections, by user: an ack recorded
//! on any connection of the user takes the notification off every one of them, so that a page
//! acknowledged in another tab does not hold up the next page (issue 14).
//!
//! Only full pages are kept here (a short page was the last one: nothing waits on its acks).
//! A page emptied by another connection's ack is marked done and its connection woken through
//! its [`Outbox`]; the session then asks for the next page ([`crate::session::Session`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cerebrum_protocol::MessageId;

use crate::hub::ConnId;
use crate::outbox::{Outbox, lock};

/// One connection's open page.
#[derive(Debug)]
struct Page {
    conn: ConnId,
    /// The notifications of the page not acknowledged yet.
    unacked: HashSet<MessageId>,
    /// Shared with the session: set once `unacked` is empty.
    done: Arc<AtomicBool>,
    /// Wakes the connection's driver when another connection completes the page.
    outbox: Arc<Outbox>,
}

/// The node's open pages of pending notifications, by user.
#[derive(Debug, Default)]
pub(crate) struct PendingPages {
    users: Mutex<HashMap<String, Vec<Page>>>,
}

impl PendingPages {
    /// Opens `conn`'s page of `unacked` notifications (replacing any it had); the flag it
    /// returns is set once every one of them was acknowledged, on any connection of `user`
    /// on this node.
    pub(crate) fn open(
        &self,
        user: &str,
        conn: ConnId,
        outbox: &Arc<Outbox>,
        unacked: HashSet<MessageId>,
    ) -> Arc<AtomicBool> {
        let done = Arc::new(AtomicBool::new(unacked.is_empty()));
        let mut users = lock(&self.users);
        let pages = users.entry(user.to_owned()).or_default();
        pages.retain(|page| page.conn != conn);
        if !unacked.is_empty() {
            pages.push(Page {
                conn,
                unacked,
                done: done.clone(),
                outbox: outbox.clone(),
            });
        }
        if pages.is_empty() {
            users.remove(user);
        }
        done
    }

    /// `user`'s ack of notification `id` was recorded (on any of their connections here): it
    /// leaves every page of theirs; a page left empty is marked done, dropped, and its
    /// connection woken.
    pub(crate) fn acked(&self, user: &str, id: &MessageId) {
        let mut users = lock(&self.users);
        let Some(pages) = users.get_mut(user) else {
            return;
        };
        pages.retain_mut(|page| {
            let Page {
                unacked,
                done,
                outbox,
                ..
            } = page;
            if unacked.remove(id) && unacked.is_empty() {
                done.store(true, Ordering::Release);
                outbox.wake();
                return false;
            }
            true
        });
        if pages.is_empty() {
            users.remove(user);
        }
    }

    /// Keeps on `conn`'s page only the notifications for which `listed` holds (a read of the
    /// store lists the user's unacknowledged ones); returns how many were left before and
    /// after. A page left empty is marked done and dropped; `(0, 0)` when `conn` has no page.
    pub(crate) fn retain(
        &self,
        user: &str,
        conn: ConnId,
        listed: impl Fn(&MessageId) -> bool,
    ) -> (usize, usize) {
        let mut users = lock(&self.users);
        let Some(pages) = users.get_mut(user) else {
            return (0, 0);
        };
        let Some(at) = pages.iter().position(|page| page.conn == conn) else {
            return (0, 0);
        };
        let page = &mut pages[at];
        let before = page.unacked.len();
        page.unacked.retain(|id| listed(id));
        let after = page.unacked.len();
        if after == 0 {
            page.done.store(true, Ordering::Release);
            pages.swap_remove(at);
            if pages.is_empty() {
                users.remove(user);
            }
        }
        (before, after)
    }

    /// Drops `conn`'s page (the connection moved on, or is gone).
    pub(crate) fn close(&self, user: &str, conn: ConnId) {
        let mut users = lock(&self.users);
        if let Some(pages) = users.get_mut(user) {
            pages.retain(|page| page.conn != conn);
            if pages.is_empty() {
                users.remove(user);
            }
        }
    }

    /// How many pages are open on the node (all users).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.users).values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> HashSet<MessageId> {
        names.iter().map(|n| MessageId::new(*n).unwrap()).collect()
    }

    #[test]
    fn an_ack_leaves_every_page_of_its_user_and_wakes_the_pages_it_completes() {
        let pages = PendingPages::default();
        let (a, b, c) = (Outbox::new(4), Outbox::new(4), Outbox::new(4));
        let done_a = pages.open("ada", 1, &a, ids(&["n1", "n2"]));
        let done_b = pages.open("ada", 2, &b, ids(&["n1"]));
        let done_c = pages.open("bob", 3, &c, ids(&["n1"]));
        let waker = std::task::Waker::noop();
        for outbox in [&a, &b, &c] {
            assert!(outbox.poll_notified(waker).is_pending());
        }
        pages.acked("ada", &MessageId::new("n1").unwrap());
        assert!(!done_a.load(Ordering::Acquire));
        assert!(done_b.load(Ordering::Acquire));
        assert!(!done_c.load(Ordering::Acquire), "another user's page");
        assert!(b.poll_notified(waker).is_ready());
        assert!(a.poll_notified(waker).is_pending());
        assert!(c.poll_notified(waker).is_pending());
        assert_eq!(pages.len(), 2);
        // A read of the store that no longer lists n2: acknowledged elsewhere.
        assert_eq!(pages.retain("ada", 1, |_| false), (1, 0));
        assert!(done_a.load(Ordering::Acquire));
        pages.close("bob", 3);
        assert_eq!(pages.len(), 0);
        assert_eq!(pages.retain("ada", 1, |_| true), (0, 0));
    }
}
