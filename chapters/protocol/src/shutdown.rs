//! The stop signal, as a file descriptor that blocking code can wait on.
//!
//! SIGINT or SIGTERM must stop a server that is blocked in `accept`, in
//! `read`, or between the two. A flag set by a signal handler is not enough:
//! a thread that checks the flag and then blocks can miss a signal that
//! lands between the check and the block. The classic answer is the
//! *self-pipe*: the handler writes a byte to a pipe, and every blocking wait
//! is a `poll` on both the real descriptor and the pipe's read end.
//!
//! Nobody ever reads the byte back, so once triggered the read end stays
//! readable for everyone: every thread that polls it wakes, now or later.
//!
//! A server's `main` installs the switch with [`Shutdown::on_signals`]
//! before it prints `listening on`, and hands it to the model's `serve`
//! as an argument: nothing reaches for a process-wide global, and a test
//! can hand `serve` a switch of its own and trigger it by hand.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use signal_hook::SigId;

use crate::cli::context;

/// The signals that stop a server.
const STOP_SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

/// A one-way "stop now" switch, shared by cloning.
#[derive(Debug, Clone)]
pub struct Shutdown {
    inner: Arc<Pair>,
}

#[derive(Debug)]
struct Pair {
    /// Readable once triggered; never read from.
    read: UnixStream,
    /// One byte written here triggers the switch.
    write: UnixStream,
    /// The signal handlers that write to `write`, if any. They stay
    /// installed for the life of the process (see [`Shutdown::on_signals`]).
    handlers: Vec<SigId>,
}

impl Shutdown {
    /// A new, untriggered switch that only [`Shutdown::trigger`] turns on.
    ///
    /// # Errors
    ///
    /// Creating the socket pair can fail when out of descriptors.
    pub fn new() -> io::Result<Shutdown> {
        Ok(Shutdown {
            inner: Arc::new(Pair::new()?),
        })
    }

    /// A new switch that SIGINT and SIGTERM turn on.
    ///
    /// Call it once per process, before printing `listening on`: from
    /// then on a signal is caught, never fatal, however early it comes.
    /// The handlers stay installed for the life of the process, even
    /// after the switch is dropped (a signal then does nothing).
    ///
    /// # Errors
    ///
    /// When the pair cannot be created or the handlers installed.
    pub fn on_signals() -> io::Result<Shutdown> {
        let pair = Pair::new()
            .and_then(Pair::install_handlers)
            .map_err(|e| context("cannot handle signals", e))?;
        Ok(Shutdown {
            inner: Arc::new(pair),
        })
    }

    /// In a process just forked from the one that installed `self` with
    /// [`Shutdown::on_signals`]: a new switch, which SIGINT and SIGTERM
    /// sent to *this* process turn on instead of `self`.
    ///
    /// A child inherits its parent's handlers, and the socket pair they
    /// write to is the same one in both processes: left alone, a signal
    /// to the child would trigger the parent's switch (and every sibling
    /// still watching it), and a signal to the parent would reach no
    /// child. The new handlers go in first and the inherited ones come
    /// out after, so there is no moment without a handler. Call this with
    /// the stop signals blocked, as a prefork worker does, and a signal
    /// sent since the fork waits for the new handlers.
    ///
    /// # Errors
    ///
    /// As [`Shutdown::on_signals`].
    pub fn renew_after_fork(&self) -> io::Result<Shutdown> {
        let own = Shutdown::on_signals()?;
        for &id in &self.inner.handlers {
            // Removes the handler from this process only: after fork, the
            // handler table is this process's own copy.
            signal_hook::low_level::unregister(id);
        }
        Ok(own)
    }

    /// Turns the switch on. Safe to call any number of times.
    pub fn trigger(&self) {
        // WouldBlock means the buffer is full of earlier triggers: fine.
        let _ = (&self.inner.write).write(&[1]);
    }

    /// Whether the switch is on, without waiting.
    pub fn is_triggered(&self) -> bool {
        self.wait(Duration::ZERO)
    }

    /// Waits up to `timeout` for the switch; true if it is on.
    pub fn wait(&self, timeout: Duration) -> bool {
        let timeout =
            PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.as_fd(), PollFlags::POLLIN)];
        // EINTR counts as "not yet": callers loop anyway.
        matches!(poll(&mut fds, timeout), Ok(n) if n > 0)
    }
}

impl AsFd for Shutdown {
    /// The descriptor that becomes readable when the switch is on.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.read.as_fd()
    }
}

impl Pair {
    /// A socket pair, with no handlers yet.
    fn new() -> io::Result<Pair> {
        let (read, write) = UnixStream::pair()?;
        // A full buffer after thousands of signals must not block the
        // handler; the switch is already on by then anyway.
        write.set_nonblocking(true)?;
        Ok(Pair {
            read,
            write,
            handlers: Vec::new(),
        })
    }

    /// Makes SIGINT and SIGTERM write a byte to this pair.
    fn install_handlers(mut self) -> io::Result<Pair> {
        for signal in STOP_SIGNALS {
            // signal-hook's handler does only `send` on the descriptor,
            // which is async-signal-safe.
            let write = self.write.try_clone()?;
            let id = signal_hook::low_level::pipe::register(signal, write)?;
            self.handlers.push(id);
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::{raise, Signal};

    const PATIENCE: Duration = Duration::from_secs(5);

    /// A switch made by `on_signals` turns on at SIGTERM; after
    /// `renew_after_fork` (here without a fork: the handler table is this
    /// process's either way), SIGINT turns on the new switch and no longer
    /// reaches the old one.
    #[test]
    fn signals_trigger_the_switch_and_renewing_moves_them() {
        let first = Shutdown::on_signals().expect("handlers");
        assert!(!first.is_triggered());
        raise(Signal::SIGTERM).expect("raise SIGTERM");
        assert!(first.wait(PATIENCE), "SIGTERM did not trigger the switch");

        let old = Shutdown::on_signals().expect("handlers");
        let renewed = old.renew_after_fork().expect("renewed handlers");
        raise(Signal::SIGINT).expect("raise SIGINT");
        assert!(renewed.wait(PATIENCE), "SIGINT missed the new switch");
        assert!(!old.is_triggered(), "the old switch still gets signals");
    }

    /// A plain switch is off until triggered, then stays on for every
    /// clone.
    #[test]
    fn trigger_turns_every_clone_on() {
        let switch = Shutdown::new().expect("switch");
        let clone = switch.clone();
        assert!(!clone.is_triggered());
        switch.trigger();
        switch.trigger();
        assert!(clone.is_triggered() && switch.is_triggered());
    }
}
