//! Timers: "wake me at T" without sleeping.
//!
//! A blocking server waits for time to pass by sleeping. An event loop
//! cannot: while it sleeps, nobody serves the other clients. So waiting
//! becomes data: every deadline goes into a min-heap, and the loop passes
//! "time until the earliest deadline" to `epoll_wait` as its timeout. When
//! the wait returns, the loop pops every deadline that has passed and lets
//! its connection act on it. One heap serves all timers, so 10,000
//! connections cost no extra threads or descriptors (a `timerfd` per timer
//! would cost a descriptor each).
//!
//! Timers are never cancelled. A connection remembers which deadline it is
//! waiting for; when an entry that is no longer wanted comes out of the heap
//! (the connection closed, or moved on), the connection ignores it. That
//! keeps scheduling to one `push`, with no search through the heap. The
//! loop sweeps the stale entries out only when they outnumber the live
//! ones (see `Server::sweep_timers`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::poller::Token;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerKind {
    /// The simulated work on a message is done: send its `ack`.
    Work,
    /// Check whether the client has been silent for the idle limit.
    Idle,
    /// Check whether the message in hand is past its deadline.
    Message,
    /// A lingering close has lingered long enough.
    Linger,
}

/// One scheduled deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timer {
    /// When it is due. First, so the heap orders by it.
    pub at: Instant,
    /// Whose it is.
    pub token: Token,
    /// What for.
    pub kind: TimerKind,
}

// ANCHOR: timers
/// Every pending deadline of the event loop, earliest first.
#[derive(Debug, Default)]
pub struct Timers {
    // `BinaryHeap` is a max-heap; `Reverse` makes it give the earliest.
    heap: BinaryHeap<Reverse<Timer>>,
}

impl Timers {
    /// No deadlines.
    pub fn new() -> Timers {
        Timers::default()
    }

    /// Asks for `token` to be woken for `kind` at `at`.
    pub fn schedule(&mut self, at: Instant, token: Token, kind: TimerKind) {
        // The heap's vector is reused: once it has grown to the number of
        // live timers, scheduling allocates nothing.
        self.heap.push(Reverse(Timer { at, token, kind }));
    }

    /// How long the loop may sleep before the earliest deadline (zero if
    /// one has passed), or `None` if there is no deadline at all.
    pub fn time_left(&self, now: Instant) -> Option<Duration> {
        self.heap
            .peek()
            .map(|Reverse(timer)| timer.at.saturating_duration_since(now))
    }

    /// Takes out the earliest deadline if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        match self.heap.peek() {
            Some(Reverse(timer)) if timer.at <= now => {
                self.heap.pop().map(|Reverse(timer)| timer)
            }
            _ => None,
        }
    }

    // ANCHOR_END: timers

    /// Keeps only the deadlines for which `wanted` is true.
    pub fn retain(&mut self, mut wanted: impl FnMut(&Timer) -> bool) {
        self.heap.retain(|Reverse(timer)| wanted(timer));
    }

    /// Deadlines in the heap, including ones nobody waits for any more.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no deadline is scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deadlines come out earliest first, and only once due.
    #[test]
    fn earliest_first_and_only_when_due() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        timers.schedule(t0 + Duration::from_millis(30), 1, TimerKind::Idle);
        timers.schedule(t0 + Duration::from_millis(10), 2, TimerKind::Work);
        timers.schedule(t0 + Duration::from_millis(20), 3, TimerKind::Linger);
        assert_eq!(timers.time_left(t0), Some(Duration::from_millis(10)));
        assert_eq!(timers.pop_due(t0), None);
        let later = t0 + Duration::from_millis(25);
        let due: Vec<Token> =
            std::iter::from_fn(|| timers.pop_due(later).map(|t| t.token))
                .collect();
        assert_eq!(due, [2, 3]);
        assert_eq!(timers.len(), 1);
        assert_eq!(timers.time_left(later), Some(Duration::from_millis(5)));
    }

    /// What one deadline costs in the heap (the chapter quotes it).
    #[test]
    fn a_deadline_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Reverse<Timer>>(), 32);
    }
}
