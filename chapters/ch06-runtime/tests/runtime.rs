//! What the hand-made runtime promises beyond the conformance suite (the
//! contract, book/contract.md), tested against the real binary: work
//! overlaps, 10,000 connections, and a level-triggered reactor that does
//! not spin when a client sends, or resets, while its task sleeps on the
//! work. (Running out of descriptors is the suite's `accept_failures`.)
use std::io::Write;
use std::thread;
use std::time::Duration;

use client::connection::reset;
use client::load::{self, Load};
use harness::conformance::{ack_within, serve_at_once};
use harness::ServerProcess;
use protocol::encoder::message;

const SERVER: &str = env!("CARGO_BIN_EXE_ch06-runtime");

/// Bound on every socket operation: a hung server fails, never hangs.
const TIMEOUT: Duration = Duration::from_secs(20);

fn start(flags: &[&str]) -> ServerProcess {
    ServerProcess::start(SERVER, flags).expect("the server starts")
}

/// The server's CPU time over `during`.
fn cpu_over(server: &ServerProcess, during: Duration) -> Duration {
    let before = server.group_cpu_time();
    thread::sleep(during);
    server.group_cpu_time().saturating_sub(before)
}

/// 200 clients with 500 ms of sleep work each finish in a small multiple
/// of 500 ms, not 200 x 500 ms: the work is a timer, and the tasks wait
/// on it together.
#[test]
fn sleep_work_overlaps() {
    let server = start(&["--work-ms", "500", "--quiet"]);
    let report = load::run(&Load {
        addr: server.addr(),
        clients: 200,
        messages: 1,
        throttle: Duration::ZERO,
        timeout: TIMEOUT,
    })
    .expect("every client is served");
    assert_eq!(report.acked, 200);
    assert!(report.wall < Duration::from_secs(5), "{:?}", report.wall);
}

/// A client that keeps sending while its task sleeps on the work: the
/// socket stays readable, and a level-triggered poller that kept asking
/// about it would report it at every wait. The reactor stops asking, so
/// the server sleeps through the work.
#[test]
fn input_during_work_costs_no_cpu() {
    let server = start(&["--work-ms", "1500", "--quiet"]);
    let mut client = server.connect(TIMEOUT).expect("connects");
    client.write_all(&message(b"first")).expect("sent");
    thread::sleep(Duration::from_millis(200));
    client.write_all(&message(b"second")).expect("sent");
    let cpu = cpu_over(&server, Duration::from_millis(800));
    assert!(cpu < Duration::from_millis(100), "{cpu:?} of CPU in 800 ms");
    assert!(ack_within(&mut client, TIMEOUT), "the first ack");
    assert!(ack_within(&mut client, TIMEOUT), "the second ack");
}

/// A reset while the task sleeps on the work: epoll reports the failure
/// whatever the socket is armed for, at every wait. The task watches for
/// it, so the session ends at once instead of the loop spinning until the
/// work is done.
#[test]
fn a_reset_during_work_ends_the_session_at_once() {
    let server = start(&["--work-ms", "5000"]);
    let client = server.connect(TIMEOUT).expect("connects");
    (&client).write_all(&message(b"package 0")).expect("sent");
    let peer = client.local_addr().expect("address").to_string();
    let read = format!("\"package 0\" from {peer}");
    let was_read = server.wait_for_log(TIMEOUT, |log| log.contains(&read));
    assert!(was_read, "never read\n{}", server.log());
    reset(client).expect("SO_LINGER");
    let closed = format!("closed {peer}");
    let gone = server
        .wait_for_log(Duration::from_secs(2), |log| log.contains(&closed));
    assert!(gone, "still open\n{}", server.log());
    let cpu = cpu_over(&server, Duration::from_millis(500));
    assert!(cpu < Duration::from_millis(100), "{cpu:?} of CPU in 500 ms");
}

/// 10,000 clients connected at once each exchange a message and all get
/// their ack; then each says goodbye and is closed.
#[test]
fn ten_thousand_connections() {
    let server = start(&["--work-ms", "0", "--quiet"]);
    serve_at_once(&server, 10_000);
}
