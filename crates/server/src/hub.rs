//! The channel hub: local subscribers of each channel, sharded by channel name.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;
use cerebrum_protocol::{
    Envelope, MessageIdGenerator, SYSTEM_CHANNEL, StreamPosition, Subscribed, encode,
};

use crate::broker::{Broker, BrokerError, Delivery, MemoryBroker};
use crate::clock::Now;
use crate::outbox::{Outbox, lock};

/// The `subscribed` payload of a replay.
fn subscribed_payload(channel: &str, replay: &crate::broker::Replay) -> Subscribed {
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
#[derive(Default)]
struct Subscribers {
    /// Each subscriber's outbox, and the offset up to which it already has the publications
    /// (a remote broker may deliver a publication the subscriber's replay already held).
    conns: HashMap<ConnId, (Arc<Outbox>, u64)>,
    /// The epoch those offsets belong to (remote brokers only).
    epoch: Option<Arc<str>>,
    /// Connections subscribing through a remote broker, between their registration and their
    /// replay: what is delivered meanwhile is kept for them (offset, frame).
    pending: HashMap<ConnId, Vec<(u64, Utf8Bytes)>>,
}

impl Subscribers {
    /// A new epoch: offsets of the old one say nothing any more.
    fn set_epoch(&mut self, epoch: &Arc<str>) {
        if self.epoch.as_deref() != Some(&**epoch) {
            if self.epoch.is_some() {
                for (_, after) in self.conns.values_mut() {
                    *after = 0;
                }
            }
            self.epoch = Some(epoch.clone());
        }
    }
}

/// The hub: who is subscribed to what, on this server process.
///
/// A publication takes the lock of its channel's shard, gets its offset from the [`Broker`],
/// and queues the same encoded bytes to every subscriber's [`Outbox`]; a subscription with
/// `since` takes the same lock, so the `subscribed` frame, the replay and the live
/// publications reach the subscriber in offset order, without gap or duplicate.
///
/// With a remote broker ([`Broker::is_remote`], Redis) a publication goes to the broker only
/// and comes back, in offset order, through [`Hub::deliver`] on every node; the hub then
/// holds one broker subscription per channel with local subscribers. The `system` channel
/// stays local to each node (its status is the node's own).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use cerebrum_protocol::{Envelope, MessageIdGenerator};
/// use cerebrum_server::{broker::MemoryBroker, clock::Now, hub::Hub, outbox::Outbox};
///
/// let hub = Hub::new(Arc::new(MemoryBroker::new(100, Duration::from_secs(300))), Arc::new(MessageIdGenerator::new()));
/// let outbox = Outbox::new(1024);
/// let now = Now::current();
/// hub.subscribe(1, &outbox, "chat:1", None, now)?;
/// let offset = hub.publish("chat:1", Envelope::from_value("chat.msg", &"hi")?, now)?;
/// assert_eq!(offset, 1);
/// assert_eq!(outbox.len(), 2); // `subscribed`, then the publication
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Hub {
    shards: Box<[Mutex<HashMap<String, Subscribers>>]>,
    hasher: std::collections::hash_map::RandomState,
    broker: Arc<dyn Broker>,
    /// The node-local channels' broker when `broker` is remote.
    local: MemoryBroker,
    ids: Arc<MessageIdGenerator>,
    channels: AtomicUsize,
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
    /// A hub over `broker`, stamping its frames with ids from `ids`.
    #[must_use]
    pub fn new(broker: Arc<dyn Broker>, ids: Arc<MessageIdGenerator>) -> Self {
        let shards = std::thread::available_parallelism().map_or(4, |n| n.get() * 8);
        Self {
            shards: (0..shards).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            broker,
            local: MemoryBroker::new(16, std::time::Duration::from_secs(300)),
            ids,
            channels: AtomicUsize::new(0),
        }
    }

    /// The broker behind the hub.
    #[must_use]
    pub fn broker(&self) -> &Arc<dyn Broker> {
        &self.broker
    }

    fn shard(&self, channel: &str) -> &Mutex<HashMap<String, Subscribers>> {
        &self.shards[(self.hasher.hash_one(channel) as usize) % self.shards.len()]
    }

    /// Whether `channel` goes through a remote broker (whose calls wait on the network: async
    /// callers use [`Hub::publish_async`]).
    #[must_use]
    pub fn is_remote(&self, channel: &str) -> bool {
        channel != SYSTEM_CHANNEL && self.broker.is_remote()
    }

    /// The broker that orders `channel`.
    fn broker_for(&self, channel: &str) -> &dyn Broker {
        if self.broker.is_remote() && channel == SYSTEM_CHANNEL {
            &self.local
        } else {
            self.broker.as_ref()
        }
    }

    /// Subscribes `conn` to `channel`: queues `subscribed`, then the publications missed since
    /// `since` (when history reaches back), and from then on every live publication.
    pub fn subscribe(
        &self,
        conn: ConnId,
        outbox: &Arc<Outbox>,
        channel: &str,
        since: Option<&StreamPosition>,
        now: Now,
    ) -> Result<Subscribed, BrokerError> {
        if self.is_remote(channel) {
            return self.subscribe_remote(conn, outbox, channel, since, now);
        }
        let mut shard = lock(self.shard(channel));
        let replay = self.broker_for(channel).replay(channel, since, now.mono)?;
        let subscribed = subscribed_payload(channel, &replay);
        let frame = Envelope::from_payload(&subscribed)?.stamped(&self.ids, now.unix_ms);
        outbox.push(Utf8Bytes::from(encode(&frame)), now.mono);
        for publication in &replay.publications {
            outbox.push(publication.text.clone(), now.mono);
        }
        self.insert(&mut shard, conn, outbox, channel, replay.offset);
        Ok(subscribed)
    }

    /// [`Hub::subscribe`] through a remote broker. No broker call holds a hub lock (they wait
    /// on the network); instead the connection is registered as pending first, so that what is
    /// delivered while the broker subscribes and replays is kept and queued after the replay,
    /// without gap or duplicate.
    fn subscribe_remote(
        &self,
        conn: ConnId,
        outbox: &Arc<Outbox>,
        channel: &str,
        since: Option<&StreamPosition>,
        now: Now,
    ) -> Result<Subscribed, BrokerError> {
        // A connection subscribing again starts over: its old place becomes pending (it keeps
        // its share of the broker's subscription count).
        let mut counted = {
            let mut shard = lock(self.shard(channel));
            let subscribers = self.entry(&mut shard, channel);
            subscribers.pending.insert(conn, Vec::new());
            subscribers.conns.remove(&conn).is_some()
        };
        let prepared = (|| {
            if !counted {
                self.broker.watch(channel)?;
                counted = true;
            }
            let replay = self.broker.replay(channel, since, now.mono)?;
            let subscribed = subscribed_payload(channel, &replay);
            let frame = Envelope::from_payload(&subscribed)?.stamped(&self.ids, now.unix_ms);
            Ok::<_, BrokerError>((replay, subscribed, frame))
        })();
        let mut shard = lock(self.shard(channel));
        let subscribers = self.entry(&mut shard, channel);
        let buffered = subscribers.pending.remove(&conn).unwrap_or_default();
        let (replay, subscribed, frame) = match prepared {
            Ok(prepared) => prepared,
            Err(err) => {
                if subscribers.conns.is_empty() && subscribers.pending.is_empty() {
                    shard.remove(channel);
                    self.channels.fetch_sub(1, Ordering::Relaxed);
                }
                drop(shard);
                if counted {
                    self.broker.unwatch(channel);
                }
                return Err(err);
            }
        };
        outbox.push(Utf8Bytes::from(encode(&frame)), now.mono);
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
        subscribers.conns.insert(conn, (outbox.clone(), after));
        Ok(subscribed)
    }

    /// Subscribes `conn` without a `subscribed` frame (the automatic `system` and `user:`
    /// channels, and the study session the connection joins).
    pub fn subscribe_silently(
        &self,
        conn: ConnId,
        outbox: &Arc<Outbox>,
        channel: &str,
    ) -> Result<(), BrokerError> {
        if self.is_remote(channel) && !self.is_subscribed(conn, channel) {
            // Outside the hub's lock: the broker waits on the network.
            self.broker.watch(channel)?;
        }
        let mut shard = lock(self.shard(channel));
        self.insert(&mut shard, conn, outbox, channel, 0);
        Ok(())
    }

    /// The channel's entry, created (and counted) when absent.
    fn entry<'a>(
        &self,
        shard: &'a mut HashMap<String, Subscribers>,
        channel: &str,
    ) -> &'a mut Subscribers {
        shard.entry(channel.to_owned()).or_insert_with(|| {
            self.channels.fetch_add(1, Ordering::Relaxed);
            Subscribers::default()
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
        self.entry(shard, channel)
            .conns
            .insert(conn, (outbox.clone(), after));
    }

    /// Removes `conn` from `channel`; `false` when it was not subscribed.
    pub fn unsubscribe(&self, conn: ConnId, channel: &str) -> bool {
        let mut shard = lock(self.shard(channel));
        let Some(subscribers) = shard.get_mut(channel) else {
            return false;
        };
        let removed = subscribers.conns.remove(&conn).is_some();
        if subscribers.conns.is_empty() && subscribers.pending.is_empty() {
            shard.remove(channel);
            self.channels.fetch_sub(1, Ordering::Relaxed);
        }
        if removed && self.is_remote(channel) {
            // One unwatch per watch: the broker counts its channels' local subscribers.
            self.broker.unwatch(channel);
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

    /// Publishes `envelope` on `channel`: the next offset, encoded once, queued to every
    /// subscriber. Returns the offset.
    pub fn publish(&self, channel: &str, envelope: Envelope, now: Now) -> Result<u64, BrokerError> {
        if self.is_remote(channel) {
            // Every node, this one included, gets it back through `deliver`, in offset order.
            return Ok(self.broker.append(channel, envelope, now.mono)?.offset);
        }
        let shard = lock(self.shard(channel));
        let publication = self
            .broker_for(channel)
            .append(channel, envelope, now.mono)?;
        if let Some(subscribers) = shard.get(channel) {
            for (outbox, _) in subscribers.conns.values() {
                outbox.push(publication.text.clone(), now.mono);
            }
        }
        Ok(publication.offset)
    }

    /// [`Hub::publish`] without blocking the caller's thread on a remote broker's network round
    /// trip.
    pub async fn publish_async(
        &self,
        channel: &str,
        envelope: Envelope,
        now: Now,
    ) -> Result<u64, BrokerError> {
        if self.is_remote(channel) {
            let publication = self
                .broker
                .append_async(channel, envelope, now.mono)
                .await?;
            return Ok(publication.offset);
        }
        self.publish(channel, envelope, now)
    }

    /// Queues a publication a remote broker received to the channel's local subscribers that
    /// do not have it yet.
    pub fn deliver(&self, delivery: &Delivery) {
        let now = Instant::now();
        let mut shard = lock(self.shard(&delivery.channel));
        let Some(subscribers) = shard.get_mut(&delivery.channel) else {
            return;
        };
        subscribers.set_epoch(&delivery.epoch);
        for (outbox, after) in subscribers.conns.values_mut() {
            if delivery.offset > *after {
                outbox.push(delivery.text.clone(), now);
                *after = delivery.offset;
            }
        }
        for kept in subscribers.pending.values_mut() {
            kept.push((delivery.offset, delivery.text.clone()));
        }
    }

    /// After the remote broker's link was down: fetches, from history, the publications each
    /// remote channel's subscribers missed meanwhile and queues them (in offset order, without
    /// duplicates). A gap history no longer holds is logged; the subscribers' next resume
    /// reports it (`recovered: false`).
    pub fn resync(&self, now: Instant) {
        let mut positions = Vec::new();
        for shard in &self.shards {
            for (channel, subscribers) in lock(shard).iter() {
                if let Some(epoch) = &subscribers.epoch {
                    let last = subscribers.conns.values().map(|(_, after)| *after).max();
                    positions.push((channel.clone(), epoch.to_string(), last.unwrap_or(0)));
                }
            }
        }
        for (channel, epoch, offset) in positions {
            let since = StreamPosition { offset, epoch };
            match self.broker.replay(&channel, Some(&since), now) {
                Ok(replay) if replay.recovered => {
                    for publication in replay.publications {
                        self.deliver(&Delivery {
                            channel: channel.clone(),
                            epoch: replay.epoch.clone(),
                            offset: publication.offset,
                            text: publication.text,
                        });
                    }
                }
                Ok(replay) => tracing::warn!(
                    channel,
                    from = since.offset,
                    to = replay.offset,
                    "publications missed while the broker link was down are gone from history"
                ),
                Err(err) => tracing::warn!(%err, channel, "could not catch up a channel"),
            }
        }
    }

    /// The channels with local subscribers.
    #[must_use]
    pub fn local_channels(&self) -> Vec<String> {
        self.shards
            .iter()
            .flat_map(|shard| lock(shard).keys().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Queues `text` to every subscriber of `channel` without giving it an offset (frames that
    /// are not part of the channel's history).
    pub fn broadcast_raw(&self, channel: &str, text: &Utf8Bytes, now: Instant) -> usize {
        let shard = lock(self.shard(channel));
        shard.get(channel).map_or(0, |subscribers| {
            for (outbox, _) in subscribers.conns.values() {
                outbox.push(text.clone(), now);
            }
            subscribers.conns.len()
        })
    }

    /// Number of channels with at least one local subscriber.
    #[must_use]
    pub fn channel_count(&self) -> usize {
        self.channels.load(Ordering::Relaxed)
    }

    /// Lets the broker forget expired channels that have no local subscriber.
    pub fn sweep(&self, now: Instant) {
        let keep = |channel: &str| lock(self.shard(channel)).contains_key(channel);
        self.broker.sweep(now, &keep);
        self.local.sweep(now, &keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::MemoryBroker;
    use std::time::Duration;

    fn hub() -> Hub {
        Hub::new(
            Arc::new(MemoryBroker::new(100, Duration::from_secs(300))),
            Arc::new(MessageIdGenerator::with_node(1)),
        )
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
        let now = Now::current();
        let a = Outbox::new(16);
        let b = Outbox::new(16);
        hub.subscribe_silently(1, &a, "c:1").unwrap();
        hub.subscribe_silently(2, &b, "c:1").unwrap();
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
        let now = Now::current();
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
        let now = Now::current();
        let slow = Outbox::new(4);
        let fast = Outbox::new(1024);
        hub.subscribe_silently(1, &slow, "c").unwrap();
        hub.subscribe_silently(2, &fast, "c").unwrap();
        for i in 0..10 {
            hub.publish("c", Envelope::from_value("x", &i).unwrap(), now)
                .unwrap();
        }
        assert!(slow.is_slow());
        assert_eq!(fast.len(), 10);
        assert!(!fast.is_slow());
    }

    /// A remote broker over a memory broker: publications come back only through `deliver`,
    /// and a publication "arrives" while a subscriber's replay is read.
    struct Remote {
        inner: MemoryBroker,
        hub: std::sync::OnceLock<std::sync::Weak<Hub>>,
        watches: std::sync::atomic::AtomicI64,
        during_replay: Mutex<Option<Envelope>>,
    }

    impl Broker for Remote {
        fn append(
            &self,
            channel: &str,
            envelope: Envelope,
            now: Instant,
        ) -> Result<crate::broker::Publication, BrokerError> {
            let publication = self.inner.append(channel, envelope, now)?;
            let epoch = self.inner.replay(channel, None, now)?.epoch;
            if let Some(hub) = self.hub.get().and_then(std::sync::Weak::upgrade) {
                hub.deliver(&Delivery {
                    channel: channel.to_owned(),
                    epoch,
                    offset: publication.offset,
                    text: publication.text.clone(),
                });
            }
            Ok(publication)
        }
        fn replay(
            &self,
            channel: &str,
            since: Option<&StreamPosition>,
            now: Instant,
        ) -> Result<crate::broker::Replay, BrokerError> {
            let replay = self.inner.replay(channel, since, now);
            // Published (and delivered) after the replay was read: must come after it.
            let late = lock(&self.during_replay).take();
            if let Some(envelope) = late {
                self.append(channel, envelope, now)?;
            }
            replay
        }
        fn presence_join(
            &self,
            _: &str,
            _: cerebrum_protocol::Participant,
        ) -> Result<(), BrokerError> {
            Ok(())
        }
        fn presence_leave(&self, _: &str, _: &str) -> Result<(), BrokerError> {
            Ok(())
        }
        fn presence(&self, _: &str) -> Result<Vec<cerebrum_protocol::Participant>, BrokerError> {
            Ok(Vec::new())
        }
        fn sweep(&self, _: Instant, _: &dyn Fn(&str) -> bool) {}
        fn is_healthy(&self) -> bool {
            true
        }
        fn is_remote(&self) -> bool {
            true
        }
        fn watch(&self, _: &str) -> Result<(), BrokerError> {
            self.watches.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        fn unwatch(&self, _: &str) {
            self.watches.fetch_sub(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_remote_subscription_gets_replay_then_what_arrived_meanwhile_once_each_in_order() {
        let remote = Arc::new(Remote {
            inner: MemoryBroker::new(100, Duration::from_secs(300)),
            hub: std::sync::OnceLock::new(),
            watches: std::sync::atomic::AtomicI64::new(0),
            during_replay: Mutex::new(None),
        });
        let hub = Arc::new(Hub::new(
            remote.clone(),
            Arc::new(MessageIdGenerator::with_node(1)),
        ));
        remote.hub.set(Arc::downgrade(&hub)).unwrap();
        let now = Now::current();
        let early = Outbox::new(64);
        hub.subscribe(1, &early, "c", None, now).unwrap();
        for i in 0..3 {
            hub.publish("c", Envelope::from_value("x", &i).unwrap(), now)
                .unwrap();
        }
        let epoch = hub
            .broker()
            .replay("c", None, now.mono)
            .unwrap()
            .epoch
            .to_string();
        *lock(&remote.during_replay) = Some(Envelope::from_value("x", &3).unwrap());
        let late = Outbox::new(64);
        let since = StreamPosition { offset: 1, epoch };
        let sub = hub.subscribe(2, &late, "c", Some(&since), now).unwrap();
        assert_eq!((sub.recovered, sub.missed, sub.offset), (true, 2, 3));
        hub.publish("c", Envelope::from_value("x", &4).unwrap(), now)
            .unwrap();
        let frames = texts(&late);
        assert!(frames[0].contains(r#""type":"subscribed""#));
        let offsets = offsets_of(&frames[1..]);
        assert_eq!(offsets, vec![2, 3, 4, 5]);
        let early_offsets = offsets_of(&texts(&early)[1..]);
        assert_eq!(early_offsets, vec![1, 2, 3, 4, 5]);
        // One watch per local subscriber, one unwatch per leave.
        assert_eq!(remote.watches.load(Ordering::Relaxed), 2);
        // Subscribing again keeps one count.
        hub.subscribe(2, &late, "c", None, now).unwrap();
        assert_eq!(remote.watches.load(Ordering::Relaxed), 2);
        assert!(hub.unsubscribe(1, "c"));
        assert!(hub.unsubscribe(2, "c"));
        assert_eq!(remote.watches.load(Ordering::Relaxed), 0);
        assert_eq!(hub.channel_count(), 0);
    }
}
