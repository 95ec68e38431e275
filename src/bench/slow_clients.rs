//! The slow-clients scenario: what a crowd of clients that never finish
//! costs everyone else.
//!
//! For each K, `K` connections connect and send nothing, then `K` more
//! send half a message and stop; then one ordinary client connects, sends
//! one message and waits - a bounded time - for its `ack`. The server runs
//! with a short idle timeout, so the slow connections are closed in the
//! end and a blocked ordinary client is eventually served, or the wait
//! runs out first. How long that one `ack` takes is the whole result:
//! next to nothing for the event loops; for the blocking models, a step
//! of the idle timeout (plus the lingering close after its `err` reply)
//! for every round of slow connections ahead of it.

use std::io::{self, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use client::connection::{is_timeout, ReplyError};
use client::Connection;

/// How long one slow connection may take to connect before the crowd
/// stops growing. When a listener's backlog is full the kernel drops new
/// handshakes, and the client's kernel sends its SYN again after 1 s,
/// then 3 s. A backlog that filled for an instant, because the crowd
/// came faster than the server accepts, has room again by that first
/// retry; one still full a second later belongs to a server that is not
/// accepting, and the crowd is then as large as the backlog let it be.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);

/// What the half-message connections send: a message without its ETX.
const HALF_MESSAGE: &[u8] = b"half a mess";

/// Descriptors the benchmark keeps for itself besides the crowd: the
/// ordinary client, the server's pipes, the progress bar.
const SPARE_DESCRIPTORS: u64 = 64;

/// The crowd sizes to measure: `counts` with `workers - 1` and `workers`
/// added (the points where a pool runs out), sorted, without repeats,
/// and at most what `open_files` descriptors hold: each K costs two
/// sockets.
pub fn crowd_sizes(
    counts: &[usize],
    workers: u32,
    open_files: u64,
) -> Vec<usize> {
    let most = open_files.saturating_sub(SPARE_DESCRIPTORS) / 2;
    let mut sizes: Vec<usize> = counts
        .iter()
        .copied()
        .chain([(workers as usize).saturating_sub(1), workers as usize])
        .map(|k| k.min(usize::try_from(most).unwrap_or(usize::MAX)))
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// The slow connections, held open while the ordinary client is timed.
#[derive(Debug, Default)]
pub struct Crowd {
    /// Connected, nothing sent.
    silent: Vec<TcpStream>,
    /// Connected, half a message sent.
    half: Vec<TcpStream>,
    /// Whether a connect timed out before the crowd was complete: the
    /// listener's backlog was full.
    pub backlog_full: bool,
}

impl Crowd {
    /// Opens `k` silent connections to `addr`, then `k` that send half a
    /// message. Stops early, with [`Crowd::backlog_full`] set, when a
    /// connect takes longer than [`CONNECT_TIMEOUT`], or when opening
    /// has taken `budget` already: a server that frees a backlog slot
    /// now and then could otherwise make each connect wait a second.
    ///
    /// # Errors
    ///
    /// If a connection fails other than by timing out (refused, out of
    /// descriptors).
    pub fn open(
        addr: SocketAddr,
        k: usize,
        budget: Duration,
    ) -> io::Result<Crowd> {
        let started = Instant::now();
        let mut crowd = Crowd::default();
        for half in [false, true] {
            for _ in 0..k {
                if started.elapsed() > budget {
                    crowd.backlog_full = true;
                    return Ok(crowd);
                }
                let mut stream =
                    match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                        Ok(stream) => stream,
                        Err(e) if is_timeout(&e) => {
                            crowd.backlog_full = true;
                            return Ok(crowd);
                        }
                        Err(e) => return Err(e),
                    };
                if half {
                    // A few bytes always fit in the socket buffers, even
                    // before the server accepts: this does not block.
                    stream.write_all(HALF_MESSAGE)?;
                    crowd.half.push(stream);
                } else {
                    crowd.silent.push(stream);
                }
            }
        }
        Ok(crowd)
    }

    /// Slow connections open, silent and half-message together.
    pub fn len(&self) -> usize {
        self.silent.len() + self.half.len()
    }
}

/// How the ordinary client fared.
#[derive(Debug, Clone, PartialEq)]
pub enum FirstAck {
    /// Its `ack` came this long after it started to connect.
    Acked(Duration),
    /// Connected, but no `ack` within the wait: it would still be
    /// waiting.
    NoAck,
    /// Not even connected within the wait: its handshake was still
    /// being retried, because the listen backlog was full.
    NotConnected,
    /// The server answered something else and closed, e.g. `err server
    /// busy` from a thread pool whose queue is full.
    Refused(String),
    /// The connection failed (reset, refused).
    Failed(String),
}

impl FirstAck {
    /// The table cell, for a client that waited `wait_ms`: the time, or
    /// why there is none.
    pub fn cell(&self, wait_ms: u64) -> String {
        match self {
            FirstAck::Acked(after) => ack_time(*after),
            FirstAck::NoAck => format!("no ack in {}", seconds(wait_ms)),
            FirstAck::NotConnected => {
                format!("not connected in {}", seconds(wait_ms))
            }
            FirstAck::Refused(reply) => {
                format!("refused: `{}`", reply.trim().replace('|', "/"))
            }
            FirstAck::Failed(_) => "failed".into(),
        }
    }
}

/// A time to ack, for a table cell: milliseconds while nothing held the
/// client up, seconds once a timeout did.
pub fn ack_time(after: Duration) -> String {
    if after.as_millis() < 10 {
        format!("{:.2} ms", after.as_secs_f64() * 1e3)
    } else if after.as_millis() < 1000 {
        format!("{} ms", after.as_millis())
    } else {
        format!("{:.2} s", after.as_secs_f64())
    }
}

/// Whole milliseconds as seconds, without trailing zeros: `1 s`, `1.5 s`.
pub fn seconds(ms: u64) -> String {
    let text = format!("{:.3}", ms as f64 / 1000.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} s")
}

/// One ordinary client against `addr`: connect, send `package 0`, wait
/// for its `ack`, all within `wait` from the start.
pub fn first_ack(addr: SocketAddr, wait: Duration) -> FirstAck {
    let started = Instant::now();
    let left = || wait.saturating_sub(started.elapsed());
    let mut conn = match Connection::connect(addr, wait) {
        Ok(conn) => conn,
        Err(e) if is_timeout(&e) => return FirstAck::NotConnected,
        Err(e) => return FirstAck::Failed(e.to_string()),
    };
    // The connect used part of the wait; the read gets the rest (a zero
    // timeout would mean "none" to the socket, hence the floor).
    let rest = left().max(Duration::from_millis(1));
    if let Err(e) = conn.stream().set_read_timeout(Some(rest)) {
        return FirstAck::Failed(e.to_string());
    }
    if let Err(e) = conn.send(b"package 0") {
        return FirstAck::Failed(e.to_string());
    }
    match conn.read_ack() {
        Ok(()) => FirstAck::Acked(started.elapsed()),
        Err(ReplyError::Io(e)) if is_timeout(&e) => FirstAck::NoAck,
        Err(ReplyError::Unexpected(reply)) => {
            FirstAck::Refused(String::from_utf8_lossy(&reply).into_owned())
        }
        Err(ReplyError::Io(e)) if e.kind() == ErrorKind::ConnectionReset => {
            FirstAck::Failed("reset by the server".into())
        }
        Err(other) => FirstAck::Failed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool's edges join the list, repeats go, and the descriptor
    /// limit caps the largest crowd.
    #[test]
    fn crowd_sizes_add_the_pool_edges_and_respect_the_limit() {
        let counts = [0, 1, 10, 100, 1000];
        assert_eq!(
            crowd_sizes(&counts, 5, 20_000),
            [0, 1, 4, 5, 10, 100, 1000]
        );
        assert_eq!(crowd_sizes(&counts, 2, 20_000), [0, 1, 2, 10, 100, 1000]);
        assert_eq!(crowd_sizes(&counts, 5, 1024), [0, 1, 4, 5, 10, 100, 480]);
    }
}
