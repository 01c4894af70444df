//! Subscriptions: typed streams of payloads, raw streams of envelopes; dropping one
//! unsubscribes it.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use cerebrum_protocol::{Envelope, Payload};
use futures_core::Stream;
use tokio::sync::mpsc;

use crate::ClientError;

/// Where a subscriber listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// App messages of one type.
    Type(String),
    /// Every app message.
    Messages,
    /// Every inbound frame, control frames included.
    Frames,
    /// Publications of one channel.
    Channel(String),
}

struct Entry<T> {
    id: u64,
    tx: mpsc::Sender<T>,
    lagged: Arc<AtomicU64>,
}

/// Fans messages out to subscribers through bounded channels: a subscriber that does not keep
/// up misses messages (counted by `lagged()`) instead of growing memory without bound.
pub(crate) struct Registry {
    next_id: u64,
    capacity: usize,
    envelopes: HashMap<Key, Vec<Entry<Envelope>>>,
    errors: Vec<Entry<ClientError>>,
}

impl Registry {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            next_id: 0,
            capacity: capacity.max(1),
            envelopes: HashMap::new(),
            errors: Vec::new(),
        }
    }

    fn add_envelopes(&mut self, key: Key) -> (u64, mpsc::Receiver<Envelope>, Arc<AtomicU64>) {
        let (tx, rx) = mpsc::channel(self.capacity);
        let lagged = Arc::new(AtomicU64::new(0));
        self.next_id += 1;
        let id = self.next_id;
        self.envelopes.entry(key).or_default().push(Entry {
            id,
            tx,
            lagged: Arc::clone(&lagged),
        });
        (id, rx, lagged)
    }

    fn remove(&mut self, key: &Key, id: u64) -> usize {
        let left = match self.envelopes.get_mut(key) {
            Some(entries) => {
                entries.retain(|e| e.id != id);
                entries.len()
            }
            None => 0,
        };
        if left == 0 {
            self.envelopes.remove(key);
        }
        left
    }

    /// Whether anyone listens on `key`.
    pub(crate) fn wants(&self, key: &Key) -> bool {
        self.envelopes.contains_key(key)
    }

    /// Hands `envelope` to every subscriber of `key`, dropping closed ones.
    pub(crate) fn dispatch(&mut self, key: &Key, envelope: &Envelope) {
        let Some(entries) = self.envelopes.get_mut(key) else {
            return;
        };
        entries.retain(|entry| offer(entry, envelope.clone()));
        if entries.is_empty() {
            self.envelopes.remove(key);
        }
    }

    pub(crate) fn dispatch_error(&mut self, error: &ClientError) {
        self.errors.retain(|entry| offer(entry, error.clone()));
    }

    /// How many subscribers are registered (for leak checks).
    pub(crate) fn len(&self) -> usize {
        self.envelopes.values().map(Vec::len).sum::<usize>() + self.errors.len()
    }
}

/// `false` when the subscriber is gone.
fn offer<T>(entry: &Entry<T>, item: T) -> bool {
    match entry.tx.try_send(item) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            entry.lagged.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

pub(crate) type SharedRegistry = Arc<Mutex<Registry>>;

pub(crate) fn lock(registry: &SharedRegistry) -> MutexGuard<'_, Registry> {
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Removes its entry from the registry when dropped; runs `on_last` when it was the last on
/// its key.
struct Guard {
    registry: SharedRegistry,
    key: Key,
    id: u64,
    on_last: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let left = lock(&self.registry).remove(&self.key, self.id);
        if left == 0
            && let Some(on_last) = self.on_last.take()
        {
            on_last();
        }
    }
}

/// A stream of raw envelopes: one message type ([`Client::on_type`](crate::Client::on_type)),
/// every app message ([`Client::messages`](crate::Client::messages)), every inbound frame
/// ([`Client::frames`](crate::Client::frames)) or one channel
/// ([`Client::subscribe_channel`](crate::Client::subscribe_channel)). Dropping it unsubscribes.
pub struct RawSubscription {
    rx: mpsc::Receiver<Envelope>,
    lagged: Arc<AtomicU64>,
    _guard: Guard,
}

impl std::fmt::Debug for RawSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSubscription")
            .field("key", &self._guard.key)
            .finish()
    }
}

impl RawSubscription {
    pub(crate) fn new(
        registry: &SharedRegistry,
        key: Key,
        on_last: Option<Box<dyn FnOnce() + Send + Sync>>,
    ) -> Self {
        let (id, rx, lagged) = lock(registry).add_envelopes(key.clone());
        Self {
            rx,
            lagged,
            _guard: Guard {
                registry: Arc::clone(registry),
                key,
                id,
                on_last,
            },
        }
    }

    /// The next envelope; `None` once the client has stopped.
    pub async fn recv(&mut self) -> Option<Envelope> {
        self.rx.recv().await
    }

    /// The next envelope if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<Envelope> {
        self.rx.try_recv().ok()
    }

    /// How many envelopes were dropped because this subscriber did not keep up.
    #[must_use]
    pub fn lagged(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
    }
}

impl Stream for RawSubscription {
    type Item = Envelope;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Envelope>> {
        self.rx.poll_recv(cx)
    }
}

/// A stream of typed payloads of one catalog type: the origin's `useWebSocketMessage<T>`
/// ([`Client::on`](crate::Client::on)). Envelopes whose payload does not match the type are
/// skipped (and counted by [`invalid`](Self::invalid)). Dropping it unsubscribes.
pub struct Subscription<P> {
    raw: RawSubscription,
    invalid: u64,
    _payload: PhantomData<fn() -> P>,
}

impl<P> std::fmt::Debug for Subscription<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("key", &self.raw._guard.key)
            .finish()
    }
}

impl<P: Payload> Subscription<P> {
    pub(crate) fn new(raw: RawSubscription) -> Self {
        Self {
            raw,
            invalid: 0,
            _payload: PhantomData,
        }
    }

    /// The next payload; `None` once the client has stopped.
    pub async fn recv(&mut self) -> Option<P> {
        std::future::poll_fn(|cx| self.poll_payload(cx)).await
    }

    /// How many messages were dropped because this subscriber did not keep up.
    #[must_use]
    pub fn lagged(&self) -> u64 {
        self.raw.lagged()
    }

    /// How many messages of the type were skipped because their payload was invalid.
    #[must_use]
    pub fn invalid(&self) -> u64 {
        self.invalid
    }

    fn poll_payload(&mut self, cx: &mut Context<'_>) -> Poll<Option<P>> {
        loop {
            match self.raw.rx.poll_recv(cx) {
                Poll::Ready(Some(envelope)) => match envelope.typed::<P>() {
                    Ok(payload) => return Poll::Ready(Some(payload)),
                    Err(_) => self.invalid += 1,
                },
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<P: Payload> Stream for Subscription<P> {
    type Item = P;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<P>> {
        self.poll_payload(cx)
    }
}

/// A stream of the errors the client reports while running
/// ([`Client::errors`](crate::Client::errors)).
pub struct ErrorSubscription {
    rx: mpsc::Receiver<ClientError>,
    registry: SharedRegistry,
    id: u64,
}

impl std::fmt::Debug for ErrorSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ErrorSubscription")
    }
}

impl ErrorSubscription {
    pub(crate) fn new(registry: &SharedRegistry) -> Self {
        let mut guard = lock(registry);
        let (tx, rx) = mpsc::channel(guard.capacity);
        guard.next_id += 1;
        let id = guard.next_id;
        guard.errors.push(Entry {
            id,
            tx,
            lagged: Arc::new(AtomicU64::new(0)),
        });
        drop(guard);
        Self {
            rx,
            registry: Arc::clone(registry),
            id,
        }
    }

    /// The next error; `None` once the client has stopped.
    pub async fn recv(&mut self) -> Option<ClientError> {
        self.rx.recv().await
    }

    /// The next error if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<ClientError> {
        self.rx.try_recv().ok()
    }
}

impl Stream for ErrorSubscription {
    type Item = ClientError;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientError>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for ErrorSubscription {
    fn drop(&mut self) {
        let id = self.id;
        lock(&self.registry).errors.retain(|e| e.id != id);
    }
}
