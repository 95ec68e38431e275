//! The conformance suite: one check per rule of the contract
//! (book/contract.md), written once and
//! run against every chapter's server.
//!
//! A chapter crate runs the whole suite with one line in
//! `tests/conformance.rs`:
//!
//! ```ignore
//! harness::conformance_tests!(env!("CARGO_BIN_EXE_ch01-single"));
//! // or, with flags the model needs (never ones the suite sets itself:
//! // --addr, --work-ms, --work-kind, --idle-timeout-ms,
//! // --max-message-bytes, --quiet):
//! harness::conformance_tests!(
//!     env!("CARGO_BIN_EXE_ch03-threaded"),
//!     &["--workers", "2"]
//! );
//! ```
//!
//! which expands to one `#[test]` per function below. Each check starts its
//! own server process with the flags it needs, so the checks are
//! independent and may run in parallel. Nothing here assumes a model: no
//! check depends on the order in which concurrent clients are served.
//!
//! Every socket has a timeout ([`TIMEOUT`]); a server that hangs fails the
//! check instead of hanging the test run. Checks wait for readiness (the
//! `listening on` line, a reply, the kernel's receive queue draining), not
//! for fixed sleeps; timing bounds are lower bounds the server cannot beat
//! or generous upper bounds.

use std::fmt::Display;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use client::connection::{is_timeout, Closed, Connection, ReplyError};
use protocol::encoder::{encode_message, GOODBYE_FRAME};
use protocol::AckReader;

use crate::process::ServerProcess;
use crate::procfs;

/// Bound on every connect, read and write in the suite.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Work per message in checks that do not study the work itself: long
/// enough to be seen, short enough to keep the suite quick.
const WORK_MS: u64 = 50;

// --- The wire protocol ---------------------------------------------------

/// The seed's session: 5 messages, each acked only after the work, then
/// `goodbye`, after which the server sends nothing and closes.
pub fn basic_session(program: &str, extra: &[&str]) {
    let server = start_working(program, extra, &[]);
    let mut conn = connect(&server);
    for n in 0..5 {
        let sent = Instant::now();
        ok(
            &server,
            "send",
            conn.send(format!("package {n}").as_bytes()),
        );
        ok(&server, "ack", conn.read_ack());
        let took = sent.elapsed();
        assert!(
            took >= Duration::from_millis(WORK_MS),
            "ack for package {n} after {took:?}, before the {WORK_MS} ms \
             of work could be done"
        );
    }
    ok(&server, "goodbye", conn.send_goodbye());
    expect_close(&server, &mut conn, b"", Some(Closed::Eof));
}

/// Several messages and `goodbye` in a single write are framed apart, and
/// each message is acked, in order.
pub fn pipelined_messages(program: &str, extra: &[&str]) {
    let server = start_working(program, extra, &[]);
    let mut conn = connect(&server);
    let bytes = session_bytes(&["package 0", "package 1", "package 2"]);
    ok(&server, "send", conn.send_raw(&bytes));
    expect_close(&server, &mut conn, b"ackackack", Some(Closed::Eof));
}

/// A session sent one byte per write (so the server sees it in many
/// reads) is framed exactly as when sent whole.
pub fn byte_by_byte(program: &str, extra: &[&str]) {
    let server = start_working(program, extra, &[]);
    let mut conn = connect(&server);
    for &byte in &session_bytes(&["package 0", "package 1"]) {
        ok(&server, "send", conn.send_raw(&[byte]));
        // Not a readiness wait: a pause so that the bytes travel in
        // separate segments instead of being merged by the kernel.
        thread::sleep(Duration::from_millis(2));
    }
    expect_close(&server, &mut conn, b"ackack", Some(Closed::Eof));
}

/// A lone ETX is an (empty) message and is acked like any other.
pub fn empty_message(program: &str, extra: &[&str]) {
    let server = start_working(program, extra, &[]);
    let mut conn = connect(&server);
    ok(&server, "send", conn.send(b""));
    ok(&server, "ack", conn.read_ack());
    ok(&server, "send", conn.send_raw(b"\x03\x03"));
    ok(&server, "ack", conn.read_ack());
    ok(&server, "ack", conn.read_ack());
    ok(&server, "goodbye", conn.send_goodbye());
    expect_close(&server, &mut conn, b"", Some(Closed::Eof));
}

/// End of stream without `goodbye` (the client shuts down its write
/// side): every complete message is still acked, then the server closes.
pub fn half_close(program: &str, extra: &[&str]) {
    let server = start_working(program, extra, &[]);
    let mut conn = connect(&server);
    ok(&server, "send", conn.send_raw(b"a\x03b\x03c\x03"));
    ok(&server, "shutdown", conn.shutdown_write());
    expect_close(&server, &mut conn, b"ackackack", Some(Closed::Eof));
}

/// An unfinished message before end of stream is dropped: only the
/// complete ones are acked.
pub fn half_close_drops_unfinished(program: &str, extra: &[&str]) {
    let server = start_working(program, extra, &[]);
    let mut conn = connect(&server);
    ok(&server, "send", conn.send_raw(b"a\x03b\x03unfinished"));
    ok(&server, "shutdown", conn.shutdown_write());
    expect_close(&server, &mut conn, b"ackack", Some(Closed::Eof));
}

/// Bytes after `goodbye` - more messages, even a non-ASCII byte - get no
/// reply at all, and the connection is closed.
pub fn bytes_after_goodbye(program: &str, extra: &[&str]) {
    let server = start_working(program, extra, &[]);
    let mut conn = connect(&server);
    let bytes = b"a\x03goodbye\x03b\x03\xff\x03c";
    ok(&server, "send", conn.send_raw(bytes));
    // The server may close with these bytes unread, which the kernel
    // turns into a reset: allowed here, the contract asks only for a close.
    expect_close(&server, &mut conn, b"ack", None);
}

/// A message of exactly `--max-message-bytes` content bytes is acked.
pub fn max_size_message(program: &str, extra: &[&str]) {
    let flags = ["--max-message-bytes", "100"];
    let server = start_working(program, extra, &flags);
    let mut conn = connect(&server);
    ok(&server, "send", conn.send(&[b'x'; 100]));
    ok(&server, "ack", conn.read_ack());
    ok(&server, "goodbye", conn.send_goodbye());
    expect_close(&server, &mut conn, b"", Some(Closed::Eof));
}

/// A message one byte over the limit: the earlier messages are acked,
/// then `err message too long` arrives, then an orderly close (a reset
/// could have destroyed the reply).
pub fn oversize_message(program: &str, extra: &[&str]) {
    let flags = ["--max-message-bytes", "100"];
    let server = start_working(program, extra, &flags);
    let mut conn = connect(&server);
    let mut bytes = b"a\x03b\x03".to_vec();
    bytes.extend_from_slice(&[b'x'; 101]);
    bytes.extend_from_slice(b"\x03c\x03");
    ok(&server, "send", conn.send_raw(&bytes));
    let expected = b"ackackerr message too long";
    expect_close(&server, &mut conn, expected, Some(Closed::Eof));
}

/// A client that floods bytes with no ETX, and keeps sending, gets
/// `err message too long` (it reaches the client despite the unread
/// flood), and the server goes on serving other clients.
pub fn flood_without_etx(program: &str, extra: &[&str]) {
    let flags = ["--max-message-bytes", "1024"];
    let server = start_working(program, extra, &flags);
    let mut conn = connect(&server);
    let mut writer = ok(&server, "clone", conn.stream().try_clone());
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    // Sends up to 8 MiB, until the server closes on us or we are told to
    // stop: far more than the limit, never unbounded.
    let flood = thread::spawn(move || {
        let chunk = [b'x'; 16 * 1024];
        for _ in 0..512 {
            if stopped.load(Ordering::Relaxed) {
                break;
            }
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let reply = conn.read_until_closed();
    stop.store(true, Ordering::Relaxed);
    flood.join().expect("the flood thread does not panic");
    let (got, closed) = ok(&server, "read the reply", reply);
    assert_eq!(
        String::from_utf8_lossy(&got),
        "err message too long",
        "while flooding{}",
        context(&server)
    );
    assert_eq!(
        closed,
        Closed::Eof,
        "not an orderly close{}",
        context(&server)
    );
    assert_serves(&server);
}

/// A byte >= 0x80: the earlier messages are acked, then
/// `err non-ASCII byte` arrives, then an orderly close.
pub fn non_ascii_byte(program: &str, extra: &[&str]) {
    let server = start_working(program, extra, &[]);
    let mut conn = connect(&server);
    ok(
        &server,
        "send",
        conn.send_raw(b"a\x03b\x03c\xe9t\xe9\x03d\x03"),
    );
    let expected = b"ackackerr non-ASCII byte";
    expect_close(&server, &mut conn, expected, Some(Closed::Eof));
}

// --- Clients that misbehave or vanish --------------------------------

/// Clients that reset the connection (SO_LINGER 0) mid-message, and while
/// their message is being worked on, cost the server only those
/// connections: it goes on serving others.
pub fn reset_mid_message(program: &str, extra: &[&str]) {
    let server = start(program, extra, &["--work-ms", "300"]);
    // Reset while the server works on a complete message: its ack then
    // goes to a dead connection.
    let mut working = connect(&server);
    ok(&server, "send", working.send_raw(b"package 0\x03pack"));
    wait_until_read(&server, &working);
    ok(&server, "reset", working.reset());
    // Reset in the middle of a message.
    let mut partial = connect(&server);
    ok(&server, "send", partial.send_raw(b"pack"));
    ok(&server, "reset", partial.reset());
    assert_serves(&server);
}

/// Clients that close before reading their acks (so the server's writes
/// meet a closed socket: a reset, then EPIPE) cost the server only those
/// connections - no SIGPIPE death.
pub fn close_before_reading_acks(program: &str, extra: &[&str]) {
    let server = start_working(program, extra, &[]);
    for _ in 0..3 {
        let mut conn = connect(&server);
        ok(&server, "send", conn.send_raw(b"a\x03b\x03c\x03"));
        drop(conn);
    }
    assert_serves(&server);
    assert_serves(&server);
}

/// A client that sends nothing for `--idle-timeout-ms` gets
/// `err idle timeout` and an orderly close - not before the limit.
pub fn idle_timeout(program: &str, extra: &[&str]) {
    let flags = ["--idle-timeout-ms", "300"];
    let server = start_working(program, extra, &flags);
    let mut conn = connect(&server);
    let start = Instant::now();
    expect_close(&server, &mut conn, b"err idle timeout", Some(Closed::Eof));
    // The server's clock starts when it accepts, after our connect.
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(270),
        "timed out after only {waited:?}{}",
        context(&server)
    );
}

/// A client that stops in the middle of a message gets its earlier acks,
/// then `err idle timeout` once it has sent nothing for the limit.
pub fn idle_timeout_mid_message(program: &str, extra: &[&str]) {
    let flags = ["--idle-timeout-ms", "300"];
    let server = start_working(program, extra, &flags);
    let mut conn = connect(&server);
    ok(&server, "send", conn.send(b"package 0"));
    ok(&server, "ack", conn.read_ack());
    ok(&server, "send", conn.send_raw(b"pack"));
    let start = Instant::now();
    expect_close(&server, &mut conn, b"err idle timeout", Some(Closed::Eof));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(270),
        "timed out {waited:?} after the last byte{}",
        context(&server)
    );
}

/// Time the server spends working on a message is not idle time: work
/// longer than the idle limit is still acked, message after message.
pub fn work_is_not_idle(program: &str, extra: &[&str]) {
    let flags = ["--work-ms", "600", "--idle-timeout-ms", "200"];
    let server = start(program, extra, &flags);
    let mut conn = connect(&server);
    // All in one write, so the only silences are the server's own work.
    let bytes = session_bytes(&["package 0", "package 1"]);
    ok(&server, "send", conn.send_raw(&bytes));
    expect_close(&server, &mut conn, b"ackack", Some(Closed::Eof));
}

/// A server that was stopped (SIGSTOP to its process group, as a
/// debugger, `docker pause` or the cgroup freezer do) while a client's
/// message arrived, and stays stopped past the idle limit, serves that
/// message when it runs again: the client was not idle, the server was.
pub fn stopped_process_serves_waiting_bytes(program: &str, extra: &[&str]) {
    const IDLE: Duration = Duration::from_millis(1000);
    let flags = ["--idle-timeout-ms", "1000", "--work-ms", "0"];
    let server = start(program, extra, &flags);
    let mut conn = connect(&server);
    ok(&server, "send", conn.send(b"a"));
    ok(&server, "ack", conn.read_ack());
    stop_group(&server);
    ok(&server, "send while stopped", conn.send(b"b"));
    // Not a readiness wait: the point is to stay stopped past the limit.
    thread::sleep(2 * IDLE);
    ok(&server, "SIGCONT", server.signal_group(Signal::SIGCONT));
    ok(&server, "ack of what came while stopped", conn.read_ack());
    ok(&server, "goodbye", conn.send_goodbye());
    expect_close(&server, &mut conn, b"", Some(Closed::Eof));
}

// --- Trickling clients and the buffer budget -------------------------

/// A client that trickles a message, one byte every 300 ms, is never
/// idle for long: the message deadline (`--message-timeout-ms` 1000) is
/// what ends it. The complete message before it is acked, then
/// `err message timeout` and an orderly close, not before the deadline
/// and within a second after it.
pub fn trickling_message_timeout(program: &str, extra: &[&str]) {
    const LIMIT: Duration = Duration::from_millis(1000);
    let flags = ["--message-timeout-ms", "1000", "--idle-timeout-ms", "5000"];
    let server = start_working(program, extra, &flags);
    let mut conn = connect(&server);
    let started = Instant::now();
    // A whole message, then the first byte of the trickled one.
    ok(&server, "send", conn.send_raw(b"a\x03p"));
    let (got, closed, took) = trickle_until_closed(&server, &mut conn);
    assert_eq!(
        String::from_utf8_lossy(&got),
        "ackerr message timeout",
        "reply{}",
        context(&server)
    );
    assert_eq!(closed, Closed::Eof, "how it closed{}", context(&server));
    let took = took.duration_since(started);
    // The clock starts after the work on `a`, after our first byte.
    assert!(
        took >= LIMIT,
        "cut off after only {took:?}{}",
        context(&server)
    );
    let work = Duration::from_millis(WORK_MS);
    assert!(
        took <= LIMIT + work + Duration::from_secs(1),
        "cut off only after {took:?}{}",
        context(&server)
    );
}

/// Time the server spends working is not the next message's time: a
/// message whose first byte came with the one before it, and whose next
/// bytes came during that message's 2,500 ms of work, is acked although
/// its bytes span twice the 1,500 ms limit - the clock started when the
/// work ended, and it ends a second after that.
pub fn work_is_not_message_time(program: &str, extra: &[&str]) {
    let flags = [
        "--work-ms",
        "2500",
        "--message-timeout-ms",
        "1500",
        "--idle-timeout-ms",
        "8000",
    ];
    let server = start(program, extra, &flags);
    let mut conn = connect(&server);
    ok(&server, "send", conn.send_raw(b"a\x03b"));
    // Not readiness waits: these pauses are the point, bytes that arrive
    // while the server works, then a message finished 500 ms after.
    thread::sleep(Duration::from_millis(1000));
    ok(&server, "send during the work", conn.send_raw(b"cd"));
    ok(&server, "ack of a", conn.read_ack());
    thread::sleep(Duration::from_millis(500));
    ok(&server, "send the end", conn.send_raw(b"\x03"));
    ok(&server, "ack of bcd", conn.read_ack());
    ok(&server, "goodbye", conn.send_goodbye());
    expect_close(&server, &mut conn, b"", Some(Closed::Eof));
}

/// `--message-timeout-ms 0` means no limit: a message trickled over
/// 1.5 s, a byte every 300 ms, is acked.
pub fn message_timeout_zero_disables(program: &str, extra: &[&str]) {
    let flags = ["--message-timeout-ms", "0", "--idle-timeout-ms", "5000"];
    let server = start_working(program, extra, &flags);
    let mut conn = connect(&server);
    for &byte in b"trickle" {
        ok(&server, "send", conn.send_raw(&[byte]));
        // Not a readiness wait: the trickle is the point.
        thread::sleep(TRICKLE);
    }
    ok(&server, "send the end", conn.send_raw(b"\x03"));
    ok(&server, "ack", conn.read_ack());
    ok(&server, "goodbye", conn.send_goodbye());
    expect_close(&server, &mut conn, b"", Some(Closed::Eof));
}

/// Every model takes `--max-buffered-bytes`, down to its smallest value
/// (`--max-message-bytes`), and a message of nearly that size is acked.
/// (A blocking server holds at most one unfinished message per worker,
/// so its total is bounded by workers x `--max-message-bytes` already.)
pub fn buffer_budget_flag(program: &str, extra: &[&str]) {
    let flags = [
        "--max-message-bytes",
        "65536",
        "--max-buffered-bytes",
        "65536",
    ];
    let server = start_working(program, extra, &flags);
    let mut conn = connect(&server);
    ok(&server, "send", conn.send(&[b'x'; 60_000]));
    ok(&server, "ack", conn.read_ack());
    ok(&server, "goodbye", conn.send_goodbye());
    expect_close(&server, &mut conn, b"", Some(Closed::Eof));
}

/// The pause between trickled bytes.
const TRICKLE: Duration = Duration::from_millis(300);

/// Sends one byte every [`TRICKLE`] on `conn` from another thread while
/// reading until the server closes; returns what arrived, how it closed
/// and when. Sends at most 30 bytes, so a server that never cuts the
/// trickle off fails on the read timeout instead of hanging.
fn trickle_until_closed(
    server: &ServerProcess,
    conn: &mut Connection,
) -> (Vec<u8>, Closed, Instant) {
    let mut writer = ok(server, "clone", conn.stream().try_clone());
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let trickle = thread::spawn(move || {
        for _ in 0..30 {
            thread::sleep(TRICKLE);
            if stopped.load(Ordering::Relaxed)
                || writer.write_all(b"x").is_err()
            {
                break;
            }
        }
    });
    let reply = conn.read_until_closed();
    let at = Instant::now();
    stop.store(true, Ordering::Relaxed);
    trickle.join().expect("the trickle thread does not panic");
    let (got, closed) = ok(server, "read the reply", reply);
    (got, closed, at)
}

/// A server stopped (SIGSTOP) while a message was half received, and
/// kept stopped past the message deadline, reads the rest of the message
/// that arrived meanwhile before it judges the deadline: the message is
/// complete, and acked.
pub fn stopped_process_finishes_message(program: &str, extra: &[&str]) {
    // Generous: the clock starts when the server reads the first half,
    // and finding out that it has (from /proc) can take a while on a
    // loaded machine; the server must still be within its limit when
    // it is stopped.
    const LIMIT: Duration = Duration::from_millis(2500);
    let flags = [
        "--message-timeout-ms",
        "2500",
        "--idle-timeout-ms",
        "10000",
        "--work-ms",
        "0",
    ];
    let server = start(program, extra, &flags);
    let mut conn = connect(&server);
    ok(&server, "send", conn.send_raw(b"pack"));
    wait_until_read(&server, &conn);
    stop_group(&server);
    ok(&server, "send while stopped", conn.send_raw(b"age\x03"));
    // Not a readiness wait: the point is to stay stopped past the
    // deadline, which the read before the stop started.
    thread::sleep(LIMIT + Duration::from_millis(100));
    ok(&server, "SIGCONT", server.signal_group(Signal::SIGCONT));
    ok(&server, "ack of the finished message", conn.read_ack());
    ok(&server, "goodbye", conn.send_goodbye());
    expect_close(&server, &mut conn, b"", Some(Closed::Eof));
}

/// Sends SIGSTOP to the server's process group and waits until every
/// process in it is stopped.
fn stop_group(server: &ServerProcess) {
    ok(server, "SIGSTOP", server.signal_group(Signal::SIGSTOP));
    let deadline = Instant::now() + TIMEOUT;
    while !procfs::group_stopped(server.pid()) {
        assert!(Instant::now() < deadline, "SIGSTOP did not stop it");
        thread::sleep(Duration::from_millis(5));
    }
}

// --- Signals and lifecycle -------------------------------------------

/// SIGTERM while a message is being worked on: the ack still arrives,
/// every connection is closed, and the server exits 0 within `--work-ms`
/// plus one second.
pub fn sigterm_drains(program: &str, extra: &[&str]) {
    drains_on(program, extra, Signal::SIGTERM);
}

/// SIGINT (Ctrl-C) does the same as SIGTERM.
pub fn sigint_drains(program: &str, extra: &[&str]) {
    drains_on(program, extra, Signal::SIGINT);
}

fn drains_on(program: &str, extra: &[&str], signal: Signal) {
    const WORK: Duration = Duration::from_millis(1000);
    let mut server = start(program, extra, &["--work-ms", "1000"]);
    let mut busy = connect(&server);
    ok(&server, "send", busy.send(b"package 0"));
    // The message counts as received once the server has read it out of
    // the kernel: then it must be acked.
    wait_until_read(&server, &busy);
    // A client with nothing to say: it must be closed, not waited for.
    let mut idle = connect(&server);
    let signalled = Instant::now();
    ok(&server, "signal", server.signal(signal));
    ok(&server, "ack of the message in progress", busy.read_ack());
    expect_close(&server, &mut busy, b"", None);
    let (got, _) = ok(&server, "idle client closed", idle.read_until_closed());
    assert!(
        got.is_empty(),
        "idle client got {got:?}{}",
        context(&server)
    );
    let limit = WORK + Duration::from_secs(1);
    let waited = server.wait_timeout(limit);
    let status = ok(&server, "wait", waited);
    let took = signalled.elapsed();
    let Some(status) = status else {
        panic!("still running {took:?} after {signal}{}", context(&server));
    };
    assert!(
        status.success(),
        "exit status {status} after {signal}{}",
        context(&server)
    );
    assert!(
        !server.log().contains("panicked"),
        "panicked{}",
        context(&server)
    );
}

/// SIGTERM while a client has pipelined messages that wait behind the
/// one being worked on: the message in progress is acked, the server
/// closes the connection and exits 0 within `--work-ms` plus one second.
/// (Working through every message already read could take any multiple
/// of `--work-ms`; the time bound is the one the contract can keep.)
pub fn sigterm_with_pipelined_messages(program: &str, extra: &[&str]) {
    const WORK: Duration = Duration::from_millis(1000);
    let mut server = start(program, extra, &["--work-ms", "1000"]);
    let mut conn = connect(&server);
    let bytes = b"package 0\x03package 1\x03package 2\x03package 3\x03";
    ok(&server, "send", conn.send_raw(bytes));
    wait_until_read(&server, &conn);
    let signalled = Instant::now();
    ok(&server, "signal", server.signal(Signal::SIGTERM));
    let (got, _) = ok(&server, "read until closed", conn.read_until_closed());
    let mut acks = AckReader::new();
    let only_acks = acks.feed(&got).is_ok() && !acks.in_ack();
    let got = String::from_utf8_lossy(&got);
    assert!(
        only_acks && acks.acks() >= 1,
        "got {got:?}, not the ack of the message in progress{}",
        context(&server)
    );
    assert_exits_within(&mut server, signalled, WORK + Duration::from_secs(1));
}

/// SIGTERM while the server cannot write an ack because the client never
/// reads them (its receive window and the server's send buffer are full):
/// the blocked write does not hold up the shutdown, which ends within
/// `--work-ms` plus one second, exit 0.
pub fn sigterm_with_unread_acks(program: &str, extra: &[&str]) {
    let flags = ["--work-ms", "0", "--quiet"];
    let mut server = start(program, extra, &flags);
    let conn = connect_small_window(&server);
    let mut writer = ok(&server, "clone", conn.try_clone());
    // The server stops reading once it is stuck writing an ack; then our
    // writes stop going through. A write that makes no progress for this
    // long is that signal (a busy machine can only make it come late).
    let stuck = Duration::from_millis(500);
    ok(&server, "timeout", writer.set_write_timeout(Some(stuck)));
    // Empty messages, 3 bytes of ack for each byte sent. At most 64 MiB,
    // far more than any socket buffer, never unbounded.
    let chunk = [protocol::ETX; 64 * 1024];
    let mut blocked = false;
    for _ in 0..1024 {
        match writer.write(&chunk) {
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {
                blocked = true;
                break;
            }
            Err(e) => panic!("flooding: {e}{}", context(&server)),
        }
    }
    assert!(
        blocked,
        "64 MiB went through unread acks{}",
        context(&server)
    );
    let signalled = Instant::now();
    ok(&server, "signal", server.signal(Signal::SIGTERM));
    assert_exits_within(&mut server, signalled, Duration::from_secs(1));
    drop(conn);
}

/// SIGTERM with many connections open - one being worked on, several
/// stopped in the middle of a message, a few that said nothing: the one
/// being worked on gets its ack, every connection is closed without a
/// reply (none of the unfinished messages can be acked), and the server
/// exits 0 within `--work-ms` plus one second.
pub fn sigterm_with_many_clients(program: &str, extra: &[&str]) {
    const WORK: Duration = Duration::from_millis(500);
    let mut server = start(program, extra, &["--work-ms", "500"]);
    let mut busy = connect(&server);
    ok(&server, "send", busy.send(b"package 0"));
    wait_until_read(&server, &busy);
    let mut others = Vec::new();
    for _ in 0..8 {
        let mut stuck = connect(&server);
        ok(&server, "send", stuck.send_raw(b"pack"));
        others.push(stuck);
    }
    others.extend((0..3).map(|_| connect(&server)));
    let signalled = Instant::now();
    ok(&server, "signal", server.signal(Signal::SIGTERM));
    ok(&server, "ack of the message in progress", busy.read_ack());
    expect_close(&server, &mut busy, b"", None);
    for conn in &mut others {
        expect_close(&server, conn, b"", None);
    }
    assert_exits_within(&mut server, signalled, WORK + Duration::from_secs(1));
}

/// SIGTERM the moment `listening on` appears - the readiness signal
/// every test, script and supervisor waits for - stops the server
/// politely: exit 0, not death by the signal. A server that installs its
/// handlers only after announcing itself loses this race most times.
pub fn sigterm_right_after_listening(program: &str, extra: &[&str]) {
    for _ in 0..5 {
        let mut server = start_working(program, extra, &[]);
        let signalled = Instant::now();
        ok(&server, "signal", server.signal(Signal::SIGTERM));
        let limit = Duration::from_millis(WORK_MS + 1000);
        assert_exits_within(&mut server, signalled, limit);
    }
}

/// SIGHUP, SIGUSR1 and SIGUSR2, whose default action kills a process,
/// sent while a message is worked on: the server lives, the ack arrives
/// after the whole work, a new client is served, each signal is named in
/// the log, and SIGTERM still drains and exits 0. (A model may answer
/// SIGHUP, as prefork rotates its workers; it must still refuse no
/// client and drop no ack.)
pub fn hangup_and_user_signals_do_not_kill(program: &str, extra: &[&str]) {
    const WORK: Duration = Duration::from_millis(500);
    const SIGNALS: [Signal; 3] =
        [Signal::SIGHUP, Signal::SIGUSR1, Signal::SIGUSR2];
    let mut server = start(program, extra, &["--work-ms", "500"]);
    let mut busy = connect(&server);
    let sent = Instant::now();
    ok(&server, "send", busy.send(b"package 0"));
    wait_until_read(&server, &busy);
    for signal in SIGNALS {
        ok(&server, "signal", server.signal(signal));
    }
    ok(&server, "ack after the signals", busy.read_ack());
    let took = sent.elapsed();
    assert!(
        took >= WORK,
        "ack after {took:?}: a signal cut the work short{}",
        context(&server)
    );
    // Closed first: a one-client-at-a-time model serves the next only
    // then.
    ok(&server, "goodbye", busy.send_goodbye());
    expect_close(&server, &mut busy, b"", Some(Closed::Eof));
    assert_serves(&server);
    let signalled = Instant::now();
    ok(&server, "SIGTERM", server.signal(Signal::SIGTERM));
    assert_exits_within(&mut server, signalled, WORK + Duration::from_secs(1));
    assert!(server.wait_log_end(TIMEOUT), "stderr stays open");
    let log = server.log();
    for signal in SIGNALS {
        assert!(
            log.contains(signal.as_str()),
            "the log does not name {signal}{}",
            context(&server)
        );
    }
}

/// SIGTERM while the server is still starting its workers (1,024 of
/// them; a fork each, for prefork): it starts no more once the signal has
/// come, stops every worker it started, and exits 0 within `--work-ms`
/// plus one second. A model with one process passes at once: its group
/// never grows.
pub fn sigterm_while_starting_workers(program: &str, extra: &[&str]) {
    /// Workers that may still start after the signal was sent: the one
    /// being forked when it lands, and those started while the test
    /// counted the group (a scan of `/proc` takes a few milliseconds).
    const STARTED_LATE: usize = 64;
    let extra = without_flags(extra, &["--workers"]);
    let flags = ["--workers", "1024", "--quiet"];
    let mut server = start_working(program, &extra, &flags);
    // Signal once the group has grown (forking has begun), or after a
    // moment for a model whose group never grows.
    let waiting = Instant::now();
    while server.group_pids().len() < 2
        && waiting.elapsed() < Duration::from_millis(200)
    {
        thread::sleep(Duration::from_millis(1));
    }
    ok(&server, "signal", server.signal(Signal::SIGTERM));
    let signalled = Instant::now();
    let at_signal = server.group_pids().len();
    // Allowed a little more than the contract's bound: starting and
    // stopping a thousand processes on a loaded test machine.
    let limit = Duration::from_millis(WORK_MS + 1500);
    let mut most = at_signal;
    while signalled.elapsed() < limit {
        let exited = server.wait_timeout(Duration::ZERO);
        if ok(&server, "wait", exited).is_some() {
            break;
        }
        most = most.max(server.group_pids().len());
        thread::sleep(Duration::from_millis(2));
    }
    assert_exits_within(&mut server, signalled, limit);
    assert!(
        most <= at_signal + STARTED_LATE,
        "{at_signal} processes when signalled, then {most}: it went on \
         starting workers{}",
        context(&server)
    );
    let left = server.group_pids();
    assert!(
        left.is_empty(),
        "still running: {left:?}{}",
        context(&server)
    );
}

/// A bad flag, or a bad value for a good one: one line on stderr, a
/// non-zero exit, no panic, and the server never starts listening.
///
/// Each case names what is wrong in its one line: the flag or the value.
pub fn bad_flag(program: &str, extra: &[&str]) {
    let cases: [(&[&str], &str); 9] = [
        (&["--no-such-flag"], "--no-such-flag"),
        (&["--work-ms", "soon"], "soon"),
        (&["--work-ms", "-1"], "-1"),
        (&["--workers", "0"], "--workers"),
        (&["--queue", "0"], "--queue"),
        // Not even `goodbye` would fit: no session could end.
        (&["--max-message-bytes", "0"], "--max-message-bytes"),
        (
            &["--idle-timeout-ms", "99999999999999999999"],
            "--idle-timeout",
        ),
        // One past the longest work (see `huge_flag_values`).
        (&["--work-ms", "3600001"], "3600001"),
        // Parsed only when binding; still one line, still no start.
        (&["--addr", "no-such-address"], "no-such-address"),
    ];
    for (bad, named) in cases {
        let mut args = extra.to_vec();
        // Every case but the bad address gets a good one, so that it
        // fails for its own reason and not for a second `--addr`.
        if bad[0] != "--addr" {
            args.extend(["--addr", "127.0.0.1:0"]);
        }
        args.extend(bad);
        let (status, stdout, stderr) = run_to_exit(program, &args);
        let shown = format!("{bad:?}: status {status}, stderr {stderr:?}");
        assert!(!status.success(), "accepted {shown}");
        assert_eq!(stderr.trim().lines().count(), 1, "not one line: {shown}");
        assert!(stderr.contains(named), "does not name {named}: {shown}");
        assert!(!stderr.contains("panicked"), "panicked: {shown}");
        assert!(!stdout.contains("listening on"), "started: {shown}");
    }
}

/// The largest values the duration flags take - `u64::MAX` milliseconds
/// (585 million years) of idle limit, an hour of work - are limits like
/// any other: no deadline arithmetic overflows (`Instant + Duration`
/// panics when it does), no timeout is truncated into a short one,
/// nothing panics. With no practical idle limit a session is served as
/// usual and a shutdown with a silent client is prompt; with the longest
/// work the message is held, not acked, and the server lives on.
pub fn huge_flag_values(program: &str, extra: &[&str]) {
    const MAX: &str = "18446744073709551615";
    const LONGEST_WORK: &str = "3600000";
    let flags = ["--work-ms", "0", "--idle-timeout-ms", MAX];
    let mut server = start(program, extra, &flags);
    let mut conn = connect(&server);
    let mut silent = connect(&server);
    ok(&server, "send", conn.send(b"package 0"));
    ok(&server, "ack", conn.read_ack());
    let signalled = Instant::now();
    ok(&server, "signal", server.signal(Signal::SIGTERM));
    expect_close(&server, &mut silent, b"", None);
    assert_exits_within(&mut server, signalled, Duration::from_secs(1));

    let flags = ["--work-ms", LONGEST_WORK, "--idle-timeout-ms", MAX];
    let mut server = start(program, extra, &flags);
    let mut conn = connect(&server);
    ok(&server, "send", conn.send(b"package 0"));
    wait_until_read(&server, &conn);
    let mut ack = [0; 3];
    let wait = Some(Duration::from_millis(300));
    ok(&server, "timeout", conn.stream().set_read_timeout(wait));
    let early = conn.stream().read(&mut ack);
    assert!(
        early.as_ref().is_err_and(is_timeout),
        "an hour of work, yet {early:?}{}",
        context(&server)
    );
    let _other = connect(&server);
    thread::sleep(Duration::from_millis(200));
    let exited = server.wait_timeout(Duration::ZERO);
    let exited = ok(&server, "wait", exited);
    assert_eq!(exited, None, "the server exited{}", context(&server));
    assert!(!server.log().contains("panicked"), "{}", context(&server));
}

/// An address already in use: a clear error line on stderr, a non-zero
/// exit, no panic.
pub fn busy_port(program: &str, extra: &[&str]) {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let addr = taken.local_addr().expect("a bound socket has an address");
    let addr = addr.to_string();
    let mut args = extra.to_vec();
    args.extend(["--addr", &addr]);
    let (status, stdout, stderr) = run_to_exit(program, &args);
    let shown = format!("status {status}, stderr {stderr:?}");
    assert!(!status.success(), "started on a taken port: {shown}");
    assert!(
        stderr.to_lowercase().contains("in use"),
        "no clear reason: {shown}"
    );
    assert!(!stderr.contains("panicked"), "panicked: {shown}");
    assert!(!stdout.contains("listening on"), "announced: {shown}");
}

/// The first line on stdout is `listening on HOST:PORT` with the real
/// port the OS chose for port 0, and the server accepts there.
pub fn listening_line(program: &str, extra: &[&str]) {
    let server = start_working(program, extra, &[]);
    let addr = server.addr();
    assert_ne!(addr.port(), 0, "announced port 0{}", context(&server));
    let first = server.stdout().lines().next().unwrap_or("").to_owned();
    assert_eq!(first, format!("listening on {addr}"));
    assert_serves(&server);
}

/// A server with no clients, then with idle clients connected, uses ~0%
/// CPU: under 5% of one core, summed over its whole process group.
pub fn idle_cpu(program: &str, extra: &[&str]) {
    let server = start_working(program, extra, &["--quiet"]);
    let alone = cpu_share(&server, Duration::from_secs(1));
    // One client that has been served (so the server is past its first
    // accept), and two more that just sit there.
    let mut active = connect(&server);
    ok(&server, "send", active.send(b"package 0"));
    ok(&server, "ack", active.read_ack());
    let _idle: Vec<_> = (0..2).map(|_| connect(&server)).collect();
    let with_clients = cpu_share(&server, Duration::from_secs(1));
    for (when, share) in [("alone", alone), ("with idle clients", with_clients)]
    {
        assert!(
            share < 0.05,
            "{when}: {:.1}% of a core{}",
            share * 100.0,
            context(&server)
        );
    }
}

/// Per-event log lines go to stderr, each naming a process id of the
/// server; stdout holds only the `listening on` line.
pub fn log_lines(program: &str, extra: &[&str]) {
    let server = start_working(program, extra, &[]);
    assert_serves(&server);
    let deadline = Instant::now() + TIMEOUT;
    while server.log().trim().is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let log = server.log();
    assert!(!log.trim().is_empty(), "a whole session logged nothing");
    let mut pids = server.group_pids();
    pids.push(server.pid());
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let named = line
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse::<u32>().ok())
            .any(|n| pids.contains(&n));
        assert!(named, "names no server pid ({pids:?}): {line:?}");
    }
    let stdout = server.stdout();
    assert_eq!(stdout.lines().count(), 1, "stdout has more: {stdout:?}");
}

/// `--quiet`: a whole session writes no per-event log line.
pub fn quiet(program: &str, extra: &[&str]) {
    let mut server = start_working(program, extra, &["--quiet"]);
    let mut conn = connect(&server);
    let peer = ok(&server, "address", conn.stream().local_addr()).to_string();
    ok(&server, "send", conn.send(b"package 0"));
    ok(&server, "ack", conn.read_ack());
    ok(&server, "goodbye", conn.send_goodbye());
    expect_close(&server, &mut conn, b"", Some(Closed::Eof));
    drop(conn);
    // Proving an absence needs a positive end: stop the server and wait
    // for the end of its stderr, after which no late line can come. Lines
    // a server prints once at start or exit are not per-event lines; any
    // line about this session (its address or its message) is.
    let stopped = server.terminate(TIMEOUT);
    let stopped = ok(&server, "stop", stopped);
    assert!(
        stopped.is_some(),
        "no exit after SIGTERM{}",
        context(&server)
    );
    assert!(server.wait_log_end(TIMEOUT), "stderr stays open");
    let log = server.log();
    let about_session = log
        .lines()
        .find(|l| l.contains(&peer) || l.contains("package 0"));
    assert_eq!(about_session, None, "--quiet, yet logged the session");
}

/// `--work-kind spin` works on the CPU instead of sleeping, and still
/// acks each message only after the work.
pub fn spin_work(program: &str, extra: &[&str]) {
    const WORK: Duration = Duration::from_millis(100);
    let flags = ["--work-ms", "100", "--work-kind", "spin"];
    let server = start(program, extra, &flags);
    let mut conn = connect(&server);
    let cpu_before = server.group_cpu_time();
    for n in 0..4 {
        let sent = Instant::now();
        ok(
            &server,
            "send",
            conn.send(format!("package {n}").as_bytes()),
        );
        ok(&server, "ack", conn.read_ack());
        let took = sent.elapsed();
        assert!(took >= WORK, "ack after {took:?}{}", context(&server));
    }
    let cpu = server.group_cpu_time().saturating_sub(cpu_before);
    // 400 ms of spinning, measured in the spinning thread's own CPU time
    // (protocol::work::spin_for), so a busy machine stretches the wall
    // time, not the CPU used. Sleeping would use next to none.
    assert!(
        cpu >= Duration::from_millis(360),
        "only {cpu:?} of CPU for 4 x 100 ms of spin{}",
        context(&server)
    );
    ok(&server, "goodbye", conn.send_goodbye());
    expect_close(&server, &mut conn, b"", Some(Closed::Eof));
}

/// Running out of descriptors (EMFILE on `accept`) neither ends the server
/// nor makes it spin: it goes on serving the client it has, and serves
/// the waiting one once descriptors are free again.
pub fn accept_failures(program: &str, extra: &[&str]) {
    let server = start_working(program, extra, &[]);
    let mut first = connect(&server);
    ok(&server, "send", first.send(b"package 0"));
    ok(&server, "ack", first.read_ack());
    // Lower each server process's descriptor limit so that no new one can
    // be opened - not even in the slot `first` frees when it leaves.
    let first_fd = server_fd(&server, &first);
    let saved = starve(&server, first_fd);
    let mut waiting = connect(&server);
    ok(&server, "send", waiting.send(b"package 0"));
    // The client it has is still served, while `accept` fails.
    ok(&server, "send", first.send(b"package 1"));
    ok(&server, "ack while out of descriptors", first.read_ack());
    ok(&server, "goodbye", first.send_goodbye());
    expect_close(&server, &mut first, b"", Some(Closed::Eof));
    drop(first);
    let share = cpu_share(&server, Duration::from_secs(1));
    restore(&saved);
    assert!(
        share < 0.05,
        "{:.1}% of a core while out of descriptors{}",
        share * 100.0,
        context(&server)
    );
    ok(&server, "ack once descriptors are back", waiting.read_ack());
    ok(&server, "goodbye", waiting.send_goodbye());
    expect_close(&server, &mut waiting, b"", Some(Closed::Eof));
    assert_serves(&server);
}

// --- Event loops ------------------------------------------------------

/// Connections that each sent one big message and then went quiet cost
/// what idle connections cost: the buffer that held the message is given
/// back once it is framed. 500 connections, one 60,000-byte message each,
/// sent one connection after another and acked, then all left open.
pub fn big_messages_leave_small_buffers(program: &str, extra: &[&str]) {
    const CONNECTIONS: usize = 500;
    const MESSAGE: usize = 60_000;
    let flags = ["--max-message-bytes", "65536", "--work-ms", "0", "--quiet"];
    let server = start(program, extra, &flags);
    let message = vec![b'x'; MESSAGE];
    let served = |conn: &mut Connection| {
        ok(&server, "send", conn.send(&message));
        ok(&server, "ack", conn.read_ack());
    };
    // One big message first, so that whatever the server allocates once
    // (a read buffer, the allocator's arenas) is in the baseline.
    let mut first = connect(&server);
    served(&mut first);
    let before = server.usage().rss_bytes;
    let mut open = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let mut conn = connect(&server);
        served(&mut conn);
        open.push(conn);
    }
    let grew = server.usage().rss_bytes.saturating_sub(before);
    // Holding each message's buffer would cost 500 x 60 KB = 30 MB (more
    // with the vector's doubling). An idle connection costs a few KiB:
    // the decoder keeps at most 4 KiB, chapter 5's task a 4 KiB read
    // buffer and its own state; 20 KB each leaves room for the
    // allocator's slack and still catches buffers that are kept.
    let bound = CONNECTIONS as u64 * 20_000;
    assert!(
        grew < bound,
        "{CONNECTIONS} quiet connections after a {MESSAGE}-byte message \
         each: resident memory grew {} KiB, over {} KiB{}",
        grew / 1024,
        bound / 1024,
        context(&server)
    );
    assert_serves(&server);
}

/// The server-wide budget (`--max-buffered-bytes` 1,000,000): 10
/// clients hold 1,000 bytes of a message each, then 40 clients send
/// 60,000 bytes each and no ETX, one after another - 2.4 MB of
/// unfinished messages. The connections holding the largest get
/// `err server busy` and an orderly close, until what the rest hold fits:
/// at most 16 of the big ones and all the small ones keep their
/// connections, and finish their messages. A new client is served, and
/// the server's resident memory grows by at most the budget plus 4 MiB
/// (allocator slack and the baseline's noise; 40 x 64 KiB would fit in
/// that too - the evictions prove the budget, the memory bound that
/// evicted connections give their buffers back).
pub fn buffer_budget_evicts_largest(program: &str, extra: &[&str]) {
    const BUDGET: usize = 1_000_000;
    const SMALL: usize = 1_000;
    const BIG: usize = 60_000;
    let flags = [
        "--max-message-bytes",
        "65536",
        "--max-buffered-bytes",
        "1000000",
        "--work-ms",
        "0",
        "--message-timeout-ms",
        "0",
    ];
    let server = start(program, extra, &flags);
    assert_serves(&server);
    let before = server.usage().rss_bytes;
    let mut small = Vec::new();
    for _ in 0..10 {
        let mut conn = connect(&server);
        ok(&server, "send", conn.send_raw(&[b's'; SMALL]));
        small.push(conn);
    }
    let mut big = Vec::new();
    for _ in 0..40 {
        let mut conn = connect(&server);
        // An evicted connection may be closed before all of it is sent.
        let _ = conn.send_raw(&[b'b'; BIG]);
        big.push(conn);
    }
    // Once the server has read it all, at most `room` big ones fit: the
    // others must have been told and closed. Wait for that many closes.
    let room = (BUDGET - 10 * SMALL) / BIG;
    let mut replies = vec![Vec::new(); big.len()];
    let mut closed = vec![false; big.len()];
    let deadline = Instant::now() + TIMEOUT;
    loop {
        for ((conn, got), closed) in
            big.iter().zip(&mut replies).zip(&mut closed)
        {
            *closed = *closed || read_available(conn, got);
        }
        let evicted = closed.iter().filter(|&&c| c).count();
        if evicted >= big.len() - room {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{evicted} of {} connections evicted, {} should be{}",
            big.len(),
            big.len() - room,
            context(&server)
        );
        thread::sleep(Duration::from_millis(10));
    }
    let grew = server.usage().rss_bytes.saturating_sub(before);
    let evicted = replies.iter().zip(&closed).filter(|(_, &c)| c);
    for (reply, _) in evicted {
        assert_eq!(
            String::from_utf8_lossy(reply),
            "err server busy",
            "an evicted connection's reply{}",
            context(&server)
        );
    }
    for conn in &mut small {
        assert!(
            still_open(conn),
            "a small holder was evicted{}",
            context(&server)
        );
        ok(&server, "finish", conn.send_raw(b"\x03"));
        ok(&server, "ack", conn.read_ack());
    }
    assert_serves(&server);
    let allowance = (BUDGET + 4 * 1024 * 1024) as u64;
    assert!(
        grew <= allowance,
        "resident memory grew {} KiB, over {} KiB{}",
        grew / 1024,
        allowance / 1024,
        context(&server)
    );
}

/// The budget at scale (`--max-buffered-bytes` 8 MiB): 2,000 clients
/// each send 60,000 bytes and no ETX - 120 MB of unfinished messages,
/// fifteen times the budget. All but the 139 that fit are evicted with
/// `err server busy`, a new client is served, and the server's resident
/// memory, sampled while the messages arrive, never grows by more than
/// the budget plus 16 MiB.
///
/// Forty clients (`buffer_budget_evicts_largest`) cannot tell a budget
/// that is kept from one that is not: 2.4 MB fit in any slack. Here a
/// server that counts evicted connections as gone before they drop
/// their messages (a task drops them when it next runs) holds several
/// times the budget. The 16 MiB allow for what 2,000 connections cost
/// anyway (a few KiB each: 5 MiB for a tokio task, its socket and its
/// decoder), the decoders' capacity beyond their content (a 60,000-byte
/// message in a 64 KiB buffer), and the allocator's slack.
pub fn buffer_budget_bounds_memory(program: &str, extra: &[&str]) {
    const BUDGET: usize = 8 << 20;
    const CLIENTS: usize = 2_000;
    const BIG: usize = 60_000;
    const MARGIN: u64 = 16 << 20;
    let budget = BUDGET.to_string();
    let flags = [
        "--max-message-bytes",
        "65536",
        "--max-buffered-bytes",
        budget.as_str(),
        "--work-ms",
        "0",
        "--message-timeout-ms",
        "0",
        "--quiet",
    ];
    // 2,000 sockets here, more than a default soft limit of 1,024; the
    // servers raise their own.
    let (files, _) = protocol::limits::raise_open_files()
        .expect("the open-file limit can be read");
    assert!(files > CLIENTS as u64 + 100, "only {files} descriptors");
    let server = start(program, extra, &flags);
    assert_serves(&server);
    let before = server.usage().rss_bytes;
    let mut peak = before;
    let sample = |peak: &mut u64| {
        *peak = (*peak).max(server.usage().rss_bytes);
    };
    let message = vec![b'b'; BIG];
    let mut clients = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let mut conn = connect(&server);
        // An evicted connection may be closed before all of it is sent.
        let _ = conn.send_raw(&message);
        clients.push(conn);
        if i % 50 == 0 {
            sample(&mut peak);
        }
    }
    // Once the server has read it all, at most `room` fit: wait for the
    // others to be told and closed, sampling meanwhile.
    let room = BUDGET / BIG;
    let mut replies = vec![Vec::new(); CLIENTS];
    let mut closed = vec![false; CLIENTS];
    let deadline = Instant::now() + TIMEOUT;
    loop {
        sample(&mut peak);
        for ((conn, got), closed) in
            clients.iter().zip(&mut replies).zip(&mut closed)
        {
            *closed = *closed || read_available(conn, got);
        }
        let evicted = closed.iter().filter(|&&c| c).count();
        if evicted >= CLIENTS - room {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{evicted} of {CLIENTS} connections evicted, {} should be{}",
            CLIENTS - room,
            context(&server)
        );
        thread::sleep(Duration::from_millis(20));
    }
    sample(&mut peak);
    let evicted = replies.iter().zip(&closed).filter(|(_, &c)| c);
    for (reply, _) in evicted {
        assert_eq!(
            String::from_utf8_lossy(reply),
            "err server busy",
            "an evicted connection's reply{}",
            context(&server)
        );
    }
    assert_serves(&server);
    let grew = peak.saturating_sub(before);
    let allowance = BUDGET as u64 + MARGIN;
    assert!(
        grew <= allowance,
        "{CLIENTS} clients of {BIG} bytes: resident memory grew {} KiB, \
         over {} KiB{}",
        grew / 1024,
        allowance / 1024,
        context(&server)
    );
}

/// Reads what the server has sent on `conn` into `got` without
/// blocking; whether it has closed the connection (end of stream, or a
/// reset after its reply).
fn read_available(conn: &Connection, got: &mut Vec<u8>) -> bool {
    let mut stream = conn.stream();
    let mut chunk = [0; 256];
    let _ = stream.set_nonblocking(true);
    let closed = loop {
        match stream.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                break false
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break true,
        }
    };
    let _ = stream.set_nonblocking(false);
    closed
}

/// Whether the server has sent nothing on `conn` and not closed it: a
/// read that would block.
fn still_open(conn: &Connection) -> bool {
    let stream = conn.stream();
    let mut byte = [0; 1];
    let _ = stream.set_nonblocking(true);
    let open = matches!(
        stream.peek(&mut byte),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    );
    let _ = stream.set_nonblocking(false);
    open
}

/// When the OS refuses the server a thread (here: its address-space limit
/// is lowered until no thread stack fits), the client whose work needed
/// one gets `err server busy` and an orderly close - or its ack, if the
/// model needs no new thread - never a bare close or a panic; with the
/// limit restored, the server serves as before.
pub fn refused_thread_gets_busy(program: &str, extra: &[&str]) {
    let flags = ["--work-kind", "spin", "--work-ms", "50"];
    let server = start(program, extra, &flags);
    let mut refused = connect(&server);
    // Accepted (its socket is among the server's descriptors) before the
    // limit: accepting needs no thread, and this check is not about it.
    let deadline = Instant::now() + TIMEOUT;
    while try_server_fd(&server, &refused).is_none() {
        assert!(
            Instant::now() < deadline,
            "never accepted{}",
            context(&server)
        );
        thread::sleep(Duration::from_millis(5));
    }
    let saved = starve_threads(&server);
    ok(&server, "send", refused.send(b"package 0"));
    let reply = refused.read_ack();
    restore_address_space(&saved);
    match reply {
        Ok(()) => {
            ok(&server, "goodbye", refused.send_goodbye());
            expect_close(&server, &mut refused, b"", Some(Closed::Eof));
        }
        Err(ReplyError::Unexpected(got)) => assert_eq!(
            String::from_utf8_lossy(&got),
            "err server busy",
            "reply without a thread{}",
            context(&server)
        ),
        Err(e) => panic!("without a thread: {e}{}", context(&server)),
    }
    assert_no_panic(&server);
    assert_serves(&server);
}

// --- Servers with a thread per connection -------------------------------

/// When the OS refuses the thread a new connection needs (the server's
/// address-space limit is lowered before the client connects, until no
/// thread stack fits), that client gets `err server busy` and end of
/// stream, a client already in session is still served, the server does
/// not panic, and with the limit restored it serves as before.
pub fn refused_connection_thread_gets_busy(program: &str, extra: &[&str]) {
    let server = start(program, extra, &["--work-ms", "0"]);
    // A client in session first: the server has started every thread it
    // keeps (`listening on` comes before them), and this one's thread
    // stays alive, so no finished thread's stack is there for reuse.
    let mut first = connect(&server);
    ok(&server, "send", first.send(b"first"));
    ok(&server, "ack", first.read_ack());
    let saved = starve_threads(&server);
    let mut refused = connect(&server);
    // Read while the limit holds: the server refuses the thread when it
    // accepts, which may be after the connect has returned.
    expect_close(&server, &mut refused, b"err server busy", Some(Closed::Eof));
    restore_address_space(&saved);
    ok(&server, "goodbye", first.send_goodbye());
    expect_close(&server, &mut first, b"", Some(Closed::Eof));
    assert_no_panic(&server);
    assert_serves(&server);
}

// --- Servers with a bounded accept queue --------------------------------

/// With the one worker busy and the one place in the queue taken, 20
/// clients that keep their connections open each get `err server busy`
/// and end of stream at once (all 20 within two seconds; a lingering
/// close on the accepting thread made each wait for the one before), and
/// the server then serves an ordinary client.
pub fn busy_reply_is_immediate(program: &str, extra: &[&str]) {
    const TURNED_AWAY: usize = 20;
    let extra = without_flags(extra, &["--workers", "--queue"]);
    let flags = ["--workers", "1", "--queue", "1", "--work-ms", "0"];
    let server = start(program, &extra, &flags);
    // The worker serves `a`, which stays in session without a word...
    let mut a = connect(&server);
    ok(&server, "send", a.send(b"a"));
    ok(&server, "ack", a.read_ack());
    // ...and `b` takes the only place in the queue, once accepted.
    let mut b = connect(&server);
    let deadline = Instant::now() + TIMEOUT;
    while try_server_fd(&server, &b).is_none() {
        assert!(
            Instant::now() < deadline,
            "b never accepted{}",
            context(&server)
        );
        thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    let mut refused = Vec::new();
    for _ in 0..TURNED_AWAY {
        let mut conn = connect(&server);
        expect_close(&server, &mut conn, b"err server busy", Some(Closed::Eof));
        // Kept open: the server must not wait for us to close.
        refused.push(conn);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "{TURNED_AWAY} busy replies took {took:?}{}",
        context(&server)
    );
    for conn in [&mut a, &mut b] {
        ok(&server, "goodbye", conn.send_goodbye());
        expect_close(&server, conn, b"", Some(Closed::Eof));
    }
    assert_serves(&server);
}

/// `extra` without the flags in `flags` and their values: for a check that
/// sets one of them itself (a flag may be given only once).
fn without_flags<'a>(extra: &[&'a str], flags: &[&str]) -> Vec<&'a str> {
    let mut kept = Vec::new();
    let mut args = extra.iter();
    while let Some(&arg) = args.next() {
        if flags.contains(&arg) {
            args.next();
        } else {
            kept.push(arg);
        }
    }
    kept
}

// --- Helpers ---------------------------------------------------------

/// Starts `program` with `extra` then `flags`, on a free port.
fn start(program: &str, extra: &[&str], flags: &[&str]) -> ServerProcess {
    let mut args = extra.to_vec();
    args.extend_from_slice(flags);
    match ServerProcess::start(program, &args) {
        Ok(server) => server,
        Err(e) => panic!("cannot start {program} {args:?}: {e}"),
    }
}

/// [`start`] with `--work-ms` [`WORK_MS`] before `flags`: for the checks
/// that need work to take a while but do not study the work itself.
fn start_working(
    program: &str,
    extra: &[&str],
    flags: &[&str],
) -> ServerProcess {
    let work = WORK_MS.to_string();
    let mut all = vec!["--work-ms", work.as_str()];
    all.extend_from_slice(flags);
    start(program, extra, &all)
}

/// The bytes of a whole polite session in one buffer: each of `messages`
/// framed, then the goodbye frame.
fn session_bytes(messages: &[&str]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for message in messages {
        encode_message(message.as_bytes(), &mut bytes);
    }
    bytes.extend_from_slice(GOODBYE_FRAME);
    bytes
}

/// A new connection with [`TIMEOUT`] on every operation.
fn connect(server: &ServerProcess) -> Connection {
    ok(server, "connect", server.connection(TIMEOUT))
}

/// The value, or a panic naming `what` and showing the server's stderr.
fn ok<T, E: Display>(
    server: &ServerProcess,
    what: &str,
    result: Result<T, E>,
) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{what}: {e}{}", context(server)),
    }
}

/// The end of the server's stderr, to explain a failure.
fn context(server: &ServerProcess) -> String {
    let log = server.log();
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    format!("\n--- server stderr (last lines) ---\n{tail}")
}

/// Reads until the server closes, and checks that exactly `expected`
/// arrived, and (if given) how it closed.
fn expect_close(
    server: &ServerProcess,
    conn: &mut Connection,
    expected: &[u8],
    how: Option<Closed>,
) {
    let (got, closed) =
        ok(server, "read until closed", conn.read_until_closed());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected),
        "reply{}",
        context(server)
    );
    if let Some(how) = how {
        assert_eq!(closed, how, "how it closed{}", context(server));
    }
}

/// Checks that the server's log shows no panic.
fn assert_no_panic(server: &ServerProcess) {
    assert!(
        !server.log().contains("panicked"),
        "panicked{}",
        context(server)
    );
}

/// Waits until `limit` after `start` (the signal) for the server to
/// exit, and checks it exited 0 without a panic.
fn assert_exits_within(
    server: &mut ServerProcess,
    start: Instant,
    limit: Duration,
) {
    let left = limit.saturating_sub(start.elapsed());
    let waited = server.wait_timeout(left);
    let status = ok(server, "wait", waited);
    let Some(status) = status else {
        panic!(
            "still running {:?} after the signal{}",
            start.elapsed(),
            context(server)
        );
    };
    assert!(status.success(), "exit status {status}{}", context(server));
    assert!(!server.log().contains("panicked"), "{}", context(server));
}

/// A connection whose receive buffer is as small as the kernel allows,
/// so that acks the client does not read soon fill it and the server's
/// send buffer: the state of a client that never reads. Read and write
/// timeouts are [`TIMEOUT`].
fn connect_small_window(server: &ServerProcess) -> std::net::TcpStream {
    use nix::sys::socket::{
        connect, setsockopt, socket, sockopt, AddressFamily, SockFlag,
        SockType, SockaddrIn,
    };
    use nix::sys::time::{TimeVal, TimeValLike};
    use std::os::fd::AsRawFd;
    let SocketAddr::V4(addr) = server.addr() else {
        panic!("the suite runs servers on 127.0.0.1");
    };
    let stream = (|| -> nix::Result<std::net::TcpStream> {
        let fd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        // Before connecting, so that the window offered is small from
        // the start.
        setsockopt(&fd, sockopt::RcvBuf, &4096)?;
        // Linux bounds a blocking connect by the send timeout.
        let timeout = TimeVal::microseconds(TIMEOUT.as_micros() as i64);
        setsockopt(&fd, sockopt::SendTimeout, &timeout)?;
        connect(fd.as_raw_fd(), &SockaddrIn::from(addr))?;
        Ok(std::net::TcpStream::from(fd))
    })();
    let stream = ok(server, "connect", stream);
    ok(server, "timeout", stream.set_read_timeout(Some(TIMEOUT)));
    ok(server, "timeout", stream.set_write_timeout(Some(TIMEOUT)));
    stream
}

/// A fresh client is served a whole session: the server is still fine.
fn assert_serves(server: &ServerProcess) {
    let mut conn = connect(server);
    for n in 0..2 {
        let message = format!("package {n}");
        ok(server, "still serving: send", conn.send(message.as_bytes()));
        ok(server, "still serving: ack", conn.read_ack());
    }
    ok(server, "still serving: goodbye", conn.send_goodbye());
    expect_close(server, &mut conn, b"", Some(Closed::Eof));
}

/// Waits until the server has read everything we sent on `conn` out of
/// the kernel: its side's receive queue, in `/proc/net/tcp`, is empty.
/// That is when a message counts as received by the server.
fn wait_until_read(server: &ServerProcess, conn: &Connection) {
    let stream = conn.stream();
    let (Ok(ours), Ok(theirs)) = (stream.local_addr(), stream.peer_addr())
    else {
        panic!("the connection has no addresses{}", context(server));
    };
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if receive_queue(theirs, ours) == Some(0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server never read our bytes{}",
            context(server)
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// Whether `stream` (a raw client socket) got one `ack` within `wait`:
/// false if nothing came in time; a panic on any other reply or on a
/// failed connection. For chapter tests that hold many raw sockets.
pub fn ack_within(stream: &mut std::net::TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).expect("timeout");
    let mut ack = [0; 3];
    match stream.read_exact(&mut ack) {
        Ok(()) => {
            assert_eq!(ack, protocol::ACK, "a reply other than ack");
            true
        }
        Err(e) if is_timeout(&e) => false,
        Err(e) => panic!("connection failed: {e}"),
    }
}

/// Unread bytes in the receive queue of the IPv4 socket `local`-`remote`,
/// from `/proc/net/tcp` (`None` if there is no such socket). Tests ask it
/// of the server's side of a connection to see whether the server has
/// read what the client sent, or left it in the kernel.
pub fn receive_queue(local: SocketAddr, remote: SocketAddr) -> Option<u64> {
    let fields = tcp_socket(local, remote)?;
    // sl local_address rem_address st tx_queue:rx_queue ...
    let (_, rx) = fields.get(4)?.split_once(':')?;
    u64::from_str_radix(rx, 16).ok()
}

/// The line of `/proc/net/tcp` for the IPv4 socket `local`-`remote`,
/// split into fields.
fn tcp_socket(local: SocketAddr, remote: SocketAddr) -> Option<Vec<String>> {
    // The kernel prints an IPv4 address as its 32-bit value in memory
    // order, and the port in host order: 127.0.0.1:3000 is 0100007F:0BB8.
    let hex = |addr: SocketAddr| match addr {
        SocketAddr::V4(a) => Some(format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(a.ip().octets()),
            a.port()
        )),
        SocketAddr::V6(_) => None,
    };
    let (local, remote) = (hex(local)?, hex(remote)?);
    let table = fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<String> =
            line.split_whitespace().map(str::to_owned).collect();
        let matches =
            fields.get(1) == Some(&local) && fields.get(2) == Some(&remote);
        matches.then_some(fields)
    })
}

/// The server process and descriptor number holding the server's end of
/// `conn`, found by the socket's inode (`/proc/net/tcp`, field 10) among
/// the links in `/proc/PID/fd`.
fn server_fd(server: &ServerProcess, conn: &Connection) -> (u32, u64) {
    match try_server_fd(server, conn) {
        Some(found) => found,
        None => panic!("cannot find the server's socket{}", context(server)),
    }
}

/// [`server_fd`], or `None` while no server process holds the socket
/// (it has not accepted the connection yet).
fn try_server_fd(
    server: &ServerProcess,
    conn: &Connection,
) -> Option<(u32, u64)> {
    let stream = conn.stream();
    stream
        .peer_addr()
        .ok()
        .zip(stream.local_addr().ok())
        .and_then(|(theirs, ours)| tcp_socket(theirs, ours))
        .and_then(|fields| fields.get(9).cloned())
        .and_then(|inode| {
            let link = format!("socket:[{inode}]");
            server.group_pids().into_iter().find_map(|pid| {
                open_fds(pid).into_iter().find_map(|(fd, target)| {
                    (target == link).then_some((pid, fd))
                })
            })
        })
}

/// The open descriptors of `pid`, with what each links to.
fn open_fds(pid: u32) -> Vec<(u64, String)> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| {
            let fd = entry.file_name().to_str()?.parse().ok()?;
            let target = fs::read_link(entry.path()).ok()?;
            Some((fd, target.to_string_lossy().into_owned()))
        })
        .collect()
}

/// A process's descriptor limit as it was before [`starve`].
type Saved = Vec<(u32, libc::rlimit)>;

/// Lowers the soft descriptor limit of every process in the server's
/// group to its lowest free descriptor number, so that the next new
/// descriptor fails with EMFILE; for the process holding `busy` (pid, fd),
/// to at most that number, so that closing it does not make room.
fn starve(server: &ServerProcess, busy: (u32, u64)) -> Saved {
    let mut saved = Vec::new();
    for pid in server.group_pids() {
        let fds: Vec<u64> =
            open_fds(pid).into_iter().map(|(fd, _)| fd).collect();
        let mut lowest_free = (0..).find(|n| !fds.contains(n)).unwrap_or(0);
        if pid == busy.0 {
            lowest_free = lowest_free.min(busy.1);
        }
        match set_limit(pid, libc::RLIMIT_NOFILE, Some(lowest_free)) {
            Ok(old) => saved.push((pid, old)),
            Err(e) => panic!("prlimit {pid}: {e}{}", context(server)),
        }
    }
    saved
}

/// Puts back the limits [`starve`] lowered.
fn restore(saved: &Saved) {
    for &(pid, old) in saved {
        let _ = set_limit(pid, libc::RLIMIT_NOFILE, Some(old.rlim_cur));
    }
}

/// The address space process `pid` has mapped now (`VmSize`), if it
/// still runs.
pub fn mapped_bytes(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = status.lines().find_map(|l| l.strip_prefix("VmSize:"))?;
    let kib = kib
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

/// Sets the soft limit `resource` (`RLIMIT_NOFILE`, `RLIMIT_AS`) of
/// another process (ours is not involved); returns the limit it had.
///
/// # Errors
///
/// If the process is gone, or we may not change its limits.
pub fn set_limit(
    pid: u32,
    resource: libc::__rlimit_resource_t,
    soft: Option<u64>,
) -> std::io::Result<libc::rlimit> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit reads no new limit (null) and writes the current
    // one into `old`, a valid, exclusively borrowed rlimit.
    let r = unsafe { libc::prlimit(pid, resource, std::ptr::null(), &mut old) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if let Some(soft) = soft {
        let new = libc::rlimit {
            rlim_cur: soft.min(old.rlim_max),
            rlim_max: old.rlim_max,
        };
        // SAFETY: `new` is a valid rlimit that outlives the call, and no
        // old limit is asked for (null).
        let r =
            unsafe { libc::prlimit(pid, resource, &new, std::ptr::null_mut()) };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(old)
}

/// Lowers the soft address-space limit (`RLIMIT_AS`) of every process in
/// the server's group to what each has mapped now plus 1 MiB: small
/// allocations still fit, a new thread's stack (2 MiB and more) does not,
/// so the OS refuses threads (EAGAIN), whatever the user's privileges.
/// (`RLIMIT_NPROC`, the obvious limit, does not bind root.)
fn starve_threads(server: &ServerProcess) -> Vec<(u32, libc::rlimit)> {
    let mut saved = Vec::new();
    for pid in server.group_pids() {
        let Some(mapped) = mapped_bytes(pid) else {
            continue;
        };
        let soft = mapped + (1 << 20);
        match set_limit(pid, libc::RLIMIT_AS, Some(soft)) {
            Ok(old) => saved.push((pid, old)),
            Err(e) => panic!("prlimit {pid}: {e}{}", context(server)),
        }
    }
    saved
}

/// Puts back the limits [`starve_threads`] lowered.
fn restore_address_space(saved: &[(u32, libc::rlimit)]) {
    for &(pid, old) in saved {
        let _ = set_limit(pid, libc::RLIMIT_AS, Some(old.rlim_cur));
    }
}

/// The share of one core the server's process group used over `window`.
fn cpu_share(server: &ServerProcess, window: Duration) -> f64 {
    let before = server.group_cpu_time();
    let start = Instant::now();
    thread::sleep(window);
    let used = server.group_cpu_time().saturating_sub(before);
    used.as_secs_f64() / start.elapsed().as_secs_f64()
}

/// Runs `program` (expected to exit at once) and returns its status,
/// stdout and stderr; kills it if it runs for more than [`TIMEOUT`].
fn run_to_exit(program: &str, args: &[&str]) -> (ExitStatus, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let readers = [
        read_all(child.stdout.take().map(|s| Box::new(s) as _)),
        read_all(child.stderr.take().map(|s| Box::new(s) as _)),
    ];
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(10));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{program} {args:?} did not exit within {TIMEOUT:?}");
            }
        }
    };
    let [stdout, stderr] =
        readers.map(|r| r.join().expect("a reader thread does not panic"));
    (status, stdout, stderr)
}

/// Reads a pipe to its end on a thread, so neither pipe can fill up and
/// block the child.
fn read_all(pipe: Option<Box<dyn Read + Send>>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// `clients` raw connections to `server` at once: each sends a message
/// and gets its `ack`, then says goodbye and sees the server close; and
/// no accept failed. Returns how long the messages took, connecting
/// included. The scale test of every event loop (10,000 clients). Raises
/// this process's open-file limit, which must hold `clients` sockets
/// plus the harness's own descriptors.
pub fn serve_at_once(server: &ServerProcess, clients: usize) -> Duration {
    // The tests of one binary run on threads of one process and share its
    // open-file limit: two of these at once would run out of it.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (_, limit) = protocol::limits::raise_open_files()
        .expect("raise the open-file limit");
    assert!(limit >= clients as u64 + 200, "open-file limit {limit}");
    let started = Instant::now();
    let mut streams: Vec<std::net::TcpStream> = (0..clients)
        .map(|_| server.connect(TIMEOUT).expect("connects"))
        .collect();
    for (n, stream) in streams.iter_mut().enumerate() {
        let text = format!("package {n}");
        stream
            .write_all(&protocol::encoder::message(text.as_bytes()))
            .expect("sent");
    }
    for stream in &mut streams {
        assert!(ack_within(stream, TIMEOUT), "every client is acked");
    }
    let served = started.elapsed();
    for stream in &mut streams {
        stream.write_all(GOODBYE_FRAME).expect("goodbye is sent");
    }
    for stream in &mut streams {
        let mut rest = [0; 8];
        assert_eq!(stream.read(&mut rest).expect("closed"), 0);
    }
    eprintln!("{clients} connections served in {served:?}");
    let log = server.log();
    assert!(!log.contains("accept failed"), "{log}");
    served
}
