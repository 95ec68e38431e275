//! The results of a run, written as data (CSV), as Markdown tables the
//! book includes, and as SVG plots.
//!
//! Every file in the output directory is generated; re-running `bench`
//! rewrites them all. Nothing in them is typed by hand.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::driver::Outcome;
use super::limit;
use super::per_connection;
use super::plot;
use super::slow_clients::{seconds, FirstAck};
use super::Scenario;
use crate::models;

/// How much more server CPU per message than chapter 4's event loop a
/// runtime built on its poller may use (chapter 6's goal).
const RUNTIME_CPU_FACTOR: f64 = 1.3;

/// Whether a measurement worked.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Status {
    /// Every expected ack arrived.
    #[default]
    Ok,
    /// Something went wrong; the numbers are partial or missing.
    Failed(String),
}

impl Status {
    /// `Ok` if `outcome` has all `expected` acks, in time, without errors.
    pub fn of(outcome: &Outcome, expected: u64) -> Status {
        if outcome.timed_out {
            return Status::Failed(format!(
                "timed out after {} of {expected} acks",
                outcome.messages
            ));
        }
        if outcome.messages < expected || outcome.errors > 0 {
            let first = outcome.error_samples.first().cloned();
            return Status::Failed(format!(
                "{} of {expected} acks, {} errors: {}",
                outcome.messages,
                outcome.errors,
                first.unwrap_or_default()
            ));
        }
        Status::Ok
    }

    /// The status as a CSV cell: `ok`, or why it failed.
    pub(super) fn text(&self) -> String {
        match self {
            Status::Ok => "ok".into(),
            Status::Failed(why) => csv_text(why),
        }
    }
}

/// One point of scenarios 1 and 2.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// Model label.
    pub model: &'static str,
    /// `sleep` or `spin`.
    pub kind: &'static str,
    /// Concurrent clients.
    pub clients: usize,
    /// Messages per client.
    pub messages: u32,
    /// Work per message.
    pub work_ms: u64,
    /// Time until the last client said goodbye.
    pub wall_s: f64,
    /// Serial time divided by wall time.
    pub parallelism: f64,
    /// Server CPU time divided by wall time: cores kept busy.
    pub cores_busy: f64,
    /// Whether every ack arrived.
    pub status: Status,
}

/// One point of scenario 3.
#[derive(Debug, Clone, Default)]
pub struct ZeroRow {
    /// Model label.
    pub model: &'static str,
    /// Concurrent connections.
    pub connections: usize,
    /// Acks in the window.
    pub messages: u64,
    /// Acks per second.
    pub msgs_per_s: f64,
    /// Latency median, microseconds.
    pub p50_us: f64,
    /// Latency 99th percentile, microseconds.
    pub p99_us: f64,
    /// Latency maximum (including messages unanswered at the end).
    pub max_us: f64,
    /// Server CPU (user + system, every process) per ack.
    pub server_cpu_us_per_msg: f64,
    /// The user-space part of it (the rest is system time).
    pub server_user_us_per_msg: f64,
    /// Times the server went to sleep (voluntary context switches) per
    /// 100 acks: how much batching its waits achieved.
    pub server_sleeps_per_100: f64,
    /// Context switches of the server's threads, voluntary and not, per
    /// ack (`None`: a thread exited in the window and took its count
    /// with it, as a thread per connection does after each session).
    pub server_switches_per_msg: Option<f64>,
    /// System calls of the server per ack, from a separate run under
    /// `strace -c -f` (`None`: not counted).
    pub server_syscalls_per_msg: Option<f64>,
    /// Server CPU over the window, percent of one core.
    pub server_cpu_percent: f64,
    /// Server resident memory at the end of the window.
    pub server_rss_kib: u64,
    /// Server processes found in its group.
    pub server_processes: usize,
    /// Client (driver thread) CPU per ack.
    pub client_cpu_us_per_msg: f64,
    /// Client CPU over the window, percent of one core.
    pub client_cpu_percent: f64,
    /// Connections that got at least one ack in the window.
    pub served_connections: usize,
    /// Connection failures.
    pub errors: u64,
    /// The hypervisor's share of the machine's CPU time during the run
    /// (warmup and window), percent: time the virtual CPUs were ready
    /// but not run.
    pub steal_percent: f64,
    /// Which round of a repeated comparison (0 in the sweep).
    pub round: usize,
    /// Which turn of its round (0 in the sweep).
    pub turn: usize,
    /// Whether the run worked.
    pub status: Status,
}

impl ZeroRow {
    /// Whether this is a round of `model` at `c` connections that worked.
    fn measured(&self, model: &str, c: usize) -> bool {
        self.model == model
            && self.connections == c
            && self.status == Status::Ok
    }
}

/// The figure of each round of `model` at `c` connections that worked,
/// by round: `f` of the round's row, or of a round of several turns the
/// mean of its turns (every turn is as long, so this is the figure of
/// the round's turns together).
fn round_figures(
    rows: &[ZeroRow],
    model: &str,
    c: usize,
    f: fn(&ZeroRow) -> f64,
) -> Vec<(usize, f64)> {
    let measured = || rows.iter().filter(|r| r.measured(model, c));
    let mut rounds: Vec<usize> = measured().map(|r| r.round).collect();
    rounds.sort_unstable();
    rounds.dedup();
    rounds
        .into_iter()
        .map(|round| {
            let turns: Vec<f64> =
                measured().filter(|r| r.round == round).map(f).collect();
            (round, turns.iter().sum::<f64>() / turns.len() as f64)
        })
        .collect()
}

/// `f` over the rounds of `model` at `c` connections that worked (see
/// [`round_figures`]).
fn spread_of(
    rows: &[ZeroRow],
    model: &str,
    c: usize,
    f: fn(&ZeroRow) -> f64,
) -> Option<Spread> {
    Spread::of(round_figures(rows, model, c, f).into_iter().map(|(_, v)| v))
}

/// The driver-versus-tokio check.
#[derive(Debug, Clone, Default)]
pub struct CheckRow {
    /// Which load generator.
    pub generator: &'static str,
    /// Against which server.
    pub server: &'static str,
    /// Connections.
    pub connections: usize,
    /// Acks per second.
    pub msgs_per_s: f64,
    /// Load generator CPU per ack.
    pub client_cpu_us_per_msg: f64,
    /// Latency 99th percentile.
    pub p99_us: f64,
    /// The hypervisor's share of the machine's CPU time during the run,
    /// percent.
    pub steal_percent: f64,
    /// Which round.
    pub round: usize,
    /// Whether the run worked.
    pub status: Status,
}

/// One point of the slow-clients scenario.
#[derive(Debug, Clone)]
pub struct SlowRow {
    /// Model label.
    pub model: &'static str,
    /// K: silent connections, and as many half-message ones.
    pub k: usize,
    /// Slow connections actually open when the ordinary client came:
    /// `2 K`, or fewer if the server's backlog filled up first.
    pub slow_open: usize,
    /// Whether a slow connection's connect timed out: the backlog of a
    /// server that was not accepting was full.
    pub backlog_full: bool,
    /// The servers' `--idle-timeout-ms`.
    pub idle_timeout_ms: u64,
    /// How long the ordinary client waited at most.
    pub wait_ms: u64,
    /// What it got.
    pub first_ack: FirstAck,
}

impl SlowRow {
    /// The table cell: the time, or why there is none.
    fn cell(&self) -> String {
        self.first_ack.cell(self.wait_ms)
    }
}

/// The machine the numbers come from.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    /// CPUs the OS gives this process.
    pub cores: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
    /// Total memory, MiB.
    pub memory_mib: u64,
    /// UTC date and time of the run.
    pub date: String,
    /// The 1-minute load average when the run started.
    pub load_average: String,
    /// `full` or `quick`.
    pub mode: &'static str,
    /// The build profile of the client and servers.
    pub profile: &'static str,
    /// Which CPUs the servers and the load ran on.
    pub pinning: String,
}

impl Machine {
    /// Describes this machine, now.
    /// `pinning` is left for the caller to fill in.
    pub fn describe(quick: bool) -> Machine {
        let read = |path: &str| fs::read_to_string(path).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown".into(), |(_, v)| v.trim().to_owned());
        let memory_kib = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0);
        Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            memory_mib: memory_kib / 1024,
            date: utc_now(),
            load_average: read("/proc/loadavg")
                .split_whitespace()
                .next()
                .unwrap_or("?")
                .to_owned(),
            mode: if quick { "quick" } else { "full" },
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            pinning: String::new(),
        }
    }
}

/// Everything one run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Where and when.
    pub machine: Machine,
    /// Models that could not be measured, and why.
    pub unavailable: Vec<(&'static str, String)>,
    /// Scenarios 1 and 2.
    pub sessions: Vec<SessionRow>,
    /// Scenario 3.
    pub zero: Vec<ZeroRow>,
    /// Every event loop at the open-file limit.
    pub limit: Vec<limit::Row>,
    /// Driver check, every round.
    pub checks: Vec<CheckRow>,
    /// Chapter 4 against tokio for the goal, every round.
    pub goal_rounds: Vec<ZeroRow>,
    /// The goal rounds run again and again, every round of every run.
    pub repeats: Vec<Vec<ZeroRow>>,
    /// How often a goal turn was tried while the hypervisor took too
    /// much of it (`Plan::turn_tries`).
    pub turn_tries: usize,
    /// The slow-clients scenario.
    pub slow: Vec<SlowRow>,
    /// The per-connection scenario, every server and count.
    pub per_connection: Vec<per_connection::Row>,
    /// The per-connection scenario at the limits.
    pub per_connection_limits: Vec<per_connection::LimitRow>,
    /// The scenarios this run measured: only their files are written,
    /// so a run of one scenario leaves the others' results as they were.
    pub ran: Vec<Scenario>,
}

impl Report {
    /// Writes every CSV, Markdown table and plot into `dir`.
    ///
    /// # Errors
    ///
    /// If `dir` cannot be created or a file cannot be written.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        use Scenario::{Check, Goal, Limit, Sleep, SlowClients, Spin, Zero};
        fs::create_dir_all(dir)?;
        let put = |name: &str, text: String| fs::write(dir.join(name), text);
        let ran = |s: &[Scenario]| s.iter().any(|s| self.ran.contains(s));
        // The machine page describes the run of the main scenarios; the
        // slow-clients table carries its own date line.
        if ran(&[Sleep, Spin, Zero, Limit, Check, Goal]) {
            put("machine.csv", self.machine_csv())?;
            put("machine.md", self.machine_md())?;
        }
        if ran(&[Sleep, Spin]) {
            put("sessions.csv", self.sessions_csv())?;
            for kind in ["sleep", "spin"] {
                put(&format!("sessions-{kind}.md"), self.sessions_md(kind))?;
                let svg = plot::sessions(self, kind);
                put(&format!("sessions-{kind}.svg"), svg)?;
            }
        }
        if ran(&[Zero]) {
            put("zero-work.csv", zero_csv(&self.zero))?;
            put("zero-work.md", self.zero_md())?;
            put("zero-work-cpu.svg", plot::zero_cpu(self))?;
            put("zero-work-throughput.svg", plot::zero_throughput(self))?;
        }
        if ran(&[Goal]) {
            put("goal-rounds.csv", zero_csv(&self.goal_rounds))?;
            put("comparisons.md", self.comparisons_md())?;
        }
        if ran(&[Scenario::Repeat]) {
            put(
                "repeatability.md",
                repeatability_md(&self.repeats, self.turn_tries),
            )?;
            for (run, rows) in self.repeats.iter().enumerate() {
                put(&format!("repeat-{}.csv", run + 1), zero_csv(rows))?;
            }
        }
        if ran(&[Limit]) {
            put("connection-limit.csv", limit::csv(&self.limit))?;
            let md = limit::md(&self.limit, &limit::Limits::read());
            put("connection-limit.md", md)?;
            put("idle-memory.md", limit::idle_md(&self.limit))?;
        }
        if ran(&[Check]) {
            put("client-check.csv", self.check_csv())?;
            put("client-check.md", self.check_md())?;
        }
        // The goals come from the rounds, the client check and the limit
        // scenario, not from the sweep.
        if ran(&[Limit, Check, Goal]) {
            put("goals.md", self.goals_md())?;
        }
        if ran(&[SlowClients]) {
            put("slow-clients.csv", self.slow_csv())?;
            let models = distinct(self.slow.iter().map(|r| r.model));
            put("slow-clients.md", self.slow_md(&models))?;
            // One excerpt per model, for its own chapter.
            for model in models {
                let name = format!("slow-clients-{model}.md");
                put(&name, self.slow_md(&[model]))?;
            }
            put("slow-clients.svg", plot::slow_clients(self))?;
        }
        if ran(&[Scenario::PerConnection]) {
            let (rows, limits) =
                (&self.per_connection, &self.per_connection_limits);
            put("per-connection.csv", per_connection::csv(rows))?;
            put(
                "per-connection-limits.csv",
                per_connection::limits_csv(limits),
            )?;
            let md = per_connection::md(rows, limits, &self.machine.date);
            put("per-connection.md", md)?;
        }
        Ok(())
    }

    fn machine_csv(&self) -> String {
        let m = &self.machine;
        let mut out = String::from(
            "date,mode,profile,cores,cpu,memory_mib,kernel,load_average,\
             pinning\n",
        );
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            m.date,
            m.mode,
            m.profile,
            m.cores,
            m.cpu.replace(',', " "),
            m.memory_mib,
            m.kernel,
            m.load_average,
            csv_text(&m.pinning)
        );
        out
    }

    fn machine_md(&self) -> String {
        let m = &self.machine;
        let mut out = String::from("| | |\n| --- | --- |\n");
        let _ = writeln!(out, "| date (UTC) | {} |", m.date);
        let _ =
            writeln!(out, "| run | {} sweep, {} build |", m.mode, m.profile);
        let _ = writeln!(out, "| CPUs | {} x {} |", m.cores, m.cpu);
        let _ = writeln!(out, "| memory | {} MiB |", m.memory_mib);
        let _ = writeln!(out, "| kernel | Linux {} |", m.kernel);
        let _ = writeln!(out, "| load average at start | {} |", m.load_average);
        let _ = writeln!(out, "| pinning | {} |", m.pinning);
        for (model, why) in &self.unavailable {
            let _ = writeln!(out, "| {model} | not measured: {why} |");
        }
        out
    }

    fn sessions_csv(&self) -> String {
        let mut out = String::from(
            "model,work_kind,clients,messages,work_ms,wall_s,parallelism,\
             cores_busy,status\n",
        );
        for r in &self.sessions {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{:.3},{:.2},{:.2},{}",
                r.model,
                r.kind,
                r.clients,
                r.messages,
                r.work_ms,
                r.wall_s,
                r.parallelism,
                r.cores_busy,
                r.status.text()
            );
        }
        out
    }

    /// Wall time per model (columns) and client count (rows).
    fn sessions_md(&self, kind: &str) -> String {
        let rows: Vec<&SessionRow> =
            self.sessions.iter().filter(|r| r.kind == kind).collect();
        let models = distinct(rows.iter().map(|r| r.model));
        let cell = |r: &SessionRow| match &r.status {
            Status::Ok if kind == "spin" => format!(
                "{:.2} s (x{:.1}, {:.1} cores)",
                r.wall_s, r.parallelism, r.cores_busy
            ),
            Status::Ok => format!("{:.2} s (x{:.1})", r.wall_s, r.parallelism),
            Status::Failed(_) => "failed".into(),
        };
        let mut out =
            grid("clients", &rows, &models, |r| (r.model, r.clients), cell);
        if let Some(r) = rows.first() {
            let _ = writeln!(
                out,
                "\nWall time for every client to finish {} messages of {} ms \
                 {} work each; (xP) is the observed parallelism.",
                r.messages, r.work_ms, r.kind
            );
            if kind == "spin" {
                out.push_str(
                    "Cores: the server's CPU time divided by the wall time.\n",
                );
            }
        }
        out.push_str(
            &self
                .failures(rows.iter().map(|r| (r.model, r.clients, &r.status))),
        );
        out
    }

    fn zero_md(&self) -> String {
        let mut out = String::from(
            "| model | conns | msgs/s | p50 µs | p99 µs | max ms | \
             server CPU µs/msg | of which user | syscalls /msg | \
             switches /msg | server CPU % | server RSS MiB | \
             client CPU µs/msg | client CPU % | conns served |\n\
             | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | \
             ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        for r in &self.zero {
            if let Status::Failed(why) = &r.status {
                out.push_str(&failed_md_row(r.model, r.connections, why, 12));
                continue;
            }
            let syscalls = r
                .server_syscalls_per_msg
                .map_or("-".into(), |n| format!("{n:.2}"));
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.2} | \
                 {} | {} | {:.0} | {:.1} | {:.1} | {:.0} | {} |",
                r.model,
                r.connections,
                r.msgs_per_s,
                r.p50_us,
                r.p99_us,
                r.max_us / 1000.0,
                r.server_cpu_us_per_msg,
                r.server_user_us_per_msg,
                syscalls,
                r.server_switches_per_msg
                    .map_or("-".into(), |n| format!("{n:.3}")),
                r.server_cpu_percent,
                r.server_rss_kib as f64 / 1024.0,
                r.client_cpu_us_per_msg,
                r.client_cpu_percent,
                r.served_connections
            );
        }
        out
    }

    fn check_csv(&self) -> String {
        let mut out = String::from(
            "generator,server,connections,round,msgs_per_s,\
             client_cpu_us_per_msg,p99_us,steal_percent,status\n",
        );
        for r in &self.checks {
            let _ = writeln!(
                out,
                "{},{},{},{},{:.0},{:.2},{:.1},{:.1},{}",
                r.generator,
                r.server,
                r.connections,
                r.round,
                r.msgs_per_s,
                r.client_cpu_us_per_msg,
                r.p99_us,
                r.steal_percent,
                r.status.text()
            );
        }
        out
    }

    fn check_md(&self) -> String {
        let mut out = String::from(
            "| load generator | server | conns | msgs/s | client CPU µs/msg \
             | rounds |\n| --- | --- | ---: | ---: | ---: | ---: |\n",
        );
        for generator in distinct(self.checks.iter().map(|r| r.generator)) {
            let rows: Vec<&CheckRow> = self
                .checks
                .iter()
                .filter(|r| r.generator == generator && r.status == Status::Ok)
                .collect();
            let Some(first) = rows.first() else { continue };
            let rate = Spread::of(rows.iter().map(|r| r.msgs_per_s));
            let cpu = Spread::of(rows.iter().map(|r| r.client_cpu_us_per_msg));
            let (Some(rate), Some(cpu)) = (rate, cpu) else {
                continue;
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                generator,
                first.server,
                first.connections,
                rate.cell(0),
                cpu.cell(2),
                rows.len()
            );
        }
        out.push_str(SPREAD_NOTE);
        out
    }

    /// The goal rounds side by side: every model's median and range at
    /// each connection count, against the book's own event loop.
    fn comparisons_md(&self) -> String {
        let ours = models::MODELS
            .iter()
            .find(|m| m.event_loop && !m.reference)
            .expect("the registry has the book's own event loop")
            .label;
        let mut out = format!(
            "| conns | model | server CPU µs/msg | vs {ours} | of which user \
             | vs {ours} | switches /msg | msgs/s |\n| ---: | --- | ---: | \
             ---: | ---: | ---: | ---: | ---: |\n"
        );
        let spread = |model: &str, c: usize, f: fn(&ZeroRow) -> f64| {
            spread_of(&self.goal_rounds, model, c, f)
        };
        let cpu = |r: &ZeroRow| r.server_cpu_us_per_msg;
        let user = |r: &ZeroRow| r.server_user_us_per_msg;
        let switches =
            |r: &ZeroRow| r.server_switches_per_msg.unwrap_or(f64::NAN);
        let rate = |r: &ZeroRow| r.msgs_per_s;
        let rounds = &self.goal_rounds;
        let versus =
            |model, c, f: fn(&ZeroRow) -> f64, own: bool| match paired_ratios(
                rounds, model, ours, c, f,
            ) {
                Some(ratios) if !own => ratios.ratio_cell(),
                _ => "-".to_owned(),
            };
        let models = distinct(self.goal_rounds.iter().map(|r| r.model));
        for c in self.goal_connections() {
            for &model in &models {
                let own = model == ours;
                let cell = |s: Option<Spread>, d: usize| {
                    s.map_or("-".into(), |s| s.cell(d))
                };
                let _ = writeln!(
                    out,
                    "| {c} | {model} | {} | {} | {} | {} | {} | {} |",
                    cell(spread(model, c, cpu), 2),
                    versus(model, c, cpu, own),
                    cell(spread(model, c, user), 2),
                    versus(model, c, user, own),
                    cell(spread(model, c, switches), 3),
                    cell(spread(model, c, rate), 0),
                );
            }
        }
        let _ = writeln!(
            out,
            "\nZero work, closed loop. {} \"vs {ours}\": the median of the \
             rounds' ratios, each round's figure over {ours}'s in the same \
             round, and (in parentheses) the lowest and highest; more or \
             less only where every round's ratio says so.",
            rounds_note(&self.goal_rounds, self.turn_tries)
        );
        out.push_str(SPREAD_NOTE);
        out
    }

    /// The performance goals, checked against this run: one line per
    /// goal connection count for the book's event loop against the
    /// reference and for the other event loops against the book's, then
    /// the load generator, then the connections at the limit.
    fn goals_md(&self) -> String {
        let ours = models::MODELS
            .iter()
            .find(|m| m.event_loop && !m.reference)
            .expect("the registry has the book's own event loop");
        let reference = models::reference();
        let mut out =
            String::from("| goal | measured | met |\n| --- | --- | --- |\n");
        for c in self.goal_connections() {
            out.push_str(&self.cpu_goal(ours.label, reference.label, c, 1.0));
            out.push('\n');
        }
        // The other event loops of the book (chapter 6's hand-made
        // runtime, and those after it) are held to chapter 4's: a runtime
        // may cost a little more than the hand-written loop under it, not
        // a lot. Only those measured in the rounds: a comparison is made
        // on rounds or not at all.
        let measured = distinct(self.goal_rounds.iter().map(|r| r.model));
        let others = models::MODELS.iter().filter(|m| {
            m.event_loop
                && !m.reference
                && m.name != ours.name
                && measured.contains(&m.label)
        });
        for model in others {
            for c in self.goal_connections() {
                out.push_str(&self.cpu_goal(
                    model.label,
                    ours.label,
                    c,
                    RUNTIME_CPU_FACTOR,
                ));
                out.push('\n');
            }
        }
        out.push_str(&self.driver_goal());
        out.push('\n');
        limit::goals(&self.limit, &mut out);
        out.push_str(SPREAD_NOTE);
        out.push_str(
            "A CPU goal's ratio is per round, each round's figure over the \
             other model's in the same round: the median, and (in \
             parentheses) the lowest and highest. The goal is met or \
             missed only where every round's ratio says so.\n",
        );
        out
    }

    /// The connection counts of the goal rounds; the full plan's if the
    /// run had none.
    fn goal_connections(&self) -> Vec<usize> {
        let mut connections: Vec<usize> =
            self.goal_rounds.iter().map(|r| r.connections).collect();
        connections.sort_unstable();
        connections.dedup();
        if connections.is_empty() {
            connections = vec![100, 1000];
        }
        connections
    }

    /// `model`'s server CPU per message at `c` connections over the goal
    /// rounds.
    fn goal_cpu(&self, model: &str, c: usize) -> Option<Spread> {
        spread_of(&self.goal_rounds, model, c, |r| r.server_cpu_us_per_msg)
    }

    /// The goal "`ours` uses at most `factor` times the server CPU per
    /// message of `other` at `c` connections", as a table line.
    fn cpu_goal(
        &self,
        ours: &str,
        other: &str,
        c: usize,
        factor: f64,
    ) -> String {
        let goal = format!(
            "{ours} server CPU per message at {c} connections <= \
             {factor:.1}x {other}'s"
        );
        let cpu = |r: &ZeroRow| r.server_cpu_us_per_msg;
        let ratios = paired_ratios(&self.goal_rounds, ours, other, c, cpu);
        match (self.goal_cpu(ours, c), self.goal_cpu(other, c), ratios) {
            (Some(a), Some(b), Some(r)) => format!(
                "| {goal} | {} vs {} µs; per round {:.2}x ({}, {} rounds) | {} |",
                a.cell(2),
                b.cell(2),
                r.median,
                r.range(2),
                r.rounds,
                r.at_most(&Spread::exactly(1.0), factor).cell()
            ),
            _ => format!("| {goal} | not measured in this run | - |"),
        }
    }

    /// The goal "the driver is as fast as a minimal tokio load
    /// generator", as a table line.
    fn driver_goal(&self) -> String {
        let rate = |g: &str| {
            Spread::of(
                self.checks
                    .iter()
                    .filter(|r| {
                        r.generator.starts_with(g) && r.status == Status::Ok
                    })
                    .map(|r| r.msgs_per_s),
            )
        };
        let goal = "the driver's msgs/s >= 0.95x a minimal tokio load \
                    generator's";
        match (rate("driver"), rate("tokio")) {
            // Both generators share the machine with the server, so
            // within 5% counts as "as many": the generator's rate is at
            // most the driver's / 0.95.
            (Some(d), Some(t)) if t.median > 0.0 => format!(
                "| {goal} | {} vs {} msgs/s = {:.2}x | {} |",
                d.cell(0),
                t.cell(0),
                d.median / t.median,
                t.at_most(&d, 1.0 / 0.95).cell()
            ),
            _ => format!("| {goal} | not measured in this run | - |"),
        }
    }

    fn slow_csv(&self) -> String {
        let mut out = String::from(
            "model,k,slow_connections_open,backlog_full,idle_timeout_ms,\
             wait_ms,first_ack_ms,result\n",
        );
        for r in &self.slow {
            let (ms, result) = match &r.first_ack {
                FirstAck::Acked(after) => {
                    (format!("{:.1}", after.as_secs_f64() * 1e3), "ack".into())
                }
                FirstAck::NoAck => (String::new(), "no ack".into()),
                FirstAck::NotConnected => {
                    (String::new(), "not connected".into())
                }
                FirstAck::Refused(reply) => {
                    (String::new(), format!("refused: {}", reply.trim()))
                }
                FirstAck::Failed(why) => {
                    (String::new(), format!("failed: {why}"))
                }
            };
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{}",
                r.model,
                r.k,
                r.slow_open,
                r.backlog_full,
                r.idle_timeout_ms,
                r.wait_ms,
                ms,
                csv_text(&result)
            );
        }
        out
    }

    /// Time to the ordinary client's first ack: a row per K, a column
    /// per model in `models`; under it, what the servers ran with and
    /// the points where the kernel's backlog, not the model, decided.
    fn slow_md(&self, models: &[&'static str]) -> String {
        let rows: Vec<&SlowRow> = self
            .slow
            .iter()
            .filter(|r| models.contains(&r.model))
            .collect();
        let mut out =
            grid("K", &rows, models, |r| (r.model, r.k), SlowRow::cell);
        if let Some(r) = rows.first() {
            let _ = writeln!(
                out,
                "\nTime from the ordinary client's connect to its first \
                 `ack`, behind K connections that send nothing and K that \
                 send half a message. The servers ran with \
                 `--idle-timeout-ms {}` and `--work-ms 0` (the pools with \
                 {} workers); the client waited at most {}. Measured {} \
                 UTC on {} CPUs, load average {} at the start.",
                r.idle_timeout_ms,
                super::WORKERS,
                seconds(r.wait_ms),
                self.machine.date,
                self.machine.cores,
                self.machine.load_average
            );
        }
        let cut_short: Vec<String> = rows
            .iter()
            .filter(|r| r.backlog_full)
            .map(|r| {
                format!(
                    "{} at K = {}: {} of {}",
                    r.model,
                    r.k,
                    r.slow_open,
                    2 * r.k
                )
            })
            .collect();
        if !cut_short.is_empty() {
            let _ = writeln!(
                out,
                "\nSlow connections opened where the listen backlog of a \
                 server that was not accepting stayed full (the kernel then \
                 drops new handshakes, and the crowd stopped growing): {}.",
                cut_short.join("; ")
            );
        }
        for r in &rows {
            if let FirstAck::Failed(why) = &r.first_ack {
                let _ = writeln!(out, "\n- {} at K = {}: {why}", r.model, r.k);
            }
        }
        out
    }

    /// A list of failed points under a table, if any.
    fn failures<'a>(
        &self,
        rows: impl Iterator<Item = (&'static str, usize, &'a Status)>,
    ) -> String {
        let mut out = String::new();
        for (model, n, status) in rows {
            if let Status::Failed(why) = status {
                let _ = writeln!(out, "\n- {model} at {n}: {why}");
            }
        }
        out
    }
}

/// A Markdown table of `rows`: a line per key (in increasing order), a
/// column per model in `models`, each cell `cell` of the row that `at`
/// places there, `-` where no row does.
fn grid<R>(
    corner: &str,
    rows: &[&R],
    models: &[&'static str],
    at: impl Fn(&R) -> (&'static str, usize),
    cell: impl Fn(&R) -> String,
) -> String {
    let mut keys: Vec<usize> = rows.iter().map(|r| at(r).1).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut out = format!("| {corner} |");
    for m in models {
        let _ = write!(out, " {m} |");
    }
    out.push_str("\n| ---: |");
    out.push_str(&" ---: |".repeat(models.len()));
    out.push('\n');
    for key in keys {
        let _ = write!(out, "| {key} |");
        for m in models {
            let text = rows
                .iter()
                .find(|r| at(r) == (*m, key))
                .map_or("-".into(), |r| cell(r));
            let _ = write!(out, " {text} |");
        }
        out.push('\n');
    }
    out
}

/// Scenario 3 rows as CSV.
fn zero_csv(rows: &[ZeroRow]) -> String {
    let mut out = String::from(
        "model,connections,messages,msgs_per_s,p50_us,p99_us,max_us,\
         server_cpu_us_per_msg,server_user_us_per_msg,\
         server_sleeps_per_100_msgs,server_switches_per_msg,\
         server_syscalls_per_msg,server_cpu_percent,server_rss_kib,\
         server_processes,client_cpu_us_per_msg,client_cpu_percent,\
         served_connections,errors,steal_percent,round,turn,status\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{:.0},{:.1},{:.1},{:.1},{:.2},{:.2},{:.1},{},{},\
             {:.1},{},{},{:.2},{:.1},{},{},{:.1},{},{},{}",
            r.model,
            r.connections,
            r.messages,
            r.msgs_per_s,
            r.p50_us,
            r.p99_us,
            r.max_us,
            r.server_cpu_us_per_msg,
            r.server_user_us_per_msg,
            r.server_sleeps_per_100,
            r.server_switches_per_msg
                .map_or(String::new(), |n| format!("{n:.3}")),
            r.server_syscalls_per_msg
                .map_or(String::new(), |n| format!("{n:.2}")),
            r.server_cpu_percent,
            r.server_rss_kib,
            r.server_processes,
            r.client_cpu_us_per_msg,
            r.client_cpu_percent,
            r.served_connections,
            r.errors,
            r.steal_percent,
            r.round,
            r.turn,
            r.status.text()
        );
    }
    out
}

/// A Markdown row for a point that failed: its model and connections,
/// `failed: why` in the first measured column, and `blanks` empty ones.
pub(super) fn failed_md_row(
    model: &str,
    connections: usize,
    why: &str,
    blanks: usize,
) -> String {
    let why = why.replace('|', "/");
    format!(
        "| {model} | {connections} | failed: {why} |{}\n",
        " |".repeat(blanks)
    )
}

/// `text` as a CSV cell: kept simple, with no commas or quotes.
pub(super) fn csv_text(text: &str) -> String {
    text.replace([',', '"', '\n'], " ")
}

/// How the goal rounds in `rows` ran, in a sentence or two; `tries`:
/// [`Report::turn_tries`].
fn rounds_note(rows: &[ZeroRow], tries: usize) -> String {
    let rounds = rows.iter().map(|r| r.round).max().unwrap_or(0);
    let turns = rows.iter().map(|r| r.turn).max().unwrap_or(0);
    // Every turn's window is as long: messages over the rate.
    let window_ms = rows
        .iter()
        .find(|r| r.status == Status::Ok && r.msgs_per_s > 0.0)
        .map_or(0.0, |r| r.messages as f64 / r.msgs_per_s * 1e3);
    let mut note = format!(
        "{rounds} rounds at each count. A round starts every model's \
         server, side by side, and gives each in turn a fresh closed loop \
         and a {window_ms:.0} ms window, {turns} times over; the round's \
         figure is the mean of its windows."
    );
    if tries > 1 {
        let _ = write!(
            note,
            " A window in which the hypervisor took more than {:.0}% of \
             the CPUs (their steal time) is measured again, up to {tries} \
             tries in all.",
            super::STEAL_LIMIT_PERCENT,
        );
    }
    note
}

/// `model` against `base` at `c` connections, round by round: the
/// median of each round's `f` over `base`'s `f` in the same round (see
/// [`round_figures`]). In a round the two take turns a second apart, so
/// what the machine's speed did over the round mostly cancels out of
/// its ratio. NaN if no round has both.
pub fn paired_ratio(
    rounds: &[ZeroRow],
    model: &str,
    base: &str,
    c: usize,
    f: fn(&ZeroRow) -> f64,
) -> f64 {
    paired_ratios(rounds, model, base, c, f).map_or(f64::NAN, |r| r.median)
}

/// The rounds' ratios of [`paired_ratio`], with their range; `None` if
/// no round has both.
pub fn paired_ratios(
    rounds: &[ZeroRow],
    model: &str,
    base: &str,
    c: usize,
    f: fn(&ZeroRow) -> f64,
) -> Option<Spread> {
    let bases = round_figures(rounds, base, c, f);
    Spread::of(round_figures(rounds, model, c, f).into_iter().filter_map(
        |(round, a)| {
            let &(_, b) = bases.iter().find(|(r, _)| *r == round)?;
            (b > 0.0).then(|| a / b)
        },
    ))
}

/// How far a run's median may lie from the median of the runs for the
/// measurements to count as repeatable: 10%.
const REPEAT_TOLERANCE: f64 = 0.10;

/// The goal rounds of several runs side by side: for each model and
/// count, every run's median server CPU per message and its ratio to
/// the book's event loop in that run, and how far the runs' medians lie
/// from their own median.
pub fn repeatability_md(runs: &[Vec<ZeroRow>], tries: usize) -> String {
    let ours = models::MODELS
        .iter()
        .find(|m| m.event_loop && !m.reference)
        .expect("the registry has the book's own event loop")
        .label;
    let all = || runs.iter().flatten();
    let mut counts: Vec<usize> = all().map(|r| r.connections).collect();
    counts.sort_unstable();
    counts.dedup();
    let models = distinct(all().map(|r| r.model));
    let cpu_of = |r: &ZeroRow| r.server_cpu_us_per_msg;
    let median_of = |run: &[ZeroRow], model: &str, c: usize| {
        spread_of(run, model, c, cpu_of).map(|s| s.median)
    };
    let numbers: Vec<String> =
        (1..=runs.len()).map(|n| n.to_string()).collect();
    let runs_head = numbers.join(" / ");
    let mut out = format!(
        "| conns | model | server CPU µs/msg, run {runs_head} | largest gap \
         | vs {ours}, run {runs_head} | largest gap |\n| ---: | --- | ---: \
         | ---: | ---: | ---: |\n"
    );
    let (mut worst_cpu, mut worst_ratio) = (0.0_f64, 0.0_f64);
    for &c in &counts {
        for &model in &models {
            let cpu: Vec<Option<f64>> =
                runs.iter().map(|run| median_of(run, model, c)).collect();
            let ratio: Vec<Option<f64>> = runs
                .iter()
                .map(|run| {
                    let ratio = paired_ratio(run, model, ours, c, cpu_of);
                    (model != ours && !ratio.is_nan()).then_some(ratio)
                })
                .collect();
            let (cpu_cells, cpu_gap) = repeated(&cpu, 2);
            let (ratio_cells, ratio_gap) = repeated(&ratio, 2);
            worst_cpu = worst_cpu.max(cpu_gap.unwrap_or(0.0));
            worst_ratio = worst_ratio.max(ratio_gap.unwrap_or(0.0));
            let gap = |g: Option<f64>| {
                g.map_or("-".to_owned(), |g| format!("{:.1}%", g * 100.0))
            };
            let _ = writeln!(
                out,
                "| {c} | {model} | {cpu_cells} | {} | {ratio_cells} | {} |",
                gap(cpu_gap),
                gap(ratio_gap),
            );
        }
    }
    let verdict = |worst: f64| {
        if worst <= REPEAT_TOLERANCE {
            "within"
        } else {
            "**not** within"
        }
    };
    let _ = writeln!(
        out,
        "\n{} runs of the goal rounds, one after another. {} A cell is \
         the median of a run's rounds (against {ours}: of the rounds' \
         ratios). Largest gap: how far the farthest run's median lies from \
         the median of the runs. The comparisons, each model against \
         {ours}: largest gap {:.1}%, {} ±{:.0}%. Server CPU per message \
         itself, which moves with the machine: largest gap {:.1}%, {} \
         ±{:.0}%.",
        runs.len(),
        rounds_note(runs.first().map_or(&[][..], |run| &run[..]), tries),
        worst_ratio * 100.0,
        verdict(worst_ratio),
        REPEAT_TOLERANCE * 100.0,
        worst_cpu * 100.0,
        verdict(worst_cpu),
        REPEAT_TOLERANCE * 100.0,
    );
    out
}

/// `values` as `a / b / c` (a dash for a run that measured nothing), and
/// the largest distance of one from their median, as a fraction of it;
/// `None` with fewer than two values.
fn repeated(values: &[Option<f64>], decimals: usize) -> (String, Option<f64>) {
    let cells: Vec<String> = values
        .iter()
        .map(|v| v.map_or("-".to_owned(), |v| format!("{v:.decimals$}")))
        .collect();
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    let middle = median(present.iter().copied());
    let gap = (present.len() >= 2 && middle > 0.0).then(|| {
        present
            .iter()
            .map(|v| (v - middle).abs() / middle)
            .fold(0.0, f64::max)
    });
    (cells.join(" / "), gap)
}

/// The median of `values` (the mean of the middle two for an even
/// count); 0 for none.
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Under every table of rounds: how to read a cell.
const SPREAD_NOTE: &str = "\nEach cell: the median of the rounds, and \
    (in parentheses) the lowest and highest. A difference is called only \
    where the ranges do not overlap; otherwise it is within noise.\n";

/// One figure over rounds: its median and its range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The median.
    pub median: f64,
    /// The lowest round.
    pub min: f64,
    /// The highest round.
    pub max: f64,
    /// How many rounds.
    pub rounds: usize,
}

impl Spread {
    /// The spread of `values`, NaN (not measured) left out; `None` if
    /// there are none.
    pub fn of(values: impl Iterator<Item = f64>) -> Option<Spread> {
        let values: Vec<f64> = values.filter(|v| !v.is_nan()).collect();
        if values.is_empty() {
            return None;
        }
        Some(Spread {
            median: median(values.iter().copied()),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            rounds: values.len(),
        })
    }

    /// `4.00 (3.95-4.10)`, with `decimals` digits after the point.
    pub fn cell(&self, decimals: usize) -> String {
        format!(
            "{:.d$} ({})",
            self.median,
            self.range(decimals),
            d = decimals
        )
    }

    /// Whether this figure is at most `factor` times `other`: yes if
    /// every round of it is below every round of `other` scaled, no if
    /// every round is above, and within noise if the ranges overlap.
    pub fn at_most(&self, other: &Spread, factor: f64) -> Verdict {
        if self.max <= factor * other.min {
            Verdict::Yes
        } else if self.min > factor * other.max {
            Verdict::No
        } else {
            Verdict::WithinNoise
        }
    }

    /// A ratio's spread for a comparison table, `1.20x (1.15-1.26),
    /// more`: `more` if every round's ratio is above 1, `less` if every
    /// one is below, `within noise` otherwise.
    pub fn ratio_cell(&self) -> String {
        let word = if self.max < 1.0 {
            "less"
        } else if self.min > 1.0 {
            "more"
        } else {
            "within noise"
        };
        format!("{:.2}x ({}), {word}", self.median, self.range(2))
    }

    /// `3.95-4.10`.
    fn range(&self, decimals: usize) -> String {
        format!("{:.d$}-{:.d$}", self.min, self.max, d = decimals)
    }

    /// One value, as a spread: what [`Spread::at_most`] compares a ratio
    /// with.
    pub fn exactly(value: f64) -> Spread {
        Spread {
            median: value,
            min: value,
            max: value,
            rounds: 1,
        }
    }
}

/// What rounds say about a goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Met in every round against every round.
    Yes,
    /// Missed in every round against every round.
    No,
    /// The ranges overlap: the rounds cannot tell.
    WithinNoise,
}

impl Verdict {
    /// The goals table's `met` cell.
    fn cell(self) -> &'static str {
        match self {
            Verdict::Yes => "yes",
            Verdict::No => "**no**",
            Verdict::WithinNoise => "within noise",
        }
    }
}

/// The distinct values of `items`, in first-seen order.
pub fn distinct(
    items: impl Iterator<Item = &'static str>,
) -> Vec<&'static str> {
    let mut seen = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

/// Now, as `YYYY-MM-DD HH:MM` in UTC, without a date crate.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        secs / 3600 % 24,
        secs / 60 % 60
    )
}

/// Days since 1970-01-01 to a calendar date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ranges that do not overlap decide; ranges that do are noise.
    #[test]
    fn spreads_decide_only_apart() {
        let a = Spread::of([4.0, 4.1, 3.9].into_iter()).expect("values");
        let b = Spread::of([5.0, 5.2, 4.8].into_iter()).expect("values");
        assert_eq!((a.median, a.min, a.max, a.rounds), (4.0, 3.9, 4.1, 3));
        assert_eq!(a.at_most(&b, 1.0), Verdict::Yes);
        assert_eq!(b.at_most(&a, 1.0), Verdict::No);
        assert_eq!(b.at_most(&a, 1.25), Verdict::WithinNoise);
        let ratios = Spread::of([0.8, 0.9, 0.85].into_iter()).expect("values");
        assert_eq!(ratios.ratio_cell(), "0.85x (0.80-0.90), less");
        assert_eq!(ratios.at_most(&Spread::exactly(1.0), 0.9), Verdict::Yes);
        assert_eq!(
            ratios.at_most(&Spread::exactly(1.0), 0.85),
            Verdict::WithinNoise
        );
        assert_eq!(a.cell(1), "4.0 (3.9-4.1)");
        assert!(Spread::of(std::iter::empty()).is_none());
    }

    /// A run's distance from the median of the runs, as a fraction of
    /// it; a run that measured nothing is a dash and is left out.
    #[test]
    fn repeated_runs_show_their_largest_gap() {
        let (cells, gap) = repeated(&[Some(1.0), Some(1.2), Some(0.95)], 2);
        assert_eq!(cells, "1.00 / 1.20 / 0.95");
        assert!((gap.expect("three runs") - 0.2).abs() < 1e-9);
        let (cells, gap) = repeated(&[Some(2.0), None, Some(2.0)], 1);
        assert_eq!((cells.as_str(), gap), ("2.0 / - / 2.0", Some(0.0)));
        assert_eq!(repeated(&[Some(2.0), None], 1).1, None);
    }

    /// The table compares each run with the book's event loop of the
    /// same run, and its last line says whether every gap is within the
    /// tolerance.
    #[test]
    fn repeatability_compares_within_each_run() {
        let row = |model, cpu| ZeroRow {
            model,
            connections: 100,
            server_cpu_us_per_msg: cpu,
            round: 1,
            status: Status::Ok,
            ..ZeroRow::default()
        };
        // The other model costs twice the book's loop in both runs,
        // though the machine was 5% slower in the second.
        let runs = [
            vec![row("epoll", 4.0), row("tokio", 8.0)],
            vec![row("epoll", 4.2), row("tokio", 8.4)],
        ];
        let table = repeatability_md(&runs, 1);
        assert!(
            table.contains(
                "| 100 | tokio | 8.00 / 8.40 | 2.4% | 2.00 / 2.00 | 0.0% |"
            ),
            "{table}"
        );
        assert!(table.contains("largest gap 2.4%, within ±10%"), "{table}");
        let far = [vec![row("epoll", 4.0)], vec![row("epoll", 6.0)]];
        assert!(repeatability_md(&far, 1).contains("**not** within"));
    }

    /// Each round's figure is set against the same round's base; a
    /// round the base failed in is left out.
    #[test]
    fn paired_ratios_match_rounds() {
        let row = |model, round, cpu| ZeroRow {
            model,
            connections: 10,
            server_cpu_us_per_msg: cpu,
            round,
            ..ZeroRow::default()
        };
        let mut rounds = vec![
            row("epoll", 1, 4.0),
            row("tokio", 1, 8.0),
            row("epoll", 2, 6.0),
            row("tokio", 2, 12.0),
            row("tokio", 3, 1.0),
        ];
        let cpu = |r: &ZeroRow| r.server_cpu_us_per_msg;
        assert_eq!(paired_ratio(&rounds, "tokio", "epoll", 10, cpu), 2.0);
        rounds[0].status = Status::Failed("no ack".into());
        rounds[2].status = Status::Failed("no ack".into());
        assert!(paired_ratio(&rounds, "tokio", "epoll", 10, cpu).is_nan());
    }

    /// A round of several turns counts with the mean of its turns that
    /// worked, and pairs with the base's round as a whole.
    #[test]
    fn rounds_of_turns_count_with_their_mean() {
        let turn = |model, round, turn, cpu| ZeroRow {
            model,
            connections: 10,
            server_cpu_us_per_msg: cpu,
            round,
            turn,
            ..ZeroRow::default()
        };
        let mut rows = vec![
            turn("epoll", 1, 1, 4.0),
            turn("tokio", 1, 1, 5.0),
            turn("epoll", 1, 2, 6.0),
            turn("tokio", 1, 2, 9.0),
            turn("epoll", 2, 1, 10.0),
            turn("tokio", 2, 1, 10.0),
            turn("epoll", 2, 2, 99.0),
        ];
        rows[6].status = Status::Failed("stolen".into());
        let cpu = |r: &ZeroRow| r.server_cpu_us_per_msg;
        let epoll = spread_of(&rows, "epoll", 10, cpu).unwrap();
        assert_eq!((epoll.min, epoll.max, epoll.rounds), (5.0, 10.0, 2));
        // Round 1: 7 over 5; round 2: 10 over 10.
        assert_eq!(paired_ratio(&rows, "tokio", "epoll", 10, cpu), 1.2);
    }

    /// Odd and even counts, and none.
    #[test]
    fn medians() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
        assert_eq!(median(std::iter::empty()), 0.0);
    }

    /// Known dates, including a leap day.
    #[test]
    fn calendar_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_418), (2025, 11, 26));
    }
}
