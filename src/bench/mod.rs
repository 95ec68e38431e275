//! `server-models bench`: measures every chapter's server, side by side.
//!
//! Each server runs as its own process on 127.0.0.1 - this very binary,
//! re-executed as `server-models serve <chapter> ...`, as the tour does -
//! and is driven by the [`driver`] (many connections from one thread, on
//! epoll). Which models run, and how, comes from the registry
//! (`crate::models`). The server runs on one CPU and the driver on
//! another ([`pin`]). Three scenarios, as in the book's "Measuring the
//! models" chapter:
//!
//! 1. **Sessions with sleep work**: the seed's experiment scaled. `C`
//!    clients, 2 messages each, 50 ms of sleep per message: wall time
//!    and observed parallelism (`C x 2 x 50 ms / wall time`).
//! 2. **Sessions with spin work**: the same, burning CPU.
//! 3. **Zero work, closed loop** at 1 to 1,000 connections (10,000 for
//!    the event loops; each model's `max_connections`): messages/s,
//!    latency, server CPU, system calls and context switches per message,
//!    memory (from `/proc` and `strace -c -f`), and the client's own CPU.
//!
//! Plus the goal rounds: the event loops in turn, five rounds at each
//! goal's connection count, compared by median and range; the driver
//! against a minimal tokio load generator, in rounds too; the [`limit`]
//! scenario: every event loop holding connections up to the open-file
//! limit; the [`per_connection`] scenario: chapter 3's thread per
//! connection against its pool, up to 10,000 connections and at their
//! limits; the [`slow_clients`] scenario: one ordinary client behind K
//! connections that send nothing and K that send half a message; and the
//! [`idle_connections`] scenario: chapter 4's poll against its epoll, one
//! active client beside 0 to 10,000 idle connections; and the
//! [`hostile`] scenario: every model under five attacks.
//! Results go to `--out` as CSV, Markdown tables and SVG plots.

pub mod driver;
pub mod hostile;
pub mod idle_connections;
pub mod limit;
pub mod per_connection;
pub mod pin;
pub mod plot;
pub mod report;
pub mod slow_clients;
pub mod tokio_load;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use client::Connection;
use harness::{procfs, ServerProcess};
use indicatif::{ProgressBar, ProgressStyle};

use crate::models::{self, Model, MODELS};
use driver::{Load, Outcome, Percentiles, Until};
use report::{CheckRow, Machine, Report, SessionRow, SlowRow, Status, ZeroRow};
use slow_clients::{Crowd, FirstAck};

/// Where a full run's results go by default: the book's source tree.
pub const DEFAULT_OUT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/book/measurements");

/// Where a `--quick` run's results go by default: out of the book's way,
/// so a smoke run never overwrites the figures the book shows.
pub const QUICK_OUT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/target/bench-quick");

/// Workers (processes or threads) for the models that have them: the
/// servers' default, so the book's "steps of N" read with N = 5.
pub const WORKERS: u32 = 5;

/// Slow-clients scenario: the longest time spent opening one crowd.
/// Past the backlog of a server that accepts one connection now and then,
/// each further connect waits about a second for its SYN to be sent again.
const CROWD_BUDGET: Duration = Duration::from_secs(2);

/// The flags of `server-models bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// A short smoke run (under half a minute), for CI: tiny sweeps.
    #[arg(long)]
    pub quick: bool,

    /// Directory for the CSV, Markdown and SVG results [default: the
    /// book's `book/measurements`, or `target/bench-quick` with --quick].
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// Measure only these models (e.g. `ch04-epoll,ch05-tokio`).
    #[arg(long, value_delimiter = ',')]
    pub models: Vec<String>,

    /// Run only these scenarios (default: all of them).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub scenarios: Vec<Scenario>,

    /// Let the scheduler place the servers and the load generator
    /// anywhere, instead of on two CPUs of their own.
    #[arg(long)]
    pub no_pin: bool,
}
/// The parts of a run, for `--scenarios`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Scenario 1: sessions with sleep work.
    Sleep,
    /// Scenario 2: sessions with spin work.
    Spin,
    /// Scenario 3: zero work, closed loop.
    Zero,
    /// Every event loop at the open-file limit: memory per connection
    /// (also `idle`: the memory per idle connection comes from it).
    #[value(alias = "idle")]
    Limit,
    /// The driver against a minimal tokio load generator.
    Check,
    /// The event loops against each other, alternating rounds, for the
    /// goals.
    Goal,
    /// One ordinary client behind K silent and K half-message ones.
    SlowClients,
    /// Server CPU per message for one active client beside 0 to 10,000
    /// idle connections: poll against epoll.
    IdleConnections,
    /// A thread per connection against the pool, and at their limits.
    PerConnection,
    /// Every model under five attacks by hostile clients.
    Hostile,
    /// The goal rounds three times over, to show how far their medians
    /// move from one run to the next (not part of a run that names no
    /// scenario: it takes three times the goal rounds).
    Repeat,
}

impl Scenario {
    /// Every scenario, for a run that names none.
    pub const ALL: [Scenario; 10] = [
        Scenario::Sleep,
        Scenario::Spin,
        Scenario::Zero,
        Scenario::Limit,
        Scenario::Check,
        Scenario::Goal,
        Scenario::SlowClients,
        Scenario::IdleConnections,
        Scenario::PerConnection,
        Scenario::Hostile,
    ];
}

impl Options {
    fn wants(&self, scenario: Scenario) -> bool {
        if self.scenarios.is_empty() {
            Scenario::ALL.contains(&scenario)
        } else {
            self.scenarios.contains(&scenario)
        }
    }
}

/// The most of a measurement's time (a goal turn, a client check) the
/// hypervisor may take (its steal time, averaged over the machine's
/// CPUs), percent. In 600 goal turns on a busy host, up to 10% left
/// the servers' cost per message where it was; above 20%, one turn in
/// three cost 1.3 to 9 times as much, the server idle while its CPU or
/// the load generator's was stolen.
const STEAL_LIMIT_PERCENT: f64 = 10.0;

/// How many times the `repeat` scenario runs the goal rounds.
pub const REPEATS: usize = 3;

/// The sizes of one run: the full sweep or the smoke version.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Work per message in scenarios 1 and 2.
    pub work: Duration,
    /// Messages per client in scenarios 1 and 2.
    pub messages: u32,
    /// Client counts in scenario 1.
    pub clients: Vec<usize>,
    /// Client counts in scenario 2: fewer, since a model that spins one
    /// message at a time takes `clients x messages x work` of CPU.
    pub spin_clients: Vec<usize>,
    /// Connection counts in scenario 3 (capped per model).
    pub connections: Vec<usize>,
    /// Messages per session in scenario 3, before reconnecting.
    pub session_messages: u32,
    /// Scenario 3: time to connect and warm up before measuring.
    pub warmup: Duration,
    /// Scenario 3: the measured window.
    pub window: Duration,
    /// Scenario 3: after the window, a second run under `strace -c -f`
    /// for the system calls per message, this long after its warmup
    /// (`None`: no such pass).
    pub trace_window: Option<Duration>,
    /// The limit scenario: the most connections, below the open-file
    /// limit.
    pub limit_connections: usize,
    /// Connections for the driver-versus-tokio check.
    pub check_connections: usize,
    /// Connections at which the event loops are compared for the goals,
    /// in alternating rounds.
    pub goal_connections: Vec<usize>,
    /// Rounds of the goal comparisons and of the client check, the
    /// models taking turns; the median counts, and a difference counts
    /// only where the rounds' ranges do not overlap.
    pub rounds: usize,
    /// Goal rounds: the turns each model takes in one round, its server
    /// running beside the others' the whole round.
    pub turns: usize,
    /// Goal rounds: the time to connect and warm up at the start of each
    /// turn (at least [`opening`] the connections).
    pub turn_warmup: Duration,
    /// Goal rounds: the measured window of each turn.
    pub turn_window: Duration,
    /// Goal rounds and client check: how often a measurement is tried
    /// while the hypervisor takes more than [`STEAL_LIMIT_PERCENT`] of
    /// it; then it counts as failed. One try takes every run as it
    /// comes.
    pub turn_tries: usize,
    /// Slow-clients scenario: the values of K (the pool's edges,
    /// `WORKERS - 1` and `WORKERS`, are added).
    pub slow_counts: Vec<usize>,
    /// Slow-clients scenario: the servers' idle timeout, which is what
    /// ends a blocked case.
    pub slow_idle_timeout: Duration,
    /// Slow-clients scenario: how long the ordinary client waits for its
    /// ack before "no ack" is the answer.
    pub slow_wait: Duration,
    /// Per-connection scenario: the connection counts.
    pub per_connection: Vec<usize>,
    /// Per-connection scenario: clients in the burst at the limit.
    pub limit_burst: usize,
    /// Per-connection scenario: the threads the capped address space
    /// leaves room for.
    pub limit_threads: usize,
}

impl Plan {
    /// The full sweep the book's figures come from (under 10 minutes).
    pub fn full() -> Plan {
        Plan {
            // Enough to see the steps of 5 workers up to 50 clients; the
            // single server's 50 clients take 5 s of it per work kind.
            work: Duration::from_millis(50),
            messages: 2,
            clients: vec![1, 2, 5, 10, 20, 50],
            // Past 10, spin work only repeats what 10 shows: the cores
            // are full.
            spin_clients: vec![1, 2, 5, 10],
            connections: vec![1, 10, 100, 1000, 10_000],
            session_messages: 100,
            // One window per point: a figure to read, not to compare
            // (the goal rounds compare). The warmup opens up to 1,000
            // connections (see `opening`) and lets them settle.
            warmup: Duration::from_millis(300),
            window: Duration::from_secs(1),
            trace_window: Some(Duration::from_millis(300)),
            limit_connections: usize::MAX,
            check_connections: 100,
            goal_connections: vec![100, 1000],
            rounds: 5,
            // The host's speed wanders by tens of percent over seconds
            // and minutes, and a server's cost from one window to the
            // next as much: short turns, the models one after another,
            // put each model's windows beside epoll's, so that their
            // ratio cancels the wandering, and many of them average
            // what is left.
            turns: 5,
            turn_warmup: Duration::from_millis(50),
            turn_window: Duration::from_millis(200),
            // One more try: a stolen stretch often lasts longer than a
            // turn, and every try costs the sweep time.
            turn_tries: 2,
            slow_counts: vec![0, 1, 10, 100, 1000],
            // Short, so that the scenario takes well under a minute. A
            // slow connection holds a blocking server's worker for the
            // idle timeout plus the lingering close after `err idle
            // timeout` (up to `protocol::close::LINGER`, 500 ms, used in
            // full as our slow clients never close): 1 s. The wait lets
            // a blocking model show two such steps before it runs out.
            slow_idle_timeout: Duration::from_millis(500),
            slow_wait: Duration::from_millis(2500),
            per_connection: vec![100, 1000, 10_000],
            limit_burst: 1000,
            limit_threads: 100,
        }
    }

    /// The smoke version: every code path, a few seconds. Its figures
    /// only show that each point ran: its windows are too short to
    /// measure anything.
    pub fn quick() -> Plan {
        Plan {
            work: Duration::from_millis(10),
            messages: 2,
            clients: vec![1, 4],
            spin_clients: vec![1, 4],
            connections: vec![1, 10],
            session_messages: 20,
            warmup: Duration::from_millis(50),
            window: Duration::from_millis(100),
            trace_window: None,
            limit_connections: 200,
            check_connections: 10,
            goal_connections: vec![10],
            rounds: 2,
            turns: 2,
            turn_warmup: Duration::from_millis(30),
            turn_window: Duration::from_millis(50),
            // The smoke run's figures mean nothing anyway.
            turn_tries: 1,
            slow_counts: vec![0, 1],
            // Still shorter than one idle timeout plus the linger after
            // it: a blocked client is not acked within the wait.
            slow_idle_timeout: Duration::from_millis(100),
            slow_wait: Duration::from_millis(300),
            per_connection: vec![10, 50],
            limit_burst: 50,
            limit_threads: 5,
        }
    }

    /// The full sweep, or the smoke version with `--quick`.
    fn for_options(options: &Options) -> Plan {
        if options.quick {
            Plan::quick()
        } else {
            Plan::full()
        }
    }

    /// The points of scenarios 1 and 2, per model.
    fn session_points(&self) -> usize {
        self.clients.len() + self.spin_clients.len()
    }

    fn connections_for(&self, model: &Model) -> Vec<usize> {
        self.connections
            .iter()
            .copied()
            .filter(|&c| c <= model.max_connections)
            .collect()
    }
}

// ANCHOR: run
/// Runs every scenario against every model and writes the results.
///
/// # Errors
///
/// If the output cannot be written or the progress of the run itself
/// fails (e.g. epoll). A server that crashes or misbehaves is recorded
/// as such, not an error.
pub fn run(options: &Options) -> io::Result<()> {
    // The machine as it is, before pinning narrows what this process
    // sees of it.
    let machine = Machine::describe(options.quick);
    // Then, while this process has only its main thread, the pinning:
    // every thread started later inherits the CPU.
    let pinning = pin::Pinning::apply(!options.no_pin);
    // 10,000 connections need 10,000 descriptors on our side too; with
    // fewer, the big points fail and say so in the tables.
    let open_files = match protocol::limits::raise_open_files() {
        Ok((_, now)) => now,
        Err(e) => {
            eprintln!("bench: cannot raise the open file limit: {e}");
            // The usual default soft limit.
            1024
        }
    };
    let chosen: Vec<&Model> = MODELS
        .iter()
        .filter(|m| {
            options.models.is_empty()
                || options.models.iter().any(|n| n == m.name)
        })
        .collect();
    let bench = Bench::new(options, &chosen, open_files, pinning)?;
    let mut report = Report {
        machine: Machine {
            pinning: pinning.describe(),
            ..machine
        },
        ran: <Scenario as clap::ValueEnum>::value_variants()
            .iter()
            .copied()
            .filter(|s| options.wants(*s))
            .collect(),
        turn_tries: bench.plan.turn_tries,
        ..Report::default()
    };
    for model in &chosen {
        bench.sweep(model, &mut report);
    }
    bench.goal(&mut report);
    bench.repeat(&mut report);
    bench.client_check(&mut report);
    for model in &chosen {
        bench.slow_clients(model, &mut report);
    }
    if options.wants(Scenario::PerConnection) {
        for model in per_connection::chosen(&chosen) {
            bench.per_connection(
                model,
                &mut report.per_connection,
                &mut report.per_connection_limits,
            );
        }
    }
    let out = options.out.clone().unwrap_or_else(|| {
        PathBuf::from(if options.quick {
            QUICK_OUT
        } else {
            DEFAULT_OUT
        })
    });
    if options.wants(Scenario::IdleConnections) {
        idle_connections::run(&bench, &out, open_files)?;
    }
    if options.wants(Scenario::Limit) {
        report.limit = limit::run(&bench, &chosen, open_files);
    }
    if options.wants(Scenario::Hostile) {
        hostile::run(&bench, &out, open_files)?;
    }
    bench.bar.finish_with_message("done");
    report.write(&out)?;
    eprintln!("bench: results written to {}", out.display());
    Ok(())
}
// ANCHOR_END: run

/// One run in progress: what to measure, how, and the progress bar.
struct Bench<'o> {
    options: &'o Options,
    plan: Plan,
    /// This binary, which serves every model as `serve <chapter>`.
    program: PathBuf,
    /// The slow-clients scenario's values of K, capped by our open-file
    /// limit.
    crowds: Vec<usize>,
    /// Where the servers and the load run.
    pinning: pin::Pinning,
    /// Whether `strace` runs here, for the system calls per message.
    strace: bool,
    bar: ProgressBar,
}

impl<'o> Bench<'o> {
    /// Prepares a run of `chosen`, with a bar counting every point.
    fn new(
        options: &'o Options,
        chosen: &[&Model],
        open_files: u64,
        pinning: pin::Pinning,
    ) -> io::Result<Bench<'o>> {
        let plan = Plan::for_options(options);
        let crowds =
            slow_clients::crowd_sizes(&plan.slow_counts, WORKERS, open_files);
        let program = std::env::current_exe()?;
        let sweeps: usize = chosen
            .iter()
            .map(|m| 1 + plan.session_points() + plan.connections_for(m).len())
            .sum();
        let limit = if options.wants(Scenario::Limit) {
            limit::steps(chosen)
        } else {
            0
        };
        let goal_run =
            goal_models().count() * plan.goal_connections.len() * plan.rounds;
        let goal = goal_run * (1 + REPEATS);
        // The client check counts as two steps, one per generator.
        let per_connection = if options.wants(Scenario::PerConnection) {
            per_connection::steps(&plan, per_connection::chosen(chosen).len())
        } else {
            0
        };
        let steps = sweeps
            + limit
            + goal
            + 2
            + chosen.len() * crowds.len()
            + per_connection;
        // Steps take from a fraction of a second to a few seconds, so
        // the estimate of what is left settles after the first minute.
        let bar = ProgressBar::new(steps as u64).with_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} ~{eta} left: {msg}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        let strace = plan.trace_window.is_some() && strace_runs();
        Ok(Bench {
            options,
            plan,
            program,
            crowds,
            pinning,
            strace,
            bar,
        })
    }

    /// Scenarios 1 to 3 for one model: its sessions with sleep and spin
    /// work, then its zero-work sweep.
    fn sweep(&self, model: &Model, report: &mut Report) {
        let plan = &self.plan;
        self.step(format!("{}: starting", model.name));
        if let Err(why) = self.available(model) {
            let line = format!("{}: unavailable: {why}", model.name);
            // A hidden bar (stderr is not a terminal) prints nothing.
            if self.bar.is_hidden() {
                eprintln!("bench: {line}");
            } else {
                self.bar.println(line);
            }
            report.unavailable.push((model.label, why));
            self.bar.inc(1 + plan.session_points() as u64);
            self.bar.inc(plan.connections_for(model).len() as u64);
            return;
        }
        self.bar.inc(1);
        for (kind, scenario, counts) in [
            ("sleep", Scenario::Sleep, &plan.clients),
            ("spin", Scenario::Spin, &plan.spin_clients),
        ] {
            if !self.options.wants(scenario) {
                self.bar.inc(counts.len() as u64);
                continue;
            }
            for &clients in counts {
                self.step(format!(
                    "{}: {clients} clients, {kind} work",
                    model.name
                ));
                report.sessions.push(self.sessions(model, kind, clients));
                self.bar.inc(1);
            }
        }
        for connections in plan.connections_for(model) {
            if self.options.wants(Scenario::Zero) {
                self.step(format!(
                    "{}: {connections} connections, zero work",
                    model.name
                ));
                report.zero.push(self.zero_work(model, connections, true));
            }
            self.bar.inc(1);
        }
    }

    /// The book's event loop against the reference, in alternating rounds
    /// at each of the goal's connection counts.
    fn goal(&self, report: &mut Report) {
        let wanted = self.options.wants(Scenario::Goal);
        report.goal_rounds = self.goal_rounds(wanted, "goal");
    }

    /// The goal rounds again, [`REPEATS`] times, each run complete
    /// before the next begins: what a reader who runs the comparison
    /// again would get.
    fn repeat(&self, report: &mut Report) {
        let wanted = self.options.wants(Scenario::Repeat);
        report.repeats = (1..=REPEATS)
            .map(|run| self.goal_rounds(wanted, &format!("repeat {run}")))
            .filter(|rounds| !rounds.is_empty())
            .collect();
    }

    /// One run of the goal rounds: at each goal connection count,
    /// [`Plan::rounds`] rounds of [`Bench::goal_round`]. Counts the
    /// steps even when `wanted` is false, so that the bar's total holds.
    fn goal_rounds(&self, wanted: bool, label: &str) -> Vec<ZeroRow> {
        let models: Vec<&Model> = goal_models()
            .filter(|m| wanted && self.available(m).is_ok())
            .collect();
        let steps = goal_models().count() as u64;
        let mut rows = Vec::new();
        for &connections in &self.plan.goal_connections {
            for round in 1..=self.plan.rounds {
                if !models.is_empty() {
                    self.step(format!(
                        "{label}: {connections} connections, round {round}, \
                         {} in turns",
                        models.len()
                    ));
                    rows.extend(self.goal_round(&models, connections, round));
                }
                self.bar.inc(steps);
            }
        }
        rows
    }

    /// One goal round: every model's server started side by side, then
    /// [`Plan::turns`] turns in which each model in turn gets a closed
    /// loop of `connections` and a short window, a row for each. A turn's
    /// neighbours in time are the other models' turns, a second or so
    /// apart, so the ratio of two models' rows of the same turn cancels
    /// what the machine's speed did meanwhile.
    fn goal_round(
        &self,
        models: &[&Model],
        connections: usize,
        round: usize,
    ) -> Vec<ZeroRow> {
        let plan = &self.plan;
        let queue = Some(connections.max(64));
        let servers: Vec<io::Result<ServerProcess>> = models
            .iter()
            .map(|m| self.start(m, queue, &["--work-ms", "0"]))
            .collect();
        let warmup = plan.turn_warmup.max(opening(connections));
        let mut rows = Vec::new();
        for turn in 1..=plan.turns {
            for (model, server) in models.iter().zip(&servers) {
                let mut row = ZeroRow {
                    model: model.label,
                    connections,
                    round,
                    turn,
                    ..ZeroRow::default()
                };
                let server = match server {
                    Ok(server) => server,
                    Err(e) => {
                        row.status = Status::Failed(format!("start: {e}"));
                        rows.push(row);
                        continue;
                    }
                };
                let (seen, steal, stolen) = unstolen(plan.turn_tries, || {
                    self.closed_loop(
                        server,
                        connections,
                        warmup,
                        plan.turn_window,
                    )
                });
                match seen {
                    Ok(mut seen) => {
                        fill_window(&mut row, &mut seen, plan.turn_window);
                    }
                    Err(why) => row.status = Status::Failed(why),
                }
                row.steal_percent = steal;
                if stolen {
                    row.status = Status::Failed(stolen_text(steal, plan));
                }
                rows.push(row);
            }
        }
        rows
    }

    /// The driver against a minimal tokio load generator, both driving
    /// the reference server.
    fn client_check(&self, report: &mut Report) {
        let reference = models::reference();
        if self.options.wants(Scenario::Check)
            && self.available(reference).is_ok()
        {
            self.step("client check: driver vs tokio load generator".into());
            report.checks.extend(self.check_generators(reference));
        }
        self.bar.inc(2);
    }

    /// The slow-clients scenario for one model: a fresh server for each
    /// K, so that no slow connection of one point is still being timed
    /// out during the next.
    fn slow_clients(&self, model: &Model, report: &mut Report) {
        // The sweep found it unavailable and said why.
        if report
            .unavailable
            .iter()
            .any(|(label, _)| *label == model.label)
        {
            self.bar.inc(self.crowds.len() as u64);
            return;
        }
        for &k in &self.crowds {
            if self.options.wants(Scenario::SlowClients) {
                self.step(format!("{}: slow clients, K = {k}", model.name));
                report.slow.push(self.behind_slow_clients(model, k));
            }
            self.bar.inc(1);
        }
    }

    /// One point of the slow-clients scenario: K silent and K
    /// half-message connections, then one ordinary client, timed.
    fn behind_slow_clients(&self, model: &Model, k: usize) -> SlowRow {
        let plan = &self.plan;
        let mut row = SlowRow {
            model: model.label,
            k,
            slow_open: 0,
            backlog_full: false,
            idle_timeout_ms: plan.slow_idle_timeout.as_millis() as u64,
            wait_ms: plan.slow_wait.as_millis() as u64,
            first_ack: FirstAck::NoAck,
        };
        let idle = row.idle_timeout_ms.to_string();
        let flags = ["--work-ms", "0", "--idle-timeout-ms", &idle];
        let server = match self.start(model, None, &flags) {
            Ok(server) => server,
            Err(e) => {
                row.first_ack = FirstAck::Failed(format!("start: {e}"));
                return row;
            }
        };
        let crowd = match Crowd::open(server.addr(), k, CROWD_BUDGET) {
            Ok(crowd) => crowd,
            Err(e) => {
                row.first_ack = FirstAck::Failed(format!("crowd: {e}"));
                return row;
            }
        };
        row.slow_open = crowd.len();
        row.backlog_full = crowd.backlog_full;
        row.first_ack = slow_clients::first_ack(server.addr(), plan.slow_wait);
        // The crowd drops (closes) here, then the server (killed).
        row
    }

    /// Shows what is being measured: on the bar, or as a log line when
    /// stderr is not a terminal (CI), where the bar is hidden.
    fn step(&self, message: String) {
        if self.bar.is_hidden() {
            let elapsed = self.bar.elapsed().as_secs();
            let (m, s) = (elapsed / 60, elapsed % 60);
            eprintln!("bench [{m}:{s:02}]: {message}");
        }
        self.bar.set_message(message);
    }

    /// Checks that `model` really serves: a placeholder prints `listening
    /// on` and exits, a broken server does not ack.
    fn available(&self, model: &Model) -> Result<(), String> {
        let server = self
            .start(model, None, &["--work-ms", "0"])
            .map_err(|e| format!("does not start: {e}"))?;
        probe(&server).map_err(|e| {
            let log = server.log();
            let last = log.lines().last().unwrap_or("").to_owned();
            format!("does not ack ({e}) {last}")
        })
    }

    /// Starts `model`'s server with `--quiet`, [`WORKERS`] workers, room
    /// for `queue` waiting clients if given, and `args`, on the server's
    /// CPU.
    fn start(
        &self,
        model: &Model,
        queue: Option<usize>,
        args: &[&str],
    ) -> io::Result<ServerProcess> {
        let mut command = Command::new(&self.program);
        command.args(self.server_args(model, queue, args));
        self.pinning.server(&mut command);
        ServerProcess::spawn(command)
    }

    /// Like [`Bench::start`], free to use every CPU: scenarios 1 and 2
    /// measure how many cores a model keeps busy.
    fn start_unpinned(
        &self,
        model: &Model,
        queue: Option<usize>,
        args: &[&str],
    ) -> io::Result<ServerProcess> {
        let mut command = Command::new(&self.program);
        command.args(self.server_args(model, queue, args));
        self.pinning.unpinned(&mut command);
        ServerProcess::spawn(command)
    }

    /// Like [`Bench::start`], under `strace -f -c -o summary`: every
    /// system call of every process and thread of the server is counted,
    /// and the table written to `summary` when they exit.
    fn start_traced(
        &self,
        model: &Model,
        queue: Option<usize>,
        args: &[&str],
        summary: &Path,
    ) -> io::Result<ServerProcess> {
        let mut command = Command::new("strace");
        command.args(["-f", "-c", "-o"]).arg(summary).arg("--");
        command.arg(&self.program);
        command.args(self.server_args(model, queue, args));
        self.pinning.server(&mut command);
        ServerProcess::spawn(command)
    }

    /// `serve <model> --quiet`, the pool's flags, `args`, and a port of
    /// the OS's choosing on loopback.
    fn server_args(
        &self,
        model: &Model,
        queue: Option<usize>,
        args: &[&str],
    ) -> Vec<String> {
        let mut all = vec![
            "serve".to_owned(),
            model.name.to_owned(),
            "--quiet".to_owned(),
        ];
        all.extend(model.pool_flags(WORKERS, queue));
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all.extend(["--addr".to_owned(), "127.0.0.1:0".to_owned()]);
        all
    }

    // Scenarios 1 and 2: `clients` clients, one session each.
    fn sessions(
        &self,
        model: &Model,
        kind: &'static str,
        clients: usize,
    ) -> SessionRow {
        let plan = &self.plan;
        let work_ms = plan.work.as_millis().to_string();
        let mut row = SessionRow {
            model: model.label,
            kind,
            clients,
            messages: plan.messages,
            work_ms: plan.work.as_millis() as u64,
            wall_s: 0.0,
            parallelism: 0.0,
            cores_busy: 0.0,
            status: Status::Ok,
        };
        let flags = ["--work-ms", &work_ms, "--work-kind", kind];
        let queue = Some(clients.max(64));
        let server = match self.start_unpinned(model, queue, &flags) {
            Ok(server) => server,
            Err(e) => {
                row.status = Status::Failed(format!("start: {e}"));
                return row;
            }
        };
        // Serial service takes clients x messages x work; allow three times
        // that (spin work takes longer on a busy machine).
        let serial = plan.work * plan.messages * clients as u32;
        let messages = clients as u64 * u64::from(plan.messages);
        let load = Load {
            connections: clients,
            session_messages: plan.messages,
            message: b"package".to_vec(),
            until: Until::SessionsDone {
                timeout: serial * 3 + Duration::from_secs(10),
            },
        };
        let before = server.usage();
        match driver::run(server.addr(), &load) {
            Ok(outcome) => {
                let after = server.usage();
                row.wall_s = outcome.elapsed.as_secs_f64();
                row.parallelism = client::load::parallelism(
                    messages,
                    plan.work,
                    outcome.elapsed,
                );
                // Spin work burns a fixed amount of CPU time per message
                // (`protocol::work::spin_for`), so the wall time already
                // shows the cores; the CPU the server really used says how
                // many of them were busy, and whether the machine was.
                let cpu = after.cpu.saturating_sub(before.cpu);
                row.cores_busy = cpu.as_secs_f64() / row.wall_s;
                row.status = Status::of(&outcome, messages);
            }
            Err(e) => row.status = Status::Failed(format!("driver: {e}")),
        }
        row
    }

    /// Scenario 3: closed loop at zero work, sampled over the window;
    /// then, if `traced`, the system calls per message.
    fn zero_work(
        &self,
        model: &Model,
        connections: usize,
        traced: bool,
    ) -> ZeroRow {
        let row = ZeroRow {
            model: model.label,
            connections,
            ..ZeroRow::default()
        };
        let queue = Some(connections.max(64));
        let mut row = match self.start(model, queue, &["--work-ms", "0"]) {
            Ok(server) => self.closed_loop_row(&server, row),
            Err(e) => ZeroRow {
                status: Status::Failed(format!("start: {e}")),
                ..row
            },
        };
        if traced && row.status == Status::Ok && self.strace {
            row.server_syscalls_per_msg =
                self.syscalls_per_message(model, connections).ok();
        }
        row
    }

    /// A second closed loop of `connections`, shorter, with the server
    /// under `strace -c -f`: its system calls (every process and thread,
    /// from start to exit) divided by every ack the driver read. Tracing
    /// slows each system call down, so this run's times mean nothing;
    /// its count is the figure. The server's start-up and the accepts
    /// are in it too, a few hundred calls beside tens of thousands.
    fn syscalls_per_message(
        &self,
        model: &Model,
        connections: usize,
    ) -> io::Result<f64> {
        let plan = &self.plan;
        let summary = std::env::temp_dir()
            .join(format!("bench-strace-{}.txt", std::process::id()));
        let queue = Some(connections.max(64));
        let mut server =
            self.start_traced(model, queue, &["--work-ms", "0"], &summary)?;
        let load = Load {
            connections,
            session_messages: plan.session_messages,
            message: b"ping".to_vec(),
            // Every ack counts here, so no warmup: just long enough to
            // open the connections and serve a few rounds on each.
            until: Until::Window {
                warmup: Duration::ZERO,
                window: opening(connections)
                    .max(plan.trace_window.unwrap_or_default()),
            },
        };
        let outcome = driver::run(server.addr(), &load);
        // SIGTERM to the group: strace detaches and writes its table,
        // the server drains and exits.
        let _ = server.signal_group(nix::sys::signal::Signal::SIGTERM);
        let _ = server.wait_timeout(Duration::from_secs(5));
        let table = std::fs::read_to_string(&summary);
        let _ = std::fs::remove_file(&summary);
        let acked = outcome?.acked;
        let calls = strace_total(&table?).ok_or_else(|| {
            io::Error::other("no total line in strace's table")
        })?;
        if acked == 0 {
            return Err(io::Error::other("no message acked under strace"));
        }
        Ok(calls as f64 / acked as f64)
    }

    /// [`Bench::closed_loop`] of `row.connections` at `server`, the
    /// client's view and the server's cost over the window filled into
    /// `row`.
    fn closed_loop_row(
        &self,
        server: &ServerProcess,
        mut row: ZeroRow,
    ) -> ZeroRow {
        let plan = &self.plan;
        let warmup = warmup(plan, row.connections);
        let (seen, steal) = steal_during(|| {
            self.closed_loop(server, row.connections, warmup, plan.window)
        });
        match seen {
            Ok(mut seen) => fill_window(&mut row, &mut seen, plan.window),
            Err(why) => row.status = Status::Failed(why),
        }
        row.steal_percent = steal;
        row
    }

    /// A closed loop of `connections` at zero work against `server`, a
    /// `warmup` and then a measured `window`, with the server's usage
    /// read at the window's edges and its threads counted at the end.
    fn closed_loop(
        &self,
        server: &ServerProcess,
        connections: usize,
        warmup: Duration,
        window: Duration,
    ) -> Result<Window, String> {
        let load = Load {
            connections,
            session_messages: self.plan.session_messages,
            message: b"ping".to_vec(),
            until: Until::Window { warmup, window },
        };
        let started = Instant::now();
        let addr = server.addr();
        let driver =
            thread::spawn(move || driver::run_from(addr, &load, started));
        let at = |t: Instant| {
            thread::sleep(t.saturating_duration_since(Instant::now()))
        };
        at(started + warmup);
        let before = server.usage();
        let threads_before = procfs::group_threads(server.pid());
        at(started + warmup + window);
        let after = server.usage();
        let threads_after = procfs::group_threads(server.pid());
        let threads_exited =
            threads_before.iter().any(|t| !threads_after.contains(t));
        let threads = procfs::thread_count(server.pid()).unwrap_or(0);
        let outcome = match driver.join() {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => return Err(format!("driver: {e}")),
            Err(_) => return Err("driver panicked".into()),
        };
        Ok(Window {
            outcome,
            before,
            after,
            threads,
            threads_exited,
        })
    }

    /// The driver and a minimal tokio load generator against the same
    /// server (a fresh one each), same connections, same window.
    fn check_generators(&self, model: &Model) -> Vec<CheckRow> {
        let plan = &self.plan;
        let mut rows = Vec::new();
        let rounds = (1..=plan.rounds).flat_map(|round| {
            ["driver (epoll)", "tokio minimal"]
                .map(|generator| (round, generator))
        });
        for (round, generator) in rounds {
            let Ok(server) = self.start(model, None, &["--work-ms", "0"])
            else {
                continue;
            };
            let (result, steal, stolen) = unstolen(plan.turn_tries, || {
                run_generator(generator, server.addr(), plan)
            });
            let mut row = CheckRow {
                generator,
                server: model.label,
                connections: plan.check_connections,
                round,
                steal_percent: steal,
                ..CheckRow::default()
            };
            match result {
                Ok((mut outcome, cpu)) => {
                    outcome.client_cpu = cpu;
                    let mut zero = ZeroRow::default();
                    fill_zero_row(&mut zero, &mut outcome, plan.window);
                    row.msgs_per_s = zero.msgs_per_s;
                    row.client_cpu_us_per_msg = zero.client_cpu_us_per_msg;
                    row.p99_us = zero.p99_us;
                    row.status = zero.status;
                }
                Err(e) => row.status = Status::Failed(e.to_string()),
            }
            if stolen {
                row.status = Status::Failed(stolen_text(steal, plan));
            }
            rows.push(row);
        }
        rows
    }
}

/// `measure`'s result, and the hypervisor's share of the machine's CPU
/// time while it ran, percent: the time the virtual CPUs were ready but
/// the host ran something else (their steal time).
fn steal_during<T>(measure: impl FnOnce() -> T) -> (T, f64) {
    let before = procfs::stolen();
    let started = Instant::now();
    let value = measure();
    let elapsed = started.elapsed().as_secs_f64();
    let share = match (before, procfs::stolen()) {
        (Ok((before, cpus)), Ok((after, _))) if cpus > 0 && elapsed > 0.0 => {
            let stolen = after.saturating_sub(before).as_secs_f64();
            stolen / cpus as f64 / elapsed * 100.0
        }
        _ => 0.0,
    };
    (value, share)
}

/// `measure`, run again while the hypervisor takes more than
/// [`STEAL_LIMIT_PERCENT`] of the machine during it, `tries` times at
/// most (one: every run taken as it comes). The last run's result, its
/// steal share, and whether that was still over the limit.
fn unstolen<T>(tries: usize, mut measure: impl FnMut() -> T) -> (T, f64, bool) {
    let mut tried = 1;
    loop {
        let (value, steal) = steal_during(&mut measure);
        if tries <= 1 || steal <= STEAL_LIMIT_PERCENT {
            return (value, steal, false);
        }
        if tried >= tries {
            return (value, steal, true);
        }
        tried += 1;
    }
}

/// The status of a measurement [`unstolen`] gave up on.
fn stolen_text(steal: f64, plan: &Plan) -> String {
    format!(
        "the hypervisor took {steal:.0}% of the CPUs ({} tries)",
        plan.turn_tries
    )
}

/// Whether `strace` can be started here.
fn strace_runs() -> bool {
    Command::new("strace")
        .arg("-V")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The calls column of the `total` line of a `strace -c` table:
///
/// ```text
/// 100.00    0.412345           2    180210       312 total
/// ```
fn strace_total(table: &str) -> Option<u64> {
    let line = table.lines().find(|l| l.trim_end().ends_with(" total"))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    // % time, seconds, usecs/call, calls[, errors], "total".
    fields.get(3)?.parse().ok()
}

/// What a closed loop observed (see `Bench::closed_loop`).
struct Window {
    /// The driver's side.
    outcome: Outcome,
    /// The server's usage at the window's start and end.
    before: procfs::Usage,
    after: procfs::Usage,
    /// The server's threads at the window's end (its main process).
    threads: usize,
    /// Whether a thread of the server that was there at the window's
    /// start had gone at its end (with its context switches).
    threads_exited: bool,
}

/// Both sides of a zero-work row from what `window`, this long,
/// observed.
fn fill_window(row: &mut ZeroRow, window: &mut Window, length: Duration) {
    fill_zero_row(row, &mut window.outcome, length);
    fill_server_columns(row, &window.before, &window.after, length);
    if window.threads_exited {
        row.server_switches_per_msg = None;
    }
}

/// The models the goal compares, in chapter order: every event loop (the
/// book's and the reference), but not a variant such as `ch04-poll`.
fn goal_models() -> impl Iterator<Item = &'static Model> {
    MODELS.iter().filter(|m| m.event_loop && m.flags.is_empty())
}

/// One message, one ack, goodbye.
fn probe(server: &ServerProcess) -> io::Result<()> {
    let mut conn = Connection::new(server.connect(Duration::from_secs(5))?)?;
    conn.send(b"probe")?;
    conn.read_ack()?;
    conn.send_goodbye()
}

/// The warmup before a window: long enough to open every connection
/// (the driver opens a few thousand per second, alongside the load).
fn warmup(plan: &Plan, connections: usize) -> Duration {
    plan.warmup.max(opening(connections))
}

/// About how long the driver takes to open `connections`, with room to
/// spare: the limit scenario opens 20,000 in under half a second.
fn opening(connections: usize) -> Duration {
    Duration::from_micros(100) * connections as u32
}

/// The server-side columns of a zero-work row whose client side is
/// filled: the server's cost over the window, from `/proc` readings
/// taken at its start and end, per message and in all.
fn fill_server_columns(
    row: &mut ZeroRow,
    before: &procfs::Usage,
    after: &procfs::Usage,
    window: Duration,
) {
    let cpu = after.cpu.saturating_sub(before.cpu);
    let user = after.user.saturating_sub(before.user);
    let sleeps = after.sleeps.saturating_sub(before.sleeps);
    let switches = after.switches().saturating_sub(before.switches());
    if row.messages > 0 {
        let messages = row.messages as f64;
        row.server_switches_per_msg = Some(switches as f64 / messages);
        row.server_cpu_us_per_msg = cpu.as_secs_f64() * 1e6 / messages;
        row.server_sleeps_per_100 = sleeps as f64 * 100.0 / messages;
        row.server_user_us_per_msg = user.as_secs_f64() * 1e6 / messages;
    }
    row.server_cpu_percent = cpu.as_secs_f64() / window.as_secs_f64() * 100.0;
    row.server_rss_kib = after.rss_bytes / 1024;
    row.server_processes = after.processes;
}

/// The client-side columns of a zero-work row.
fn fill_zero_row(row: &mut ZeroRow, outcome: &mut Outcome, window: Duration) {
    let latency = Percentiles::of(&mut outcome.latencies_ns);
    row.messages = outcome.messages;
    row.msgs_per_s = outcome.messages as f64 / window.as_secs_f64();
    row.p50_us = latency.p50_us;
    row.p99_us = latency.p99_us;
    row.max_us = latency.max_us;
    row.served_connections = outcome.served_connections;
    row.errors = outcome.errors;
    if outcome.messages > 0 {
        row.client_cpu_us_per_msg =
            outcome.client_cpu.as_secs_f64() * 1e6 / outcome.messages as f64;
    }
    row.client_cpu_percent =
        outcome.client_cpu.as_secs_f64() / window.as_secs_f64() * 100.0;
    row.status = if outcome.messages == 0 {
        Status::Failed(first_error(outcome, "no message acked"))
    } else {
        Status::Ok
    };
}

fn first_error(outcome: &Outcome, otherwise: &str) -> String {
    outcome
        .error_samples
        .first()
        .cloned()
        .unwrap_or_else(|| otherwise.to_owned())
}

fn run_generator(
    generator: &str,
    addr: SocketAddr,
    plan: &Plan,
) -> io::Result<(Outcome, Duration)> {
    if generator.starts_with("tokio") {
        return tokio_load::run(
            addr,
            plan.check_connections,
            plan.session_messages,
            plan.warmup,
            plan.window,
        );
    }
    let load = Load {
        connections: plan.check_connections,
        session_messages: plan.session_messages,
        message: b"ping".to_vec(),
        until: Until::Window {
            warmup: plan.warmup,
            window: plan.window,
        },
    };
    let outcome = driver::run(addr, &load)?;
    let cpu = outcome.client_cpu;
    Ok((outcome, cpu))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calls of the `total` line, with or without an errors column.
    #[test]
    fn reads_the_strace_total() {
        let table = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 51.20    0.210000           2    100210           sendto
 48.80    0.200000           2    100000       312 recvfrom
------ ----------- ----------- --------- --------- ----------------
100.00    0.410000           2    200210       312 total
";
        assert_eq!(strace_total(table), Some(200_210));
        let no_errors = "100.00    0.000000           0       107 total\n";
        assert_eq!(strace_total(no_errors), Some(107));
        assert_eq!(strace_total("strace: exec: No such file\n"), None);
    }
}
