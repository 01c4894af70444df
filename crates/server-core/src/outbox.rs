//! A connection's bounded outbound queue: the handle through which the hub reaches a subscriber.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Poll, Waker};
use std::time::Instant;

use crate::Text;

/// One frame waiting to be written, with the instant it was queued (for the delivery-latency
/// histogram). The text is shared: a publication's bytes are queued to every subscriber.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The encoded envelope.
    pub text: Text,
    /// When it was queued.
    pub queued_at: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    frames: VecDeque<Frame>,
    /// The driver's task waiting for frames (see [`Outbox::poll_notified`]).
    waker: Option<Waker>,
    /// A push or close happened since the driver last looked.
    notified: bool,
}

/// The bounded outbound queue of one connection.
///
/// Allocated lazily: an idle connection holds no buffer. Pushing into a full queue marks the
/// connection slow (it is then closed with 4008) instead of blocking the publisher. The
/// driver waits for frames with [`Outbox::poll_notified`] (the core holds its waker, nothing
/// else of its runtime).
///
/// ```
/// use std::time::Instant;
/// use cerebrum_server_core::outbox::Outbox;
///
/// let outbox = Outbox::new(2);
/// assert!(outbox.push("a".into(), Instant::now()));
/// assert!(outbox.push("b".into(), Instant::now()));
/// assert!(!outbox.push("c".into(), Instant::now()));
/// assert!(outbox.is_slow());
/// ```
#[derive(Debug)]
pub struct Outbox {
    capacity: usize,
    inner: Mutex<Inner>,
    slow: AtomicBool,
    closed: AtomicBool,
}

impl Outbox {
    /// A queue of at most `capacity` frames.
    #[must_use]
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
            slow: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        })
    }

    /// Queues a frame; `false` (and the queue marked slow) when it is full or closed.
    pub fn push(&self, text: Text, now: Instant) -> bool {
        if self.closed.load(Ordering::Relaxed) || self.slow.load(Ordering::Relaxed) {
            return false;
        }
        let (accepted, waker) = {
            let mut inner = lock(&self.inner);
            let accepted = if inner.frames.len() >= self.capacity {
                false
            } else {
                inner.frames.push_back(Frame {
                    text,
                    queued_at: now,
                });
                true
            };
            inner.notified = true;
            (accepted, inner.waker.take())
        };
        if !accepted {
            self.slow.store(true, Ordering::Relaxed);
        }
        if let Some(waker) = waker {
            waker.wake();
        }
        accepted
    }

    /// Moves every queued frame into `out` and releases the buffer.
    pub fn drain_into(&self, out: &mut Vec<Frame>) {
        let mut inner = lock(&self.inner);
        // Taking the buffer leaves an unallocated one: an idle connection holds no memory.
        let frames = std::mem::take(&mut inner.frames);
        drop(inner);
        out.extend(frames);
    }

    /// Takes every queued frame at once (the queue's buffer goes with them: an idle connection
    /// holds no memory here).
    #[must_use]
    pub fn take_all(&self) -> VecDeque<Frame> {
        std::mem::take(&mut lock(&self.inner).frames)
    }

    /// Number of frames waiting.
    #[must_use]
    pub fn len(&self) -> usize {
        lock(&self.inner).frames.len()
    }

    /// Whether no frame is waiting.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a push found the queue full: the connection must close with 4008.
    #[must_use]
    pub fn is_slow(&self) -> bool {
        self.slow.load(Ordering::Relaxed)
    }

    /// Refuses further frames (the connection is going away).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        let waker = {
            let mut inner = lock(&self.inner);
            inner.notified = true;
            inner.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Wakes the driver without a frame: the session has work for it
    /// ([`crate::session::Session::has_effects`]), such as asking for the next page of pending
    /// notifications once another connection of its user acknowledged the current one.
    pub fn wake(&self) {
        let waker = {
            let mut inner = lock(&self.inner);
            inner.notified = true;
            inner.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Whether [`Outbox::close`] was called.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// `Ready` once a frame was pushed or the queue closed since the last `Ready`; otherwise
    /// keeps `waker` and wakes it at the next push or close. A push that happened before the
    /// call counts (it left a permit), so a driver never misses one.
    pub fn poll_notified(&self, waker: &Waker) -> Poll<()> {
        let mut inner = lock(&self.inner);
        if std::mem::take(&mut inner.notified) {
            return Poll::Ready(());
        }
        match &inner.waker {
            Some(kept) if kept.will_wake(waker) => {}
            _ => inner.waker = Some(waker.clone()),
        }
        Poll::Pending
    }
}

#[doc(hidden)]
/// Locks a mutex, recovering the data of a poisoned one (nothing here can be left half-done).
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_in_order_and_releases_memory() {
        let outbox = Outbox::new(1024);
        let now = crate::testing::instant();
        for i in 0..100 {
            assert!(outbox.push(Text::from(i.to_string()), now));
        }
        let mut out = Vec::new();
        outbox.drain_into(&mut out);
        let texts: Vec<String> = out.iter().map(|f| f.text.as_str().to_owned()).collect();
        assert_eq!(texts, (0..100).map(|i| i.to_string()).collect::<Vec<_>>());
        assert!(outbox.is_empty());
        assert!(!outbox.is_slow());
    }
}
