//! A small table of deadlines, one slot per kind (as quinn-proto keeps its timers).

use std::time::Duration;

use crate::instant::Instant;

/// The kinds of timer the core keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Start the next reconnect attempt.
    Reconnect,
    /// Abandon an attempt that has not opened.
    ConnectTimeout,
    /// Send the next heartbeat `ping`.
    Ping,
    /// No `welcome` by now: level-0 mode.
    Welcome,
    /// The connection has been up long enough: reset the attempt count.
    Stable,
}

impl Timer {
    const ALL: [Self; 5] = [
        Self::Reconnect,
        Self::ConnectTimeout,
        Self::Ping,
        Self::Welcome,
        Self::Stable,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// One optional deadline per [`Timer`].
#[derive(Debug, Default, Clone)]
pub(crate) struct TimerTable {
    slots: [Option<Instant>; 5],
    /// The earliest armed slot, updated when a slot changes (read on every input).
    earliest: Option<Instant>,
}

impl TimerTable {
    /// Arms `timer` to fire at `now + after` (disarms it if that instant is not representable).
    pub(crate) fn set(&mut self, timer: Timer, now: Instant, after: Duration) {
        self.slots[timer.index()] = now.checked_add(after);
        self.update();
    }

    /// Disarms `timer`.
    pub(crate) fn stop(&mut self, timer: Timer) {
        if self.slots[timer.index()].take().is_some() {
            self.update();
        }
    }

    fn update(&mut self) {
        self.earliest = self.slots.iter().flatten().min().copied();
    }

    /// When `timer` fires, if armed.
    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.slots[timer.index()]
    }

    /// The earliest armed deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.earliest
    }

    /// The earliest timer due at `now`, with its deadline.
    pub(crate) fn due(&self, now: Instant) -> Option<(Timer, Instant)> {
        Timer::ALL
            .iter()
            .filter_map(|&timer| self.get(timer).map(|at| (timer, at)))
            .filter(|&(_, at)| at <= now)
            .min_by_key(|&(_, at)| at)
    }
}

/// `now + after`, or `None` when that instant is not representable (an effectively infinite
/// deadline).
pub(crate) fn after(now: Instant, after: Duration) -> Option<Instant> {
    now.checked_add(after)
}
