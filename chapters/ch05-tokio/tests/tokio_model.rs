//! What is particular to the tokio model, beyond the shared conformance
//! suite: one thread serves many sleeping clients at once, and a signal
//! lets in-flight messages finish.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use client::ServerProcess;
use nix::sys::signal::Signal;

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
    let mut ack = [0; 3];
    stream.read_exact(&mut ack).expect("ack arrives");
    assert_eq!(&ack, b"ack");
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
                exchange(&mut stream, b"package 0\x03");
                stream.write_all(b"goodbye\x03").expect("goodbye");
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
    let server = start(&["--work-ms", "2000", "--work-kind", "spin"]);
    let mut spinner = server.connect(TIMEOUT).expect("connect");
    spinner.write_all(b"spin\x03").expect("send");
    thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let mut other = server.connect(TIMEOUT).expect("connect");
    other.write_all(b"\xff").expect("send");
    let mut reply = Vec::new();
    other
        .read_to_end(&mut reply)
        .expect("reply, then end of stream");
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
    let mut server = start(&["--work-ms", "500"]);
    let mut stream = server.connect(TIMEOUT).expect("connect");
    stream.write_all(b"late\x03").expect("send");
    thread::sleep(Duration::from_millis(100));
    let signalled = Instant::now();
    server.signal(Signal::SIGTERM).expect("signal");
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .expect("reply, then end of stream");
    assert_eq!(reply, b"ack");
    let status = server
        .wait_timeout(Duration::from_secs(5))
        .expect("wait")
        .expect("the server exits");
    assert!(status.success(), "{status:?}");
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
