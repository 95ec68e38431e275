//! The idle-connections experiment, chapter 4's case for epoll: one
//! active closed-loop client beside N idle connections, N = 0, 100,
//! 1,000 and 10,000, against chapter 4's loop on poll(2) and on epoll.
//! The idle connections send nothing, so the
//! server's work per message is the same at every N - except how it asks
//! for readiness. Under poll every wait hands the kernel all N + 1
//! descriptors and scans them back, so the server's CPU per message grows
//! with N; under epoll a wait costs what is ready, one socket, so it
//! stays flat.
//!
//! The measurement is the zero-work scenario's window
//! ([`Bench::closed_loop_row`]) with one connection, taken after the idle
//! ones are open. The models take turns at each N, round after round,
//! so the figures compared side by side were measured minutes apart at
//! most.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;

use super::plot::{self, Chart};
use super::report::{distinct, median, Spread, Status, Verdict, ZeroRow};
use super::{limit, Bench};
use crate::models::{self, Model};

/// The models compared, in the table's order.
const MODELS: [&str; 2] = ["ch04-poll", "ch04-epoll"];

/// Descriptors kept free beside the idle connections, in this process
/// and in the server: the listener, the driver's socket and poller, the
/// standard streams, the shutdown switch, and room for a reconnect.
const SPARE_DESCRIPTORS: u64 = 100;

/// The goal: at the most idle connections, poll's CPU per message is at
/// least this many times epoll's...
const POLL_OVER_EPOLL: f64 = 10.0;
/// ...and epoll's at most this many times its own with none.
const EPOLL_GROWTH: f64 = 1.5;

/// One measurement: `idle` idle connections, and the active client's
/// window in `window` (whose `connections` is 1).
#[derive(Debug, Clone)]
pub struct Row {
    /// Idle connections open during the window.
    pub idle: usize,
    /// The active client's window.
    pub window: ZeroRow,
}

/// Runs the experiment and writes `idle-connections.{csv,md,svg}` into
/// `out`, with N capped by `open_files`, this process's open-file limit.
///
/// # Errors
///
/// If a file cannot be written. A server that fails is a failed row.
pub(super) fn run(
    bench: &Bench<'_>,
    out: &Path,
    open_files: u64,
) -> io::Result<()> {
    let options = bench.options;
    let chosen: Vec<&Model> = MODELS
        .iter()
        .filter(|n| {
            options.models.is_empty() || options.models.iter().any(|m| m == *n)
        })
        .filter_map(|n| models::find(n))
        .collect();
    let (idle, rounds) = if options.quick {
        (vec![0, 100], 1)
    } else {
        (vec![0, 1000, 10_000], 5)
    };
    // Each idle connection is a descriptor here and one in the server;
    // the bench raised this process's limit, and the server raises its
    // own to the same hard limit.
    let (fit, too_many): (Vec<usize>, Vec<usize>) = idle
        .into_iter()
        .partition(|&n| n as u64 + SPARE_DESCRIPTORS <= open_files);
    bench
        .bar
        .inc_length((rounds * fit.len() * chosen.len()) as u64);
    let mut rows = Vec::new();
    for round in 1..=rounds {
        for &n in &fit {
            for model in &chosen {
                bench.step(format!(
                    "idle connections: {} beside {n} idle, round {round}",
                    model.name
                ));
                let mut row = measure(bench, model, n);
                row.window.round = round;
                rows.push(row);
                bench.bar.inc(1);
            }
        }
    }
    fs::create_dir_all(out)?;
    fs::write(out.join("idle-connections.csv"), csv(&rows))?;
    fs::write(out.join("idle-connections.md"), markdown(&rows, &too_many))?;
    fs::write(out.join("idle-connections.svg"), svg(&rows))?;
    Ok(())
}

/// One point: a fresh server, `idle` connections that each exchange one
/// message (so the server has surely accepted and registered them) and
/// then wait, and the active client's window beside them.
fn measure(bench: &Bench<'_>, model: &Model, idle: usize) -> Row {
    let mut window = ZeroRow {
        model: model.label,
        connections: 1,
        ..ZeroRow::default()
    };
    // No idle limit: the idle connections must stay for the window.
    let flags = ["--work-ms", "0", "--idle-timeout-ms", "0"];
    let server = match bench.start(model, None, &flags) {
        Ok(server) => server,
        Err(e) => {
            window.status = Status::Failed(format!("start: {e}"));
            return Row { idle, window };
        }
    };
    let held = limit::open_acked(server.addr(), idle);
    if let Some(why) = held.first_error {
        let why = format!("opening {idle} idle connections: {why}");
        window.status = Status::Failed(why);
        return Row { idle, window };
    }
    let window = bench.closed_loop_row(&server, window);
    drop(held);
    Row { idle, window }
}

/// The median over rounds of `value` for `model` at `idle`, if any
/// round of it worked.
fn median_of(
    rows: &[Row],
    model: &str,
    idle: usize,
    value: impl Fn(&ZeroRow) -> f64,
) -> Option<f64> {
    let values: Vec<f64> = rows
        .iter()
        .filter(|r| r.idle == idle && r.window.model == model)
        .filter(|r| r.window.status == Status::Ok)
        .map(|r| value(&r.window))
        .collect();
    (!values.is_empty()).then(|| median(values.into_iter()))
}

/// The median and range over rounds of `value` for `model` at `idle`,
/// if any round of it worked.
fn spread_of(
    rows: &[Row],
    model: &str,
    idle: usize,
    value: impl Fn(&ZeroRow) -> f64,
) -> Option<Spread> {
    Spread::of(
        rows.iter()
            .filter(|r| r.idle == idle && r.window.model == model)
            .filter(|r| r.window.status == Status::Ok)
            .map(|r| value(&r.window)),
    )
}

fn cpu(row: &ZeroRow) -> f64 {
    row.server_cpu_us_per_msg
}

fn csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "model,idle_connections,round,messages,msgs_per_s,p50_us,p99_us,\
         server_cpu_us_per_msg,server_user_us_per_msg,\
         server_sleeps_per_100_msgs,server_rss_kib,status\n",
    );
    for Row { idle, window: r } in rows {
        let status = r.status.text();
        let _ = writeln!(
            out,
            "{},{idle},{},{},{:.0},{:.1},{:.1},{:.2},{:.2},{:.1},{},{status}",
            r.model,
            r.round,
            r.messages,
            r.msgs_per_s,
            r.p50_us,
            r.p99_us,
            r.server_cpu_us_per_msg,
            r.server_user_us_per_msg,
            r.server_sleeps_per_100,
            r.server_rss_kib,
        );
    }
    out
}

/// The table the book includes: per N, each model's server CPU per
/// message and messages per second (medians over the rounds), then the
/// goal, and anything that failed or did not fit.
fn markdown(rows: &[Row], too_many: &[usize]) -> String {
    let models = distinct(rows.iter().map(|r| r.window.model));
    let mut out = String::from("| idle connections |");
    for m in &models {
        let _ = write!(out, " {m} CPU µs/msg |");
    }
    for m in &models {
        let _ = write!(out, " {m} msgs/s |");
    }
    out.push_str("\n| ---: |");
    out.push_str(&" ---: |".repeat(2 * models.len()));
    out.push('\n');
    let mut idle: Vec<usize> = rows.iter().map(|r| r.idle).collect();
    idle.sort_unstable();
    idle.dedup();
    for &n in &idle {
        let _ = write!(out, "| {n} |");
        for m in &models {
            let _ = match spread_of(rows, m, n, cpu) {
                Some(v) => write!(out, " {} |", v.cell(1)),
                None => write!(out, " failed |"),
            };
        }
        for m in &models {
            let _ = match median_of(rows, m, n, |r| r.msgs_per_s) {
                Some(v) => write!(out, " {v:.0} |"),
                None => write!(out, " failed |"),
            };
        }
        out.push('\n');
    }
    let rounds = rows.iter().map(|r| r.window.round).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "\nOne active client, closed loop, zero work; the idle connections \
         each exchanged one message and then wait. Server CPU (user + \
         system) over the window divided by the messages acked: the \
         median of {rounds} rounds and (in parentheses) the lowest and \
         highest; msgs/s: the median. The models take turns at each count."
    );
    if let Some(&most) = idle.last() {
        out.push_str(&goal(rows, most));
    }
    for r in rows.iter().filter(|r| r.window.status != Status::Ok) {
        if let Status::Failed(why) = &r.window.status {
            let _ = writeln!(
                out,
                "\n{} beside {} idle, round {}: failed: {why}",
                r.window.model, r.idle, r.window.round
            );
        }
    }
    for n in too_many {
        let _ = writeln!(
            out,
            "\n{n} idle connections: not measured, over the open-file limit."
        );
    }
    out
}

/// The goal, as measured: poll against epoll at `most` idle connections,
/// and epoll at `most` against epoll at none.
fn goal(rows: &[Row], most: usize) -> String {
    let label = |name| models::find(name).map_or(name, |m| m.label);
    let (poll, epoll) = (label(MODELS[0]), label(MODELS[1]));
    let at = |model, n| spread_of(rows, model, n, cpu);
    let (Some(p), Some(e), Some(e0)) =
        (at(poll, most), at(epoll, most), at(epoll, 0))
    else {
        return "\nGoal: not measured (a point failed).\n".into();
    };
    let said = |verdict: Verdict| match verdict {
        Verdict::Yes => "met",
        Verdict::No => "**not met**",
        Verdict::WithinNoise => "within noise",
    };
    // Goals on the medians, decided only where every round agrees:
    // epoll <= poll / 10, and epoll at `most` <= 1.5 x epoll at none.
    format!(
        "\nAt {most} idle connections poll's CPU per message is {:.1} \
         times epoll's (goal: at least {POLL_OVER_EPOLL:.0}; {}), and \
         epoll's is {:.2} times its own with none (goal: at most \
         {EPOLL_GROWTH}; {}).\n",
        p.median / e.median,
        said(e.at_most(&p, 1.0 / POLL_OVER_EPOLL)),
        e.median / e0.median,
        said(e.at_most(&e0, EPOLL_GROWTH)),
    )
}

/// Server CPU per message against idle connections, a line per model
/// through the medians over the rounds, a bar from the lowest round to
/// the highest at each point.
fn svg(rows: &[Row]) -> String {
    let mut idle: Vec<usize> = rows.iter().map(|r| r.idle).collect();
    idle.sort_unstable();
    idle.dedup();
    let points: Vec<(&'static str, usize, Spread)> =
        distinct(rows.iter().map(|r| r.window.model))
            .into_iter()
            .flat_map(|m| {
                idle.iter().filter_map(move |&n| {
                    spread_of(rows, m, n, cpu).map(|v| (m, n, v))
                })
            })
            .collect();
    let refs: Vec<&(&'static str, usize, Spread)> = points.iter().collect();
    let x = |p: &(&'static str, usize, Spread)| p.1 as f64;
    let ranges = distinct(points.iter().map(|p| p.0))
        .into_iter()
        .map(|model| {
            let bars = points
                .iter()
                .filter(|p| p.0 == model)
                .map(|p| (x(p), p.2.min, p.2.max))
                .collect();
            (model, bars)
        })
        .collect();
    plot::draw(Chart {
        title: "one active client beside idle connections".into(),
        x_desc: "idle connections",
        y_desc: "server CPU per message (µs)",
        lines: plot::lines_by_model(&refs, |p| p.0, |p| (x(p), p.2.median)),
        ranges,
        x_log: false,
        y_log: false,
    })
}
