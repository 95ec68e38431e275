//! One client, as a state machine driven by completions.
//!
//! Chapter 4's connection reacts to "the socket is readable" by reading.
//! This one reacts to "bytes arrived, here they are": it asks for its
//! receives and sends itself, and the loop brings back their results.
//! The phases are chapter 4's (open, draining, lingering, closed); what
//! is new is that operations are in flight at almost every moment, and
//! must be cancelled, and their end awaited, to stop them.
//!
//! At most one receive and one send are in flight per connection. The
//! receive is multishot: asked for once, it completes at every arrival
//! of bytes until it is cancelled or fails. One send at a time keeps the
//! acks in order.

use std::mem;
use std::net::{Shutdown as Direction, SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use ch04_epoll::connection::{ACKS, OUTPUT_CAP};
use ch04_epoll::poller::Token;
use ch04_epoll::timers::{Timer, TimerKind, Timers};
use protocol::budget::{Ledger, BUSY_REPLY};
use protocol::clock::{MessageClock, TIMEOUT_REPLY};
use protocol::close::{Ending, LINGER};

use protocol::log::Preview;
use protocol::{event, Decoder, Frame, Work, WorkKind, ACK};

use crate::pool::Filled;
use crate::ring::{OpToken, Ring};

/// The reply to a client that was silent for too long.
const IDLE_REPLY: &[u8] = b"err idle timeout";

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
    /// The rings: where receives and sends are asked for.
    pub ring: &'a mut Ring,
    /// Who holds how many bytes of unfinished messages: a connection
    /// records what it holds after every receive, and the loop evicts
    /// the largest holders when the total is over the budget.
    pub ledger: &'a mut Ledger,
}

/// Where a connection is in its life (as in chapter 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading messages, working on them, acking them.
    Open,
    /// Reading nothing more: finishing the work on messages already
    /// read, then sending the acks and the reply.
    Draining,
    /// Everything is sent and our side is shut down; receiving and
    /// discarding until the client closes or `until`.
    Lingering { until: Instant },
    /// Done: the loop cancels what is in flight and drops it.
    Closed,
}

// ANCHOR: connection
/// One client's state between completions.
#[derive(Debug)]
pub struct Connection {
    /// Shared with the ring's table while an operation is in flight, so
    /// the descriptor outlives every request that names it.
    socket: Rc<TcpStream>,
    peer: SocketAddr,
    token: Token,
    phase: Phase,
    /// The multishot receive in flight, if any, until its final
    /// completion.
    recv: Option<OpToken>,
    /// Whether that receive has been asked to stop.
    recv_cancelled: bool,
    /// Whether the last receive ended because the pool was empty: the
    /// next waits for the loop ([`Connection::resume`]).
    starved: bool,
    /// The send in flight, if any.
    send: Option<OpToken>,
    /// How many bytes it sends.
    sending: usize,
    /// Bytes of an unfinished message, at most `--max-message-bytes`.
    decoder: Decoder,
    /// Messages read but not yet acked; the first is being worked on.
    queued: u64,
    /// When the work on the first queued message is done.
    work_due: Option<Instant>,
    /// Bytes of `ackack...` not yet sent.
    owed: usize,
    /// The reply to send once every message is acked (`err ...`).
    reply: &'static [u8],
    /// The part of the reply not yet sent.
    unsent: &'static [u8],
    /// Why the connection is closing, once it is.
    ending: Option<Ending>,
    /// The last time the client sent a byte, took a byte, or a message's
    /// work finished: idle time is counted from here.
    last_active: Instant,
    /// The deadline of this connection's idle check in the timer heap.
    idle_check: Option<Instant>,
    /// The unfinished message's deadline (the contract,
    /// book/contract.md: a message must be complete in time).
    clock: MessageClock,
    /// Acks made since the last log line about them.
    fresh_acks: u32,
}
// ANCHOR_END: connection

impl Connection {
    /// A freshly accepted client: its first receive is queued at once.
    pub fn new(
        socket: TcpStream,
        peer: SocketAddr,
        token: Token,
        max_message_bytes: usize,
        message_timeout: Option<Duration>,
        cx: &mut Context<'_>,
    ) -> Connection {
        let mut connection = Connection {
            socket: Rc::new(socket),
            peer,
            token,
            phase: Phase::Open,
            recv: None,
            recv_cancelled: false,
            starved: false,
            send: None,
            sending: 0,
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
            fresh_acks: 0,
        };
        connection.advance(cx);
        connection
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Once closed, why; the loop then calls [`Connection::release`] and
    /// drops it.
    pub fn closed(&self) -> Option<&Ending> {
        match self.phase {
            Phase::Closed => self.ending.as_ref(),
            _ => None,
        }
    }

    // ANCHOR: release
    /// Cancels whatever is in flight. The connection may then be dropped
    /// at once: the ring's table keeps the socket open until the kernel
    /// confirms each cancellation.
    pub fn release(&mut self, ring: &mut Ring) {
        if self.recv_cancelled {
            self.recv = None; // asked already
        }
        for op in [self.recv.take(), self.send.take()].into_iter().flatten() {
            ring.cancel(op);
        }
    }
    // ANCHOR_END: release

    // ANCHOR: on_received
    /// The receive completed: `result` bytes arrived in `buffer` (0 at
    /// end of stream), or it failed with `-result`. Without `more`, it
    /// has ended, and `unread` says whether bytes were left in the
    /// socket. The buffer goes back to the pool here.
    pub fn on_received(
        &mut self,
        result: i32,
        more: bool,
        unread: bool,
        buffer: Option<Filled>,
        cx: &mut Context<'_>,
    ) {
        if !more {
            self.recv = None;
            self.recv_cancelled = false;
            // A one-buffer receive that left bytes behind: back in the
            // queue for the reserve, as if the pool were still empty.
            self.starved = unread;
        }
        match (self.phase, usize::try_from(result)) {
            (Phase::Closed, _) => {}
            (Phase::Open, Ok(0)) => {
                let dropped = self.decoder.pending_bytes();
                self.drain(Ending::EndOfStream { dropped }, b"");
            }
            (Phase::Open, Ok(_)) => {
                self.last_active = cx.now;
                if let Some(filled) = &buffer {
                    self.take_input(cx.ring.bytes(filled), cx.now);
                }
                // Account after every receive: over the budget, the loop
                // evicts the largest holders before the next completion.
                cx.ledger.record(self.token, self.held());
            }
            // Draining reads nothing more: bytes that were on their way
            // when the receive was cancelled are dropped, as chapter 4
            // leaves them unread.
            (Phase::Draining, Ok(_)) => {}
            // Lingering: the client has closed too, nothing can be reset.
            (Phase::Lingering { .. }, Ok(0)) => self.phase = Phase::Closed,
            (Phase::Lingering { .. }, Ok(_)) => {}
            // The pool was empty: the loop says when to ask again.
            (_, Err(_)) if -result == libc::ENOBUFS => self.starved = true,
            // Cancelled by us: asked for again below if still wanted.
            (_, Err(_)) if -result == libc::ECANCELED => {}
            (Phase::Lingering { .. }, Err(_)) => self.phase = Phase::Closed,
            (_, Err(_)) => {
                let error = std::io::Error::from_raw_os_error(-result);
                self.close(Ending::Vanished(error));
            }
        }
        if let Some(filled) = buffer {
            cx.ring.give_back(filled);
        }
        self.advance(cx);
    }

    /// Frames `input` into messages and queues them for work.
    fn take_input(&mut self, mut input: &[u8], now: Instant) {
        while self.phase == Phase::Open {
            match self.decoder.decode(&mut input) {
                Ok(None) => break,
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
    // ANCHOR_END: on_received

    // ANCHOR: on_sent
    /// A send completed: `result` bytes were taken, or it failed.
    pub fn on_sent(&mut self, result: i32, cx: &mut Context<'_>) {
        self.send = None;
        self.sending = 0;
        match usize::try_from(result) {
            _ if self.phase == Phase::Closed => {}
            // The only sends are acks, then one reply once all are acked:
            // while acks are owed, the send was of acks.
            Ok(n) if n > 0 && self.owed > 0 => {
                self.owed -= n;
                self.last_active = cx.now;
            }
            Ok(n) if n > 0 => {
                self.unsent = &self.unsent[n..];
                self.last_active = cx.now;
            }
            Ok(_) => {
                let error = std::io::ErrorKind::WriteZero.into();
                self.close(Ending::Vanished(error));
            }
            Err(_) => {
                let error = std::io::Error::from_raw_os_error(-result);
                self.close(Ending::Vanished(error));
            }
        }
        self.advance(cx);
    }
    // ANCHOR_END: on_sent

    // ANCHOR: on_timer
    /// Reacts to one of this connection's deadlines; stale ones (timers
    /// are never cancelled) are ignored.
    pub fn on_timer(&mut self, timer: Timer, cx: &mut Context<'_>) {
        if !self.awaits(&timer) {
            return;
        }
        match timer.kind {
            TimerKind::Work => {
                self.work_due = None;
                if cx.work.kind == WorkKind::Spin {
                    // CPU work runs right here, as in chapter 4: the
                    // whole loop waits for it.
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

    /// Whether `timer` is a deadline this connection waits for.
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

    /// The server is shutting down: read nothing more, finish the message
    /// in progress, then close (as chapter 4's `stop`).
    pub fn stop(&mut self, cx: &mut Context<'_>) {
        if self.phase == Phase::Open {
            self.drain(Ending::Shutdown, b"");
        }
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

    /// Bytes of an unfinished message this connection holds: what the
    /// buffer budget counts.
    pub fn held(&self) -> usize {
        match self.phase {
            Phase::Open => self.decoder.pending_bytes(),
            // `drain` dropped the unfinished message.
            _ => 0,
        }
    }

    // ANCHOR: evict
    /// The loop evicts this connection to keep the buffer budget (as in
    /// chapter 4): its unfinished message (`held` bytes) is dropped now,
    /// and so are the complete messages not yet worked on (or in work);
    /// the acks of the ones whose work is done are still sent, then
    /// `err server busy`.
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
    /// Moves the state machine as far as it can go without waiting, and
    /// asks for the receive and send it needs next.
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
            && self.send.is_none()
        {
            self.finish(cx);
        }
        self.receive(cx);
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
                WorkKind::Sleep => cx.now + cx.work.duration,
                // One spin per turn of the loop (see `on_timer`).
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

    /// One line per new ack, once `flush` has tried to send it: sent if
    /// the send just asked for holds every byte owed (the kernel gets it
    /// at the end of this turn), else waiting behind a send in flight.
    fn log_acks(&mut self) {
        for _ in 0..mem::take(&mut self.fresh_acks) {
            let unsent = self.owed - self.sending.min(self.owed);
            if unsent == 0 {
                event!("ack sent to {}", self.peer);
            } else {
                event!("ack for {} waits: {unsent} bytes unsent", self.peer);
            }
        }
    }
    // ANCHOR_END: advance

    // ANCHOR: flush
    /// Asks for a send of what is owed, unless one is in flight: its
    /// completion calls this again.
    fn flush(&mut self, cx: &mut Context<'_>) {
        if self.send.is_some() || self.phase == Phase::Closed {
            return;
        }
        let bytes: &'static [u8] = if self.owed > 0 {
            // Where in "ack" the next byte is, after a partial send.
            let start = (ACK.len() - self.owed % ACK.len()) % ACK.len();
            &ACKS[start..ACKS.len().min(start + self.owed)]
        } else if !self.unsent.is_empty() {
            self.unsent
        } else {
            return;
        };
        let socket = Rc::clone(&self.socket);
        self.sending = bytes.len();
        self.send = Some(cx.ring.send(self.token, socket, bytes));
    }
    // ANCHOR_END: flush

    // ANCHOR: receive
    /// Asks for a multishot receive if this phase reads and none is in
    /// flight; cancels the one in flight if this phase does not read.
    /// A receive that found the pool empty waits for the loop instead
    /// (see `waits_for_buffer`).
    fn receive(&mut self, cx: &mut Context<'_>) {
        let wanted = self.reads();
        // Not reading, it waits for no buffer; reading again later, it
        // first tries the shared pool.
        self.starved &= wanted;
        match self.recv {
            // A cancelled receive must end before another starts, so
            // that bytes arrive in one order.
            None if wanted && !self.starved => {
                let socket = Rc::clone(&self.socket);
                self.recv = Some(cx.ring.recv(self.token, socket));
            }
            Some(op) if !wanted && !self.recv_cancelled => {
                cx.ring.cancel(op);
                self.recv_cancelled = true;
            }
            _ => {}
        }
    }
    // ANCHOR_END: receive

    /// Whether this phase reads from the client.
    fn reads(&self) -> bool {
        match self.phase {
            // Flow control, as in chapter 4: while this many bytes of
            // acks are ahead, TCP holds the client back, not our memory.
            Phase::Open => self.acks_ahead() < OUTPUT_CAP as u64,
            Phase::Lingering { .. } => true,
            Phase::Draining | Phase::Closed => false,
        }
    }

    /// If this connection's receive found the pool empty and it still
    /// reads: its place in the queue for the reserve, lowest first (see
    /// the loop's `resume_receives`). First a connection that holds no
    /// unfinished message; then the one holding the most bytes of one;
    /// last a lingering one, which only discards what arrives.
    pub fn waits_for_buffer(&self) -> Option<usize> {
        if !self.starved || self.recv.is_some() || !self.reads() {
            return None;
        }
        match (self.phase, self.decoder.pending_bytes()) {
            (Phase::Lingering { .. }, _) => Some(usize::MAX),
            (_, 0) => Some(0),
            // Holding at least a byte: between the two, more is earlier.
            (_, held) => Some(usize::MAX - held),
        }
    }

    /// Its turn has come: one receive into a buffer of the reserve. When
    /// that completes, the connection waits again if it left bytes
    /// behind, or `receive` asks for a multishot receive again.
    pub fn resume(&mut self, cx: &mut Context<'_>) {
        let socket = Rc::clone(&self.socket);
        if let Some(op) = cx.ring.recv_reserved(self.token, socket) {
            self.recv = Some(op);
            self.starved = false;
        }
    }

    /// Bytes of acks ahead of the client: owed, and those of the messages
    /// still waiting for their work.
    fn acks_ahead(&self) -> u64 {
        self.owed as u64 + ACK.len() as u64 * self.queued
    }

    fn has_output(&self) -> bool {
        self.owed > 0 || !self.unsent.is_empty()
    }

    // ANCHOR: deadlines
    /// Puts this connection's idle check in the timer heap, unless one is
    /// there already (chapter 4's `arm_idle_check`): reads and sends only
    /// move `last_active`, and the check looks again when it comes due.
    fn arm_idle_check(&mut self, cx: &mut Context<'_>) {
        let Some(limit) = cx.idle else { return };
        if self.idle_check.is_some()
            || !matches!(self.phase, Phase::Open | Phase::Draining)
        {
            return;
        }
        // While the clock stands still, the earliest it can run out is a
        // whole limit after now.
        let at = if self.idle_clock_runs() {
            self.last_active + limit
        } else {
            cx.now + limit
        };
        self.idle_check = Some(at);
        cx.timers.schedule(at, self.token, TimerKind::Idle);
    }

    /// The idle check came due. Every completion of this turn was handled
    /// before any timer (and the kernel's undelivered work collected), so
    /// bytes that arrived in time - even while the process was stopped -
    /// have been taken in by now.
    fn check_idle(&mut self, cx: &mut Context<'_>) {
        let Some(limit) = cx.idle else { return };
        if !self.idle_clock_runs() || cx.now < self.last_active + limit {
            return; // `advance` arms the next check
        }
        if self.phase == Phase::Open && !self.has_output() {
            self.drain(Ending::IdleTimeout, IDLE_REPLY);
        } else if matches!(self.phase, Phase::Open | Phase::Draining) {
            // It has not taken our output for the whole limit: a reply
            // would never reach it.
            self.close(Ending::IdleTimeout);
        }
    }

    /// Whether the server waits for the client: not while a message is
    /// worked on, nor while the client's bytes wait for a buffer of the
    /// pool (the server's delay, not the client's silence).
    fn idle_clock_runs(&self) -> bool {
        self.queued == 0 && !self.starved
    }

    /// Starts or stops the message clock and puts its deadline in the
    /// timer heap (chapter 4's `arm_message_check`): the clock runs while
    /// the connection holds bytes of an unfinished message and no message
    /// before it waits for its work.
    fn arm_message_check(&mut self, cx: &mut Context<'_>) {
        let waiting = self.phase == Phase::Open
            && self.queued == 0
            && self.decoder.pending_bytes() > 0;
        let before = self.clock.deadline();
        self.clock.track(waiting, cx.now);
        let deadline = self.clock.deadline();
        if let Some(at) = deadline.filter(|_| deadline != before) {
            cx.timers.schedule(at, self.token, TimerKind::Message);
        }
    }

    /// The message deadline came: the complete messages before it are
    /// still worked on and acked, then `err message timeout`.
    fn check_message(&mut self, cx: &mut Context<'_>) {
        if self.phase == Phase::Open && self.clock.expired(cx.now) {
            self.drain(Ending::MessageTimeout, TIMEOUT_REPLY);
        }
    }
    // ANCHOR_END: deadlines

    // ANCHOR: closing
    /// Stops reading: the messages read so far are worked on and acked,
    /// then `reply` is sent and the connection closes.
    fn drain(&mut self, ending: Ending, reply: &'static [u8]) {
        // No more input will be decoded: give back the unfinished message
        // now (a decoder for no message allocates nothing).
        self.decoder = Decoder::new(0);
        self.phase = Phase::Draining;
        self.ending = Some(ending);
        self.reply = reply;
    }

    /// Everything is sent: close, lingering if the client may still be
    /// sending (chapter 4's `finish`).
    fn finish(&mut self, cx: &mut Context<'_>) {
        if let Some(Ending::EndOfStream { .. }) = self.ending {
            self.phase = Phase::Closed;
            return;
        }
        // One plain system call per closing connection: io_uring has a
        // shutdown request too, but the loop would gain nothing from it.
        if self.socket.shutdown(Direction::Write).is_err() {
            self.phase = Phase::Closed;
            return;
        }
        let until = cx.now + LINGER;
        self.phase = Phase::Lingering { until };
        cx.timers.schedule(until, self.token, TimerKind::Linger);
    }

    /// Ends the connection now; the loop cancels what is in flight.
    fn close(&mut self, ending: Ending) {
        self.ending = Some(ending);
        self.phase = Phase::Closed;
    }
    // ANCHOR_END: closing
}
