//! Chapter 5: the production reference, on tokio.
//!
//! The same protocol as chapters 1-4, written the way you would write it
//! for production: a tokio runtime, one *task* per connection, and
//! `async fn`s that read like chapter 1's blocking session. Underneath,
//! tokio does what chapter 4 did by hand: an epoll reactor wakes the tasks
//! whose sockets are ready, each task is a state machine the compiler
//! wrote from an `async fn`, and a timer wheel wakes the ones whose sleep
//! or idle limit is due.
//!
//! The runtime is tokio's *current-thread* runtime: one thread runs every
//! task, exactly like chapter 4's loop, so the two compare like for like.
//! CPU-bound work (`--work-kind spin`) goes to a thread of its own, as
//! production code must: a task that spins in place stalls every other
//! connection on the thread. `--workers` does not apply (as in chapter 4).
//! One thread also keeps the buffer budget's bound at one read: on a
//! multi-thread runtime each worker thread could be inside a read of its
//! own when the total goes over, so the bound would be one read per
//! worker thread (see `protocol::budget`).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::socket::{listen, recv, Backlog, MsgFlags};
use protocol::budget::{Account, SharedBudget, BUSY_REPLY};
use protocol::clock::{earlier, MessageClock, TIMEOUT_REPLY};
use protocol::close::{Ending, LINGER};
use protocol::limits::{raise_open_files, ACCEPT_BACKOFF};
use protocol::log::Preview;
use protocol::spare::{self, give_back};
use protocol::{
    event, warn, Config, Decoder, Frame, Shutdown, Work, WorkKind, ACK,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::{yield_now, JoinSet};
use tokio::time::{sleep, timeout};

/// What `--help` says about this server.
pub const ABOUT: &str =
    "Chapter 5: the production reference, on tokio (one thread, many tasks)";

/// Reads into an unfinished message before a task yields its turn, as
/// chapter 4 reads a socket at most four times per wakeup.
const READS_PER_TURN: usize = 4;

/// The stop switch every task watches: `false` until the shutdown switch
/// is triggered.
type Stop = watch::Receiver<bool>;

// ANCHOR: serve
/// Serves clients on `listener` until `shutdown` is triggered.
///
/// Builds a current-thread runtime and runs `accept_loop` on it. After a
/// signal, connections get up to `--work-ms` plus a little to ack the
/// message in progress and close; then the runtime is dropped, which
/// cancels whatever is left.
///
/// # Errors
///
/// If the runtime or the listener cannot be set up, or the listener
/// fails; a failing connection never ends the server.
pub fn serve(
    listener: std::net::TcpListener,
    config: &Config,
    shutdown: Shutdown,
) -> io::Result<()> {
    // One descriptor per connection, and 10,000 connections is the point
    // of this model (as in chapter 4). Not fatal: fewer clients fit.
    if let Err(e) = raise_open_files() {
        warn!("cannot raise the open-file limit: {e}");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let config = Arc::new(config.clone());
    runtime.block_on(accept_loop(listener, config, shutdown))?;
    // Only spinner threads of abandoned tasks can still be running here;
    // nobody waits for their result, and returning ends the process under
    // them.
    runtime.shutdown_timeout(Duration::from_millis(100));
    event!("shut down");
    Ok(())
}
// ANCHOR_END: serve

// ANCHOR: accept_loop
/// Accepts connections and spawns a task for each, until a signal; then
/// lets the tasks finish their current messages.
async fn accept_loop(
    listener: std::net::TcpListener,
    config: Arc<Config>,
    shutdown: Shutdown,
) -> io::Result<()> {
    // std listens with a backlog of 128; a burst of thousands of
    // connects would overflow it and wait a second for SYN retries.
    // Listening again only changes the backlog (as in chapter 4).
    listen(&listener, Backlog::MAXALLOWABLE)?;
    // tokio's listener needs the std one in non-blocking mode.
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let mut stop = watch_shutdown(&shutdown)?;
    // Every task's share of --max-buffered-bytes (see `session`).
    let budget = SharedBudget::new(config.max_buffered_bytes);
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            // `biased`: check the branches in order, stop first.
            biased;
            _ = stop.changed() => break,
            // Reap finished tasks so the set does not grow forever.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let session = handle_client(
                        stream, peer, config.clone(), stop.clone(),
                        budget.open());
                    tasks.spawn(session);
                }
                // Out of descriptors, or the client gave up first: never
                // fatal, and never a busy loop.
                Err(e) => {
                    warn!("accept failed: {e}; pausing {ACCEPT_BACKOFF:?}");
                    tokio::select! {
                        _ = stop.changed() => break,
                        _ = sleep(ACCEPT_BACKOFF) => {}
                    }
                }
            },
        }
    }
    // Stop accepting: connections still in the backlog are reset.
    drop(listener);
    event!("stopping: {} connections to finish", tasks.len());
    // Every task acks the message it is working on, if any, then lingers
    // at most LINGER; the contract allows work + 1 s in all, and 100 ms of
    // it is left for the exit itself.
    let grace = config.work().duration + LINGER + Duration::from_millis(400);
    let _ =
        timeout(grace, async { while tasks.join_next().await.is_some() {} })
            .await;
    // Dropping the set aborts the tasks that did not make it in time.
    Ok(())
}
// ANCHOR_END: accept_loop

// ANCHOR: handle_client
/// One connection's task: serves the session and logs how it ended.
async fn handle_client(
    stream: TcpStream,
    peer: SocketAddr,
    config: Arc<Config>,
    stop: Stop,
    account: Account,
) {
    event!("accepted {peer}");
    let ending = session(stream, peer, &config, stop, account).await;
    event!("closed {peer}: {ending}");
}
// ANCHOR_END: handle_client

// ANCHOR: session
/// Serves one client from its first byte to its last.
///
/// This is chapter 1's `serve_session` with `.await` at every point that
/// would block: reading, the work, writing. Each `.await` is where the
/// task's state machine stops and hands the thread to another task.
///
/// Besides chapter 1's endings, another task's read can evict this one
/// to keep `--max-buffered-bytes` ([`Account`]): its reads and its work
/// race the eviction, and it closes with `err server busy`, dropping
/// the message in work (the acks already sent were the ones owed).
async fn session(
    mut stream: TcpStream,
    peer: SocketAddr,
    config: &Config,
    mut stop: Stop,
    account: Account,
) -> Ending {
    let idle = config.idle_timeout();
    let work = config.work();
    let mut decoder = Decoder::new(config.max_message_bytes);
    let mut clock = MessageClock::new(config.message_timeout());
    // Reads into the message being received since this task last yielded.
    let mut reads = 0;
    loop {
        // Idle time is time spent here, waiting for the client; so is
        // the message deadline's. We wait for the nearer of the two.
        let now = Instant::now();
        let idle_at = idle.and_then(|idle| now.checked_add(idle));
        let wait = earlier(idle_at, clock.deadline())
            .map_or(Duration::MAX, |at| at.saturating_duration_since(now));
        let read = tokio::select! {
            biased;
            _ = stop.changed() => {
                close_gracefully(stream, b"").await;
                return Ending::Shutdown;
            }
            () = account.evicted() => {
                let held = decoder.pending_bytes();
                // Give the message back now, not after the linger: until
                // we say so, the budget still counts it.
                drop(decoder);
                account.release();
                close_gracefully(stream, BUSY_REPLY).await;
                return Ending::Evicted { held };
            }
            read = timeout(wait, next_read(&stream)) => read,
        };
        let read = match read {
            Ok(read) => read,
            // The clock says time is up; the socket may not agree.
            Err(_elapsed) => match read_waiting(&stream) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if clock.expired(Instant::now()) {
                        close_gracefully(stream, TIMEOUT_REPLY).await;
                        return Ending::MessageTimeout;
                    }
                    close_gracefully(stream, b"err idle timeout").await;
                    return Ending::IdleTimeout;
                }
                read => read,
            },
        };
        let (buffer, n) = match read {
            Ok((_, 0)) => {
                let dropped = decoder.pending_bytes();
                return Ending::EndOfStream { dropped };
            }
            Ok(read) => read,
            Err(e) => return Ending::Vanished(e),
        };
        let mut input = &buffer[..n];
        loop {
            match decoder.decode(&mut input) {
                Ok(None) => break,
                Ok(Some(Frame::Goodbye)) => {
                    close_gracefully(stream, b"").await;
                    return Ending::Goodbye;
                }
                Ok(Some(Frame::Message(text))) => {
                    event!("message {} from {peer}", Preview(text));
                    // Complete, and worked on: its clock stops, and its
                    // bytes are no unfinished message's any more.
                    clock.track(false, Instant::now());
                    account.hold(0);
                    let worked = tokio::select! {
                        biased;
                        () = account.evicted() => None,
                        worked = perform(work) => Some(worked),
                    };
                    match worked {
                        Some(Ok(())) => {}
                        Some(Err(e)) => {
                            warn!("busy: no thread for {peer}'s work: {e}");
                            close_gracefully(stream, BUSY_REPLY).await;
                            return Ending::Busy(e);
                        }
                        None => {
                            // Evicted before this message completed: no
                            // unfinished one is left to count.
                            account.release();
                            close_gracefully(stream, BUSY_REPLY).await;
                            return Ending::Evicted { held: 0 };
                        }
                    }
                    // A client that stops reading cannot hold the task
                    // (and its memory) forever, nor hold up a shutdown.
                    let sent = tokio::select! {
                        // An ack that can be sent is sent, stop or not.
                        biased;
                        sent = timeout(
                            idle.unwrap_or(Duration::MAX),
                            stream.write_all(ACK),
                        ) => sent,
                        () = stopped(&mut stop) => {
                            close_gracefully(stream, b"").await;
                            return Ending::Shutdown;
                        }
                    };
                    match sent {
                        Ok(Ok(())) => event!("ack sent to {peer}"),
                        Ok(Err(e)) => return Ending::Vanished(e),
                        Err(_) => {
                            let e = io::ErrorKind::TimedOut.into();
                            return Ending::Vanished(e);
                        }
                    }
                    // A shutdown waits for the message in progress, not
                    // for the ones queued behind it: each would add
                    // `--work-ms`. (With no input left, the check after
                    // this loop does it.)
                    if !input.is_empty() && *stop.borrow() {
                        close_gracefully(stream, b"").await;
                        return Ending::Shutdown;
                    }
                }
                Err(violation) => {
                    close_gracefully(stream, violation.reply()).await;
                    return Ending::Violation(violation);
                }
            }
        }
        give_back(buffer);
        // Every message read so far is acked; stop before reading more.
        if *stop.borrow() {
            close_gracefully(stream, b"").await;
            return Ending::Shutdown;
        }
        // Account before the next read: over the budget, the largest
        // holders (this one, maybe) are evicted now.
        let held = decoder.pending_bytes();
        if account.hold(held) {
            drop(decoder);
            account.release();
            close_gracefully(stream, BUSY_REPLY).await;
            return Ending::Evicted { held };
        }
        // We are not working, so bytes of a message held now are on its
        // clock: from now if this read brought its first byte, or if the
        // work on the message before it just ended.
        let now = Instant::now();
        clock.track(held > 0, now);
        if clock.expired(now) {
            close_gracefully(stream, TIMEOUT_REPLY).await;
            return Ending::MessageTimeout;
        }
        // Fairness, as chapter 4 reads a few times per wakeup: tokio lets
        // a task read 128 times before it must yield, so ten thousand
        // clients in the middle of big messages would each be read to
        // the end before a new client's turn comes. Mid-message, we go to
        // the back of the queue every few reads.
        reads = if held > 0 { reads + 1 } else { 0 };
        if reads == READS_PER_TURN {
            reads = 0;
            yield_now().await;
        }
    }
}

/// Waits until `stream` has input, then reads it into a buffer taken
/// only then ([`spare::take`]; `Ok((buffer, 0))` at end of stream).
///
/// A task keeps whatever it owns across an `.await`, and most of a
/// connection's life is the `.await` for its next bytes: a buffer owned
/// by the session would cost 4 KiB per quiet connection, 40 MiB for
/// 10,000. So we wait for readiness, not for bytes, as chapter 4 does.
/// Nothing is held while waiting, so cancelling this loses nothing.
async fn next_read(stream: &TcpStream) -> io::Result<(Vec<u8>, usize)> {
    loop {
        stream.readable().await?;
        let mut buffer = spare::take();
        match stream.try_read(&mut buffer) {
            Ok(n) => return Ok((buffer, n)),
            // The readiness was stale (tokio has now cleared it): wait
            // again.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                give_back(buffer);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Reads what is waiting in the kernel for `stream` now, without
/// blocking and without asking tokio: `WouldBlock` if nothing is.
///
/// Called when the idle limit has run out, because tokio's clock and its
/// view of the socket can disagree. When the process was stopped (a
/// debugger, `docker pause`, the cgroup freezer, `strace -p`, SIGSTOP)
/// the client's bytes may have arrived meanwhile, and when it runs again
/// the timer can be found due before the reactor has reported the socket
/// readable: tokio's own `read` would then not even look. The kernel
/// knows, so we ask it. Reading behind tokio's back is safe: tokio only
/// ever finds out that there is less to read than it thought.
fn read_waiting(stream: &TcpStream) -> io::Result<(Vec<u8>, usize)> {
    let fd = stream.as_fd().as_raw_fd();
    let mut buffer = spare::take();
    match recv(fd, &mut buffer, MsgFlags::MSG_DONTWAIT) {
        Ok(n) => Ok((buffer, n)),
        Err(e) => {
            give_back(buffer);
            Err(e.into())
        }
    }
}

/// Returns once the stop switch is on (at once if it is already).
async fn stopped(stop: &mut Stop) {
    // An error means the switch is gone, which happens only after it was
    // turned on (or with the runtime): either way, stop.
    let _ = stop.wait_for(|&on| on).await;
}
// ANCHOR_END: session

// ANCHOR: perform
/// The simulated work, without blocking the runtime's thread.
///
/// Sleep work is a timer: the task waits, the thread serves others.
/// Spin work burns a CPU, so it runs on a thread of its own; spinning
/// here would stall every connection, which is exactly what chapter 4's
/// single thread does.
///
/// # Errors
///
/// When the OS refuses a thread for spin work (a thread or memory
/// limit): the caller tells its client the server is busy.
async fn perform(work: Work) -> io::Result<()> {
    if work.duration.is_zero() {
        // Not even a timer: a zero sleep still goes through the timer
        // wheel, which rounds deadlines up to the next millisecond.
        return Ok(());
    }
    match work.kind {
        WorkKind::Sleep => sleep(work.duration).await,
        WorkKind::Spin => {
            // At most SPINNERS threads at once; the others wait their
            // turn here, as tokio's blocking pool would queue them.
            let permit = SPINNERS
                .acquire()
                .await
                .expect("SPINNERS is never closed, so acquire cannot fail");
            let (done, finished) = oneshot::channel();
            // Not `spawn_blocking`: it starts its threads lazily, and when
            // the OS refuses one it panics in the caller - this task -
            // and the client sees a bare close. `Builder::spawn` returns
            // the refusal as an error we can answer.
            thread::Builder::new()
                .name("spinner".into())
                .spawn(move || {
                    work.perform();
                    drop(permit);
                    // Nobody listens if the task was cancelled meanwhile.
                    let _ = done.send(());
                })?;
            // An error only if the thread died without sending, which
            // `perform` cannot do short of a bug in `spin_for`.
            let _ = finished.await;
        }
    }
    Ok(())
}

/// Threads that may spin at once: tokio's own default bound for its
/// blocking pool. Spin work is CPU-bound, so more threads than cores only
/// share the cores; the bound keeps a flood of clients from asking the
/// OS for thousands of threads.
static SPINNERS: Semaphore = Semaphore::const_new(512);
// ANCHOR_END: perform

// ANCHOR: close_gracefully
/// Sends `last_words`, shuts down our side, then reads and discards what
/// the client still sends for at most [`LINGER`], so that a reset cannot
/// destroy the reply (chapter 1's lingering close, awaited).
async fn close_gracefully(mut stream: TcpStream, last_words: &[u8]) {
    let said = timeout(LINGER, async {
        stream.write_all(last_words).await?;
        stream.shutdown().await
    });
    if !matches!(said.await, Ok(Ok(()))) {
        return;
    }
    // Read into the spare buffer, as the session does: a buffer of our
    // own would live across the `.await` and so in every task's future.
    let _ = timeout(LINGER, async {
        // Ends at end of stream or on any error.
        while let Ok((sink, n)) = next_read(&stream).await {
            give_back(sink);
            if n == 0 {
                break;
            }
            // A closing connection gets no more than its turn (see
            // `session`).
            yield_now().await;
        }
    })
    .await;
}
// ANCHOR_END: close_gracefully

// ANCHOR: watch_shutdown
/// A switch every task can await, which turns on with `shutdown`.
///
/// `shutdown` is the protocol crate's self-pipe, which `main` installs
/// before it prints `listening on`, so that a signal sent the moment that
/// line appears is caught. (tokio's own `tokio::signal` would install its
/// handlers only once the runtime runs, too late for that moment.) The
/// pipe's read end is a Unix socket, so tokio's reactor can wait on a copy
/// of it like on any socket - as chapter 4 added the switch to its poller.
fn watch_shutdown(shutdown: &Shutdown) -> io::Result<Stop> {
    let pipe = UnixStream::from(shutdown.as_fd().try_clone_to_owned()?);
    // tokio needs non-blocking descriptors. Nobody ever reads the pipe,
    // so the blocking code that polls it does not mind.
    pipe.set_nonblocking(true)?;
    let pipe = tokio::net::UnixStream::from_std(pipe)?;
    let (switch, stop) = watch::channel(false);
    tokio::spawn(async move {
        // Readable once a signal came, and never drained. An error here
        // would mean the reactor is gone, and the server with it.
        let _ = pipe.readable().await;
        event!("signal received: stop accepting");
        // Fails only when every receiver is gone, and then nobody cares.
        let _ = switch.send(true);
    });
    Ok(stop)
}
// ANCHOR_END: watch_shutdown

#[cfg(test)]
mod future_size;
