//! The rules of a node's periodic tasks: study sessions whose grace period is over, records
//! that could not be written yet, and, with a remote broker, the presence of dead nodes'
//! members and this node's own entries. The driver calls these on its timers and carries the
//! [`NodeEffect`]s out in order.

use cerebrum_protocol::{Participant, SESSION_PREFIX};

use crate::clock::Now;
use crate::context::Context;
use crate::outbox::lock;
use crate::study::FinishedStudy;

/// Work a node's periodic tasks hand to the driver, to be carried out in order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum NodeEffect {
    /// Remote broker: remove `user_id`'s entry that joined at `joined_at` from the presence of
    /// `channel`.
    PresenceLeave {
        /// The study session's channel.
        channel: String,
        /// The member who left.
        user_id: String,
        /// When the session that ended started.
        joined_at: u64,
    },
    /// Add the finished session to the user's record durably and publish the user's
    /// `study_metrics_update`; when the write fails, hand it back with
    /// [`Context::study_unrecorded`] (it is tried again at the next sweep).
    RecordStudy {
        /// The session that ended.
        finished: FinishedStudy,
    },
    /// Publish the `collaborative_session_update` of `channel` (from the remote broker's
    /// presence when it orders the channel).
    SessionUpdate {
        /// The study session's channel.
        channel: String,
        /// Its topic.
        topic: String,
    },
    /// Remote broker: remove the members of `channel` whose node stopped refreshing them, then
    /// call [`Context::presence_expired`] with their user ids.
    ExpirePresence {
        /// A study session's channel with local subscribers.
        channel: String,
    },
    /// Remote broker: this node's presence entries are exactly `members` (refreshed from now
    /// on; the others it announced leave).
    ReconcilePresence {
        /// `(channel, participant)` of every study session member on this node.
        members: Vec<(String, Participant)>,
    },
}

impl Context {
    /// The grace-period sweep (every 250 ms in the driver): the records that could not be
    /// written are tried again, and each study session whose grace period is over leaves the
    /// presence, is recorded durably, and only then are its remaining members told.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use cerebrum_server_core::{broker::MemoryBroker, clock::Now, context::Context, node::NodeEffect, ServerConfig};
    ///
    /// let now = Now { mono: Instant::now(), unix_ms: 1_700_000_000_000 };
    /// let ctx = Context::new(ServerConfig::default(), MemoryBroker::new(100, Duration::from_secs(300), 1), false, 7, now)?;
    /// ctx.study.lock().unwrap().start(1, "ada", "Ada", "Genetics", "session:genetics", now);
    /// ctx.study.lock().unwrap().disconnect(1, now.mono);
    /// let effects = ctx.expire_study(now.plus_ms(60_000));
    /// assert!(matches!(&effects[..], [NodeEffect::RecordStudy { .. }, NodeEffect::SessionUpdate { .. }]));
    /// # Ok::<(), cerebrum_server_core::auth::AuthError>(())
    /// ```
    #[must_use]
    pub fn expire_study(&self, now: Now) -> Vec<NodeEffect> {
        let mut effects: Vec<NodeEffect> = std::mem::take(&mut *lock(&self.unrecorded))
            .into_iter()
            .map(|finished| NodeEffect::RecordStudy { finished })
            .collect();
        let expired = lock(&self.study).expire(now);
        for finished in expired {
            if self.hub.is_remote(&finished.channel) {
                effects.push(NodeEffect::PresenceLeave {
                    channel: finished.channel.clone(),
                    user_id: finished.user_id.clone(),
                    joined_at: finished.started_ms,
                });
            } else {
                self.hub
                    .memory()
                    .presence_leave(&finished.channel, &finished.user_id);
            }
            let update = NodeEffect::SessionUpdate {
                channel: finished.channel.clone(),
                topic: finished.topic.clone(),
            };
            // The record is durable before the remaining members hear that the user left.
            effects.push(NodeEffect::RecordStudy { finished });
            effects.push(update);
        }
        effects
    }

    /// A [`NodeEffect::RecordStudy`] could not be written: it is tried again at the next
    /// sweep (and at shutdown).
    pub fn study_unrecorded(&self, finished: FinishedStudy) {
        lock(&self.unrecorded).push(finished);
    }

    /// The sessions not recorded yet (for the driver's shutdown).
    #[must_use]
    pub fn take_unrecorded(&self) -> Vec<FinishedStudy> {
        std::mem::take(&mut *lock(&self.unrecorded))
    }

    /// The presence sweep with a remote broker (every 2 s in the driver): the dead nodes'
    /// members of each study session this node has subscribers of, then this node's own
    /// entries reconciled with its study tracker. Nothing without a remote broker.
    #[must_use]
    pub fn presence_tasks(&self) -> Vec<NodeEffect> {
        if !self.hub.has_remote_broker() {
            return Vec::new();
        }
        let mut effects: Vec<NodeEffect> = self
            .hub
            .local_channels()
            .into_iter()
            .filter(|channel| channel.starts_with(SESSION_PREFIX))
            .map(|channel| NodeEffect::ExpirePresence { channel })
            .collect();
        effects.push(NodeEffect::ReconcilePresence {
            members: lock(&self.study).members(),
        });
        effects
    }

    /// The answer to [`NodeEffect::ExpirePresence`]: when members were removed, the session's
    /// update to publish.
    #[must_use]
    pub fn presence_expired(&self, channel: &str, gone: &[String]) -> Option<NodeEffect> {
        if gone.is_empty() {
            return None;
        }
        let topic = lock(&self.study).topic_of(channel).map_or_else(
            || {
                channel
                    .strip_prefix(SESSION_PREFIX)
                    .unwrap_or(channel)
                    .to_owned()
            },
            str::to_owned,
        );
        Some(NodeEffect::SessionUpdate {
            channel: channel.to_owned(),
            topic,
        })
    }
}
