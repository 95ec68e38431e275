//! The poller: one question - which of these descriptors are ready? -
//! asked of the kernel in one of two ways, chosen with `--poller`.
//!
//! - [`poll`]: poll(2) takes an array of every descriptor we watch, on
//!   every call. The kernel checks each one and writes the answer back
//!   into the array, which we then scan. A wait costs what is registered.
//! - [`epoll`]: epoll(7) keeps the list in the kernel, changed one
//!   descriptor at a time, and a wait hands back only what is ready. A
//!   wait costs what is ready, which is what lets one thread watch 10,000
//!   mostly idle sockets.
//!
//! Both are *level-triggered*: a descriptor is reported on every wait for
//! as long as it is ready (unread input, room to write), not just once
//! when it becomes ready. The chapter explains why, and what goes wrong
//! with edge-triggered notification. Everything above this module - the
//! connections, the timers, the shutdown - is the same code for both.

pub mod epoll;
pub mod poll;

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use protocol::PollerKind;

/// Names a registered descriptor: the poller hands it back with each
/// event.
pub type Token = u64;

/// What we want to hear about for one descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    /// Input (or a connection, or end of stream) is waiting.
    pub read: bool,
    /// The socket has room in its send buffer.
    pub write: bool,
}

impl Interest {
    /// Nothing at all: registered, but silent.
    pub const NONE: Interest = Interest {
        read: false,
        write: false,
    };
    /// Only input.
    pub const READ: Interest = Interest {
        read: true,
        write: false,
    };
}

/// One readiness report from [`Poller::wait`].
///
/// Room to write needs no field: whatever the poller reports for a
/// connection, its handler ends by writing as much of its pending output
/// as the socket takes.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// The token the descriptor was registered with.
    pub token: Token,
    /// Input, a pending connection, or end of stream.
    pub readable: bool,
    /// An error or a hang-up (or, from poll, a descriptor that is not
    /// open). The kernel reports these whatever the interest, so a
    /// connection must react even when it is not reading.
    pub failed: bool,
}

/// A readiness backend, epoll or poll: the same four operations.
#[derive(Debug)]
pub enum Poller {
    /// The kernel keeps the interest list.
    Epoll(epoll::Epoll),
    /// We keep the list and hand it over on every wait.
    Poll(poll::Poll),
}

impl Poller {
    /// A new, empty poller of the given kind.
    ///
    /// # Errors
    ///
    /// When the process is out of descriptors or memory (epoll).
    pub fn new(kind: PollerKind) -> io::Result<Poller> {
        Ok(match kind {
            PollerKind::Epoll => Poller::Epoll(epoll::Epoll::new()?),
            PollerKind::Poll => Poller::Poll(poll::Poll::new()),
        })
    }

    /// Starts watching `fd` for `interest`, reporting it as `token`.
    ///
    /// # Errors
    ///
    /// If `token` is already registered, or the kernel refuses (epoll:
    /// ENOMEM, or ENOSPC past `/proc/sys/fs/epoll/max_user_watches`).
    pub fn add(
        &mut self,
        fd: impl AsFd,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Poller::Epoll(epoll) => epoll.add(fd, token, interest),
            Poller::Poll(poll) => poll.add(fd, token, interest),
        }
    }

    /// Like [`add`](Poller::add), with EPOLLEXCLUSIVE: when `fd` is on
    /// the interest lists of several epoll instances, an event wakes one
    /// of their waiters (or a few), not all. Chapter 7 registers one
    /// listener this way in the epoll of each of its loops.
    ///
    /// # Errors
    ///
    /// As `add`; and `Unsupported` from poll(2), which has no such flag.
    pub fn add_exclusive(
        &mut self,
        fd: impl AsFd,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Poller::Epoll(epoll) => epoll.add_exclusive(fd, token, interest),
            Poller::Poll(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "poll(2) has no exclusive wakeups",
            )),
        }
    }

    /// Changes what `fd` is watched for. [`Interest::NONE`] keeps it
    /// registered but silent (errors and hang-ups are still reported).
    ///
    /// # Errors
    ///
    /// If `token` was never added (ENOENT).
    pub fn modify(
        &mut self,
        fd: impl AsFd,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Poller::Epoll(epoll) => epoll.modify(fd, token, interest),
            Poller::Poll(poll) => poll.modify(token, interest),
        }
    }

    /// Stops watching `token`'s descriptor. Call it before closing the
    /// descriptor: poll would otherwise report the closed number as
    /// invalid on every wait, or watch whatever file reuses it next.
    pub fn delete(&mut self, token: Token) {
        match self {
            // Closing a socket's last descriptor takes it off every epoll
            // interest list, and we never duplicate descriptors: no
            // system call needed.
            Poller::Epoll(_) => {}
            Poller::Poll(poll) => poll.delete(token),
        }
    }

    /// Stops watching `fd` now, with a system call even for epoll. Use it
    /// instead of [`delete`](Poller::delete) for a descriptor whose file
    /// stays open elsewhere after we close ours (chapter 7's loops each
    /// hold a duplicate of one listener): epoll drops a registration only
    /// when the file's last descriptor closes, so it would go on
    /// reporting the listener to a loop that no longer has it.
    ///
    /// # Errors
    ///
    /// If `fd` is not registered (epoll: ENOENT).
    pub fn remove(&mut self, fd: impl AsFd, token: Token) -> io::Result<()> {
        match self {
            Poller::Epoll(epoll) => epoll.remove(fd, token),
            Poller::Poll(poll) => {
                poll.delete(token);
                Ok(())
            }
        }
    }

    /// Sleeps until a registered descriptor is ready or `timeout` passes
    /// (`None`: no limit), and fills `events` with what is ready.
    ///
    /// # Errors
    ///
    /// Only real failures of the wait; a signal interrupting it (EINTR)
    /// is reported as zero events.
    pub fn wait(
        &mut self,
        events: &mut Events,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        events.list.clear();
        match self {
            Poller::Epoll(epoll) => epoll.wait(events, timeout),
            Poller::Poll(poll) => poll.wait(events, timeout),
        }
    }
}

/// Room for the events of one wait, allocated once and reused.
#[derive(Debug)]
pub struct Events {
    list: Vec<Event>,
    capacity: usize,
}

impl Events {
    /// Room for up to `capacity` events per wait. More ready descriptors
    /// than that are not lost: the next wait reports them.
    pub fn with_capacity(capacity: usize) -> Events {
        Events {
            list: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// The events of the last wait.
    pub fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        self.list.iter().copied()
    }
}

/// A wait's timeout in whole milliseconds, as both system calls take it:
/// -1 for none, at most `i32::MAX`. Rounded up: waking a millisecond
/// early would find the timer not yet due and wait again with a zero
/// timeout, a short spin.
fn timeout_ms(timeout: Option<Duration>) -> i32 {
    timeout.map_or(-1, |t| {
        i32::try_from(t.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
    })
}
