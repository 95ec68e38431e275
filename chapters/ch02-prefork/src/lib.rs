//! Chapter 2: the prefork server. A master process and N forked workers.
//!
//! The master binds the listening socket, then `fork`s `--workers` N worker
//! processes. Each worker inherits the listener and runs chapter 1's loop
//! on it: accept one client, serve its whole session, accept the next. The
//! kernel hands each new connection to one of the workers waiting for
//! one, so N clients are served at once; client N+1 waits in the
//! listen backlog. The master serves nobody: it supervises (see
//! [`supervisor`]), replacing workers that die, passing SIGINT/SIGTERM
//! on to them, and replacing them all, gracefully, on SIGHUP.
//!
//! What it costs: a whole process per concurrent client (its own memory
//! map, page tables, stack and heap), a context switch between processes
//! for every hand-over, and an N fixed at start: client N+1 waits however
//! idle the first N are. What it buys: isolation. A worker that crashes
//! takes one client with it, and the master starts another.
//!
//! Since chapter 1: nothing in the serving changed - each worker runs
//! chapter 1's `next_client` and `handle_client`. What is new is who runs
//! them (N forked processes), the master that watches over them, and a
//! second way for a worker to stop: retiring (accept nobody new, finish
//! the session in progress) besides draining.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod supervisor;

use std::io;
use std::net::TcpListener;

use ch01_single::{handle_client, next_client};
use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::unistd::{fork, getpid, getppid, ForkResult, Pid};
use protocol::{event, warn, Config, Shutdown};

use crate::supervisor::{Signals, Supervisor};

/// What `--help` says about this server.
pub const ABOUT: &str = "Chapter 2: a master process and N forked workers";

// ANCHOR: serve
/// Forks `--workers` worker processes that serve clients on `listener`,
/// then supervises them until SIGINT or SIGTERM (which may come while
/// the workers are still being forked), and returns once every worker
/// has drained and exited.
///
/// Runs in the master. Only the master ever returns from here: a worker
/// process ends inside [`spawn_worker`]. `shutdown` must be the switch
/// [`Shutdown::on_signals`] made: each worker trades it for one of its
/// own ([`Shutdown::renew_after_fork`]), and the master itself takes its
/// signals from a `signalfd` from now on.
///
/// # Errors
///
/// If the signals cannot be set up, the first workers cannot be forked,
/// or workers had to be killed because they did not drain in time.
pub fn serve(
    listener: TcpListener,
    config: &Config,
    shutdown: Shutdown,
) -> io::Result<()> {
    // Block the signals before the first fork: from now on they wait in a
    // descriptor until the master reads them, and never interrupt it.
    let signals = Signals::block()?;
    // A signal that came before the block, after `listening on`, was
    // caught by the handlers `main` installed with the switch, and is on
    // the switch instead of in the signalfd.
    if shutdown.is_triggered() {
        event!("stopped before starting any worker");
        return Ok(());
    }
    Supervisor::new(&listener, config, signals, &shutdown).run()?;
    event!("shut down");
    Ok(())
}
// ANCHOR_END: serve

// ANCHOR: spawn_worker
/// Forks one worker process. Returns its pid in the master; never returns
/// in the worker, which serves clients until shutdown and then exits.
///
/// The worker gets everything it needs from the master, explicitly: the
/// listener, the flags, the blocked signals, and the master's shutdown
/// switch, to trade for one of its own. [`supervisor::Supervisor`] calls
/// it for the first workers and for every replacement.
///
/// # Errors
///
/// If the master is not single-threaded, or `fork` fails.
pub fn spawn_worker(
    listener: &TcpListener,
    config: &Config,
    signals: &Signals,
    shutdown: &Shutdown,
) -> io::Result<Pid> {
    let master = getpid();
    ensure_single_threaded()?;
    // SAFETY: fork() copies only the calling thread. Had another thread
    // held a lock (stderr's, a library's) at that moment, the child
    // would find it locked forever. But the master has exactly one thread:
    // `main` starts none, the master takes its signals from a
    // signalfd instead of starting a signal thread, and
    // ensure_single_threaded has just counted /proc/self/task.
    match unsafe { fork() }? {
        ForkResult::Parent { child } => {
            event!("started worker {child}");
            Ok(child)
        }
        ForkResult::Child => {
            // The worker's whole life. It must never return into the
            // master's code (the supervisor loop, `serve`'s caller).
            let life = worker(listener, config, signals, shutdown, master);
            let code = match life {
                Ok(()) => 0,
                Err(e) => {
                    warn!("worker failed: {e}");
                    1
                }
            };
            std::process::exit(code)
        }
    }
}
// ANCHOR_END: spawn_worker

// ANCHOR: worker
/// A worker's life, in the child right after `fork`: tie its life to the
/// master's, take over the signals, serve clients until told to stop.
fn worker(
    listener: &TcpListener,
    config: &Config,
    signals: &Signals,
    masters_switch: &Shutdown,
    master: Pid,
) -> io::Result<()> {
    // When the master dies, even by SIGKILL, the kernel kills us too: a
    // master that died without draining us was not shut down, it crashed,
    // and no worker may go on serving without its supervisor (the
    // contract, book/contract.md).
    prctl::set_pdeathsig(Signal::SIGKILL)?;
    // The master may have died between fork and prctl; then no signal
    // will come, but we have already been handed to another parent.
    if getppid() != master {
        return Ok(());
    }
    // Signals are still blocked (the mask survives fork), so a SIGTERM
    // sent since the fork is pending, not lost. Trade the master's switch
    // (and the handlers we inherited with it) for our own first, add the
    // switch that stops accepting, then unblock: a pending signal lands
    // in our switches.
    let shutdown = masters_switch.renew_after_fork()?;
    let accepting = stop_accepting_on_signals(&shutdown)?;
    signals.unblock()?;
    // From here on, a worker is chapter 1's server: the same loop, run by
    // each of N processes on one shared listener.
    accept_loop(listener, config, &accepting, &shutdown)?;
    if shutdown.is_triggered() {
        event!("worker drained, exiting");
    } else {
        event!("worker retired, exiting");
    }
    Ok(())
}
// ANCHOR_END: worker

// ANCHOR: accept_loop
/// Chapter 1's `accept_loop`, with the two ways a worker stops kept
/// apart: `accepting` ends the loop between sessions (SIGHUP: retire,
/// the session in progress goes on to its end), `shutdown` also ends the
/// session in progress after the message being worked on (SIGINT,
/// SIGTERM: drain). Both are on after a stop signal.
///
/// # Errors
///
/// Only errors of the listener itself.
fn accept_loop(
    listener: &TcpListener,
    config: &Config,
    accepting: &Shutdown,
    shutdown: &Shutdown,
) -> io::Result<()> {
    while let Some((stream, peer)) = next_client(listener, accepting)? {
        handle_client(stream, peer, config, shutdown);
    }
    Ok(())
}
// ANCHOR_END: accept_loop

// ANCHOR: stop_accepting
/// A switch that SIGHUP, SIGINT and SIGTERM sent to this worker turn on:
/// the one its accept loop waits on.
///
/// A SIGHUP comes from the master replacing its workers (or from a
/// hang-up sent to the whole process group): then the worker takes no
/// new client, finishes the one it has, and exits. `shutdown`, the
/// worker's own switch, hands SIGHUP over from its log-and-ignore
/// handler ([`Shutdown::claim`]); SIGINT and SIGTERM keep turning
/// `shutdown` on as well.
///
/// # Errors
///
/// If the switch cannot be made or a handler installed.
fn stop_accepting_on_signals(shutdown: &Shutdown) -> io::Result<Shutdown> {
    let switch = Shutdown::new()?;
    shutdown.claim(libc::SIGHUP, &switch)?;
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let trigger = switch.clone();
        // SAFETY: the action only calls `Shutdown::trigger`, which is one
        // `write` of one byte to a non-blocking socket, ignoring the
        // result: no allocation, no lock, async-signal-safe. It runs
        // beside the shutdown switch's own handler, which signal-hook
        // keeps (it chains actions on one signal).
        unsafe {
            signal_hook::low_level::register(signal, move || trigger.trigger())
        }?;
    }
    Ok(switch)
}
// ANCHOR_END: stop_accepting

/// Fails unless this process has exactly one thread, the condition for a
/// safe `fork` (see the SAFETY comment in [`spawn_worker`]).
fn ensure_single_threaded() -> io::Result<()> {
    let threads = std::fs::read_dir("/proc/self/task")?.count();
    if threads == 1 {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "cannot fork workers: the master has {threads} threads, not 1"
        )))
    }
}
