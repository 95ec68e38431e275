//! The poll backend: one system call, poll(2), and a list we keep
//! ourselves. Each call hands the kernel an array with one `pollfd` per
//! watched descriptor - its number and the events we want - and the
//! kernel checks every entry, writes what it found into the entry's
//! `revents`, and returns how many entries have something. We then scan
//! the array for them. The kernel remembers nothing between calls, so a
//! wait costs in proportion to the descriptors *registered*, ready or
//! not: with 10,000 idle connections and one busy one, every message
//! pays for the 10,000.
//!
//! The array must stay in step with the registrations: an entry for each
//! live token, none for a closed descriptor. A map from token to index
//! makes add, modify and delete O(1); delete moves the last entry into
//! the hole.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::libc::{self, c_short, nfds_t, pollfd};

use super::{timeout_ms, Event, Events, Interest, Token};

/// The watched descriptors, as poll(2) takes them.
//
// nix's safe `PollFd` borrows its descriptor for a lifetime, which suits
// a set built for one call; ours lives as long as the loop and holds
// descriptors that the connections own, so we keep plain `pollfd`s and
// remove each before its descriptor closes.
#[derive(Debug, Default)]
pub struct Poll {
    /// The array handed to the kernel on every wait.
    fds: Vec<pollfd>,
    /// `tokens[i]` is the token of `fds[i]`.
    tokens: Vec<Token>,
    /// Where each token's entry is.
    index: HashMap<Token, usize>,
    /// Where the next scan of the array starts (see [`Poll::wait`]).
    start: usize,
}

impl Poll {
    /// An empty set: nothing is asked of the kernel until a wait.
    pub fn new() -> Poll {
        Poll::default()
    }

    /// See [`Poller::add`](super::Poller::add).
    ///
    /// # Errors
    ///
    /// EEXIST if `token` is already registered, as epoll would say for
    /// a descriptor added twice.
    pub fn add(
        &mut self,
        fd: impl AsFd,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        if self.index.contains_key(&token) {
            return Err(Errno::EEXIST.into());
        }
        self.index.insert(token, self.fds.len());
        self.fds.push(pollfd {
            fd: fd.as_fd().as_raw_fd(),
            events: events(interest),
            revents: 0,
        });
        self.tokens.push(token);
        Ok(())
    }

    /// See [`Poller::modify`](super::Poller::modify): only the entry's
    /// `events` change, and the next wait passes them to the kernel.
    ///
    /// # Errors
    ///
    /// ENOENT if `token` was never added.
    pub fn modify(
        &mut self,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        let &i = self.index.get(&token).ok_or(Errno::ENOENT)?;
        self.fds[i].events = events(interest);
        Ok(())
    }

    /// See [`Poller::delete`](super::Poller::delete). An unknown token
    /// is ignored: there is nothing to stop watching.
    pub fn delete(&mut self, token: Token) {
        let Some(i) = self.index.remove(&token) else {
            return;
        };
        self.fds.swap_remove(i);
        self.tokens.swap_remove(i);
        // The last entry now fills the hole (unless the hole was last).
        if let Some(&moved) = self.tokens.get(i) {
            self.index.insert(moved, i);
        }
    }

    // ANCHOR: wait
    /// Hands the kernel every watched descriptor, sleeps until one is
    /// ready or `timeout` passes, then scans the whole array for the
    /// entries the kernel marked.
    ///
    /// # Errors
    ///
    /// Only real poll(2) failures; EINTR is zero events.
    pub fn wait(
        &mut self,
        events: &mut Events,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        // A length as the kernel takes it: `nfds_t` is an unsigned long,
        // as wide as `usize` on Linux.
        let len = self.fds.len() as nfds_t;
        // SAFETY: the pointer and length describe `self.fds`, a live,
        // initialized array that nothing else touches during the call; the
        // kernel writes only the entries' `revents`.
        let ready = unsafe {
            libc::poll(self.fds.as_mut_ptr(), len, timeout_ms(timeout))
        };
        let mut left = match Errno::result(ready) {
            Ok(n) => n as usize,
            Err(Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        // The kernel returns a count, not a list: find the marked entries
        // by looking at each one. Start where the last full batch stopped,
        // so that with more ready descriptors than `events` holds, every
        // one gets its turn (epoll rotates its ready list the same way).
        let n = self.fds.len();
        let mut i = self.start.min(n);
        while left > 0 && events.list.len() < events.capacity {
            i = if i == n { 0 } else { i };
            let revents = self.fds[i].revents;
            if revents != 0 {
                left -= 1;
                events.list.push(event(self.tokens[i], revents));
            }
            i += 1;
        }
        self.start = i;
        Ok(())
    }
    // ANCHOR_END: wait
}

/// What to ask for: `interest` as poll's event bits.
fn events(interest: Interest) -> c_short {
    let mut bits = 0;
    if interest.read {
        bits |= libc::POLLIN;
    }
    if interest.write {
        bits |= libc::POLLOUT;
    }
    bits
}

/// What the kernel found: POLLERR and POLLHUP come whatever we asked
/// for, as with epoll, and POLLNVAL says the number is not an open
/// descriptor - a bug upstream, but a connection that ends is the right
/// answer to it, not a loop that spins on it.
fn event(token: Token, revents: c_short) -> Event {
    Event {
        token,
        readable: revents & libc::POLLIN != 0,
        failed: revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    fn ready(poll: &mut Poll, capacity: usize) -> Vec<Token> {
        let mut events = Events::with_capacity(capacity);
        poll.wait(&mut events, Some(Duration::ZERO)).expect("poll");
        let mut tokens: Vec<_> = events.iter().map(|e| e.token).collect();
        tokens.sort_unstable();
        tokens
    }

    /// Deleting from the middle moves the last entry into the hole and
    /// keeps every token pointing at its own descriptor.
    #[test]
    fn delete_keeps_the_array_in_step() {
        let pairs: Vec<_> =
            (0..4).map(|_| UnixStream::pair().expect("pair")).collect();
        let mut poll = Poll::new();
        for (token, (a, _)) in pairs.iter().enumerate() {
            poll.add(a, token as Token, Interest::READ).expect("add");
        }
        assert!(poll.add(&pairs[0].0, 0, Interest::READ).is_err());
        poll.delete(1);
        poll.delete(1); // a second time is harmless
        assert_eq!(poll.fds.len(), 3);
        for (token, (a, b)) in pairs.iter().enumerate() {
            (&*b).write_all(b"x").expect("write");
            let token = token as Token;
            if token == 1 {
                assert!(poll.modify(token, Interest::NONE).is_err());
            } else {
                let i = poll.index[&token];
                assert_eq!(poll.fds[i].fd, a.as_raw_fd());
            }
        }
        assert_eq!(ready(&mut poll, 16), [0, 2, 3]);
        poll.modify(2, Interest::NONE).expect("modify");
        assert_eq!(ready(&mut poll, 16), [0, 3]);
    }

    /// Level-triggered, like epoll: unread input is reported on every
    /// wait, and with more ready than one wait takes, the next waits
    /// report the others instead of the first ones again.
    #[test]
    fn every_ready_descriptor_gets_its_turn() {
        let pairs: Vec<_> =
            (0..5).map(|_| UnixStream::pair().expect("pair")).collect();
        let mut poll = Poll::new();
        for (token, (a, b)) in pairs.iter().enumerate() {
            poll.add(a, token as Token, Interest::READ).expect("add");
            (&*b).write_all(b"x").expect("write");
        }
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.extend(ready(&mut poll, 2));
        }
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, [0, 1, 2, 3, 4]);
    }

    /// A hang-up is reported even with no interest at all.
    #[test]
    fn hang_up_is_reported_without_interest() {
        let (a, b) = UnixStream::pair().expect("pair");
        let mut poll = Poll::new();
        poll.add(&a, 7, Interest::NONE).expect("add");
        assert!(ready(&mut poll, 4).is_empty());
        drop(b);
        let mut events = Events::with_capacity(4);
        poll.wait(&mut events, Some(Duration::ZERO)).expect("poll");
        let event = events.iter().next().expect("an event");
        assert!(event.failed && event.token == 7);
    }
}
