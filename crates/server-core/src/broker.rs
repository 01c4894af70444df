//! Channel offsets, epochs, bounded history and presence of one server process
//! ([`MemoryBroker`]), and the types a remote broker answers with ([`Publication`],
//! [`Replay`], [`Delivery`]).
//!
//! The [`crate::hub::Hub`] keeps the local subscribers and orders a channel's publications
//! with the memory broker under the channel's shard lock. With a remote broker (Redis, in the
//! driver) the session asks for the same operations as effects
//! ([`crate::session::Effect`]) and the driver feeds the answers back.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cerebrum_protocol::{Envelope, Participant, ProtocolError, StreamPosition, encode};

use crate::Text;
use crate::outbox::lock;

/// A publication: one envelope with its channel and offset, encoded **once**; the same bytes
/// are queued to every subscriber.
#[derive(Debug, Clone)]
pub struct Publication {
    /// The channel.
    pub channel: Arc<str>,
    /// Its position in the channel (1 for the first).
    pub offset: u64,
    /// The encoded frame.
    pub text: Text,
    /// When it was published.
    pub at: Instant,
}

/// What a subscriber resuming after `since` gets.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The channel's last offset now (0 before the first publication).
    pub offset: u64,
    /// The channel's epoch.
    pub epoch: Arc<str>,
    /// Whether `publications` holds everything after `since`.
    pub recovered: bool,
    /// The missed publications, in offset order.
    pub publications: Vec<Publication>,
}

/// A broker failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The envelope could not be given the channel (bad name).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The broker cannot be reached.
    #[error("broker unavailable")]
    Unavailable,
    /// The channel is ordered by the remote broker: the driver carries the call out.
    #[error("the channel is ordered by the remote broker")]
    Remote,
}

/// A remote broker's answer to a cluster-wide dedupe claim
/// ([`crate::session::Effect::Claim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claimed {
    /// The first claim of the id: process the message (then the claim is settled).
    First,
    /// The message took effect already (its claim was settled): acknowledge it again.
    Done,
    /// Another connection (maybe on another node) claimed it and has not settled it yet: the
    /// driver asks again until it is settled, or released, or its claim expires (the node that
    /// held it died).
    InProgress,
}

/// A publication a remote broker received for a channel with local subscribers.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The channel.
    pub channel: String,
    /// The channel's epoch when it was published.
    pub epoch: Arc<str>,
    /// Its offset in the channel.
    pub offset: u64,
    /// The encoded frame, shared by every local subscriber.
    pub text: Text,
}

#[derive(Debug)]
struct ChannelState {
    /// The channel's name, shared by its publications.
    name: Arc<str>,
    epoch: Arc<str>,
    last_offset: u64,
    history: VecDeque<Publication>,
    /// Last publication or subscription: a channel in use is never forgotten.
    touched: Instant,
}

#[derive(Debug, Default)]
struct Shard {
    channels: HashMap<Arc<str>, ChannelState>,
    presence: HashMap<String, Vec<Participant>>,
}

/// The in-memory broker of a single server process.
///
/// ```
/// use std::time::{Duration, Instant};
/// use cerebrum_protocol::Envelope;
/// use cerebrum_server_core::broker::MemoryBroker;
///
/// let broker = MemoryBroker::new(100, Duration::from_secs(300), 7);
/// let now = Instant::now();
/// let first = broker.append("chat:1", Envelope::from_value("chat.msg", &1)?, now)?;
/// let second = broker.append("chat:1", Envelope::from_value("chat.msg", &2)?, now)?;
/// assert_eq!((first.offset, second.offset), (1, 2));
/// assert!(second.text.as_str().contains(r#""offset":2"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MemoryBroker {
    shards: Box<[Mutex<Shard>]>,
    hasher: std::collections::hash_map::RandomState,
    history_size: usize,
    history_ttl: Duration,
    /// Bytes of history kept, all channels together.
    history_bytes: std::sync::atomic::AtomicUsize,
    /// Past this many bytes, the oldest channels' history is dropped first.
    history_budget: usize,
    /// Draws the epochs of new channels (seeded by the owner: a restarted server must not
    /// reuse an epoch, so the driver seeds it from the OS).
    rng: Mutex<fastrand::Rng>,
}

impl MemoryBroker {
    /// A broker keeping `history_size` publications per channel for `history_ttl`, drawing
    /// channel epochs from `seed`.
    #[must_use]
    pub fn new(history_size: usize, history_ttl: Duration, seed: u64) -> Self {
        Self {
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            shards: (0..16).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            history_size,
            history_ttl,
            history_bytes: std::sync::atomic::AtomicUsize::new(0),
            history_budget: usize::MAX,
        }
    }

    /// Bounds the history of all channels together to `bytes` (PROTOCOL.md section 7: 256 MiB
    /// by default): past it, the history of the channels whose oldest kept publication is the
    /// oldest is dropped first, down to nine tenths of the budget. Their resumes then answer
    /// `recovered:false`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use cerebrum_protocol::{Envelope, StreamPosition};
    /// use cerebrum_server_core::broker::MemoryBroker;
    ///
    /// let broker = MemoryBroker::new(100, Duration::from_secs(300), 1).with_history_budget(1_000);
    /// let t0 = Instant::now();
    /// let old = broker.append("chat:old", Envelope::from_value("m", &"x".repeat(400))?, t0)?;
    /// broker.append("chat:new", Envelope::from_value("m", &"y".repeat(400))?, t0 + Duration::from_secs(1))?;
    /// broker.append("chat:new", Envelope::from_value("m", &"z".repeat(400))?, t0 + Duration::from_secs(2))?;
    /// assert!(broker.history_bytes() <= 1_000);
    /// let since = StreamPosition { offset: 0, epoch: broker.replay("chat:old", None, t0)?.epoch.to_string() };
    /// assert!(!broker.replay("chat:old", Some(&since), t0)?.recovered);
    /// # let _ = old;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_history_budget(mut self, bytes: usize) -> Self {
        self.history_budget = bytes;
        self
    }

    /// Bytes of history kept now, all channels together.
    #[must_use]
    pub fn history_bytes(&self) -> usize {
        self.history_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn shard(&self, channel: &str) -> &Mutex<Shard> {
        let index = (self.hasher.hash_one(channel) as usize) % self.shards.len();
        &self.shards[index]
    }

    fn forget_bytes(&self, publication: &Publication) {
        self.history_bytes
            .fetch_sub(publication.text.len(), std::sync::atomic::Ordering::Relaxed);
    }

    fn prune(&self, state: &mut ChannelState, now: Instant) {
        while state.history.len() > self.history_size {
            if let Some(dropped) = state.history.pop_front() {
                self.forget_bytes(&dropped);
            }
        }
        self.prune_expired(state, now);
    }

    fn prune_expired(&self, state: &mut ChannelState, now: Instant) {
        while let Some(front) = state.history.front() {
            if now.saturating_duration_since(front.at) > self.history_ttl {
                if let Some(dropped) = state.history.pop_front() {
                    self.forget_bytes(&dropped);
                }
            } else {
                break;
            }
        }
    }

    /// Drops the oldest channels' history until the total is under nine tenths of the budget.
    /// Takes one shard lock at a time (never while the caller holds one).
    fn enforce_budget(&self) {
        if self.history_bytes() <= self.history_budget {
            return;
        }
        let target = self.history_budget / 10 * 9;
        let mut oldest: Vec<(Instant, usize, Arc<str>)> = Vec::new();
        for (index, shard) in self.shards.iter().enumerate() {
            let shard = lock(shard);
            oldest.extend(shard.channels.iter().filter_map(|(name, state)| {
                state.history.front().map(|p| (p.at, index, name.clone()))
            }));
        }
        oldest.sort_unstable_by_key(|candidate| candidate.0);
        for (_, index, name) in oldest {
            if self.history_bytes() <= target {
                break;
            }
            let mut shard = lock(&self.shards[index]);
            if let Some(state) = shard.channels.get_mut(&name) {
                for dropped in std::mem::take(&mut state.history) {
                    self.forget_bytes(&dropped);
                }
            }
        }
    }
}

fn state_of<'a>(
    shard: &'a mut Shard,
    channel: &str,
    now: Instant,
    epoch: impl FnOnce() -> Arc<str>,
) -> &'a mut ChannelState {
    if !shard.channels.contains_key(channel) {
        let name: Arc<str> = Arc::from(channel);
        shard.channels.insert(
            name.clone(),
            ChannelState {
                name,
                epoch: epoch(),
                last_offset: 0,
                history: VecDeque::new(),
                touched: now,
            },
        );
    }
    // Inserted just above when absent.
    shard
        .channels
        .get_mut(channel)
        .unwrap_or_else(|| unreachable!("channel state inserted above"))
}

impl MemoryBroker {
    /// A fresh random epoch.
    fn new_epoch(&self) -> Arc<str> {
        Arc::from(format!("{:016x}", lock(&self.rng).u64(..)).as_str())
    }

    /// Gives `envelope` the channel's next offset, encodes it once, keeps it in the history.
    ///
    /// # Errors
    /// [`BrokerError::Protocol`] when `channel` is not a valid channel name.
    pub fn append(
        &self,
        channel: &str,
        envelope: Envelope,
        now: Instant,
    ) -> Result<Publication, BrokerError> {
        let mut shard = lock(self.shard(channel));
        let state = state_of(&mut shard, channel, now, || self.new_epoch());
        let offset = state.last_offset + 1;
        // A client's publication names its channel already (every envelope's channel was checked
        // when it was set: decoded or `with_channel`).
        let envelope = if envelope.channel() == Some(channel) {
            envelope
        } else {
            envelope.with_channel(channel)?
        };
        let envelope = envelope.with_offset(offset);
        let publication = Publication {
            channel: state.name.clone(),
            offset,
            text: Text::from(encode(&envelope)),
            at: now,
        };
        state.last_offset = offset;
        state.touched = state.touched.max(now);
        if self.history_size > 0 {
            self.history_bytes
                .fetch_add(publication.text.len(), std::sync::atomic::Ordering::Relaxed);
            // Without the wire forms (a compressed one, say) that the queued copies make.
            state.history.push_back(Publication {
                channel: publication.channel.clone(),
                offset,
                text: publication.text.detached(),
                at: now,
            });
        }
        self.prune(state, now);
        drop(shard);
        self.enforce_budget();
        Ok(publication)
    }

    /// The channel's position, and the publications after `since` when history reaches back
    /// that far in the same epoch (`recovered`), in offset order.
    ///
    /// # Errors
    /// None today; the `Result` keeps the shape of a remote broker's answer.
    pub fn replay(
        &self,
        channel: &str,
        since: Option<&StreamPosition>,
        now: Instant,
    ) -> Result<Replay, BrokerError> {
        let mut shard = lock(self.shard(channel));
        let state = state_of(&mut shard, channel, now, || self.new_epoch());
        state.touched = state.touched.max(now);
        self.prune(state, now);
        let mut replay = Replay {
            offset: state.last_offset,
            epoch: state.epoch.clone(),
            recovered: false,
            publications: Vec::new(),
        };
        let Some(since) = since else {
            return Ok(replay);
        };
        if since.epoch != *state.epoch || since.offset > state.last_offset {
            return Ok(replay);
        }
        if since.offset == state.last_offset {
            replay.recovered = true;
            return Ok(replay);
        }
        let oldest = state.history.front().map_or(u64::MAX, |p| p.offset);
        if oldest <= since.offset + 1 {
            replay.recovered = true;
            replay.publications = state
                .history
                .iter()
                .filter(|p| p.offset > since.offset)
                .cloned()
                .collect();
        }
        Ok(replay)
    }

    /// Adds or replaces `participant` in the presence of `channel`.
    pub fn presence_join(&self, channel: &str, participant: Participant) {
        let mut shard = lock(self.shard(channel));
        let members = shard.presence.entry(channel.to_owned()).or_default();
        if let Some(existing) = members
            .iter_mut()
            .find(|m| m.user_id == participant.user_id)
        {
            *existing = participant;
        } else {
            members.push(participant);
        }
    }

    /// Removes `user_id` from the presence of `channel`.
    pub fn presence_leave(&self, channel: &str, user_id: &str) {
        let mut shard = lock(self.shard(channel));
        if let Some(members) = shard.presence.get_mut(channel) {
            members.retain(|m| m.user_id != user_id);
            if members.is_empty() {
                shard.presence.remove(channel);
            }
        }
    }

    /// The presence of `channel`, in join order.
    #[must_use]
    pub fn presence(&self, channel: &str) -> Vec<Participant> {
        let shard = lock(self.shard(channel));
        shard.presence.get(channel).cloned().unwrap_or_default()
    }

    /// Forgets channels whose history expired, except those for which `keep` says yes.
    pub fn sweep(&self, now: Instant, keep: &dyn Fn(&str) -> bool) {
        let ttl = self.history_ttl;
        let expired = |state: &ChannelState| {
            state.history.is_empty() && now.saturating_duration_since(state.touched) > ttl
        };
        for shard in &self.shards {
            // `keep` takes the hub's locks: never call it while holding a broker lock (the hub
            // takes its lock first, then the broker's).
            let candidates: Vec<Arc<str>> = {
                let mut shard = lock(shard);
                for state in shard.channels.values_mut() {
                    self.prune_expired(state, now);
                }
                shard
                    .channels
                    .iter()
                    .filter(|(_, state)| expired(state))
                    .map(|(name, _)| name.clone())
                    .collect()
            };
            let doomed: Vec<Arc<str>> = candidates.into_iter().filter(|c| !keep(c)).collect();
            if doomed.is_empty() {
                continue;
            }
            let mut shard = lock(shard);
            for name in doomed {
                // A subscription since the check touched the channel: it stays.
                if shard.channels.get(&name).is_some_and(&expired) {
                    shard.channels.remove(&name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(n: u64) -> Envelope {
        Envelope::from_value("app.n", &n).unwrap()
    }

    proptest! {
        #[test]
        fn offsets_strictly_increase_per_channel(ops in proptest::collection::vec(0usize..4, 1..200)) {
            let broker = MemoryBroker::new(100, Duration::from_secs(300), 1);
            let now = crate::testing::instant();
            let mut last = [0u64; 4];
            for (i, channel) in ops.into_iter().enumerate() {
                let name = format!("c:{channel}");
                let publication = broker.append(&name, env(i as u64), now).unwrap();
                prop_assert!(publication.offset > last[channel]);
                prop_assert_eq!(publication.offset, last[channel] + 1);
                last[channel] = publication.offset;
            }
        }

        #[test]
        fn replay_returns_exactly_the_missed_publications_in_order(total in 1u64..150, seen in 0u64..150) {
            let broker = MemoryBroker::new(100, Duration::from_secs(300), 1);
            let now = crate::testing::instant();
            for i in 0..total {
                broker.append("c", env(i), now).unwrap();
            }
            let epoch = broker.replay("c", None, now).unwrap().epoch.to_string();
            let since = StreamPosition { offset: seen, epoch };
            let replay = broker.replay("c", Some(&since), now).unwrap();
            prop_assert_eq!(replay.offset, total);
            let retained_from = total.saturating_sub(100) + 1;
            if seen > total {
                prop_assert!(!replay.recovered);
            } else if seen + 1 >= retained_from {
                prop_assert!(replay.recovered);
                let offsets: Vec<u64> = replay.publications.iter().map(|p| p.offset).collect();
                prop_assert_eq!(offsets, ((seen + 1)..=total).collect::<Vec<_>>());
            } else {
                prop_assert!(!replay.recovered);
                prop_assert!(replay.publications.is_empty());
            }
        }
    }

    #[test]
    fn another_epoch_or_expired_history_is_not_recovered() {
        let broker = MemoryBroker::new(100, Duration::from_secs(300), 1);
        let now = crate::testing::instant();
        broker.append("c", env(1), now).unwrap();
        broker.append("c", env(2), now).unwrap();
        let other = StreamPosition {
            offset: 1,
            epoch: "other".into(),
        };
        assert!(!broker.replay("c", Some(&other), now).unwrap().recovered);
        let epoch = broker.replay("c", None, now).unwrap().epoch.to_string();
        let later = now + Duration::from_secs(301);
        let replay = broker
            .replay("c", Some(&StreamPosition { offset: 1, epoch }), later)
            .unwrap();
        assert!(!replay.recovered);
        // Forgotten channels come back with a new epoch.
        broker.sweep(later + Duration::from_secs(301), &|_| false);
        let fresh = broker.replay("c", None, later).unwrap();
        assert_eq!(fresh.offset, 0);
    }
}
