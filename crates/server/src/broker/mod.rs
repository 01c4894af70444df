//! The remote broker boundary, split by capability: what several server processes share
//! through Redis. Every call is asynchronous (it waits on the network) and none answers "not
//! supported": a single process has no remote broker at all, and the core's
//! [`MemoryBroker`] orders its channels.
//!
//! | capability | trait | the core's effects it carries out |
//! |---|---|---|
//! | history and offsets | [`History`] | `Publish`, `Replay` |
//! | fan-out to every node | [`FanOut`] | `Watch`, `Unwatch` |
//! | presence of study sessions | [`Presence`] | `PresenceJoin`, `PresenceLeave`, `SessionUpdate` |
//! | cluster-wide limits | [`ClusterLimits`] | `Claim`, `Release`, `CountUser`, `UncountUser` |
//!
//! [`redis::RedisBroker`] implements all of them ([`RemoteBroker`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cerebrum_protocol::{Envelope, Participant, StreamPosition};

pub use cerebrum_server_core::broker::{
    BrokerError, Claimed, Delivery, MemoryBroker, Publication, Replay,
};

pub mod redis;

/// Channel offsets, epochs and bounded history.
#[async_trait]
pub trait History: Send + Sync {
    /// Gives `envelope` the channel's next offset, keeps it in the history and publishes it to
    /// every node (which hand it to their hubs through [`FanOut::attach`]'s sink).
    ///
    /// Idempotent per message id within the dedupe window: a retry of a publication whose first
    /// attempt was in flight when its connection died (on any node) is not appended again, and
    /// the answer's offset is 0. This is what makes `ack: true` publications exactly-once with
    /// a remote broker.
    async fn append(
        &self,
        channel: &str,
        envelope: Envelope,
        now: Instant,
    ) -> Result<Publication, BrokerError>;

    /// The channel's position, and the publications after `since` when history reaches back
    /// that far in the same epoch (`recovered`), in offset order.
    async fn replay(
        &self,
        channel: &str,
        since: Option<&StreamPosition>,
        now: Instant,
    ) -> Result<Replay, BrokerError>;
}

/// Fan-out: each node receives the publications of the channels it has local subscribers of.
#[async_trait]
pub trait FanOut: Send + Sync {
    /// Where the broker hands what it receives (the hub's `deliver`, and a resync after its
    /// link was down).
    fn attach(&self, sink: DeliverFn);

    /// A local subscriber of `channel` arrived: returns once its publications flow.
    async fn watch(&self, channel: &str) -> Result<(), BrokerError>;

    /// A local subscriber of `channel` left (one unwatch per watch).
    fn unwatch(&self, channel: &str);
}

/// Presence of study sessions, with members that expire when their node stops refreshing them.
#[async_trait]
pub trait Presence: Send + Sync {
    /// Adds or replaces `participant` in the presence of `channel` (this node refreshes it
    /// until it leaves).
    async fn join(&self, channel: &str, participant: Participant) -> Result<(), BrokerError>;

    /// Removes `user_id` from the presence of `channel` when its entry is the one that joined
    /// at `joined_at` (a newer join of the user, from another connection, stays).
    async fn leave(&self, channel: &str, user_id: &str, joined_at: u64) -> Result<(), BrokerError>;

    /// The presence of `channel`, in join order.
    async fn members(&self, channel: &str) -> Result<Vec<Participant>, BrokerError>;

    /// Removes the members of `channel` whose node stopped refreshing them (a node killed
    /// without leaving) and returns their user ids, each to one caller only.
    async fn expire(&self, channel: &str) -> Result<Vec<String>, BrokerError>;

    /// This node's members are exactly `members` (`(channel, participant)`, its study tracker's
    /// state): they are refreshed from now on, and the entries it announced that are not among
    /// them leave. Heals joins and leaves of one user's connections carried out out of order.
    async fn reconcile(&self, members: Vec<(String, Participant)>) -> Result<(), BrokerError>;
}

/// Limits that hold over every node together.
#[async_trait]
pub trait ClusterLimits: Send + Sync {
    /// Claims message `id` of dedupe `key`: [`Claimed::First`] (it stays in progress for
    /// `pending`, the longest its effect may take), [`Claimed::Done`] once settled, or
    /// [`Claimed::InProgress`].
    async fn claim(&self, key: &str, id: &str, pending: Duration) -> Result<Claimed, BrokerError>;

    /// The claimed message took effect: remembered as done for `window`.
    async fn settle(&self, key: &str, id: &str, window: Duration) -> Result<(), BrokerError>;

    /// Forgets a claimed message id (its frame failed: a re-send must take effect).
    async fn release(&self, key: &str, id: &str) -> Result<(), BrokerError>;

    /// Counts a connection of `user` on this node; `false` (not counted) when the user has
    /// `limit` on every node together.
    async fn user_connected(&self, user: &str, limit: usize) -> Result<bool, BrokerError>;

    /// Un-counts one of `user`'s connections on this node.
    async fn user_disconnected(&self, user: &str) -> Result<(), BrokerError>;
}

/// Whether the broker answers (the `cache` service of `system_status`).
#[async_trait]
pub trait Health: Send + Sync {
    /// Whether the broker is reachable now.
    async fn is_healthy(&self) -> bool;
}

/// A broker with every capability: what `--redis` gives a node.
pub trait RemoteBroker: History + FanOut + Presence + ClusterLimits + Health + 'static {}

impl<T: History + FanOut + Presence + ClusterLimits + Health + 'static> RemoteBroker for T {}

/// What a remote broker tells the hub.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BrokerEvent {
    /// A publication for a channel with local subscribers.
    Publication(Delivery),
    /// The broker's subscriptions were restored after its link was down: publications made
    /// meanwhile were not received and must be fetched from history.
    Resubscribed,
}

/// Where a remote broker hands what it receives.
pub type DeliverFn = Arc<dyn Fn(BrokerEvent) + Send + Sync>;
