//! Chapter 6: a runtime by hand - futures, wakers and an executor on
//! chapter 4's poller.
//!
//! Chapter 5 wrote the session as an `async fn` and let tokio run it.
//! Here the same session runs on a runtime of our own ([`runtime`]): an
//! executor that polls tasks, a reactor on chapter 4's `Poller` that wakes
//! them when their sockets are ready, and timers for the work and the
//! deadlines. One thread, like chapters 4 and 5.
//!
//! What it costs: a task per connection, whose size is the size of the
//! compiler's state machine for `handle_client`, plus the reactor's and
//! the executor's table entries; no read buffer while a client is quiet.
//! Spin work (`--work-kind spin`) runs in place and holds every
//! connection, as in chapter 4: a task that never awaits never yields.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod runtime;

use std::cell::Cell;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::sys::socket::{listen, Backlog};
use protocol::budget::{Account, SharedBudget, BUSY_REPLY};
use protocol::clock::{earlier, MessageClock, TIMEOUT_REPLY};
use protocol::close::{Ending, LINGER};
use protocol::limits::{raise_open_files, ACCEPT_BACKOFF};
use protocol::log::Preview;
use protocol::spare::{self, give_back};
use protocol::{event, warn, Config, Decoder, Frame, Shutdown, Work};
use protocol::{WorkKind, ACK};

use crate::runtime::{
    race, sleep, sleep_until, spawn, timeout, Either, Registration, Sleep,
    TcpListener, TcpStream,
};

/// What `--help` says about this server.
pub const ABOUT: &str =
    "Chapter 6: a runtime by hand (futures and wakers on epoll, one thread)";

/// The stop switch: `true` once a shutdown began. It keeps no wakers:
/// turning it on wakes every task ([`runtime::wake_all`]).
type Stop = Rc<Cell<bool>>;

// ANCHOR: serve
/// Serves clients on `listener` until `shutdown` is triggered.
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
    // One descriptor per connection (as in chapter 4). Not fatal: fewer
    // clients fit.
    match raise_open_files() {
        Ok((soft, hard)) => event!("open-file limit {soft} -> {hard}"),
        Err(e) => warn!("cannot raise the open-file limit: {e}"),
    }
    let config = Rc::new(config.clone());
    runtime::block_on(accept_loop(listener, config, shutdown))??;
    event!("shut down");
    Ok(())
}
// ANCHOR_END: serve

// ANCHOR: accept_loop
/// Accepts connections and spawns a task for each, until a signal; then
/// lets the tasks finish their current messages.
async fn accept_loop(
    listener: std::net::TcpListener,
    config: Rc<Config>,
    shutdown: Shutdown,
) -> io::Result<()> {
    // A burst of connects would overflow std's backlog of 128 (as in
    // chapter 4); listening again only changes the backlog.
    listen(&listener, Backlog::MAXALLOWABLE)?;
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    // The shutdown switch is a descriptor: readable once a signal came.
    let switch = Rc::new(shutdown.as_fd().try_clone_to_owned()?);
    let signal = Registration::new(switch)?;
    let signalled = || {
        let on = shutdown.is_triggered();
        on.then_some(())
            .ok_or(io::Error::from(ErrorKind::WouldBlock))
    };
    let stop = Stop::default();
    // Every task's share of --max-buffered-bytes (see `session`).
    let budget = SharedBudget::new(config.max_buffered_bytes);
    loop {
        let stopping = signal.read_with(signalled);
        match race(stopping, listener.accept()).await {
            Either::Left(_) => break,
            Either::Right(Ok((stream, peer))) => {
                spawn(handle_client(
                    stream,
                    peer,
                    config.clone(),
                    stop.clone(),
                    budget.open(),
                ));
            }
            // Out of descriptors, or the client gave up first: never
            // fatal, and never a busy loop.
            Either::Right(Err(e)) => {
                let open = runtime::live_tasks();
                warn!("accept failed: {e}; pausing accepts ({open} open)");
                let pause =
                    race(signal.read_with(signalled), sleep(ACCEPT_BACKOFF));
                if let Either::Left(_) = pause.await {
                    break;
                }
            }
        }
    }
    // Stop accepting: connections still in the backlog are reset.
    drop(listener);
    event!("shutting down: {} connections open", runtime::live_tasks());
    stop.set(true);
    runtime::wake_all();
    // Every task acks the message in progress, then lingers at most
    // LINGER; returning drops (cancels) the ones that did not make it.
    let grace = config.work().duration + LINGER + Duration::from_millis(200);
    let _ = timeout(Some(grace), runtime::all_tasks_done()).await;
    Ok(())
}
// ANCHOR_END: accept_loop

// ANCHOR: handle_client
/// One connection's task: serves the session and logs how it ended.
async fn handle_client(
    stream: TcpStream,
    peer: SocketAddr,
    config: Rc<Config>,
    stop: Stop,
    account: Account,
) {
    event!("accepted {peer}");
    let ending = session(stream, peer, &config, &stop, &account).await;
    event!("closed {peer}: {ending}");
}
// ANCHOR_END: handle_client

// ANCHOR: session
/// Serves one client from its first byte to its last: chapter 5's
/// session, on our runtime, with its message deadline and its eviction
/// over the buffer budget.
async fn session(
    stream: TcpStream,
    peer: SocketAddr,
    config: &Config,
    stop: &Stop,
    account: &Account,
) -> Ending {
    let idle = config.idle_timeout();
    let mut decoder = Decoder::new(config.max_message_bytes);
    let mut clock = MessageClock::new(config.message_timeout());
    let mut timer = sleep_until(None);
    loop {
        // Idle time is time spent here, waiting for the client; so is
        // the message deadline's. The timer is the nearer of the two.
        let idle_at = idle.and_then(|idle| Instant::now().checked_add(idle));
        timer.reset(earlier(idle_at, clock.deadline()));
        let input = next_input(&stream, &mut timer);
        let interrupt = race(stopped(stop), account.evicted());
        let input = match race(interrupt, input).await {
            Either::Left(Either::Left(())) => Input::Stop,
            Either::Left(Either::Right(())) => Input::Evicted,
            Either::Right(input) => input,
        };
        let (buffer, n) = match input {
            Input::Bytes(buffer, n) => (buffer, n),
            Input::End => {
                let dropped = decoder.pending_bytes();
                return Ending::EndOfStream { dropped };
            }
            Input::Idle if clock.expired(Instant::now()) => {
                close_gracefully(stream, TIMEOUT_REPLY).await;
                return Ending::MessageTimeout;
            }
            Input::Idle => {
                close_gracefully(stream, b"err idle timeout").await;
                return Ending::IdleTimeout;
            }
            Input::Evicted => {
                let held = decoder.pending_bytes();
                // Give the message back now, not after the linger: until
                // we say so, the budget still counts it.
                drop(decoder);
                account.release();
                close_gracefully(stream, BUSY_REPLY).await;
                return Ending::Evicted { held };
            }
            Input::Stop => {
                close_gracefully(stream, b"").await;
                return Ending::Shutdown;
            }
            Input::Failed(e) => return Ending::Vanished(e),
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
                    // A reset during the work ends the session at once;
                    // an eviction drops the message in work.
                    let ended = race(stream.failed(), account.evicted());
                    match race(perform(config.work()), ended).await {
                        Either::Left(()) => {}
                        Either::Right(Either::Left(())) => {
                            let error = ErrorKind::ConnectionReset.into();
                            return Ending::Vanished(error);
                        }
                        Either::Right(Either::Right(())) => {
                            give_back(buffer);
                            // Evicted before this message completed: no
                            // unfinished one is left to count.
                            account.release();
                            close_gracefully(stream, BUSY_REPLY).await;
                            return Ending::Evicted { held: 0 };
                        }
                    }
                    // An ack that can be sent is sent, stop or not; a
                    // client that never reads cannot hold the task.
                    let ack = timeout(idle, stream.write_all(ACK));
                    match race(ack, stopped(stop)).await {
                        Either::Left(Ok(Ok(()))) => {
                            event!("ack sent to {peer}");
                        }
                        Either::Left(Ok(Err(e))) => {
                            return Ending::Vanished(e);
                        }
                        Either::Left(Err(_)) => {
                            let e = ErrorKind::TimedOut.into();
                            return Ending::Vanished(e);
                        }
                        Either::Right(()) => {
                            close_gracefully(stream, b"").await;
                            return Ending::Shutdown;
                        }
                    }
                    // A shutdown waits for the message in progress, not
                    // for the ones queued behind it.
                    if !input.is_empty() && stop.get() {
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
        if stop.get() {
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
    }
}
// ANCHOR_END: session

// ANCHOR: next_input
/// What waiting for a client brought.
enum Input {
    /// A buffer (see [`spare::take`]) with this many bytes read into it.
    Bytes(Vec<u8>, usize),
    /// End of stream.
    End,
    /// Nothing until the deadline.
    Idle,
    /// The server is shutting down.
    Stop,
    /// Evicted to keep the buffer budget.
    Evicted,
    /// The connection failed.
    Failed(io::Error),
}

/// Waits for input until `idle` (the idle or the message deadline) is
/// due, then reads it into a buffer taken only then, so that no buffer is
/// held while the client is quiet.
async fn next_input(stream: &TcpStream, idle: &mut Sleep) -> Input {
    loop {
        let waited = race(stream.readable(), &mut *idle).await;
        let timed_out = matches!(waited, Either::Right(()));
        if let Either::Left(Err(e)) = waited {
            return Input::Failed(e);
        }
        let mut buffer = spare::take();
        // Past the deadline, the clock says idle, but the socket may not
        // agree: after a SIGSTOP, bytes sent meanwhile wait in the kernel
        // while the timer is found due first. One read asks the kernel.
        let read = stream.try_read(&mut buffer);
        match read {
            Ok(n) if n > 0 => return Input::Bytes(buffer, n),
            _ => give_back(buffer),
        }
        match read {
            Ok(_) => return Input::End,
            Err(e) if e.kind() == ErrorKind::WouldBlock && timed_out => {
                return Input::Idle;
            }
            // Woken for nothing (the report was stale): wait again.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Input::Failed(e),
        }
    }
}

/// Returns once the stop switch is on. Registers no waker: turning the
/// switch on wakes every task, and this one polls again.
async fn stopped(stop: &Stop) {
    std::future::poll_fn(|_| {
        if stop.get() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}
// ANCHOR_END: next_input

// ANCHOR: perform
/// The simulated work. Sleep work is a timer: the task waits, the thread
/// serves others. Spin work burns the thread itself, and every other
/// task waits for it, as every connection did in chapter 4.
async fn perform(work: Work) {
    if work.duration.is_zero() {
        return;
    }
    match work.kind {
        WorkKind::Sleep => sleep(work.duration).await,
        WorkKind::Spin => work.perform(),
    }
}
// ANCHOR_END: perform

// ANCHOR: close_gracefully
/// Sends `last_words`, shuts down our side, then reads and discards what
/// the client still sends for at most [`LINGER`], so that a reset cannot
/// destroy the reply (chapter 1's lingering close, awaited).
async fn close_gracefully(stream: TcpStream, last_words: &[u8]) {
    let said = timeout(Some(LINGER), async {
        stream.write_all(last_words).await?;
        stream.shutdown_write()
    });
    if !matches!(said.await, Ok(Ok(()))) {
        return;
    }
    let _ = timeout(Some(LINGER), async {
        // On the heap: a buffer in the future would make every
        // connection's task bigger, lingering or not.
        let mut sink = vec![0; 1024];
        // Ends at end of stream or on any error.
        while let Ok(1..) = stream.read(&mut sink).await {}
    })
    .await;
}
// ANCHOR_END: close_gracefully

#[cfg(test)]
mod future_size;
