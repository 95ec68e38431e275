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
//!
//! The same call makes the other signals an operator is likely to send -
//! SIGHUP (a closed terminal, or "reload"), SIGUSR1, SIGUSR2 - harmless:
//! their default action kills the process, acks in flight and all, so
//! each gets a handler that logs one line and carries on
//! ([`NOTED_SIGNALS`]). A model that has a use for one of them takes it
//! over with [`Shutdown::claim`] (prefork rotates its workers on SIGHUP).

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use signal_hook::SigId;

use crate::cli::context;
use crate::log;

/// The signals that stop a server.
const STOP_SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

/// The signals a server notes in its log and otherwise ignores, unless
/// it claims one ([`Shutdown::claim`]).
pub const NOTED_SIGNALS: [libc::c_int; 3] =
    [libc::SIGHUP, libc::SIGUSR1, libc::SIGUSR2];

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
    /// The signal handlers installed with this switch (those that write
    /// to `write`, those that log a noted signal, and claimed ones), by
    /// signal. They stay installed for the life of the process (see
    /// [`Shutdown::on_signals`]). A lock, because [`Shutdown::claim`]
    /// swaps one; never held while a signal handler could need it (the
    /// handlers do not look at it).
    handlers: Mutex<Vec<Handler>>,
}

/// One installed signal handler.
#[derive(Debug)]
struct Handler {
    signal: libc::c_int,
    /// Whether it is the one that logs a noted signal and ignores it.
    noted: bool,
    id: SigId,
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

    /// A new switch that SIGINT and SIGTERM turn on; SIGHUP, SIGUSR1 and
    /// SIGUSR2 ([`NOTED_SIGNALS`]) each log one event line, such as
    /// `SIGHUP received: ignored`, and change nothing else.
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
    /// sent to *this* process turn on instead of `self`. The noted
    /// signals are logged and ignored again, even one that the parent
    /// claimed ([`Shutdown::claim`]): a claim is the parent's own.
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
        for Handler { id, .. } in self.inner.handlers().drain(..) {
            // Removes the handler from this process only: after fork, the
            // handler table is this process's own copy.
            signal_hook::low_level::unregister(id);
        }
        Ok(own)
    }

    /// Takes `signal`, one of [`NOTED_SIGNALS`], over from the handler
    /// that logs and ignores it: from now on it turns `into` on, like
    /// SIGINT and SIGTERM turn this switch on, and nothing is logged. (A
    /// prefork worker retires on SIGHUP this way: it stops taking clients
    /// and finishes the one it has.)
    ///
    /// The new handler goes in before the old one comes out, so a signal
    /// in between is never fatal; it may be logged and counted both.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a signal that is not noted (SIGINT and SIGTERM
    /// belong to the switch) or was claimed already; otherwise when the
    /// handler cannot be installed.
    pub fn claim(
        &self,
        signal: libc::c_int,
        into: &Shutdown,
    ) -> io::Result<()> {
        let mut handlers = self.inner.handlers();
        let noted = handlers.iter().position(|h| h.noted && h.signal == signal);
        let Some(noted) = noted else {
            let e = io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a noted signal, or claimed already",
            );
            return Err(context("cannot claim the signal", e));
        };
        // Non-blocking, like every switch's write end: a full buffer must
        // not block the handler.
        let write = into.inner.write.try_clone()?;
        let id = signal_hook::low_level::pipe::register(signal, write)?;
        let old = handlers.swap_remove(noted);
        handlers.push(Handler {
            signal,
            noted: false,
            id,
        });
        signal_hook::low_level::unregister(old.id);
        Ok(())
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

    /// Whether the switch is on, for a loop in the middle of a long batch
    /// of events: looks only if `every` has passed since `last` (when the
    /// batch began, or the last look), and then sets `last` to now. A loop
    /// learns of the switch at its next wait; a batch can take long (a
    /// flood of tiny pipelined messages), and the shutdown deadline counts
    /// from the signal. Looking is a system call, hence at most once per
    /// `every`.
    pub fn is_triggered_every(
        &self,
        last: &mut Instant,
        every: Duration,
    ) -> bool {
        if last.elapsed() < every {
            return false;
        }
        *last = Instant::now();
        self.is_triggered()
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
            handlers: Mutex::new(Vec::new()),
        })
    }

    /// Makes SIGINT and SIGTERM write a byte to this pair, and the noted
    /// signals log a line.
    fn install_handlers(self) -> io::Result<Pair> {
        let mut handlers = self.handlers();
        for signal in STOP_SIGNALS {
            // signal-hook's handler does only `send` on the descriptor,
            // which is async-signal-safe.
            let write = self.write.try_clone()?;
            let id = signal_hook::low_level::pipe::register(signal, write)?;
            handlers.push(Handler {
                signal,
                noted: false,
                id,
            });
        }
        for signal in NOTED_SIGNALS {
            let id = note(signal)?;
            handlers.push(Handler {
                signal,
                noted: true,
                id,
            });
        }
        drop(handlers);
        Ok(self)
    }

    /// The handler list. A panic while it was held left it whole (every
    /// change is one push or swap), so a poisoned lock is used as is.
    fn handlers(&self) -> std::sync::MutexGuard<'_, Vec<Handler>> {
        self.handlers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Installs the handler that logs `signal` and ignores it otherwise.
fn note(signal: libc::c_int) -> io::Result<SigId> {
    let name = signal_hook::low_level::signal_name(signal).unwrap_or("signal");
    let log = move || {
        log::write_event_from_signal_handler(format_args!(
            "{name} received: ignored"
        ));
    };
    // SAFETY: `register` requires an async-signal-safe action: `log`
    // formats into a stack buffer and writes with write(2), allocating
    // nothing and taking no lock (see `write_event_from_signal_handler`).
    unsafe { signal_hook::low_level::register(signal, log) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::{raise, Signal};

    const PATIENCE: Duration = Duration::from_secs(5);

    /// Held by each test that raises signals: every switch that
    /// `on_signals` made gets them, so tests running at once would turn
    /// on each other's.
    static RAISING: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn raising() -> std::sync::MutexGuard<'static, ()> {
        RAISING.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A switch made by `on_signals` turns on at SIGTERM; after
    /// `renew_after_fork` (here without a fork: the handler table is this
    /// process's either way), SIGINT turns on the new switch and no longer
    /// reaches the old one.
    #[test]
    fn signals_trigger_the_switch_and_renewing_moves_them() {
        let _serial = raising();
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

    /// SIGHUP, SIGUSR1 and SIGUSR2 no longer kill the process (this test
    /// would die), nor trigger the switch. A claimed SIGHUP turns the
    /// claimer's switch on instead; SIGINT cannot be claimed, nor SIGHUP
    /// twice.
    #[test]
    fn noted_signals_are_harmless_and_claimable() {
        let _serial = raising();
        let switch = Shutdown::on_signals().expect("handlers");
        for signal in [Signal::SIGHUP, Signal::SIGUSR1, Signal::SIGUSR2] {
            raise(signal).expect("raise");
        }
        assert!(!switch.wait(Duration::from_millis(100)), "switch on");

        let retire = Shutdown::new().expect("switch");
        switch.claim(libc::SIGHUP, &retire).expect("claim SIGHUP");
        assert!(switch.claim(libc::SIGHUP, &retire).is_err(), "twice");
        assert!(switch.claim(libc::SIGINT, &retire).is_err(), "SIGINT");
        raise(Signal::SIGHUP).expect("raise SIGHUP");
        assert!(retire.wait(PATIENCE), "SIGHUP missed the claimer");
        assert!(!switch.is_triggered(), "SIGHUP turned the switch on");
    }

    /// A plain switch is off until triggered, then stays on for every
    /// clone.
    /// A look within `every` of the last one says nothing, even with
    /// the switch on; a later one looks, and starts the next interval.
    #[test]
    fn a_long_batch_looks_once_per_interval() {
        let switch = Shutdown::new().expect("switch");
        switch.trigger();
        let hour = Duration::from_secs(3600);
        let mut last = Instant::now();
        assert!(!switch.is_triggered_every(&mut last, hour));
        let long_ago = Instant::now() - Duration::from_secs(1);
        let mut last = long_ago;
        let every = Duration::from_millis(10);
        assert!(switch.is_triggered_every(&mut last, every));
        assert!(last > long_ago, "the look starts the next interval");
    }

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
