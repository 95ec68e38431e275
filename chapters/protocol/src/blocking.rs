//! The blocking building blocks that chapters 1-3 share: waiting for the
//! next client, and serving one client's whole session on one thread.
//!
//! Chapters 1-3 differ only in *who* calls these and how many at once: one
//! process (chapter 1), N processes (chapter 2), N threads (chapter 3).
//! Chapter 4 cannot use them at all: every call here blocks.

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown as Direction, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{send, MsgFlags};

use crate::config::Config;
use crate::decoder::{Decoder, Frame, ProtocolError, ACK};
use crate::log::Preview;
use crate::shutdown::Shutdown;
use crate::{event, warn};

/// How long a closing connection may keep sending before we stop reading
/// and close anyway (see [`close_gracefully`]).
pub const LINGER: Duration = Duration::from_millis(500);

/// After an `accept` failure, wait this long before trying again, so that
/// running out of descriptors does not become a busy loop.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Bytes read from the socket at a time. The only per-connection memory
/// besides the decoder's (at most `--max-message-bytes`).
const READ_BUFFER: usize = 16 * 1024;

// ANCHOR: next_client
/// Waits for the next client, or for the shutdown switch.
///
/// Returns `Ok(None)` once `shutdown` is triggered. Failed accepts
/// (ECONNABORTED, EMFILE, ENFILE, ENOBUFS, ...) are logged and retried after
/// a pause: they never end the server and never make it spin.
///
/// The listener is made non-blocking: when several processes or threads
/// wait on one listener, all of them wake for one connection and only one
/// wins the `accept`; the others must go back to waiting, not block in
/// `accept` where the shutdown switch cannot reach them.
///
/// # Errors
///
/// Only errors of the listener itself (not of a connection), e.g. a bad
/// descriptor.
pub fn next_client(
    listener: &TcpListener,
    shutdown: &Shutdown,
) -> io::Result<Option<(TcpStream, SocketAddr)>> {
    listener.set_nonblocking(true)?;
    loop {
        match wait_readable(listener, shutdown, None)? {
            Wait::Shutdown => return Ok(None),
            Wait::TimedOut | Wait::Ready => {}
        }
        match listener.accept() {
            Ok((stream, peer)) => {
                // Accepted sockets do not inherit O_NONBLOCK on Linux,
                // but say so rather than rely on it.
                stream.set_nonblocking(false)?;
                return Ok(Some((stream, peer)));
            }
            // Another worker won the race for this connection.
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                // Out of descriptors, or the client gave up before we
                // accepted. Pause, but stay responsive to shutdown.
                warn!("accept failed: {e}; pausing {ACCEPT_BACKOFF:?}");
                if shutdown.wait(ACCEPT_BACKOFF) {
                    return Ok(None);
                }
            }
        }
    }
}
// ANCHOR_END: next_client

/// Why a session ended, for the `closed` log line.
#[derive(Debug)]
pub enum Ending {
    /// The client said `goodbye`.
    Goodbye,
    /// The client closed its side; `dropped` bytes of an unfinished
    /// message were thrown away.
    EndOfStream {
        /// Content bytes of a message with no ETX yet.
        dropped: usize,
    },
    /// The client broke the protocol and was told so.
    Violation(ProtocolError),
    /// The client sent nothing for `--idle-timeout-ms`.
    IdleTimeout,
    /// The server is shutting down.
    Shutdown,
    /// The connection failed under us (reset, broken pipe, timeout).
    Vanished(io::Error),
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Goodbye => write!(f, "goodbye"),
            Ending::EndOfStream { dropped: 0 } => write!(f, "end of stream"),
            Ending::EndOfStream { dropped } => write!(
                f,
                "end of stream, dropped an unfinished {dropped}-byte message"
            ),
            Ending::Violation(e) => write!(f, "protocol violation: {e}"),
            Ending::IdleTimeout => write!(f, "idle timeout"),
            Ending::Shutdown => write!(f, "server shutting down"),
            Ending::Vanished(e) => write!(f, "connection lost: {e}"),
        }
    }
}

// ANCHOR: serve_session
/// Serves one client from its first byte to its last, on this thread.
///
/// Reads whatever arrives, frames it, and for every message does the work
/// and sends `ack`, in order. Ends on `goodbye`, end of stream, a protocol
/// violation (answered with `err ...`), the idle timeout, or the shutdown
/// switch (after acking the message in progress, if any: messages queued
/// behind it get no ack, or shutdown could take any multiple of
/// `--work-ms`). Never panics on anything the client does; every failure
/// ends only this connection.
pub fn serve_session(
    mut stream: TcpStream,
    peer: SocketAddr,
    config: &Config,
    shutdown: &Shutdown,
) -> Ending {
    let work = config.work();
    // A client that stops reading must not hold this thread forever:
    // `send_ack` waits for room at most the idle limit. The socket's own
    // write timeout is a second line of defence.
    if let Err(e) = stream.set_write_timeout(config.idle_timeout()) {
        return Ending::Vanished(e);
    }
    let mut decoder = Decoder::new(config.max_message_bytes);
    let mut buffer = vec![0; READ_BUFFER];
    loop {
        // Idle time is time spent waiting here, not time spent working.
        let deadline = config.idle_timeout().map(|t| Instant::now() + t);
        match wait_readable(&stream, shutdown, deadline) {
            Ok(Wait::Ready) => {}
            Ok(Wait::Shutdown) => {
                close_gracefully(stream, b"");
                return Ending::Shutdown;
            }
            Ok(Wait::TimedOut) => {
                close_gracefully(stream, b"err idle timeout");
                return Ending::IdleTimeout;
            }
            Err(e) => return Ending::Vanished(e),
        }
        let n = match stream.read(&mut buffer) {
            Ok(0) => {
                let dropped = decoder.pending_bytes();
                return Ending::EndOfStream { dropped };
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Ending::Vanished(e),
        };
        let mut input = &buffer[..n];
        loop {
            match decoder.decode(&mut input) {
                Ok(None) => break,
                Ok(Some(Frame::Goodbye)) => {
                    close_gracefully(stream, b"");
                    return Ending::Goodbye;
                }
                Ok(Some(Frame::Message(text))) => {
                    event!("message {} from {peer}", Preview(text));
                    work.perform();
                    match send_ack(&stream, config, shutdown) {
                        Ok(()) => event!("ack sent to {peer}"),
                        Err(Stop::Shutdown) => {
                            close_gracefully(stream, b"");
                            return Ending::Shutdown;
                        }
                        Err(Stop::Failed(e)) => return Ending::Vanished(e),
                    }
                    // A shutdown waits for the message in progress, not
                    // for every message the client has queued behind it:
                    // those could take any multiple of `--work-ms`.
                    // (With no input left, the check after this loop
                    // does it.)
                    if !input.is_empty() && shutdown.is_triggered() {
                        close_gracefully(stream, b"");
                        return Ending::Shutdown;
                    }
                }
                Err(violation) => {
                    close_gracefully(stream, violation.reply());
                    return Ending::Violation(violation);
                }
            }
        }
        // Every message read so far is acked; stop before reading more.
        if shutdown.is_triggered() {
            close_gracefully(stream, b"");
            return Ending::Shutdown;
        }
    }
}
// ANCHOR_END: serve_session

// ANCHOR: send_ack
/// Why an ack was not sent.
enum Stop {
    /// The shutdown switch went on while the client was not reading.
    Shutdown,
    /// The connection failed, or the client read nothing for the idle
    /// limit.
    Failed(io::Error),
}

/// Sends one `ack`, waiting for room in the socket's send buffer.
///
/// A client that stops reading fills our send buffer, and a plain
/// blocking write would then wait for it as long as it likes, deaf to the
/// shutdown switch. So we send without blocking, and when there is no
/// room, wait for it with `poll`, like we wait for input: for at most the
/// idle limit (a client that reads nothing for that long is as gone as one
/// that sends nothing), and only until shutdown.
fn send_ack(
    stream: &TcpStream,
    config: &Config,
    shutdown: &Shutdown,
) -> Result<(), Stop> {
    let deadline = config.idle_timeout().map(|t| Instant::now() + t);
    let mut rest = ACK;
    while !rest.is_empty() {
        // Nearly always there is room: try without waiting, and wait
        // only when the socket says it would block.
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        match send(stream.as_raw_fd(), rest, flags) {
            Ok(0) => return Err(Stop::Failed(ErrorKind::WriteZero.into())),
            Ok(n) => {
                rest = &rest[n..];
                continue;
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(e) => return Err(Stop::Failed(e.into())),
        }
        match wait_writable(stream, shutdown, deadline) {
            Ok(Wait::Ready) => {}
            Ok(Wait::Shutdown) => return Err(Stop::Shutdown),
            Ok(Wait::TimedOut) => {
                let why = "the client read no ack for the idle limit";
                return Err(Stop::Failed(io::Error::new(
                    ErrorKind::TimedOut,
                    why,
                )));
            }
            Err(e) => return Err(Stop::Failed(e)),
        }
    }
    Ok(())
}
// ANCHOR_END: send_ack

// ANCHOR: close_gracefully
/// Sends `last_words`, then closes without destroying them.
///
/// Closing a socket that still has unread input makes the kernel send a
/// reset (RST), and a reset can overtake data in flight: the client would
/// see "connection reset" instead of our `err` reply or last `ack`. So we
/// shut down our side first (the client sees end of stream after our
/// reply), then read and throw away whatever the client still sends, until
/// it closes or [`LINGER`] passes. nginx calls this a lingering close.
/// The whole close, reply included, takes at most [`LINGER`].
pub fn close_gracefully(mut stream: TcpStream, last_words: &[u8]) {
    let deadline = Instant::now() + LINGER;
    // The client may be gone already, or not reading: then there is
    // nobody to tell, and it gets no longer than the linger to take them.
    let _ = stream.set_write_timeout(Some(LINGER));
    let _ = stream.write_all(last_words);
    if stream.shutdown(Direction::Write).is_err() {
        return;
    }
    discard_until_closed(stream, deadline);
}

/// Reads and throws away what `stream` still sends until the client
/// closes or `deadline` passes: the lingering half of
/// [`close_gracefully`], for a caller that has shut down its side already
/// (chapter 3 closes many connections that way, sharing one deadline).
pub fn discard_until_closed(mut stream: TcpStream, deadline: Instant) {
    let mut sink = [0; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
// ANCHOR_END: close_gracefully

/// What a wait for input ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The descriptor is readable (data, a connection, or end of stream).
    Ready,
    /// The shutdown switch is on.
    Shutdown,
    /// The deadline passed first.
    TimedOut,
}

/// Blocks until `fd` is readable, `shutdown` is triggered, or `deadline`
/// passes (never, if `None`). When both the switch and `fd` are ready,
/// says [`Wait::Shutdown`]: stop reading.
///
/// # Errors
///
/// Only `poll` failures other than EINTR (which is retried).
pub fn wait_readable(
    fd: &impl AsFd,
    shutdown: &Shutdown,
    deadline: Option<Instant>,
) -> io::Result<Wait> {
    wait_for(fd, PollFlags::POLLIN, shutdown, deadline)
}

/// Blocks until `fd` has room to write, `shutdown` is triggered, or
/// `deadline` passes. When both the switch and `fd` are ready, says
/// [`Wait::Ready`]: an ack that can be sent is sent, shutdown or not.
fn wait_writable(
    fd: &impl AsFd,
    shutdown: &Shutdown,
    deadline: Option<Instant>,
) -> io::Result<Wait> {
    wait_for(fd, PollFlags::POLLOUT, shutdown, deadline)
}

/// [`wait_readable`] and [`wait_writable`]: waits for `fd` to be ready
/// for `interest`.
fn wait_for(
    fd: &impl AsFd,
    interest: PollFlags,
    shutdown: &Shutdown,
    deadline: Option<Instant>,
) -> io::Result<Wait> {
    let writing = interest.contains(PollFlags::POLLOUT);
    loop {
        let timeout = poll_timeout(deadline);
        let mut fds = [
            PollFd::new(shutdown.as_fd(), PollFlags::POLLIN),
            PollFd::new(fd.as_fd(), interest),
        ];
        match poll(&mut fds, timeout) {
            Ok(0) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(Wait::TimedOut);
                }
            }
            Ok(_) => {
                let ready =
                    |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
                if writing && ready(&fds[1]) {
                    return Ok(Wait::Ready);
                }
                if ready(&fds[0]) {
                    return Ok(Wait::Shutdown);
                }
                if ready(&fds[1]) {
                    return Ok(Wait::Ready);
                }
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// The `poll` timeout that ends at `deadline` (never, if `None`), rounded
/// up to the next millisecond so that we never wake a millisecond early
/// and spin; computed afresh before every `poll`, so a retried one waits
/// only what is left.
pub fn poll_timeout(deadline: Option<Instant>) -> PollTimeout {
    let Some(deadline) = deadline else {
        return PollTimeout::NONE;
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let ms = left.as_micros().div_ceil(1000);
    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
}
