//! A connection's bounded outbound queue: the handle through which the hub reaches a subscriber.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::task::{Poll, Wake, Waker};
use std::time::Instant;

use crate::conflate::ConflationKey;
use crate::{Encoding, Text};

/// One frame waiting to be written, with the instant it was queued (for the delivery-latency
/// histogram). The text is shared: a publication's bytes are queued to every subscriber.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The encoded envelope.
    pub text: Text,
    /// When it was queued.
    pub queued_at: Instant,
    /// What a newer frame must share to replace it while the queue is past its conflation
    /// threshold (`None`: never replaced).
    pub key: Option<ConflationKey>,
}

/// What [`Outbox::take`] gives the driver to write.
#[derive(Debug)]
#[must_use]
pub enum Taken {
    /// Every queued frame (possibly none): the connection keeps up; write them as one batch,
    /// with one flush.
    All(VecDeque<Frame>),
    /// The oldest queued frame: the connection is behind; write it, and take the next with
    /// [`Outbox::take_front`] only once the socket has taken this one.
    One(Frame),
}

#[derive(Debug, Default)]
struct Inner {
    frames: VecDeque<Frame>,
    /// Frames with a key queued since the queue last held at most one frame per key (a full
    /// pass is due before the next conflating push when it is not 0).
    keyed_unchecked: u32,
    /// The driver's task waiting for frames (see [`Outbox::poll_notified`]).
    waker: Option<Waker>,
    /// A push or close happened since the driver last looked.
    notified: bool,
    /// Batches handed back since the connection was last quiet ([`Outbox::release_spare`]):
    /// a spare buffer is kept only from [`BUSY_BATCHES`] on.
    batches: u8,
    /// The notifications queued while the user's pending pages are read (see
    /// [`Outbox::watch_notifications`]; boxed: most connections are past that window).
    sent_notifications: Option<Box<SentNotifications>>,
}

/// The ids of the notifications queued on a connection while its user's pending notifications
/// are read: one stored while the page was read can come both in the page and live on the
/// user's channel (the store is written before the publication), and the second is dropped.
#[derive(Debug, Default)]
struct SentNotifications {
    ids: HashSet<Box<str>>,
    /// When the window closes (`None`: while pages are still read).
    until: Option<Instant>,
}

/// The largest batch buffer [`Outbox::give_back`] keeps for the next pushes.
pub const SPARE_FRAMES: usize = 16;

/// How many batches a connection writes, since it was last quiet, before
/// [`Outbox::give_back`] keeps their buffer: a connection that only answered its own few
/// frames (a handful of `subscribe`s, say) keeps none.
pub const BUSY_BATCHES: u8 = 16;

/// At most this many ids are remembered per connection (a page is at most half the outbox);
/// past it notifications are queued without the check, at least once as before.
const SENT_NOTIFICATIONS_MAX: usize = 1024;

impl SentNotifications {
    /// Whether a frame with this text is a notification already queued in the window
    /// (remembering it otherwise). Frames the server encodes begin with their type.
    fn is_repeat(&mut self, text: &str) -> bool {
        if !text.starts_with("{\"type\":\"notification\"") {
            return false;
        }
        #[derive(serde::Deserialize)]
        struct Probe<'a> {
            #[serde(rename = "messageId", borrow, default)]
            message_id: Option<std::borrow::Cow<'a, str>>,
        }
        let Ok(Probe {
            message_id: Some(id),
        }) = serde_json::from_str::<Probe<'_>>(text)
        else {
            return false;
        };
        if self.ids.contains(id.as_ref()) {
            return true;
        }
        if self.ids.len() < SENT_NOTIFICATIONS_MAX {
            self.ids.insert(id.into());
        }
        false
    }
}

/// The bounded outbound queue of one connection.
///
/// Allocated lazily: an idle connection holds no buffer. Pushing into a full queue marks the
/// connection slow (it is then closed with 4008) instead of blocking the publisher. The
/// driver waits for frames with [`Outbox::poll_notified`] (the core holds its waker, nothing
/// else of its runtime).
///
/// **Conflation** ([`crate::conflate`]): once the queue holds at least its conflation threshold
/// of frames ([`Outbox::set_conflation_threshold`]; off until set), or whatever it holds while
/// the driver is behind ([`Outbox::set_behind`]: its socket took no more), a pushed frame with
/// a key removes the queued frame with the same key and is appended at the end, and a first
/// such push removes every older duplicate of every key: past the threshold, and while behind,
/// the queue never holds two frames with one key. Frames without a key are never removed.
/// Otherwise a push is a plain append (plus one counter increment for a keyed frame).
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
    // Both `u32` rather than `usize`: with the rest, the outbox is one 112-byte heap block a
    // connection (idle memory per connection, docs/benchmarks.md).
    capacity: u32,
    /// Queue length from which keyed frames replace their older namesakes.
    conflate_from: AtomicU32,
    inner: Mutex<Inner>,
    slow: AtomicBool,
    closed: AtomicBool,
    /// The driver's last write had to wait for the socket ([`Outbox::set_behind`]).
    behind: AtomicBool,
    /// The waker of [`Outbox::source_waker`] fired since [`Outbox::take_source_woken`].
    source_woken: AtomicBool,
    /// How the connection sends its frames (kept here, on the heap once per connection, rather
    /// than in the driver's task or the session, where every byte costs each idle connection).
    encoding: Encoding,
}

impl Outbox {
    /// A queue of at most `capacity` frames, for a connection of JSON text frames.
    #[must_use]
    pub fn new(capacity: usize) -> Arc<Self> {
        Self::with_encoding(capacity, Encoding::Json)
    }

    /// A queue of at most `capacity` frames, for a connection that sends them as `encoding`
    /// says (the driver turns each [`Text`] into that form when it writes it).
    ///
    /// ```
    /// use cerebrum_server_core::{outbox::Outbox, Encoding};
    /// let outbox = Outbox::with_encoding(8, Encoding::MessagePack);
    /// assert_eq!(outbox.encoding(), Encoding::MessagePack);
    /// assert_eq!(Outbox::new(8).encoding(), Encoding::Json);
    /// ```
    #[must_use]
    pub fn with_encoding(capacity: usize, encoding: Encoding) -> Arc<Self> {
        Arc::new(Self {
            capacity: u32::try_from(capacity).unwrap_or(u32::MAX).max(1),
            conflate_from: AtomicU32::new(u32::MAX),
            inner: Mutex::new(Inner::default()),
            slow: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            behind: AtomicBool::new(false),
            source_woken: AtomicBool::new(false),
            encoding,
        })
    }

    /// How the connection sends its frames.
    #[must_use]
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Conflates keyed frames once `threshold` frames are queued (`usize::MAX`, the default,
    /// turns conflation off; a threshold at or past the capacity conflates only a full queue).
    pub fn set_conflation_threshold(&self, threshold: usize) {
        let threshold = u32::try_from(threshold).unwrap_or(u32::MAX);
        self.conflate_from.store(threshold, Ordering::Relaxed);
    }

    /// Queues a frame; `false` (and the queue marked slow) when it is full or closed.
    pub fn push(&self, text: Text, now: Instant) -> bool {
        self.push_keyed(text, None, now)
    }

    /// Queues a frame with its conflation `key` (see the type's documentation); `false` (and
    /// the queue marked slow) when it is full, even after conflation, or closed.
    pub fn push_keyed(&self, text: Text, key: Option<&ConflationKey>, now: Instant) -> bool {
        if self.closed.load(Ordering::Relaxed) || self.slow.load(Ordering::Relaxed) {
            return false;
        }
        let (accepted, waker) = {
            let mut inner = lock(&self.inner);
            if inner.sent_notifications.is_some() && inner.repeats_notification(&text, now) {
                // Queued already (from the pending page or live): nothing to do.
                return true;
            }
            let conflate_from = self.conflate_from.load(Ordering::Relaxed);
            // Past the threshold, or (conflation being on) while the driver is behind: then
            // what waits here is all the reader will get, so only the newest of a key stays.
            let conflates = inner.frames.len() >= conflate_from as usize
                || (key.is_some()
                    && conflate_from != u32::MAX
                    && self.behind.load(Ordering::Relaxed));
            if conflates {
                inner.conflate(key);
            } else if key.is_some() {
                inner.keyed_unchecked = inner.keyed_unchecked.saturating_add(1);
            }
            let accepted = if inner.frames.len() >= self.capacity as usize {
                false
            } else {
                inner.frames.push_back(Frame {
                    text,
                    queued_at: now,
                    key: key.cloned(),
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
        inner.keyed_unchecked = 0;
        drop(inner);
        out.extend(frames);
    }

    /// Takes every queued frame at once (the queue's buffer goes with them: an idle connection
    /// holds no memory here).
    #[must_use]
    pub fn take_all(&self) -> VecDeque<Frame> {
        let mut inner = lock(&self.inner);
        inner.keyed_unchecked = 0;
        std::mem::take(&mut inner.frames)
    }

    /// Takes what the driver writes next: every queued frame while the connection keeps up,
    /// only the oldest one while it is behind — the queue holds at least its conflation
    /// threshold, or the driver's last write had to wait for the socket
    /// ([`Outbox::set_behind`]). A connection that is behind is written one frame at a time
    /// (the next taken with [`Outbox::take_front`] once the socket took the previous one), so
    /// that what it has not written stays in the queue, where newer keyed frames replace it.
    ///
    /// One lock either way, as [`Outbox::take_all`].
    ///
    /// ```
    /// use std::time::Instant;
    /// use cerebrum_server_core::outbox::{Outbox, Taken};
    ///
    /// let outbox = Outbox::new(8);
    /// outbox.set_conflation_threshold(2);
    /// assert!(outbox.push("a".into(), Instant::now()));
    /// assert!(matches!(outbox.take(), Taken::All(frames) if frames.len() == 1));
    /// assert!(outbox.push("b".into(), Instant::now()));
    /// assert!(outbox.push("c".into(), Instant::now()));
    /// // At the threshold: one frame, the rest stays queued.
    /// assert!(matches!(outbox.take(), Taken::One(frame) if frame.text.as_str() == "b"));
    /// assert_eq!(outbox.len(), 1);
    /// ```
    pub fn take(&self) -> Taken {
        let mut inner = lock(&self.inner);
        let behind = self.behind.load(Ordering::Relaxed)
            || inner.frames.len() >= self.conflate_from.load(Ordering::Relaxed) as usize;
        if behind && let Some(frame) = inner.pop_front() {
            return Taken::One(frame);
        }
        inner.keyed_unchecked = 0;
        Taken::All(std::mem::take(&mut inner.frames))
    }

    /// Takes the oldest queued frame, if any (the next frame of a connection that is behind,
    /// see [`Outbox::take`]). The queue's buffer is released when this empties it.
    ///
    /// ```
    /// use std::time::Instant;
    /// use cerebrum_server_core::outbox::Outbox;
    ///
    /// let outbox = Outbox::new(8);
    /// assert!(outbox.push("a".into(), Instant::now()));
    /// assert!(outbox.push("b".into(), Instant::now()));
    /// assert_eq!(outbox.take_front().map(|f| f.text), Some("a".into()));
    /// assert_eq!(outbox.take_front().map(|f| f.text), Some("b".into()));
    /// assert!(outbox.take_front().is_none());
    /// ```
    #[must_use]
    pub fn take_front(&self) -> Option<Frame> {
        lock(&self.inner).pop_front()
    }

    /// The driver says whether its last write had to wait for the socket: while it did, the
    /// connection counts as behind, [`Outbox::take`] hands out one frame at a time, and (when
    /// conflation is on) every keyed push conflates, whatever the queue's length.
    ///
    /// ```
    /// use std::time::Instant;
    /// use cerebrum_server_core::{conflate::ConflationKey, outbox::Outbox};
    ///
    /// let outbox = Outbox::new(64);
    /// outbox.set_conflation_threshold(32);
    /// let key = ConflationKey::new("user-1");
    /// outbox.set_behind(true);
    /// assert!(outbox.push_keyed("1".into(), Some(&key), Instant::now()));
    /// assert!(outbox.push_keyed("2".into(), Some(&key), Instant::now()));
    /// assert_eq!(outbox.len(), 1, "only the newest of the key waits");
    /// ```
    pub fn set_behind(&self, behind: bool) {
        self.behind.store(behind, Ordering::Relaxed);
    }

    /// Opens the window in which a notification is queued at most once (by its `messageId`):
    /// from when the connection's user is known, while its pending notifications are read
    /// and until [`Outbox::settle_notifications`]'s deadline. A notification stored while a
    /// page was read can come in the page and live as well; the second is dropped.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use cerebrum_server_core::outbox::Outbox;
    ///
    /// let note = r#"{"type":"notification","payload":{},"messageId":"n-1"}"#;
    /// let outbox = Outbox::new(8);
    /// let now = Instant::now();
    /// outbox.watch_notifications();
    /// assert!(outbox.push(note.into(), now));
    /// assert!(outbox.push(note.into(), now)); // accepted, not queued twice
    /// assert_eq!(outbox.len(), 1);
    /// outbox.settle_notifications(now + Duration::from_secs(1));
    /// assert!(outbox.push(note.into(), now + Duration::from_secs(2))); // window closed
    /// assert_eq!(outbox.len(), 2);
    /// ```
    pub fn watch_notifications(&self) {
        let mut inner = lock(&self.inner);
        match &mut inner.sent_notifications {
            Some(sent) => sent.until = None,
            None => inner.sent_notifications = Some(Box::default()),
        }
    }

    /// Closes the window of [`Outbox::watch_notifications`] at `until` (the last page was
    /// queued; a live delivery of one of its notifications can trail it by a broker's round
    /// trip).
    pub fn settle_notifications(&self, until: Instant) {
        if let Some(sent) = &mut lock(&self.inner).sent_notifications {
            sent.until = Some(until);
        }
    }

    /// Forgets the window's notifications once its deadline passed (also done by the first push
    /// after it).
    pub fn expire_notifications(&self, now: Instant) {
        let mut inner = lock(&self.inner);
        if inner
            .sent_notifications
            .as_ref()
            .is_some_and(|sent| sent.until.is_some_and(|until| now >= until))
        {
            inner.sent_notifications = None;
        }
    }

    /// Hands back the buffer of a batch taken with [`Outbox::take`] or [`Outbox::take_all`]
    /// once it was written: on a busy connection (from the [`BUSY_BATCHES`]th batch since it
    /// was last quiet) the next push reuses it instead of allocating a queue, so it allocates
    /// none per batch. Only a small buffer is kept (at most [`SPARE_FRAMES`] frames), and only while the queue has
    /// none of its own; [`Outbox::release_spare`] gives it up when the connection goes quiet.
    ///
    /// ```
    /// use std::time::Instant;
    /// use cerebrum_server_core::outbox::{Outbox, BUSY_BATCHES};
    ///
    /// let outbox = Outbox::new(8);
    /// for _ in 0..BUSY_BATCHES {
    ///     assert!(!outbox.holds_spare());
    ///     outbox.push("a".into(), Instant::now());
    ///     let batch = outbox.take_all();
    ///     outbox.give_back(batch);
    /// }
    /// assert!(outbox.holds_spare());
    /// outbox.release_spare();
    /// assert!(!outbox.holds_spare());
    /// ```
    pub fn give_back(&self, mut batch: VecDeque<Frame>) {
        if batch.capacity() > SPARE_FRAMES {
            return;
        }
        batch.clear();
        let mut inner = lock(&self.inner);
        inner.batches = inner.batches.saturating_add(1);
        if inner.batches >= BUSY_BATCHES && inner.frames.capacity() == 0 {
            inner.frames = batch;
        }
    }

    /// Gives up an empty queue's buffer (one handed back by [`Outbox::give_back`]): an idle
    /// connection holds no memory here.
    pub fn release_spare(&self) {
        let mut inner = lock(&self.inner);
        inner.batches = 0;
        if inner.frames.is_empty() && inner.frames.capacity() > 0 {
            inner.frames = VecDeque::new();
        }
    }

    /// Whether the queue holds a buffer while empty (see [`Outbox::give_back`]).
    #[must_use]
    pub fn holds_spare(&self) -> bool {
        let inner = lock(&self.inner);
        inner.frames.is_empty() && inner.frames.capacity() > 0
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
        self.wake_task(true);
    }

    /// Wakes the owner as a push would, without a frame: for news from outside the queue
    /// that the owner checks when it wakes — the server is shutting down, or the session has
    /// work ([`crate::session::Session::has_effects`]), such as asking for the next page of
    /// pending notifications once another connection of its user acknowledged the current one.
    ///
    /// ```
    /// use std::task::{Poll, Waker};
    /// use cerebrum_server_core::outbox::Outbox;
    ///
    /// let outbox = Outbox::new(4);
    /// assert!(outbox.poll_notified(Waker::noop()).is_pending());
    /// outbox.wake();
    /// assert_eq!(outbox.poll_notified(Waker::noop()), Poll::Ready(()));
    /// assert!(outbox.is_empty());
    /// ```
    pub fn wake(&self) {
        self.wake_task(true);
    }

    /// Wakes the task waiting in [`Outbox::poll_notified`], leaving it a permit (`Ready` at
    /// its next poll) when `notify`.
    fn wake_task(&self, notify: bool) {
        let waker = {
            let mut inner = lock(&self.inner);
            inner.notified |= notify;
            inner.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// A waker for the driver's other event source (its socket): waking it records that the
    /// source is ready to be polled ([`Outbox::take_source_woken`]) and wakes the task that
    /// last waited in [`Outbox::poll_notified`], without making the outbox `Ready`.
    ///
    /// A driver that polls its socket with this waker needs to poll the socket again only
    /// after it fired (or after the socket was last `Ready`): a wake-up for frames to write
    /// then costs no read attempt. It is the outbox itself (no allocation): cloning it is a
    /// reference count.
    ///
    /// ```
    /// use std::task::{Poll, Waker};
    /// use cerebrum_server_core::outbox::Outbox;
    ///
    /// let outbox = Outbox::new(4);
    /// let socket = outbox.source_waker();
    /// assert!(outbox.poll_notified(Waker::noop()).is_pending());
    /// assert!(!outbox.take_source_woken());
    /// socket.wake_by_ref();
    /// assert!(outbox.take_source_woken());
    /// assert!(!outbox.take_source_woken());
    /// // Not a frame: the outbox itself stays pending.
    /// assert!(outbox.poll_notified(Waker::noop()).is_pending());
    /// ```
    #[must_use]
    pub fn source_waker(self: &Arc<Self>) -> Waker {
        Waker::from(Arc::clone(self))
    }

    /// Whether the waker of [`Outbox::source_waker`] fired since the last call (clearing it).
    ///
    /// Call it after [`Outbox::poll_notified`] returned `Pending` (the task's waker is kept
    /// then): a source that fires later finds that waker and wakes the task again.
    #[must_use]
    pub fn take_source_woken(&self) -> bool {
        self.source_woken.swap(false, Ordering::Acquire)
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

/// The waker of [`Outbox::source_waker`]: the flag, then the task.
impl Wake for Outbox {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Stored before the lock: a driver that registers its waker after this wake-up looked
        // for one (and found none) reads the flag after registering, so it sees it.
        self.source_woken.store(true, Ordering::Release);
        self.wake_task(false);
    }
}

impl Inner {
    /// Removes the oldest frame; an emptied queue gives its buffer back (an idle connection
    /// holds no memory here).
    fn pop_front(&mut self) -> Option<Frame> {
        let frame = self.frames.pop_front();
        if self.frames.is_empty() {
            self.frames = VecDeque::new();
            self.keyed_unchecked = 0;
        }
        frame
    }

    /// Whether `text` is a notification already queued in the open window of
    /// [`Outbox::watch_notifications`] (closing the window once its deadline passed).
    fn repeats_notification(&mut self, text: &Text, now: Instant) -> bool {
        let Some(sent) = &mut self.sent_notifications else {
            return false;
        };
        if sent.until.is_some_and(|until| now >= until) {
            self.sent_notifications = None;
            return false;
        }
        sent.is_repeat(text.as_str())
    }

    /// Makes room for a frame with `key` in a queue past its threshold: removes the queued
    /// frame with that key, or, when keyed frames were queued below the threshold since the
    /// last full pass, every frame that a later frame (or the new one) has the key of.
    fn conflate(&mut self, key: Option<&ConflationKey>) {
        if self.keyed_unchecked > 0 {
            self.keyed_unchecked = 0;
            let mut seen: HashSet<&ConflationKey> = key.into_iter().collect();
            let keep: Vec<bool> = self
                .frames
                .iter()
                .rev()
                .map(|frame| frame.key.as_ref().is_none_or(|k| seen.insert(k)))
                .collect();
            let mut keep = keep.into_iter().rev();
            self.frames.retain(|_| keep.next().unwrap_or(true));
        } else if let Some(key) = key
            && let Some(at) = self.frames.iter().position(|f| f.key.as_ref() == Some(key))
        {
            // Past a full pass every key is queued at most once.
            self.frames.remove(at);
        }
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

    fn texts(outbox: &Outbox) -> Vec<String> {
        let mut out = Vec::new();
        outbox.drain_into(&mut out);
        out.iter().map(|f| f.text.as_str().to_owned()).collect()
    }

    #[test]
    fn a_written_batch_buffer_is_reused_when_small_and_the_queue_has_none() {
        let outbox = Outbox::new(1024);
        let now = crate::testing::instant();
        // Not busy yet: nothing kept.
        for _ in 1..BUSY_BATCHES {
            assert!(outbox.push("x".into(), now));
            outbox.give_back(outbox.take_all());
            assert!(!outbox.holds_spare());
        }
        for i in 0..100 {
            assert!(outbox.push(Text::from(i.to_string()), now));
        }
        // A large buffer is not kept.
        outbox.give_back(outbox.take_all());
        assert!(!outbox.holds_spare());
        assert!(outbox.push("a".into(), now));
        let small = outbox.take_all();
        // Frames queued meanwhile keep their own buffer; the handed-back one goes.
        assert!(outbox.push("b".into(), now));
        outbox.give_back(small);
        assert_eq!(texts_of(outbox.take_all()), ["b"]);
        assert!(outbox.push("c".into(), now));
        outbox.give_back(outbox.take_all());
        assert!(outbox.holds_spare());
        // The spare serves the next push, and nothing of what it held comes back.
        assert!(outbox.push("d".into(), now));
        assert!(!outbox.holds_spare());
        assert_eq!(texts_of(outbox.take_all()), ["d"]);
        outbox.release_spare();
        assert!(!outbox.holds_spare());
        // Quiet since: not busy again until as many batches again.
        assert!(outbox.push("e".into(), now));
        outbox.give_back(outbox.take_all());
        assert!(!outbox.holds_spare());
    }

    fn texts_of(frames: VecDeque<Frame>) -> Vec<String> {
        frames.iter().map(|f| f.text.as_str().to_owned()).collect()
    }

    #[test]
    fn below_the_threshold_nothing_is_conflated() {
        let outbox = Outbox::new(16);
        outbox.set_conflation_threshold(8);
        let key = ConflationKey::new("user:a\0study_metrics_update");
        let now = crate::testing::instant();
        for i in 0..8 {
            assert!(outbox.push_keyed(Text::from(format!("m{i}")), Some(&key), now));
        }
        assert_eq!(outbox.len(), 8);
        assert_eq!(
            texts(&outbox),
            (0..8).map(|i| format!("m{i}")).collect::<Vec<_>>()
        );
    }

    #[test]
    fn past_the_threshold_the_newer_frame_is_appended_and_the_older_removed() {
        let outbox = Outbox::new(8);
        outbox.set_conflation_threshold(3);
        let a = ConflationKey::new("a");
        let b = ConflationKey::new("b");
        let now = crate::testing::instant();
        assert!(outbox.push_keyed("a1".into(), Some(&a), now));
        assert!(outbox.push_keyed("b1".into(), Some(&b), now));
        assert!(outbox.push("n1".into(), now));
        // Past the threshold: `a1` goes, `a2` comes last (after `b1`, whose offset is lower).
        assert!(outbox.push_keyed("a2".into(), Some(&a), now));
        assert!(outbox.push("n2".into(), now));
        assert!(outbox.push_keyed("b2".into(), Some(&b), now));
        assert!(outbox.push_keyed("a3".into(), Some(&ConflationKey::new("a")), now));
        assert_eq!(texts(&outbox), ["n1", "n2", "b2", "a3"]);
    }

    #[test]
    fn a_reader_that_stops_reading_is_not_marked_slow_by_keyed_frames() {
        let outbox = Outbox::new(8);
        outbox.set_conflation_threshold(4);
        let now = crate::testing::instant();
        let keys: Vec<ConflationKey> = (0..3).map(|k| ConflationKey::new(&k.to_string())).collect();
        for i in 0..10_000 {
            let key = &keys[i % keys.len()];
            assert!(outbox.push_keyed(Text::from(format!("{i}")), Some(key), now));
        }
        assert!(!outbox.is_slow());
        // Never past the threshold by more than the frame being pushed, the latest of each key
        // last (below the threshold frames are appended as they come).
        let queued = texts(&outbox);
        assert!(queued.len() <= 4, "{queued:?}");
        assert!(
            queued.ends_with(&["9997".into(), "9998".into(), "9999".into()]),
            "{queued:?}"
        );
        // Frames without a key still fill the queue: 4008 as before.
        for i in 0..8 {
            assert!(outbox.push(Text::from(format!("n{i}")), now));
        }
        assert!(!outbox.push("n8".into(), now));
        assert!(outbox.is_slow());
    }

    #[test]
    fn without_a_threshold_keys_change_nothing() {
        let outbox = Outbox::new(2);
        let key = ConflationKey::new("a");
        let now = crate::testing::instant();
        assert!(outbox.push_keyed("1".into(), Some(&key), now));
        assert!(outbox.push_keyed("2".into(), Some(&key), now));
        assert!(!outbox.push_keyed("3".into(), Some(&key), now));
        assert!(outbox.is_slow());
    }

    #[test]
    fn a_connection_that_keeps_up_takes_everything_and_one_that_is_behind_one_frame() {
        let outbox = Outbox::new(16);
        outbox.set_conflation_threshold(4);
        let now = crate::testing::instant();
        for i in 0..3 {
            assert!(outbox.push(Text::from(format!("m{i}")), now));
        }
        // Below the threshold, not behind: the whole queue, as `take_all`.
        let Taken::All(all) = outbox.take() else {
            panic!("a connection that keeps up takes the whole queue");
        };
        assert_eq!(all.len(), 3);
        assert!(matches!(outbox.take(), Taken::All(none) if none.is_empty()));
        // At the threshold: the oldest frame only.
        for i in 3..7 {
            assert!(outbox.push(Text::from(format!("m{i}")), now));
        }
        let Taken::One(frame) = outbox.take() else {
            panic!("a queue at its threshold is written one frame at a time");
        };
        assert_eq!(frame.text.as_str(), "m3");
        assert_eq!(outbox.len(), 3);
        // Behind (the last write waited): one frame even below the threshold.
        outbox.set_behind(true);
        assert!(matches!(outbox.take(), Taken::One(frame) if frame.text.as_str() == "m4"));
        outbox.set_behind(false);
        assert!(matches!(outbox.take(), Taken::All(rest) if rest.len() == 2));
        // Behind with nothing queued: an empty batch.
        outbox.set_behind(true);
        assert!(matches!(outbox.take(), Taken::All(none) if none.is_empty()));
    }

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Counter(std::sync::atomic::AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn the_source_waker_wakes_the_waiting_task_and_leaves_a_flag() {
        let outbox = Outbox::new(4);
        let task = Arc::new(Counter::default());
        let task_waker = Waker::from(Arc::clone(&task));
        // Woken before the task waits: the flag is there when it looks.
        outbox.source_waker().wake();
        assert!(outbox.poll_notified(&task_waker).is_pending());
        assert!(outbox.take_source_woken());
        assert_eq!(task.0.load(Ordering::Relaxed), 0);
        // Woken while it waits: the task is woken, once, and finds the flag.
        outbox.source_waker().wake_by_ref();
        assert_eq!(task.0.load(Ordering::Relaxed), 1);
        assert!(outbox.take_source_woken());
        assert!(
            outbox.poll_notified(&task_waker).is_pending(),
            "no frame was pushed"
        );
        // A push still wakes it as before, and leaves no flag.
        assert!(outbox.push("a".into(), crate::testing::instant()));
        assert_eq!(task.0.load(Ordering::Relaxed), 2);
        assert!(!outbox.take_source_woken());
        assert!(outbox.poll_notified(&task_waker).is_ready());
    }

    #[test]
    fn a_connection_behind_conflates_every_keyed_push_when_conflation_is_on() {
        let now = crate::testing::instant();
        let key = ConflationKey::new("k");
        let texts = |outbox: &Outbox| -> Vec<String> {
            lock(&outbox.inner)
                .frames
                .iter()
                .map(|f| f.text.as_str().to_owned())
                .collect()
        };
        // Keeping up: below the threshold every frame is queued.
        let outbox = Outbox::new(16);
        outbox.set_conflation_threshold(8);
        for text in ["1", "2"] {
            assert!(outbox.push_keyed(text.into(), Some(&key), now));
        }
        assert_eq!(texts(&outbox), ["1", "2"]);
        // Behind: the duplicates queued before go at the next keyed push; unkeyed frames stay.
        outbox.set_behind(true);
        assert!(outbox.push("plain".into(), now));
        assert!(outbox.push_keyed("3".into(), Some(&key), now));
        assert!(outbox.push_keyed("4".into(), Some(&key), now));
        assert_eq!(texts(&outbox), ["plain", "4"]);
        // Caught up again: plain appends below the threshold.
        outbox.set_behind(false);
        assert!(outbox.push_keyed("5".into(), Some(&key), now));
        assert_eq!(texts(&outbox), ["plain", "4", "5"]);
        // Conflation off: being behind changes nothing.
        let off = Outbox::new(16);
        off.set_behind(true);
        for text in ["1", "2"] {
            assert!(off.push_keyed(text.into(), Some(&key), now));
        }
        assert_eq!(texts(&off), ["1", "2"]);
    }

    #[test]
    fn taking_the_last_frame_releases_the_buffer() {
        let outbox = Outbox::new(64);
        let now = crate::testing::instant();
        for i in 0..40 {
            assert!(outbox.push(Text::from(i.to_string()), now));
        }
        let mut taken = Vec::new();
        while let Some(frame) = outbox.take_front() {
            taken.push(frame.text.as_str().to_owned());
        }
        assert_eq!(taken, (0..40).map(|i| i.to_string()).collect::<Vec<_>>());
        assert_eq!(lock(&outbox.inner).frames.capacity(), 0);
    }

    /// A writer that is behind (its socket full) and takes one frame per 10 pushes (a reader
    /// at 10 % of the rate) is never closed 4008 and, once the pushes stop, has the latest
    /// value of every key after a number of frames bounded by the threshold, however long the
    /// pushes went on.
    #[test]
    fn a_writer_taking_one_frame_at_a_time_stays_within_reach_of_conflation() {
        let outbox = Outbox::new(64);
        outbox.set_conflation_threshold(8);
        outbox.set_behind(true);
        let now = crate::testing::instant();
        let keys: Vec<ConflationKey> = (0..4).map(|k| ConflationKey::new(&k.to_string())).collect();
        let parse = |frame: Frame| -> (usize, usize) {
            let text = frame.text.as_str();
            let (key, seq) = text.split_once(':').unwrap_or_default();
            (key.parse().unwrap_or(usize::MAX), seq.parse().unwrap_or(0))
        };
        let mut latest_taken = [None::<usize>; 4];
        for i in 0..10_000 {
            let text = Text::from(format!("{}:{i}", i % 4));
            assert!(outbox.push_keyed(text, Some(&keys[i % 4]), now));
            if i % 10 == 9 {
                let Taken::One(frame) = outbox.take() else {
                    panic!("a writer that is behind takes one frame at a time");
                };
                let (key, seq) = parse(frame);
                latest_taken[key] = Some(seq);
            }
            assert!(!outbox.is_slow());
            // Never past the threshold by more than the frame pushed.
            assert!(outbox.len() <= 9, "{} queued", outbox.len());
        }
        // Publishing ended: the writer drains the queue one frame at a time.
        let mut after = 0;
        while let Some(frame) = outbox.take_front() {
            let (key, seq) = parse(frame);
            latest_taken[key] = Some(seq);
            after += 1;
        }
        assert!(after <= 9, "{after} frames to catch up");
        assert_eq!(
            latest_taken,
            [Some(9996), Some(9997), Some(9998), Some(9999)]
        );
    }

    /// Every byte of the outbox is paid by each connection: the driver's `behind` flag sits in
    /// the padding after the other flags.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn the_outbox_stays_within_its_size() {
        assert!(
            size_of::<Outbox>() <= 96,
            "Outbox is {} bytes",
            size_of::<Outbox>()
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A step: push a frame with key `Some(k)` (or none), or let the driver drain.
        #[derive(Debug, Clone)]
        enum Op {
            Push(Option<u8>),
            Drain,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                8 => proptest::option::of(0u8..4).prop_map(Op::Push),
                1 => Just(Op::Drain),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Order, latest wins, one frame per key past the threshold, unkeyed frames kept.
            #[test]
            fn conflation_keeps_order_latest_and_unkeyed_frames(
                capacity in 1usize..24,
                threshold in 1usize..32,
                ops in proptest::collection::vec(op(), 0..200),
            ) {
                let outbox = Outbox::new(capacity);
                outbox.set_conflation_threshold(threshold);
                let keys: Vec<ConflationKey> =
                    (0..4).map(|k| ConflationKey::new(&format!("k{k}"))).collect();
                let now = crate::testing::instant();
                // What was pushed since the last drain: (sequence number, key).
                let mut pushed: Vec<(usize, Option<u8>)> = Vec::new();
                for (seq, op) in ops.into_iter().enumerate() {
                    match op {
                        Op::Drain => {
                            let mut out = Vec::new();
                            outbox.drain_into(&mut out);
                            pushed.clear();
                        }
                        Op::Push(key) => {
                            let before = outbox.len();
                            let accepted = outbox.push_keyed(
                                Text::from(seq.to_string()),
                                key.map(|k| &keys[usize::from(k)]),
                                now,
                            );
                            if outbox.is_slow() {
                                // A full queue even after conflation: 4008, as before.
                                prop_assert!(!accepted);
                                prop_assert!(before >= capacity);
                                return Ok(());
                            }
                            prop_assert!(accepted);
                            pushed.push((seq, key));
                            let queued: Vec<(usize, Option<u8>)> = lock(&outbox.inner)
                                .frames
                                .iter()
                                .map(|f| {
                                    let seq = f.text.as_str().parse::<usize>().unwrap_or(usize::MAX);
                                    let key = f.key.as_ref().map(|k| {
                                        k.as_str()[1..].parse::<u8>().unwrap_or(u8::MAX)
                                    });
                                    (seq, key)
                                })
                                .collect();
                            // Order: what is queued is what was pushed, in push order, less
                            // some keyed frames.
                            let mut rest = pushed.iter();
                            for frame in &queued {
                                prop_assert!(rest.any(|p| p == frame), "{:?} out of order", frame);
                            }
                            // Unkeyed frames are never dropped.
                            let unkeyed = |v: &[(usize, Option<u8>)]| {
                                v.iter().filter(|(_, k)| k.is_none()).count()
                            };
                            prop_assert_eq!(unkeyed(&queued), unkeyed(&pushed));
                            // The latest frame of every key is queued.
                            for k in 0..4u8 {
                                if let Some(latest) = pushed.iter().rev().find(|(_, key)| *key == Some(k)) {
                                    prop_assert!(queued.contains(latest));
                                }
                            }
                            if before >= threshold {
                                // Past the threshold: at most one frame per key.
                                for k in 0..4u8 {
                                    let n = queued.iter().filter(|(_, key)| *key == Some(k)).count();
                                    prop_assert!(n <= 1, "key {} queued {} times", k, n);
                                }
                            } else {
                                // Below it nothing was removed by this push.
                                prop_assert_eq!(queued.len(), before + 1);
                            }
                        }
                    }
                }
            }
        }
    }
}
