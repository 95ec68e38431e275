//! What the many-loops server promises beyond the shared suite, tested
//! against the real binary in each of its three ways to share the port:
//! 10,000 connections, running out of file descriptors, a signal that
//! drains every loop, and counts that add up.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use harness::conformance::{ack_within, serve_at_once};
use harness::ServerProcess;
use protocol::encoder::{message, GOODBYE_FRAME};

const SERVER: &str = env!("CARGO_BIN_EXE_ch07-loops");

/// Bound on every socket operation: a hung server fails, never hangs.
const TIMEOUT: Duration = Duration::from_secs(20);

const BALANCES: [&str; 3] = ["shared", "exclusive", "reuseport"];

/// Four loops sharing the port the `balance` way, plus `flags`.
fn start(balance: &str, flags: &[&str]) -> ServerProcess {
    let args = [&["--balance", balance, "--loops", "4"], flags].concat();
    ServerProcess::start(SERVER, &args).expect("the server starts")
}

/// One loop's counts, read back from its `listener:` line.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    wakeups: u64,
    empty_wakeups: u64,
    accept_calls: u64,
    accepted: u64,
}

/// Every loop's counts, from a log complete to the exit.
fn counts(log: &str) -> Vec<Counts> {
    log.lines()
        .filter_map(|line| line.split_once("] listener: "))
        .map(|(_, counts)| {
            let numbers: Vec<u64> = counts
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse().ok())
                .collect();
            let [wakeups, empty_wakeups, accept_calls, accepted] = numbers[..]
            else {
                panic!("not a counts line: {counts:?}");
            };
            Counts {
                wakeups,
                empty_wakeups,
                accept_calls,
                accepted,
            }
        })
        .collect()
}

/// Stops the server with SIGTERM and returns its whole log.
fn stop(mut server: ServerProcess) -> String {
    let status = server.terminate(TIMEOUT).expect("wait");
    assert!(
        status.is_some_and(|s| s.success()),
        "exit after SIGTERM: {status:?}\n{}",
        server.log()
    );
    assert!(server.wait_log_end(TIMEOUT), "stderr stays open");
    server.log()
}

/// One whole session: a message, its ack, goodbye, end of stream.
fn session(server: &ServerProcess) {
    let mut stream = server.connect(TIMEOUT).expect("connects");
    stream.write_all(&message(b"hello")).expect("sent");
    assert!(ack_within(&mut stream, TIMEOUT), "acked");
    stream.write_all(GOODBYE_FRAME).expect("goodbye is sent");
    let mut rest = [0; 8];
    assert_eq!(stream.read(&mut rest).expect("closed"), 0);
}

/// Each loop's counts obey the counting rule: every wakeup ends with the
/// one accept that finds the backlog empty, so accept calls are the
/// connections accepted plus the wakeups; and the loops together
/// accepted each client once.
#[test]
fn counts_add_up() {
    const CLIENTS: u64 = 40;
    for balance in BALANCES {
        let server = start(balance, &["--work-ms", "0", "--quiet"]);
        for _ in 0..CLIENTS {
            session(&server);
        }
        let log = stop(server);
        let loops = counts(&log);
        assert_eq!(loops.len(), 4, "a line per loop:\n{log}");
        for c in &loops {
            assert_eq!(c.accept_calls, c.accepted + c.wakeups, "{balance}");
            assert!(c.empty_wakeups <= c.wakeups, "{balance}: {c:?}");
        }
        let accepted: u64 = loops.iter().map(|c| c.accepted).sum();
        assert_eq!(accepted, CLIENTS, "{balance}:\n{log}");
    }
}

/// With SO_REUSEPORT the kernel spreads connections over the loops by a
/// hash of their ports: 100 clients (100 source ports) do not all land
/// on one loop (the odds that they would are 4 in 4^100).
#[test]
fn reuseport_spreads_connections() {
    let server = start("reuseport", &["--work-ms", "0", "--quiet"]);
    for _ in 0..100 {
        session(&server);
    }
    let log = stop(server);
    let busy = counts(&log).iter().filter(|c| c.accepted > 0).count();
    assert!(busy >= 2, "{busy} of 4 loops accepted:\n{log}");
}

/// SIGTERM with 40 clients mid-work, spread over the loops: every loop
/// finishes its clients' work, each client gets its ack, and the server
/// exits 0 within `--work-ms` plus one second.
#[test]
fn a_signal_drains_every_loop() {
    for balance in BALANCES {
        let server = start(balance, &["--work-ms", "1000"]);
        let mut clients: Vec<TcpStream> = (0..40)
            .map(|_| server.connect(TIMEOUT).expect("connects"))
            .collect();
        for client in &mut clients {
            client.write_all(&message(b"hello")).expect("sent");
        }
        // Every message read, its work started, before the signal.
        let read = |log: &str| log.matches("] message ").count() == 40;
        assert!(server.wait_for_log(TIMEOUT, read), "{}", server.log());
        let mut server = server;
        let signalled = Instant::now();
        let status = server.terminate(Duration::from_secs(5)).expect("wait");
        let took = signalled.elapsed();
        assert!(
            status.is_some_and(|s| s.success()),
            "{balance}: exit after SIGTERM: {status:?}\n{}",
            server.log()
        );
        assert!(took < Duration::from_secs(2), "{balance}: took {took:?}");
        for client in &mut clients {
            assert!(ack_within(client, TIMEOUT), "{balance}: acked");
            let mut rest = [0; 8];
            let end = client.read(&mut rest).expect("closed");
            assert_eq!(end, 0, "{balance}: end of stream after the ack");
        }
        assert!(server.wait_log_end(TIMEOUT), "stderr stays open");
        assert_eq!(counts(&server.log()).len(), 4, "{}", server.log());
    }
}

/// 10,000 clients connected at once, spread over four loops, each
/// exchange a message and all get their ack; then each says goodbye and
/// is closed.
#[test]
fn ten_thousand_connections() {
    const CLIENTS: usize = 10_000;
    for balance in BALANCES {
        let server = start(balance, &["--work-ms", "0", "--quiet"]);
        serve_at_once(&server, CLIENTS);
        let log = stop(server);
        assert!(!log.contains("accept failed"), "{balance}:\n{log}");
        let accepted: u64 = counts(&log).iter().map(|c| c.accepted).sum();
        assert_eq!(accepted, CLIENTS as u64, "{balance}");
    }
}

/// Out of descriptors (a limit of 64 for the process, shared by its four
/// loops): every loop pauses its accepts instead of spinning, the
/// clients held are still served, and the waiting ones are taken once
/// others leave. With `exclusive`, pausing means taking the listener off
/// the loop's epoll and adding it back (the kernel refuses to change an
/// exclusive registration).
#[test]
fn out_of_descriptors() {
    for balance in BALANCES {
        out_of_descriptors_with(balance);
    }
}

fn out_of_descriptors_with(balance: &str) {
    const CLIENTS: usize = 80;
    // `ulimit -n` in the shell lowers both limits, then `exec` becomes
    // the server: the limit applies to it alone, not to this test.
    let mut command = Command::new("sh");
    command.args(["-c", "ulimit -n 64 && exec \"$0\" \"$@\"", SERVER]);
    command.args(["--balance", balance, "--loops", "4"]);
    command.args(["--addr", "127.0.0.1:0", "--work-ms", "0", "--quiet"]);
    let server = ServerProcess::spawn(command).expect("the server starts");
    let mut clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| server.connect(TIMEOUT).expect("connects"))
        .collect();
    for client in &mut clients {
        client.write_all(&message(b"hello")).expect("sent");
    }
    assert!(
        server.wait_for_log(TIMEOUT, |log| log.contains("pausing accepts")),
        "{balance}: never ran out\n{}",
        server.log()
    );
    // Which clients were accepted depends on the loops (and, with
    // reuseport, on the hash): ask each, briefly, once the accepts that
    // fit have been made and their messages acked.
    thread::sleep(Duration::from_secs(1));
    let (mut served, mut waiting) =
        split_acked(clients, Duration::from_millis(100));
    assert!(
        (20..CLIENTS - 10).contains(&served.len()),
        "{balance}: {} of {CLIENTS} served with 64 descriptors",
        served.len()
    );
    // Not spinning: over a second, well under a tenth of a core.
    let before = server.group_cpu_time();
    thread::sleep(Duration::from_secs(1));
    let cpu = server.group_cpu_time().saturating_sub(before);
    assert!(
        cpu < Duration::from_millis(100),
        "{balance}: {cpu:?} of CPU while full"
    );
    // Still serving the clients it holds.
    for client in &mut served {
        client.write_all(&message(b"again")).expect("sent");
        assert!(ack_within(client, TIMEOUT), "{balance}: held client");
    }
    // They all leave; every waiting client is accepted and served.
    for mut client in served.drain(..) {
        client.write_all(GOODBYE_FRAME).expect("goodbye is sent");
        let mut rest = [0; 8];
        assert_eq!(client.read(&mut rest).expect("closed"), 0);
    }
    for client in &mut waiting {
        assert!(
            ack_within(client, TIMEOUT),
            "{balance}: a waiting client was never served\n{}",
            server.log()
        );
    }
    drop(waiting);
    stop(server);
}

/// Splits `clients` into those whose ack arrives within `wait` and the
/// rest.
fn split_acked(
    clients: Vec<TcpStream>,
    wait: Duration,
) -> (Vec<TcpStream>, Vec<TcpStream>) {
    let (mut acked, mut not) = (Vec::new(), Vec::new());
    for mut client in clients {
        if ack_within(&mut client, wait) {
            acked.push(client);
        } else {
            not.push(client);
        }
    }
    (acked, not)
}

/// `--poller poll` is refused with one line and a non-zero exit, before
/// the server binds: the loops share the port through epoll.
#[test]
fn poll_is_refused() {
    let output = Command::new(SERVER)
        .args(["--poller", "poll", "--addr", "127.0.0.1:0"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "it listened");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--poller poll"), "{stderr}");
}
