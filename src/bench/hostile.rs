//! The hostile-clients scenario: every model in the registry, attacked the
//! same five ways, a fresh server for each attack.
//!
//! Each server bounds what one connection can cost (the contract,
//! book/contract.md, clauses 5 and 6); an attacker opens many. The five
//! attacks are the cheap ones: connections that send nothing, connections
//! that trickle one byte at a time and never finish a message (slowloris),
//! connections that each send most of a maximum-size message and stop,
//! connections that pipeline messages and never read an ack, and as many
//! connections as one process may open. The servers run with short
//! deadlines and a small buffer budget, so that every defence has the time
//! and the reason to fire within a few seconds.
//!
//! The attackers are one thread of non-blocking sockets on epoll, like the
//! load [`driver`](super::driver); they read whatever the server answers
//! and count the `err` replies, which say which defence turned them away.
//! From the moment the attackers begin to connect until the attack ends,
//! ordinary clients come one after another, each on a fresh connection (the
//! slow-clients scenario's [`first_ack`](slow_clients::first_ack)): one
//! message, its `ack` timed. One client at one instant would show whatever
//! the server happened to be doing then; the series shows the worst of it.
//! Meanwhile the server's resident memory is sampled for its peak.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use harness::conformance::set_limit;
use harness::ServerProcess;
use nix::errno::Errno;
use nix::sys::epoll::{
    Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout,
};
use nix::sys::socket::{setsockopt, sockopt};

use super::driver::start_connect;
use super::report::{csv_text, median};
use super::slow_clients::{self, ack_time, seconds, FirstAck};
use super::{probe, Bench, WORKERS};
use crate::models::{Model, MODELS};

/// The attacks, in the tables' order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// Connections that connect and send nothing.
    Silent,
    /// Slowloris: one byte every so often, never an ETX.
    Trickle,
    /// Most of a maximum-size message each, then nothing.
    Partial,
    /// Pipelined messages, acks never read.
    Unread,
    /// As many connections as this process may open.
    Flood,
}

impl Attack {
    /// Every attack, in order.
    pub const ALL: [Attack; 5] = [
        Attack::Silent,
        Attack::Trickle,
        Attack::Partial,
        Attack::Unread,
        Attack::Flood,
    ];

    /// Its name in the tables.
    pub fn name(self) -> &'static str {
        match self {
            Attack::Silent => "silent connections",
            Attack::Trickle => "trickling messages",
            Attack::Partial => "partial messages",
            Attack::Unread => "unread acks",
            Attack::Flood => "connection flood",
        }
    }

    /// Its short name, for file names and the CSV.
    pub fn slug(self) -> &'static str {
        match self {
            Attack::Silent => "silent",
            Attack::Trickle => "trickle",
            Attack::Partial => "partial",
            Attack::Unread => "unread",
            Attack::Flood => "flood",
        }
    }
}

/// Descriptors this process keeps besides a connection flood: the
/// ordinary clients, the epoll instance, the server's pipes, the bar.
const SPARE_DESCRIPTORS: u64 = 100;

/// Connects in progress at once. More only overflow the listen backlog,
/// and a dropped SYN is sent again a second later.
const MAX_CONNECTING: usize = 256;

/// The connect phase is over when no connect has completed for this
/// long: the rest wait in a full backlog for a server that is not
/// accepting.
const CONNECT_STALL: Duration = Duration::from_millis(500);

/// How often the attackers' thread looks up from epoll: to send the
/// trickling bytes on time and to notice that the attack is over.
const TICK: Duration = Duration::from_millis(5);

/// How often the server's memory is sampled during an attack.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// How long the ordinary client waits for its ack after the attack: the
/// server must still serve once the attackers are gone.
const AFTER_WAIT: Duration = Duration::from_secs(2);

/// The pause between one ordinary client's end and the next one's start:
/// short, so that no stall of the server falls between two of them
/// unseen, yet long enough that they do not become a load of their own.
const GAP: Duration = Duration::from_millis(20);

/// The receive buffer the unread attackers ask for (the kernel doubles
/// it, and never goes below its minimum).
const UNREAD_WINDOW: usize = 4096;

/// Bytes of each reply kept to classify it: the longest `err` reason fits.
const REPLY_KEPT: usize = 64;

/// The goal for the partial-message flood, for the event loops: peak
/// resident memory at most the buffer budget plus this...
const GOAL_HEADROOM: u64 = 32 << 20;
/// ...and every ordinary client acked within this.
const GOAL_ACK: Duration = Duration::from_millis(100);

/// The sizes of one run: the full attack or the smoke version.
#[derive(Debug, Clone)]
struct Sizes {
    /// The servers' idle and message deadlines (`--idle-timeout-ms`,
    /// `--message-timeout-ms`).
    deadline: Duration,
    /// The servers' `--max-buffered-bytes`.
    budget: u64,
    /// Silent connections.
    silent: usize,
    /// Trickling connections: one per worker of the pools, which is all
    /// it takes to occupy them.
    trickle: usize,
    /// How often each trickling connection sends its next byte: well
    /// inside the idle deadline, so only the message deadline ends it.
    trickle_every: Duration,
    /// Partial-message connections, at most each model's
    /// `max_connections`.
    partial: usize,
    /// What each of them sends: most of the default 64 KiB maximum.
    partial_bytes: usize,
    /// Connections that never read their acks.
    unread: usize,
    /// The pipelined messages each of them sends, in bytes, at most.
    unread_bytes: usize,
    /// The connection flood's size, if less than this process may open.
    flood: Option<usize>,
    /// The server's open-file limit during the connection flood, below
    /// the flood, so that the server runs out first.
    flood_server_files: u64,
    /// The longest time spent opening the attackers.
    connect_budget: Duration,
    /// How long the attack runs once its connections are open.
    attack: Duration,
    /// How long each ordinary client waits for its ack.
    wait: Duration,
}

impl Sizes {
    fn full() -> Sizes {
        Sizes {
            deadline: Duration::from_millis(1000),
            budget: 16 << 20,
            silent: 1000,
            trickle: WORKERS as usize,
            trickle_every: Duration::from_millis(500),
            partial: 10_000,
            partial_bytes: 60_000,
            unread: WORKERS as usize,
            // Enough acks (1.5 times the bytes) to fill the server's
            // socket send buffer (up to 4 MiB here) and its output cap.
            unread_bytes: 8 << 20,
            flood: None,
            flood_server_files: 10_000,
            connect_budget: Duration::from_secs(4),
            attack: Duration::from_millis(2000),
            wait: Duration::from_millis(1700),
        }
    }

    /// The smoke version: every attack on every model, each defence with
    /// the time to fire, a fraction of a second a cell.
    fn quick() -> Sizes {
        Sizes {
            deadline: Duration::from_millis(50),
            budget: 1 << 20,
            silent: 20,
            trickle: WORKERS as usize,
            trickle_every: Duration::from_millis(15),
            partial: 50,
            partial_bytes: 60_000,
            unread: 5,
            unread_bytes: 256 << 10,
            flood: Some(500),
            flood_server_files: 100,
            // What a blocking server's backlog takes in a moment; more
            // would be its SYNs sent again, a second apart.
            connect_budget: Duration::from_millis(300),
            attack: Duration::from_millis(120),
            wait: Duration::from_millis(120),
        }
    }

    /// The attackers `attack` opens against `model`, with `open_files`
    /// descriptors in this process.
    fn attackers(
        &self,
        attack: Attack,
        model: &Model,
        open_files: u64,
    ) -> usize {
        match attack {
            Attack::Silent => self.silent,
            Attack::Trickle => self.trickle,
            Attack::Partial => self.partial.min(model.max_connections),
            Attack::Unread => self.unread,
            Attack::Flood => {
                let most = open_files.saturating_sub(SPARE_DESCRIPTORS);
                let most = usize::try_from(most).unwrap_or(usize::MAX);
                self.flood.map_or(most, |flood| flood.min(most))
            }
        }
    }

    /// The flags every server runs with here.
    fn flags(&self) -> Vec<String> {
        let ms = self.deadline.as_millis().to_string();
        [
            "--work-ms",
            "0",
            "--idle-timeout-ms",
            &ms,
            "--message-timeout-ms",
            &ms,
            "--max-buffered-bytes",
            &self.budget.to_string(),
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

/// The `err` replies and closes the attackers saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replies {
    /// `err idle timeout`: the idle deadline (clause 6).
    pub idle_timeout: usize,
    /// `err message timeout`: the message deadline (clause 8).
    pub message_timeout: usize,
    /// `err server busy`: evicted by the buffer budget (clause 9), or
    /// turned away by a full queue.
    pub busy: usize,
    /// Any other `err`, e.g. `err message too long`.
    pub other_err: usize,
    /// Closed by the server (or reset) without an `err`.
    pub closed: usize,
    /// Still open when the attack ended.
    pub open: usize,
}

impl Replies {
    /// Counts one connection's end by what it was told.
    fn count(&mut self, reply: &[u8]) {
        let reply = String::from_utf8_lossy(reply);
        if reply.starts_with("err idle timeout") {
            self.idle_timeout += 1;
        } else if reply.starts_with("err message timeout") {
            self.message_timeout += 1;
        } else if reply.starts_with("err server busy") {
            self.busy += 1;
        } else if reply.starts_with("err") {
            self.other_err += 1;
        } else {
            self.closed += 1;
        }
    }

    /// The table cell: every count that is not zero.
    fn cell(&self) -> String {
        let parts: Vec<String> = [
            ("idle timeout", self.idle_timeout),
            ("message timeout", self.message_timeout),
            ("server busy", self.busy),
            ("other err", self.other_err),
            ("closed, no err", self.closed),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(what, n)| format!("{what} {n}"))
        .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The ordinary clients of one cell, in the order they came.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ordinary {
    /// How each one fared.
    pub outcomes: Vec<FirstAck>,
}

impl Ordinary {
    /// The clients that came.
    pub fn clients(&self) -> usize {
        self.outcomes.len()
    }

    /// The times to ack of those that were acked.
    fn ack_times(&self) -> impl Iterator<Item = Duration> + '_ {
        self.outcomes.iter().filter_map(|outcome| match outcome {
            FirstAck::Acked(after) => Some(*after),
            _ => None,
        })
    }

    /// The clients that were acked.
    pub fn acked(&self) -> usize {
        self.ack_times().count()
    }

    /// The median time to ack of those acked.
    pub fn median(&self) -> Option<Duration> {
        let seconds = self.ack_times().map(|t| t.as_secs_f64());
        (self.acked() > 0).then(|| Duration::from_secs_f64(median(seconds)))
    }

    /// The longest time to ack of those acked.
    pub fn worst(&self) -> Option<Duration> {
        self.ack_times().max()
    }

    /// Whether every client was acked, none later than `goal`.
    pub fn all_acked_within(&self, goal: Duration) -> bool {
        self.acked() == self.clients()
            && self.worst().is_some_and(|worst| worst <= goal)
    }

    /// Those not acked, counted by `label(outcome)`, in the order each
    /// label first came.
    fn not_acked(
        &self,
        label: impl Fn(&FirstAck) -> String,
    ) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = Vec::new();
        let missed = self
            .outcomes
            .iter()
            .filter(|outcome| !matches!(outcome, FirstAck::Acked(_)));
        for outcome in missed {
            let label = label(outcome);
            match counts.iter_mut().find(|(seen, _)| *seen == label) {
                Some((_, n)) => *n += 1,
                None => counts.push((label, 1)),
            }
        }
        counts
    }

    /// The table cell, for clients that each waited up to `wait_ms`: the
    /// worst and the median time to ack and how many were acked; for
    /// those not acked, why (the caption gives the wait). A single client
    /// that was not acked waited for the whole of its wait, and the cell
    /// says so.
    pub fn cell(&self, wait_ms: u64) -> String {
        let (clients, acked) = (self.clients(), self.acked());
        let missed: Vec<String> = self
            .not_acked(|outcome| match outcome {
                FirstAck::NoAck => "no ack".into(),
                FirstAck::NotConnected => "not connected".into(),
                other => other.cell(wait_ms),
            })
            .into_iter()
            .map(|(label, n)| format!("{n} {label}"))
            .collect();
        let times = match (self.worst(), self.median()) {
            (Some(worst), Some(median)) => format!(
                "worst {} (median {}, {acked}/{clients} acked)",
                ack_time(worst),
                ack_time(median)
            ),
            _ => String::new(),
        };
        match (clients, acked) {
            (0, _) => "no client".into(),
            (1, 0) => {
                format!("{} (the only client)", self.outcomes[0].cell(wait_ms))
            }
            (_, 0) => format!("0/{clients} acked: {}", missed.join(", ")),
            _ if acked == clients => times,
            _ => format!("{times}; {}", missed.join(", ")),
        }
    }
}

/// What the attackers observed.
#[derive(Debug, Clone, Default)]
struct Seen {
    /// Connections that completed their handshake.
    connected: usize,
    /// Their ends.
    replies: Replies,
    /// Bytes the server's socket took from all of them.
    bytes_sent: u64,
    /// Why opening stopped early, if it did (e.g. out of descriptors).
    open_error: Option<String>,
}

/// One model under one attack.
#[derive(Debug, Clone)]
pub struct Row {
    /// The model's label.
    pub model: &'static str,
    /// Whether it is an event loop (the goal applies to those).
    pub event_loop: bool,
    /// The attack.
    pub attack: Attack,
    /// Attackers opened.
    pub attackers: usize,
    /// Attackers whose handshake completed.
    pub connected: usize,
    /// The ordinary clients during the attack.
    pub ordinary: Ordinary,
    /// The wait of each, for the table cell.
    pub wait_ms: u64,
    /// The server's resident memory just before the attack.
    pub rss_before_kib: u64,
    /// Its peak during the attack (sampled every [`SAMPLE_EVERY`]).
    pub peak_rss_kib: u64,
    /// Server CPU over the attack, in percent of one core.
    pub cpu_percent: f64,
    /// What the attackers were told.
    pub replies: Replies,
    /// Bytes the server took from the attackers, in all.
    pub bytes_sent: u64,
    /// The server process was still running after the attack.
    pub survived: bool,
    /// A new client was acked after the attack.
    pub serves_after: bool,
    /// Why the cell has no measurement, or how it was cut short.
    pub note: Option<String>,
}

impl Row {
    fn new(model: &Model, attack: Attack, attackers: usize) -> Row {
        Row {
            model: model.label,
            event_loop: model.event_loop,
            attack,
            attackers,
            connected: 0,
            ordinary: Ordinary::default(),
            wait_ms: 0,
            rss_before_kib: 0,
            peak_rss_kib: 0,
            cpu_percent: 0.0,
            replies: Replies::default(),
            bytes_sent: 0,
            survived: false,
            serves_after: false,
            note: None,
        }
    }
}

/// Runs every attack against every chosen model and writes
/// `hostile.{csv,md}` and `hostile-<attack>.md` into `out`.
///
/// # Errors
///
/// If a file cannot be written. A server that fails is a row that says so.
pub(super) fn run(
    bench: &Bench<'_>,
    out: &Path,
    open_files: u64,
) -> io::Result<()> {
    let options = bench.options;
    let sizes = if options.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let chosen: Vec<&Model> = MODELS
        .iter()
        .filter(|m| {
            options.models.is_empty()
                || options.models.iter().any(|n| n == m.name)
        })
        .collect();
    bench
        .bar
        .inc_length((chosen.len() * Attack::ALL.len()) as u64);
    let began = Instant::now();
    let mut rows = Vec::new();
    for model in &chosen {
        let available = bench.available(model);
        for attack in Attack::ALL {
            let attackers = sizes.attackers(attack, model, open_files);
            bench.step(format!(
                "hostile: {} under {} ({attackers})",
                model.name,
                attack.name()
            ));
            let row = match &available {
                Ok(()) => under_attack(bench, model, attack, attackers, &sizes),
                Err(why) => Row {
                    note: Some(format!("unavailable: {why}")),
                    ..Row::new(model, attack, attackers)
                },
            };
            rows.push(row);
            bench.bar.inc(1);
        }
    }
    fs::create_dir_all(out)?;
    fs::write(out.join("hostile.csv"), csv(&rows))?;
    let took = began.elapsed();
    let pinning = bench.pinning.describe();
    let overview = overview(&rows, &sizes, &pinning, took);
    fs::write(out.join("hostile.md"), overview)?;
    for attack in Attack::ALL {
        let name = format!("hostile-{}.md", attack.slug());
        let table = attack_table(&rows, attack, &sizes, &pinning);
        fs::write(out.join(name), table)?;
    }
    Ok(())
}

/// One cell: a fresh server, `attackers` connections attacking it,
/// ordinary clients timed while they do, and the server checked after.
fn under_attack(
    bench: &Bench<'_>,
    model: &Model,
    attack: Attack,
    attackers: usize,
    sizes: &Sizes,
) -> Row {
    let mut row = Row::new(model, attack, attackers);
    row.wait_ms = sizes.wait.as_millis() as u64;
    let flags = sizes.flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut server = match bench.start(model, None, &flags) {
        Ok(server) => server,
        Err(e) => {
            row.note = Some(format!("start: {e}"));
            return row;
        }
    };
    if attack == Attack::Flood {
        // The server raised its limit to the hard limit, the one this
        // process has; lowered, it runs out of descriptors first.
        for pid in server.group_pids() {
            let limit = Some(sizes.flood_server_files);
            if let Err(e) = set_limit(pid, libc::RLIMIT_NOFILE, limit) {
                row.note = Some(format!("cannot lower its limit: {e}"));
            }
        }
    }
    // One session first, so that what is allocated once (a runtime,
    // reused buffers) is in the baseline, not in the attack's peak.
    let _ = probe(&server);
    let before = server.usage();
    row.rss_before_kib = before.rss_bytes / 1024;
    let mut peak = before.rss_bytes;
    let stop = Arc::new(AtomicBool::new(false));
    let (opened, established) = mpsc::channel();
    let swarm = {
        let (addr, stop, sizes) =
            (server.addr(), Arc::clone(&stop), sizes.clone());
        thread::spawn(move || {
            Swarm::new(addr, attack, attackers, &sizes)?.run(&stop, &opened)
        })
    };
    // The ordinary clients start with the attackers' first connects: the
    // attackers' data arrives fastest while they are being opened.
    let over = Arc::new(AtomicBool::new(false));
    let (finished, ordinary) = mpsc::channel();
    {
        let (addr, wait, over) = (server.addr(), sizes.wait, Arc::clone(&over));
        // The receiver waits for this until the attack is over.
        thread::spawn(move || {
            let _ = finished.send(ordinary_clients(addr, wait, &over));
        });
    }
    // Open, or the attackers' thread ended early (its error is below).
    let opening = Instant::now() + sizes.connect_budget * 2;
    watch(&server, &mut peak, opening, &established);
    let started = Instant::now();
    let cpu_before = server.usage().cpu;
    // The attackers are open; `established` says no more, unless their
    // thread fails, which ends the attack early.
    watch(&server, &mut peak, started + sizes.attack, &established);
    // No client starts after this; the one under way, if any, is timed
    // to its end with the attackers still there, within its wait.
    over.store(true, Ordering::Relaxed);
    let last = Instant::now() + sizes.wait + SAMPLE_EVERY;
    let outcomes = watch(&server, &mut peak, last, &ordinary)
        .or_else(|| ordinary.recv().ok());
    let elapsed = started.elapsed();
    let cpu = server.usage().cpu.saturating_sub(cpu_before);
    row.cpu_percent = cpu.as_secs_f64() / elapsed.as_secs_f64() * 100.0;
    row.peak_rss_kib = peak / 1024;
    row.ordinary.outcomes =
        outcomes.unwrap_or_else(|| vec![FirstAck::Failed("panicked".into())]);
    stop.store(true, Ordering::Relaxed);
    match swarm.join() {
        Ok(Ok(seen)) => {
            row.connected = seen.connected;
            row.replies = seen.replies;
            row.bytes_sent = seen.bytes_sent;
            if let Some(why) = seen.open_error {
                row.note = Some(format!("opening stopped: {why}"));
            }
        }
        Ok(Err(e)) => row.note = Some(format!("attackers: {e}")),
        Err(_) => row.note = Some("attackers panicked".into()),
    }
    // The attackers are gone (reset): the server should be serving.
    row.survived = matches!(server.wait_timeout(Duration::ZERO), Ok(None));
    row.serves_after = row.survived
        && matches!(
            slow_clients::first_ack(server.addr(), AFTER_WAIT),
            FirstAck::Acked(_)
        );
    row
}

/// Ordinary clients against `addr`, one after another and [`GAP`] apart,
/// until `over`: each connects, sends one message and waits up to `wait`
/// for its `ack`. The first always comes; the one under way when `over`
/// is set finishes its wait.
fn ordinary_clients(
    addr: SocketAddr,
    wait: Duration,
    over: &AtomicBool,
) -> Vec<FirstAck> {
    let mut outcomes = Vec::new();
    loop {
        outcomes.push(slow_clients::first_ack(addr, wait));
        if over.load(Ordering::Relaxed) {
            return outcomes;
        }
        thread::sleep(GAP);
        if over.load(Ordering::Relaxed) {
            return outcomes;
        }
    }
}

/// Samples the server's resident memory every [`SAMPLE_EVERY`] into
/// `peak` until `until` passes, or until `event` delivers (returned) or
/// its sender is gone (its thread ended): whichever comes first. Between
/// samples it waits on `event`, so an event ends the wait at once.
fn watch<T>(
    server: &ServerProcess,
    peak: &mut u64,
    until: Instant,
    event: &mpsc::Receiver<T>,
) -> Option<T> {
    loop {
        *peak = (*peak).max(server.usage().rss_bytes);
        let now = Instant::now();
        if now >= until {
            return None;
        }
        match event.recv_timeout(SAMPLE_EVERY.min(until - now)) {
            Ok(value) => return Some(value),
            Err(RecvTimeoutError::Disconnected) => return None,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// One attacking connection.
#[derive(Debug)]
struct Attacker {
    stream: TcpStream,
    connected: bool,
    /// Bytes of the payload the server's socket has taken.
    sent: usize,
    /// The start of what the server answered.
    reply: Vec<u8>,
}

/// Every attacking connection, driven from one thread.
struct Swarm {
    addr: SocketAddr,
    attack: Attack,
    count: usize,
    epoll: Epoll,
    slots: Vec<Option<Attacker>>,
    connecting: usize,
    /// What the partial and unread attackers send, each from its start.
    payload: Vec<u8>,
    trickle_every: Duration,
    connect_budget: Duration,
    seen: Seen,
}

impl Swarm {
    fn new(
        addr: SocketAddr,
        attack: Attack,
        count: usize,
        sizes: &Sizes,
    ) -> io::Result<Swarm> {
        let payload = match attack {
            // Never an ETX: the message stays unfinished.
            Attack::Partial => vec![b'x'; sizes.partial_bytes],
            // One-byte messages back to back: three bytes of ack owed
            // for every two bytes sent.
            Attack::Unread => b"x\x03".repeat(sizes.unread_bytes / 2),
            Attack::Silent | Attack::Trickle | Attack::Flood => Vec::new(),
        };
        Ok(Swarm {
            addr,
            attack,
            count,
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            slots: Vec::with_capacity(count),
            connecting: 0,
            payload,
            trickle_every: sizes.trickle_every,
            connect_budget: sizes.connect_budget,
            seen: Seen::default(),
        })
    }

    /// Opens the attackers, says so on `established` once they are open
    /// (or cannot be), and attacks until `stop`; then resets every
    /// connection still open, so that none lingers in TIME_WAIT.
    fn run(
        mut self,
        stop: &AtomicBool,
        established: &mpsc::Sender<()>,
    ) -> io::Result<Seen> {
        let started = Instant::now();
        let mut last_progress = started;
        let mut opening = true;
        let mut next_byte = started + self.trickle_every;
        let mut events = vec![EpollEvent::empty(); 1024];
        let tick = EpollTimeout::try_from(TICK)
            .expect("a few milliseconds fit an epoll timeout");
        // Until told to stop, and never before the opening is over.
        while opening || !stop.load(Ordering::Relaxed) {
            if opening {
                self.open_more();
                let all_tried = self.slots.len() == self.count
                    || self.seen.open_error.is_some();
                let done = all_tried
                    && (self.connecting == 0
                        || last_progress.elapsed() >= CONNECT_STALL);
                if done || started.elapsed() >= self.connect_budget {
                    opening = false;
                    // The receiver may have stopped waiting; no matter.
                    let _ = established.send(());
                }
            }
            let n = match self.epoll.wait(&mut events, tick) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            for event in &events[..n] {
                let slot = event.data() as usize;
                if self.on_event(slot, event.events()) {
                    last_progress = Instant::now();
                }
            }
            if self.attack == Attack::Trickle && Instant::now() >= next_byte {
                next_byte += self.trickle_every;
                self.trickle();
            }
        }
        for slot in 0..self.slots.len() {
            if let Some(attacker) = self.slots[slot].take() {
                self.seen.replies.open += 1;
                let _ = client::connection::reset(attacker.stream);
            }
        }
        Ok(self.seen)
    }

    /// Starts connects until [`MAX_CONNECTING`] are in progress.
    fn open_more(&mut self) {
        while self.connecting < MAX_CONNECTING
            && self.slots.len() < self.count
            && self.seen.open_error.is_none()
        {
            let slot = self.slots.len() as u64;
            // Writable means connected (or failed).
            let interest = EpollFlags::EPOLLOUT | EpollFlags::EPOLLIN;
            let opened = start_connect(self.addr).and_then(|stream| {
                if self.attack == Attack::Unread {
                    // A small window, as a slow reader advertises: the
                    // acks pile up in the server, not in our kernel.
                    setsockopt(&stream, sockopt::RcvBuf, &UNREAD_WINDOW)?;
                }
                let event = EpollEvent::new(interest, slot);
                self.epoll.add(stream.as_fd(), event)?;
                Ok(stream)
            });
            match opened {
                Ok(stream) => {
                    self.slots.push(Some(Attacker {
                        stream,
                        connected: false,
                        sent: 0,
                        reply: Vec::new(),
                    }));
                    self.connecting += 1;
                }
                // Out of descriptors or ports: the attack is as big as
                // this machine lets one process make it.
                Err(e) => self.seen.open_error = Some(e.to_string()),
            }
        }
    }

    /// Handles readiness of `slot`; true if a connect completed.
    fn on_event(&mut self, slot: usize, flags: EpollFlags) -> bool {
        let Some(attacker) = self.slots[slot].as_mut() else {
            return false;
        };
        if !attacker.connected {
            match attacker.stream.take_error() {
                Ok(None) => {}
                // Refused or reset before the handshake finished.
                Ok(Some(_)) | Err(_) => {
                    self.connecting -= 1;
                    self.end(slot);
                    return false;
                }
            }
            attacker.connected = true;
            self.connecting -= 1;
            self.seen.connected += 1;
            self.set_interest(slot);
            if self.attack == Attack::Trickle {
                self.send_byte(slot);
            }
            self.send_payload(slot);
            return true;
        }
        if flags.contains(EpollFlags::EPOLLOUT) {
            self.send_payload(slot);
        }
        let readable = EpollFlags::EPOLLIN
            | EpollFlags::EPOLLRDHUP
            | EpollFlags::EPOLLHUP
            | EpollFlags::EPOLLERR;
        if flags.intersects(readable) {
            self.receive(slot);
        }
        false
    }

    /// What a connected attacker waits for: replies (the unread attack
    /// only the end of the stream: it never reads), and room to send while
    /// it has payload left.
    fn set_interest(&mut self, slot: usize) {
        let Some(attacker) = self.slots[slot].as_ref() else {
            return;
        };
        let mut interest = if self.attack == Attack::Unread {
            // Not the acks; only the server's end of the stream.
            EpollFlags::EPOLLRDHUP
        } else {
            EpollFlags::EPOLLIN
        };
        if attacker.sent < self.payload.len() {
            interest |= EpollFlags::EPOLLOUT;
        }
        let mut event = EpollEvent::new(interest, slot as u64);
        if let Err(e) = self.epoll.modify(attacker.stream.as_fd(), &mut event) {
            self.seen.open_error.get_or_insert(format!("epoll: {e}"));
        }
    }

    /// Sends as much of the payload as the socket takes now.
    fn send_payload(&mut self, slot: usize) {
        let Some(attacker) = self.slots[slot].as_mut() else {
            return;
        };
        let had = attacker.sent;
        while attacker.sent < self.payload.len() {
            match attacker.stream.write(&self.payload[attacker.sent..]) {
                Ok(n) => attacker.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // Closed by the server: what it said is in the receive
                // buffer, unless this attacker never reads.
                Err(_) => {
                    self.seen.bytes_sent += (attacker.sent - had) as u64;
                    return self.receive(slot);
                }
            }
        }
        self.seen.bytes_sent += (attacker.sent - had) as u64;
        if attacker.sent == self.payload.len() && had < attacker.sent {
            self.set_interest(slot);
        }
    }

    /// One more byte from every trickling attacker.
    fn trickle(&mut self) {
        for slot in 0..self.slots.len() {
            if self.slots[slot].as_ref().is_some_and(|a| a.connected) {
                self.send_byte(slot);
            }
        }
    }

    fn send_byte(&mut self, slot: usize) {
        let Some(attacker) = self.slots[slot].as_mut() else {
            return;
        };
        match attacker.stream.write(b"x") {
            Ok(n) => self.seen.bytes_sent += n as u64,
            // A full buffer: the server is not reading; try next time.
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => self.receive(slot),
        }
    }

    /// Reads what the server says, keeping its start; at the end of the
    /// stream (or a reset) the attacker is done.
    fn receive(&mut self, slot: usize) {
        let Some(attacker) = self.slots[slot].as_mut() else {
            return;
        };
        if self.attack == Attack::Unread {
            return self.end(slot);
        }
        let mut buffer = [0; 1024];
        loop {
            match attacker.stream.read(&mut buffer) {
                Ok(0) => return self.end(slot),
                Ok(n) => {
                    let room = REPLY_KEPT.saturating_sub(attacker.reply.len());
                    attacker.reply.extend_from_slice(&buffer[..n.min(room)]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return self.end(slot),
            }
        }
    }

    /// Counts how `slot` ended and closes it with a reset: no TIME_WAIT
    /// left behind to eat the next cell's ports.
    fn end(&mut self, slot: usize) {
        if let Some(attacker) = self.slots[slot].take() {
            if attacker.connected {
                self.seen.replies.count(&attacker.reply);
            }
            let _ = client::connection::reset(attacker.stream);
        }
    }
}

fn csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "model,attack,attackers,connected,clients,acked,median_ack_ms,\
         worst_ack_ms,not_acked,rss_before_kib,peak_rss_kib,cpu_percent,idle_timeout,\
         message_timeout,server_busy,other_err,closed_no_err,still_open,\
         bytes_sent,survived,serves_after,note\n",
    );
    let ms = |t: Option<Duration>| {
        t.map_or_else(String::new, |t| format!("{:.2}", t.as_secs_f64() * 1e3))
    };
    for r in rows {
        let o = &r.ordinary;
        // Why the others were not acked: `no ack 2; refused: err server
        // busy 1`.
        let not_acked: Vec<String> = o
            .not_acked(|outcome| match outcome {
                FirstAck::Acked(_) => "ack".into(),
                FirstAck::NoAck => "no ack".into(),
                FirstAck::NotConnected => "not connected".into(),
                FirstAck::Refused(reply) => {
                    format!("refused: {}", reply.trim())
                }
                FirstAck::Failed(why) => format!("failed: {why}"),
            })
            .into_iter()
            .map(|(label, n)| format!("{} {n}", csv_text(&label)))
            .collect();
        let p = &r.replies;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{:.1},{},{},{},{},{},{},{},{},{},{}",
            r.model,
            r.attack.slug(),
            r.attackers,
            r.connected,
            o.clients(),
            o.acked(),
            ms(o.median()),
            ms(o.worst()),
            not_acked.join("; "),
            r.rss_before_kib,
            r.peak_rss_kib,
            r.cpu_percent,
            p.idle_timeout,
            p.message_timeout,
            p.busy,
            p.other_err,
            p.closed,
            p.open,
            r.bytes_sent,
            r.survived,
            r.serves_after,
            csv_text(r.note.as_deref().unwrap_or("")),
        );
    }
    out
}

/// The flags line under every table.
fn ran_with(sizes: &Sizes, pinning: &str) -> String {
    format!(
        "Servers ran with `{}` and {WORKERS} workers where the model has \
         them; one fresh server per cell; pinning: {pinning}. Each attack \
         lasted {} once its connections were open. Ordinary clients came \
         one after another, {} ms apart, from the attackers' first connect \
         to the attack's end, each on a new connection with one message, \
         waiting up to {} for its ack.",
        sizes.flags().join(" "),
        seconds(sizes.attack.as_millis() as u64),
        GAP.as_millis(),
        seconds(sizes.wait.as_millis() as u64),
    )
}

/// What each attack did, for the captions.
fn describe(attack: Attack, sizes: &Sizes) -> String {
    match attack {
        Attack::Silent => "connections that connect and send nothing".into(),
        Attack::Trickle => format!(
            "connections that each send one byte every {} and never an ETX",
            seconds(sizes.trickle_every.as_millis() as u64)
        ),
        Attack::Partial => format!(
            "connections that each send {} bytes without an ETX, then \
             nothing (at most each model's benchmark connection count)",
            sizes.partial_bytes
        ),
        Attack::Unread => format!(
            "connections that each pipeline up to {} KiB of one-byte \
             messages and never read an ack",
            sizes.unread_bytes / 1024
        ),
        Attack::Flood => format!(
            "connections that send nothing, up to this process's open-file \
             limit, with the server's own lowered to {}",
            sizes.flood_server_files
        ),
    }
}

/// The chapter's centre: for every model and attack, how the ordinary
/// clients fared and the server's peak memory.
fn overview(
    rows: &[Row],
    sizes: &Sizes,
    pinning: &str,
    took: Duration,
) -> String {
    let mut out = String::from("| model |");
    for attack in Attack::ALL {
        let _ = write!(out, " {} |", attack.name());
    }
    out.push_str("\n| --- |");
    out.push_str(&" --- |".repeat(Attack::ALL.len()));
    out.push('\n');
    let models = super::report::distinct(rows.iter().map(|r| r.model));
    for model in models {
        let _ = write!(out, "| {model} |");
        for attack in Attack::ALL {
            let cell = rows
                .iter()
                .find(|r| r.model == model && r.attack == attack)
                .map_or_else(|| "-".into(), overview_cell);
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "\nEach cell: the ordinary clients' worst and median time to ack \
         during the attack, and how many of them were acked (the others: \
         no ack or not connected within the wait, or refused); the \
         server's peak resident memory; `down` if the server exited, \
         `stuck` if it did not ack a new client within {} after the \
         attackers left. {} The whole scenario took {:.0} s.",
        seconds(AFTER_WAIT.as_millis() as u64),
        ran_with(sizes, pinning),
        took.as_secs_f64()
    );
    out
}

fn overview_cell(row: &Row) -> String {
    if let Some(why) = row.note.as_deref().filter(|_| row.peak_rss_kib == 0) {
        return format!("failed: {}", why.replace('|', "/"));
    }
    let after = if !row.survived {
        ", **down**"
    } else if !row.serves_after {
        ", **stuck**"
    } else {
        ""
    };
    format!(
        "{}; {}{after}",
        row.ordinary.cell(row.wait_ms),
        mib(row.peak_rss_kib)
    )
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// One attack's table: a row per model, every measurement.
fn attack_table(
    rows: &[Row],
    attack: Attack,
    sizes: &Sizes,
    pinning: &str,
) -> String {
    let mut out = String::from(
        "| model | attackers (connected) | ordinary clients | peak RSS \
         (before) | server CPU | defences fired | after |\n\
         | --- | ---: | --- | ---: | ---: | --- | --- |\n",
    );
    let mine: Vec<&Row> = rows.iter().filter(|r| r.attack == attack).collect();
    for r in &mine {
        let after = match (r.survived, r.serves_after) {
            (false, _) => "**down**",
            (true, false) => "**stuck**",
            (true, true) => "serves",
        };
        let _ = writeln!(
            out,
            "| {} | {} ({}) | {} | {} ({}) | {:.0}% | {} | {after} |",
            r.model,
            r.attackers,
            r.connected,
            r.ordinary.cell(r.wait_ms),
            mib(r.peak_rss_kib),
            mib(r.rss_before_kib),
            r.cpu_percent,
            r.replies.cell(),
        );
    }
    let _ = writeln!(
        out,
        "\nAttackers: {}. Server CPU: user + system over the attack, in \
         percent of one core. Defences fired: how the attackers' \
         connections ended. {}",
        describe(attack, sizes),
        ran_with(sizes, pinning)
    );
    if attack == Attack::Unread {
        out.push_str(&unread_note(&mine, sizes));
    }
    if attack == Attack::Partial {
        out.push_str(&partial_goal(&mine, sizes));
    }
    for r in mine.iter().filter(|r| r.note.is_some()) {
        let note = r.note.as_deref().unwrap_or_default();
        let _ = writeln!(out, "\n{}: {}", r.model, note.replace('|', "/"));
    }
    out
}

/// The unread attack's evidence: how much of its pipeline each server
/// took before it stopped reading.
fn unread_note(rows: &[&Row], sizes: &Sizes) -> String {
    let mut out = format!(
        "\nBytes the server took from each attacker (mean), of the {} KiB \
         each would send:",
        sizes.unread_bytes / 1024
    );
    for r in rows {
        let each = r.bytes_sent / r.connected.max(1) as u64;
        let _ = write!(out, " {} {} KiB;", r.model, each / 1024);
    }
    out.pop();
    out.push_str(".\n");
    out
}

/// The goal for the partial-message flood: each event loop's peak memory
/// within the budget plus [`GOAL_HEADROOM`], and every ordinary client
/// acked within [`GOAL_ACK`]: the worst counts.
fn partial_goal(rows: &[&Row], sizes: &Sizes) -> String {
    let limit = (sizes.budget + GOAL_HEADROOM) / 1024;
    let mut out = format!(
        "\nGoal for the event loops: peak RSS under the budget + {} MiB \
         ({}) and every ordinary client acked within {} ms.",
        GOAL_HEADROOM >> 20,
        mib(limit),
        GOAL_ACK.as_millis()
    );
    for r in rows.iter().filter(|r| r.event_loop) {
        let acked = r.ordinary.all_acked_within(GOAL_ACK);
        let met = acked && r.peak_rss_kib <= limit && r.peak_rss_kib > 0;
        let verdict = if met { "met" } else { "**not met**" };
        let worst = match r.ordinary.worst() {
            Some(worst) if r.ordinary.acked() == r.ordinary.clients() => {
                format!("worst {}", ack_time(worst))
            }
            _ => {
                format!("{}/{} acked", r.ordinary.acked(), r.ordinary.clients())
            }
        };
        let _ = write!(
            out,
            " {} at {} connections, {worst}: {verdict}.",
            r.model, r.connected
        );
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each `err` reason the contract names is counted as its defence;
    /// anything else that ends a connection is a close.
    #[test]
    fn replies_are_counted_by_their_reason() {
        let mut replies = Replies::default();
        for reply in [
            &b"err idle timeout"[..],
            b"err message timeout",
            b"err server busy",
            b"err server busy",
            b"err message too long",
            b"",
            b"ack",
        ] {
            replies.count(reply);
        }
        let expected = Replies {
            idle_timeout: 1,
            message_timeout: 1,
            busy: 2,
            other_err: 1,
            closed: 2,
            open: 0,
        };
        assert_eq!(replies, expected);
        assert_eq!(
            replies.cell(),
            "idle timeout 1, message timeout 1, server busy 2, other err 1, \
             closed, no err 2"
        );
        assert_eq!(Replies::default().cell(), "none");
    }

    /// A series is summed up by the times of those acked - the median of
    /// an even count is the mean of the middle two - and those not acked
    /// are counted by why; one client not acked is said to be alone.
    #[test]
    fn ordinary_clients_are_summed_up() {
        let ms = Duration::from_millis;
        let acked = |t: u64| FirstAck::Acked(ms(t));
        let all = Ordinary {
            outcomes: vec![acked(4), acked(1), acked(12), acked(2)],
        };
        assert_eq!((all.clients(), all.acked()), (4, 4));
        assert_eq!(all.median(), Some(ms(3)));
        assert_eq!(all.worst(), Some(ms(12)));
        assert!(all.all_acked_within(ms(12)));
        assert!(!all.all_acked_within(ms(11)));
        assert_eq!(all.cell(1700), "worst 12 ms (median 3.00 ms, 4/4 acked)");

        let some = Ordinary {
            outcomes: vec![
                acked(2),
                FirstAck::NoAck,
                acked(30),
                FirstAck::NoAck,
                FirstAck::Refused("err server busy\n".into()),
            ],
        };
        assert_eq!(some.median(), Some(ms(16)));
        assert!(!some.all_acked_within(ms(100)));
        assert_eq!(
            some.cell(1700),
            "worst 30 ms (median 16 ms, 2/5 acked); 2 no ack, 1 refused: \
             `err server busy`"
        );

        let alone = Ordinary {
            outcomes: vec![FirstAck::NotConnected],
        };
        assert_eq!((alone.median(), alone.worst()), (None, None));
        assert!(!alone.all_acked_within(ms(100)));
        assert_eq!(
            alone.cell(1700),
            "not connected in 1.7 s (the only client)"
        );
        let none = Ordinary {
            outcomes: vec![FirstAck::NotConnected, FirstAck::NoAck],
        };
        assert_eq!(none.cell(1700), "0/2 acked: 1 not connected, 1 no ack");
        assert!(!Ordinary::default().all_acked_within(ms(100)));
    }

    /// The partial flood is capped by each model's connection count, the
    /// connection flood by this process's descriptors.
    #[test]
    fn attackers_follow_the_model_and_the_limit() {
        let sizes = Sizes::full();
        let single = crate::models::find("ch01-single").expect("chapter 1");
        let epoll = crate::models::find("ch04-epoll").expect("chapter 4");
        assert_eq!(sizes.attackers(Attack::Partial, single, 20_000), 1000);
        assert_eq!(sizes.attackers(Attack::Partial, epoll, 20_000), 10_000);
        assert_eq!(sizes.attackers(Attack::Flood, epoll, 20_000), 19_900);
        assert!(sizes.flood_server_files < 19_900);
    }
}
