//! Chapter 7: many event loops, one per core, sharing the accepts on one
//! port.
//!
//! Chapter 4's loop serves 10,000 clients from one thread, and so from one
//! core. Here `--loops N` threads each run that same loop, unchanged, on
//! an epoll instance of their own; a connection belongs to the loop that
//! accepted it, for its whole life. The only new question is who accepts:
//! [`balance`] answers it three ways (`--balance shared|exclusive|
//! reuseport`), and each loop counts what its listener wakeups found
//! ([`AcceptCounts`]) and prints it when it stops.
//!
//! What it costs: a thread and an epoll instance per loop, nothing per
//! connection beyond chapter 4's. What it cannot do: move a connection
//! to an idle loop. A loop busy with CPU work (`--work-kind spin`) holds
//! every client it accepted, while other loops may sit idle.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod balance;

use std::io;
use std::net::TcpListener;
use std::thread;

use ch04_epoll::event_loop;
pub use ch04_epoll::AcceptCounts;
use protocol::limits::raise_open_files;
use protocol::{event, warn, Balance, Config, PollerKind, Shutdown};

use crate::balance::Share;

/// What `--help` says about this server.
pub const ABOUT: &str = "Chapter 7: many event loops, one per core, \
    sharing the accepts on one port (--loops, --balance; epoll only)";

/// Refuses flags this server cannot honour: `--poller poll`, since the
/// loops share a listener through epoll (EPOLLEXCLUSIVE has no poll(2)
/// equivalent), and one clear line beats a silently different server.
///
/// # Errors
///
/// `InvalidInput`, naming the flag.
pub fn check(config: &Config) -> io::Result<()> {
    if config.poller == PollerKind::Poll {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--poller poll: the loops share the port through epoll; \
             leave out --poller",
        ));
    }
    Ok(())
}

// ANCHOR: serve
/// Serves clients on `listener` from `--loops` event loops, one thread
/// each, until `shutdown` is triggered and every loop has drained.
///
/// # Errors
///
/// A bad flag ([`check`]), or a loop that cannot be set up or started,
/// or whose poller fails; the other loops are stopped first.
pub fn serve(
    listener: TcpListener,
    config: &Config,
    shutdown: Shutdown,
) -> io::Result<()> {
    check(config)?;
    // The limit is the process's, shared by every loop.
    match raise_open_files() {
        Ok((soft, hard)) => event!("open-file limit {soft} -> {hard}"),
        Err(e) => warn!("cannot raise the open-file limit: {e}"),
    }
    let loops = config.loops();
    let shares = balance::shares(listener, config.balance, loops)?;
    let plural = if loops == 1 { "" } else { "s" };
    let balance = balance_name(config.balance);
    event!("{loops} loop{plural}, --balance {balance}");
    // Each loop keeps its share of the buffer budget: see `loop_config`.
    let config = &loop_config(config, loops);
    thread::scope(|scope| spawn_loops(scope, shares, &shutdown, config))?;
    event!("shut down");
    Ok(())
}
// ANCHOR_END: serve

// ANCHOR: spawn_loops
/// Starts a thread per share, named `loop-N`, each running [`run_loop`],
/// and waits for them all.
///
/// # Errors
///
/// The first loop's failure, or the OS refusing a thread: then the loops
/// already started are stopped, since a server missing a loop is not the
/// server that was asked for.
fn spawn_loops<'scope>(
    scope: &'scope thread::Scope<'scope, '_>,
    shares: Vec<Share>,
    shutdown: &'scope Shutdown,
    config: &'scope Config,
) -> io::Result<()> {
    let mut running = Vec::new();
    let mut refused = Ok(());
    for (n, share) in shares.into_iter().enumerate() {
        let started = thread::Builder::new()
            .name(format!("loop-{n}"))
            .spawn_scoped(scope, move || run_loop(share, shutdown, config));
        match started {
            Ok(handle) => running.push(handle),
            Err(e) => {
                shutdown.trigger();
                refused = Err(e);
                break;
            }
        }
    }
    let mut ended = Ok(());
    for handle in running {
        let result = handle
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("a loop panicked")));
        // The first failure is the server's.
        ended = ended.and(result);
    }
    ended.and(refused)
}
// ANCHOR_END: spawn_loops

// ANCHOR: run_loop
/// One loop: chapter 4's [`event_loop`] on this loop's share of the port.
/// When it ends, it prints its counts, even under `--quiet`: once per
/// loop, not per event.
fn run_loop(
    share: Share,
    shutdown: &Shutdown,
    config: &Config,
) -> io::Result<()> {
    // A panic here would leave the other loops serving, and `serve`
    // waiting for them: stop them all.
    let _stop_all = StopAllOnPanic(shutdown);
    let Share { poller, listener } = share;
    match event_loop(poller, listener, shutdown, config) {
        Ok(counts) => {
            warn!("{}", counts_line(&counts));
            Ok(())
        }
        Err(e) => {
            // The poller failed: this loop's clients are lost, and the
            // server must not go on with fewer loops than asked for.
            warn!("loop failed: {e}");
            shutdown.trigger();
            Err(e)
        }
    }
}
// ANCHOR_END: run_loop

// ANCHOR: loop_config
/// The flags each of `loops` loops runs with: the same, but for the
/// buffer budget (`--max-buffered-bytes`), which is the whole server's.
/// Each loop keeps an equal share, so the loops together stay within it
/// without a word between them: a loop evicts only its own connections,
/// never waits for another, and takes no lock. A share is never less
/// than one whole message (`--max-message-bytes`), or a loop could not
/// receive one; so with a budget under a message per loop, the loops
/// together may hold up to a message per loop.
///
/// The price of sharing nothing: a loop may evict while another has room
/// to spare. A ledger shared by the loops (`protocol::budget`'s
/// `SharedBudget`) would evict the largest holders server-wide, at the
/// price of a lock on every read and a wake-up for the loop that holds
/// the evicted connection.
fn loop_config(config: &Config, loops: u32) -> Config {
    let loops = usize::try_from(loops).unwrap_or(usize::MAX).max(1);
    let share =
        (config.max_buffered_bytes / loops).max(config.max_message_bytes);
    Config {
        max_buffered_bytes: share,
        ..config.clone()
    }
}
// ANCHOR_END: loop_config

/// `--balance`'s value as the reader typed it.
fn balance_name(balance: Balance) -> &'static str {
    match balance {
        Balance::Shared => "shared",
        Balance::Exclusive => "exclusive",
        Balance::Reuseport => "reuseport",
    }
}

/// Triggers the shutdown if dropped while its thread unwinds.
struct StopAllOnPanic<'s>(&'s Shutdown);

impl Drop for StopAllOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.trigger();
        }
    }
}

/// The counts as one line, for the reader and for the book's scripts:
/// `listener: 12 wakeups (3 found nothing), 21 accept calls, 9 accepted`.
pub fn counts_line(counts: &AcceptCounts) -> String {
    format!(
        "listener: {} wakeups ({} found nothing), {} accept calls, \
         {} accepted",
        counts.wakeups,
        counts.empty_wakeups,
        counts.accept_calls,
        counts.accepted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four loops share a 1 MB budget equally; a budget under a message
    /// per loop still lets each loop take one whole message; one loop
    /// keeps the whole budget.
    #[test]
    fn each_loop_keeps_a_share_of_the_budget() {
        let config = Config {
            max_buffered_bytes: 1_000_000,
            max_message_bytes: 65_536,
            ..Config::default()
        };
        assert_eq!(loop_config(&config, 4).max_buffered_bytes, 250_000);
        assert_eq!(loop_config(&config, 1).max_buffered_bytes, 1_000_000);
        assert_eq!(loop_config(&config, 64).max_buffered_bytes, 65_536);
        assert_eq!(loop_config(&config, 4).work_ms, config.work_ms);
    }
}
