//! Timers: the sleep future, and the `timeout` and `race` combinators
//! built from it.
//!
//! The runtime keeps every pending deadline in a sorted map, earliest
//! first, with the waker to call when it comes. The executor sleeps in
//! `epoll_wait` no longer than until the first one, then fires those due.
//! A `Sleep` that is dropped before its time (a read finished before its
//! deadline) takes its entry out, so the map holds only live deadlines.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::executor::with_core;

/// A deadline's key: its time, then a number that tells apart deadlines
/// at the same instant.
type Key = (Instant, u64);

/// Pending deadlines, earliest first.
#[derive(Default)]
pub(super) struct Timers {
    pub(super) pending: BTreeMap<Key, Waker>,
    last: u64,
}

impl Timers {
    /// How long until the earliest deadline; `None` if there is none.
    pub(super) fn time_left(&self, now: Instant) -> Option<Duration> {
        let (&(at, _), _) = self.pending.first_key_value()?;
        Some(at.saturating_duration_since(now))
    }

    /// Wakes the owner of every deadline that has passed, earliest first.
    pub(super) fn fire(&mut self, now: Instant) {
        while let Some(due) =
            self.pending.first_entry().filter(|e| e.key().0 <= now)
        {
            due.remove().wake();
        }
    }
}

// ANCHOR: sleep
/// A future that is ready at a point in time (`None`: never).
#[derive(Debug)]
pub struct Sleep {
    at: Option<Instant>,
    key: Option<Key>,
}

/// Ready after `duration`. A duration too long for the clock never ends.
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now().checked_add(duration))
}

/// Ready at `at`; never if `at` is `None`.
pub fn sleep_until(at: Option<Instant>) -> Sleep {
    Sleep { at, key: None }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some(at) = this.at else {
            return Poll::Pending; // nobody will ever wake us: as promised
        };
        if Instant::now() >= at {
            this.cancel();
            return Poll::Ready(());
        }
        with_core(|core| {
            let mut timers = core.timers.borrow_mut();
            // Our entry, still pending (perhaps for an earlier time, see
            // `reset`): make sure it wakes this poll's task (`clone_from`
            // clones only if the waker kept wakes another).
            if let Some(waker) =
                this.key.and_then(|k| timers.pending.get_mut(&k))
            {
                waker.clone_from(cx.waker());
            } else {
                timers.last += 1;
                let key = (at, timers.last);
                timers.pending.insert(key, cx.waker().clone());
                this.key = Some(key);
            }
        });
        Poll::Pending
    }
}

impl Sleep {
    /// Moves the deadline to `at`. An entry already in the table for an
    /// earlier time is kept: it wakes the task early, once, and that
    /// poll registers the new time. An idle deadline moves later at
    /// every message, and this way it costs no change to the table.
    pub fn reset(&mut self, at: Option<Instant>) {
        let earlier = |(old, _): Key| at.is_some_and(|at| old <= at);
        if !self.key.is_some_and(earlier) {
            self.cancel();
        }
        self.at = at;
    }

    fn cancel(&mut self) {
        if let Some(key) = self.key.take() {
            with_core(|core| core.timers.borrow_mut().pending.remove(&key));
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel();
    }
}
// ANCHOR_END: sleep

// ANCHOR: race
/// Which of two futures finished first.
#[derive(Debug)]
pub enum Either<A, B> {
    /// The first.
    Left(A),
    /// The second.
    Right(B),
}

/// The future of [`race`].
///
/// A struct, not an `async fn`: an `async fn` keeps its arguments in its
/// first state and then again where its body moves them, so each layer of
/// combinators written that way would double what it wraps.
#[derive(Debug)]
pub struct Race<A, B> {
    a: A,
    b: B,
}

/// Polls `a` and `b` until one is ready; the other is dropped with the
/// race. `a` goes first at every poll, so when both are ready, `a` wins.
pub fn race<A: Future, B: Future>(a: A, b: B) -> Race<A, B> {
    Race { a, b }
}

impl<A: Future, B: Future> Future for Race<A, B> {
    type Output = Either<A::Output, B::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: pin projection. `a` and `b` live inside the pinned race
        // and are never moved out of it: this is the only code that
        // reaches them, `Race` has no `Drop`, and it is `Unpin` only when
        // both are.
        let (a, b) = unsafe {
            let this = self.get_unchecked_mut();
            (
                Pin::new_unchecked(&mut this.a),
                Pin::new_unchecked(&mut this.b),
            )
        };
        if let Poll::Ready(out) = a.poll(cx) {
            return Poll::Ready(Either::Left(out));
        }
        b.poll(cx).map(Either::Right)
    }
}

/// The deadline of [`timeout`] passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// The future of [`timeout`]: `race` with a sleep, and the answer as a
/// `Result`.
#[derive(Debug)]
pub struct Timeout<F>(Race<F, Sleep>);

/// Runs `future` for at most `limit` (`None`: no limit); it resolves to
/// [`Elapsed`] if the limit came first, and `future` is dropped then.
pub fn timeout<F: Future>(limit: Option<Duration>, future: F) -> Timeout<F> {
    let at = limit.and_then(|limit| Instant::now().checked_add(limit));
    timeout_at(at, future)
}

/// Runs `future` until `at` at the latest (`None`: no limit), like
/// [`timeout`].
pub fn timeout_at<F: Future>(at: Option<Instant>, future: F) -> Timeout<F> {
    Timeout(race(future, sleep_until(at)))
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: pin projection to the one field, which is never moved
        // out (no `Drop`, and `Unpin` only if the race is).
        let race = unsafe { self.map_unchecked_mut(|this| &mut this.0) };
        race.poll(cx).map(|won| match won {
            Either::Left(out) => Ok(out),
            Either::Right(()) => Err(Elapsed),
        })
    }
}
// ANCHOR_END: race
