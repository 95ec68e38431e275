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

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

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
}

impl Shutdown {
    /// A new, untriggered switch.
    ///
    /// # Errors
    ///
    /// Creating the socket pair can fail when out of descriptors.
    pub fn new() -> io::Result<Shutdown> {
        let (read, write) = UnixStream::pair()?;
        // A full buffer after thousands of signals must not block the
        // handler; the switch is already on by then anyway.
        write.set_nonblocking(true)?;
        Ok(Shutdown {
            inner: Arc::new(Pair { read, write }),
        })
    }

    /// A switch that SIGINT and SIGTERM trigger.
    ///
    /// # Errors
    ///
    /// When the pair cannot be created or the handlers installed.
    pub fn on_signals() -> io::Result<Shutdown> {
        let shutdown = Shutdown::new()?;
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // signal-hook's handler does only `send` on the descriptor,
            // which is async-signal-safe.
            let write = shutdown.inner.write.try_clone()?;
            signal_hook::low_level::pipe::register(signal, write)?;
        }
        Ok(shutdown)
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
