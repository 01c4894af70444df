//! The outbox: the FIFO offline queue and the table of sends waiting for their `ack`.

use std::collections::VecDeque;
use std::time::Duration;

use crate::instant::Instant;

use cerebrum_protocol::{Envelope, MessageId};

use crate::config::OverflowPolicy;
use crate::error::SendError;
use crate::vec_map::VecMap;

/// One message waiting in the offline queue.
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    pub(crate) envelope: Envelope,
    pub(crate) id: MessageId,
    pub(crate) frame: String,
    pub(crate) ack: bool,
}

/// One transmitted `ack: true` message waiting for its `ack`.
#[derive(Debug, Clone)]
struct InFlight {
    id: MessageId,
    frame: String,
    /// `None` while no connection carries it (it is re-sent after the next connect).
    deadline: Option<Instant>,
    /// Volatile: never re-sent; fails when its connection is lost.
    volatile: bool,
}

/// Limits of the queue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) capacity: usize,
    pub(crate) max_bytes: usize,
    pub(crate) policy: OverflowPolicy,
}

#[derive(Debug, Default)]
pub(crate) struct Outbox {
    queue: VecDeque<Queued>,
    bytes: usize,
    /// In-flight sends with their sequence numbers, in increasing order (each is appended with
    /// the next number): iteration order is the original send order, and deadlines never
    /// decrease along it (they are set from a monotonic `now` plus one timeout). A deque rather
    /// than a `BTreeMap`: acks mostly settle the oldest, and B-tree code is a tenth of the
    /// browser build.
    in_flight: VecDeque<(u64, InFlight)>,
    by_id: VecMap<MessageId, u64>,
    next_seq: u64,
}

impl Outbox {
    /// Appends `message`, applying the limits. Returns the ids dropped to make room
    /// ([`OverflowPolicy::DropOldest`]).
    pub(crate) fn push(
        &mut self,
        message: Queued,
        limits: Limits,
    ) -> Result<Vec<MessageId>, SendError> {
        let size = message.frame.len();
        let full = |outbox: &Self| {
            outbox.queue.len() >= limits.capacity
                || outbox.bytes.saturating_add(size) > limits.max_bytes
        };
        let mut dropped = Vec::new();
        if full(self) {
            let fits_alone = size <= limits.max_bytes && limits.capacity > 0;
            if limits.policy == OverflowPolicy::RejectNew || !fits_alone {
                return Err(SendError::QueueFull {
                    messages: self.queue.len(),
                    bytes: self.bytes,
                });
            }
            while full(self) {
                match self.pop() {
                    Some(old) => dropped.push(old.id),
                    None => break,
                }
            }
        }
        self.bytes += size;
        self.queue.push_back(message);
        Ok(dropped)
    }

    /// Appends `message` without limits (a message held for a moment while the transport is
    /// open but the server's level is not known yet, with the offline queue disabled).
    pub(crate) fn push_unbounded(&mut self, message: Queued) {
        self.bytes += message.frame.len();
        self.queue.push_back(message);
    }

    /// The oldest queued message.
    pub(crate) fn front(&self) -> Option<&Queued> {
        self.queue.front()
    }

    /// Takes the oldest queued message.
    pub(crate) fn pop(&mut self) -> Option<Queued> {
        let message = self.queue.pop_front()?;
        self.bytes -= message.frame.len();
        Some(message)
    }

    /// Empties the queue, returning the ids removed.
    pub(crate) fn clear(&mut self) -> Vec<MessageId> {
        self.bytes = 0;
        self.queue.drain(..).map(|m| m.id).collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = &Queued> {
        self.queue.iter()
    }

    /// Records a transmitted `ack: true` message.
    pub(crate) fn track(
        &mut self,
        id: MessageId,
        frame: String,
        deadline: Option<Instant>,
        volatile: bool,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_id.insert(id.clone(), seq);
        self.in_flight.push_back((
            seq,
            InFlight {
                id,
                frame,
                deadline,
                volatile,
            },
        ));
    }

    /// Removes an in-flight message (acked or refused); `false` if it was not in flight.
    pub(crate) fn settle(&mut self, id: &MessageId) -> bool {
        match self.by_id.remove(id) {
            Some(seq) => match self.in_flight.binary_search_by_key(&seq, |(s, _)| *s) {
                Ok(at) => self.in_flight.remove(at).is_some(),
                Err(_) => false,
            },
            None => false,
        }
    }

    /// Removes and returns the in-flight messages whose ack deadline has passed.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<MessageId> {
        let mut expired = Vec::new();
        while let Some((_, first)) = self.in_flight.front() {
            match first.deadline {
                Some(deadline) if deadline <= now => {
                    if let Some((_, flight)) = self.in_flight.pop_front() {
                        self.by_id.remove(&flight.id);
                        expired.push(flight.id);
                    }
                }
                _ => break,
            }
        }
        expired
    }

    /// The earliest ack deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.in_flight.front().and_then(|(_, f)| f.deadline)
    }

    /// The connection is gone: in-flight messages wait, without a deadline, to be re-sent;
    /// volatile ones are removed and returned (they are never re-sent).
    pub(crate) fn pause(&mut self) -> Vec<MessageId> {
        let mut lost = Vec::new();
        self.in_flight.retain_mut(|(_, flight)| {
            flight.deadline = None;
            if flight.volatile {
                lost.push(flight.id.clone());
            }
            !flight.volatile
        });
        for id in &lost {
            self.by_id.remove(id);
        }
        lost
    }

    /// The frames of every in-flight message in their original order, each given a new deadline
    /// of `now + timeout` (re-sent with the same messageId after a reconnect).
    pub(crate) fn resend(&mut self, now: Instant, timeout: Duration) -> Vec<String> {
        let deadline = crate::timer::after(now, timeout);
        self.in_flight
            .iter_mut()
            .map(|(_, flight)| {
                flight.deadline = deadline;
                flight.frame.clone()
            })
            .collect()
    }

    /// Removes every in-flight message (the server turned out not to support acks).
    pub(crate) fn take_in_flight(&mut self) -> Vec<MessageId> {
        self.by_id.clear();
        std::mem::take(&mut self.in_flight)
            .into_iter()
            .map(|(_, f)| f.id)
            .collect()
    }

    pub(crate) fn in_flight_ids(&self) -> impl Iterator<Item = &MessageId> {
        self.in_flight.iter().map(|(_, f)| &f.id)
    }

    pub(crate) fn has_in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(n: u32) -> Queued {
        let id: MessageId = format!("m{n}").parse().unwrap();
        let envelope = Envelope::from_value("x", &n)
            .unwrap()
            .with_message_id(id.clone());
        let frame = cerebrum_protocol::encode(&envelope);
        Queued {
            envelope,
            id,
            frame,
            ack: false,
        }
    }

    fn limits(policy: OverflowPolicy) -> Limits {
        Limits {
            capacity: 2,
            max_bytes: 1 << 20,
            policy,
        }
    }

    #[test]
    fn reject_new_keeps_everything_queued() {
        let mut outbox = Outbox::default();
        let l = limits(OverflowPolicy::RejectNew);
        outbox.push(message(1), l).unwrap();
        outbox.push(message(2), l).unwrap();
        assert!(matches!(
            outbox.push(message(3), l),
            Err(SendError::QueueFull { messages: 2, .. })
        ));
        let ids: Vec<_> = outbox.iter().map(|m| m.id.as_str().to_owned()).collect();
        assert_eq!(ids, ["m1", "m2"]);
    }

    #[test]
    fn drop_oldest_reports_what_it_dropped_and_tracks_bytes() {
        let mut outbox = Outbox::default();
        let l = limits(OverflowPolicy::DropOldest);
        outbox.push(message(1), l).unwrap();
        outbox.push(message(2), l).unwrap();
        let dropped = outbox.push(message(3), l).unwrap();
        assert_eq!(dropped, vec!["m1".parse::<MessageId>().unwrap()]);
        let total: usize = outbox.iter().map(|m| m.frame.len()).sum();
        assert_eq!(outbox.bytes(), total);
        assert_eq!(outbox.clear().len(), 2);
        assert_eq!(outbox.bytes(), 0);
    }

    #[test]
    fn byte_cap_applies_beside_the_message_cap() {
        let mut outbox = Outbox::default();
        let one = message(1).frame.len();
        let l = Limits {
            capacity: 100,
            max_bytes: one * 2,
            policy: OverflowPolicy::RejectNew,
        };
        outbox.push(message(1), l).unwrap();
        outbox.push(message(2), l).unwrap();
        assert!(outbox.push(message(3), l).is_err());
        let tiny = Limits {
            max_bytes: 1,
            policy: OverflowPolicy::DropOldest,
            ..l
        };
        // A message that can never fit is refused without dropping anything.
        assert!(outbox.push(message(4), tiny).is_err());
        assert_eq!(outbox.iter().len(), 2);
    }
}
