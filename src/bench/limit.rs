//! Connections to the limit: every event loop holding as many connections
//! as the open-file limit allows, each of them acked.
//!
//! One process may hold as many descriptors as its hard `RLIMIT_NOFILE`
//! (20,000 on the machine the book was measured on, and it cannot be
//! raised there). Both ends live on this machine, so the bench and the
//! server each raise their soft limit to the hard one
//! (`protocol::limits::raise_open_files`), and the bench opens that many
//! connections less a reserve for the descriptors both need besides.
//!
//! A client address has only the ephemeral ports towards one server
//! (`net.ipv4.ip_local_port_range`, about 28,000), and `connect` finds
//! them quickly only in the even half of the range (see [`Sources`]);
//! past that half the bench binds the next loopback address, 127.0.0.2,
//! 127.0.0.3, ... Every connection then sends one message and reads its
//! `ack`, and the server's resident memory and the kernel's memory are
//! read before and after: the pages of socket buffers
//! (`/proc/net/sockstat`) and the slab caches that hold the sockets
//! themselves (`/proc/meminfo`). From the per-connection figures the
//! table extrapolates to 100,000 and 1,000,000 connections and names the
//! limits that would bind there.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use client::Connection;
use harness::procfs;
use nix::errno::Errno;
use nix::sys::socket::{
    bind, connect, setsockopt, socket, sockopt, AddressFamily, SockFlag,
    SockType, SockaddrIn,
};

use super::report::{csv_text, Status};
use super::{probe, Bench};
use crate::models::{self, Model};

/// Descriptors left free in each process beside the connections: the
/// listener, the poller, the standard streams, pipes to the server, a
/// reconnect. The goal allows "a few hundred".
pub const RESERVE: u64 = 256;

/// Every socket's read and write timeout: a server that stops acking
/// fails the point instead of hanging the run.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The connection counts the table extrapolates to.
const EXTRAPOLATE: [u64; 2] = [100_000, 1_000_000];

/// The goal: chapter 4 keeps under this many bytes of user-space memory
/// per connection.
pub const EPOLL_BYTES_GOAL: f64 = 1024.0;

/// One model at the limit.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Model label.
    pub model: &'static str,
    /// Connections the bench tried to open.
    pub target: usize,
    /// Connections open at the end.
    pub held: usize,
    /// Of those, how many got their `ack`.
    pub acked: usize,
    /// Loopback source addresses used.
    pub sources: usize,
    /// From the first `connect` to the last one done.
    pub connect_time: Duration,
    /// From the first message sent to the last `ack` read.
    pub exchange_time: Duration,
    /// Server resident memory before the connections, KiB.
    pub rss_before_kib: u64,
    /// Server resident memory with every connection open and acked, KiB.
    pub rss_after_kib: u64,
    /// The growth, per connection held.
    pub user_bytes_per_connection: f64,
    /// Growth of the kernel's TCP buffer memory (`/proc/net/sockstat`),
    /// both ends of every connection (system-wide, so other programs'
    /// sockets are in it too).
    pub buffer_bytes: u64,
    /// Growth of the kernel's slab memory (`Slab:` in `/proc/meminfo`):
    /// the socket, file and epoll structures of both ends, system-wide.
    pub slab_bytes: u64,
    /// Whether every connection opened and was acked.
    pub status: Status,
}

impl Row {
    /// `bytes` per connection held.
    fn per_connection(&self, bytes: u64) -> f64 {
        if self.held == 0 {
            return 0.0;
        }
        bytes as f64 / self.held as f64
    }

    /// Kernel memory per connection held, both of its ends: socket
    /// buffers and slab.
    pub fn kernel_bytes_per_connection(&self) -> f64 {
        self.per_connection(self.buffer_bytes + self.slab_bytes)
    }

    /// User-space and kernel memory per connection.
    pub fn bytes_per_connection(&self) -> f64 {
        self.user_bytes_per_connection + self.kernel_bytes_per_connection()
    }
}

/// The system limits the extrapolation is checked against.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// The hard `RLIMIT_NOFILE` of this process (the server's is the
    /// same: it inherits it).
    pub open_files: u64,
    /// `fs.nr_open`: the most any process's limit can be raised to.
    pub nr_open: u64,
    /// Ephemeral ports per source address towards one server.
    pub ports: u64,
    /// `net.core.somaxconn`: the most a listen backlog can hold.
    pub somaxconn: u64,
    /// Total memory, bytes.
    pub memory: u64,
}

impl Limits {
    /// This machine's limits, from `/proc` and `getrlimit`.
    pub fn read() -> Limits {
        let number = |path: &str| -> Vec<u64> {
            fs::read_to_string(path)
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        };
        let ports = match number("/proc/sys/net/ipv4/ip_local_port_range")[..] {
            [low, high] if high >= low => high - low + 1,
            _ => 0,
        };
        let memory_kib = fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        let open_files = nix::sys::resource::getrlimit(
            nix::sys::resource::Resource::RLIMIT_NOFILE,
        )
        .map_or(0, |(_, hard)| hard);
        Limits {
            open_files,
            nr_open: number("/proc/sys/fs/nr_open")
                .first()
                .copied()
                .unwrap_or(0),
            ports,
            somaxconn: number("/proc/sys/net/core/somaxconn")
                .first()
                .copied()
                .unwrap_or(0),
            memory: memory_kib * 1024,
        }
    }

    /// The limits `connections` would run into, first binding first: the
    /// per-process open-file limit, `fs.nr_open` (past which no process
    /// can have the descriptors), a client address's ephemeral ports,
    /// and memory at `bytes_per_connection`.
    fn binding(&self, connections: u64, bytes_per_connection: f64) -> String {
        let descriptors = connections + RESERVE;
        let mut binds = Vec::new();
        if descriptors > self.open_files {
            binds.push(format!(
                "open files (hard limit {} per process)",
                thousands(self.open_files)
            ));
        }
        if descriptors > self.nr_open {
            binds.push(format!("fs.nr_open ({})", thousands(self.nr_open)));
        }
        if self.ports > 0 && connections > self.ports {
            binds.push(format!(
                "ephemeral ports ({} per client address: {} addresses)",
                thousands(self.ports),
                connections.div_ceil(self.ports)
            ));
        }
        if bytes_per_connection * connections as f64 > self.memory as f64 {
            binds.push(format!("memory ({})", bytes(self.memory as f64)));
        }
        if binds.is_empty() {
            "none of these".into()
        } else {
            binds.join(", then ")
        }
    }
}

/// Runs the scenario for every chosen event loop: a step each.
pub(super) fn run(
    bench: &Bench<'_>,
    chosen: &[&Model],
    open_files: u64,
) -> Vec<Row> {
    let target = open_files.saturating_sub(RESERVE) as usize;
    let target = target.min(bench.plan.limit_connections);
    let mut rows = Vec::new();
    for model in chosen.iter().filter(|m| m.event_loop) {
        bench.step(format!(
            "{}: {target} connections, to the open-file limit",
            model.name
        ));
        rows.push(measure(bench, model, target));
        bench.bar.inc(1);
    }
    rows
}

/// How many steps [`run`] takes for `chosen`.
pub(super) fn steps(chosen: &[&Model]) -> usize {
    chosen.iter().filter(|m| m.event_loop).count()
}

/// One model: a fresh server, `target` connections, one message each.
fn measure(bench: &Bench<'_>, model: &Model, target: usize) -> Row {
    let mut row = Row {
        model: model.label,
        target,
        ..Row::default()
    };
    // No idle timeout: the connections wait while the others open.
    let flags = ["--work-ms", "0", "--idle-timeout-ms", "0"];
    let server = match bench.start(model, None, &flags) {
        Ok(server) => server,
        Err(e) => {
            row.status = Status::Failed(format!("start: {e}"));
            return row;
        }
    };
    // One session first, so that lazily allocated state (the runtime,
    // buffers that are reused) is in the baseline, not in the
    // per-connection figure.
    let _ = probe(&server);
    thread::sleep(Duration::from_millis(200));
    let before = server.usage();
    let kernel_before = (tcp_memory_pages(), slab_kib());
    let opened = open_acked(server.addr(), target);
    let after = server.usage();
    let kernel_after = (tcp_memory_pages(), slab_kib());
    row.held = opened.conns.len();
    row.acked = opened.acked;
    row.sources = opened.sources;
    row.connect_time = opened.connect_time;
    row.exchange_time = opened.exchange_time;
    row.rss_before_kib = before.rss_bytes / 1024;
    row.rss_after_kib = after.rss_bytes / 1024;
    if row.held > 0 {
        let grown = after.rss_bytes.saturating_sub(before.rss_bytes);
        row.user_bytes_per_connection = grown as f64 / row.held as f64;
    }
    row.buffer_bytes =
        kernel_after.0.saturating_sub(kernel_before.0) * procfs::page_size();
    row.slab_bytes = kernel_after.1.saturating_sub(kernel_before.1) * 1024;
    if let Some(why) = opened.first_error {
        row.status = Status::Failed(format!(
            "{} of {target} held, {} acked; first failure: {why}",
            row.held, row.acked
        ));
    }
    // The connections close here, then the server is killed.
    row
}

/// Connections opened by [`open_acked`].
pub struct Opened {
    /// The connections, each of which sent one message.
    pub conns: Vec<Connection>,
    /// How many got their `ack`.
    pub acked: usize,
    /// Loopback source addresses used.
    pub sources: usize,
    /// From the first `connect` to the last one done.
    pub connect_time: Duration,
    /// From the first message sent to the last `ack` read.
    pub exchange_time: Duration,
    /// The first failure, if any: then there are fewer connections than
    /// asked for, or fewer acks.
    pub first_error: Option<String>,
}

/// Opens `count` connections to the server at `addr`, then sends one
/// message on each, then reads every `ack`: all of them in one phase
/// each, so that the server finds hundreds of them ready at every wait
/// instead of one - with poll(2), whose every wait costs every open
/// descriptor, opening 10,000 connections one exchange at a time takes
/// minutes.
pub fn open_acked(addr: SocketAddr, count: usize) -> Opened {
    let mut opened = Opened {
        conns: Vec::with_capacity(count),
        acked: 0,
        sources: 1,
        connect_time: Duration::ZERO,
        exchange_time: Duration::ZERO,
        first_error: None,
    };
    let SocketAddr::V4(addr) = addr else {
        opened.first_error = Some("the server is not on IPv4".into());
        return opened;
    };
    let started = Instant::now();
    let mut sources = Sources::new(Limits::read().ports / 2);
    while opened.conns.len() < count {
        match sources.connect(addr) {
            Ok(conn) => opened.conns.push(conn),
            Err(e) => {
                opened.first_error = Some(format!(
                    "connect after {} connections: {e}",
                    opened.conns.len()
                ));
                break;
            }
        }
    }
    opened.connect_time = started.elapsed();
    opened.sources = sources.used();

    let started = Instant::now();
    let mut failed = vec![false; opened.conns.len()];
    for (conn, failed) in opened.conns.iter_mut().zip(&mut failed) {
        if let Err(e) = conn.send(b"hello") {
            *failed = true;
            opened.first_error.get_or_insert(format!("send: {e}"));
        }
    }
    for (conn, failed) in opened.conns.iter_mut().zip(&failed) {
        if *failed {
            continue;
        }
        match conn.read_ack() {
            Ok(()) => opened.acked += 1,
            Err(e) => {
                opened.first_error.get_or_insert(format!("ack: {e}"));
            }
        }
    }
    opened.exchange_time = started.elapsed();
    opened
}

/// The loopback source addresses, 127.0.0.1 first, each used for
/// `per_address` connections or until its ports run out.
///
/// `connect` looks for a free ephemeral port among the even ports of the
/// range first, leaving the odd ones to `bind`. Once the even half is
/// taken, every further `connect` from that address scans it in vain
/// before it tries an odd port, and connecting slows from tens of
/// microseconds to milliseconds (measured here: 14,000 connections in
/// half a second, the next 2,000 in ten). So each address serves half
/// its range.
struct Sources {
    /// The last octet of the current address.
    last: u8,
    /// Connections made from it so far.
    on_this: usize,
    /// How many connections each address takes.
    per_address: usize,
    /// Addresses used.
    used: usize,
}

impl Sources {
    fn new(per_address: u64) -> Sources {
        Sources {
            last: 1,
            on_this: 0,
            // An unreadable port range: the kernel's default one's half.
            per_address: if per_address > 0 {
                per_address as usize
            } else {
                14_116
            },
            used: 1,
        }
    }

    /// Moves on to the next address, if there is one.
    fn next_address(&mut self) -> bool {
        if self.last == 254 {
            return false;
        }
        self.last += 1;
        self.on_this = 0;
        self.used += 1;
        true
    }

    fn used(&self) -> usize {
        self.used
    }

    /// One connection to `server`, moving to the next address when this
    /// one has no port left.
    fn connect(&mut self, server: SocketAddrV4) -> io::Result<Connection> {
        if self.on_this == self.per_address {
            self.next_address();
        }
        loop {
            let source = Ipv4Addr::new(127, 0, 0, self.last);
            match connect_from(source, server) {
                Ok(fd) => {
                    self.on_this += 1;
                    let stream = TcpStream::from(fd);
                    stream.set_read_timeout(Some(TIMEOUT))?;
                    stream.set_write_timeout(Some(TIMEOUT))?;
                    return Connection::new(stream);
                }
                // Every port of this address is in a connection to this
                // server already (or held by other programs).
                Err(Errno::EADDRNOTAVAIL) if self.next_address() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A blocking connection from `source` (port chosen by the kernel) to
/// `server`.
fn connect_from(
    source: Ipv4Addr,
    server: SocketAddrV4,
) -> Result<OwnedFd, Errno> {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // Without this, `bind` to port 0 must find a port free towards every
    // destination and scans the range for each socket: connecting
    // 20,000 then takes minutes. With it, the port is chosen by
    // `connect`, which only needs one free towards this server.
    setsockopt(&fd, sockopt::IpBindAddressNoPort, &true)?;
    bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(SocketAddrV4::new(source, 0)),
    )?;
    connect(fd.as_raw_fd(), &SockaddrIn::from(server))?;
    Ok(fd)
}

/// The kernel's TCP memory in pages: the `mem` field of the `TCP:` line
/// of `/proc/net/sockstat`; 0 if it cannot be read.
fn tcp_memory_pages() -> u64 {
    let sockstat = fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let Some(tcp) = sockstat.lines().find_map(|l| l.strip_prefix("TCP:"))
    else {
        return 0;
    };
    let fields: Vec<&str> = tcp.split_whitespace().collect();
    fields
        .windows(2)
        .find(|w| w[0] == "mem")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(0)
}

/// The kernel's slab memory in KiB (`Slab:` in `/proc/meminfo`); 0 if
/// it cannot be read.
fn slab_kib() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Slab:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The rows as CSV.
pub fn csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "model,target,held,acked,source_addresses,connect_s,exchange_s,\
         rss_before_kib,rss_after_kib,user_bytes_per_connection,\
         buffer_bytes,slab_bytes,kernel_bytes_per_connection,status\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{:.3},{:.3},{},{},{:.0},{},{},{:.0},{}",
            r.model,
            r.target,
            r.held,
            r.acked,
            r.sources,
            r.connect_time.as_secs_f64(),
            r.exchange_time.as_secs_f64(),
            r.rss_before_kib,
            r.rss_after_kib,
            r.user_bytes_per_connection,
            r.buffer_bytes,
            r.slab_bytes,
            r.kernel_bytes_per_connection(),
            csv_text(&r.status.text())
        );
    }
    out
}

/// The measured table, the extrapolation, and the limits.
pub fn md(rows: &[Row], limits: &Limits) -> String {
    let mut out = String::from(
        "| model | connections | acked | time to connect | user-space \
         bytes/conn | kernel bytes/conn | memory at 100,000 | memory at \
         1,000,000 |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | \
         ---: |\n",
    );
    for r in rows {
        let at = |n: u64| {
            format!(
                "{} + {}",
                bytes(r.user_bytes_per_connection * n as f64),
                bytes(r.kernel_bytes_per_connection() * n as f64)
            )
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} s | {:.0} | {:.0} | {} | {} |",
            r.model,
            thousands(r.held as u64),
            thousands(r.acked as u64),
            r.connect_time.as_secs_f64(),
            r.user_bytes_per_connection,
            r.kernel_bytes_per_connection(),
            at(EXTRAPOLATE[0]),
            at(EXTRAPOLATE[1]),
        );
    }
    let sources = rows.iter().map(|r| r.sources).max().unwrap_or(1);
    let _ = writeln!(
        out,
        "\nEach connection sent one message and read its `ack`; the \
         connections came from {sources} loopback source address{}. \
         User space: the server's resident memory. Kernel: socket \
         buffers (`/proc/net/sockstat`) and the slab caches that hold \
         sockets, files and epoll entries (`/proc/meminfo`), for both ends \
         of each connection, read machine-wide. Memory at N connections: \
         user space + kernel, per connection times N. Open-file limit {} per process, so {} connections leave {} \
         descriptors for the rest.",
        if sources == 1 { "" } else { "es" },
        thousands(limits.open_files),
        thousands(limits.open_files.saturating_sub(RESERVE)),
        RESERVE
    );
    let most = rows
        .iter()
        .map(Row::bytes_per_connection)
        .fold(0.0, f64::max);
    let _ = writeln!(
        out,
        "\n| connections | limits reached, first binding first |\n| ---: \
         | --- |"
    );
    for n in EXTRAPOLATE {
        let _ =
            writeln!(out, "| {} | {} |", thousands(n), limits.binding(n, most));
    }
    let _ = writeln!(
        out,
        "\nThe listen backlog (`net.core.somaxconn` = {}) holds only \
         connections not yet accepted: it limits how fast clients may \
         arrive, not how many stay.",
        thousands(limits.somaxconn)
    );
    for r in rows {
        if let Status::Failed(why) = &r.status {
            let _ = writeln!(out, "\n- {}: {}", r.model, why.replace('|', "/"));
        }
    }
    out
}

/// The server's side alone, for the chapters that compare memory per
/// idle connection: the connections at the limit, each acked once and
/// then quiet.
pub fn idle_md(rows: &[Row]) -> String {
    let mut out = String::from(
        "| model | idle connections | RSS before | RSS after | bytes per \
         connection |\n| --- | ---: | ---: | ---: | ---: |\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} MiB | {:.1} MiB | {:.0} |",
            r.model,
            thousands(r.held as u64),
            r.rss_before_kib as f64 / 1024.0,
            r.rss_after_kib as f64 / 1024.0,
            r.user_bytes_per_connection
        );
    }
    out
}

/// The goal lines: every event loop holds its connections with every
/// ack, and chapter 4 keeps under [`EPOLL_BYTES_GOAL`] per connection.
pub fn goals(rows: &[Row], out: &mut String) {
    for r in rows {
        let met = r.status == Status::Ok && r.acked == r.target;
        let _ = writeln!(
            out,
            "| {} holds {} connections, each acked | {} held, {} acked | {} |",
            r.model,
            thousands(r.target as u64),
            thousands(r.held as u64),
            thousands(r.acked as u64),
            if met { "yes" } else { "**no**" }
        );
    }
    let ours = models::MODELS
        .iter()
        .find(|m| m.event_loop && !m.reference)
        .map(|m| m.label);
    if let Some(r) = rows.iter().find(|r| Some(r.model) == ours) {
        let met = r.held > 0 && r.user_bytes_per_connection < EPOLL_BYTES_GOAL;
        let _ = writeln!(
            out,
            "| {} user-space memory per connection < 1 KiB | {:.0} bytes at \
             {} connections | {} |",
            r.model,
            r.user_bytes_per_connection,
            thousands(r.held as u64),
            if met { "yes" } else { "**no**" }
        );
    }
}

/// `n` with thousands separators: 19,744.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A byte count in the unit that reads best: 245 B, 5.2 MiB, 3.1 GiB.
fn bytes(n: f64) -> String {
    const KIB: f64 = 1024.0;
    if n < KIB {
        format!("{n:.0} B")
    } else if n < KIB * KIB {
        format!("{:.1} KiB", n / KIB)
    } else if n < KIB * KIB * KIB {
        format!("{:.1} MiB", n / KIB / KIB)
    } else {
        format!("{:.1} GiB", n / KIB / KIB / KIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Separators every three digits from the right.
    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(19_744), "19,744");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    /// The limits are named in the order they bind.
    #[test]
    fn limits_bind_in_order() {
        let limits = Limits {
            open_files: 20_000,
            nr_open: 1_048_576,
            ports: 28_232,
            somaxconn: 4096,
            memory: 24 << 30,
        };
        assert_eq!(limits.binding(10_000, 1000.0), "none of these");
        let at_100k = limits.binding(100_000, 1000.0);
        assert!(at_100k.starts_with("open files"), "{at_100k}");
        assert!(at_100k.contains("4 addresses"), "{at_100k}");
        assert!(!at_100k.contains("nr_open"), "{at_100k}");
        let at_1m = limits.binding(1_000_000, 30_000.0);
        assert!(at_1m.contains("memory"), "{at_1m}");
    }
}
