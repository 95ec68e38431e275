//! The master's job: sleep until something happens, then keep N workers
//! alive, or shut them all down.
//!
//! This is the shape of Unicorn's master (and nginx's, and Apache's
//! prefork MPM). The master never touches a client. It blocks in one call
//! until a signal arrives, and there are only three it cares about:
//!
//! - SIGCHLD: a worker died. Reap it (`waitpid`), fork a replacement.
//! - SIGINT, SIGTERM: pass the signal on to every worker, wait for them to
//!   drain, exit.
//!
//! The signals are blocked and read from a `signalfd`, so they arrive as
//! data on a descriptor, in the master's own time. Once `serve` has
//! blocked them, no signal handler runs in the master (the ones `main`
//! installed with the shutdown switch cover only the moment before).

use std::collections::VecDeque;
use std::io;
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use ch01_single::wait::poll_timeout;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags};
use nix::sys::signal::{
    kill, signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal,
};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use protocol::{event, warn, Config, Shutdown};

use crate::spawn_worker;

/// How long past `--work-ms` the master waits for draining workers before
/// it kills them: a worker finishes the message it is working on, sends
/// its ack and closes (lingering up to half a second).
pub const DRAIN_GRACE: Duration = Duration::from_millis(900);

/// The window of the respawn limit: at most `--workers` replacements are
/// forked in any one window.
pub const RESPAWN_WINDOW: Duration = Duration::from_secs(1);

// ANCHOR: signals
/// SIGINT, SIGTERM and SIGCHLD, blocked and readable from a `signalfd`.
#[derive(Debug)]
pub struct Signals {
    fd: SignalFd,
    set: SigSet,
}

impl Signals {
    /// Blocks SIGINT, SIGTERM and SIGCHLD in this (single-threaded)
    /// process and opens a `signalfd` that receives them.
    ///
    /// # Errors
    ///
    /// If the signal mask or the `signalfd` cannot be set up.
    pub fn block() -> io::Result<Signals> {
        // If whoever started us ignored SIGCHLD, we inherited that, and the
        // kernel would reap dead workers itself and never tell us.
        // SAFETY: SIG_DFL installs no handler, so no code of ours can run
        // in signal context; there is nothing async-signal-unsafe to call.
        unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) }?;
        let mut set = SigSet::empty();
        for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGCHLD] {
            set.add(signal);
        }
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
        let flags = SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC;
        let fd = SignalFd::with_flags(&set, flags)?;
        Ok(Signals { fd, set })
    }

    /// Unblocks the signals again; a worker calls this after installing
    /// its own handlers. (The worker still holds a copy of the master's
    /// `signalfd`, but with nothing blocked no signal ever queues there.)
    ///
    /// # Errors
    ///
    /// If the signal mask cannot be changed.
    pub fn unblock(&self) -> io::Result<()> {
        sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&self.set), None)?;
        Ok(())
    }

    /// Sleeps until at least one signal arrives or `deadline` passes
    /// (never, if `None`), then returns every signal that has arrived.
    ///
    /// # Errors
    ///
    /// Only if `poll` or the `signalfd` read fails.
    pub fn wait(&self, deadline: Option<Instant>) -> io::Result<Vec<Signal>> {
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, poll_timeout(deadline)) {
            // With every signal we handle blocked, nothing interrupts poll;
            // EINTR would come from a stop and continue (SIGSTOP, SIGCONT).
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let mut arrived = Vec::new();
        // The descriptor is non-blocking: read until it is empty.
        while let Some(info) = self.fd.read_signal()? {
            let number = i32::try_from(info.ssi_signo).unwrap_or(0);
            if let Ok(signal) = Signal::try_from(number) {
                arrived.push(signal);
            }
        }
        Ok(arrived)
    }
}
// ANCHOR_END: signals

/// The master's state: the workers it has, and how many it owes.
#[derive(Debug)]
pub struct Supervisor<'a> {
    listener: &'a TcpListener,
    config: &'a Config,
    signals: Signals,
    /// The master's shutdown switch, which each worker trades for its own.
    shutdown: &'a Shutdown,
    workers: Vec<Pid>,
    /// Workers that died and are not replaced yet.
    missing: usize,
    limit: RespawnLimit,
}

impl<'a> Supervisor<'a> {
    /// A supervisor for `workers`, already forked by the caller.
    pub fn new(
        listener: &'a TcpListener,
        config: &'a Config,
        signals: Signals,
        shutdown: &'a Shutdown,
        workers: Vec<Pid>,
    ) -> Supervisor<'a> {
        let limit = RespawnLimit::new(workers.len().max(1), RESPAWN_WINDOW);
        Supervisor {
            listener,
            config,
            signals,
            shutdown,
            workers,
            missing: 0,
            limit,
        }
    }

    /// Supervises until SIGINT or SIGTERM, then shuts the workers down.
    ///
    /// # Errors
    ///
    /// If the signals cannot be read, waiting for children fails, or some
    /// workers had to be killed because they did not drain in time.
    pub fn run(mut self) -> io::Result<()> {
        let stop = self.supervise()?;
        self.drain(stop)
    }

    // ANCHOR: supervise
    /// Keeps the workers alive until a stop signal arrives; returns it.
    fn supervise(&mut self) -> io::Result<Signal> {
        loop {
            self.replace_missing();
            // Sleep until a signal comes. Only when the respawn limit holds
            // a replacement back is there a deadline to wake up for.
            let deadline = (self.missing > 0)
                .then(|| self.limit.next_allowed(Instant::now()));
            let arrived = self.signals.wait(deadline)?;
            // Reap first: a SIGCHLD may have come with (or been merged
            // into) any other signal, and reaping when none died is cheap.
            self.missing += self.reap()?.len();
            let stop = arrived
                .into_iter()
                .find(|s| matches!(s, Signal::SIGINT | Signal::SIGTERM));
            if let Some(stop) = stop {
                return Ok(stop);
            }
        }
    }
    // ANCHOR_END: supervise

    // ANCHOR: reap
    /// Collects every worker that has exited; returns their pids.
    ///
    /// Signals of one kind do not queue: five workers dying at once may
    /// raise one SIGCHLD. So we call `waitpid` until it says nobody else
    /// has exited, not once per signal.
    fn reap(&mut self) -> io::Result<Vec<Pid>> {
        let mut dead = Vec::new();
        loop {
            let (pid, how) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    (pid, format!("exited with status {code}"))
                }
                Ok(WaitStatus::Signaled(pid, signal, _)) => {
                    (pid, format!("was killed by {signal}"))
                }
                // Still running (StillAlive), or not a death at all.
                Ok(_) => return Ok(dead),
                // No children left at all.
                Err(Errno::ECHILD) => return Ok(dead),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            event!("worker {pid} {how}");
            self.workers.retain(|&w| w != pid);
            dead.push(pid);
        }
    }
    // ANCHOR_END: reap

    // ANCHOR: replace_missing
    /// Forks replacements for dead workers, as many as the limit allows.
    fn replace_missing(&mut self) {
        let mut held_back = false;
        while self.missing > 0 {
            let now = Instant::now();
            if self.limit.next_allowed(now) > now {
                held_back = true;
                break;
            }
            // A failed fork counts against the limit too, so that running
            // out of processes cannot turn into a busy loop of retries.
            self.limit.record(now);
            let forked = spawn_worker(
                self.listener,
                self.config,
                &self.signals,
                self.shutdown,
            );
            match forked {
                Ok(pid) => {
                    self.workers.push(pid);
                    self.missing -= 1;
                }
                Err(e) => warn!("cannot replace a worker: {e}"),
            }
        }
        if held_back {
            warn!(
                "workers are dying fast: {} not replaced yet, waiting",
                self.missing
            );
        }
    }
    // ANCHOR_END: replace_missing

    // ANCHOR: drain
    /// Forwards `stop` to every worker, then waits for them all to exit,
    /// for at most `--work-ms` plus [`DRAIN_GRACE`].
    fn drain(&mut self, stop: Signal) -> io::Result<()> {
        let count = self.workers.len();
        event!("{stop}: stopping {count} workers");
        for &pid in &self.workers {
            // These pids are safe to signal: a child's pid is not reused
            // until its parent reaps it, and we drop a pid when we reap.
            // An error can only mean it died a moment ago: reaped below.
            let _ = kill(pid, stop);
        }
        let deadline = Instant::now() + self.config.work().duration;
        let deadline = deadline + DRAIN_GRACE;
        loop {
            self.reap()?;
            if self.workers.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                break;
            }
            // A SIGCHLD, a repeated stop signal, or the deadline.
            self.signals.wait(Some(deadline))?;
        }
        let late = std::mem::take(&mut self.workers);
        for &pid in &late {
            warn!("worker {pid} did not drain in time; killing it");
            let _ = kill(pid, Signal::SIGKILL);
        }
        for &pid in &late {
            // SIGKILL cannot be caught: this wait is short.
            let _ = waitpid(pid, None);
        }
        Err(io::Error::other(format!(
            "{} workers did not drain in time and were killed",
            late.len()
        )))
    }
    // ANCHOR_END: drain
}

// ANCHOR: respawn_limit
/// At most `max` respawns in any `window`: a worker that crashes as soon
/// as it starts must not turn the master into a fork bomb.
///
/// With `max` = N and a window of one second, a single death is replaced
/// at once; even a crash loop waits at most one window per replacement.
#[derive(Debug)]
pub struct RespawnLimit {
    max: usize,
    window: Duration,
    /// When the recent respawns happened, oldest first.
    recent: VecDeque<Instant>,
}

impl RespawnLimit {
    /// A limit of `max` respawns per `window`.
    pub fn new(max: usize, window: Duration) -> RespawnLimit {
        RespawnLimit {
            max,
            window,
            recent: VecDeque::with_capacity(max),
        }
    }

    /// The earliest moment, at or after `now`, when a respawn is allowed.
    pub fn next_allowed(&mut self, now: Instant) -> Instant {
        while self.recent.front().is_some_and(|&t| t + self.window <= now) {
            self.recent.pop_front();
        }
        match self.recent.front() {
            Some(&oldest) if self.recent.len() >= self.max => {
                oldest + self.window
            }
            _ => now,
        }
    }

    /// Notes a respawn at `now`.
    pub fn record(&mut self, now: Instant) {
        self.recent.push_back(now);
    }
}
// ANCHOR_END: respawn_limit

#[cfg(test)]
mod tests {
    use super::*;

    /// A respawn limit of 2 per second lets two through at once, holds
    /// the third back until the first leaves the window, and never holds
    /// one back for longer than the window.
    #[test]
    fn respawn_limit_holds_back_a_crash_loop() {
        let second = Duration::from_secs(1);
        let mut limit = RespawnLimit::new(2, second);
        let t0 = Instant::now();
        assert_eq!(limit.next_allowed(t0), t0);
        limit.record(t0);
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(limit.next_allowed(t1), t1);
        limit.record(t1);
        let t2 = t0 + Duration::from_millis(200);
        assert_eq!(limit.next_allowed(t2), t0 + second);
        let t3 = t0 + second;
        assert_eq!(limit.next_allowed(t3), t3);
        limit.record(t3);
        let t4 = t3 + Duration::from_millis(1);
        assert_eq!(limit.next_allowed(t4), t1 + second);
        assert!(limit.next_allowed(t4) - t4 <= second);
    }
}
