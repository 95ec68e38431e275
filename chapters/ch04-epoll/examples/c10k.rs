//! The chapter's measured figure: one `ch04-epoll` process holding 10,000
//! connections, with its memory and CPU read from `/proc`.
//!
//! `cargo run --release -p ch04-epoll --example c10k -- SERVER [CLIENTS]`
//! starts SERVER (a built `ch04-epoll` binary) on loopback, opens CLIENTS
//! connections (default 10,000) from this one thread, has every client
//! send a message and read its ack, ten rounds over, and prints what the
//! server used. book/output/ch04-epoll.sh runs it for the chapter.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use harness::ServerProcess;
use nix::sys::resource::{getrlimit, setrlimit, Resource};

const TIMEOUT: Duration = Duration::from_secs(30);
const ROUNDS: usize = 10;

fn main() {
    let mut args = std::env::args().skip(1);
    let server = args.next().expect("usage: c10k SERVER [CLIENTS]");
    let clients: usize = args
        .next()
        .map_or(10_000, |n| n.parse().expect("CLIENTS is a number"));
    // Our own sockets need descriptors too.
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit works");
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
    }

    let flags = ["--work-ms", "0", "--idle-timeout-ms", "0", "--quiet"];
    let name = std::path::Path::new(&server)
        .file_name()
        .map_or(server.clone(), |n| n.to_string_lossy().into_owned());
    let server = ServerProcess::start(&server, &flags).expect("starts");
    let empty = Usage::of(&server);

    let started = Instant::now();
    let mut streams: Vec<TcpStream> = (0..clients)
        .map(|_| server.connect(TIMEOUT).expect("connects"))
        .collect();
    let connect_time = started.elapsed();
    let connected = Usage::of(&server);

    let started = Instant::now();
    for round in 0..ROUNDS {
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
    let exchange_time = started.elapsed();
    let exchanged = Usage::of(&server);

    let started = Instant::now();
    for stream in &mut streams {
        stream.write_all(b"goodbye\x03").expect("sends");
    }
    for stream in &mut streams {
        let mut rest = [0; 8];
        assert_eq!(stream.read(&mut rest).expect("closes"), 0);
    }
    drop(streams);
    let close_time = started.elapsed();
    let closed = Usage::of(&server);

    let messages = clients * ROUNDS;
    let per_connection =
        (connected.rss_kib - empty.rss_kib) as f64 * 1024.0 / clients as f64;
    let exchange_cpu = exchanged.cpu - connected.cpu;
    println!("server: {name}, one process");
    println!("{clients} clients on loopback, {ROUNDS} messages each\n");
    println!("                            time  server CPU   server RSS");
    let row = |what: &str, time: Option<Duration>, cpu: Duration, rss: u64| {
        let time =
            time.map_or("-".into(), |t| format!("{:.2} s", t.as_secs_f64()));
        println!(
            "{what:<22} {time:>9}  {:>8.2} s  {:>8.1} MiB",
            cpu.as_secs_f64(),
            rss as f64 / 1024.0
        );
    };
    row("no clients", None, empty.cpu, empty.rss_kib);
    row(
        "all connected",
        Some(connect_time),
        connected.cpu - empty.cpu,
        connected.rss_kib,
    );
    row(
        &format!("{messages} messages"),
        Some(exchange_time),
        exchange_cpu,
        exchanged.rss_kib,
    );
    row(
        "goodbye, all closed",
        Some(close_time),
        closed.cpu - exchanged.cpu,
        closed.rss_kib,
    );
    println!();
    println!(
        "user-space memory per connection: {per_connection:.0} bytes \
         (kernel socket buffers not included)"
    );
    println!(
        "server CPU per message (read, decode, ack, write): {:.1} us",
        exchange_cpu.as_secs_f64() * 1e6 / messages as f64
    );
}

/// A process's resident memory and CPU time so far, from `/proc`.
struct Usage {
    rss_kib: u64,
    cpu: Duration,
}

impl Usage {
    fn of(server: &ServerProcess) -> Usage {
        let pid = server.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .expect("the server is running");
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS is listed");
        Usage {
            rss_kib,
            cpu: server.group_cpu_time(),
        }
    }
}
