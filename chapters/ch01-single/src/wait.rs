//! Waiting the blocking way, without going deaf to the shutdown switch:
//! one `poll` on the descriptor we wait for and on the switch at once.
//!
//! Chapter 1 waits for a client and for its bytes; chapters 2 and 3 wait
//! the same way in each worker, and chapter 2's master uses
//! [`poll_timeout`] for its own deadlines.

use std::io;
use std::os::fd::AsFd;
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use protocol::Shutdown;

/// What a wait ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The descriptor is readable (data, a connection, or end of stream).
    Ready,
    /// The shutdown switch is on.
    Shutdown,
    /// The deadline passed first.
    TimedOut,
}

/// Blocks until `fd` is readable, `shutdown` is triggered, or `deadline`
/// passes (never, if `None`). When both the switch and `fd` are ready,
/// says [`Wait::Shutdown`]: stop reading.
///
/// # Errors
///
/// Only `poll` failures other than EINTR (which is retried).
pub fn wait_readable(
    fd: &impl AsFd,
    shutdown: &Shutdown,
    deadline: Option<Instant>,
) -> io::Result<Wait> {
    wait_for(fd, PollFlags::POLLIN, shutdown, deadline)
}

/// Blocks until `fd` has room to write, `shutdown` is triggered, or
/// `deadline` passes. When both the switch and `fd` are ready, says
/// [`Wait::Ready`]: an ack that can be sent is sent, shutdown or not.
pub(crate) fn wait_writable(
    fd: &impl AsFd,
    shutdown: &Shutdown,
    deadline: Option<Instant>,
) -> io::Result<Wait> {
    wait_for(fd, PollFlags::POLLOUT, shutdown, deadline)
}

/// [`wait_readable`] and [`wait_writable`]: waits for `fd` to be ready
/// for `interest`.
fn wait_for(
    fd: &impl AsFd,
    interest: PollFlags,
    shutdown: &Shutdown,
    deadline: Option<Instant>,
) -> io::Result<Wait> {
    let writing = interest.contains(PollFlags::POLLOUT);
    loop {
        let timeout = poll_timeout(deadline);
        let mut fds = [
            PollFd::new(shutdown.as_fd(), PollFlags::POLLIN),
            PollFd::new(fd.as_fd(), interest),
        ];
        match poll(&mut fds, timeout) {
            Ok(0) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(Wait::TimedOut);
                }
            }
            Ok(_) => {
                let ready =
                    |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
                if writing && ready(&fds[1]) {
                    return Ok(Wait::Ready);
                }
                if ready(&fds[0]) {
                    return Ok(Wait::Shutdown);
                }
                if ready(&fds[1]) {
                    return Ok(Wait::Ready);
                }
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// The `poll` timeout that ends at `deadline` (never, if `None`), rounded
/// up to the next millisecond so that we never wake a millisecond early
/// and spin; computed afresh before every `poll`, so a retried one waits
/// only what is left.
pub fn poll_timeout(deadline: Option<Instant>) -> PollTimeout {
    let Some(deadline) = deadline else {
        return PollTimeout::NONE;
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let ms = left.as_micros().div_ceil(1000);
    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
}
