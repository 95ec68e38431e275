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
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use signal_hook::SigId;

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

    /// The process's switch, which SIGINT and SIGTERM trigger.
    ///
    /// Every call in one process returns the same switch, so that
    /// [`cli`](crate::cli) can install the handlers *before* it prints
    /// `listening on`, and a signal sent the moment that line appears is
    /// caught, not fatal; the model's own call, later, finds the switch
    /// already on. A process forked from one that had a switch (a prefork
    /// worker) gets a switch of its own, and the handlers it inherited,
    /// which would trigger its parent's, are removed.
    ///
    /// # Errors
    ///
    /// When the pair cannot be created or the handlers installed.
    pub fn on_signals() -> io::Result<Shutdown> {
        let mut process =
            PROCESS.lock().unwrap_or_else(PoisonError::into_inner);
        let pid = std::process::id();
        if let Some(current) = process.as_ref().filter(|p| p.pid == pid) {
            return Ok(current.shutdown.clone());
        }
        let shutdown = Shutdown::new()?;
        let mut handlers = Vec::new();
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // signal-hook's handler does only `send` on the descriptor,
            // which is async-signal-safe.
            let write = shutdown.inner.write.try_clone()?;
            handlers
                .push(signal_hook::low_level::pipe::register(signal, write)?);
        }
        // Only now that ours are in place (no moment without a handler):
        // the parent's, inherited through fork.
        if let Some(inherited) = process.take() {
            for id in inherited.handlers {
                signal_hook::low_level::unregister(id);
            }
        }
        *process = Some(Registered {
            pid,
            shutdown: shutdown.clone(),
            handlers,
        });
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

/// The switch [`Shutdown::on_signals`] gave this process, if any.
static PROCESS: Mutex<Option<Registered>> = Mutex::new(None);

/// A switch with its signal handlers, and the process they belong to.
#[derive(Debug)]
struct Registered {
    pid: u32,
    shutdown: Shutdown,
    handlers: Vec<SigId>,
}

impl AsFd for Shutdown {
    /// The descriptor that becomes readable when the switch is on.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.read.as_fd()
    }
}
