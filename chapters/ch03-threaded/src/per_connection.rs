//! Chapter 3's first server: a thread per connection, the design most
//! people write first (`cargo run -p ch03-threaded --bin
//! thread-per-connection`).
//!
//! The main thread accepts each client and starts a thread that serves
//! its whole session with chapter 1's `handle_client`, then ends. Nobody
//! ever waits for a worker: every client is served at once, however many
//! there are - until the system refuses a thread (EAGAIN at the thread or
//! memory limit). That client is told `err server busy` and the
//! [`Closer`] does its lingering close, as the pool does for a client it
//! has no room for; everyone else goes on being served.
//!
//! What it costs: a thread, its stack and a kernel task per client, and
//! one thread start per connection. The pool (this crate's `serve`)
//! bounds all three.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, Scope};

use ch01_single::{handle_client, next_client};
use protocol::{event, warn, Config, Shutdown};

use crate::{panic_message, spawn_closer, Closer, BUSY};

/// What `--help` says about this server.
pub const ABOUT: &str = "Chapter 3: a thread for every connection";

// ANCHOR: serve
/// Serves every client on a thread of its own until `shutdown` is
/// triggered, then waits for every session to finish and returns.
///
/// # Errors
///
/// If the closer's thread cannot be started, or the listener fails; a
/// failing connection, a refused thread or a panicking session never ends
/// the server.
pub fn serve(
    listener: TcpListener,
    config: &Config,
    shutdown: Shutdown,
) -> io::Result<()> {
    let closer = Closer::new()?;
    // The scope joins every session thread before it returns: that join
    // is the whole of the drain at shutdown. A finished thread needs no
    // join: its handle is dropped at once, which detaches it.
    let accepted = thread::scope(|scope| {
        let accepted = spawn_closer(scope, &closer).and_then(|()| {
            accept_loop(scope, &listener, &closer, config, &shutdown)
        });
        // However the loop ended, sessions in progress ack what they
        // have read and close; the closer finishes its lingering closes.
        shutdown.trigger();
        closer.finish();
        accepted
    });
    event!("every session has finished; shut down");
    accepted
}
// ANCHOR_END: serve

// ANCHOR: accept_loop
/// Accepts clients and starts a thread for each. Never serves anyone
/// itself, and never waits for a session.
fn accept_loop<'scope>(
    scope: &'scope Scope<'scope, '_>,
    listener: &TcpListener,
    closer: &Closer,
    config: &'scope Config,
    shutdown: &'scope Shutdown,
) -> io::Result<()> {
    while let Some((stream, peer)) = next_client(listener, shutdown)? {
        if let Err((stream, e)) =
            spawn_session(scope, stream, peer, config, shutdown)
        {
            // Out of threads or memory for a stack: this client cannot
            // be served now, so it hears why at once, like a client the
            // pool has no room for; the others are not affected.
            warn!("busy: no thread for {peer} ({e}); turned away");
            closer.turn_away(stream, BUSY);
        }
    }
    Ok(())
}
// ANCHOR_END: accept_loop

// ANCHOR: spawn_session
/// Starts a thread that serves `stream`'s session; if the system refuses
/// the thread, hands the stream back with the error.
///
/// `spawn` takes the closure, and everything it owns, even when it fails:
/// std drops a closure it could not run. So the stream travels in a slot
/// the caller keeps a hold on, and whichever side gets to it first takes
/// it: the new thread, or this one after a refusal.
fn spawn_session<'scope>(
    scope: &'scope Scope<'scope, '_>,
    stream: TcpStream,
    peer: SocketAddr,
    config: &'scope Config,
    shutdown: &'scope Shutdown,
) -> Result<(), (TcpStream, io::Error)> {
    let slot = Arc::new(Mutex::new(Some(stream)));
    let theirs = Arc::clone(&slot);
    let spawned = thread::Builder::new()
        .name(format!("session-{}", peer.port()))
        .spawn_scoped(scope, move || {
            if let Some(stream) = take(&theirs) {
                session(stream, peer, config, shutdown);
            }
        });
    match spawned {
        Ok(_detached) => Ok(()),
        Err(e) => match take(&slot) {
            Some(stream) => Err((stream, e)),
            // Cannot happen: a thread that never started took nothing.
            None => Ok(()),
        },
    }
}
// ANCHOR_END: spawn_session

// ANCHOR: session
/// One session thread's life: chapter 1's `handle_client`, with a panic
/// caught so that it ends this connection only (an uncaught one would
/// end the scope, and the server, at shutdown).
fn session(
    stream: TcpStream,
    peer: SocketAddr,
    config: &Config,
    shutdown: &Shutdown,
) {
    let served =
        panic::catch_unwind(|| handle_client(stream, peer, config, shutdown));
    if let Err(payload) = served {
        let why = panic_message(payload.as_ref());
        warn!("panic while serving {peer} ({why}); connection dropped");
    }
}
// ANCHOR_END: session

/// Takes the stream out of its slot, even if a thread panicked holding
/// the lock: taking an `Option` leaves it consistent whatever happens.
fn take(slot: &Mutex<Option<TcpStream>>) -> Option<TcpStream> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}
