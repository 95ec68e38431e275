//! Chapter 1: the single server. One process, one thread, one client at a
//! time.
//!
//! The simplest server that keeps the protocol: accept a client, serve its
//! whole session, and only then accept the next one. While one client is
//! served, every other client waits in the kernel's listen backlog: it has
//! connected (the kernel finished the handshake) but nobody reads its bytes.
//! With `--work-ms W`, `C` clients of `M` messages each take about
//! `C x M x W`: the observed parallelism is 1.
//!
//! This crate reads top to bottom: `serve`, the accept loop, the handler,
//! then [`next_client`]; the session itself is in [`session`], and the
//! waiting it does (for input, for room to write, for the shutdown
//! switch) in [`wait`]. Chapters 2, 3 and 5 keep this file's shape
//! (`serve`, `accept_loop`, `handle_client`): chapters 2 and 3 serve their
//! clients with this crate's session, chapter 2 even with this very
//! `accept_loop`, and only who runs it, and how many at once, changes.
//! Chapter 4 keeps `serve` and `handle_client` around an event loop
//! instead.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod session;
pub mod wait;

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpListener, TcpStream};

use protocol::limits::ACCEPT_BACKOFF;
use protocol::{event, warn, Config, Shutdown};

use crate::session::serve_session;
use crate::wait::{wait_readable, Wait};

/// What `--help` says about this server.
pub const ABOUT: &str = "Chapter 1: one process serves one client at a time";

// ANCHOR: serve
/// Serves clients on `listener`, one at a time, until `shutdown` is
/// triggered (by SIGINT or SIGTERM, when `main` made the switch).
///
/// # Errors
///
/// Only if the listener fails; a failing connection never ends the
/// server.
pub fn serve(
    listener: TcpListener,
    config: &Config,
    shutdown: Shutdown,
) -> io::Result<()> {
    accept_loop(&listener, config, &shutdown)?;
    event!("shut down");
    Ok(())
}
// ANCHOR_END: serve

// ANCHOR: accept_loop
/// Accepts one client, serves it to the end, then accepts the next, until
/// `shutdown` is triggered.
///
/// Chapter 2's workers run this very function, one per process.
///
/// # Errors
///
/// Only errors of the listener itself; a failing connection is logged and
/// ends only that connection.
pub fn accept_loop(
    listener: &TcpListener,
    config: &Config,
    shutdown: &Shutdown,
) -> io::Result<()> {
    while let Some((stream, peer)) = next_client(listener, shutdown)? {
        // The whole session runs here. Until it returns, this process
        // accepts nobody: the next client waits in the listen backlog.
        handle_client(stream, peer, config, shutdown);
    }
    Ok(())
}
// ANCHOR_END: accept_loop

// ANCHOR: handle_client
/// Serves one client's whole session and logs how it ended.
///
/// Chapter 2's workers call it from their own accept loop.
pub fn handle_client(
    stream: TcpStream,
    peer: SocketAddr,
    config: &Config,
    shutdown: &Shutdown,
) {
    event!("accepted {peer}");
    let ending = serve_session(stream, peer, config, shutdown);
    event!("closed {peer}: {ending}");
}
// ANCHOR_END: handle_client

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::thread;
    use std::time::Duration;

    /// `serve` is driven by the switch it is handed, not by a signal or a
    /// global: it serves a client, and returns once a test triggers the
    /// switch.
    #[test]
    fn serve_stops_when_its_switch_is_triggered() {
        protocol::log::set_quiet(true);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let shutdown = Shutdown::new().expect("switch");
        let switch = shutdown.clone();
        let config = Config {
            work_ms: 0,
            ..Config::default()
        };
        let server = thread::spawn(move || serve(listener, &config, shutdown));
        let mut client = TcpStream::connect(addr).expect("connect");
        let timeout = Some(Duration::from_secs(10));
        client.set_read_timeout(timeout).expect("read timeout");
        client.write_all(b"hello\x03").expect("send");
        let mut ack = [0; 3];
        client.read_exact(&mut ack).expect("an ack");
        assert_eq!(&ack, protocol::ACK);
        switch.trigger();
        // The session ends at once (end of stream, no words), then the
        // accept loop sees the switch and `serve` returns.
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).expect("end of stream");
        assert!(rest.is_empty(), "unexpected bytes {rest:?}");
        // Closing our side too ends the server's lingering close early.
        drop(client);
        let served = server.join().expect("serve did not panic");
        served.expect("serve returned Ok");
    }
}
