//! The reactor: chapter 4's `Poller`, with wakers where chapter 4 had
//! connections.
//!
//! Each registered descriptor is a *source* with a token (its place in a
//! table) and up to three wakers: the task waiting to read, the one
//! waiting to write, and one watching for a reset. When `epoll_wait`
//! reports a token, the reactor wakes those wakers, and that is all it
//! does: what to read and what to do with it is the task's business.

use std::io;
use std::os::fd::AsFd;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ch04_epoll::poller::{Events, Interest, Poller, Token};
use protocol::PollerKind;

/// Events taken per wait, as in chapter 4.
const EVENTS_PER_WAIT: usize = 1024;

/// One registered descriptor.
struct Source {
    /// Shared with the I/O object, so the reactor can change what epoll
    /// watches for it without the task's help.
    fd: Rc<dyn AsFd>,
    /// What epoll watches it for now.
    armed: Interest,
    /// Input may be waiting: reported, and not yet read to exhaustion.
    readable: bool,
    /// Reset or hung up: reported whatever it was armed for.
    failed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
    watcher: Option<Waker>,
}

/// The table of sources, and the poller that watches them.
pub(super) struct Reactor {
    poller: Poller,
    sources: Vec<Option<Source>>,
    free: Vec<usize>,
    events: Events,
}

/// Which way a task waits.
#[derive(Clone, Copy)]
pub(super) enum Direction {
    Read,
    Write,
}

impl Reactor {
    pub(super) fn new() -> io::Result<Reactor> {
        Ok(Reactor {
            // Chapter 4's epoll backend; its poll(2) one would do too.
            poller: Poller::new(PollerKind::Epoll)?,
            sources: Vec::new(),
            free: Vec::new(),
            events: Events::with_capacity(EVENTS_PER_WAIT),
        })
    }

    /// Adds `fd`, watched for input from the start (a new connection is
    /// usually read at once), and presumed readable, so that the first
    /// read is tried before anyone waits.
    pub(super) fn register(&mut self, fd: Rc<dyn AsFd>) -> io::Result<usize> {
        let token = self.free.pop().unwrap_or(self.sources.len());
        self.poller.add(&*fd, token as Token, Interest::READ)?;
        let source = Some(Source {
            fd,
            armed: Interest::READ,
            readable: true,
            failed: false,
            reader: None,
            writer: None,
            watcher: None,
        });
        match self.sources.get_mut(token) {
            Some(slot) => *slot = source,
            None => self.sources.push(source),
        }
        Ok(token)
    }

    /// Forgets `token`, before its descriptor is closed (closing alone
    /// takes it off epoll's list, but not off poll's).
    pub(super) fn deregister(&mut self, token: usize) {
        self.poller.delete(token as Token);
        self.sources[token] = None;
        self.free.push(token);
    }

    // ANCHOR: poll_ready
    /// Ready if the source may be ready for `direction`; else keeps the
    /// waker, makes sure epoll watches for it, and returns `Pending`.
    ///
    /// Readiness for writing is never presumed: callers ask only after a
    /// write found the socket full.
    pub(super) fn poll_ready(
        &mut self,
        token: usize,
        direction: Direction,
        cx: &Context<'_>,
    ) -> Poll<io::Result<()>> {
        let Some(Some(source)) = self.sources.get_mut(token) else {
            unreachable!("an I/O object's token stays registered");
        };
        let mut want = source.armed;
        match direction {
            Direction::Read if source.readable || source.failed => {
                return Poll::Ready(Ok(()));
            }
            Direction::Read => {
                keep(&mut source.reader, cx);
                want.read = true;
            }
            Direction::Write => {
                keep(&mut source.writer, cx);
                want.write = true;
            }
        }
        if want != source.armed {
            self.poller.modify(&*source.fd, token as Token, want)?;
            source.armed = want;
        }
        Poll::Pending
    }
    // ANCHOR_END: poll_ready

    /// A read found nothing (or less than it asked for): the next one
    /// waits for epoll.
    pub(super) fn clear_readable(&mut self, token: usize) {
        self.source(token).readable = false;
    }

    /// Ready once the source failed (a reset, a hang-up); otherwise keeps
    /// the waker without arming anything, since epoll reports failures
    /// whatever a descriptor is armed for.
    pub(super) fn poll_failed(
        &mut self,
        token: usize,
        cx: &Context<'_>,
    ) -> Poll<()> {
        let source = self.source(token);
        if source.failed {
            return Poll::Ready(());
        }
        keep(&mut source.watcher, cx);
        Poll::Pending
    }

    // ANCHOR: wait
    /// Sleeps in `epoll_wait` for at most `timeout` (`None`: no limit),
    /// then wakes whoever waits for what was reported.
    pub(super) fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.poller.wait(&mut self.events, timeout)?;
        for event in self.events.iter() {
            let token = event.token as usize;
            // A source dropped since it was registered: nobody to wake.
            let Some(Some(source)) = self.sources.get_mut(token) else {
                continue;
            };
            source.readable |= event.readable || event.failed;
            source.failed |= event.failed;
            let reader = source.reader.take();
            let writer = source.writer.take();
            let watcher = source.watcher.take().filter(|_| event.failed);
            // Epoll is level-triggered: what nobody waits for would be
            // reported at every wait, a busy loop (a client that sends
            // while its task sleeps on the work). Stop watching for it;
            // the next task to wait arms it again.
            let want = Interest {
                read: source.armed.read
                    && (reader.is_some() || !event.readable),
                write: source.armed.write && writer.is_some(),
            };
            if want != source.armed {
                // On failure the interest stays as it was: one more
                // report, and another try.
                if self.poller.modify(&*source.fd, event.token, want).is_ok() {
                    source.armed = want;
                }
            }
            let wakers = [reader, writer, watcher];
            wakers.into_iter().flatten().for_each(Waker::wake);
        }
        Ok(())
    }
    // ANCHOR_END: wait

    fn source(&mut self, token: usize) -> &mut Source {
        self.sources[token]
            .as_mut()
            .expect("an I/O object's token stays registered until it drops")
    }
}

/// Stores the waker of `cx` in `slot`, unless the one there wakes the same
/// task (cloning a waker costs an atomic increment).
fn keep(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}
