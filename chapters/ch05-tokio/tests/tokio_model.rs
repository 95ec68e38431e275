//! What is particular to the tokio model, beyond the shared conformance
//! suite: one thread serves many sleeping clients at once, and a signal
//! lets in-flight messages finish.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use harness::ServerProcess;
use nix::sys::signal::Signal;
use protocol::encoder::{message, GOODBYE_FRAME};
use protocol::{AckReader, ACK};

const SERVER: &str = env!("CARGO_BIN_EXE_ch05-tokio");
const TIMEOUT: Duration = Duration::from_secs(10);

fn start(args: &[&str]) -> ServerProcess {
    let mut all = vec!["--quiet"];
    all.extend_from_slice(args);
    ServerProcess::start(SERVER, &all).expect("the server starts")
}

/// Sends one message and reads its ack.
fn exchange(stream: &mut TcpStream, message: &[u8]) {
    stream.write_all(message).expect("send");
    let mut ack = [0; ACK.len()];
    stream.read_exact(&mut ack).expect("ack arrives");
    assert_eq!(ack, ACK);
}

/// Starts the server with its per-event log on, so a test can wait for a
/// log line instead of sleeping.
fn start_logging(args: &[&str]) -> ServerProcess {
    ServerProcess::start(SERVER, args).expect("the server starts")
}

/// Reads everything the server sends until it closes the connection.
fn reply_then_end_of_stream(stream: &mut TcpStream) -> Vec<u8> {
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .expect("reply, then end of stream");
    reply
}

/// Waits (at most 5 s) for the server to exit, and checks it exited 0;
/// then for its stderr to be read to the end, so that `log()` holds the
/// last lines it wrote before exiting.
fn exits_zero(server: &mut ServerProcess) {
    let status = server
        .wait_timeout(Duration::from_secs(5))
        .expect("wait")
        .expect("the server exits");
    assert!(status.success(), "{status:?}");
    assert!(server.wait_log_end(Duration::from_secs(5)), "stderr open");
}

/// Twenty clients sleeping 300 ms per message at once finish in far less
/// than the 6 s one-at-a-time would take: timers, not a blocked thread.
#[test]
fn sleeping_clients_are_served_at_once() {
    let server = start(&["--work-ms", "300"]);
    let started = Instant::now();
    let clients: Vec<_> = (0..20)
        .map(|_| {
            let mut stream = server.connect(TIMEOUT).expect("connect");
            thread::spawn(move || {
                exchange(&mut stream, &message(b"package 0"));
                stream.write_all(GOODBYE_FRAME).expect("goodbye");
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client thread");
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

/// Spin work runs on the blocking pool, not on the runtime's thread:
/// while one client's message spins for 2 s of CPU, another client's
/// protocol violation is answered at once, not after the spin.
#[test]
fn spin_work_does_not_stall_other_connections() {
    let server = start_logging(&["--work-ms", "2000", "--work-kind", "spin"]);
    let mut spinner = server.connect(TIMEOUT).expect("connect");
    spinner.write_all(&message(b"spin")).expect("send");
    wait_for_log(&server, "message \"spin\"");
    let started = Instant::now();
    let mut other = server.connect(TIMEOUT).expect("connect");
    other.write_all(b"\xff").expect("send");
    let reply = reply_then_end_of_stream(&mut other);
    let took = started.elapsed();
    assert_eq!(reply, b"err non-ASCII byte");
    // The spin needs 2 s of CPU, so at least 2 s of wall time; a stalled
    // runtime would answer only after it.
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    let mut ack = [0; 3];
    spinner.read_exact(&mut ack).expect("first ack");
}

/// SIGTERM with a message in progress: its ack still arrives, the
/// connection is closed and the server exits 0 within work + 1 s.
#[test]
fn sigterm_acks_in_flight_messages_then_exits_zero() {
    let mut server = start_logging(&["--work-ms", "500"]);
    let mut stream = server.connect(TIMEOUT).expect("connect");
    stream.write_all(&message(b"late")).expect("send");
    wait_for_log(&server, "message \"late\"");
    let signalled = Instant::now();
    server.signal(Signal::SIGTERM).expect("signal");
    let reply = reply_then_end_of_stream(&mut stream);
    assert_eq!(reply, ACK);
    exits_zero(&mut server);
    let took = signalled.elapsed();
    assert!(took < Duration::from_millis(2500), "took {took:?}");
}

/// No busy loop: an idle server uses next to no CPU.
#[test]
fn an_idle_server_sleeps() {
    let server = start(&[]);
    let _idle = server.connect(TIMEOUT).expect("connect");
    let cpu = |pid: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .expect("the server's /proc entry");
        let fields: Vec<&str> = stat
            .rsplit_once(") ")
            .expect("stat has a command in parentheses")
            .1
            .split(' ')
            .collect();
        // utime and stime are fields 14 and 15; 3 is the first after ")".
        let ticks = |i: usize| fields[i - 3].parse::<u64>().expect("ticks");
        ticks(14) + ticks(15)
    };
    let before = cpu(server.pid());
    thread::sleep(Duration::from_secs(1));
    let used = cpu(server.pid()) - before;
    // 100 ticks per second: 5 ticks is 5% of a core, generous.
    assert!(used <= 5, "{used} ticks in one idle second");
}

/// Waits until the server's log has `needle`, or panics after TIMEOUT.
fn wait_for_log(server: &ServerProcess, needle: &str) {
    let found = server.wait_for_log(TIMEOUT, |log| log.contains(needle));
    assert!(found, "no {needle:?} in the log");
}

/// SIGTERM while a client's pipelined messages wait behind the one being
/// worked on: the one in progress is acked, the others are not started
/// (each would add `--work-ms` to the shutdown), and the connection is
/// closed by the task itself - a task still working at the deadline would
/// be aborted, without a lingering close or a `closed` line.
#[test]
fn sigterm_stops_before_the_next_pipelined_message() {
    let mut server = start_logging(&["--work-ms", "1000"]);
    let mut stream = server.connect(TIMEOUT).expect("connect");
    stream
        .write_all(&[&b"first"[..], b"second", b"third"].map(message).concat())
        .expect("send");
    wait_for_log(&server, "message \"first\"");
    server.signal(Signal::SIGTERM).expect("signal");
    let reply = reply_then_end_of_stream(&mut stream);
    assert_eq!(reply, ACK);
    exits_zero(&mut server);
    let log = server.log();
    let started = log.matches("] message ").count();
    assert_eq!(started, 1, "messages started after SIGTERM:\n{log}");
    assert!(
        log.contains("server shutting down"),
        "no closed line:\n{log}"
    );
}

/// SIGTERM while the server is stuck writing an ack to a client that reads
/// none: the task stops waiting for room and closes the connection
/// gracefully (its unread input drained), so the acks already queued and
/// the end of stream still reach the client when it reads at last. A task
/// left in the write until the shutdown deadline is aborted and closes a
/// socket with unread input: the kernel resets the connection.
#[test]
fn sigterm_while_acks_go_unread_closes_gracefully() {
    let mut server = start(&["--work-ms", "0"]);
    let mut stream = connect_small_window(&server);
    let mut writer = stream.try_clone().expect("clone");
    // Our writes stop going through once the server is stuck on an ack.
    writer
        .set_write_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let chunk = [protocol::ETX; 64 * 1024];
    let blocked = (0..1024).any(|_| writer.write(&chunk).is_err());
    assert!(blocked, "64 MiB went through unread acks");
    server.signal(Signal::SIGTERM).expect("signal");
    exits_zero(&mut server);
    // Only now read: whatever the server queued, then end of stream.
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .expect("the acks, then end of stream (not a reset)");
    // The last ack may be cut short: the stop can come when only part
    // of it fit into the send buffer.
    assert!(!reply.is_empty(), "no ack at all");
    assert!(AckReader::new().feed(&reply).is_ok(), "not acks: {reply:?}");
}

/// A connection whose receive window is tiny, so that unread acks fill
/// it (and then the server's send buffer) quickly.
fn connect_small_window(server: &ServerProcess) -> TcpStream {
    use nix::sys::socket::{
        connect, setsockopt, socket, sockopt, AddressFamily, SockFlag,
        SockType, SockaddrIn,
    };
    use std::os::fd::AsRawFd;
    let std::net::SocketAddr::V4(addr) = server.addr() else {
        panic!("servers run on 127.0.0.1");
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    // Before connecting, so the window is small from the start.
    setsockopt(&fd, sockopt::RcvBuf, &4096).expect("SO_RCVBUF");
    connect(fd.as_raw_fd(), &SockaddrIn::from(addr)).expect("connect");
    let stream = TcpStream::from(fd);
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream
}

/// SIGTERM while a message's spin runs on its own thread: the task
/// still waits for the spin, sends its ack, and the server exits 0
/// within work + 1 s.
#[test]
fn sigterm_during_a_spin_acks_it_and_exits() {
    let mut server =
        start_logging(&["--work-ms", "150", "--work-kind", "spin"]);
    let mut stream = server.connect(TIMEOUT).expect("connect");
    let both = [message(b"spin"), message(b"spin again")].concat();
    stream.write_all(&both).expect("send");
    wait_for_log(&server, "message \"spin\"");
    let signalled = Instant::now();
    server.signal(Signal::SIGTERM).expect("signal");
    let reply = reply_then_end_of_stream(&mut stream);
    assert_eq!(reply, ACK);
    // Closing our side ends the server's lingering close at once.
    drop(stream);
    exits_zero(&mut server);
    let took = signalled.elapsed();
    // The contract's bound: the work plus one second.
    assert!(took < Duration::from_millis(1150), "took {took:?}");
}

/// A client that sends and never reads its acks cannot hold its task (and
/// the task's memory) forever: once an ack has waited for room for the
/// idle limit, the server gives the connection up, and serves others.
#[test]
fn a_client_that_reads_no_acks_is_dropped_after_the_idle_limit() {
    let server = start(&["--work-ms", "0", "--idle-timeout-ms", "300"]);
    let stream = connect_small_window(&server);
    let mut writer = stream.try_clone().expect("clone");
    writer
        .set_write_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let chunk = [protocol::ETX; 64 * 1024];
    let blocked = (0..1024).any(|_| writer.write(&chunk).is_err());
    assert!(blocked, "64 MiB went through unread acks");
    // The server's end of the connection, in the kernel's table.
    let ours = stream.local_addr().expect("address");
    let theirs = server.addr();
    let deadline = Instant::now() + TIMEOUT;
    while harness::conformance::receive_queue(theirs, ours).is_some() {
        assert!(Instant::now() < deadline, "the server still holds it");
        thread::sleep(Duration::from_millis(20));
    }
    let mut fresh = server.connect(TIMEOUT).expect("connect");
    exchange(&mut fresh, &message(b"still here"));
}
