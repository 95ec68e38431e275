//! What the chapter 3 process tests share: starting the server, simple
//! clients, and reading the server's log and threads.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use harness::{procfs, ServerProcess};

/// Every socket read or write in these tests gives up after this long, so
/// a hung server fails the test instead of hanging it.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The server binary Cargo built for this package.
pub const SERVER: &str = env!("CARGO_BIN_EXE_ch03-threaded");

/// Starts the server with `args` (plus `--addr 127.0.0.1:0`).
pub fn start(args: &[&str]) -> ServerProcess {
    ServerProcess::start(SERVER, args).expect("the server starts")
}

/// Starts the server with the test hook armed: a client whose first
/// message is `text` makes its worker panic.
pub fn start_with_panic_hook(text: &str, args: &[&str]) -> ServerProcess {
    let mut command = Command::new(SERVER);
    command
        .args(args)
        .args(["--addr", "127.0.0.1:0"])
        .env(ch03_threaded::PANIC_HOOK_VAR, text);
    ServerProcess::spawn(command).expect("the server starts")
}

/// Sends one message (adding the ETX).
pub fn send(stream: &mut TcpStream, text: &str) -> io::Result<()> {
    stream.write_all(&protocol::encoder::message(text.as_bytes()))
}

/// Reads exactly `n` bytes as text.
pub fn read_n(stream: &mut TcpStream, n: usize) -> io::Result<String> {
    let mut buffer = vec![0; n];
    stream.read_exact(&mut buffer)?;
    Ok(String::from_utf8_lossy(&buffer).into_owned())
}

/// Reads until the server closes; returns what came (a reset counts as
/// a close).
pub fn read_to_close(stream: &mut TcpStream) -> String {
    let mut buffer = Vec::new();
    let mut chunk = [0; 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("waiting for the server to close: {e}"),
        }
    }
    String::from_utf8_lossy(&buffer).into_owned()
}

/// One whole session: `messages` messages, each waited for its `ack`,
/// then `goodbye` and the server's close.
pub fn session(server: &ServerProcess, messages: usize) {
    server.session(messages, TIMEOUT).expect("a whole session");
}

/// Runs `clients` sessions at once and returns how long they took.
pub fn run_clients(
    server: &ServerProcess,
    clients: usize,
    messages: usize,
) -> Duration {
    server
        .sessions_at_once(clients, messages, TIMEOUT)
        .expect("every session is served")
}

/// Waits until the server's log has a line for which `wanted` holds.
pub fn wait_for_log(server: &ServerProcess, wanted: impl Fn(&str) -> bool) {
    wait_until(server, |log| log.lines().any(&wanted));
}

/// Waits until `workers` worker threads have logged that they are ready:
/// `listening on` is printed before the workers start.
pub fn wait_ready(server: &ServerProcess, workers: usize) {
    wait_until(server, |log| {
        log.lines().filter(|l| l.ends_with("] ready")).count() >= workers
    });
}

/// Waits until `done` holds for the server's whole log so far.
pub fn wait_until(server: &ServerProcess, done: impl Fn(&str) -> bool) {
    assert!(
        server.wait_for_log(TIMEOUT, done),
        "the log never showed it; log:\n{}",
        server.log()
    );
}

/// The number of threads of the running process `pid`.
pub fn thread_count(pid: u32) -> usize {
    procfs::thread_count(pid).expect("the server is running")
}

/// The thread names that logged `serving` lines, deduplicated, sorted.
pub fn serving_threads(log: &str) -> Vec<String> {
    let mut names: Vec<String> = log
        .lines()
        .filter(|line| line.contains("] serving "))
        .filter_map(|line| {
            let inside = line.split('[').nth(1)?.split(']').next()?;
            Some(inside.split_whitespace().nth(2)?.to_owned())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}
