//! The I/O types: std's sockets, non-blocking, registered with the
//! reactor, with `async` methods that try the system call and, when the
//! kernel says `WouldBlock`, wait for the reactor and try again.

use std::future::{poll_fn, Future};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{self, Shutdown, SocketAddr};
use std::os::fd::AsFd;
use std::rc::Rc;
use std::task::Poll;

use super::executor::{with_reactor, within_budget};
use super::reactor::Direction;

/// What waiting for the reactor ends with: ready, or epoll could not be
/// told to watch.
type Waited = io::Result<()>;

// ANCHOR: registration
/// A descriptor (or what owns one, such as a socket) registered with the
/// reactor: [`TcpListener`] and [`TcpStream`] are registrations of std's
/// sockets. Dropping it leaves the reactor, then closes the descriptor.
#[derive(Debug)]
pub struct Registration<T> {
    token: usize,
    /// Shared with the reactor, which changes what epoll watches for it.
    io: Rc<T>,
}

impl<T: AsFd + 'static> Registration<T> {
    /// Registers `io`, which must be in non-blocking mode.
    ///
    /// # Errors
    ///
    /// When epoll refuses it (out of memory, or of epoll watches).
    pub fn new(io: T) -> io::Result<Registration<T>> {
        let io = Rc::new(io);
        let token = with_reactor(|reactor| reactor.register(io.clone()))?;
        Ok(Registration { token, io })
    }

    /// Returns once the descriptor may have input (or has failed).
    ///
    /// # Errors
    ///
    /// When epoll cannot be told to watch it.
    pub async fn readable(&self) -> io::Result<()> {
        self.ready(Direction::Read).await
    }

    /// Returns once the descriptor was reported reset or hung up.
    pub async fn failed(&self) {
        // Cannot fail: epoll watches for failures without being told.
        let _ = self.ready(Direction::Failure).await;
    }

    /// Not an `async fn`, which would keep `self` and `direction` beside
    /// the future it awaits, in every task that waits.
    fn ready(&self, direction: Direction) -> impl Future<Output = Waited> {
        let token = self.token;
        poll_fn(move |cx| {
            if !within_budget(cx) {
                return Poll::Pending; // woken again: others go first
            }
            with_reactor(|reactor| reactor.poll_ready(token, direction, cx))
        })
    }

    /// Runs `op`, a non-blocking read-side call, until it does not say
    /// `WouldBlock`, waiting for the reactor between tries.
    ///
    /// # Errors
    ///
    /// What `op` returns, or failing to arm epoll.
    pub async fn read_with<U>(
        &self,
        op: impl FnMut() -> io::Result<U>,
    ) -> io::Result<U> {
        self.io_with(Direction::Read, op).await
    }

    /// [`Registration::read_with`], for either direction.
    async fn io_with<U>(
        &self,
        direction: Direction,
        mut op: impl FnMut() -> io::Result<U>,
    ) -> io::Result<U> {
        loop {
            self.ready(direction).await?;
            match op() {
                // Readiness was presumed, or epoll's report is older than
                // the call that emptied (or filled) the socket: wait for
                // the next report.
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.clear_ready(direction);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                done => return done,
            }
        }
    }

    fn clear_ready(&self, direction: Direction) {
        with_reactor(|reactor| reactor.clear_ready(self.token, direction));
    }
}

impl<T> Drop for Registration<T> {
    fn drop(&mut self) {
        // Runs before `io` drops: the reactor lets go of the descriptor
        // before it closes.
        with_reactor(|reactor| reactor.deregister(self.token));
    }
}
// ANCHOR_END: registration

/// A listening socket whose `accept` waits without blocking the thread.
pub type TcpListener = Registration<net::TcpListener>;

impl TcpListener {
    /// Takes over `listener`, which must be in non-blocking mode.
    ///
    /// # Errors
    ///
    /// See [`Registration::new`].
    pub fn from_std(listener: net::TcpListener) -> io::Result<Self> {
        Registration::new(listener)
    }

    /// The next connection, non-blocking and registered.
    ///
    /// # Errors
    ///
    /// What `accept(2)` reports (EMFILE, ECONNABORTED ...), or failing to
    /// set the connection up.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = self.read_with(|| self.io.accept()).await?;
        Ok((TcpStream::from_std(stream)?, peer))
    }
}

// ANCHOR: stream
/// A connection whose reads and writes wait without blocking the thread.
pub type TcpStream = Registration<net::TcpStream>;

impl TcpStream {
    /// Takes over `stream`: makes it non-blocking and registers it.
    ///
    /// # Errors
    ///
    /// When a socket option cannot be set, or epoll refuses it.
    pub fn from_std(stream: net::TcpStream) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        // An ack is 3 bytes, and Nagle's algorithm would hold one back
        // while the previous one is unacknowledged.
        stream.set_nodelay(true)?;
        Registration::new(stream)
    }

    /// Reads into `buffer` once input is waiting; `Ok(0)` at end of
    /// stream.
    ///
    /// # Errors
    ///
    /// Connection failures (a reset).
    pub async fn read(&self, buffer: &mut [u8]) -> io::Result<usize> {
        self.read_with(|| self.try_read(buffer)).await
    }

    /// One non-blocking read now, whatever the reactor last heard:
    /// `WouldBlock` if nothing is waiting.
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or connection failures.
    pub fn try_read(&self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = (&*self.io).read(buffer);
        // A short read emptied the socket (TCP hands over all it has):
        // the next read waits for epoll instead of trying in vain.
        if read.as_ref().map_or(true, |&n| n < buffer.len()) {
            self.clear_ready(Direction::Read);
        }
        read
    }

    /// Writes all of `bytes`, waiting for room whenever the socket's
    /// send buffer is full.
    ///
    /// # Errors
    ///
    /// Connection failures (a reset, a broken pipe).
    pub async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let write = || (&*self.io).write(bytes);
            match self.io_with(Direction::Write, write).await? {
                0 => return Err(ErrorKind::WriteZero.into()),
                n => bytes = &bytes[n..],
            }
        }
        Ok(())
    }

    /// Ends our side of the stream (a FIN): the client reads end of
    /// stream after what we sent.
    ///
    /// # Errors
    ///
    /// When the connection is already gone.
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.io.shutdown(Shutdown::Write)
    }
}
// ANCHOR_END: stream
