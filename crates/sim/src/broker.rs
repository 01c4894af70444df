//! The simulated remote broker (what Redis is to a group of nodes): history and offsets from
//! a [`MemoryBroker`], fan-out to the nodes that watch a channel, presence entries that expire
//! unless their node refreshes them, dedupe claims and per-user counts with expiry, and
//! outages during which every call fails and publications are not fanned out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use cerebrum_protocol::{Envelope, Participant, StreamPosition};
use cerebrum_server_core::broker::{BrokerError, Claimed, MemoryBroker, Publication, Replay};

/// A node's index.
pub(crate) type NodeId = usize;

/// An append that took: the publication, the channel's epoch, the nodes that watch it.
pub(crate) type Appended = (Publication, std::sync::Arc<str>, Vec<NodeId>);

#[derive(Debug)]
struct Member {
    participant: Participant,
    node: NodeId,
    expires_ms: u64,
}

/// The shared broker of the simulated group.
#[derive(Debug)]
pub(crate) struct SimBroker {
    history: MemoryBroker,
    /// Local subscribers per node and channel (the node watches while the count is positive).
    watches: BTreeMap<(NodeId, String), usize>,
    presence: BTreeMap<String, Vec<Member>>,
    /// Dedupe claims: whether settled, and until when.
    claims: HashMap<String, (bool, u64)>,
    /// Message ids each channel took (the append script's `ids` set).
    ids: HashMap<String, HashSet<String>>,
    counts: BTreeMap<String, BTreeMap<NodeId, (usize, u64)>>,
    /// Calls fail until then (ms of simulated time).
    pub(crate) down_until: u64,
    /// How many times each message id was appended to an app channel (the effect the
    /// exactly-once check counts).
    pub(crate) appended: HashMap<String, u32>,
    pub(crate) presence_ttl_ms: u64,
    /// Whether an append takes a message id only once (the Redis script's `ids` set).
    idempotent: bool,
}

impl SimBroker {
    pub(crate) fn new(seed: u64, presence_ttl_ms: u64, idempotent: bool) -> Self {
        Self {
            history: MemoryBroker::new(100, std::time::Duration::from_secs(3600), seed),
            watches: BTreeMap::new(),
            presence: BTreeMap::new(),
            claims: HashMap::new(),
            ids: HashMap::new(),
            counts: BTreeMap::new(),
            down_until: 0,
            appended: HashMap::new(),
            presence_ttl_ms,
            idempotent,
        }
    }

    pub(crate) fn is_up(&self, now_ms: u64) -> bool {
        now_ms >= self.down_until
    }

    fn up(&self, now_ms: u64) -> Result<(), BrokerError> {
        if self.is_up(now_ms) {
            Ok(())
        } else {
            Err(BrokerError::Unavailable)
        }
    }

    /// Appends and returns the publication with the nodes that must receive it; `None` for a
    /// message id the channel took already (the append is idempotent, as the Redis script).
    pub(crate) fn append(
        &mut self,
        channel: &str,
        envelope: Envelope,
        at: Instant,
        now_ms: u64,
    ) -> Result<Option<Appended>, BrokerError> {
        self.up(now_ms)?;
        let id = envelope.message_id().map(|id| id.as_str().to_owned());
        if let Some(id) = &id
            && self.idempotent
            && !self
                .ids
                .entry(channel.to_owned())
                .or_default()
                .insert(id.clone())
        {
            return Ok(None);
        }
        let publication = self.history.append(channel, envelope, at)?;
        if channel.starts_with("chat:")
            && let Some(id) = id
        {
            *self.appended.entry(id).or_insert(0) += 1;
        }
        let epoch = self.history.replay(channel, None, at)?.epoch;
        let nodes = self
            .watches
            .iter()
            .filter(|((_, c), n)| c == channel && **n > 0)
            .map(|((node, _), _)| *node)
            .collect();
        Ok(Some((publication, epoch, nodes)))
    }

    pub(crate) fn replay(
        &mut self,
        channel: &str,
        since: Option<&StreamPosition>,
        at: Instant,
        now_ms: u64,
    ) -> Result<Replay, BrokerError> {
        self.up(now_ms)?;
        self.history.replay(channel, since, at)
    }

    pub(crate) fn watch(
        &mut self,
        node: NodeId,
        channel: &str,
        now_ms: u64,
    ) -> Result<(), BrokerError> {
        self.up(now_ms)?;
        *self.watches.entry((node, channel.to_owned())).or_insert(0) += 1;
        Ok(())
    }

    pub(crate) fn unwatch(&mut self, node: NodeId, channel: &str) {
        if let Some(n) = self.watches.get_mut(&(node, channel.to_owned())) {
            *n = n.saturating_sub(1);
        }
    }

    /// A node died: its pub/sub link (every watch) goes with it.
    pub(crate) fn node_died(&mut self, node: NodeId) {
        self.watches.retain(|(n, _), _| *n != node);
    }

    pub(crate) fn presence_join(
        &mut self,
        node: NodeId,
        channel: &str,
        participant: Participant,
        now_ms: u64,
    ) -> Result<(), BrokerError> {
        self.up(now_ms)?;
        let members = self.presence.entry(channel.to_owned()).or_default();
        let expires_ms = now_ms + self.presence_ttl_ms;
        match members
            .iter_mut()
            .find(|m| m.participant.user_id == participant.user_id)
        {
            Some(member) => {
                *member = Member {
                    participant,
                    node,
                    expires_ms,
                };
            }
            None => members.push(Member {
                participant,
                node,
                expires_ms,
            }),
        }
        Ok(())
    }

    /// Removes `user`'s entry when it joined at `joined_at` (as the Redis leave script).
    pub(crate) fn presence_leave(
        &mut self,
        channel: &str,
        user: &str,
        joined_at: u64,
        now_ms: u64,
    ) -> Result<(), BrokerError> {
        self.up(now_ms)?;
        if let Some(members) = self.presence.get_mut(channel) {
            members
                .retain(|m| m.participant.user_id != user || m.participant.joined_at != joined_at);
        }
        Ok(())
    }

    /// The live members, in join order.
    pub(crate) fn members(
        &self,
        channel: &str,
        now_ms: u64,
    ) -> Result<Vec<Participant>, BrokerError> {
        self.up(now_ms)?;
        let mut live: Vec<&Member> = self
            .presence
            .get(channel)
            .map(|m| m.iter().filter(|m| m.expires_ms >= now_ms).collect())
            .unwrap_or_default();
        live.sort_by(|a, b| {
            (a.participant.joined_at, &a.participant.user_id)
                .cmp(&(b.participant.joined_at, &b.participant.user_id))
        });
        Ok(live.into_iter().map(|m| m.participant.clone()).collect())
    }

    /// Removes the expired members of `channel` and returns them (each once).
    pub(crate) fn expire(
        &mut self,
        channel: &str,
        now_ms: u64,
    ) -> Result<Vec<String>, BrokerError> {
        self.up(now_ms)?;
        let Some(members) = self.presence.get_mut(channel) else {
            return Ok(Vec::new());
        };
        let gone = members
            .iter()
            .filter(|m| m.expires_ms < now_ms)
            .map(|m| m.participant.user_id.clone())
            .collect();
        members.retain(|m| m.expires_ms >= now_ms);
        Ok(gone)
    }

    /// A live node rewrites its members' entries (re-adding any that expired meanwhile, as
    /// `HSET` does) and its connection counts from its own tally (its refresh task).
    pub(crate) fn refresh(
        &mut self,
        node: NodeId,
        owned: &[(String, Participant)],
        counts: &[(String, usize)],
        now_ms: u64,
    ) {
        if !self.is_up(now_ms) {
            return;
        }
        let expires_ms = now_ms + self.presence_ttl_ms;
        for (channel, participant) in owned {
            let members = self.presence.entry(channel.clone()).or_default();
            match members
                .iter_mut()
                .find(|m| m.participant.user_id == participant.user_id)
            {
                Some(member) => {
                    member.node = node;
                    member.expires_ms = expires_ms;
                }
                None => members.push(Member {
                    participant: participant.clone(),
                    node,
                    expires_ms,
                }),
            }
        }
        for (user, count) in counts {
            self.counts
                .entry(user.clone())
                .or_default()
                .insert(node, (*count, expires_ms));
        }
    }

    /// The claim script: first (now pending for `pending_ms`), done, or in progress.
    pub(crate) fn claim(
        &mut self,
        key: &str,
        id: &str,
        pending_ms: u64,
        now_ms: u64,
    ) -> Result<Claimed, BrokerError> {
        self.up(now_ms)?;
        let full = format!("{key}:{id}");
        match self.claims.get(&full) {
            Some((true, expires)) if *expires > now_ms => Ok(Claimed::Done),
            Some((false, expires)) if *expires > now_ms => Ok(Claimed::InProgress),
            _ => {
                self.claims.insert(full, (false, now_ms + pending_ms));
                Ok(Claimed::First)
            }
        }
    }

    /// The claimed message took effect.
    pub(crate) fn settle(
        &mut self,
        key: &str,
        id: &str,
        window_ms: u64,
        now_ms: u64,
    ) -> Result<(), BrokerError> {
        self.up(now_ms)?;
        self.claims
            .insert(format!("{key}:{id}"), (true, now_ms + window_ms));
        Ok(())
    }

    pub(crate) fn release(&mut self, key: &str, id: &str, now_ms: u64) -> Result<(), BrokerError> {
        self.up(now_ms)?;
        self.claims.remove(&format!("{key}:{id}"));
        Ok(())
    }

    pub(crate) fn user_connected(
        &mut self,
        node: NodeId,
        user: &str,
        limit: usize,
        now_ms: u64,
    ) -> Result<bool, BrokerError> {
        self.up(now_ms)?;
        let per_node = self.counts.entry(user.to_owned()).or_default();
        let total: usize = per_node
            .values()
            .filter(|(_, expires)| *expires >= now_ms)
            .map(|(count, _)| count)
            .sum();
        if total >= limit {
            return Ok(false);
        }
        let entry = per_node.entry(node).or_insert((0, 0));
        if entry.1 < now_ms {
            entry.0 = 0;
        }
        entry.0 += 1;
        entry.1 = now_ms + self.presence_ttl_ms;
        Ok(true)
    }

    pub(crate) fn user_disconnected(
        &mut self,
        node: NodeId,
        user: &str,
        now_ms: u64,
    ) -> Result<(), BrokerError> {
        self.up(now_ms)?;
        if let Some(entry) = self.counts.get_mut(user).and_then(|m| m.get_mut(&node)) {
            entry.0 = entry.0.saturating_sub(1);
        }
        Ok(())
    }
}
