//! One blocking connection to a server, speaking the protocol from the
//! client's side: the building block of the load generator, the
//! conformance suite and the tour. The bytes themselves are framed and
//! checked by `protocol::encoder`, the one place that knows the layout.
//!
//! Every operation is bounded by the socket's read and write timeouts, so a
//! server that hangs makes the caller fail, never wait forever. What the
//! server answers is checked here, once: anything but `ack` where an `ack`
//! is due is a [`ReplyError`], carrying what the server said.

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use nix::sys::socket::{setsockopt, sockopt};
use protocol::encoder::{message, GOODBYE_FRAME};
use protocol::AckReader;

/// Most bytes [`Connection::read_until_closed`] keeps: replies are short,
/// and a server that floods us must not make the client grow.
pub const REPLY_LIMIT: usize = 64 * 1024;

/// A blocking connection to a server.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
}

/// What went wrong while waiting for a reply.
#[derive(Debug)]
pub enum ReplyError {
    /// The socket failed: refused, reset, or timed out.
    Io(io::Error),
    /// The server closed the connection before a whole `ack`; `got` is
    /// what arrived first (often nothing).
    Closed {
        /// The bytes received before the end of stream.
        got: Vec<u8>,
    },
    /// The server sent something else, e.g. `err server busy`: the whole
    /// reply up to the end of stream (or what arrived before a timeout).
    Unexpected(Vec<u8>),
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::Io(e) if is_timeout(e) => {
                write!(f, "no reply before the timeout")
            }
            ReplyError::Io(e) => write!(f, "{e}"),
            ReplyError::Closed { got } if got.is_empty() => {
                write!(f, "server closed the connection instead of acking")
            }
            ReplyError::Closed { got } => write!(
                f,
                "server closed the connection after {:?}",
                String::from_utf8_lossy(got)
            ),
            ReplyError::Unexpected(reply) => write!(
                f,
                "unexpected reply {:?}",
                String::from_utf8_lossy(reply)
            ),
        }
    }
}

impl std::error::Error for ReplyError {}

impl From<io::Error> for ReplyError {
    fn from(e: io::Error) -> ReplyError {
        ReplyError::Io(e)
    }
}

impl From<ReplyError> for io::Error {
    fn from(e: ReplyError) -> io::Error {
        match e {
            ReplyError::Io(e) => e,
            other => io::Error::new(ErrorKind::InvalidData, other),
        }
    }
}

/// How the server ended a connection, as seen by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// An orderly end of stream (FIN): everything sent arrived.
    Eof,
    /// A reset (RST): the kernel may have thrown away data in flight.
    Reset,
}

/// Whether `e` is a socket timeout. A read timeout shows up as
/// `WouldBlock` (EAGAIN) on Linux, not `TimedOut`.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

impl Connection {
    /// Connects to `addr`; `timeout` bounds the connect and then every
    /// read and write.
    ///
    /// # Errors
    ///
    /// If the connection is refused, times out, or cannot be configured.
    pub fn connect(
        addr: SocketAddr,
        timeout: Duration,
    ) -> io::Result<Connection> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Connection::new(stream)
    }

    /// Wraps a connected stream. It must already have read and write
    /// timeouts (as the test harness's `ServerProcess::connect` sets them).
    ///
    /// # Errors
    ///
    /// If the stream has no read or write timeout: a hung server would
    /// hang the caller.
    pub fn new(stream: TcpStream) -> io::Result<Connection> {
        if stream.read_timeout()?.is_none() || stream.write_timeout()?.is_none()
        {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                "a client socket needs read and write timeouts",
            ));
        }
        // Each message is written whole; Nagle's algorithm would only
        // delay the last bytes of a message waiting for an ack.
        stream.set_nodelay(true)?;
        Ok(Connection { stream })
    }

    /// The underlying stream, for a caller that frames its own bytes (a
    /// test sending malformed input); its timeouts stay set.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// The underlying stream, e.g. to clone it for a writer thread.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Sends one message: `content` followed by ETX.
    ///
    /// # Errors
    ///
    /// If the write fails or times out.
    pub fn send(&mut self, content: &[u8]) -> io::Result<()> {
        self.stream.write_all(&message(content))
    }

    /// Sends `goodbye` + ETX, the end of the session.
    ///
    /// # Errors
    ///
    /// If the write fails or times out.
    pub fn send_goodbye(&mut self) -> io::Result<()> {
        self.stream.write_all(GOODBYE_FRAME)
    }

    /// Sends `bytes` as they are, with no framing: for tests that split,
    /// merge or break messages.
    ///
    /// # Errors
    ///
    /// If the write fails or times out.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Waits for exactly the 3 bytes `ack`.
    ///
    /// # Errors
    ///
    /// [`ReplyError::Unexpected`] with the whole reply if the server sends
    /// anything else (it is then read to the end of stream, so the error
    /// shows e.g. `err server busy`); [`ReplyError::Closed`] at end of
    /// stream; [`ReplyError::Io`] on reset or timeout.
    pub fn read_ack(&mut self) -> Result<(), ReplyError> {
        // One byte at a time: bytes after this ack (the next one, or an
        // error reply) belong to the next read, so none may be taken here.
        let mut acks = AckReader::new();
        let mut got = Vec::new();
        let mut byte = [0; 1];
        while acks.acks() == 0 {
            match self.stream.read(&mut byte) {
                Ok(0) => return Err(ReplyError::Closed { got }),
                Ok(_) => got.push(byte[0]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(ReplyError::Io(e)),
            }
            if acks.feed(&byte).is_err() {
                // Not an ack: read the rest of what the server says,
                // since it is about to close.
                if let Ok((rest, _)) = self.read_until_closed() {
                    got.extend_from_slice(&rest);
                }
                return Err(ReplyError::Unexpected(got));
            }
        }
        Ok(())
    }

    /// Reads until the server closes the connection; returns what arrived
    /// (at most [`REPLY_LIMIT`] bytes are kept) and how it closed.
    ///
    /// # Errors
    ///
    /// If the read times out (the server did not close), or fails with
    /// something other than a reset.
    pub fn read_until_closed(&mut self) -> io::Result<(Vec<u8>, Closed)> {
        let mut got = Vec::new();
        let mut buffer = [0; 4096];
        loop {
            match self.stream.read(&mut buffer) {
                Ok(0) => return Ok((got, Closed::Eof)),
                Ok(n) => {
                    let room = REPLY_LIMIT.saturating_sub(got.len());
                    got.extend_from_slice(&buffer[..n.min(room)]);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    return Ok((got, Closed::Reset));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Closes our sending side (a half-close): the server sees end of
    /// stream but can still answer.
    ///
    /// # Errors
    ///
    /// If the socket is no longer connected.
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }

    /// Closes the connection with a reset (RST) instead of an orderly
    /// close, the way a crashed client or a dropped network path looks
    /// to the server: `SO_LINGER` with a zero timeout, then close.
    ///
    /// # Errors
    ///
    /// If the socket option cannot be set.
    pub fn reset(self) -> io::Result<()> {
        reset(self.stream)
    }
}

/// [`Connection::reset`] for a bare `TcpStream`: closes it with a reset
/// (RST), as a crashed client would.
///
/// # Errors
///
/// If the socket option cannot be set.
pub fn reset(stream: TcpStream) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    setsockopt(&stream, sockopt::Linger, &linger)?;
    drop(stream);
    Ok(())
}
