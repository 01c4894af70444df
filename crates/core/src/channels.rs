//! Channel subscriptions and, per channel, the last position delivered (for resume and dedupe).

use crate::vec_map::VecMap;

use cerebrum_protocol::{MessageId, StreamPosition, Subscribed};

/// The last publication delivered from one channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Position {
    epoch: Option<String>,
    offset: Option<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Channels {
    /// What the app subscribed to, re-subscribed after every reconnect; sorted, no duplicates
    /// (a set: a vector rather than a `BTreeSet`, whose code is a tenth of the browser build).
    subscribed: Vec<String>,
    positions: VecMap<String, Position>,
    /// `subscribe` frames sent on this connection and not yet answered, by messageId.
    pending: VecMap<MessageId, String>,
}

impl Channels {
    /// Adds a subscription; `false` if it was already there.
    pub(crate) fn add(&mut self, channel: &str) -> bool {
        match self.find(channel) {
            Ok(_) => false,
            Err(at) => {
                self.subscribed.insert(at, channel.to_owned());
                true
            }
        }
    }

    fn find(&self, channel: &str) -> Result<usize, usize> {
        self.subscribed
            .binary_search_by(|probe| probe.as_str().cmp(channel))
    }

    /// Removes a subscription and forgets its position; `false` if there was none.
    pub(crate) fn remove(&mut self, channel: &str) -> bool {
        self.positions.remove(channel);
        match self.find(channel) {
            Ok(at) => {
                self.subscribed.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    pub(crate) fn subscriptions(&self) -> impl Iterator<Item = &str> {
        self.subscribed.iter().map(String::as_str)
    }

    /// Where to resume `channel` from: its epoch and last offset, when both are known.
    pub(crate) fn since(&self, channel: &str) -> Option<StreamPosition> {
        let position = self.positions.get(channel)?;
        Some(StreamPosition {
            offset: position.offset?,
            epoch: position.epoch.clone()?,
        })
    }

    /// The server confirmed a subscription: a new epoch means earlier offsets mean nothing.
    pub(crate) fn on_subscribed(&mut self, subscribed: &Subscribed) {
        let position = self
            .positions
            .get_or_insert_with(subscribed.channel.clone(), Position::default);
        if position.epoch.as_deref() != Some(subscribed.epoch.as_str()) {
            position.offset = None;
            position.epoch = Some(subscribed.epoch.clone());
        }
    }

    /// A publication at `offset` arrived from `channel`: `false` when it was already delivered
    /// (a duplicate of a replay), `true` when it is new (and now the last delivered).
    pub(crate) fn deliver(&mut self, channel: &str, offset: u64) -> bool {
        match self.positions.get_mut(channel) {
            Some(position) => {
                if position.offset.is_some_and(|last| offset <= last) {
                    return false;
                }
                position.offset = Some(offset);
                true
            }
            None => {
                self.positions.insert(
                    channel.to_owned(),
                    Position {
                        epoch: None,
                        offset: Some(offset),
                    },
                );
                true
            }
        }
    }

    pub(crate) fn expect(&mut self, id: MessageId, channel: String) {
        self.pending.insert(id, channel);
    }

    /// The channel of the pending `subscribe` with this messageId.
    pub(crate) fn answered(&mut self, id: &MessageId) -> Option<String> {
        self.pending.remove(id)
    }

    pub(crate) fn answered_channel(&mut self, channel: &str) {
        self.pending.retain(|_, c| c != channel);
    }

    /// The connection is gone: pending answers are void, and positions on channels whose epoch
    /// was never confirmed by `subscribed` (automatic ones such as `system`) are forgotten, since
    /// without an epoch a restarted server's offsets cannot be told from old ones.
    pub(crate) fn connection_lost(&mut self) {
        self.pending.clear();
        self.positions
            .retain(|_, position| position.epoch.is_some());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribed(epoch: &str) -> Subscribed {
        Subscribed {
            channel: "room:1".into(),
            offset: 10,
            epoch: epoch.into(),
            recovered: true,
            missed: 0,
        }
    }

    #[test]
    fn duplicates_are_dropped_and_epochs_reset_positions() {
        let mut channels = Channels::default();
        assert!(channels.add("room:1"));
        assert!(!channels.add("room:1"));
        channels.on_subscribed(&subscribed("e1"));
        assert_eq!(channels.since("room:1"), None);
        assert!(channels.deliver("room:1", 5));
        assert!(!channels.deliver("room:1", 5));
        assert!(!channels.deliver("room:1", 4));
        assert!(channels.deliver("room:1", 6));
        assert_eq!(
            channels.since("room:1"),
            Some(StreamPosition {
                offset: 6,
                epoch: "e1".into()
            })
        );
        channels.on_subscribed(&subscribed("e1"));
        assert!(!channels.deliver("room:1", 6));
        channels.on_subscribed(&subscribed("e2"));
        assert!(channels.deliver("room:1", 1));
        assert!(channels.remove("room:1"));
        assert_eq!(channels.since("room:1"), None);
    }

    #[test]
    fn unconfirmed_positions_do_not_survive_a_reconnect() {
        let mut channels = Channels::default();
        assert!(channels.deliver("system", 50));
        assert!(!channels.deliver("system", 1));
        channels.on_subscribed(&subscribed("e1"));
        assert!(channels.deliver("room:1", 7));
        channels.connection_lost();
        // A restarted server numbers `system` from 1 again: not a duplicate.
        assert!(channels.deliver("system", 1));
        assert!(!channels.deliver("room:1", 7));
    }
}
