//! One client, as a state machine the event loop drives.
//!
//! A blocking server keeps a session's state in local variables and in
//! *where the thread is* in `serve_session`: reading, working, writing.
//! An event loop serves thousands of sessions on one thread, so it cannot
//! keep that state on a stack. Every connection's state lives here instead,
//! and every method returns as soon as the socket would block: the loop
//! calls back when the socket (or a timer) is ready again.
//!
//! ```text
//!        goodbye, end of stream, violation, idle
//!        or message timeout, eviction, shutdown
//!  Open -------------------------------------> Draining
//!   |  read, decode,                             |  work, ack, write;
//!   |  work, ack, write                          |  all acked and written
//!   |                                            v
//!   |                                        Lingering
//!   |                                            |  write side shut down,
//!   |  connection lost                           |  input discarded until
//!   +---------------------> Closed <-------------+  EOF or a deadline
//! ```
//!
//! The only state that grows with the client's behaviour is bounded: the
//! decoder holds at most `--max-message-bytes`, the messages waiting for
//! work are a count, and so is the output, since the only thing we ever send
//! before a final `err` reply is `ack`, `ack`, `ack`...

use std::io::{ErrorKind, Read, Write};
use std::mem;
use std::net::{Shutdown as Direction, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use protocol::budget::{Ledger, BUSY_REPLY};
use protocol::clock::{MessageClock, TIMEOUT_REPLY};
use protocol::close::{Ending, LINGER};
use protocol::log::Preview;
use protocol::{event, Decoder, Frame, Work, WorkKind, ACK};

use crate::poller::{Event, Interest, Poller, Token};
use crate::timers::{Timer, TimerKind, Timers};

// ANCHOR: limits
/// Stop reading from a client while this many bytes of acks wait for it
/// to read them, or for the work on their messages (about 21,000 acks). A
/// client that reads slowly or not at all, or sends faster than the work
/// is done, is then held back by TCP flow control instead of by our
/// memory and our CPU.
pub const OUTPUT_CAP: usize = 64 * 1024;

/// Reads from one socket per wakeup, at most. With level-triggered
/// notification we need not read until `WouldBlock`: whatever is left is
/// reported again on the next wait. Stopping early is fairness: a client
/// that sends without pause cannot keep the loop to itself.
const READS_PER_WAKEUP: usize = 4;
// ANCHOR_END: limits

/// The reply to a client that was silent for too long.
const IDLE_REPLY: &[u8] = b"err idle timeout";

// ANCHOR: acks
/// The output of every connection is a run of acks, so a connection needs
/// no output buffer of its own: it counts the bytes of acks it owes, and
/// writes them from this one shared, read-only run.
pub static ACKS: [u8; 3 * 1024] = repeat_ack();

const fn repeat_ack<const N: usize>() -> [u8; N] {
    assert!(N % ACK.len() == 0, "a whole number of acks");
    let mut run = [0; N];
    let mut i = 0;
    while i < N {
        run[i] = ACK[i % ACK.len()];
        i += 1;
    }
    run
}
// ANCHOR_END: acks

/// What every connection handler needs from the loop, for one call.
#[derive(Debug)]
pub struct Context<'a> {
    /// The time to act on (timers are due against it).
    pub now: Instant,
    /// The simulated work per message.
    pub work: Work,
    /// The idle limit, or `None` for none.
    pub idle: Option<Duration>,
    /// Every deadline of the loop.
    pub timers: &'a mut Timers,
    /// The loop's one read buffer, shared by every connection: bytes read
    /// into it are decoded before the next connection reads.
    pub buffer: &'a mut [u8],
    /// Who holds how many bytes of unfinished messages: a connection
    /// records itself after every read, and stops reading once the total
    /// is over the budget, for the loop to evict someone.
    pub ledger: &'a mut Ledger,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading messages, working on them, acking them.
    Open,
    /// No more input will be read: finishing the work on messages already
    /// read, then writing the acks and the reply.
    Draining,
    /// Everything is written and our side is shut down; reading and
    /// discarding whatever the client still sends, until it closes or
    /// `until`: chapter 1's lingering close (`close_gracefully`), in
    /// steps.
    Lingering { until: Instant },
    /// Done: the loop removes it and closes the socket.
    Closed,
}

// ANCHOR: connection
/// One client's state between events.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    token: Token,
    phase: Phase,
    /// Bytes of an unfinished message, at most `--max-message-bytes`.
    decoder: Decoder,
    /// Messages read but not yet acked. The first one is being worked on;
    /// the others wait their turn, as in a blocking server.
    queued: u64,
    /// When the work on the first queued message is done.
    work_due: Option<Instant>,
    /// Bytes of `ackack...` the socket has not taken yet.
    owed: usize,
    /// The reply to send once every message is acked (`err ...`).
    reply: &'static [u8],
    /// The part of the reply the socket has not taken yet.
    unsent: &'static [u8],
    /// Why the connection is closing, once it is.
    ending: Option<Ending>,
    /// The last time the client sent a byte, took a byte, or a message's
    /// work finished: idle time is counted from here.
    last_active: Instant,
    /// The deadline of this connection's idle check in the timer heap.
    idle_check: Option<Instant>,
    /// The deadline of the message being received (see [`MessageClock`]);
    /// the timer heap holds a check for it.
    clock: MessageClock,
    /// What epoll watches for, so we only tell it about changes.
    registered: Interest,
    /// Acks made since the last log line about them.
    fresh_acks: u32,
}
// ANCHOR_END: connection

impl Connection {
    /// A freshly accepted client, already registered with [`Interest::READ`]
    /// under `token`.
    pub fn new(
        stream: TcpStream,
        peer: SocketAddr,
        token: Token,
        max_message_bytes: usize,
        message_timeout: Option<Duration>,
        cx: &mut Context<'_>,
    ) -> Connection {
        let mut connection = Connection {
            stream,
            peer,
            token,
            phase: Phase::Open,
            decoder: Decoder::new(max_message_bytes),
            queued: 0,
            work_due: None,
            owed: 0,
            reply: b"",
            unsent: b"",
            ending: None,
            last_active: cx.now,
            idle_check: None,
            clock: MessageClock::new(message_timeout),
            registered: Interest::READ,
            fresh_acks: 0,
        };
        connection.arm_idle_check(cx);
        connection
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Bytes of an unfinished message this connection holds, for the
    /// buffer budget.
    pub fn held(&self) -> usize {
        match self.phase {
            Phase::Open => self.decoder.pending_bytes(),
            // `drain` dropped the unfinished message.
            _ => 0,
        }
    }

    /// Once closed, why; the loop then drops the connection.
    pub fn closed(&self) -> Option<&Ending> {
        match self.phase {
            Phase::Closed => self.ending.as_ref(),
            _ => None,
        }
    }

    // ANCHOR: on_event
    /// Reacts to readiness reported by epoll.
    pub fn on_event(&mut self, event: Event, cx: &mut Context<'_>) {
        if self.wants_read() {
            if event.readable || event.failed {
                // A failure shows up as a read error or end of stream.
                self.on_readable(cx);
            }
        } else if event.failed {
            // Reset or hang-up while we were not reading: the client is
            // gone, and the acks we still owe cannot reach it.
            let error = self.stream.take_error().ok().flatten();
            let error = error.unwrap_or_else(|| ErrorKind::BrokenPipe.into());
            self.close(Ending::Vanished(error));
        }
        self.advance(cx);
    }
    // ANCHOR_END: on_event

    // ANCHOR: on_readable
    /// Reads what the client sent and decodes it, without blocking.
    fn on_readable(&mut self, cx: &mut Context<'_>) {
        if let Phase::Lingering { .. } = self.phase {
            return self.discard_input(cx);
        }
        for _ in 0..READS_PER_WAKEUP {
            match (&self.stream).read(cx.buffer) {
                Ok(0) => {
                    let dropped = self.decoder.pending_bytes();
                    return self.drain(Ending::EndOfStream { dropped }, b"");
                }
                Ok(n) => {
                    self.last_active = cx.now;
                    self.take_input(&cx.buffer[..n], cx.now);
                    // Account before the next read: over the budget, read
                    // no more; the loop evicts the largest holders first.
                    cx.ledger.record(self.token, self.held());
                    // A short read means the kernel had no more for us;
                    // if more arrives, epoll reports the socket again.
                    if n < cx.buffer.len()
                        || !self.wants_read()
                        || cx.ledger.is_over()
                    {
                        return;
                    }
                }
                // The OS's way of saying "nothing to read after all".
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                // A signal arrived mid-call: try again.
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return self.close(Ending::Vanished(e)),
            }
        }
    }

    /// Frames `input` into messages and queues them for work.
    fn take_input(&mut self, mut input: &[u8], now: Instant) {
        while self.phase == Phase::Open {
            match self.decoder.decode(&mut input) {
                Ok(None) => return,
                Ok(Some(Frame::Message(text))) => {
                    event!("message {} from {}", Preview(text), self.peer);
                    self.queued += 1;
                    // Complete: its clock stops; the next message's
                    // starts once the work before it is done (`advance`).
                    self.clock.track(false, now);
                }
                // Anything after `goodbye` is ignored.
                Ok(Some(Frame::Goodbye)) => self.drain(Ending::Goodbye, b""),
                Err(violation) => {
                    self.drain(Ending::Violation(violation), violation.reply())
                }
            }
        }
    }
    // ANCHOR_END: on_readable

    // ANCHOR: on_timer
    /// Reacts to one of this connection's deadlines. Deadlines it no
    /// longer waits for are ignored: timers are never cancelled.
    pub fn on_timer(&mut self, timer: Timer, cx: &mut Context<'_>) {
        if !self.awaits(&timer) {
            return;
        }
        match timer.kind {
            TimerKind::Work => {
                self.work_due = None;
                if cx.work.kind == WorkKind::Spin {
                    // CPU work cannot be waited for: it runs right here,
                    // and the whole loop, every other client, waits.
                    cx.work.perform();
                    cx.now = Instant::now();
                }
                self.last_active = cx.now;
                self.ack();
            }
            TimerKind::Idle => {
                self.idle_check = None;
                self.check_idle(cx);
            }
            TimerKind::Message => self.check_message(cx),
            TimerKind::Linger => self.phase = Phase::Closed,
        }
        self.advance(cx);
    }

    /// Whether `timer` is a deadline this connection waits for: it waits
    /// for at most one of each kind, and any other entry is stale.
    pub fn awaits(&self, timer: &Timer) -> bool {
        match timer.kind {
            TimerKind::Work => self.work_due == Some(timer.at),
            TimerKind::Idle => self.idle_check == Some(timer.at),
            TimerKind::Message => self.clock.deadline() == Some(timer.at),
            TimerKind::Linger => {
                self.phase == (Phase::Lingering { until: timer.at })
            }
        }
    }
    // ANCHOR_END: on_timer

    // ANCHOR: stop
    /// The server is shutting down: read nothing more, finish the message
    /// in progress, then close.
    pub fn stop(&mut self, cx: &mut Context<'_>) {
        if self.phase == Phase::Open {
            self.drain(Ending::Shutdown, b"");
        }
        // Messages queued behind the one in progress get no ack: working
        // through them could take any multiple of `--work-ms`, and the
        // contract (book/contract.md) promises an exit within `--work-ms`
        // plus one second. (The blocking servers stop at the same point.)
        if cx.work.kind == WorkKind::Spin {
            // Spin work in the heap has not started: it is only a turn.
            self.work_due = None;
        }
        let keep = u64::from(self.work_due.is_some());
        if self.queued > keep {
            let dropped = self.queued - keep;
            event!("{}: {dropped} queued messages not started", self.peer);
            self.queued = keep;
        }
        self.advance(cx);
    }
    // ANCHOR_END: stop

    // ANCHOR: evict
    /// The loop evicts this connection to keep the buffer budget: its
    /// unfinished message (`held` bytes) is dropped now, and so are the
    /// complete messages not yet worked on (or in work); the acks of the
    /// ones whose work is done are still sent, then `err server busy`.
    pub fn evict(&mut self, held: usize, cx: &mut Context<'_>) {
        if self.phase != Phase::Open {
            return;
        }
        self.queued = 0;
        self.work_due = None;
        self.drain(Ending::Evicted { held }, BUSY_REPLY);
        self.advance(cx);
    }
    // ANCHOR_END: evict

    /// Closes at once, whatever is pending (the shutdown deadline passed).
    pub fn abort(&mut self) {
        if self.phase != Phase::Closed {
            self.close(Ending::Shutdown);
        }
    }

    // ANCHOR: advance
    /// Moves the state machine as far as it can go without waiting.
    fn advance(&mut self, cx: &mut Context<'_>) {
        self.start_work(cx);
        if self.phase == Phase::Draining
            && self.queued == 0
            && !self.reply.is_empty()
        {
            // Every message is acked: the reply goes after the acks.
            self.unsent = mem::take(&mut self.reply);
        }
        self.flush(cx);
        self.log_acks();
        if self.phase == Phase::Draining
            && self.queued == 0
            && !self.has_output()
        {
            self.finish(cx);
        }
        self.arm_idle_check(cx);
        self.arm_message_check(cx);
    }

    /// Works on queued messages, one at a time and in order.
    fn start_work(&mut self, cx: &mut Context<'_>) {
        while self.queued > 0 && self.work_due.is_none() {
            if cx.work.duration.is_zero() {
                self.ack();
                continue;
            }
            let due = match cx.work.kind {
                // Waiting must not block the loop: it becomes a deadline,
                // and the ack is sent when the timer fires.
                WorkKind::Sleep => cx.now + cx.work.duration,
                // CPU work is done when its turn comes up in the heap, at
                // once; one message per turn, so that between two
                // messages the loop sees signals and other clients, and
                // each ack goes out as soon as its own work is done.
                WorkKind::Spin => cx.now,
            };
            self.work_due = Some(due);
            cx.timers.schedule(due, self.token, TimerKind::Work);
        }
    }

    /// The first queued message is done: owe its ack.
    fn ack(&mut self) {
        self.queued -= 1;
        self.owed += ACK.len();
        self.fresh_acks += 1;
    }

    /// One line per new ack, once `flush` has tried to send it.
    fn log_acks(&mut self) {
        for _ in 0..mem::take(&mut self.fresh_acks) {
            if self.owed == 0 {
                event!("ack sent to {}", self.peer);
            } else {
                event!(
                    "ack for {} waits: {} bytes unsent",
                    self.peer,
                    self.owed
                );
            }
        }
    }
    // ANCHOR_END: advance

    // ANCHOR: flush
    /// Writes as much of the output as the socket takes now; the rest
    /// waits for epoll to report the socket writable.
    fn flush(&mut self, cx: &mut Context<'_>) {
        while self.has_output() && self.phase != Phase::Closed {
            let output = if self.owed > 0 {
                // Where in "ack" the next byte is, after a partial write.
                let start = (ACK.len() - self.owed % ACK.len()) % ACK.len();
                &ACKS[start..ACKS.len().min(start + self.owed)]
            } else {
                self.unsent
            };
            match (&self.stream).write(output) {
                Ok(0) => {
                    self.close(Ending::Vanished(ErrorKind::WriteZero.into()))
                }
                Ok(n) if self.owed > 0 => {
                    self.owed -= n;
                    self.last_active = cx.now;
                }
                Ok(n) => {
                    self.unsent = &self.unsent[n..];
                    self.last_active = cx.now;
                }
                // The send buffer is full: the client is not reading fast
                // enough. Keep the rest; `interest` asks for EPOLLOUT.
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // Reset, broken pipe: std's `write` uses MSG_NOSIGNAL, so
                // this is an error value and never a SIGPIPE.
                Err(e) => self.close(Ending::Vanished(e)),
            }
        }
    }
    // ANCHOR_END: flush

    // ANCHOR: interest
    /// Whether to read from the client now.
    fn wants_read(&self) -> bool {
        match self.phase {
            // Backpressure: while a full cap of acks is owed, or will be
            // once the work on the queued messages is done, leave the
            // client's bytes in the kernel. Its receive window fills and
            // TCP stops it from sending more.
            Phase::Open => self.acks_ahead() < OUTPUT_CAP as u64,
            Phase::Draining | Phase::Closed => false,
            Phase::Lingering { .. } => true,
        }
    }

    /// Bytes of acks the client has yet to read: those owed, and those
    /// of the messages still waiting for their work.
    fn acks_ahead(&self) -> u64 {
        self.owed as u64 + ACK.len() as u64 * self.queued
    }

    fn has_output(&self) -> bool {
        self.owed > 0 || !self.unsent.is_empty()
    }

    /// Tells epoll what we wait for, if that changed. Write interest only
    /// while output is pending: a level-triggered EPOLLOUT on a socket with
    /// room to write would wake the loop on every wait.
    pub fn update_interest(&mut self, poller: &mut Poller) {
        let wanted = Interest {
            read: self.wants_read(),
            write: self.has_output(),
        };
        if wanted == self.registered || self.phase == Phase::Closed {
            return;
        }
        if self.registered.read && !wanted.read && self.phase == Phase::Open {
            event!(
                "{} is {} bytes of acks ahead, pausing input",
                self.peer,
                self.acks_ahead()
            );
        }
        match poller.modify(&self.stream, self.token, wanted) {
            Ok(()) => self.registered = wanted,
            Err(e) => self.close(Ending::Vanished(e)),
        }
    }
    // ANCHOR_END: interest

    // ANCHOR: idle
    /// Puts this connection's idle check in the timer heap, unless one is
    /// there already. The check is lazy: reads and writes only move
    /// `last_active`, and when the check comes due it looks again.
    fn arm_idle_check(&mut self, cx: &mut Context<'_>) {
        let Some(limit) = cx.idle else { return };
        if self.idle_check.is_some()
            || !matches!(self.phase, Phase::Open | Phase::Draining)
        {
            return;
        }
        // While a message is worked on, the idle clock stands still; the
        // earliest it can run out is a whole limit after now.
        let at = if self.queued > 0 {
            cx.now + limit
        } else {
            self.last_active + limit
        };
        self.idle_check = Some(at);
        cx.timers.schedule(at, self.token, TimerKind::Idle);
    }

    fn check_idle(&mut self, cx: &mut Context<'_>) {
        let Some(limit) = cx.idle else { return };
        let waiting_for_client = self.queued == 0;
        if !waiting_for_client || cx.now < self.last_active + limit {
            return; // `advance` arms the next check
        }
        // `last_active` says when we last *read* a byte, not when the
        // client last sent one. The two differ when the process was
        // stopped (a debugger, `docker pause`, the cgroup freezer,
        // `strace -p`, SIGSTOP): bytes that arrived meanwhile wait in
        // the kernel, and when the process runs again its first wait may
        // end with EINTR and no events, so the loop comes here before it
        // has read them. Only the socket knows, so ask it: one
        // non-blocking read, paid only when a limit runs out. (Likewise
        // the client may have read our acks meanwhile: try the write.)
        let phase = self.phase;
        if self.wants_read() {
            self.on_readable(cx);
        }
        if self.has_output() {
            self.flush(cx);
        }
        if self.phase != phase || cx.now < self.last_active + limit {
            return; // it sent, read or closed: not idle
        }
        if self.phase == Phase::Open && !self.has_output() {
            self.drain(Ending::IdleTimeout, IDLE_REPLY);
        } else if matches!(self.phase, Phase::Open | Phase::Draining) {
            // It has not read our output for the whole limit: a reply
            // would never reach it.
            self.close(Ending::IdleTimeout);
        }
    }
    // ANCHOR_END: idle

    // ANCHOR: message_deadline
    /// Starts or stops the message clock and puts its deadline in the
    /// timer heap. The clock runs while the connection holds bytes of an
    /// unfinished message and no message before it waits for its work:
    /// time spent working is not the client's (see [`MessageClock`]).
    fn arm_message_check(&mut self, cx: &mut Context<'_>) {
        let waiting = self.phase == Phase::Open
            && self.queued == 0
            && self.decoder.pending_bytes() > 0;
        let before = self.clock.deadline();
        self.clock.track(waiting, cx.now);
        let deadline = self.clock.deadline();
        // A new clock, a new check; one no longer wanted stays in the
        // heap, and `awaits` ignores it.
        if let Some(at) = deadline.filter(|_| deadline != before) {
            cx.timers.schedule(at, self.token, TimerKind::Message);
        }
    }

    /// The message deadline came: read what the socket holds first (it may
    /// finish the message, after a SIGSTOP say, as in `check_idle`), then
    /// judge. The complete messages before it are still worked on and
    /// acked, then `err message timeout`.
    fn check_message(&mut self, cx: &mut Context<'_>) {
        if self.phase == Phase::Open && self.wants_read() {
            self.on_readable(cx);
        }
        if self.phase == Phase::Open && self.clock.expired(cx.now) {
            self.drain(Ending::MessageTimeout, TIMEOUT_REPLY);
        }
    }
    // ANCHOR_END: message_deadline

    // ANCHOR: closing
    /// Stops reading: the messages read so far are worked on and acked
    /// (at shutdown, [`Connection::stop`] keeps only the one in progress),
    /// then `reply` is sent and the connection closes.
    fn drain(&mut self, ending: Ending, reply: &'static [u8]) {
        // No more input will be decoded: give back the unfinished message
        // now (a decoder for no message allocates nothing).
        self.decoder = Decoder::new(0);
        self.phase = Phase::Draining;
        self.ending = Some(ending);
        self.reply = reply;
    }

    /// Everything is written: close, lingering if the client may still
    /// be sending.
    fn finish(&mut self, cx: &mut Context<'_>) {
        if let Some(Ending::EndOfStream { .. }) = self.ending {
            // The client already closed its side: no byte can arrive that
            // closing would turn into a reset.
            self.phase = Phase::Closed;
            return;
        }
        // The client sees end of stream after our last byte, while we
        // keep reading, so that its late bytes do not make the kernel
        // answer with a reset that could destroy our reply.
        if self.stream.shutdown(Direction::Write).is_err() {
            self.phase = Phase::Closed;
            return;
        }
        let until = cx.now + LINGER;
        self.phase = Phase::Lingering { until };
        cx.timers.schedule(until, self.token, TimerKind::Linger);
    }

    /// Reads and throws away the client's late bytes, until it closes.
    fn discard_input(&mut self, cx: &mut Context<'_>) {
        for _ in 0..READS_PER_WAKEUP {
            match (&self.stream).read(cx.buffer) {
                // The client has closed too: nothing can be reset now.
                Ok(0) => {
                    self.phase = Phase::Closed;
                    return;
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.phase = Phase::Closed;
                    return;
                }
            }
        }
        // A client that keeps sending: the linger deadline ends it.
    }

    /// Ends the connection now; the loop closes the socket.
    fn close(&mut self, ending: Ending) {
        self.ending = Some(ending);
        self.phase = Phase::Closed;
    }
    // ANCHOR_END: closing
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    use nix::sys::socket::{setsockopt, sockopt};

    /// A connected pair over loopback: the server's end, non-blocking as
    /// the loop keeps it, and the client's, with a read timeout.
    fn connected() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let client = TcpStream::connect(addr).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        server.set_nonblocking(true).expect("non-blocking");
        let timeout = Some(Duration::from_secs(10));
        client.set_read_timeout(timeout).expect("read timeout");
        (server, client)
    }

    /// A connection on `stream` with no work and no idle limit, and calls
    /// `test` with it and a context for its methods.
    fn with_connection(
        stream: TcpStream,
        test: impl FnOnce(&mut Connection, &mut Context<'_>),
    ) {
        let peer = stream.peer_addr().expect("peer");
        let mut timers = Timers::new();
        let mut buffer = [0; 1024];
        let mut ledger = Ledger::new(usize::MAX);
        let mut cx = Context {
            now: Instant::now(),
            work: Work {
                kind: WorkKind::Sleep,
                duration: Duration::ZERO,
            },
            idle: None,
            timers: &mut timers,
            buffer: &mut buffer,
            ledger: &mut ledger,
        };
        let mut connection =
            Connection::new(stream, peer, 0, 64, None, &mut cx);
        test(&mut connection, &mut cx);
    }

    /// After a partial write stopped mid-ack, `flush` goes on from the
    /// right byte of `ack`: with `owed` bytes left, the client gets the
    /// last `owed` bytes of an unbroken run of acks, then the reply, and
    /// nothing else.
    #[test]
    fn flush_resumes_where_a_partial_write_stopped() {
        for owed in 1..10 {
            let (server, mut client) = connected();
            with_connection(server, |connection, cx| {
                connection.owed = owed;
                connection.unsent = b"err bye";
                connection.flush(cx);
                assert!(!connection.has_output(), "owed {owed}: all sent");
            });
            // The connection is dropped: its socket is closed, so reading
            // to the end gets exactly what `flush` wrote.
            let mut got = Vec::new();
            client.read_to_end(&mut got).expect("read");
            let run = ACK.repeat(owed.div_ceil(ACK.len()));
            let want = [&run[run.len() - owed..], b"err bye"].concat();
            assert_eq!(got, want, "owed {owed}");
        }
    }

    /// With far more acks owed than the socket takes at once, `flush`
    /// writes what fits and stops at `WouldBlock`; called again as the
    /// client reads, it resumes wherever the kernel cut the last write,
    /// and the client reads every ack, unbroken.
    #[test]
    fn flush_writes_a_long_run_in_pieces() {
        const OWED_ACKS: usize = 100_000;
        let (server, mut client) = connected();
        // Small buffers on both sides: the run cannot fit in one go.
        setsockopt(&server, sockopt::SndBuf, &4096).expect("SO_SNDBUF");
        setsockopt(&client, sockopt::RcvBuf, &4096).expect("SO_RCVBUF");
        let mut got = Vec::with_capacity(OWED_ACKS * ACK.len());
        with_connection(server, |connection, cx| {
            connection.owed = OWED_ACKS * ACK.len();
            connection.flush(cx);
            assert!(connection.owed > 0, "the socket took it all at once");
            let mut chunk = [0; 4096];
            while connection.has_output() {
                let n = client.read(&mut chunk).expect("read");
                assert!(n > 0, "end of stream with acks still owed");
                got.extend_from_slice(&chunk[..n]);
                connection.flush(cx);
                assert!(connection.closed().is_none(), "flush failed");
            }
        });
        client.read_to_end(&mut got).expect("read the rest");
        assert_eq!(got.len(), OWED_ACKS * ACK.len());
        assert!(got.chunks(ACK.len()).all(|chunk| chunk == ACK));
    }

    /// An evicted connection gets the acks whose work is done, not those
    /// of messages waiting for work or in it, then `err server busy`; its
    /// unfinished message is given back at once.
    #[test]
    fn eviction_sends_owed_acks_then_busy() {
        let (server, mut client) = connected();
        with_connection(server, |connection, cx| {
            connection.take_input(b"a\x03b\x03c\x03unfinish", cx.now);
            assert_eq!(connection.held(), 8);
            // One message's work is done; two wait, one of them "in work".
            connection.ack();
            connection.work_due = Some(cx.now + Duration::from_secs(60));
            connection.evict(8, cx);
            assert_eq!(connection.held(), 0);
            assert_eq!(connection.decoder.buffered_capacity(), 0);
            assert!(matches!(
                connection.ending,
                Some(Ending::Evicted { held: 8 })
            ));
        });
        let mut got = Vec::new();
        client.read_to_end(&mut got).expect("read");
        assert_eq!(got, b"ackerr server busy");
    }

    /// Memory per idle connection stays small: no buffer of its own.
    #[test]
    fn a_connection_is_small() {
        assert!(mem::size_of::<Connection>() <= 256);
    }
}
