//! The closer: one thread that does the lingering close of every client
//! the accept loop turns away, so that turning a client away never
//! delays accepting the next one.
//!
//! A lingering close (chapter 1's `close_gracefully`) reads and discards
//! what the client still sends for up to [`LINGER`], so that a reset
//! cannot destroy the reply in flight. Done on the accepting thread, each
//! turned-away client that keeps its connection open would stop accepting
//! for half a second: 40 such clients took 20 seconds to get their
//! `err server busy`. So the accepting thread only writes the reply and
//! shuts down its side, which never blocks on a fresh connection, and
//! hands the socket to the closer. The closer waits on all its sockets at
//! once with one `poll`, each until its client closes or its own half
//! second is up.
//!
//! It holds at most [`MAX_LINGERING`] sockets. Past that, the accepting
//! thread closes a turned-away socket at once after the reply: see
//! [`Closer::turn_away`] for what that risks.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown as Direction, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use ch01_single::wait::poll_timeout;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags};
use nix::sys::socket::{send, MsgFlags};
use protocol::close::LINGER;
use protocol::warn;

/// The most turned-away sockets the closer lingers on at once. Each holds
/// a descriptor for up to [`LINGER`]: 1,024 of them is more than two
/// thousand refusals a second, and still a small share of the
/// descriptors a server has (see `protocol::limits`).
pub const MAX_LINGERING: usize = 1024;

/// Reads of one lingering socket per wake-up of the closer (64 KiB).
const READS_PER_ROUND: usize = 16;

// ANCHOR: closer
/// Lingering closes, off the accepting thread. Shared by reference between
/// the accepting thread ([`Closer::turn_away`]) and the closer thread
/// ([`Closer::run`]).
#[derive(Debug)]
pub struct Closer {
    /// Sockets handed over and not yet picked up by the closer thread.
    inbox: Mutex<Vec<TcpStream>>,
    /// Sockets handed over and not yet closed: the inbox and the ones
    /// the closer lingers on. Bounded by [`MAX_LINGERING`].
    held: AtomicUsize,
    /// Set once nothing more will be handed over: the closer thread
    /// returns when it has closed what it holds.
    finished: AtomicBool,
    /// One byte here wakes the closer thread from its `poll`.
    wake: UnixStream,
    woken: UnixStream,
}
// ANCHOR_END: closer

impl Closer {
    /// A closer with nothing to close yet; start [`Closer::run`] on a
    /// thread of its own.
    ///
    /// # Errors
    ///
    /// If the socket pair that wakes the closer cannot be made (out of
    /// descriptors).
    pub fn new() -> io::Result<Closer> {
        let (wake, woken) = UnixStream::pair()?;
        // A full buffer means a wake-up is already on its way: a write
        // that would block is one we do not need.
        wake.set_nonblocking(true)?;
        woken.set_nonblocking(true)?;
        Ok(Closer {
            inbox: Mutex::new(Vec::new()),
            held: AtomicUsize::new(0),
            finished: AtomicBool::new(false),
            wake,
            woken,
        })
    }

    // ANCHOR: turn_away
    /// Sends `reply` to `stream`, shuts down our side, and hands it to
    /// the closer thread for the lingering close. Never blocks.
    ///
    /// The reply is short and the connection brand new, so its send
    /// buffer is empty and the reply fits at once; a reply that would not
    /// fit (a client that vanished already) is dropped with the
    /// connection.
    pub fn turn_away(&self, stream: TcpStream, reply: &[u8]) {
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        let sent = send(stream.as_raw_fd(), reply, flags);
        if sent != Ok(reply.len()) || stream.shutdown(Direction::Write).is_err()
        {
            return;
        }
        // Over the cap, close at once: the reply is already in the send
        // buffer, but if the client sent bytes we never read, closing
        // now makes the kernel answer with a reset, and the reset may
        // reach the client before the reply, which is then lost ("connection
        // reset" instead of `err server busy`). That takes more than
        // MAX_LINGERING refusals within half a second; lingering on all of
        // them instead would let a flood of clients take every descriptor.
        if self.held.fetch_add(1, Ordering::AcqRel) >= MAX_LINGERING {
            self.held.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        if stream.set_nonblocking(true).is_err() {
            self.held.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        self.inbox().push(stream);
        self.wake_up();
    }
    // ANCHOR_END: turn_away

    /// Says that nothing more will be handed over: [`Closer::run`]
    /// returns once the sockets it holds are closed, within [`LINGER`].
    pub fn finish(&self) {
        self.finished.store(true, Ordering::Release);
        self.wake_up();
    }

    // ANCHOR: run
    /// The closer thread's life: wait on every socket it holds at once,
    /// discard what arrives, close each when its client closes or its
    /// [`LINGER`] is up; return after [`Closer::finish`], once it holds
    /// nothing. Sleeps in `poll` when there is nothing to do.
    pub fn run(&self) {
        let mut lingering: Vec<(TcpStream, Instant)> = Vec::new();
        loop {
            let finished = self.finished.load(Ordering::Acquire);
            let deadline = Instant::now() + LINGER;
            lingering.extend(self.inbox().drain(..).map(|s| (s, deadline)));
            let before = lingering.len();
            let now = Instant::now();
            lingering.retain(|(stream, until)| {
                *until > now && still_sending(stream)
            });
            self.held
                .fetch_sub(before - lingering.len(), Ordering::AcqRel);
            if finished && lingering.is_empty() {
                return;
            }
            let next = lingering.iter().map(|&(_, until)| until).min();
            self.wait(&lingering, next);
        }
    }
    // ANCHOR_END: run

    /// Sleeps until a lingering socket has something to read (or has
    /// closed), a new one is handed over, or `deadline` passes.
    fn wait(
        &self,
        lingering: &[(TcpStream, Instant)],
        deadline: Option<Instant>,
    ) {
        let mut fds: Vec<PollFd> = lingering
            .iter()
            .map(|(stream, _)| PollFd::new(stream.as_fd(), PollFlags::POLLIN))
            .collect();
        fds.push(PollFd::new(self.woken.as_fd(), PollFlags::POLLIN));
        match poll(&mut fds, poll_timeout(deadline)) {
            Ok(_) | Err(Errno::EINTR) => {}
            // Cannot happen with valid descriptors and a bounded count;
            // should it, wait out the linger rather than spin.
            Err(e) => {
                warn!("closer: poll failed: {e}");
                std::thread::sleep(LINGER);
            }
        }
        // Empty the wake-up pipe: every byte in it is one wake-up, and
        // the loop looks at everything anyway.
        let mut sink = [0; 64];
        while matches!((&self.woken).read(&mut sink), Ok(n) if n > 0) {}
    }

    /// Wakes the closer thread.
    fn wake_up(&self) {
        // WouldBlock: the pipe is full of wake-ups not yet seen; fine.
        let _ = (&self.wake).write(&[1]);
    }

    /// Locks the inbox, even if a thread panicked holding it: pushing and
    /// draining a `Vec` leave it consistent whatever happens.
    fn inbox(&self) -> std::sync::MutexGuard<'_, Vec<TcpStream>> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Reads and discards what `stream` has for us without waiting; false
/// once the client has closed (or the connection failed): then it is
/// time to close ours.
///
/// At most [`READS_PER_ROUND`] reads: a client that floods must not keep
/// the closer from its other sockets and its deadlines.
fn still_sending(mut stream: &TcpStream) -> bool {
    let mut sink = [0; 4096];
    for _ in 0..READS_PER_ROUND {
        match stream.read(&mut sink) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;
    use std::time::Duration;

    const TIMEOUT: Duration = Duration::from_secs(10);

    /// A connected pair: (the server's end, the client's end).
    fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .expect("connect");
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        let (server, _) = listener.accept().expect("accept");
        (server, client)
    }

    /// Every turned-away client gets the reply and end of stream at once,
    /// although none of them closes; the closer holds them until their
    /// linger is up, then closes them, and returns after `finish`.
    #[test]
    fn replies_at_once_and_closes_after_the_linger() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let closer = Closer::new().expect("closer");
        thread::scope(|scope| {
            scope.spawn(|| closer.run());
            let started = Instant::now();
            let clients: Vec<TcpStream> = (0..20)
                .map(|_| {
                    let (server, mut client) = pair(&listener);
                    closer.turn_away(server, b"err server busy");
                    let mut got = Vec::new();
                    client.read_to_end(&mut got).expect("reply, then EOF");
                    assert_eq!(got, b"err server busy");
                    client
                })
                .collect();
            // Nowhere near 20 lingers one after another.
            assert!(started.elapsed() < LINGER * 4, "{:?}", started.elapsed());
            closer.finish();
            drop(clients);
        });
        assert_eq!(closer.held.load(Ordering::Acquire), 0);
    }

    /// Past [`MAX_LINGERING`], a turned-away socket still gets its reply
    /// but is closed at once instead of being held.
    #[test]
    fn past_the_cap_closes_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        // Never run: nothing it holds is released, so the cap is reached.
        let closer = Closer::new().expect("closer");
        closer.held.store(MAX_LINGERING, Ordering::Release);
        let (server, mut client) = pair(&listener);
        closer.turn_away(server, b"err server busy");
        let mut got = Vec::new();
        client.read_to_end(&mut got).expect("reply, then EOF");
        assert_eq!(got, b"err server busy");
        assert!(closer.inbox().is_empty(), "held past the cap");
        assert_eq!(closer.held.load(Ordering::Acquire), MAX_LINGERING);
    }
}
