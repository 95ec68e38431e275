//! The I/O types: std's sockets, non-blocking, registered with the
//! reactor, with `async` methods that try the system call and, when the
//! kernel says `WouldBlock`, wait for the reactor and try again.

use std::future::poll_fn;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{self, Shutdown, SocketAddr};
use std::os::fd::AsFd;
use std::rc::Rc;

use super::executor::with_core;
use super::reactor::Direction;

// ANCHOR: registration
/// A descriptor registered with the reactor: what every I/O type holds.
/// Dropping it leaves the reactor.
#[derive(Debug)]
pub struct Registration {
    token: usize,
}

impl Registration {
    /// Registers `fd`, which must be in non-blocking mode.
    ///
    /// # Errors
    ///
    /// When epoll refuses it (out of memory, or of epoll watches).
    pub fn new(fd: Rc<dyn AsFd>) -> io::Result<Registration> {
        let token = with_core(|core| core.reactor.borrow_mut().register(fd))?;
        Ok(Registration { token })
    }

    /// Returns once the descriptor may have input (or has failed).
    ///
    /// # Errors
    ///
    /// When epoll cannot be told to watch it.
    pub async fn readable(&self) -> io::Result<()> {
        self.ready(Direction::Read).await
    }

    async fn ready(&self, direction: Direction) -> io::Result<()> {
        poll_fn(|cx| {
            with_core(|core| {
                let mut reactor = core.reactor.borrow_mut();
                reactor.poll_ready(self.token, direction, cx)
            })
        })
        .await
    }

    /// Returns once the descriptor was reported reset or hung up.
    pub async fn failed(&self) {
        poll_fn(|cx| {
            with_core(|core| {
                core.reactor.borrow_mut().poll_failed(self.token, cx)
            })
        })
        .await;
    }

    /// Runs `op`, a non-blocking read-side call, until it does not say
    /// `WouldBlock`, waiting for the reactor between tries.
    ///
    /// # Errors
    ///
    /// What `op` returns, or failing to arm epoll.
    pub async fn read_with<T>(
        &self,
        mut op: impl FnMut() -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            self.readable().await?;
            match op() {
                // Epoll's report is older than the read that emptied
                // the socket: wait for the next one.
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.clear_readable();
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                done => return done,
            }
        }
    }

    fn clear_readable(&self) {
        with_core(|core| core.reactor.borrow_mut().clear_readable(self.token));
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        with_core(|core| core.reactor.borrow_mut().deregister(self.token));
    }
}
// ANCHOR_END: registration

/// A listening socket whose `accept` waits without blocking the thread.
#[derive(Debug)]
pub struct TcpListener {
    // Declared first, so dropped first: the reactor lets go before the
    // descriptor closes.
    registration: Registration,
    listener: Rc<net::TcpListener>,
}

impl TcpListener {
    /// Takes over `listener`, which must be in non-blocking mode.
    ///
    /// # Errors
    ///
    /// See [`Registration::new`].
    pub fn from_std(listener: net::TcpListener) -> io::Result<Self> {
        let listener = Rc::new(listener);
        let registration = Registration::new(listener.clone())?;
        Ok(TcpListener {
            registration,
            listener,
        })
    }

    /// The next connection, non-blocking and registered.
    ///
    /// # Errors
    ///
    /// What `accept(2)` reports (EMFILE, ECONNABORTED ...), or failing to
    /// set the connection up.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let accept = || self.listener.accept();
        let (stream, peer) = self.registration.read_with(accept).await?;
        Ok((TcpStream::from_std(stream)?, peer))
    }
}

// ANCHOR: stream
/// A connection whose reads and writes wait without blocking the thread.
#[derive(Debug)]
pub struct TcpStream {
    registration: Registration,
    stream: Rc<net::TcpStream>,
}

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
        let stream = Rc::new(stream);
        let registration = Registration::new(stream.clone())?;
        Ok(TcpStream {
            registration,
            stream,
        })
    }

    /// Reads into `buffer` once input is waiting; `Ok(0)` at end of
    /// stream.
    ///
    /// # Errors
    ///
    /// Connection failures (a reset).
    pub async fn read(&self, buffer: &mut [u8]) -> io::Result<usize> {
        let n = self
            .registration
            .read_with(|| self.try_read(buffer))
            .await?;
        Ok(n)
    }

    /// One non-blocking read now, whatever the reactor last heard:
    /// `WouldBlock` if nothing is waiting.
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or connection failures.
    pub fn try_read(&self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = (&*self.stream).read(buffer);
        // A short read emptied the socket (TCP hands over all it has):
        // the next read waits for epoll instead of trying in vain.
        if read.as_ref().map_or(true, |&n| n < buffer.len()) {
            self.registration.clear_readable();
        }
        read
    }

    /// Returns once input is waiting, or the connection failed.
    ///
    /// # Errors
    ///
    /// When epoll cannot be told to watch it.
    pub async fn readable(&self) -> io::Result<()> {
        self.registration.readable().await
    }

    /// Returns once the connection was reset or hung up.
    pub async fn failed(&self) {
        self.registration.failed().await;
    }

    /// Writes all of `bytes`, waiting for room whenever the socket's
    /// send buffer is full.
    ///
    /// # Errors
    ///
    /// Connection failures (a reset, a broken pipe).
    pub async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match (&*self.stream).write(bytes) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.registration.ready(Direction::Write).await?;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
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
        self.stream.shutdown(Shutdown::Write)
    }
}
// ANCHOR_END: stream
