//! The epoll backend: three system calls. `epoll_create1` makes an
//! *interest list* in the kernel; `epoll_ctl` adds, changes or removes a
//! descriptor on it, with the events we care about and a 64-bit *token*
//! of our choosing; `epoll_wait` sleeps until some of those descriptors
//! are ready and hands back their tokens. The cost of a wait does not
//! grow with the number of registered descriptors, only with the number
//! that are ready.

use std::collections::HashSet;
use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::epoll::{
    self, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout,
};

use super::{timeout_ms, Event, Events, Interest, Token};

/// An epoll instance, and room for what one wait hands back.
#[derive(Debug)]
pub struct Epoll {
    epoll: epoll::Epoll,
    buffer: Vec<EpollEvent>,
    /// Tokens registered with EPOLLEXCLUSIVE, which the kernel lets us
    /// set only when adding: changing their interest takes a delete and
    /// an add.
    exclusive: HashSet<Token>,
}

impl Epoll {
    /// A new, empty interest list.
    ///
    /// # Errors
    ///
    /// When the process is out of descriptors or memory.
    pub fn new() -> io::Result<Epoll> {
        // CLOEXEC: a child process started later must not inherit it.
        let epoll = epoll::Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        Ok(Epoll {
            epoll,
            buffer: Vec::new(),
            exclusive: HashSet::new(),
        })
    }

    /// See [`Poller::add`](super::Poller::add).
    ///
    /// # Errors
    ///
    /// `epoll_ctl` failures.
    pub fn add(
        &self,
        fd: impl AsFd,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        let event = EpollEvent::new(flags(interest), token);
        Ok(self.epoll.add(fd, event)?)
    }

    /// See [`Poller::add_exclusive`](super::Poller::add_exclusive).
    ///
    /// # Errors
    ///
    /// `epoll_ctl` failures.
    pub fn add_exclusive(
        &mut self,
        fd: impl AsFd,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        let flags = flags(interest) | EpollFlags::EPOLLEXCLUSIVE;
        self.epoll.add(fd, EpollEvent::new(flags, token))?;
        self.exclusive.insert(token);
        Ok(())
    }

    /// See [`Poller::modify`](super::Poller::modify).
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
        if self.exclusive.contains(&token) {
            // EPOLL_CTL_MOD refuses an exclusive registration (EINVAL).
            // ENOENT: an earlier add here failed, and the delete is done.
            match self.epoll.delete(fd.as_fd()) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(e.into()),
            }
            let flags = flags(interest) | EpollFlags::EPOLLEXCLUSIVE;
            return Ok(self.epoll.add(fd, EpollEvent::new(flags, token))?);
        }
        let mut event = EpollEvent::new(flags(interest), token);
        Ok(self.epoll.modify(fd, &mut event)?)
    }

    /// See [`Poller::remove`](super::Poller::remove).
    ///
    /// # Errors
    ///
    /// `epoll_ctl` failures, e.g. ENOENT if `fd` was never added.
    pub fn remove(&mut self, fd: impl AsFd, token: Token) -> io::Result<()> {
        self.exclusive.remove(&token);
        Ok(self.epoll.delete(fd)?)
    }

    // ANCHOR: wait
    /// Sleeps until a registered descriptor is ready or `timeout` passes,
    /// and puts what is ready in `events`: the kernel hands back only
    /// the ready descriptors, however many are registered.
    ///
    /// # Errors
    ///
    /// Only real `epoll_wait` failures; EINTR is zero events.
    pub fn wait(
        &mut self,
        events: &mut Events,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        self.buffer.resize(events.capacity, EpollEvent::empty());
        let timeout = EpollTimeout::try_from(timeout_ms(timeout))
            .unwrap_or(EpollTimeout::NONE);
        let ready = match self.epoll.wait(&mut self.buffer, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        events.list.extend(self.buffer[..ready].iter().map(|e| {
            let flags = e.events();
            Event {
                token: e.data(),
                readable: flags.contains(EpollFlags::EPOLLIN),
                failed: flags
                    .intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP),
            }
        }));
        Ok(())
    }
    // ANCHOR_END: wait
}

fn flags(interest: Interest) -> EpollFlags {
    let mut flags = EpollFlags::empty();
    if interest.read {
        flags |= EpollFlags::EPOLLIN;
    }
    if interest.write {
        flags |= EpollFlags::EPOLLOUT;
    }
    flags
}
