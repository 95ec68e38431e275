//! The load driver: many client connections from one thread, on epoll.
//!
//! A benchmark of servers is only as good as its client. One blocking
//! thread per connection would cost the client more CPU than the servers
//! spend at 1,000 connections, and 10,000 threads would measure the
//! scheduler. So the driver does what chapter 4 does on the other side:
//! one thread, non-blocking sockets, one `epoll_wait` for all of them.
//!
//! Every connection runs the seed client's session in a *closed loop*: send
//! a message, wait for its `ack`, send the next; after
//! [`Load::session_messages`] messages it says `goodbye`, closes and (in
//! timed runs) connects again, so blocking servers that serve one session
//! per worker still rotate through every connection.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{
    Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout,
};
use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::socket::{
    connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6,
};
use nix::sys::time::TimeValLike;
use protocol::encoder::{message, GOODBYE_FRAME};
use protocol::AckReader;

/// Connections in the middle of `connect` at once. More only overflows the
/// server's listen backlog, and dropped SYNs come back a second later.
const MAX_CONNECTING: usize = 256;

/// What to do.
#[derive(Debug, Clone)]
pub struct Load {
    /// Concurrent connections.
    pub connections: usize,
    /// Messages per session, before `goodbye`.
    pub session_messages: u32,
    /// The message content (ETX is added).
    pub message: Vec<u8>,
    /// When to stop.
    pub until: Until,
}

/// How long a run lasts.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// Every connection runs one session; the run ends with the last
    /// `goodbye`, or fails at the deadline.
    SessionsDone {
        /// Give up after this long.
        timeout: Duration,
    },
    /// Sessions repeat; only acks inside the window (after the warmup)
    /// are counted.
    Window {
        /// Let connections be established and caches warm first.
        warmup: Duration,
        /// The measured time.
        window: Duration,
    },
}

/// What a run observed.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Acks counted (all of them, or those inside the window).
    pub messages: u64,
    /// Every ack read, in the warmup too.
    pub acked: u64,
    /// Time from the first connect to the last goodbye, or the window.
    pub elapsed: Duration,
    /// Send-to-ack time of every counted message, in nanoseconds; for
    /// windows also the age of each message still unanswered at the end
    /// (so a server that starves connections shows it in the tail).
    pub latencies_ns: Vec<u64>,
    /// Connections that got at least one counted ack.
    pub served_connections: usize,
    /// Failures: refused or reset connections, `err` replies, closes.
    pub errors: u64,
    /// The first few failures, for the report.
    pub error_samples: Vec<String>,
    /// Whether a `SessionsDone` run hit its timeout.
    pub timed_out: bool,
    /// CPU time the driver's thread used while counting.
    pub client_cpu: Duration,
}

/// Runs `load` against the server at `addr` on this thread.
///
/// # Errors
///
/// Only when epoll itself fails; connection failures are counted in
/// [`Outcome::errors`].
pub fn run(addr: SocketAddr, load: &Load) -> io::Result<Outcome> {
    run_from(addr, load, Instant::now())
}

/// Like [`run`], with the warmup and window counted from `started`, so
/// that another thread can sample the server at the window's edges.
///
/// # Errors
///
/// As for [`run`].
pub fn run_from(
    addr: SocketAddr,
    load: &Load,
    started: Instant,
) -> io::Result<Outcome> {
    Driver::new(addr, load)?.run(started)
}

/// Where one connection is in its session.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Not started yet, or waiting to reconnect.
    Idle,
    /// Non-blocking `connect` in progress.
    Connecting,
    /// A message is out; its `ack` is being read.
    Awaiting(AckReader),
    /// One-session runs: finished.
    Finished,
}

#[derive(Debug)]
struct Conn {
    stream: Option<TcpStream>,
    state: State,
    sent_at: Instant,
    sent_in_session: u32,
    served: bool,
}

struct Driver<'l> {
    addr: SocketAddr,
    load: &'l Load,
    epoll: Epoll,
    conns: Vec<Conn>,
    /// Connection slots waiting to connect, in order.
    waiting: VecDeque<usize>,
    connecting: usize,
    finished: usize,
    message: Vec<u8>,
    counting: bool,
    outcome: Outcome,
}

impl<'l> Driver<'l> {
    fn new(addr: SocketAddr, load: &'l Load) -> io::Result<Driver<'l>> {
        let now = Instant::now();
        let conns = (0..load.connections)
            .map(|_| Conn {
                stream: None,
                state: State::Idle,
                sent_at: now,
                sent_in_session: 0,
                served: false,
            })
            .collect();
        let message = message(&load.message);
        Ok(Driver {
            addr,
            load,
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            conns,
            waiting: (0..load.connections).collect(),
            connecting: 0,
            finished: 0,
            message,
            // One-session runs count everything.
            counting: matches!(load.until, Until::SessionsDone { .. }),
            outcome: Outcome::default(),
        })
    }

    fn run(mut self, started: Instant) -> io::Result<Outcome> {
        let mut cpu_start = thread_cpu();
        let (window_start, end) = match self.load.until {
            Until::SessionsDone { timeout } => (started, started + timeout),
            Until::Window { warmup, window } => {
                (started + warmup, started + warmup + window)
            }
        };
        let mut events = vec![EpollEvent::empty(); 1024];
        loop {
            self.start_connects();
            let now = Instant::now();
            if !self.counting && now >= window_start {
                self.counting = true;
                cpu_start = thread_cpu();
            }
            if self.load.connections == self.finished {
                self.outcome.elapsed = now - started;
                break;
            }
            if now >= end {
                self.outcome.timed_out =
                    matches!(self.load.until, Until::SessionsDone { .. });
                self.outcome.elapsed = end - window_start;
                self.censor(end);
                break;
            }
            let next = if self.counting { end } else { window_start };
            let wait = next.saturating_duration_since(now);
            // Round up so we never wake early and spin.
            let ms = wait.as_micros().div_ceil(1000).min(1000) as u16;
            let n = match self.epoll.wait(&mut events, EpollTimeout::from(ms)) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            for event in &events[..n] {
                let slot = event.data() as usize;
                self.on_event(slot, event.events());
            }
        }
        self.outcome.client_cpu = thread_cpu().saturating_sub(cpu_start);
        self.outcome.served_connections =
            self.conns.iter().filter(|c| c.served).count();
        Ok(self.outcome)
    }

    /// Starts connects until [`MAX_CONNECTING`] are in progress.
    fn start_connects(&mut self) {
        while self.connecting < MAX_CONNECTING {
            let Some(slot) = self.waiting.pop_front() else {
                break;
            };
            match self.open(slot) {
                Ok(()) => self.connecting += 1,
                Err(e) => {
                    // Out of ports or descriptors: count it and retry
                    // later rather than spin on it now.
                    self.fail(slot, format!("connect: {e}"));
                    break;
                }
            }
        }
    }

    fn open(&mut self, slot: usize) -> io::Result<()> {
        let stream = start_connect(self.addr)?;
        // Writable means connected (or failed); readable, an ack.
        let interest = EpollFlags::EPOLLOUT | EpollFlags::EPOLLIN;
        self.epoll
            .add(stream.as_fd(), EpollEvent::new(interest, slot as u64))?;
        let conn = &mut self.conns[slot];
        conn.stream = Some(stream);
        conn.state = State::Connecting;
        conn.sent_in_session = 0;
        Ok(())
    }

    fn on_event(&mut self, slot: usize, flags: EpollFlags) {
        match self.conns[slot].state.clone() {
            State::Connecting => {
                let stream = self.conns[slot].stream.as_ref();
                let error = stream.map(|s| s.take_error());
                match error {
                    Some(Ok(None)) => {}
                    Some(Ok(Some(e)) | Err(e)) => {
                        return self.fail(slot, format!("connect: {e}"));
                    }
                    None => return,
                }
                self.connecting -= 1;
                self.conns[slot].state = State::Idle;
                // From now on only acks matter: stop asking for writable.
                let mut event =
                    EpollEvent::new(EpollFlags::EPOLLIN, slot as u64);
                if let Some(stream) = &self.conns[slot].stream {
                    if let Err(e) =
                        self.epoll.modify(stream.as_fd(), &mut event)
                    {
                        return self.fail(slot, format!("epoll: {e}"));
                    }
                }
                self.send(slot);
            }
            State::Awaiting(acks) => self.receive(slot, acks, flags),
            State::Idle | State::Finished => {}
        }
    }

    /// Sends the next message, or `goodbye` at the end of a session.
    fn send(&mut self, slot: usize) {
        let session_messages = self.load.session_messages;
        let conn = &mut self.conns[slot];
        let Some(stream) = conn.stream.as_mut() else {
            return;
        };
        if conn.sent_in_session == session_messages {
            // The server answers nothing to goodbye; a failed write here
            // only means it closed first, which is its right.
            let _ = stream.write_all(GOODBYE_FRAME);
            self.close(slot);
            return self.next_session(slot);
        }
        // A few bytes into an empty socket buffer: this never blocks, and
        // a failure means the connection is gone.
        match stream.write(&self.message) {
            Ok(n) if n == self.message.len() => {
                conn.state = State::Awaiting(AckReader::new());
                conn.sent_at = Instant::now();
                conn.sent_in_session += 1;
            }
            Ok(_) => self.fail(slot, "short write".into()),
            Err(e) => self.fail(slot, format!("send: {e}")),
        }
    }

    fn receive(&mut self, slot: usize, mut acks: AckReader, flags: EpollFlags) {
        let conn = &mut self.conns[slot];
        let Some(stream) = conn.stream.as_mut() else {
            return;
        };
        let mut buffer = [0; 64];
        let n = match stream.read(&mut buffer) {
            Ok(0) => return self.fail(slot, "closed by the server".into()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if flags.contains(EpollFlags::EPOLLERR) {
                    return self.fail(slot, "socket error".into());
                }
                return;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => return,
            Err(e) => return self.fail(slot, format!("receive: {e}")),
        };
        let reply = &buffer[..n];
        // One message is out, so one ack and nothing after it is due.
        let completed = acks.feed(reply);
        if completed.is_err()
            || acks.acks() > 1
            || (acks.acks() == 1 && acks.in_ack())
        {
            let text = String::from_utf8_lossy(reply).into_owned();
            return self.fail(slot, format!("unexpected reply {text:?}"));
        }
        if acks.acks() == 0 {
            conn.state = State::Awaiting(acks);
            return;
        }
        self.outcome.acked += 1;
        if self.counting {
            let latency = conn.sent_at.elapsed();
            self.outcome.latencies_ns.push(latency.as_nanos() as u64);
            self.outcome.messages += 1;
            conn.served = true;
        }
        self.send(slot);
    }

    /// After a session: finish (one-session runs) or start another.
    fn next_session(&mut self, slot: usize) {
        if matches!(self.load.until, Until::SessionsDone { .. }) {
            self.conns[slot].state = State::Finished;
            self.finished += 1;
        } else {
            self.conns[slot].state = State::Idle;
            self.waiting.push_back(slot);
        }
    }

    fn close(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        if conn.state == State::Connecting {
            self.connecting -= 1;
        }
        if let Some(stream) = conn.stream.take() {
            // Closing deregisters it from epoll.
            drop(stream);
        }
        conn.state = State::Idle;
    }

    fn fail(&mut self, slot: usize, why: String) {
        self.outcome.errors += 1;
        if self.outcome.error_samples.len() < 5 {
            self.outcome.error_samples.push(why);
        }
        self.close(slot);
        // Count the failed session as done in one-session runs, so a
        // broken server ends the run instead of looping on it.
        self.next_session(slot);
    }

    /// At the end of a window: every message still unanswered counts
    /// with the age it reached.
    fn censor(&mut self, end: Instant) {
        for conn in &self.conns {
            if let State::Awaiting(_) = conn.state {
                let age = end.saturating_duration_since(conn.sent_at);
                self.outcome.latencies_ns.push(age.as_nanos() as u64);
            }
        }
    }
}

/// A non-blocking socket whose `connect` to `addr` has started: it turns
/// writable once connected (or failed, which `take_error` then says).
///
/// # Errors
///
/// If no socket can be had (out of descriptors) or the connect fails at
/// once.
pub fn start_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fd = socket(family, SockType::Stream, flags, None)?;
    let started = match addr {
        SocketAddr::V4(a) => connect(fd.as_raw_fd(), &SockaddrIn::from(a)),
        SocketAddr::V6(a) => connect(fd.as_raw_fd(), &SockaddrIn6::from(a)),
    };
    match started {
        Ok(()) | Err(Errno::EINPROGRESS) => {}
        Err(e) => return Err(e.into()),
    }
    let stream = TcpStream::from(fd);
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Summary statistics of latencies, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Largest.
    pub max_us: f64,
}

impl Percentiles {
    /// Sorts `latencies_ns` and reads the percentiles off it.
    pub fn of(latencies_ns: &mut [u64]) -> Percentiles {
        if latencies_ns.is_empty() {
            return Percentiles::default();
        }
        latencies_ns.sort_unstable();
        let at = |q: f64| {
            let i = ((latencies_ns.len() - 1) as f64 * q).round() as usize;
            latencies_ns[i] as f64 / 1000.0
        };
        Percentiles {
            p50_us: at(0.50),
            p99_us: at(0.99),
            max_us: at(1.0),
        }
    }
}

/// CPU time the calling thread has used so far: the load generator's own
/// cost, so that a run can show it is not the bottleneck.
pub fn thread_cpu() -> Duration {
    // Linux always supports RUSAGE_THREAD; zero if it somehow fails.
    getrusage(UsageWho::RUSAGE_THREAD)
        .map(|u| {
            let micros = u.user_time().num_microseconds()
                + u.system_time().num_microseconds();
            Duration::from_micros(micros.max(0) as u64)
        })
        .unwrap_or_default()
}
