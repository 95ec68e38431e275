//! Chapter 4: one thread, an epoll event loop, every client at once.
//!
//! Chapters 1-3 gave each client a thread of control (a process or a
//! thread) that blocks in `read`, `sleep` and `write`. Here one thread
//! serves every client, so it must never block on any one of them: sockets
//! are non-blocking, epoll says which ones are ready, the simulated work is
//! a timer instead of a sleep, and each client's progress is a small state
//! machine ([`connection`]) instead of a position in a stack.
//!
//! How the loop learns what is ready is the [`poller`]'s business:
//! epoll by default, or poll(2) with `--poller poll`, the older call
//! whose every wait costs as much as the descriptors it watches. The
//! rest of this crate is the same for both.
//!
//! What it costs: no thread or process per client, a couple of hundred
//! bytes per idle connection, so 10,000 clients are cheap. What it cannot
//! do: use more than one core, or survive CPU-bound work
//! (`--work-kind spin`): while one message is "computed", the whole loop,
//! every client, waits.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod connection;
pub mod poller;
pub mod slab;
pub mod timers;

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{listen, Backlog};
use protocol::budget::Ledger;
use protocol::limits::{raise_open_files, ACCEPT_BACKOFF};
use protocol::{event, warn, Config, Shutdown, WorkKind};

use crate::connection::{Connection, Context};
use crate::poller::{Event, Events, Interest, Poller, Token};
use crate::slab::Slab;
use crate::timers::{TimerKind, Timers};

/// What `--help` says about this server.
pub const ABOUT: &str =
    "Chapter 4: one thread, an epoll event loop, every client at once";

/// The listener's token; connection tokens never reach it (see [`slab`]).
pub const LISTENER: Token = u64::MAX;
/// The shutdown switch's token.
const SHUTDOWN: Token = u64::MAX - 1;

/// The loop's one read buffer. Large reads mean few system calls for a
/// client that pipelines; sharing it means an idle connection costs none.
const READ_BUFFER: usize = 64 * 1024;

/// Events taken per wait.
const EVENTS_PER_WAIT: usize = 1024;

/// A round of the loop that has taken this long looks at the shutdown
/// switch between events, and again each time this much more has passed
/// (see [`Server::check_shutdown`]).
const LONG_ROUND: Duration = Duration::from_millis(50);

/// After SIGINT or SIGTERM, connections still open this long after the
/// work on their last message could have finished are closed anyway, so
/// the server exits within `--work-ms` plus one second.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(800);

// ANCHOR: serve
/// Serves clients on `listener` from one thread until `shutdown` is
/// triggered.
///
/// # Errors
///
/// Only if the poller or the listener fail; a failing connection never ends
/// the server.
pub fn serve(
    listener: TcpListener,
    config: &Config,
    shutdown: Shutdown,
) -> io::Result<()> {
    // Every connection is a descriptor, and the usual soft limit (1024)
    // would stop us at about a thousand clients. Not fatal if it fails:
    // we serve as many as fit.
    match raise_open_files() {
        Ok((soft, hard)) => event!("open-file limit {soft} -> {hard}"),
        Err(e) => warn!("cannot raise the open-file limit: {e}"),
    }
    // std's `bind` listens with a backlog of 128. A burst of thousands of
    // connects would overflow it, and the kernel would drop SYNs that the
    // clients then resend only after a second. Calling `listen` again on a
    // listening socket just changes the backlog (Linux caps it at
    // net.core.somaxconn).
    listen(&listener, Backlog::MAXALLOWABLE)?;
    listener.set_nonblocking(true)?;
    let mut poller = Poller::new(config.poller)?;
    poller.add(&listener, LISTENER, Interest::READ)?;
    event_loop(poller, listener, &shutdown, config)?;
    event!("shut down");
    Ok(())
}
// ANCHOR_END: serve

// ANCHOR: event_loop
/// The event loop: wait for readiness or the next deadline, handle what
/// is ready, fire what is due, repeat. `poller` already watches
/// `listener` as [`LISTENER`]. Returns, once a shutdown has closed every
/// connection, what the listener's wakeups found.
///
/// # Errors
///
/// Only failures of the poller itself.
pub fn event_loop(
    poller: Poller,
    listener: TcpListener,
    shutdown: &Shutdown,
    config: &Config,
) -> io::Result<AcceptCounts> {
    let mut server = Server::new(poller, listener, config);
    // The shutdown switch is a descriptor like any other: a signal makes
    // it readable, and the poller wakes us.
    server.poller.add(shutdown, SHUTDOWN, Interest::READ)?;
    let mut events = Events::with_capacity(EVENTS_PER_WAIT);
    loop {
        // The only place the loop blocks: until a socket is ready or the
        // earliest timer is due.
        let timeout = server.timeout(Instant::now());
        server.poller.wait(&mut events, timeout)?;
        let mut round = Instant::now();
        for event in events.iter() {
            match event.token {
                LISTENER => server.accept_clients(),
                SHUTDOWN => server.begin_shutdown(shutdown)?,
                token => server.handle_client(token, event),
            }
            server.check_shutdown(&mut round, shutdown)?;
        }
        server.run_timers(Instant::now());
        if server.is_finished(Instant::now()) {
            return Ok(server.counts);
        }
    }
}
// ANCHOR_END: event_loop

/// What a loop's listener wakeups found: chapter 7 compares loops that
/// share a port with these. Counting costs an addition per accept call.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AcceptCounts {
    /// The poller reported the listener readable.
    pub wakeups: u64,
    /// Of those, how many found the backlog empty at the first accept:
    /// another loop had taken the connection.
    pub empty_wakeups: u64,
    /// accept(2) calls, including the one per wakeup that finds the
    /// backlog empty (EAGAIN) and ends it.
    pub accept_calls: u64,
    /// Connections accepted and served.
    pub accepted: u64,
}

/// Everything the event loop owns.
struct Server<'c> {
    config: &'c Config,
    poller: Poller,
    /// `None` once shutting down: dropping it closes it, and new clients
    /// are refused by the kernel.
    listener: Option<TcpListener>,
    /// Whether the listener is registered for input (it is not while we
    /// are out of descriptors).
    accepting: bool,
    /// When to try accepting again after running out of descriptors.
    resume_accepting_at: Option<Instant>,
    connections: Slab<Connection>,
    timers: Timers,
    /// Who holds how many bytes of unfinished messages, against
    /// `--max-buffered-bytes` (see [`Server::enforce_budget`]).
    ledger: Ledger,
    buffer: Box<[u8]>,
    /// Set by a shutdown: close whatever is left at this time.
    stop_by: Option<Instant>,
    counts: AcceptCounts,
}

impl<'c> Server<'c> {
    fn new(poller: Poller, listener: TcpListener, config: &'c Config) -> Self {
        Server {
            config,
            poller,
            listener: Some(listener),
            accepting: true,
            resume_accepting_at: None,
            connections: Slab::new(),
            timers: Timers::new(),
            ledger: Ledger::new(config.max_buffered_bytes),
            buffer: vec![0; READ_BUFFER].into_boxed_slice(),
            stop_by: None,
            counts: AcceptCounts::default(),
        }
    }

    /// How long the poller may sleep: until the earliest deadline.
    fn timeout(&self, now: Instant) -> Option<Duration> {
        let other_deadlines = [self.resume_accepting_at, self.stop_by];
        let others = other_deadlines
            .into_iter()
            .flatten()
            .map(|at| at.saturating_duration_since(now));
        self.timers.time_left(now).into_iter().chain(others).min()
    }

    // ANCHOR: accept_clients
    /// Accepts every waiting connection, until the backlog is empty.
    fn accept_clients(&mut self) {
        self.counts.wakeups += 1;
        let first_call = self.counts.accept_calls + 1;
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            self.counts.accept_calls += 1;
            match listener.accept() {
                Ok((stream, peer)) => {
                    self.counts.accepted += 1;
                    self.add_client(stream, peer);
                }
                // The backlog is empty: we have every waiting client.
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if self.counts.accept_calls == first_call {
                        self.counts.empty_wakeups += 1;
                    }
                    return;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // One connection's problem (the client gave up before we
                // accepted it): skip it.
                Err(e) if is_per_connection(&e) => {
                    warn!("accept failed: {e}");
                }
                // Out of descriptors (EMFILE, ENFILE) or kernel memory
                // (ENOBUFS, ENOMEM). The connection stays in the backlog,
                // so a level-triggered listener would wake us again at
                // once, forever: a busy loop. Stop watching it instead.
                Err(e) => return self.pause_accepting(e),
            }
        }
    }

    fn add_client(&mut self, stream: TcpStream, peer: SocketAddr) {
        // TCP_NODELAY: an ack is 3 bytes, and Nagle's algorithm would hold
        // one back while the previous one is unacknowledged.
        let setup = stream
            .set_nonblocking(true)
            .and_then(|()| stream.set_nodelay(true));
        let token = self.connections.next_token();
        if let Err(e) =
            setup.and_then(|()| self.poller.add(&stream, token, Interest::READ))
        {
            warn!("cannot serve {peer}: {e}");
            return;
        }
        event!("accepted {peer}");
        let connection = Connection::new(
            stream,
            peer,
            token,
            self.config.max_message_bytes,
            self.config.message_timeout(),
            &mut Context {
                now: Instant::now(),
                work: self.config.work(),
                idle: self.config.idle_timeout(),
                timers: &mut self.timers,
                buffer: &mut self.buffer,
                ledger: &mut self.ledger,
            },
        );
        self.connections.insert(connection);
    }

    fn pause_accepting(&mut self, error: io::Error) {
        warn!(
            "accept failed: {error}; pausing accepts ({} connections open)",
            self.connections.len()
        );
        if let Some(listener) = &self.listener {
            // Registered but silent; the pause is a deadline like any
            // other, and a closing connection ends it early.
            if self.accepting {
                let _ = self.poller.modify(listener, LISTENER, Interest::NONE);
            }
            self.accepting = false;
            self.resume_accepting_at = Some(Instant::now() + ACCEPT_BACKOFF);
        }
    }

    fn resume_accepting(&mut self) {
        let Some(listener) = &self.listener else {
            // Shutting down: nothing to resume, and a stale deadline
            // would make every wait return at once.
            self.resume_accepting_at = None;
            return;
        };
        if self.accepting {
            return;
        }
        match self.poller.modify(listener, LISTENER, Interest::READ) {
            Ok(()) => {
                self.accepting = true;
                self.resume_accepting_at = None;
                event!("accepting again");
            }
            Err(e) => {
                warn!("cannot watch the listener: {e}");
                self.resume_accepting_at =
                    Some(Instant::now() + ACCEPT_BACKOFF);
            }
        }
    }
    // ANCHOR_END: accept_clients

    // ANCHOR: handle_client
    /// Lets one connection react to what the poller reported for it.
    fn handle_client(&mut self, token: Token, event: Event) {
        // A connection closed earlier in this batch, or its slot reused:
        // the event is stale.
        let Some(connection) = self.connections.get_mut(token) else {
            return;
        };
        connection.on_event(
            event,
            &mut Context {
                now: Instant::now(),
                work: self.config.work(),
                idle: self.config.idle_timeout(),
                timers: &mut self.timers,
                buffer: &mut self.buffer,
                ledger: &mut self.ledger,
            },
        );
        self.settle(token);
    }

    /// After a connection acted: drop it if it closed, else update what
    /// the poller watches for it; then keep the buffer budget.
    fn settle(&mut self, token: Token) {
        let Some(connection) = self.connections.get_mut(token) else {
            return;
        };
        connection.update_interest(&mut self.poller);
        if let Some(ending) = connection.closed() {
            event!("closed {}: {ending}", connection.peer());
            // Off the poller's list, then closed by dropping the stream.
            self.poller.delete(token);
            self.connections.remove(token);
            self.ledger.record(token, 0);
            self.sweep_timers();
            // A descriptor is free: if we ran out, try again now.
            self.resume_accepting();
        } else {
            self.ledger.record(token, connection.held());
        }
        self.enforce_budget();
    }
    // ANCHOR_END: handle_client

    // ANCHOR: enforce_budget
    /// Keeps the unfinished messages of all connections together within
    /// `--max-buffered-bytes`: while the total is over it, the connection
    /// holding the most is evicted (`err server busy`, then a lingering
    /// close), and its unfinished message is dropped. A connection stops
    /// reading as soon as a read takes the total over, so the total is
    /// over the budget by at most one read, and only until here.
    fn enforce_budget(&mut self) {
        for (token, held) in self.ledger.evict_to_fit() {
            let Some(connection) = self.connections.get_mut(token) else {
                continue;
            };
            event!("evicting {}: {held} bytes held", connection.peer());
            connection.evict(
                held,
                &mut Context {
                    now: Instant::now(),
                    work: self.config.work(),
                    idle: self.config.idle_timeout(),
                    timers: &mut self.timers,
                    buffer: &mut self.buffer,
                    ledger: &mut self.ledger,
                },
            );
            self.settle(token);
        }
    }
    // ANCHOR_END: enforce_budget

    /// Timers are never cancelled, so a closed connection leaves its
    /// deadlines in the heap until they come due - with a long idle limit
    /// or long work, practically never, and a server whose clients come
    /// and go would keep an entry for every client it ever had. So once
    /// the heap holds more than twice what the live connections can wait
    /// for (one deadline of each kind), the stale entries are swept out.
    /// A sweep costs a pass over the heap, paid for by the stale entries
    /// that made it necessary.
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

    // ANCHOR: run_timers
    /// Fires every deadline that has passed.
    fn run_timers(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            let Some(connection) = self.connections.get_mut(timer.token) else {
                continue; // the connection closed meanwhile
            };
            connection.on_timer(
                timer,
                &mut Context {
                    now,
                    work: self.config.work(),
                    idle: self.config.idle_timeout(),
                    timers: &mut self.timers,
                    buffer: &mut self.buffer,
                    ledger: &mut self.ledger,
                },
            );
            self.settle(timer.token);
            if timer.kind == TimerKind::Work
                && self.config.work_kind == WorkKind::Spin
            {
                // That may have held the loop for `--work-ms` of CPU:
                // look at signals and sockets before the next one.
                break;
            }
        }
        if self.resume_accepting_at.is_some_and(|at| at <= now) {
            self.resume_accepting();
        }
    }
    // ANCHOR_END: run_timers

    // ANCHOR: shutdown
    /// SIGINT or SIGTERM: stop accepting, and let every connection finish
    /// the message in progress (not the ones read behind it), then close.
    fn begin_shutdown(&mut self, shutdown: &Shutdown) -> io::Result<()> {
        if self.stop_by.is_some() {
            return Ok(());
        }
        // The switch stays readable once triggered; stop watching it, or
        // a level-triggered poller would report it on every wait.
        self.poller.modify(shutdown, SHUTDOWN, Interest::NONE)?;
        if let Some(listener) = self.listener.take() {
            // Off our list before it closes (see `Poller::remove`). If it
            // is not on it (a failed re-registration), there is nothing
            // to take off.
            let _ = self.poller.remove(&listener, LISTENER);
        }
        self.resume_accepting_at = None;
        let now = Instant::now();
        self.stop_by = Some(now + self.config.work().duration + SHUTDOWN_GRACE);
        event!("shutting down: {} connections open", self.connections.len());
        for token in self.connections.tokens() {
            if let Some(connection) = self.connections.get_mut(token) {
                connection.stop(&mut Context {
                    now,
                    work: self.config.work(),
                    idle: self.config.idle_timeout(),
                    timers: &mut self.timers,
                    buffer: &mut self.buffer,
                    ledger: &mut self.ledger,
                });
            }
            self.settle(token);
        }
        Ok(())
    }

    /// Starts the shutdown now if the switch is on and this round of
    /// events has taken long since it began, or since the last look, at
    /// `round`. A round can take long: hundreds of ready clients, each
    /// with 64 KiB of one-byte messages to decode. Epoll reports the
    /// switch only at the next wait, and the shutdown deadline counts from
    /// the signal, not from that wait. A look is a system call, so a long
    /// round looks once per [`LONG_ROUND`], not after every event.
    fn check_shutdown(
        &mut self,
        round: &mut Instant,
        shutdown: &Shutdown,
    ) -> io::Result<()> {
        if self.stop_by.is_none()
            && shutdown.is_triggered_every(round, LONG_ROUND)
        {
            self.begin_shutdown(shutdown)?;
        }
        Ok(())
    }

    /// Whether a shutdown is complete; past its deadline, closes whatever
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
        self.connections.is_empty()
    }
    // ANCHOR_END: shutdown
}

/// Accept errors that concern one connection only, not the listener.
fn is_per_connection(error: &io::Error) -> bool {
    let errno = error.raw_os_error().map(Errno::from_raw);
    matches!(
        errno,
        Some(Errno::ECONNABORTED | Errno::EPROTO | Errno::EPERM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    use nix::sys::socket::{setsockopt, sockopt};

    /// One round of the event loop, waiting at most 100 ms.
    fn turn(server: &mut Server<'_>, events: &mut Events) {
        let limit = Duration::from_millis(100);
        let timeout = server
            .timeout(Instant::now())
            .map_or(limit, |t| t.min(limit));
        server
            .poller
            .wait(events, Some(timeout))
            .expect("the poller waits");
        for event in events.iter() {
            match event.token {
                LISTENER => server.accept_clients(),
                token => server.handle_client(token, event),
            }
        }
        server.run_timers(Instant::now());
    }

    /// Turns the loop until `done`, for at most 5 s.
    fn turn_until(
        server: &mut Server<'_>,
        events: &mut Events,
        done: impl Fn(&Server<'_>) -> bool,
    ) {
        let give_up = Instant::now() + Duration::from_secs(5);
        while !done(server) {
            assert!(Instant::now() < give_up, "the loop made no progress");
            turn(server, events);
        }
    }

    /// Timers are never cancelled, so a connection that closes leaves its
    /// deadlines in the heap until they come due. With a long idle limit
    /// or long work (here 30 years) that is never: a server with clients
    /// that come and go must not collect an entry per client it ever had.
    #[test]
    fn closed_connections_leave_no_timers_behind() {
        protocol::log::set_quiet(true);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("address");
        let config = Config {
            work_ms: 1_000_000_000_000,
            idle_timeout_ms: 1_000_000_000_000,
            ..Config::default()
        };
        let mut poller = Poller::new(config.poller).expect("poller");
        poller
            .add(&listener, LISTENER, Interest::READ)
            .expect("add");
        let mut server = Server::new(poller, listener, &config);
        let mut events = Events::with_capacity(EVENTS_PER_WAIT);
        let mut most = 0;
        for _ in 0..1000 {
            let mut client = TcpStream::connect(addr).expect("connect");
            let before = server.timers.len();
            // Its idle check, then the work on its message.
            client.write_all(b"hello\x03").expect("send");
            turn_until(&mut server, &mut events, |s| {
                s.timers.len() >= before + 2
            });
            // A reset while the work is pending: the connection is gone.
            let abort = nix::libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            setsockopt(&client, sockopt::Linger, &abort).expect("SO_LINGER");
            drop(client);
            turn_until(&mut server, &mut events, |s| s.connections.is_empty());
            most = most.max(server.timers.len());
        }
        assert!(most < 200, "{most} deadlines for at most one connection");
    }
}
