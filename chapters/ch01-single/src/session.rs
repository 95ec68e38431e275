//! One client's whole session, served on the calling thread: read,
//! frame, work, ack, until the session ends; then close it without
//! destroying the last reply.
//!
//! Chapters 2 and 3 serve their sessions with these very functions, from
//! N processes or N threads.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown as Direction, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::socket::{send, MsgFlags};
use protocol::clock::{earlier, MessageClock, TIMEOUT_REPLY};
use protocol::close::{Ending, LINGER};
use protocol::log::Preview;
use protocol::{event, Config, Decoder, Frame, Shutdown, ACK};

use crate::wait::{wait_readable, wait_writable, Wait};

/// Bytes read from the socket at a time. The only per-connection memory
/// besides the decoder's (at most `--max-message-bytes`).
const READ_BUFFER: usize = 16 * 1024;

// ANCHOR: serve_session
/// Serves one client from its first byte to its last, on this thread.
///
/// Reads whatever arrives, frames it, and for every message does the work
/// and sends `ack`, in order. Ends on `goodbye`, end of stream, a protocol
/// violation (answered with `err ...`), the idle timeout, the message
/// deadline (a message unfinished `--message-timeout-ms` after its first
/// byte, see [`MessageClock`]), or the shutdown
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
    let mut clock = MessageClock::new(config.message_timeout());
    loop {
        // Idle time is time spent waiting here, not time spent working;
        // so is the message deadline's. We wait for the nearer of the two.
        let idle = config.idle_timeout().map(|t| Instant::now() + t);
        let deadline = earlier(idle, clock.deadline());
        match wait_readable(&stream, shutdown, deadline) {
            Ok(Wait::Ready) => {}
            Ok(Wait::Shutdown) => {
                close_gracefully(stream, b"");
                return Ending::Shutdown;
            }
            // `poll` looks at the socket once more before it reports a
            // timeout, so bytes that came while the process was stopped
            // are read first: a timeout here means none were waiting.
            Ok(Wait::TimedOut) if clock.expired(Instant::now()) => {
                close_gracefully(stream, TIMEOUT_REPLY);
                return Ending::MessageTimeout;
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
                    // Complete, and worked on: its clock stops. The next
                    // message's starts once the work is done.
                    clock.track(false, Instant::now());
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
        // We are not working, so bytes of a message held now are on its
        // clock: from now if this read brought its first byte, or if the
        // work on the message before it just ended.
        let now = Instant::now();
        clock.track(decoder.pending_bytes() > 0, now);
        if clock.expired(now) {
            close_gracefully(stream, TIMEOUT_REPLY);
            return Ending::MessageTimeout;
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
