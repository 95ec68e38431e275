//! The per-connection scenario: chapter 3's two servers, a thread for
//! every connection and the pool, side by side at 100, 1,000 and 10,000
//! connections, and at their limits.
//!
//! At each count, on a fresh server:
//!
//! 1. **A burst**: that many clients connect at once, each for one
//!    message and `goodbye`; the time from the first connect to the last
//!    close says how fast the server takes a crowd in.
//! 2. **A closed loop** at zero work, as in scenario 3, on the same
//!    server: messages/s, the 99th percentile, server CPU per message,
//!    and - at the window's end - the server's threads and resident
//!    memory.
//!
//! Then **the limit**: a burst of clients against each server once it
//! cannot take them all. The thread per connection runs with its
//! address space capped so that about [`Plan::limit_threads`] thread
//! stacks fit (the limit a real server meets as threads or memory run
//! out); the pool with its queue at the default. Each says `err server
//! busy` to the clients it cannot take; the table counts them.

use std::fmt::Write as _;

use harness::conformance::{mapped_bytes, set_limit};

use super::driver::{self, Load, Until};
use super::report::{csv_text, failed_md_row, Status};
use super::{Bench, Plan};
use crate::models::Model;

/// The two servers compared, by registry name.
pub const MODELS: [&str; 2] = ["thread-per-connection", "ch03-threaded"];

/// The pool's queue at the limit: its default, `--queue 64`.
const POOL_QUEUE: usize = 64;

/// Address space per thread the cap allows: a 2 MiB stack and its guard
/// page, rounded up.
const BYTES_PER_THREAD: u64 = (2 << 20) + (64 << 10);

/// One count of connections against one server.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// The model's label.
    pub model: &'static str,
    /// Connections, in the burst and in the closed loop.
    pub connections: usize,
    /// Time to serve the burst, first connect to last close.
    pub burst_ms: f64,
    /// Burst sessions acked, of `connections`.
    pub burst_acked: u64,
    /// The closed loop's throughput.
    pub msgs_per_s: f64,
    /// Its 99th percentile, send to ack.
    pub p99_us: f64,
    /// Server CPU per message in the closed loop.
    pub cpu_us_per_msg: f64,
    /// The server's threads at the loop's end.
    pub threads: usize,
    /// The server's resident memory at the loop's end.
    pub rss_kib: u64,
    /// `Ok`, or what went wrong.
    pub status: Status,
}

/// One server at its limit.
#[derive(Debug, Clone, Default)]
pub struct LimitRow {
    /// The model's label.
    pub model: &'static str,
    /// What limits it.
    pub limit: String,
    /// Clients in the burst.
    pub clients: usize,
    /// Of them, acked.
    pub acked: u64,
    /// Of them, turned away (`err server busy`) or failed (a reset, or
    /// no answer from a server that died).
    pub refused: u64,
    /// The first refusal, as the client saw it.
    pub first_refusal: String,
    /// Whether it serves once the burst is over (and its limit lifted).
    pub afterwards: String,
}

impl Bench<'_> {
    /// The per-connection scenario for one of [`MODELS`]: every count of
    /// the plan, then the limit.
    pub(super) fn per_connection(
        &self,
        model: &Model,
        rows: &mut Vec<Row>,
        limits: &mut Vec<LimitRow>,
    ) {
        for &connections in &self.plan.per_connection {
            self.step(format!(
                "{}: per-connection, {connections} connections",
                model.name
            ));
            rows.push(self.per_connection_point(model, connections));
            self.bar.inc(1);
        }
        self.step(format!("{}: per-connection, at the limit", model.name));
        limits.push(self.at_the_limit(model));
        self.bar.inc(1);
    }

    /// One count: the burst, then the closed loop, on one server.
    fn per_connection_point(&self, model: &Model, connections: usize) -> Row {
        let mut row = Row {
            model: model.label,
            connections,
            ..Row::default()
        };
        let queue = Some(connections.max(POOL_QUEUE));
        let server = match self.start(model, queue, &["--work-ms", "0"]) {
            Ok(server) => server,
            Err(e) => {
                row.status = Status::Failed(format!("start: {e}"));
                return row;
            }
        };
        match driver::run(server.addr(), &burst(connections)) {
            Ok(outcome) => {
                row.burst_ms = outcome.elapsed.as_secs_f64() * 1e3;
                row.burst_acked = outcome.messages;
                row.status = Status::of(&outcome, connections as u64);
            }
            Err(e) => row.status = Status::Failed(format!("burst: {e}")),
        }
        // A thread per connection is slower to take its connections
        // than an event loop: twice the sweep's time to open them.
        let warmup = super::warmup(&self.plan, connections)
            .max(super::opening(connections) * 2);
        match self.closed_loop(&server, connections, warmup, self.plan.window) {
            Ok(mut window) => {
                let mut zero = super::report::ZeroRow::default();
                super::fill_window(&mut zero, &mut window, self.plan.window);
                row.msgs_per_s = zero.msgs_per_s;
                row.p99_us = zero.p99_us;
                row.cpu_us_per_msg = zero.server_cpu_us_per_msg;
                row.rss_kib = zero.server_rss_kib;
                row.threads = window.threads;
                if row.status == Status::Ok {
                    row.status = zero.status;
                }
            }
            Err(why) => row.status = Status::Failed(why),
        }
        row
    }

    /// A burst of [`Plan::limit_burst`] clients against a server that
    /// cannot take them all at once.
    fn at_the_limit(&self, model: &Model) -> LimitRow {
        let plan = &self.plan;
        let mut row = LimitRow {
            model: model.label,
            clients: plan.limit_burst,
            ..LimitRow::default()
        };
        let queue = Some(POOL_QUEUE);
        let server = match self.start(model, queue, &["--work-ms", "0"]) {
            Ok(server) => server,
            Err(e) => {
                row.limit = format!("failed to start: {e}");
                return row;
            }
        };
        let mut capped = None;
        row.limit = if model.takes_queue {
            format!("{} workers, --queue {POOL_QUEUE}", super::WORKERS)
        } else {
            // Served once, so that every thread the server keeps has
            // started before the cap.
            let _ = super::probe(&server);
            let pid = server.pid();
            let budget = BYTES_PER_THREAD * plan.limit_threads as u64;
            let cap = mapped_bytes(pid)
                .ok_or_else(|| "no VmSize".to_owned())
                .and_then(|mapped| {
                    set_limit(pid, libc::RLIMIT_AS, Some(mapped + budget))
                        .map_err(|e| e.to_string())
                });
            match cap {
                Ok(old) => {
                    capped = Some(old);
                    format!(
                        "address space for about {} more threads",
                        plan.limit_threads
                    )
                }
                Err(e) => format!("cannot cap its address space: {e}"),
            }
        };
        match driver::run(server.addr(), &burst(plan.limit_burst)) {
            Ok(outcome) => {
                row.acked = outcome.messages;
                row.refused = outcome.errors;
                row.first_refusal =
                    outcome.error_samples.first().cloned().unwrap_or_default();
            }
            Err(e) => row.first_refusal = format!("driver: {e}"),
        }
        // The limit lifted, does it serve as before?
        if let Some(old) = capped {
            let _ =
                set_limit(server.pid(), libc::RLIMIT_AS, Some(old.rlim_cur));
        }
        row.afterwards = match super::probe(&server) {
            Ok(()) => "serves".into(),
            Err(e) => {
                // Why it died: an allocation that failed (Rust aborts
                // then), a panic, or else its last words.
                let log = server.log();
                let why = log
                    .lines()
                    .find(|l| l.contains("allocation") || l.contains("panic"))
                    .or_else(|| log.lines().last())
                    .unwrap_or("");
                // Without the build's path to std's source.
                let why = match why.split_once(" at /") {
                    Some((what, place)) => {
                        let file = place.rsplit('/').next().unwrap_or(place);
                        format!("{what} in {}", file.trim_end_matches(':'))
                    }
                    None => why.to_owned(),
                };
                format!("does not serve ({e}): {why}")
            }
        };
        row
    }
}

/// `connections` clients at once, one message and `goodbye` each.
fn burst(connections: usize) -> Load {
    Load {
        connections,
        session_messages: 1,
        message: b"ping".to_vec(),
        until: Until::SessionsDone {
            timeout: std::time::Duration::from_secs(60),
        },
    }
}

/// The servers of [`MODELS`] among `chosen`, in the registry's order.
pub fn chosen<'m>(chosen: &[&'m Model]) -> Vec<&'m Model> {
    chosen
        .iter()
        .copied()
        .filter(|m| MODELS.contains(&m.name))
        .collect()
}

/// The rows as CSV, one line per server and count.
pub fn csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "model,connections,burst_ms,burst_acked,msgs_per_s,p99_us,\
         server_cpu_us_per_msg,server_threads,server_rss_kib,status\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{:.1},{},{:.0},{:.0},{:.2},{},{},{}",
            r.model,
            r.connections,
            r.burst_ms,
            r.burst_acked,
            r.msgs_per_s,
            r.p99_us,
            r.cpu_us_per_msg,
            r.threads,
            r.rss_kib,
            r.status.text()
        );
    }
    out
}

/// The limit rows as CSV.
pub fn limits_csv(rows: &[LimitRow]) -> String {
    let mut out =
        String::from("model,limit,clients,acked,refused,first,afterwards\n");
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{}",
            r.model,
            csv_text(&r.limit),
            r.clients,
            r.acked,
            r.refused,
            csv_text(&r.first_refusal),
            csv_text(&r.afterwards)
        );
    }
    out
}

/// Both tables as Markdown, with the run's date.
pub fn md(rows: &[Row], limits: &[LimitRow], date: &str) -> String {
    let mut out = format!(
        "Measured {date} UTC, zero work.\n\n\
         | model | conns | burst ms | burst acked | msgs/s | p99 µs | \
         server CPU µs/msg | threads | RSS MiB |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    );
    for r in rows {
        if let Status::Failed(why) = &r.status {
            out.push_str(&failed_md_row(r.model, r.connections, why, 6));
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} | {:.0} | {:.0} | {:.1} | {} | {:.1} |",
            r.model,
            r.connections,
            r.burst_ms,
            r.burst_acked,
            r.msgs_per_s,
            r.p99_us,
            r.cpu_us_per_msg,
            r.threads,
            r.rss_kib as f64 / 1024.0
        );
    }
    out.push_str(
        "\n| model | at its limit | clients | acked | refused or failed | \
         first refusal | afterwards |\n\
         | --- | --- | ---: | ---: | ---: | --- | --- |\n",
    );
    for r in limits {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.model,
            r.limit,
            r.clients,
            r.acked,
            r.refused,
            r.first_refusal.replace('|', "/"),
            r.afterwards.replace('|', "/")
        );
    }
    out
}

/// The steps this scenario adds to the progress bar for `models`.
pub fn steps(plan: &Plan, models: usize) -> usize {
    models * (plan.per_connection.len() + 1)
}
