//! Chapter 8: one thread, io_uring completions, every client at once.
//!
//! Chapter 4's loop asks the kernel "which sockets are ready?" and then
//! makes each call itself: a `read` and a `write` per message, plus its
//! share of `epoll_wait`. Here the loop tells the kernel what it wants
//! done - receive whatever arrives on this socket, send these bytes,
//! accept whatever connects - by writing requests into a ring, and reads
//! the results from another ring. One `io_uring_enter` per turn submits
//! every request of the turn and waits for the next results, however
//! many clients they concern ([`ring`]).
//!
//! The rest is chapter 4's: the same state machine per client
//! ([`connection`]), the same timer heap for the work and the deadlines,
//! the same connection table. What is new is memory the kernel uses
//! behind the compiler's back - a pool of receive buffers ([`pool`]), and
//! every socket with a request in flight - and the discipline of never
//! freeing it while the kernel may still use it. Spin work still holds
//! the one thread, and every client with it.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod connection;
pub mod pool;
pub mod ring;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use ch04_epoll::poller::Token;
use ch04_epoll::slab::Slab;
use ch04_epoll::timers::{TimerKind, Timers};
use nix::sys::socket::{listen, setsockopt, sockopt, Backlog};
use protocol::budget::Ledger;
use protocol::limits::{raise_open_files, ACCEPT_BACKOFF};
use protocol::{event, warn, Config, Shutdown, WorkKind};

use crate::connection::{Connection, Context};
use crate::ring::{Completion, Op, OpToken, Purpose, Ring};

/// What `--help` says about this server.
pub const ABOUT: &str =
    "Chapter 8: one thread, io_uring completions, every client at once";

/// After SIGINT or SIGTERM, connections still open this long after the
/// work on their last message could have finished are closed anyway, so
/// the server exits within `--work-ms` plus one second.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(800);

/// A batch of completions that has taken this long looks at the shutdown
/// switch between completions, and again each time this much more has
/// passed: the switch's own completion may be far behind in the batch.
const LONG_BATCH: Duration = Duration::from_millis(50);

/// How long past the shutdown deadline the loop waits for the kernel to
/// confirm the last cancellations.
const CANCEL_GRACE: Duration = Duration::from_millis(100);

// ANCHOR: serve
/// Serves clients on `listener` from one thread until `shutdown` is
/// triggered.
///
/// # Errors
///
/// If the kernel refuses io_uring (one line says why), or the rings or
/// the listener fail; a failing connection never ends the server.
pub fn serve(
    listener: TcpListener,
    config: &Config,
    shutdown: Shutdown,
) -> io::Result<()> {
    // First, so that a kernel without io_uring is told before anything
    // else happens.
    let ring = Ring::new()?;
    match raise_open_files() {
        Ok((soft, hard)) => event!("open-file limit {soft} -> {hard}"),
        Err(e) => warn!("cannot raise the open-file limit: {e}"),
    }
    // A deeper backlog than std's 128, as in chapter 4.
    listen(&listener, Backlog::MAXALLOWABLE)?;
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux:
    // one system call here instead of one per client. (An ack is 3
    // bytes, and Nagle's algorithm would hold one back.)
    setsockopt(&listener, sockopt::TcpNoDelay, &true)?;
    event_loop(ring, listener, &shutdown, config)?;
    event!("shut down");
    Ok(())
}
// ANCHOR_END: serve

// ANCHOR: event_loop
/// The event loop: submit what the last turn asked for and wait for
/// completions or the next deadline, in one system call; handle every
/// completion; fire what is due; repeat. Returns once a shutdown has
/// closed every connection and the kernel holds nothing of ours.
///
/// # Errors
///
/// Only failures of the ring itself.
pub fn event_loop(
    ring: Ring,
    listener: TcpListener,
    shutdown: &Shutdown,
    config: &Config,
) -> io::Result<()> {
    let mut server = Server::new(ring, listener, config);
    server.ring.watch(shutdown.clone());
    let mut completions = Vec::new();
    loop {
        let timeout = server.timeout(Instant::now());
        server.ring.submit_and_wait(timeout)?;
        server.ring.reap(&mut completions);
        // One clock reading for the batch: every completion in it was
        // there when the wait returned.
        let now = Instant::now();
        let mut looked = now;
        for completion in completions.drain(..) {
            server.complete(completion, now);
            // A long batch looks at the switch itself (see chapter 4).
            if shutdown.is_triggered_every(&mut looked, LONG_BATCH) {
                server.begin_shutdown();
            }
        }
        // Deadlines only after every completion: a byte that arrived in
        // time is never judged late - including one the kernel has
        // received but not yet delivered.
        let now = Instant::now();
        if server.timers.time_left(now) == Some(Duration::ZERO)
            && server.ring.undelivered()
        {
            server.ring.deliver(&mut completions)?;
            for completion in completions.drain(..) {
                server.complete(completion, now);
            }
        }
        server.run_timers(now);
        server.resume_receives(now);
        if server.is_finished(Instant::now()) {
            return Ok(());
        }
    }
}
// ANCHOR_END: event_loop

/// Everything the event loop owns.
struct Server<'c> {
    config: &'c Config,
    ring: Ring,
    /// `None` once shutting down.
    listener: Option<Rc<TcpListener>>,
    /// The multishot accept in flight, if any.
    accept: Option<OpToken>,
    /// When to accept again after running out of descriptors.
    resume_accepting_at: Option<Instant>,
    connections: Slab<Connection>,
    timers: Timers,
    /// The buffer budget: who holds how much of an unfinished message.
    ledger: Ledger,
    /// Set by a shutdown: close whatever is left at this time.
    stop_by: Option<Instant>,
    /// Connections whose receive found the pool empty, by their place
    /// (`Connection::waits_for_buffer`), then by arrival: lowest first.
    waiting: BinaryHeap<Reverse<(usize, u64, Token)>>,
    /// How many have joined `waiting` so far.
    arrivals: u64,
}

/// A context for connection calls, from the server's parts (a macro, not
/// a method, so that it borrows only the fields it names).
macro_rules! context {
    ($server:ident, $now:expr) => {
        Context {
            now: $now,
            work: $server.config.work(),
            idle: $server.config.idle_timeout(),
            timers: &mut $server.timers,
            ring: &mut $server.ring,
            ledger: &mut $server.ledger,
        }
    };
}

impl<'c> Server<'c> {
    fn new(mut ring: Ring, listener: TcpListener, config: &'c Config) -> Self {
        let listener = Rc::new(listener);
        let accept = Some(ring.accept(Rc::clone(&listener)));
        Server {
            config,
            ring,
            listener: Some(listener),
            accept,
            resume_accepting_at: None,
            connections: Slab::new(),
            timers: Timers::new(),
            ledger: Ledger::new(config.max_buffered_bytes),
            stop_by: None,
            waiting: BinaryHeap::new(),
            arrivals: 0,
        }
    }

    /// How long the wait may last: until the earliest deadline.
    fn timeout(&self, now: Instant) -> Option<Duration> {
        let other_deadlines = [self.resume_accepting_at, self.stop_by];
        let others = other_deadlines
            .into_iter()
            .flatten()
            .map(|at| at.saturating_duration_since(now));
        self.timers.time_left(now).into_iter().chain(others).min()
    }

    // ANCHOR: complete
    /// Hands one completion to whoever asked for the operation. A final
    /// completion (no `more`) takes the op out of the ring's table: the
    /// kernel is done with its socket, which is ours again, or closed if
    /// its connection is gone. A filled buffer goes back to the pool,
    /// whoever it was for.
    fn complete(&mut self, completion: Completion, now: Instant) {
        let Completion {
            op,
            result,
            more,
            buffer,
            unread,
        } = completion;
        // A final completion drops the op's entry (and with it the last
        // handle to its socket) at the end of this call, not before.
        let finished = if more { None } else { self.ring.take(op) };
        let Some(purpose) =
            finished.as_ref().or(self.ring.get(op)).map(Op::purpose)
        else {
            return warn!("completion for unknown operation {op}");
        };
        let owner = match purpose {
            Purpose::Accept => {
                if !more {
                    self.accept = None;
                }
                return self.accepted(result, now);
            }
            Purpose::Shutdown => return self.begin_shutdown(),
            Purpose::Recv(owner) | Purpose::Send(owner) => owner,
        };
        let Some(connection) = self.connections.get_mut(owner) else {
            // It closed and cancelled this op: only the buffer matters.
            if let Some(buffer) = buffer {
                self.ring.give_back(buffer);
            }
            return;
        };
        let mut cx = context!(self, now);
        match purpose {
            Purpose::Recv(_) => {
                connection.on_received(result, more, unread, buffer, &mut cx);
                if let Some(rank) = connection.waits_for_buffer() {
                    self.arrivals += 1;
                    self.waiting.push(Reverse((rank, self.arrivals, owner)));
                }
            }
            _ => connection.on_sent(result, &mut cx),
        }
        self.settle(owner);
    }
    // ANCHOR_END: complete

    // ANCHOR: accept
    /// One result of the multishot accept: a new client's descriptor, or
    /// an error. If the accept has stopped (no `more`), ask again - or,
    /// out of descriptors, pause first instead of spinning.
    fn accepted(&mut self, result: i32, now: Instant) {
        if let Ok(fd) = u32::try_from(result) {
            // SAFETY: a successful accept's result is a descriptor the
            // kernel just opened for this process; nothing else owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
            if self.listener.is_none() {
                // Accepted just before the shutdown's cancellation took
                // effect: too late to serve, so close it (drop `fd`).
                return;
            }
            self.add_client(TcpStream::from(fd), now);
        } else {
            let error = io::Error::from_raw_os_error(-result);
            match -result {
                // The shutdown cancelled it.
                libc::ECANCELED => return,
                // One client's problem (it gave up before we accepted
                // it): skip it.
                libc::ECONNABORTED | libc::EPROTO | libc::EPERM => {
                    warn!("accept failed: {error}");
                }
                // Out of descriptors or kernel memory: the connection
                // stays in the backlog, and asking again at once would
                // fail again at once, forever.
                _ => return self.pause_accepting(&error),
            }
        }
        if self.accept.is_none() {
            self.resume_accepting();
        }
    }

    fn add_client(&mut self, stream: TcpStream, now: Instant) {
        let peer = match stream.peer_addr() {
            Ok(peer) => peer,
            Err(e) => {
                // Reset before we got to it.
                warn!("cannot serve a new client: {e}");
                return;
            }
        };
        self.serve_client(stream, peer, now);
    }

    fn serve_client(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
        now: Instant,
    ) {
        event!("accepted {peer}");
        let token = self.connections.next_token();
        let max = self.config.max_message_bytes;
        let limit = self.config.message_timeout();
        let mut cx = context!(self, now);
        let connection =
            Connection::new(stream, peer, token, max, limit, &mut cx);
        self.connections.insert(connection);
    }

    fn pause_accepting(&mut self, error: &io::Error) {
        warn!(
            "accept failed: {error}; pausing accepts ({} connections open)",
            self.connections.len()
        );
        // A multishot accept ends with its first error, so there is
        // nothing to cancel; the pause is a deadline like any other, and
        // a closing connection ends it early.
        if self.listener.is_some() {
            self.resume_accepting_at = Some(Instant::now() + ACCEPT_BACKOFF);
        }
    }

    fn resume_accepting(&mut self) {
        // Cleared whatever happens next: a deadline left in the past
        // would make every wait return at once.
        let paused = self.resume_accepting_at.take().is_some();
        let Some(listener) = &self.listener else {
            return;
        };
        if self.accept.is_some() {
            return;
        }
        if paused {
            event!("accepting again");
        }
        self.accept = Some(self.ring.accept(Rc::clone(listener)));
    }
    // ANCHOR_END: accept

    // ANCHOR: settle
    /// After a connection acted: if it closed, cancel what it has in
    /// flight and drop it (the ring's table keeps its socket open until
    /// the kernel lets go of it); then keep the buffer budget.
    fn settle(&mut self, token: Token) {
        let Some(connection) = self.connections.get_mut(token) else {
            return;
        };
        if let Some(ending) = connection.closed() {
            event!("closed {}: {ending}", connection.peer());
            connection.release(&mut self.ring);
            self.connections.remove(token);
            self.ledger.record(token, 0);
            self.sweep_timers();
            // A descriptor is about to be free: if we ran out, try again.
            if self.resume_accepting_at.is_some() {
                self.resume_accepting();
            }
        } else {
            self.ledger.record(token, connection.held());
        }
        self.enforce_budget();
    }

    /// Keeps the unfinished messages of all connections together within
    /// `--max-buffered-bytes` (chapter 4's `enforce_budget`): while the
    /// total is over it, the connection holding the most is evicted. A
    /// connection records what it holds after every completion, so the
    /// total is over the budget by at most one buffer of the pool, and
    /// only until here.
    fn enforce_budget(&mut self) {
        for (token, held) in self.ledger.evict_to_fit() {
            let Some(connection) = self.connections.get_mut(token) else {
                continue;
            };
            event!("evicting {}: {held} bytes held", connection.peer());
            connection.evict(held, &mut context!(self, Instant::now()));
            self.settle(token);
        }
    }
    // ANCHOR_END: settle

    /// Drops the deadlines of closed connections once they outnumber the
    /// live ones (chapter 4's `sweep_timers`).
    fn sweep_timers(&mut self) {
        let live = 4 * self.connections.len();
        if self.timers.len() <= 2 * live + 64 {
            return;
        }
        let connections = &self.connections;
        self.timers.retain(|timer| {
            let owner = connections.get(timer.token);
            owner.is_some_and(|connection| connection.awaits(timer))
        });
    }

    // ANCHOR: resume_receives
    /// Serves the connections whose receive found the pool empty: one
    /// receive each into a buffer of the pool's reserve, for as many as
    /// the reserve has buffers.
    ///
    /// The kernel hands the shared buffers to whichever receive it
    /// happens to run first, so under a flood of senders a client with a
    /// ten-byte message could lose that race turn after turn. Here the
    /// loop sets the order. A connection holding no unfinished message
    /// goes first (first come, first served among them): what it sends
    /// may be a whole short message. Then the one holding the most: the
    /// budget counts bytes, but each connection's decoder grows its own
    /// buffer, by doubling, so bytes spread thinly over thousands of
    /// connections cost far more memory than the same bytes in a few -
    /// and the largest holder is the next to finish its message, or the
    /// budget's next eviction.
    fn resume_receives(&mut self, now: Instant) {
        while self.ring.reserve_left() {
            let Some(Reverse((_, _, token))) = self.waiting.pop() else {
                break;
            };
            let Some(connection) = self.connections.get_mut(token) else {
                continue; // closed while it waited
            };
            if connection.waits_for_buffer().is_some() {
                connection.resume(&mut context!(self, now));
            }
        }
    }
    // ANCHOR_END: resume_receives

    /// Fires every deadline that has passed.
    fn run_timers(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            let Some(connection) = self.connections.get_mut(timer.token) else {
                continue; // the connection closed meanwhile
            };
            connection.on_timer(timer, &mut context!(self, now));
            self.settle(timer.token);
            if timer.kind == TimerKind::Work
                && self.config.work_kind == WorkKind::Spin
            {
                // That may have held the loop for `--work-ms` of CPU:
                // submit and reap before the next one.
                break;
            }
        }
        if self.resume_accepting_at.is_some_and(|at| at <= now) {
            self.resume_accepting();
        }
    }

    // ANCHOR: shutdown
    /// SIGINT or SIGTERM: stop accepting, and let every connection finish
    /// the message in progress, then close.
    fn begin_shutdown(&mut self) {
        if self.stop_by.is_some() {
            return;
        }
        // The accept keeps the listening socket open until it is
        // cancelled; dropping our reference alone would leave it open.
        if let Some(accept) = self.accept.take() {
            self.ring.cancel(accept);
        }
        self.listener = None;
        self.resume_accepting_at = None;
        let now = Instant::now();
        self.stop_by = Some(now + self.config.work().duration + SHUTDOWN_GRACE);
        event!("shutting down: {} connections open", self.connections.len());
        for token in self.connections.tokens() {
            if let Some(connection) = self.connections.get_mut(token) {
                connection.stop(&mut context!(self, now));
            }
            self.settle(token);
        }
    }

    /// Whether a shutdown is complete: every connection closed and every
    /// operation back from the kernel. Past the deadline, closes whatever
    /// is still open.
    fn is_finished(&mut self, now: Instant) -> bool {
        let Some(stop_by) = self.stop_by else {
            return false;
        };
        if now >= stop_by {
            for token in self.connections.tokens() {
                if let Some(connection) = self.connections.get_mut(token) {
                    connection.abort();
                }
                self.settle(token);
            }
        }
        // Cancellations complete at once, but not before the next turn
        // submits them; the grace after the deadline is a safety net, and
        // `Drop for Ring` leaks what is left rather than free it.
        let grace_over = now >= stop_by + CANCEL_GRACE;
        self.connections.is_empty()
            && (self.ring.in_flight() == 0 || grace_over)
    }
    // ANCHOR_END: shutdown
}
