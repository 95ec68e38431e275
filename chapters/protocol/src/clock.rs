//! The message deadline: a started message must be finished within
//! `--message-timeout-ms`.
//!
//! The idle limit alone does not stop a client that trickles: one byte
//! every few seconds is never silent for long, yet it can keep a
//! connection (in a blocking server, a whole worker) for as long as it
//! likes. So a message also has a deadline of its own, counted from its
//! first byte. Every server keeps one [`MessageClock`] per connection and
//! asks it when the message in hand must be complete.
//!
//! When does the clock start? Not simply at the first byte read: a client
//! that pipelines may send the next message while the server is still
//! working on the previous one, and time the server spends working is not
//! the client's fault. The clock for a message starts when the server
//! first holds a byte of it *while not working*: at the later of the read
//! that brought its first byte and the end of the work on the message
//! before it. Every model says so in the same words, by calling
//! [`MessageClock::track`] after it has taken in input or finished work.

use std::time::{Duration, Instant};

/// What a client whose message ran past the deadline is told before the
/// connection closes.
pub const TIMEOUT_REPLY: &[u8] = b"err message timeout";

// ANCHOR: message_clock
/// The deadline of the message a connection is receiving, if any.
///
/// ```
/// use std::time::{Duration, Instant};
/// use protocol::clock::MessageClock;
///
/// let limit = Duration::from_secs(1);
/// let mut clock = MessageClock::new(Some(limit));
/// let t0 = Instant::now();
/// clock.track(true, t0); // the first byte of a message is in hand
/// clock.track(true, t0 + limit / 2); // more bytes: the clock runs on
/// assert_eq!(clock.deadline(), Some(t0 + limit));
/// assert!(clock.expired(t0 + limit));
/// clock.track(false, t0 + limit); // complete (or being worked on)
/// assert_eq!(clock.deadline(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageClock {
    /// `--message-timeout-ms`, or `None` for no limit.
    limit: Option<Duration>,
    /// When the clock of the message in hand started.
    started: Option<Instant>,
}

impl MessageClock {
    /// A stopped clock for messages that must be complete within `limit`
    /// (`None`: no limit, and [`deadline`](Self::deadline) is always
    /// `None`). Take `limit` from `Config::message_timeout`.
    pub fn new(limit: Option<Duration>) -> MessageClock {
        MessageClock {
            limit,
            started: None,
        }
    }

    /// Tells the clock what the connection holds at `now`.
    ///
    /// `waiting` is true when the server holds bytes of an unfinished
    /// message *and* is not working on (or waiting to work on) a message
    /// before it: then the clock runs, from `now` if it was stopped. When
    /// `waiting` is false the clock stops, and the next message's clock
    /// starts afresh. Call it after every read that was decoded and after
    /// the work on a message ends; between messages, call it with `false`
    /// when a message completes, so that the next one, even if its first
    /// bytes came in the same read, gets a clock of its own.
    pub fn track(&mut self, waiting: bool, now: Instant) {
        if !waiting {
            self.started = None;
        } else if self.started.is_none() {
            self.started = Some(now);
        }
    }

    /// When the message in hand must be complete, or `None` if the clock
    /// is stopped or there is no limit.
    pub fn deadline(&self) -> Option<Instant> {
        let started = self.started?;
        // A limit too far away to add is no limit.
        started.checked_add(self.limit?)
    }

    /// Whether the deadline has passed at `now`.
    ///
    /// A caller judges this only after reading what the socket holds
    /// (the contract, book/contract.md: bytes that arrived while the
    /// process was stopped are read before any deadline is judged), since
    /// those bytes may complete the message.
    pub fn expired(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|deadline| now >= deadline)
    }
}
// ANCHOR_END: message_clock

/// The earlier of two optional deadlines (`None` is "never"): what a
/// blocking server waits for, the idle deadline or the message deadline.
pub fn earlier(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_millis(1000);

    /// The clock starts at the first call that says "waiting", not at
    /// later ones: trickling bytes do not push the deadline back.
    #[test]
    fn trickling_bytes_do_not_move_the_deadline() {
        let t0 = Instant::now();
        let mut clock = MessageClock::new(Some(LIMIT));
        assert_eq!(clock.deadline(), None);
        for ms in (0..2000).step_by(300) {
            clock.track(true, t0 + Duration::from_millis(ms));
        }
        assert_eq!(clock.deadline(), Some(t0 + LIMIT));
        assert!(!clock.expired(t0 + LIMIT - Duration::from_millis(1)));
        assert!(clock.expired(t0 + LIMIT));
    }

    /// Work stops the clock: a message whose first bytes arrived during
    /// the work on the one before it is timed from the end of that work.
    #[test]
    fn work_time_does_not_count() {
        let t0 = Instant::now();
        let mut clock = MessageClock::new(Some(LIMIT));
        // Message 1 completes at t0 and is worked on for 5 s; message 2's
        // first bytes are held meanwhile, but the server is working.
        clock.track(false, t0);
        clock.track(false, t0 + Duration::from_secs(2));
        let work_done = t0 + Duration::from_secs(5);
        clock.track(true, work_done);
        assert_eq!(clock.deadline(), Some(work_done + LIMIT));
    }

    /// A completed message resets the clock even if the next message's
    /// first bytes came in the same read.
    #[test]
    fn each_message_gets_its_own_clock() {
        let t0 = Instant::now();
        let mut clock = MessageClock::new(Some(LIMIT));
        clock.track(true, t0);
        let later = t0 + Duration::from_millis(900);
        clock.track(false, later); // message 1 complete
        clock.track(true, later); // message 2 begun in the same read
        assert_eq!(clock.deadline(), Some(later + LIMIT));
    }

    /// No limit: never a deadline, however long a message takes.
    #[test]
    fn no_limit_no_deadline() {
        let t0 = Instant::now();
        let mut clock = MessageClock::new(None);
        clock.track(true, t0);
        assert_eq!(clock.deadline(), None);
        assert!(!clock.expired(t0 + Duration::from_secs(1_000_000)));
    }

    /// `earlier` treats `None` as never.
    #[test]
    fn earlier_of_two_deadlines() {
        let t0 = Instant::now();
        let t1 = t0 + LIMIT;
        assert_eq!(earlier(Some(t1), Some(t0)), Some(t0));
        assert_eq!(earlier(None, Some(t1)), Some(t1));
        assert_eq!(earlier(Some(t0), None), Some(t0));
        assert_eq!(earlier(None, None), None);
    }
}
