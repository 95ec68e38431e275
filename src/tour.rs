//! The tour: every model under the same load, one after another, in one
//! table.
//!
//! Each server runs as its own process - this very binary, re-executed as
//! `server-models serve <chapter> ...` - exactly as `cargo run -p
//! <chapter>` would run it, on a port the OS picks. The load is the
//! `client` binary's: `clients` clients at once, `messages` messages each,
//! an `ack` awaited after each.
//!
//! Under each model's row of the table, the tour draws that model's run
//! as text (the client's `timeline::text::sketch`): a line per client, on
//! one time scale for every model, so that the single server draws a
//! staircase, the pools as many lanes as they have workers, and the event
//! loops one block.

use std::io;
use std::time::Duration;

use client::load::{self, Load, Report};
use client::timeline::text::{self, Style};
use client::timeline::Timeline;
use harness::ServerProcess;

use crate::models::{Model, MODELS};

/// The load every model gets, and the flags every server gets.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Clients connected at once.
    pub clients: u32,
    /// Messages each client sends.
    pub messages: u32,
    /// The servers' `--work-ms` (sleep work).
    pub work_ms: u64,
    /// The servers' `--workers`, for the models that have workers.
    pub workers: u32,
}

/// One model's line in the table.
#[derive(Debug)]
pub struct Row {
    /// The model.
    pub model: &'static Model,
    /// What the load saw, or why there is nothing to see.
    pub outcome: Result<Report, String>,
}

/// Runs every model in turn and returns its rows, in chapter order.
/// `progress` is told which model starts, so a reader is not left
/// staring at nothing.
pub fn run(settings: &Settings, progress: impl Fn(&Model)) -> Vec<Row> {
    MODELS
        .iter()
        .map(|model| {
            progress(model);
            Row {
                model,
                outcome: measure(model, settings),
            }
        })
        .collect()
}

/// Starts `model`'s server, runs the load at it, stops it.
fn measure(model: &Model, settings: &Settings) -> Result<Report, String> {
    let program = std::env::current_exe()
        .map_err(|e| format!("cannot find this program: {e}"))?;
    let mut args = vec![
        "serve".to_owned(),
        model.name.to_owned(),
        "--work-ms".to_owned(),
        settings.work_ms.to_string(),
        "--quiet".to_owned(),
    ];
    // `--workers` for the models that have workers, as the registry says.
    args.extend(model.pool_flags(settings.workers, None));
    let mut server = ServerProcess::start(&program, &args)
        .map_err(|e| last_line(&e.to_string()))?;
    let load = Load {
        addr: server.addr(),
        clients: settings.clients as usize,
        messages: settings.messages as usize,
        throttle: Duration::ZERO,
        // The slowest model serves one message at a time: the last
        // client may wait for every other message before its first ack.
        timeout: Duration::from_millis(
            settings.work_ms
                * u64::from(settings.clients)
                * u64::from(settings.messages),
        ) + Duration::from_secs(10),
    };
    let outcome = load::run(&load).map_err(|e| {
        // A server that died says why on stderr; that beats "refused".
        match server.wait_timeout(Duration::from_millis(200)) {
            Ok(Some(status)) => format!(
                "server exited ({status}): {}",
                last_line(&server.log())
            ),
            _ => e.to_string(),
        }
    });
    // Dropping the handle kills whatever does not stop in time.
    let _ = server.terminate(Duration::from_secs(2));
    outcome
}

/// The line of `text` that says what went wrong: a panic message if
/// there is one (the lines after it are about backtraces), else the last.
fn last_line(text: &str) -> String {
    let mut lines = text.lines().rev().filter(|l| !l.trim().is_empty());
    let panic = lines.clone().find(|l| l.contains("panicked"));
    panic
        .or_else(|| lines.next())
        .unwrap_or("no output")
        .trim()
        .to_owned()
}

/// Characters per timeline line, after its indent: the table and its
/// timelines fit an 80-column terminal.
const TIMELINE_WIDTH: usize = 76;
/// The indent that sets a timeline under its model's row.
const TIMELINE_INDENT: &str = "    ";
/// Client lines per timeline, at most: more clients share lines.
const TIMELINE_ROWS: usize = 8;

/// Prints the table to `out`, and under each model's row its timeline,
/// drawn in `timelines`' style, if given.
///
/// # Errors
///
/// If `out` cannot be written to.
pub fn print_table(
    out: &mut impl io::Write,
    settings: &Settings,
    rows: &[Row],
    timelines: Option<Style>,
) -> io::Result<()> {
    writeln!(
        out,
        "{} clients x {} messages, {} ms of sleep work per message, \
         --workers {}",
        settings.clients, settings.messages, settings.work_ms, settings.workers
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<21} {:>7} {:>8} {:>9} {:>11} {:>9}",
        "model", "clients", "messages", "wall", "parallelism", "predicted"
    )?;
    let work = Duration::from_millis(settings.work_ms);
    let drawings = timelines.map(|style| drawings(rows, work, style));
    for (i, row) in rows.iter().enumerate() {
        let predicted = row
            .model
            .predicted_sleep(settings.clients, settings.workers);
        match &row.outcome {
            Ok(report) => writeln!(
                out,
                "{:<21} {:>7} {:>8} {:>7.2} s {:>11.2} {:>9}",
                row.model.name,
                report.clients,
                report.acked,
                report.wall.as_secs_f64(),
                report.parallelism(Some(work)),
                predicted
            )?,
            Err(e) => writeln!(out, "{:<21} error: {e}", row.model.name)?,
        }
        if let Some((sketches, _)) = &drawings {
            for line in sketches[i].lines() {
                writeln!(out, "{TIMELINE_INDENT}{line}")?;
            }
            writeln!(out)?;
        }
    }
    if drawings.is_none() {
        writeln!(out)?;
    }
    writeln!(
        out,
        "parallelism: messages x work / wall, the messages worked on at once"
    )?;
    writeln!(out, "predicted, with sleep work:")?;
    for model in MODELS {
        writeln!(out, "  {:<21} {}", model.name, model.sleep.rule())?;
    }
    if let Some((_, legend)) = &drawings {
        writeln!(out, "timelines: a line per client, one time scale for all")?;
        write!(out, "{legend}")?;
    }
    Ok(())
}

/// Each row's timeline as text (nothing for a model that failed), all on
/// the longest run's time scale, and the legend that explains them.
fn drawings(
    rows: &[Row],
    work: Duration,
    style: Style,
) -> (Vec<String>, String) {
    let mut timelines: Vec<Option<Timeline>> = rows
        .iter()
        .map(|row| {
            let report = row.outcome.as_ref().ok()?;
            Some(Timeline::from_report(report, Some(work)))
        })
        .collect();
    let span = timelines.iter().flatten().map(|t| t.span).max();
    let options = text::Options {
        width: TIMELINE_WIDTH,
        max_rows: TIMELINE_ROWS,
        style,
    };
    let sketches = timelines
        .iter_mut()
        .map(|timeline| match timeline {
            Some(timeline) => {
                timeline.stretch_to(span.unwrap_or_default());
                text::sketch(timeline, &options)
            }
            None => String::new(),
        })
        .collect();
    let legend = timelines
        .iter()
        .flatten()
        .next()
        .map(|timeline| text::legend(timeline, &options))
        .unwrap_or_default();
    (sketches, legend)
}
