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
//! Chapters 2, 3 and 5 keep this file's shape (`serve`, `accept_loop`,
//! `handle_client`; chapter 2 runs this very `accept_loop`) and change only
//! who runs `handle_client`, and how many run at once. Chapter 4 keeps
//! `serve` and `handle_client` around an event loop instead.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};

use protocol::blocking::{next_client, serve_session};
use protocol::{event, Config, Shutdown};

/// What `--help` says about this server.
pub const ABOUT: &str = "Chapter 1: one process serves one client at a time";

// ANCHOR: serve
/// Serves clients on `listener`, one at a time, until SIGINT or SIGTERM.
///
/// # Errors
///
/// Only if the signal handlers cannot be installed or the listener fails;
/// a failing connection never ends the server.
pub fn serve(listener: TcpListener, config: &Config) -> io::Result<()> {
    let shutdown = Shutdown::on_signals()?;
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
fn handle_client(
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
