//! The reactor: chapter 4's `Poller`, with wakers where chapter 4 had
//! connections.
//!
//! Each registered descriptor is a *source* with a token (its key in a
//! table) and up to three wakers: the task waiting to read, the one
//! waiting to write, and one watching for a reset. When `epoll_wait`
//! reports a token, the reactor wakes those wakers, and that is all it
//! does: what to read and what to do with it is the task's business.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ch04_epoll::poller::{Events, Interest, Poller, Token};
use protocol::PollerKind;

/// Events taken per wait, as in chapter 4.
const EVENTS_PER_WAIT: usize = 1024;

/// What a task waits for: the index of its flag in [`Source::ready`] and
/// of its waker in [`Source::waiting`].
#[derive(Clone, Copy)]
pub(super) enum Direction {
    Read,
    Write,
    Failure,
}

/// One registered descriptor.
struct Source {
    /// Shared with the I/O object, so the reactor can change what epoll
    /// watches for it without the task's help.
    fd: Rc<dyn AsFd>,
    /// What epoll watches it for now.
    armed: Interest,
    /// By [`Direction`]: may be ready to read, to write (presumed at
    /// first, then set by epoll's reports and cleared when a call finds
    /// `WouldBlock`), and failed (reset or hung up: epoll reports that
    /// whatever it watches for).
    ready: [bool; 3],
    /// The tasks waiting, by [`Direction`]: reader, writer, watcher.
    waiting: [Option<Waker>; 3],
}

/// The table of sources, and the poller that watches them.
pub(super) struct Reactor {
    poller: Poller,
    /// Sources by token. Tokens are never reused, so a report about a
    /// source dropped since finds nothing.
    sources: HashMap<usize, Source>,
    last_token: usize,
    events: Events,
}

impl Reactor {
    pub(super) fn new() -> io::Result<Reactor> {
        Ok(Reactor {
            // Chapter 4's epoll backend; its poll(2) one would do too.
            poller: Poller::new(PollerKind::Epoll)?,
            sources: HashMap::new(),
            last_token: 0,
            events: Events::with_capacity(EVENTS_PER_WAIT),
        })
    }

    /// Adds `fd`, watched for input from the start (a new connection is
    /// usually read at once), and presumed ready both ways, so that the
    /// first read or write is tried before anyone waits.
    pub(super) fn register(&mut self, fd: Rc<dyn AsFd>) -> io::Result<usize> {
        self.last_token += 1;
        let token = self.last_token;
        self.poller.add(&*fd, token as Token, Interest::READ)?;
        let source = Source {
            fd,
            armed: Interest::READ,
            ready: [true, true, false],
            waiting: Default::default(),
        };
        self.sources.insert(token, source);
        Ok(token)
    }

    /// Forgets `token`, before its descriptor is closed (closing alone
    /// takes it off epoll's list, but not off poll's).
    pub(super) fn deregister(&mut self, token: usize) {
        self.poller.delete(token as Token);
        self.sources.remove(&token);
    }

    // ANCHOR: poll_ready
    /// Ready if the source may be ready for `direction`, or has failed;
    /// else keeps the waker, makes sure epoll watches for it, and returns
    /// `Pending`.
    pub(super) fn poll_ready(
        &mut self,
        token: usize,
        direction: Direction,
        cx: &Context<'_>,
    ) -> Poll<io::Result<()>> {
        // An I/O object's token stays registered until the object drops.
        let source = self.sources.get_mut(&token).expect("registered");
        let failed = source.ready[Direction::Failure as usize];
        if source.ready[direction as usize] || failed {
            return Poll::Ready(Ok(()));
        }
        // Clones the waker only if the one kept wakes another task.
        let waiting = &mut source.waiting[direction as usize];
        waiting
            .get_or_insert_with(|| cx.waker().clone())
            .clone_from(cx.waker());
        let mut want = source.armed;
        match direction {
            Direction::Read => want.read = true,
            Direction::Write => want.write = true,
            Direction::Failure => {} // reported whatever is armed
        }
        if want != source.armed {
            self.poller.modify(&*source.fd, token as Token, want)?;
            source.armed = want;
        }
        Poll::Pending
    }
    // ANCHOR_END: poll_ready

    /// A call found `WouldBlock` (or a read came back short): the next
    /// one in that direction waits for epoll.
    pub(super) fn clear_ready(&mut self, token: usize, direction: Direction) {
        // An I/O object's token stays registered until the object drops.
        let source = self.sources.get_mut(&token).expect("registered");
        source.ready[direction as usize] = false;
    }

    // ANCHOR: wait
    /// Sleeps in `epoll_wait` for at most `timeout` (`None`: no limit),
    /// then wakes whoever waits for what was reported.
    pub(super) fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.poller.wait(&mut self.events, timeout)?;
        for event in self.events.iter() {
            let Some(source) = self.sources.get_mut(&(event.token as usize))
            else {
                continue; // dropped since: nobody to wake
            };
            let [reader, writer, watcher] = &mut source.waiting;
            let (reader, writer) = (reader.take(), writer.take());
            // The watcher waits for a failure only: any other report
            // leaves its waker in place.
            let watcher = watcher.take_if(|_| event.failed);
            let [readable, writable, failed] = &mut source.ready;
            *readable |= event.readable;
            // Epoll does not say which way: a woken writer tries again.
            *writable |= writer.is_some();
            *failed |= event.failed;
            // Epoll is level-triggered: what nobody waits for would be
            // reported at every wait, a busy loop (a client that sends
            // while its task sleeps on the work). Stop watching for it;
            // the next task to wait arms it again.
            let want = Interest {
                read: source.armed.read
                    && (reader.is_some() || !event.readable),
                write: source.armed.write && writer.is_some(),
            };
            // On failure the interest stays as it was: one more report,
            // and another try.
            if want != source.armed
                && self.poller.modify(&*source.fd, event.token, want).is_ok()
            {
                source.armed = want;
            }
            let wakers = [reader, writer, watcher];
            wakers.into_iter().flatten().for_each(Waker::wake);
        }
        Ok(())
    }
    // ANCHOR_END: wait
}
