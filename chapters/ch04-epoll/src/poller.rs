//! The poller: a thin, safe face on epoll.
//!
//! epoll is three system calls. `epoll_create1` makes an *interest list* in
//! the kernel; `epoll_ctl` adds, changes or removes a descriptor on it, with
//! the events we care about and a 64-bit *token* of our choosing;
//! `epoll_wait` sleeps until some of those descriptors are ready and hands
//! back their tokens. The cost of a wait does not grow with the number of
//! registered descriptors, only with the number that are ready: that is
//! what lets one thread watch 10,000 sockets (poll and select copy and scan
//! the whole list on every call).
//!
//! We use *level-triggered* notification: a descriptor is reported on every
//! wait for as long as it is ready (unread input, room to write), not just
//! once when it becomes ready. The chapter explains why, and what goes wrong
//! with edge-triggered notification.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::epoll::{
    Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout,
};

/// Names a registered descriptor: epoll hands it back with each event.
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

    fn flags(self) -> EpollFlags {
        let mut flags = EpollFlags::empty();
        if self.read {
            flags |= EpollFlags::EPOLLIN;
        }
        if self.write {
            flags |= EpollFlags::EPOLLOUT;
        }
        flags
    }
}

/// One readiness report from [`Poller::wait`].
///
/// Room to write needs no field: whatever epoll reports for a
/// connection, its handler ends by writing as much of its pending output
/// as the socket takes.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// The token the descriptor was registered with.
    pub token: Token,
    /// Input, a pending connection, or end of stream.
    pub readable: bool,
    /// An error or a hang-up. The kernel reports these whatever the
    /// interest, so a connection must react even when it is not reading.
    pub failed: bool,
}

/// An epoll instance.
#[derive(Debug)]
pub struct Poller {
    epoll: Epoll,
}

impl Poller {
    /// A new, empty interest list.
    ///
    /// # Errors
    ///
    /// When the process is out of descriptors or memory.
    pub fn new() -> io::Result<Poller> {
        // CLOEXEC: a child process started later must not inherit it.
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        Ok(Poller { epoll })
    }

    /// Starts watching `fd` for `interest`, reporting it as `token`.
    ///
    /// # Errors
    ///
    /// `epoll_ctl` failures, e.g. ENOMEM, or ENOSPC past
    /// `/proc/sys/fs/epoll/max_user_watches`.
    pub fn add(
        &self,
        fd: impl AsFd,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        let event = EpollEvent::new(interest.flags(), token);
        Ok(self.epoll.add(fd, event)?)
    }

    /// Changes what `fd` is watched for. [`Interest::NONE`] keeps it
    /// registered but silent (errors and hang-ups are still reported).
    ///
    /// # Errors
    ///
    /// `epoll_ctl` failures, e.g. ENOENT if `fd` was never added.
    pub fn modify(
        &self,
        fd: impl AsFd,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        let mut event = EpollEvent::new(interest.flags(), token);
        Ok(self.epoll.modify(fd, &mut event)?)
    }

    // There is no `delete`: closing a socket's last descriptor removes it
    // from every epoll interest list, and we never duplicate descriptors.
    // That saves one system call per connection.

    // ANCHOR: wait
    /// Sleeps until a registered descriptor is ready or `timeout` passes
    /// (`None`: no limit), and fills `events` with what is ready.
    ///
    /// # Errors
    ///
    /// Only real `epoll_wait` failures; a signal interrupting the wait
    /// (EINTR) is reported as zero events.
    pub fn wait(
        &self,
        events: &mut Events,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let timeout = match timeout {
            None => EpollTimeout::NONE,
            // Round up: waking a millisecond early would find the timer
            // not yet due and wait again with a zero timeout, a short spin.
            Some(t) => EpollTimeout::try_from(t.as_micros().div_ceil(1000))
                .unwrap_or(EpollTimeout::MAX),
        };
        events.len = match self.epoll.wait(&mut events.buffer, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        Ok(())
    }
    // ANCHOR_END: wait
}

/// Room for the events of one wait, allocated once and reused.
#[derive(Debug)]
pub struct Events {
    buffer: Vec<EpollEvent>,
    len: usize,
}

impl Events {
    /// Room for up to `capacity` events per wait. More ready descriptors
    /// than that are not lost: the next wait reports them.
    pub fn with_capacity(capacity: usize) -> Events {
        Events {
            buffer: vec![EpollEvent::empty(); capacity],
            len: 0,
        }
    }

    /// The events of the last wait.
    pub fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        self.buffer[..self.len].iter().map(|e| {
            let flags = e.events();
            Event {
                token: e.data(),
                readable: flags.contains(EpollFlags::EPOLLIN),
                failed: flags
                    .intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP),
            }
        })
    }
}
