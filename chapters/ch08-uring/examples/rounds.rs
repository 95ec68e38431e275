//! The chapter's measured figures: what a server spends per message with
//! many connections busy at once.
//!
//! `cargo run --release -p ch08-uring --example rounds -- SERVER CLIENTS
//! ROUNDS [--strace FILE]` starts SERVER (a built server binary) on
//! loopback pinned to CPU 1 (run this under `taskset -c 0`, so that the
//! load has the other core to itself), opens CLIENTS
//! connections, and runs ROUNDS rounds: every client sends a message,
//! then every client reads its ack. It prints the server's CPU time per
//! message over the rounds. With `--strace FILE` the server runs under
//! `strace -f -c -o FILE` instead, and the run only counts: strace's
//! table in FILE, written when the server exits, has every system call
//! the server made (and its setup's, a few dozen). book/output/
//! ch08-uring.sh runs it for chapter 4's server and this one.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::ServerProcess;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use protocol::limits::raise_open_files;

const TIMEOUT: Duration = Duration::from_secs(30);
const USAGE: &str = "usage: rounds SERVER CLIENTS ROUNDS [--strace FILE]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, clients, rounds, rest @ ..] = &args[..] else {
        panic!("{USAGE}");
    };
    let clients: usize = clients.parse().expect(USAGE);
    let rounds: usize = rounds.parse().expect(USAGE);
    let strace = match rest {
        [] => None,
        [flag, file] if flag == "--strace" => Some(file.clone()),
        _ => panic!("{USAGE}"),
    };
    raise_open_files().expect("the open-file limit can be raised");

    let flags = ["--work-ms", "0", "--idle-timeout-ms", "0", "--quiet"];
    let mut command = match &strace {
        Some(file) => {
            let mut c = Command::new("strace");
            c.args(["-f", "-c", "-o", file, "taskset", "-c", "1", server]);
            c
        }
        // The server on CPU 1, the load (see above) on CPU 0: neither
        // steals the other's core, and the server's figures are its own.
        None => {
            let mut c = Command::new("taskset");
            c.args(["-c", "1", server]);
            c
        }
    };
    command.args(["--addr", "127.0.0.1:0"]).args(flags);
    let mut server = ServerProcess::spawn(command).expect("the server starts");

    let mut streams: Vec<TcpStream> = (0..clients)
        .map(|_| server.connect(TIMEOUT).expect("connects"))
        .collect();
    let before = server.group_cpu_time();
    let started = Instant::now();
    for round in 0..rounds {
        for stream in &mut streams {
            let message = format!("package {round}\x03");
            stream.write_all(message.as_bytes()).expect("sends");
        }
        for stream in &mut streams {
            let mut ack = [0; 3];
            stream.read_exact(&mut ack).expect("an ack arrives");
            assert_eq!(&ack, b"ack");
        }
    }
    let wall = started.elapsed();
    let cpu = server.group_cpu_time().saturating_sub(before);
    for stream in &mut streams {
        stream.write_all(b"goodbye\x03").expect("sends");
        let mut rest = [0; 8];
        assert_eq!(stream.read(&mut rest).expect("closes"), 0);
    }
    let messages = clients * rounds;
    match strace {
        Some(file) => {
            // strace writes its table when its tracee exits: SIGTERM the
            // server (strace's child), not strace.
            let tracer = server.pid();
            let children = std::fs::read_to_string(format!(
                "/proc/{tracer}/task/{tracer}/children"
            ))
            .expect("strace is running");
            let child: i32 = children
                .split_whitespace()
                .next()
                .and_then(|pid| pid.parse().ok())
                .expect("strace runs the server");
            kill(Pid::from_raw(child), Signal::SIGTERM).expect("SIGTERM");
            let status = server.wait_timeout(TIMEOUT).expect("strace exits");
            let status = status.expect("strace exits after its tracee");
            println!("{messages} messages; strace table in {file} ({status})");
        }
        None => println!(
            "{messages} messages in {:.2} s; server CPU {:.3} s, \
             {:.2} us per message",
            wall.as_secs_f64(),
            cpu.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / messages as f64
        ),
    }
}
