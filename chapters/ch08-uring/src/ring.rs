//! The two rings, and the table of what the kernel holds.
//!
//! io_uring is two queues shared between this process and the kernel: we
//! write requests into the *submission* ring ("receive from that
//! socket"), one `io_uring_enter` system call hands the kernel every
//! request written since the last one and waits, and the kernel writes a
//! *completion* ("done: 37 bytes, in buffer 12") into the other ring for
//! each. A request names its completion with a 64-bit `user_data` of our
//! choosing.
//!
//! The hard part is not the rings but what a request points to. Between
//! submission and completion the kernel may use that memory at any
//! moment, and the compiler cannot see it. So every request in flight has
//! an entry in [`Ring`]'s table of operations, and the entry *owns* what
//! the kernel uses: a reference to the socket, so that its descriptor
//! stays open (and its number is not reused under the request). A
//! connection may be dropped at any time; its requests are cancelled, and
//! their entries keep the sockets alive until the kernel reports each
//! request finished. The receive buffers belong to the pool ([`Pool`]),
//! which the ring owns and frees only when nothing is in flight.
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::ptr;
use std::rc::Rc;
use std::time::Duration;

use ch04_epoll::poller::Token;
use ch04_epoll::slab::Slab;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use protocol::Shutdown;

use crate::pool::{
    Filled, Pool, RESERVE, RESERVE_BUFFERS, RESERVE_BUFFER_SIZE, SHARED,
};

/// Submission-ring slots. When they run out mid-turn, what is queued is
/// submitted early (see [`Ring::push`]); a completion ring of four times
/// as many holds the replies of a busy turn.
const ENTRIES: u32 = 4096;

/// The `user_data` of cancellation requests: their own completions say
/// nothing we act on, and no operation token is ever this value (it
/// would be slot 4,294,967,295 of the table).
const CANCEL: u64 = u64::MAX;

/// Flags of a receive request (`include/uapi/linux/io_uring.h`; the
/// crate's builder for a multishot receive cannot add the second).
const RECV_MULTISHOT: u16 = 1 << 1;
const RECV_POLL_FIRST: u16 = 1 << 0;

/// An operation's key in the table, and its request's `user_data`.
pub type OpToken = u64;

// ANCHOR: op
/// One request the kernel holds, with everything it borrows.
#[derive(Debug)]
pub enum Op {
    /// Accepting connections, until cancelled or it fails: one request,
    /// many completions.
    Accept {
        /// Keeps the listening socket open while the kernel uses it.
        listener: Rc<TcpListener>,
    },
    /// Waiting for the shutdown switch to become readable.
    Shutdown {
        /// Keeps the switch's descriptor open.
        switch: Shutdown,
    },
    /// Receiving into buffers of the pool for the connection `owner`,
    /// until cancelled or it fails: one request, a completion for every
    /// arrival of bytes (multishot receive).
    Recv {
        /// The connection's token; it may be gone when the op completes.
        owner: Token,
        /// Keeps the socket open while the kernel reads from it.
        socket: Rc<TcpStream>,
        /// A one-buffer receive from the reserve, not multishot.
        reserved: bool,
    },
    /// Sending `bytes` to the connection `owner`.
    Send {
        /// The connection's token.
        owner: Token,
        /// Keeps the socket open while the kernel writes to it.
        socket: Rc<TcpStream>,
        /// Acks and replies are `'static`: nothing to keep alive.
        bytes: &'static [u8],
    },
}
// ANCHOR_END: op

/// What an op is for, without what it owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The multishot accept.
    Accept,
    /// The shutdown switch.
    Shutdown,
    /// A receive for this connection.
    Recv(Token),
    /// A send for this connection.
    Send(Token),
}

impl Op {
    /// What this op is for.
    pub fn purpose(&self) -> Purpose {
        match self {
            Op::Accept { .. } => Purpose::Accept,
            Op::Shutdown { .. } => Purpose::Shutdown,
            Op::Recv { owner, .. } => Purpose::Recv(*owner),
            Op::Send { owner, .. } => Purpose::Send(*owner),
        }
    }
}

/// One completion, copied out of the ring.
#[derive(Debug)]
pub struct Completion {
    /// Which operation.
    pub op: OpToken,
    /// A count of bytes, a descriptor, or a negated `errno`.
    pub result: i32,
    /// The operation goes on and will complete again (multishot).
    pub more: bool,
    /// The pool's buffer the kernel filled, for a receive with bytes.
    pub buffer: Option<Filled>,
    /// For a receive: more bytes were waiting in the socket after it.
    pub unread: bool,
}

/// The rings and the operations in flight.
pub struct Ring {
    uring: IoUring,
    ops: Slab<Op>,
    pool: Pool,
    /// One-buffer receives from the reserve in flight: each may take one
    /// of its buffers, so at most `RESERVE_BUFFERS` are.
    reserved: u16,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ring {{ {} operations in flight }}", self.ops.len())
    }
}

impl Ring {
    // ANCHOR: new
    /// Sets up the rings.
    ///
    /// # Errors
    ///
    /// When the kernel refuses io_uring: `ENOSYS` on kernels before 5.1
    /// or built without it, `EPERM` when the sysctl
    /// `kernel.io_uring_disabled` or a seccomp filter forbids it, `EINVAL`
    /// on kernels too old for the flags (before 6.0). The error says so
    /// in one line.
    pub fn new() -> io::Result<Ring> {
        let uring = IoUring::builder()
            // One thread submits. The work that turns a finished
            // operation into a completion waits for that thread's next
            // system call, instead of interrupting it from another core:
            // completions come in batches, mostly in the loop's one call.
            .setup_single_issuer()
            .setup_coop_taskrun()
            // ...and a flag in the shared memory says when such work is
            // waiting (see `Ring::undelivered`).
            .setup_taskrun_flag()
            .setup_cqsize(4 * ENTRIES)
            .build(ENTRIES)
            .map_err(|e| {
                let why = match e.raw_os_error() {
                    Some(libc::ENOSYS) => "the kernel has no io_uring",
                    Some(libc::EPERM) => {
                        "io_uring is disabled here \
                        (sysctl kernel.io_uring_disabled, or seccomp)"
                    }
                    Some(libc::EINVAL) => {
                        "the kernel's io_uring is too old \
                        (this server needs Linux 6.0 or later)"
                    }
                    _ => "cannot set up io_uring",
                };
                io::Error::new(e.kind(), format!("{why}: {e}"))
            })?;
        let pool = Pool::register(&uring).map_err(|e| {
            let why = "cannot register receive buffers with io_uring \
                (this server needs Linux 5.19 or later)";
            io::Error::new(e.kind(), format!("{why}: {e}"))
        })?;
        Ok(Ring {
            uring,
            ops: Slab::new(),
            pool,
            reserved: 0,
        })
    }
    // ANCHOR_END: new

    // ANCHOR: push
    /// Records `op` in the table, then queues `request` for it, with the
    /// op's token as `user_data`. Nothing reaches the kernel before the
    /// next [`Ring::submit_and_wait`].
    fn start(&mut self, op: Op, request: squeue::Entry) -> OpToken {
        let token = self.ops.insert(op);
        self.push(&request.user_data(token));
        token
    }

    /// Queues one request, submitting what is queued first if the
    /// submission ring is full.
    fn push(&mut self, entry: &squeue::Entry) {
        loop {
            // SAFETY: every pointer in a request built by this module
            // points to memory that outlives the request: the socket of
            // every request is owned by the op's entry in `self.ops`,
            // which is removed only when the kernel reports the request
            // finished (`take`), and never freed while the ring lives
            // (see `Drop for Ring`); receives point to the pool, freed
            // only when no request is in flight; sends point to
            // `'static` bytes; cancellations point to nothing.
            let pushed = unsafe { self.uring.submission().push(entry) };
            if pushed.is_ok() {
                return;
            }
            // Full: hand the kernel what is queued, which empties the
            // submission ring. Not waiting, so this cannot block. EINTR,
            // EBUSY (completions to read first) and EAGAIN (no memory for
            // a request just now) mean "try again"; anything else is a
            // bug in how this module uses the ring.
            if let Err(e) = self.uring.submit() {
                let again = [libc::EINTR, libc::EBUSY, libc::EAGAIN];
                if !e.raw_os_error().is_some_and(|n| again.contains(&n)) {
                    panic!("io_uring_enter failed with a full queue: {e}");
                }
            }
        }
    }
    // ANCHOR_END: push

    /// Accepts connections on `listener` until cancelled: one request for
    /// every connection to come (multishot accept).
    pub fn accept(&mut self, listener: Rc<TcpListener>) -> OpToken {
        let fd = types::Fd(listener.as_raw_fd());
        let request = opcode::AcceptMulti::new(fd)
            .flags(libc::SOCK_CLOEXEC)
            .build();
        self.start(Op::Accept { listener }, request)
    }

    /// Completes once `switch` is on.
    pub fn watch(&mut self, switch: Shutdown) -> OpToken {
        let fd = types::Fd(switch.as_fd().as_raw_fd());
        let request = opcode::PollAdd::new(fd, libc::POLLIN as u32).build();
        self.start(Op::Shutdown { switch }, request)
    }

    // ANCHOR: recv
    /// Receives from `socket` into the pool's shared part, for the
    /// connection `owner`, until cancelled or the part is empty: each
    /// arrival of bytes is a completion naming the buffer the kernel
    /// filled.
    pub fn recv(&mut self, owner: Token, socket: Rc<TcpStream>) -> OpToken {
        let fd = types::Fd(socket.as_raw_fd());
        // Multishot, and waiting for bytes before picking a buffer: by
        // default the kernel tries a receive at once, and with the pool
        // empty that fails (`ENOBUFS`) even if no byte has arrived.
        let request = opcode::Recv::new(fd, ptr::null_mut(), 0)
            .ioprio(RECV_MULTISHOT | RECV_POLL_FIRST)
            .buf_group(SHARED)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT);
        let op = Op::Recv {
            owner,
            socket,
            reserved: false,
        };
        self.start(op, request)
    }

    /// Receives once from `socket` into a buffer of the pool's reserve,
    /// for the connection `owner`, if the reserve has a buffer for it:
    /// every buffer of the reserve has at most one such receive.
    pub fn recv_reserved(
        &mut self,
        owner: Token,
        socket: Rc<TcpStream>,
    ) -> Option<OpToken> {
        if self.reserved == RESERVE_BUFFERS {
            return None;
        }
        self.reserved += 1;
        let fd = types::Fd(socket.as_raw_fd());
        // No address: the kernel picks a buffer of the group.
        let request =
            opcode::Recv::new(fd, ptr::null_mut(), RESERVE_BUFFER_SIZE as u32)
                .buf_group(RESERVE)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT);
        let op = Op::Recv {
            owner,
            socket,
            reserved: true,
        };
        Some(self.start(op, request))
    }

    /// Whether the reserve can take another receive.
    pub fn reserve_left(&self) -> bool {
        self.reserved < RESERVE_BUFFERS
    }

    /// The bytes of a buffer the kernel filled.
    pub fn bytes(&self, filled: &Filled) -> &[u8] {
        self.pool.bytes(filled)
    }

    /// Gives a filled buffer back to the kernel's pool.
    pub fn give_back(&mut self, filled: Filled) {
        self.pool.give_back(filled);
    }
    // ANCHOR_END: recv

    /// Sends `bytes` to `socket`, for the connection `owner`.
    pub fn send(
        &mut self,
        owner: Token,
        socket: Rc<TcpStream>,
        bytes: &'static [u8],
    ) -> OpToken {
        let fd = types::Fd(socket.as_raw_fd());
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        // MSG_NOSIGNAL: a reset client makes the send fail with EPIPE,
        // not raise SIGPIPE.
        let request = opcode::Send::new(fd, bytes.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build();
        let op = Op::Send {
            owner,
            socket,
            bytes,
        };
        self.start(op, request)
    }

    // ANCHOR: cancel
    /// Asks the kernel to give up `op`. Its entry stays in the table,
    /// owning its socket, until the op's own completion
    /// arrives: with `-ECANCELED`, or with a result if it finished first.
    pub fn cancel(&mut self, op: OpToken) {
        let entry = opcode::AsyncCancel::new(op).build().user_data(CANCEL);
        self.push(&entry);
    }
    // ANCHOR_END: cancel

    // ANCHOR: submit_and_wait
    /// The loop's one system call: hands the kernel every request queued
    /// since the last call, and waits until at least one completion is
    /// ready or `timeout` has passed (forever if `None`).
    ///
    /// # Errors
    ///
    /// Only failures of `io_uring_enter` itself; a timeout, a signal
    /// (EINTR) or a full completion ring (EBUSY) are normal returns.
    pub fn submit_and_wait(
        &mut self,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let submitter = self.uring.submitter();
        let result = match timeout {
            Some(timeout) => {
                let timespec = types::Timespec::from(timeout);
                let args = types::SubmitArgs::new().timespec(&timespec);
                submitter.submit_with_args(1, &args)
            }
            None => submitter.submit_and_wait(1),
        };
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.raw_os_error() {
                // The timeout passed with nothing done; a signal handler
                // ran (SIGHUP is logged and ignored); the completion ring
                // is full and we must read it. All mean: go on.
                Some(libc::ETIME | libc::EINTR | libc::EBUSY) => Ok(()),
                _ => Err(e),
            },
        }
    }
    // ANCHOR_END: submit_and_wait

    /// Moves every completion ready in the ring to `into`, except those
    /// of cancellation requests.
    pub fn reap(&mut self, into: &mut Vec<Completion>) {
        for entry in self.uring.completion() {
            if entry.user_data() == CANCEL {
                continue;
            }
            let len = usize::try_from(entry.result()).unwrap_or(0);
            let buffer = cqueue::buffer_select(entry.flags()).map(|id| {
                // SAFETY: the id is this completion's, read once: the
                // kernel has handed that buffer over.
                unsafe { Pool::filled(id, len) }
            });
            into.push(Completion {
                op: entry.user_data(),
                result: entry.result(),
                more: cqueue::more(entry.flags()),
                buffer,
                unread: cqueue::sock_nonempty(entry.flags()),
            });
        }
    }

    // ANCHOR: undelivered
    /// Whether the kernel holds finished work it has not delivered as
    /// completions yet: that work waits for this thread (see
    /// `Ring::new`), and a wait that ends on its timeout may return
    /// before it has run - say when the process was stopped (SIGSTOP, a
    /// debugger) while a client's bytes arrived. A flag in shared
    /// memory: no system call.
    pub fn undelivered(&mut self) -> bool {
        self.uring.submission().taskrun()
    }

    /// Has the kernel deliver what it finished, without waiting, and
    /// moves the completions to `into`.
    ///
    /// # Errors
    ///
    /// As [`Ring::submit_and_wait`].
    pub fn deliver(&mut self, into: &mut Vec<Completion>) -> io::Result<()> {
        // With work pending, a plain submit asks the kernel to run it
        // (`IORING_ENTER_GETEVENTS`) and returns at once.
        match self.uring.submit() {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::EBUSY)
                ) => {}
            Err(e) => return Err(e),
        }
        self.reap(into);
        Ok(())
    }
    // ANCHOR_END: undelivered

    /// The op a completion is for, still in flight (`more`), or `None`.
    pub fn get(&self, op: OpToken) -> Option<&Op> {
        self.ops.get(op)
    }

    /// The op a final completion is for, out of the table: the kernel is
    /// done with it, so what it owns is the caller's again.
    pub fn take(&mut self, op: OpToken) -> Option<Op> {
        let taken = self.ops.remove(op);
        if let Some(Op::Recv { reserved: true, .. }) = taken {
            self.reserved -= 1;
        }
        taken
    }

    /// Operations the kernel still holds.
    pub fn in_flight(&self) -> usize {
        self.ops.len()
    }
}

// ANCHOR: drop
impl Drop for Ring {
    /// Closing the ring makes the kernel cancel what is still in flight,
    /// but in the background, after `close` returns: memory freed now
    /// could still be written. So with anything in flight, the pool and
    /// the table are leaked instead. The server waits for every
    /// completion before it returns, so this happens only when something
    /// failed.
    fn drop(&mut self) {
        if self.ops.is_empty() {
            // SAFETY: no request is in flight, so nothing can pick a
            // buffer; the ring is being dropped, so nothing uses the pool
            // after.
            unsafe { self.pool.free(&self.uring) };
        } else {
            std::mem::forget(std::mem::take(&mut self.ops));
        }
    }
}
// ANCHOR_END: drop

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A connected pair over loopback: the server's end, shared as the
    /// connections share theirs, and the client's.
    fn connected() -> (Rc<TcpStream>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let client = TcpStream::connect(addr).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        (Rc::new(server), client)
    }

    /// Waits for completions until one for `op` arrives.
    fn completion_of(ring: &mut Ring, op: OpToken) -> Completion {
        let mut completions = Vec::new();
        for _ in 0..100 {
            let wait = Some(Duration::from_millis(100));
            ring.submit_and_wait(wait).expect("io_uring_enter");
            ring.reap(&mut completions);
            if let Some(at) = completions.iter().position(|c| c.op == op) {
                return completions.swap_remove(at);
            }
        }
        panic!("no completion for op {op} in 10 s");
    }

    /// A receive whose owner let go of its socket handle still has the
    /// socket in the table: the kernel fills a buffer of the pool when
    /// the client's bytes arrive, once, then again; the receive goes on.
    #[test]
    fn a_receive_goes_on_after_its_owner_let_go() {
        let Ok(mut ring) = Ring::new() else {
            eprintln!("skipped: the kernel refuses io_uring");
            return;
        };
        let (server, mut client) = connected();
        let op = ring.recv(1, Rc::clone(&server));
        drop(server);
        ring.submit_and_wait(Some(Duration::ZERO))
            .expect("submitted");
        for bytes in [&b"hello\x03"[..], b"again\x03"] {
            client.write_all(bytes).expect("sent");
            let done = completion_of(&mut ring, op);
            assert!(done.more, "a multishot receive goes on");
            let filled = done.buffer.expect("a filled buffer");
            assert_eq!(ring.bytes(&filled), bytes);
            ring.give_back(filled);
        }
        assert_eq!(ring.in_flight(), 1);
    }

    /// The ring's tail index is 16 bits and wraps: the pool must go on
    /// handing out the right buffers past 65,536 returns. A byte at a
    /// time, each received into a buffer and given back, 70,000 times.
    #[test]
    fn the_pool_works_past_the_wrap_of_its_tail() {
        let Ok(mut ring) = Ring::new() else {
            eprintln!("skipped: the kernel refuses io_uring");
            return;
        };
        let (server, mut client) = connected();
        let op = ring.recv(1, server);
        for i in 0..70_000u32 {
            let byte = [b'a' + (i % 26) as u8];
            client.write_all(&byte).expect("sent");
            let done = completion_of(&mut ring, op);
            let filled = done.buffer.expect("a filled buffer");
            assert_eq!(ring.bytes(&filled), byte, "return {i}");
            ring.give_back(filled);
        }
    }

    /// A receive from the reserve takes one buffer of it, ends, and says
    /// that bytes are left; its claim on the reserve ends with it.
    #[test]
    fn a_reserved_receive_takes_one_buffer_and_tells_what_is_left() {
        let Ok(mut ring) = Ring::new() else {
            eprintln!("skipped: the kernel refuses io_uring");
            return;
        };
        let (server, mut client) = connected();
        let sent: Vec<u8> = (0..3 * RESERVE_BUFFER_SIZE)
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        client.write_all(&sent).expect("sent");
        let op = ring.recv_reserved(1, server).expect("the reserve is free");
        assert_eq!(ring.reserved, 1);
        let done = completion_of(&mut ring, op);
        assert!(!done.more, "one buffer, one completion");
        assert!(done.unread, "two buffers' worth is left");
        let filled = done.buffer.expect("a filled buffer");
        assert_eq!(ring.bytes(&filled), &sent[..RESERVE_BUFFER_SIZE]);
        ring.give_back(filled);
        assert!(ring.take(op).is_some());
        assert_eq!(ring.reserved, 0);
    }

    /// A cancelled receive stays in the table until the kernel confirms,
    /// with -ECANCELED and no buffer.
    #[test]
    fn a_cancelled_receive_completes_before_its_entry_goes() {
        let Ok(mut ring) = Ring::new() else {
            eprintln!("skipped: the kernel refuses io_uring");
            return;
        };
        let (server, _client) = connected();
        let op = ring.recv(1, server);
        ring.submit_and_wait(Some(Duration::ZERO))
            .expect("submitted");
        ring.cancel(op);
        assert!(ring.get(op).is_some(), "the entry outlives the cancel");
        let done = completion_of(&mut ring, op);
        assert_eq!((done.result, done.more), (-libc::ECANCELED, false));
        assert!(done.buffer.is_none());
        assert!(matches!(ring.take(op), Some(Op::Recv { .. })));
    }
}
