//! What only the event loop promises (the contract, book/contract.md),
//! tested against the real binary: many clients on one thread, slow
//! readers held back without holding anyone else back, 10,000
//! connections, and running out of file descriptors.
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use client::connection::reset;
use client::load::{self, Load};
use harness::conformance::receive_queue;
use harness::conformance::{ack_within, serve_at_once};
use harness::ServerProcess;
use nix::sys::signal::Signal;
use nix::sys::socket::{setsockopt, sockopt};
use protocol::encoder::{encode_message, message, GOODBYE_FRAME};
use protocol::{ACK, ETX};

const SERVER: &str = env!("CARGO_BIN_EXE_ch04-epoll");

/// Bound on every socket operation: a hung server fails, never hangs.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The two readiness backends, for the tests that run on each: the
/// default, and poll(2).
const EPOLL: &[&str] = &["--poller", "epoll"];
const POLL: &[&str] = &["--poller", "poll"];

fn start(flags: &[&str]) -> ServerProcess {
    ServerProcess::start(SERVER, flags).expect("the server starts")
}

/// Reads exactly `n` bytes and checks they are `n / 3` acks.
fn read_acks(stream: &mut TcpStream, count: usize) {
    let mut got = vec![0; count * ACK.len()];
    stream.read_exact(&mut got).expect("every ack arrives");
    for (i, ack) in got.chunks(ACK.len()).enumerate() {
        assert_eq!(ack, ACK, "reply {i} of {count} is not an ack");
    }
}

/// Sends goodbye and waits for the server to close.
fn goodbye(stream: &mut TcpStream) {
    stream.write_all(GOODBYE_FRAME).expect("goodbye is sent");
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).expect("the server closes");
    assert!(rest.is_empty(), "unexpected reply {rest:?}");
}

/// 1,000 messages in one write come back as 1,000 acks, in order (each
/// worked on in turn: 1 ms of sleep work each).
#[test]
fn pipelining_a_thousand_messages() {
    let server = start(&["--work-ms", "1", "--quiet"]);
    let mut stream = server.connect(TIMEOUT).expect("connects");
    let mut wire = Vec::new();
    for n in 0..1000 {
        encode_message(format!("package {n}").as_bytes(), &mut wire);
    }
    stream.write_all(&wire).expect("one write");
    read_acks(&mut stream, 1000);
    goodbye(&mut stream);
}

/// A client with a small receive buffer that sends 100,000 messages
/// before reading gets exactly 100,000 acks; meanwhile another client is
/// served promptly.
#[test]
fn slow_reader_is_held_back_alone() {
    let server = start(&["--work-ms", "0", "--quiet"]);
    let slow = server.connect(TIMEOUT).expect("connects");
    setsockopt(&slow, sockopt::RcvBuf, &4096).expect("SO_RCVBUF");
    const MESSAGES: usize = 100_000;
    let sent = Arc::new(AtomicUsize::new(0));
    let writer = {
        let mut slow = slow.try_clone().expect("clone");
        let sent = Arc::clone(&sent);
        thread::spawn(move || {
            let mut batch = Vec::new();
            for start in (0..MESSAGES).step_by(1000) {
                batch.clear();
                for n in start..start + 1000 {
                    let msg = format!("msg {n}");
                    encode_message(msg.as_bytes(), &mut batch);
                }
                slow.write_all(&batch).expect("the batch is sent");
                sent.fetch_add(1000, Ordering::Relaxed);
            }
        })
    };
    // Let the slow client's acks pile up: wait until it has sent all,
    // or its writes have stalled (the server stopped reading from it).
    let mut last = 0;
    loop {
        thread::sleep(Duration::from_millis(300));
        let now = sent.load(Ordering::Relaxed);
        if now == MESSAGES || now == last {
            break;
        }
        last = now;
    }
    // Meanwhile, another client is served as if alone.
    let mut other = server.connect(TIMEOUT).expect("connects");
    let started = Instant::now();
    for _ in 0..10 {
        other.write_all(&message(b"hello")).expect("sent");
        read_acks(&mut other, 1);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "10 round trips took {took:?}"
    );
    goodbye(&mut other);
    // Now the slow client reads: every ack, exactly.
    let mut slow = slow;
    read_acks(&mut slow, MESSAGES);
    writer.join().expect("the writer finishes");
    goodbye(&mut slow);
}

/// A client that sends and never reads is held back by TCP, not by our
/// memory: once it owes `OUTPUT_CAP` of acks the server stops reading it,
/// its bytes stay in the kernel and its writes stall; when it reads, every
/// ack arrives.
#[test]
fn backpressure_stops_reading_a_client_that_does_not_read() {
    backpressure_stops_reading(EPOLL);
}

/// The same with poll(2), whose interest changes live in our array.
#[test]
fn backpressure_stops_reading_a_client_that_does_not_read_poll() {
    backpressure_stops_reading(POLL);
}

fn backpressure_stops_reading(backend: &[&str]) {
    // No idle limit: draining tens of megabytes of acks must not race it.
    let flags = ["--work-ms", "0", "--idle-timeout-ms", "0", "--quiet"];
    let server = start(&[backend, &flags].concat());
    let mut slow = server.connect(TIMEOUT).expect("connects");
    slow.set_write_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    // Empty messages, a lone ETX each, until a write stalls for a second.
    let batch = [ETX; 64 * 1024];
    let mut sent = 0;
    let stalled = loop {
        assert!(sent < 64 << 20, "the server never stopped reading");
        match slow.write(&batch) {
            Ok(n) => sent += n,
            Err(e) if is_timeout(&e) => break true,
            Err(e) => panic!("write failed: {e}"),
        }
    };
    assert!(stalled);
    // The server has left bytes unread in its receive queue...
    let (ours, theirs) = (slow.local_addr().unwrap(), server.addr());
    let unread = receive_queue(theirs, ours).expect("the socket is listed");
    assert!(unread > 0, "the server kept reading a client that does not");
    // ...and still serves everyone else.
    let mut other = server.connect(TIMEOUT).expect("connects");
    other.write_all(&message(b"hello")).expect("sent");
    read_acks(&mut other, 1);
    // Reading lets it go on: one ack per byte sent, not one more.
    read_acks(&mut slow, sent);
    goodbye(&mut slow);
}

/// The same with work that takes time: messages waiting for their work
/// are acks the server will owe, and count against the same cap. A
/// client that pipelines faster than the work is done is held back by
/// TCP too, instead of having the server read (and count, and decode)
/// everything it sends, days of work ahead.
#[test]
fn backpressure_counts_messages_waiting_for_work() {
    let flags = ["--work-ms", "1000", "--idle-timeout-ms", "0", "--quiet"];
    let mut server = start(&flags);
    let slow = server.connect(TIMEOUT).expect("connects");
    let mut writer = slow.try_clone().expect("clone");
    writer
        .set_write_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    let batch = [ETX; 64 * 1024];
    let mut sent = 0;
    let stalled = loop {
        if sent >= 64 << 20 {
            break false;
        }
        match writer.write(&batch) {
            Ok(n) => sent += n,
            Err(e) if is_timeout(&e) => break true,
            Err(e) => panic!("write failed: {e}"),
        }
    };
    assert!(stalled, "the server read {sent} messages ahead of its work");
    let (ours, theirs) = (slow.local_addr().unwrap(), server.addr());
    let unread = receive_queue(theirs, ours).expect("the socket is listed");
    assert!(unread > 0, "the server kept reading a client that does not");
    // Thousands of messages wait for work; the server still exits in
    // time: only the message in progress is finished.
    let signalled = Instant::now();
    server
        .signal(Signal::SIGTERM)
        .expect("the server is running");
    let status = server.wait_timeout(TIMEOUT).expect("wait");
    assert!(status.is_some_and(|s| s.success()), "exit: {status:?}");
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(2), "exit {took:?} after SIGTERM");
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// 200 clients with 500 ms of sleep work each finish in a small multiple
/// of 500 ms, not 200 x 500 ms: the work is timers, not sleeps.
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
    assert!(
        report.wall < Duration::from_secs(5),
        "200 x 500 ms took {:?}",
        report.wall
    );
}

/// Spin work blocks the loop: 4 clients with 200 ms of CPU work each take
/// at least 4 x 200 ms, one after the other.
#[test]
fn spin_work_serializes_the_loop() {
    let server = start(&["--work-ms", "200", "--work-kind", "spin", "--quiet"]);
    let report = load::run(&Load {
        addr: server.addr(),
        clients: 4,
        messages: 1,
        throttle: Duration::ZERO,
        timeout: TIMEOUT,
    })
    .expect("every client is served");
    assert_eq!(report.acked, 4);
    assert!(
        report.wall >= Duration::from_millis(780),
        "4 x 200 ms of spin took only {:?}",
        report.wall
    );
}

/// Pipelined messages with spin work: each ack goes out as soon as its
/// own work is done, not after the whole batch, and SIGTERM during the
/// batch stops after the message in progress (the contract: exit within
/// `--work-ms` plus one second), as the blocking servers do. Spinning a
/// whole batch in one go held the loop, the signal included, for 8 x the
/// work.
#[test]
fn sigterm_during_pipelined_spin_work() {
    // Short work, so that the bound below holds on a busy machine, where
    // a spin of W milliseconds of CPU takes longer than W to get.
    const WORK: Duration = Duration::from_millis(150);
    let flags = ["--work-ms", "150", "--work-kind", "spin", "--quiet"];
    let mut server = start(&flags);
    let mut stream = server.connect(TIMEOUT).expect("connects");
    stream
        .write_all(&message(b"m").repeat(8))
        .expect("one write");
    read_acks(&mut stream, 1);
    // Had the loop spun the whole batch before writing, all eight acks
    // would be here now. Counted, not timed: on a busy machine a spin
    // takes longer than its work, for the batch and the first alike.
    stream.set_nonblocking(true).expect("non-blocking");
    let mut early = [0; 64];
    let ready = match stream.read(&mut early) {
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
        Err(e) => panic!("read: {e}"),
    };
    stream.set_nonblocking(false).expect("blocking");
    assert!(
        ready < 7 * ACK.len(),
        "{} acks arrived with the first: it waited for the whole batch",
        1 + ready / ACK.len()
    );
    let signalled = Instant::now();
    server
        .signal(Signal::SIGTERM)
        .expect("the server is running");
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).expect("the server closes");
    assert!(
        rest.len() <= 2 * ACK.len() && rest.chunks(3).all(|a| a == ACK),
        "after SIGTERM: {rest:?}"
    );
    let status = server.wait_timeout(TIMEOUT).expect("wait");
    let took = signalled.elapsed();
    assert!(status.is_some_and(|s| s.success()), "exit: {status:?}");
    assert!(
        took < WORK + Duration::from_secs(1),
        "exit {took:?} after SIGTERM, with {WORK:?} of work per message"
    );
}

/// SIGTERM while 100 clients pipeline empty messages as fast as the
/// server reads them: the exit is still within `--work-ms` plus one
/// second of the signal. Each round of the loop decodes up to 64 KiB of
/// one-byte messages per ready client; a round over 100 clients took so
/// long that the signal, seen only at the next `epoll_wait`, came too late
/// for the shutdown deadline.
#[test]
fn sigterm_during_a_flood() {
    let mut server = start(&["--work-ms", "0", "--quiet"]);
    let clients: Vec<TcpStream> = (0..100)
        .map(|_| {
            let client = server.connect(TIMEOUT).expect("connects");
            setsockopt(&client, sockopt::RcvBuf, &4096).expect("SO_RCVBUF");
            client.set_nonblocking(true).expect("non-blocking");
            client
        })
        .collect();
    // As much as the kernel takes at once, up to 6.4 MB each: the server
    // has a backlog of millions of messages to read.
    let batch = [ETX; 64 * 1024];
    for mut client in &clients {
        for _ in 0..100 {
            match client.write(&batch) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("write failed: {e}"),
            }
        }
    }
    let signalled = Instant::now();
    server
        .signal(Signal::SIGTERM)
        .expect("the server is running");
    let status = server.wait_timeout(TIMEOUT).expect("wait");
    let took = signalled.elapsed();
    assert!(status.is_some_and(|s| s.success()), "exit: {status:?}");
    assert!(took < Duration::from_secs(1), "exit {took:?} after SIGTERM");
    drop(clients);
}

/// A client resets while its message's work is pending, and the next
/// client takes its slot in the connection table (and its descriptor
/// number): the old work timer must not ack the newcomer, which has sent
/// nothing. The token's generation tells them apart.
#[test]
fn pending_work_of_a_reset_client_does_not_reach_the_next() {
    let server = start(&["--work-ms", "300"]);
    for _ in 0..3 {
        let first = server.connect(TIMEOUT).expect("connects");
        (&first).write_all(&message(b"package 0")).expect("sent");
        let peer = first.local_addr().expect("address").to_string();
        let read = format!("\"package 0\" from {peer}");
        let was_read = server.wait_for_log(TIMEOUT, |log| log.contains(&read));
        assert!(was_read, "never read\n{}", server.log());
        reset(first).expect("SO_LINGER");
        let closed = format!("closed {peer}");
        let gone = server.wait_for_log(TIMEOUT, |log| log.contains(&closed));
        assert!(gone, "not closed\n{}", server.log());
        let mut next = server.connect(TIMEOUT).expect("connects");
        assert!(
            !ack_within(&mut next, Duration::from_millis(600)),
            "an ack for a message it never sent\n{}",
            server.log()
        );
        next.write_all(&message(b"hello")).expect("sent");
        assert!(ack_within(&mut next, TIMEOUT), "its own message is acked");
    }
}

/// 10,000 clients connected at once each exchange a message and all get
/// their ack; then each says goodbye and is closed.
#[test]
fn ten_thousand_connections() {
    ten_thousand_connections_on(EPOLL);
}

/// The same with poll(2): 10,000 entries in the array every wait hands
/// the kernel, added and removed as clients come and go.
#[test]
fn ten_thousand_connections_poll() {
    ten_thousand_connections_on(POLL);
}

fn ten_thousand_connections_on(backend: &[&str]) {
    let server = start(&[backend, &["--work-ms", "0", "--quiet"]].concat());
    serve_at_once(&server, 10_000);
}

/// Out of descriptors (a limit of 64): the server keeps serving the
/// clients it holds, does not spin, and takes the waiting clients once
/// others leave.
#[test]
fn out_of_descriptors() {
    out_of_descriptors_on(EPOLL);
}

/// The same with poll(2): the paused listener stays in the array with no
/// interest, and is not reported until it is watched again.
#[test]
fn out_of_descriptors_poll() {
    out_of_descriptors_on(POLL);
}

fn out_of_descriptors_on(backend: &[&str]) {
    const CLIENTS: usize = 80;
    // `ulimit -n` in the shell lowers both limits, then `exec` becomes
    // the server: the limit applies to it alone, not to this test.
    let mut command = Command::new("sh");
    command.args(["-c", "ulimit -n 64 && exec \"$0\" \"$@\"", SERVER]);
    command.args(backend);
    command.args(["--addr", "127.0.0.1:0", "--work-ms", "0", "--quiet"]);
    let server = ServerProcess::spawn(command).expect("the server starts");
    // The kernel completes every connect into the listen backlog; only
    // the first ~55 fit in the server's descriptors.
    let mut clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| server.connect(TIMEOUT).expect("connects"))
        .collect();
    for client in &mut clients {
        client.write_all(&message(b"hello")).expect("sent");
    }
    // Accepts happen in connect order: the served clients come first.
    let mut served = 0;
    while served < CLIENTS
        && ack_within(&mut clients[served], Duration::from_secs(3))
    {
        served += 1;
    }
    assert!(
        (30..CLIENTS - 10).contains(&served),
        "{served} of {CLIENTS} served with 64 descriptors"
    );
    assert!(server.log().contains("pausing accepts"), "{}", server.log());
    // Not spinning: over a second, well under a tenth of a core.
    let before = server.group_cpu_time();
    thread::sleep(Duration::from_secs(1));
    let cpu = server.group_cpu_time().saturating_sub(before);
    assert!(
        cpu < Duration::from_millis(100),
        "{cpu:?} of CPU while full"
    );
    // Still serving the clients it holds.
    for client in &mut clients[..served] {
        client.write_all(&message(b"again")).expect("sent");
        assert!(ack_within(client, Duration::from_secs(2)), "held client");
    }
    // Thirty leave; the waiting clients are accepted and served.
    let waiting = CLIENTS - served;
    for mut client in clients.drain(..30) {
        goodbye(&mut client);
        let _ = client.shutdown(Shutdown::Both);
    }
    for client in &mut clients[served - 30..] {
        assert!(
            ack_within(client, Duration::from_secs(5)),
            "a waiting client was never served ({waiting} waited)\n{}",
            server.log()
        );
    }
    // Full again, with clients waiting: SIGTERM still ends it at once.
    let extra: Vec<TcpStream> = (0..20)
        .map(|_| server.connect(TIMEOUT).expect("connects"))
        .collect();
    let mut server = server;
    server
        .signal(Signal::SIGTERM)
        .expect("the server is running");
    let status = server.wait_timeout(Duration::from_secs(3)).expect("wait");
    assert!(
        status.is_some_and(|s| s.success()),
        "exit after SIGTERM: {status:?}\n{}",
        server.log()
    );
    drop(extra);
}
