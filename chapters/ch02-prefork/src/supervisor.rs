//! The master's job: sleep until something happens, then keep N workers
//! alive, or shut them all down.
//!
//! This is the shape of Unicorn's master (and nginx's, and Apache's
//! prefork MPM). The master never touches a client. It blocks in one call
//! until a signal arrives, and these are the ones it cares about:
//!
//! - SIGCHLD: a worker died. Reap it (`waitpid`), fork a replacement.
//! - SIGINT, SIGTERM: pass the signal on to every worker, wait for them to
//!   drain, exit. At any moment, even while the first workers are still
//!   being forked.
//! - SIGHUP: replace every worker, gracefully: each old one finishes the
//!   session it has and exits; new ones take over the listener at once.
//! - SIGUSR1, SIGUSR2: logged, and otherwise ignored (by default they
//!   would kill the process).
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
/// The signals the master takes from its `signalfd`.
const MASTER_SIGNALS: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGCHLD,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// The ones a worker unblocks again, once it has handlers for them.
/// SIGUSR1 and SIGUSR2 stay blocked in a worker: it has no use for them,
/// and a blocked signal stays pending and harmless instead of killing
/// the process (their default action), whoever sends it.
const WORKER_SIGNALS: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGCHLD,
    Signal::SIGHUP,
];

/// The master's signals, blocked and readable from a `signalfd`.
#[derive(Debug)]
pub struct Signals {
    fd: SignalFd,
}

impl Signals {
    /// Blocks the master's signals (SIGINT, SIGTERM, SIGCHLD, SIGHUP,
    /// SIGUSR1, SIGUSR2) in this (single-threaded) process and opens a
    /// `signalfd` that receives them.
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
        let set = set_of(&MASTER_SIGNALS);
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
        let flags = SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC;
        let fd = SignalFd::with_flags(&set, flags)?;
        Ok(Signals { fd })
    }

    /// Unblocks the signals a worker handles itself (SIGINT, SIGTERM,
    /// SIGCHLD, SIGHUP); a worker calls this after installing its own
    /// handlers. (The worker still holds a copy of the master's
    /// `signalfd`, but it never reads it.)
    ///
    /// # Errors
    ///
    /// If the signal mask cannot be changed.
    pub fn unblock(&self) -> io::Result<()> {
        let set = set_of(&WORKER_SIGNALS);
        sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None)?;
        Ok(())
    }

    /// The signals that have arrived, without waiting.
    ///
    /// # Errors
    ///
    /// As [`Signals::wait`].
    pub fn pending(&self) -> io::Result<Vec<Signal>> {
        self.wait(Some(Instant::now()))
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

/// A signal set holding `signals`.
fn set_of(signals: &[Signal]) -> SigSet {
    let mut set = SigSet::empty();
    for &signal in signals {
        set.add(signal);
    }
    set
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
    /// The workers serving, accepting new clients.
    workers: Vec<Pid>,
    /// Old workers told to retire by a SIGHUP: finishing their session,
    /// accepting nobody. Their deaths are expected, not replaced.
    retiring: Vec<Pid>,
    /// Replacements for retired workers, owed at once.
    rotated: usize,
    /// Workers that died and are not replaced yet (held to the limit).
    missing: usize,
    limit: RespawnLimit,
}

impl<'a> Supervisor<'a> {
    /// A supervisor with no workers yet; [`Supervisor::run`] forks them.
    pub fn new(
        listener: &'a TcpListener,
        config: &'a Config,
        signals: Signals,
        shutdown: &'a Shutdown,
    ) -> Supervisor<'a> {
        let workers = config.workers as usize;
        let limit = RespawnLimit::new(workers.max(1), RESPAWN_WINDOW);
        Supervisor {
            listener,
            config,
            signals,
            shutdown,
            workers: Vec::with_capacity(workers),
            retiring: Vec::new(),
            rotated: 0,
            missing: 0,
            limit,
        }
    }

    /// Forks the workers, supervises them until SIGINT or SIGTERM, then
    /// shuts them down.
    ///
    /// # Errors
    ///
    /// If one of the first workers cannot be forked, the signals cannot
    /// be read, waiting for children fails, or some workers had to be
    /// killed because they did not drain in time.
    pub fn run(mut self) -> io::Result<()> {
        let stop = match self.spawn_workers()? {
            Some(stop) => stop,
            None => self.supervise()?,
        };
        self.drain(stop)
    }

    // ANCHOR: spawn_workers
    /// Forks the first `--workers` workers, one at a time, reading the
    /// signals between forks; returns the stop signal if one came.
    ///
    /// A thousand forks take a good part of a second, seconds on a busy
    /// machine, and SIGINT or SIGTERM must stop the server now, not after
    /// the last fork: the signal waits in the `signalfd`, and we look
    /// there before every fork.
    ///
    /// # Errors
    ///
    /// If a fork fails (out of memory or over the process limit): a
    /// server that cannot start its workers does not start. The workers
    /// already forked notice the master's exit and leave too.
    fn spawn_workers(&mut self) -> io::Result<Option<Signal>> {
        for _ in 0..self.config.workers {
            let arrived = self.signals.pending()?;
            if let Some(stop) = self.handle(arrived)? {
                return Ok(Some(stop));
            }
            let pid = self.fork()?;
            self.workers.push(pid);
        }
        Ok(None)
    }
    // ANCHOR_END: spawn_workers

    // ANCHOR: supervise
    /// Keeps the workers alive until a stop signal arrives; returns it.
    fn supervise(&mut self) -> io::Result<Signal> {
        loop {
            if let Some(stop) = self.replace_missing()? {
                return Ok(stop);
            }
            // Sleep until a signal comes. Only when the respawn limit holds
            // a replacement back is there a deadline to wake up for.
            let deadline = (self.missing > 0)
                .then(|| self.limit.next_allowed(Instant::now()));
            let arrived = self.signals.wait(deadline)?;
            if let Some(stop) = self.handle(arrived)? {
                return Ok(stop);
            }
        }
    }
    // ANCHOR_END: supervise

    // ANCHOR: handle
    /// Acts on the signals that arrived; returns the stop signal if one
    /// did (the others then no longer matter).
    fn handle(&mut self, arrived: Vec<Signal>) -> io::Result<Option<Signal>> {
        // Reap first: a SIGCHLD may have come with (or been merged into)
        // any other signal, and reaping when none died is cheap.
        self.reap()?;
        let stop = |s: &Signal| matches!(s, Signal::SIGINT | Signal::SIGTERM);
        if let Some(&stop) = arrived.iter().find(|s| stop(s)) {
            return Ok(Some(stop));
        }
        for signal in arrived {
            match signal {
                Signal::SIGHUP => self.rotate(),
                Signal::SIGCHLD => {}
                other => event!("{other}: ignored"),
            }
        }
        Ok(None)
    }
    // ANCHOR_END: handle

    // ANCHOR: rotate
    /// SIGHUP: replaces every worker gracefully, as Unicorn does.
    ///
    /// Each old worker gets SIGHUP, which tells it to accept nobody new,
    /// finish the session it has, and exit. Their replacements are forked
    /// straight after (by [`Supervisor::replace_missing`], not held to the
    /// respawn limit: nothing is crashing). The listening socket stays
    /// open throughout, so a client that connects in between waits in the
    /// backlog for a new worker: nobody is refused, and no session in
    /// progress loses a message.
    fn rotate(&mut self) {
        let old = std::mem::take(&mut self.workers);
        event!("SIGHUP: replacing {} workers", old.len());
        for &pid in &old {
            // Safe to signal, as in `drain`: not reaped yet.
            let _ = kill(pid, Signal::SIGHUP);
        }
        self.rotated += old.len();
        self.retiring.extend(old);
    }
    // ANCHOR_END: rotate

    // ANCHOR: reap
    /// Collects every worker that has exited, and counts the serving ones
    /// as missing.
    ///
    /// Signals of one kind do not queue: five workers dying at once may
    /// raise one SIGCHLD. So we call `waitpid` until it says nobody else
    /// has exited, not once per signal.
    fn reap(&mut self) -> io::Result<()> {
        loop {
            let (pid, how) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    (pid, format!("exited with status {code}"))
                }
                Ok(WaitStatus::Signaled(pid, signal, _)) => {
                    (pid, format!("was killed by {signal}"))
                }
                // Still running (StillAlive), or not a death at all.
                Ok(_) => return Ok(()),
                // No children left at all.
                Err(Errno::ECHILD) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            if let Some(at) = self.retiring.iter().position(|&w| w == pid) {
                self.retiring.swap_remove(at);
                event!("retired worker {pid} {how}");
            } else {
                event!("worker {pid} {how}");
                self.workers.retain(|&w| w != pid);
                self.missing += 1;
            }
        }
    }
    // ANCHOR_END: reap

    // ANCHOR: replace_missing
    /// Forks the workers owed: replacements for retired workers at once,
    /// for dead ones as many as the limit allows. Reads the signals
    /// between forks, like [`Supervisor::spawn_workers`]; returns the stop
    /// signal if one came.
    fn replace_missing(&mut self) -> io::Result<Option<Signal>> {
        let mut held_back = false;
        while self.rotated + self.missing > 0 {
            let arrived = self.signals.pending()?;
            if let Some(stop) = self.handle(arrived)? {
                return Ok(Some(stop));
            }
            let now = Instant::now();
            let fresh = self.rotated > 0;
            if fresh {
                self.rotated -= 1;
            } else if self.limit.next_allowed(now) > now {
                held_back = true;
                break;
            } else {
                // A failed fork counts against the limit too, so that
                // running out of processes cannot turn into a busy loop
                // of retries.
                self.limit.record(now);
                self.missing -= 1;
            }
            match self.fork() {
                Ok(pid) => self.workers.push(pid),
                Err(e) => {
                    warn!("cannot replace a worker: {e}");
                    // Retried as for a death: held to the limit.
                    self.missing += 1;
                }
            }
        }
        if held_back {
            warn!(
                "workers are dying fast: {} not replaced yet, waiting",
                self.missing
            );
        }
        Ok(None)
    }
    // ANCHOR_END: replace_missing

    /// Forks one worker (see [`spawn_worker`]).
    fn fork(&self) -> io::Result<Pid> {
        spawn_worker(self.listener, self.config, &self.signals, self.shutdown)
    }

    // ANCHOR: drain
    /// Forwards `stop` to every worker, retiring ones included, then
    /// waits for them all to exit, for at most `--work-ms` plus
    /// [`DRAIN_GRACE`].
    fn drain(&mut self, stop: Signal) -> io::Result<()> {
        // From here on a death is only counted, never replaced: one list.
        let retiring = std::mem::take(&mut self.retiring);
        self.workers.extend(retiring);
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
