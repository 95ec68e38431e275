//! Chapter 3: the thread pool. One thread accepts, `--workers` N threads
//! serve, and a bounded queue sits between them.
//!
//! The main thread accepts each client and pushes it onto a [`Queue`] of
//! at most `--queue` connections; N worker threads (`worker-1`, ...) pop
//! one client at a time and serve its whole session, exactly as chapter 1
//! did. Up to N clients are served at once; up to `--queue` more wait; any
//! more are told `err server busy` at once, and a [`Closer`] thread does
//! their lingering close, so that turning one away never delays the next
//! accept. Idle workers sleep on a condition variable and cost no CPU.
//!
//! Compared with chapter 2, workers are threads of one process: cheaper to
//! start and to switch between, sharing one address space - so one worker's
//! panic must be caught, or it could take the others down with it.
//! Compared with chapter 1, `accept_loop` no longer serves anyone: it only
//! hands clients over, and `handle_client` runs on a worker.
//!
//! The chapter opens with the design the pool improves on, in
//! [`per_connection`] (its own binary, `thread-per-connection`): a thread
//! for every client, no queue, no bound but the system's.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod closer;
pub mod per_connection;
pub mod queue;

use std::any::Any;
use std::net::{Shutdown as Direction, SocketAddr, TcpListener, TcpStream};
use std::panic;
use std::sync::OnceLock;
use std::thread::{self, Scope};
use std::time::Instant;
use std::{env, io};

use ch01_single::next_client;
use ch01_single::session::{discard_until_closed, serve_session};
use ch01_single::wait::{wait_readable, Wait};
use protocol::close::LINGER;
use protocol::{event, warn, Config, Shutdown, ETX};

pub use closer::Closer;
pub use queue::{Full, Queue};

/// What `--help` says about this server.
pub const ABOUT: &str =
    "Chapter 3: a thread pool fed by a bounded accept queue";

/// The reply to a client that arrives while the queue is full.
pub const BUSY: &[u8] = b"err server busy";

/// The environment variable that arms the test hook (see
/// [`forced_panic_text`]).
pub const PANIC_HOOK_VAR: &str = "CH03_PANIC_ON";

/// An accepted connection waiting for a worker.
#[derive(Debug)]
struct Client {
    stream: TcpStream,
    peer: SocketAddr,
    /// When it was queued, to log how long it waited for a worker.
    queued_at: Instant,
}

// ANCHOR: serve
/// Serves clients on `listener` with `--workers` threads until
/// `shutdown` is triggered, then lets every worker finish and returns.
///
/// # Errors
///
/// If a worker thread cannot be started, or the listener fails; a failing
/// connection (or a panicking handler) never ends the server.
pub fn serve(
    listener: TcpListener,
    config: &Config,
    shutdown: Shutdown,
) -> io::Result<()> {
    if let Some(text) = forced_panic_text() {
        warn!("test hook {PANIC_HOOK_VAR} armed: panics on {text:?}");
    }
    let queue = Queue::new(config.queue as usize);
    let closer = Closer::new()?;
    // Scoped threads may borrow `queue`, `closer`, `config` and `shutdown`
    // from this frame, and the scope joins every one of them before it
    // returns.
    let accepted = thread::scope(|scope| {
        let accepted = spawn_closer(scope, &closer)
            .and_then(|()| spawn_workers(scope, &queue, config, &shutdown))
            .and_then(|()| accept_loop(&listener, &queue, &closer, &shutdown));
        // However the loop ended (a signal, or a listener error), stop the
        // workers the same way: sessions in progress ack what they have
        // read and close; idle workers see the closed queue and return.
        // The closer finishes the lingering closes it holds, meanwhile.
        shutdown.trigger();
        closer.finish();
        close_unserved(queue.close());
        accepted
    });
    event!("every worker has finished; shut down");
    accepted
}
// ANCHOR_END: serve

// ANCHOR: accept_loop
/// Accepts clients and queues them for the workers, turning them away
/// when the queue is full. Never serves anyone itself.
fn accept_loop(
    listener: &TcpListener,
    queue: &Queue<Client>,
    closer: &Closer,
    shutdown: &Shutdown,
) -> io::Result<()> {
    while let Some((stream, peer)) = next_client(listener, shutdown)? {
        let client = Client {
            stream,
            peer,
            queued_at: Instant::now(),
        };
        match queue.try_push(client) {
            Ok(waiting) => {
                event!("accepted {peer}, {waiting} waiting for a worker");
            }
            Err(Full(client)) => {
                // Backpressure: every worker is busy and `--queue` more
                // clients already wait. Saying so at once beats letting
                // this one wait for minutes without a word. The reply
                // goes out now; the lingering close that keeps a reset
                // from destroying it happens on the closer's thread, so
                // the next client is accepted at once.
                warn!("busy: turned {peer} away, queue full");
                closer.turn_away(client.stream, BUSY);
            }
        }
    }
    Ok(())
}
// ANCHOR_END: accept_loop

// ANCHOR: spawn_closer
/// Starts the thread named `closer` that does the lingering close of
/// every client turned away (see [`Closer::run`]).
pub(crate) fn spawn_closer<'scope>(
    scope: &'scope Scope<'scope, '_>,
    closer: &'scope Closer,
) -> io::Result<()> {
    thread::Builder::new()
        .name("closer".into())
        .spawn_scoped(scope, move || closer.run())?;
    Ok(())
}
// ANCHOR_END: spawn_closer

// ANCHOR: spawn_workers
/// Starts `--workers` threads named `worker-1`, `worker-2`, ..., each
/// running [`worker`] until the queue closes.
fn spawn_workers<'scope>(
    scope: &'scope Scope<'scope, '_>,
    queue: &'scope Queue<Client>,
    config: &'scope Config,
    shutdown: &'scope Shutdown,
) -> io::Result<()> {
    for id in 1..=config.workers {
        thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn_scoped(scope, move || worker(queue, config, shutdown))?;
    }
    Ok(())
}
// ANCHOR_END: spawn_workers

// ANCHOR: worker
/// One worker's life: take the next client, serve it, repeat. Sleeps in
/// [`Queue::pop`] while there is nobody to serve; returns once the queue
/// is closed.
fn worker(queue: &Queue<Client>, config: &Config, shutdown: &Shutdown) {
    event!("ready");
    while let Some(client) = queue.pop() {
        let peer = client.peer;
        // A panic in the handler unwinds to here instead of ending the
        // thread, so the pool keeps its N workers. The client is moved in
        // and dropped (closed) by the unwinding; the handler shares only
        // read-only state with the rest of the server, which is why the
        // compiler accepts this closure as `UnwindSafe` without an
        // `AssertUnwindSafe`.
        let served = panic::catch_unwind(|| {
            handle_client(client, config, shutdown);
        });
        if let Err(payload) = served {
            let why = panic_message(payload.as_ref());
            warn!("panic while serving {peer} ({why}); connection dropped");
        }
    }
    event!("queue closed, stopping");
}
// ANCHOR_END: worker

// ANCHOR: handle_client
/// Serves one client's whole session on this worker, and logs how it
/// ended: chapter 1's `handle_client`, on another thread.
fn handle_client(client: Client, config: &Config, shutdown: &Shutdown) {
    let Client {
        stream,
        peer,
        queued_at,
    } = client;
    let waited = queued_at.elapsed().as_secs_f64();
    event!("serving {peer} (waited {waited:.3} s in the queue)");
    panic_if_asked(&stream, config, shutdown);
    let ending = serve_session(stream, peer, config, shutdown);
    event!("closed {peer}: {ending}");
}
// ANCHOR_END: handle_client

// ANCHOR: close_unserved
/// At shutdown, closes the connections still waiting in the queue.
///
/// Nobody has read a byte from them: whatever they sent sits in the
/// kernel's socket buffer, exactly like bytes a client in session sent
/// after the worker's last read, which `serve_session` does not ack
/// either. So the server has received none of their messages, owes them
/// no `ack`, and closes them the way a session ends at shutdown: end of
/// stream, no words. They all share one lingering period, so shutdown
/// takes at most [`LINGER`] longer however many were waiting.
fn close_unserved(clients: Vec<Client>) {
    for client in &clients {
        event!(
            "closing {}: shutting down before a worker was free",
            client.peer
        );
        // The client sees end of stream now, not after the others.
        let _ = client.stream.shutdown(Direction::Write);
    }
    let deadline = Instant::now() + LINGER;
    for client in clients {
        discard_until_closed(client.stream, deadline);
    }
}
// ANCHOR_END: close_unserved

/// The text of a panic, if it has one (`panic!` with a message does).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "no message"
    }
}

// ANCHOR: test_hook
/// The test hook: the message text that makes a worker panic, from the
/// `CH03_PANIC_ON` environment variable, read once.
///
/// The tests need a handler that panics, to show that the pool survives
/// it. Nothing a client sends can make a correct handler panic, so the
/// panic must be planted. The variable is set only by whoever starts the
/// server, never by a client: a server started without it has no panic to
/// trigger. When it is set, `serve` logs so on its first line.
pub fn forced_panic_text() -> Option<&'static str> {
    static TEXT: OnceLock<Option<String>> = OnceLock::new();
    TEXT.get_or_init(|| env::var(PANIC_HOOK_VAR).ok())
        .as_deref()
}

/// Panics if the hook is armed and the client's first message is the
/// hook's text. Peeks without reading, so the session still sees every
/// byte when it does not panic; the test sends the message in one write.
fn panic_if_asked(stream: &TcpStream, config: &Config, shutdown: &Shutdown) {
    let Some(text) = forced_panic_text() else {
        return;
    };
    let deadline = config.idle_timeout().map(|t| Instant::now() + t);
    if !matches!(wait_readable(stream, shutdown, deadline), Ok(Wait::Ready)) {
        return;
    }
    let mut first = vec![0; text.len() + 1];
    let Ok(n) = stream.peek(&mut first) else {
        return;
    };
    if first[..n] == *[text.as_bytes(), &[ETX]].concat() {
        panic!("test hook: first message was {text:?}");
    }
}
// ANCHOR_END: test_hook
