//! The channel hub: local subscribers of each channel, sharded by channel name.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cerebrum_protocol::{
    Envelope, MessageIdGenerator, SYSTEM_CHANNEL, StreamPosition, Subscribed, encode,
};

use crate::Text;
use crate::broker::{BrokerError, Delivery, MemoryBroker, Replay};
use crate::clock::Now;
use crate::conflate::{ConflationKey, ConflationRules};
use crate::outbox::{Outbox, lock};

/// The `subscribed` payload of a replay.
fn subscribed_payload(channel: &str, replay: &Replay) -> Subscribed {
    Subscribed {
        channel: channel.to_owned(),
        offset: replay.offset,
        epoch: replay.epoch.to_string(),
        recovered: replay.recovered,
        missed: replay.publications.len() as u64,
    }
}

/// A connection's id within this server.
pub type ConnId = u64;

/// The local subscribers of one channel.
struct Subscribers {
    /// Each subscriber's outbox (and on a remote channel its position).
    conns: Members,
    /// The epoch those offsets belong to (remote brokers only).
    epoch: Option<Arc<str>>,
    /// Connections subscribing through a remote broker, between their registration and their
    /// replay: what is delivered meanwhile is kept for them (offset, frame).
    pending: HashMap<ConnId, Vec<(u64, Text)>>,
    /// Deliveries held for subscribers that missed the publications before them (the broker's
    /// link was down): released in order once a resync fills the gap (boxed: rare).
    held: Option<Box<Held>>,
}

/// Deliveries held per subscriber: (offset, frame).
type Held = HashMap<ConnId, Vec<(u64, Text)>>;

/// A channel's subscribers. On a channel of the remote broker each has beside its outbox the
/// offset up to which it already has the publications (a remote broker may deliver a
/// publication the subscriber's replay already held, or one after a gap); a channel the memory
/// broker orders needs none (its publications are queued in order as they are appended), and
/// keeps 8 bytes less per subscription: 130 bytes per idle connection of 10 channels
/// (docs/benchmarks.md).
enum Members {
    Local(HashMap<ConnId, Arc<Outbox>>),
    Remote(HashMap<ConnId, (Arc<Outbox>, u64)>),
}

impl Members {
    fn len(&self) -> usize {
        match self {
            Self::Local(conns) => conns.len(),
            Self::Remote(conns) => conns.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn contains_key(&self, conn: &ConnId) -> bool {
        match self {
            Self::Local(conns) => conns.contains_key(conn),
            Self::Remote(conns) => conns.contains_key(conn),
        }
    }

    /// Whether `conn` was there.
    fn remove(&mut self, conn: &ConnId) -> bool {
        match self {
            Self::Local(conns) => conns.remove(conn).is_some(),
            Self::Remote(conns) => conns.remove(conn).is_some(),
        }
    }

    /// Adds or replaces `conn`; `after` is kept on a remote channel only.
    fn insert(&mut self, conn: ConnId, outbox: &Arc<Outbox>, after: u64) {
        match self {
            Self::Local(conns) => {
                conns.insert(conn, outbox.clone());
            }
            Self::Remote(conns) => {
                conns.insert(conn, (outbox.clone(), after));
            }
        }
    }

    /// Calls `f` with every subscriber's outbox.
    fn for_each_outbox(&self, mut f: impl FnMut(&Outbox)) {
        match self {
            Self::Local(conns) => conns.values().for_each(|outbox| f(outbox)),
            Self::Remote(conns) => conns.values().for_each(|(outbox, _)| f(outbox)),
        }
    }

    /// The positions of a remote channel's subscribers (`None` on a local channel).
    fn positions_mut(&mut self) -> Option<&mut HashMap<ConnId, (Arc<Outbox>, u64)>> {
        match self {
            Self::Local(_) => None,
            Self::Remote(conns) => Some(conns),
        }
    }
}

/// A subscriber's position that is not known (a silent subscription): the next delivery is
/// taken as it comes.
const UNKNOWN: u64 = u64::MAX;

impl Subscribers {
    /// No subscriber yet, of a channel of the remote broker or not.
    fn new(remote: bool) -> Self {
        Self {
            conns: if remote {
                Members::Remote(HashMap::new())
            } else {
                Members::Local(HashMap::new())
            },
            epoch: None,
            pending: HashMap::new(),
            held: None,
        }
    }

    /// A new epoch: offsets of the old one say nothing any more.
    fn set_epoch(&mut self, epoch: &Arc<str>) {
        if self.epoch.as_deref() != Some(&**epoch) {
            if self.epoch.is_some() {
                if let Some(conns) = self.conns.positions_mut() {
                    conns.values_mut().for_each(|(_, after)| *after = UNKNOWN);
                }
                self.held = None;
            }
            self.epoch = Some(epoch.clone());
        }
    }

    /// Where a resync of the channel starts: the subscriber furthest behind (`deliver` gives
    /// each only what it lacks; a subscriber that joined since, with a fresher replay, may be
    /// ahead of those that missed publications during an outage). `None` for a channel whose
    /// publications never came from a remote broker.
    fn resync_position(&self) -> Option<StreamPosition> {
        let epoch = self.epoch.as_ref()?;
        let Members::Remote(conns) = &self.conns else {
            return None;
        };
        let offset = conns
            .values()
            .map(|(_, after)| *after)
            .filter(|after| *after != UNKNOWN)
            .min()
            .unwrap_or(0);
        Some(StreamPosition {
            offset,
            epoch: epoch.to_string(),
        })
    }
}

/// Queues `text` (at `offset`) to subscriber `conn` (its outbox, and the offset up to which it
/// has the publications) when it is the next one it lacks; holds it when publications before
/// it are missing. `true` when held (a gap).
fn offer(
    conn: ConnId,
    (outbox, after): (&Outbox, &mut u64),
    held: &mut Option<Box<Held>>,
    (offset, text, key): (u64, &Text, Option<&ConflationKey>),
    now: Instant,
) -> bool {
    if *after != UNKNOWN && offset <= *after {
        return false;
    }
    if *after == UNKNOWN || offset == *after + 1 {
        outbox.push_keyed(text.clone(), key, now);
        *after = offset;
        release_held(conn, (outbox, after), held, now, false);
        return false;
    }
    held.get_or_insert_with(Box::default)
        .entry(conn)
        .or_default()
        .push((offset, text.clone()));
    true
}

/// Queues what is held for subscriber `conn` that now follows on (all of it, in order, when
/// `skip_gap`: history no longer has what is missing).
fn release_held(
    conn: ConnId,
    (outbox, after): (&Outbox, &mut u64),
    held: &mut Option<Box<Held>>,
    now: Instant,
    skip_gap: bool,
) {
    let Some(mut mine) = held.as_mut().and_then(|held| held.remove(&conn)) else {
        return;
    };
    mine.sort_by_key(|(offset, _)| *offset);
    let mut kept = Vec::new();
    for (offset, text) in mine {
        if *after != UNKNOWN && offset <= *after {
            continue;
        }
        if skip_gap || *after == UNKNOWN || offset == *after + 1 {
            outbox.push(text, now);
            *after = offset;
        } else {
            kept.push((offset, text));
        }
    }
    if let Some(all) = held.as_mut() {
        if !kept.is_empty() {
            all.insert(conn, kept);
        }
        if all.is_empty() {
            *held = None;
        }
    }
}

/// The hub: who is subscribed to what, on this server process.
///
/// A publication takes the lock of its channel's shard, gets its offset from the
/// [`MemoryBroker`], and queues the same encoded bytes to every subscriber's [`Outbox`]; a
/// subscription with `since` takes the same lock, so the `subscribed` frame, the replay and
/// the live publications reach the subscriber in offset order, without gap or duplicate.
///
/// With a remote broker (`remote`, Redis in the driver) a publication goes to the broker only
/// and comes back, in offset order, through [`Hub::deliver`] on every node; a subscription is
/// registered first ([`Hub::begin_remote_subscribe`]), the driver asks the broker for the
/// replay, and [`Hub::finish_remote_subscribe`] queues it with what arrived meanwhile. The
/// `system` channel stays local to each node (its status is the node's own).
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
/// use cerebrum_protocol::{Envelope, MessageIdGenerator};
/// use cerebrum_server_core::{broker::MemoryBroker, clock::Now, hub::Hub, outbox::Outbox};
///
/// let hub = Hub::new(MemoryBroker::new(100, Duration::from_secs(300), 1), false, Arc::new(MessageIdGenerator::new()), 16);
/// let outbox = Outbox::new(1024);
/// let now = Now { mono: Instant::now(), unix_ms: 1_700_000_000_000 };
/// hub.subscribe(1, &outbox, "chat:1", None, now)?;
/// let offset = hub.publish("chat:1", Envelope::from_value("chat.msg", &"hi")?, now)?;
/// assert_eq!(offset, 1);
/// assert_eq!(outbox.len(), 2); // `subscribed`, then the publication
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Hub {
    shards: Box<[Mutex<HashMap<String, Subscribers>>]>,
    hasher: std::collections::hash_map::RandomState,
    /// Orders every channel, or only the node-local ones (`system`) when `remote`.
    local: MemoryBroker,
    /// Whether a remote broker (the driver's) orders the channels other than `system`.
    remote: bool,
    ids: Arc<MessageIdGenerator>,
    channels: AtomicUsize,
    /// Which publications carry a conflation key (computed once per publication).
    conflation: ConflationRules,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("shards", &self.shards.len())
            .field("channels", &self.channel_count())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub over `local` (every channel's broker, or only `system`'s when `remote`), stamping
    /// its frames with ids from `ids`, with `shards` locks (the driver picks a few per core).
    #[must_use]
    pub fn new(
        local: MemoryBroker,
        remote: bool,
        ids: Arc<MessageIdGenerator>,
        shards: usize,
    ) -> Self {
        Self {
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            local,
            remote,
            ids,
            channels: AtomicUsize::new(0),
            conflation: ConflationRules::default(),
        }
    }

    /// The same hub with app namespaces' conflation `rules` (the built-in ones, a user's
    /// `study_metrics_update` and the `system_status`, always apply).
    #[must_use]
    pub fn with_conflation(mut self, rules: ConflationRules) -> Self {
        self.conflation = rules;
        self
    }

    /// The rules that give publications their conflation key.
    #[must_use]
    pub fn conflation(&self) -> &ConflationRules {
        &self.conflation
    }

    /// The in-memory broker: every channel's, or `system`'s only with a remote broker.
    #[must_use]
    pub fn memory(&self) -> &MemoryBroker {
        &self.local
    }

    /// Whether a remote broker orders the channels other than `system`.
    #[must_use]
    pub fn has_remote_broker(&self) -> bool {
        self.remote
    }

    fn shard(&self, channel: &str) -> &Mutex<HashMap<String, Subscribers>> {
        &self.shards[(self.hasher.hash_one(channel) as usize) % self.shards.len()]
    }

    /// Whether `channel` goes through the remote broker (whose calls wait on the network: the
    /// session hands them to the driver as effects).
    #[must_use]
    pub fn is_remote(&self, channel: &str) -> bool {
        self.remote && channel != SYSTEM_CHANNEL
    }

    /// Subscribes `conn` to `channel`, which the memory broker orders: queues `subscribed`,
    /// then the publications missed since `since` (when history reaches back), and from then
    /// on every live publication.
    ///
    /// # Errors
    /// [`BrokerError::Remote`] for a channel of the remote broker.
    pub fn subscribe(
        &self,
        conn: ConnId,
        outbox: &Arc<Outbox>,
        channel: &str,
        since: Option<&StreamPosition>,
        now: Now,
    ) -> Result<Subscribed, BrokerError> {
        if self.is_remote(channel) {
            return Err(BrokerError::Remote);
        }
        let mut shard = lock(self.shard(channel));
        let replay = self.local.replay(channel, since, now.mono)?;
        let subscribed = subscribed_payload(channel, &replay);
        let frame = Envelope::from_payload(&subscribed)?.stamped(&self.ids, now.unix_ms);
        outbox.push(Text::from(encode(&frame)), now.mono);
        for publication in &replay.publications {
            outbox.push(publication.text.clone(), now.mono);
        }
        self.insert(&mut shard, conn, outbox, channel, replay.offset);
        Ok(subscribed)
    }

    /// First step of [`Hub::subscribe`] through the remote broker: registers `conn` as pending,
    /// so that what is delivered while the driver asks the broker is kept for it. Returns
    /// whether the driver must also watch the channel (the broker counts one watch per local
    /// subscriber; a connection subscribing again keeps its count).
    ///
    /// No broker call holds a hub lock (they wait on the network): the driver calls the broker
    /// between this and [`Hub::finish_remote_subscribe`] or [`Hub::abort_remote_subscribe`].
    pub fn begin_remote_subscribe(&self, conn: ConnId, channel: &str) -> bool {
        let mut shard = lock(self.shard(channel));
        let subscribers = self.entry(&mut shard, channel);
        subscribers.pending.insert(conn, Vec::new());
        let counted = subscribers.conns.remove(&conn);
        !counted
    }

    /// Last step of a remote subscription: queues `subscribed`, the broker's `replay`, then
    /// what was delivered meanwhile (after the replay's offsets, without duplicates).
    ///
    /// # Errors
    /// [`BrokerError::Protocol`] when the `subscribed` frame cannot be built (a bad name).
    pub fn finish_remote_subscribe(
        &self,
        conn: ConnId,
        outbox: &Arc<Outbox>,
        channel: &str,
        replay: &Replay,
        now: Now,
    ) -> Result<Subscribed, BrokerError> {
        let subscribed = subscribed_payload(channel, replay);
        let frame = Envelope::from_payload(&subscribed)?.stamped(&self.ids, now.unix_ms);
        let mut shard = lock(self.shard(channel));
        let subscribers = self.entry(&mut shard, channel);
        let buffered = subscribers.pending.remove(&conn).unwrap_or_default();
        outbox.push(Text::from(encode(&frame)), now.mono);
        let mut after = replay.offset;
        for publication in &replay.publications {
            outbox.push(publication.text.clone(), now.mono);
        }
        for (offset, text) in buffered {
            if offset > after {
                outbox.push(text, now.mono);
                after = offset;
            }
        }
        subscribers.set_epoch(&replay.epoch);
        subscribers.conns.insert(conn, outbox, after);
        if let Some(held) = subscribers.held.as_mut() {
            held.remove(&conn);
        }
        Ok(subscribed)
    }

    /// A remote subscription failed (the broker did not answer): `conn` is not subscribed.
    /// Returns whether the driver must unwatch the channel (the watch had been counted).
    pub fn abort_remote_subscribe(&self, conn: ConnId, channel: &str, watched: bool) -> bool {
        let mut shard = lock(self.shard(channel));
        if let Some(subscribers) = shard.get_mut(channel) {
            subscribers.pending.remove(&conn);
            if subscribers.conns.is_empty() && subscribers.pending.is_empty() {
                shard.remove(channel);
                self.channels.fetch_sub(1, Ordering::Relaxed);
            }
        }
        watched
    }

    /// Subscribes `conn` without a `subscribed` frame (the automatic `system` and `user:`
    /// channels, and the study session the connection joins). Returns whether the driver must
    /// watch the channel on the remote broker (a remote channel `conn` was not on yet).
    pub fn subscribe_silently(&self, conn: ConnId, outbox: &Arc<Outbox>, channel: &str) -> bool {
        let mut shard = lock(self.shard(channel));
        let fresh = !shard
            .get(channel)
            .is_some_and(|s| s.conns.contains_key(&conn));
        if fresh {
            self.insert(&mut shard, conn, outbox, channel, UNKNOWN);
        }
        fresh && self.is_remote(channel)
    }

    /// The channel's entry, created (and counted) when absent.
    fn entry<'a>(
        &self,
        shard: &'a mut HashMap<String, Subscribers>,
        channel: &str,
    ) -> &'a mut Subscribers {
        shard.entry(channel.to_owned()).or_insert_with(|| {
            self.channels.fetch_add(1, Ordering::Relaxed);
            Subscribers::new(self.is_remote(channel))
        })
    }

    fn insert(
        &self,
        shard: &mut HashMap<String, Subscribers>,
        conn: ConnId,
        outbox: &Arc<Outbox>,
        channel: &str,
        after: u64,
    ) {
        self.entry(shard, channel).conns.insert(conn, outbox, after);
    }

    /// Removes `conn` from `channel`; `false` when it was not subscribed. When it was and the
    /// channel is remote, the driver must unwatch it once (one unwatch per watch).
    pub fn unsubscribe(&self, conn: ConnId, channel: &str) -> bool {
        let mut shard = lock(self.shard(channel));
        let Some(subscribers) = shard.get_mut(channel) else {
            return false;
        };
        let removed = subscribers.conns.remove(&conn);
        if let Some(held) = subscribers.held.as_mut() {
            held.remove(&conn);
        }
        if subscribers.conns.is_empty() && subscribers.pending.is_empty() {
            shard.remove(channel);
            self.channels.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    /// Whether `conn` is subscribed to `channel`.
    #[must_use]
    pub fn is_subscribed(&self, conn: ConnId, channel: &str) -> bool {
        lock(self.shard(channel))
            .get(channel)
            .is_some_and(|s| s.conns.contains_key(&conn))
    }

    /// Publishes `envelope` on `channel`, which the memory broker orders: the next offset,
    /// encoded once, queued to every subscriber with its conflation key (computed once, here).
    /// Returns the offset.
    ///
    /// # Errors
    /// [`BrokerError::Remote`] for a channel of the remote broker (the driver appends it
    /// there, and it comes back through [`Hub::deliver`]); [`BrokerError::Protocol`] for a
    /// bad channel name.
    pub fn publish(&self, channel: &str, envelope: Envelope, now: Now) -> Result<u64, BrokerError> {
        if self.is_remote(channel) {
            return Err(BrokerError::Remote);
        }
        let key = self.conflation.key(channel, &envelope);
        let shard = lock(self.shard(channel));
        let publication = self.local.append(channel, envelope, now.mono)?;
        if let Some(subscribers) = shard.get(channel) {
            subscribers.conns.for_each_outbox(|outbox| {
                outbox.push_keyed(publication.text.clone(), key.as_ref(), now.mono);
            });
        }
        Ok(publication.offset)
    }

    /// Queues a publication a remote broker received to the channel's local subscribers that
    /// lack it, each in offset order: a subscriber that missed the publications before it (the
    /// broker's link was down) gets it held, and `true` says so — the driver then replays the
    /// channel from [`Hub::resync_positions`] and delivers what was missed, which releases
    /// what was held (or [`Hub::skip_gaps`] when history no longer has it).
    pub fn deliver(&self, delivery: &Delivery, now: Instant) -> bool {
        // Decoded (once per delivery, outside the lock) only on a channel that may conflate.
        let key = self
            .conflation
            .key_of_text(&delivery.channel, delivery.text.as_str());
        let mut shard = lock(self.shard(&delivery.channel));
        let Some(subscribers) = shard.get_mut(&delivery.channel) else {
            return false;
        };
        subscribers.set_epoch(&delivery.epoch);
        let Subscribers {
            conns,
            pending,
            held,
            ..
        } = subscribers;
        let mut gap = false;
        match conns {
            Members::Remote(conns) => {
                for (conn, (outbox, after)) in conns.iter_mut() {
                    let publication = (delivery.offset, &delivery.text, key.as_ref());
                    gap |= offer(*conn, (outbox, after), held, publication, now);
                }
            }
            // A channel this node orders itself (not one the remote broker carries): queued
            // as it comes.
            Members::Local(_) => conns.for_each_outbox(|outbox| {
                outbox.push_keyed(delivery.text.clone(), key.as_ref(), now);
            }),
        }
        for kept in pending.values_mut() {
            kept.push((delivery.offset, delivery.text.clone()));
        }
        gap
    }

    /// History no longer has what `channel`'s held subscribers missed: they get what was
    /// held, in order, after the gap.
    pub fn skip_gaps(&self, channel: &str, now: Instant) {
        let mut shard = lock(self.shard(channel));
        let Some(subscribers) = shard.get_mut(channel) else {
            return;
        };
        let Subscribers { conns, held, .. } = subscribers;
        let Some(conns) = conns.positions_mut() else {
            return;
        };
        for (conn, (outbox, after)) in conns.iter_mut() {
            release_held(*conn, (outbox, after), held, now, true);
        }
    }

    /// After the remote broker's link was down: the position up to which each remote
    /// channel's subscribers have their publications. The driver asks the broker for what
    /// followed and hands it to [`Hub::deliver`] (in offset order, without duplicates); a gap
    /// history no longer holds is the subscribers' next resume's `recovered: false`.
    #[must_use]
    pub fn resync_positions(&self) -> Vec<(String, StreamPosition)> {
        let mut positions: Vec<(String, StreamPosition)> = self
            .shards
            .iter()
            .flat_map(|shard| {
                lock(shard)
                    .iter()
                    .filter_map(|(channel, s)| Some((channel.clone(), s.resync_position()?)))
                    .collect::<Vec<_>>()
            })
            .collect();
        positions.sort_by(|a, b| a.0.cmp(&b.0));
        positions
    }

    /// [`Hub::resync_positions`] of one channel (a delivery found a gap in it).
    #[must_use]
    pub fn resync_position(&self, channel: &str) -> Option<StreamPosition> {
        lock(self.shard(channel)).get(channel)?.resync_position()
    }

    /// The channels with local subscribers.
    #[must_use]
    pub fn local_channels(&self) -> Vec<String> {
        let mut channels: Vec<String> = self
            .shards
            .iter()
            .flat_map(|shard| lock(shard).keys().cloned().collect::<Vec<_>>())
            .collect();
        channels.sort();
        channels
    }

    /// Queues `text` to every subscriber of `channel` without giving it an offset (frames that
    /// are not part of the channel's history).
    pub fn broadcast_raw(&self, channel: &str, text: &Text, now: Instant) -> usize {
        let shard = lock(self.shard(channel));
        shard.get(channel).map_or(0, |subscribers| {
            subscribers.conns.for_each_outbox(|outbox| {
                outbox.push(text.clone(), now);
            });
            subscribers.conns.len()
        })
    }

    /// Number of channels with at least one local subscriber.
    #[must_use]
    pub fn channel_count(&self) -> usize {
        self.channels.load(Ordering::Relaxed)
    }

    /// Lets the memory broker forget expired channels that have no local subscriber.
    pub fn sweep(&self, now: Instant) {
        let keep = |channel: &str| lock(self.shard(channel)).contains_key(channel);
        self.local.sweep(now, &keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn hub() -> Hub {
        Hub::new(
            MemoryBroker::new(100, Duration::from_secs(300), 1),
            false,
            Arc::new(MessageIdGenerator::with_node(1)),
            4,
        )
    }

    fn now() -> Now {
        Now {
            mono: crate::testing::instant(),
            unix_ms: 1_700_000_000_000,
        }
    }

    fn texts(outbox: &Outbox) -> Vec<String> {
        let mut frames = Vec::new();
        outbox.drain_into(&mut frames);
        frames
            .into_iter()
            .map(|f| f.text.as_str().to_owned())
            .collect()
    }

    fn offsets_of(frames: &[String]) -> Vec<u64> {
        frames
            .iter()
            .map(|t| cerebrum_protocol::decode(t).unwrap().offset().unwrap())
            .collect()
    }

    #[test]
    fn publication_bytes_are_shared_by_every_subscriber() {
        let hub = hub();
        let now = now();
        let a = Outbox::new(16);
        let b = Outbox::new(16);
        hub.subscribe_silently(1, &a, "c:1");
        hub.subscribe_silently(2, &b, "c:1");
        hub.publish("c:1", Envelope::from_value("x", &1).unwrap(), now)
            .unwrap();
        let (mut fa, mut fb) = (Vec::new(), Vec::new());
        a.drain_into(&mut fa);
        b.drain_into(&mut fb);
        assert_eq!(fa[0].text.as_str().as_ptr(), fb[0].text.as_str().as_ptr());
        assert_eq!(hub.channel_count(), 1);
        assert!(hub.unsubscribe(1, "c:1"));
        assert!(hub.unsubscribe(2, "c:1"));
        assert!(!hub.unsubscribe(2, "c:1"));
        assert_eq!(hub.channel_count(), 0);
    }

    #[test]
    fn resume_queues_subscribed_then_missed_then_live() {
        let hub = hub();
        let now = now();
        for i in 0..5 {
            hub.publish("c", Envelope::from_value("x", &i).unwrap(), now)
                .unwrap();
        }
        let first = Outbox::new(64);
        let sub = hub.subscribe(1, &first, "c", None, now).unwrap();
        assert_eq!((sub.offset, sub.recovered, sub.missed), (5, false, 0));
        let resumed = Outbox::new(64);
        let since = StreamPosition {
            offset: 2,
            epoch: sub.epoch.clone(),
        };
        let sub = hub.subscribe(2, &resumed, "c", Some(&since), now).unwrap();
        assert_eq!((sub.recovered, sub.missed), (true, 3));
        hub.publish("c", Envelope::from_value("x", &5).unwrap(), now)
            .unwrap();
        let frames = texts(&resumed);
        assert!(frames[0].contains(r#""type":"subscribed""#));
        let offsets = offsets_of(&frames[1..]);
        assert_eq!(offsets, vec![3, 4, 5, 6]);
    }

    #[test]
    fn a_full_queue_marks_the_subscriber_slow_without_stalling_others() {
        let hub = hub();
        let now = now();
        let slow = Outbox::new(4);
        let fast = Outbox::new(1024);
        hub.subscribe_silently(1, &slow, "c");
        hub.subscribe_silently(2, &fast, "c");
        for i in 0..10 {
            hub.publish("c", Envelope::from_value("x", &i).unwrap(), now)
                .unwrap();
        }
        assert!(slow.is_slow());
        assert_eq!(fast.len(), 10);
        assert!(!fast.is_slow());
    }

    fn metrics(user: &str, n: u64) -> Envelope {
        Envelope::from_value(
            "study_metrics_update",
            &serde_json::json!({"userId": user, "studyHours": n, "progress": 0, "sessionDuration": 0, "streak": 0}),
        )
        .unwrap()
    }

    #[test]
    fn a_slow_subscriber_keeps_the_latest_metrics_and_every_other_frame_while_a_fast_one_gets_all()
    {
        let hub = hub();
        let now = now();
        let slow = Outbox::new(16);
        slow.set_conflation_threshold(2);
        let fast = Outbox::new(1024);
        fast.set_conflation_threshold(256);
        for (conn, outbox) in [(1, &slow), (2, &fast)] {
            hub.subscribe_silently(conn, outbox, "user:a");
            hub.subscribe_silently(conn, outbox, "chat:1");
        }
        for i in 0..100 {
            hub.publish("user:a", metrics("a", i), now).unwrap();
            if i % 25 == 0 {
                hub.publish("chat:1", Envelope::from_value("x", &i).unwrap(), now)
                    .unwrap();
                // Another type on the user's channel is never conflated.
                hub.publish("user:a", Envelope::from_value("note", &i).unwrap(), now)
                    .unwrap();
            }
        }
        assert!(!slow.is_slow());
        assert_eq!(fast.len(), 108);
        let frames = texts(&slow);
        let metrics: Vec<&String> = frames
            .iter()
            .filter(|t| t.contains("study_metrics_update"))
            .collect();
        assert_eq!(metrics.len(), 1);
        assert!(metrics[0].contains(r#""studyHours":99"#));
        assert_eq!(
            frames
                .iter()
                .filter(|t| t.contains(r#""type":"x""#))
                .count(),
            4
        );
        assert_eq!(frames.iter().filter(|t| t.contains("note")).count(), 4);
        // Each channel's offsets still increase.
        let user: Vec<String> = frames
            .iter()
            .filter(|t| t.contains("user:a"))
            .cloned()
            .collect();
        let offsets = offsets_of(&user);
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
        assert_eq!(offsets.last(), Some(&104));
    }

    #[test]
    fn a_resume_after_conflated_offsets_replays_what_the_client_lacks() {
        let hub = hub().with_conflation(ConflationRules::new(["m=id"
            .parse::<crate::conflate::ConflateRule>()
            .unwrap()]));
        let now = now();
        let slow = Outbox::new(8);
        slow.set_conflation_threshold(2);
        hub.subscribe_silently(1, &slow, "m:1");
        for (n, id) in ["a", "b", "a", "b", "a"].into_iter().enumerate() {
            let payload = serde_json::json!({"id": id, "n": n + 1});
            hub.publish("m:1", Envelope::from_value("tick", &payload).unwrap(), now)
                .unwrap();
        }
        let frames = texts(&slow);
        // Offsets 1 (a), 2 (b) and 3 (a) were replaced by newer frames of their keys.
        assert_eq!(offsets_of(&frames), vec![4, 5]);
        // The client read offset 4 only, then lost the connection: a resume from 4 replays 5
        // from history, `recovered` (nothing the client lacks was skipped).
        let epoch = hub.memory().replay("m:1", None, now.mono).unwrap().epoch;
        let resumed = Outbox::new(64);
        let since = StreamPosition {
            offset: 4,
            epoch: epoch.to_string(),
        };
        let sub = hub
            .subscribe(2, &resumed, "m:1", Some(&since), now)
            .unwrap();
        assert_eq!((sub.recovered, sub.missed, sub.offset), (true, 1, 5));
        assert_eq!(offsets_of(&texts(&resumed)[1..]), vec![5]);
    }

    #[test]
    fn remote_deliveries_are_keyed_once_and_conflated() {
        let hub = Hub::new(
            MemoryBroker::new(16, Duration::from_secs(300), 1),
            true,
            Arc::new(MessageIdGenerator::with_node(1)),
            4,
        );
        let remote = MemoryBroker::new(100, Duration::from_secs(300), 2);
        let now = now();
        let slow = Outbox::new(4);
        slow.set_conflation_threshold(1);
        assert!(hub.subscribe_silently(1, &slow, "user:a"));
        for i in 0..50 {
            let publication = remote.append("user:a", metrics("a", i), now.mono).unwrap();
            let epoch = remote.replay("user:a", None, now.mono).unwrap().epoch;
            hub.deliver(
                &Delivery {
                    channel: "user:a".into(),
                    epoch,
                    offset: publication.offset,
                    text: publication.text,
                },
                now.mono,
            );
        }
        assert!(!slow.is_slow());
        assert_eq!(offsets_of(&texts(&slow)), vec![50]);
    }

    #[test]
    fn a_remote_subscription_gets_replay_then_what_arrived_meanwhile_once_each_in_order() {
        // The remote broker is played by a second memory broker; deliveries reach the hub
        // through `deliver`, as the driver's pub/sub link hands them in.
        let remote = MemoryBroker::new(100, Duration::from_secs(300), 2);
        let hub = Hub::new(
            MemoryBroker::new(16, Duration::from_secs(300), 1),
            true,
            Arc::new(MessageIdGenerator::with_node(1)),
            4,
        );
        let now = Now {
            mono: crate::testing::instant(),
            unix_ms: 1_700_000_000_000,
        };
        let publish = |n: u64| {
            let publication = remote
                .append("c", Envelope::from_value("x", &n).unwrap(), now.mono)
                .unwrap();
            let epoch = remote.replay("c", None, now.mono).unwrap().epoch;
            hub.deliver(
                &Delivery {
                    channel: "c".into(),
                    epoch,
                    offset: publication.offset,
                    text: publication.text,
                },
                now.mono,
            );
        };
        let early = Outbox::new(64);
        assert!(hub.begin_remote_subscribe(1, "c"));
        let replay = remote.replay("c", None, now.mono).unwrap();
        hub.finish_remote_subscribe(1, &early, "c", &replay, now)
            .unwrap();
        for i in 0..3 {
            publish(i);
        }
        let epoch = remote
            .replay("c", None, now.mono)
            .unwrap()
            .epoch
            .to_string();
        let late = Outbox::new(64);
        assert!(hub.begin_remote_subscribe(2, "c"));
        let since = StreamPosition { offset: 1, epoch };
        let replay = remote.replay("c", Some(&since), now.mono).unwrap();
        // Published (and delivered) after the replay was read: must come after it.
        publish(3);
        let sub = hub
            .finish_remote_subscribe(2, &late, "c", &replay, now)
            .unwrap();
        assert_eq!((sub.recovered, sub.missed, sub.offset), (true, 2, 3));
        publish(4);
        let frames = texts(&late);
        assert!(frames[0].contains(r#""type":"subscribed""#));
        assert_eq!(offsets_of(&frames[1..]), vec![2, 3, 4, 5]);
        assert_eq!(offsets_of(&texts(&early)[1..]), vec![1, 2, 3, 4, 5]);
        // Subscribing again keeps its one watch; when that replay fails, it is given back.
        assert!(!hub.begin_remote_subscribe(2, "c"));
        assert!(hub.abort_remote_subscribe(2, "c", true));
        assert!(hub.unsubscribe(1, "c"));
        assert!(!hub.unsubscribe(2, "c"));
        assert_eq!(hub.channel_count(), 0);
        let refused = hub.publish("c", Envelope::from_value("x", &9).unwrap(), now);
        assert!(matches!(refused, Err(BrokerError::Remote)));
    }
}
