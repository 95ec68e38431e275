//! The tour: every model under the same load, one after another, in one
//! table.
//!
//! Each server runs as its own process - this very binary, re-executed as
//! `server-models serve <chapter> ...` - exactly as `cargo run -p
//! <chapter>` would run it, on a port the OS picks. The load is the
//! `client` binary's: `clients` clients at once, `messages` messages each,
//! an `ack` awaited after each.

use std::io;
use std::time::Duration;

use client::load::{self, Load, Report};
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

/// Prints the table to `out`.
///
/// # Errors
///
/// If `out` cannot be written to.
pub fn print_table(
    out: &mut impl io::Write,
    settings: &Settings,
    rows: &[Row],
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
        "{:<14} {:>7} {:>8} {:>9} {:>11} {:>9}",
        "model", "clients", "messages", "wall", "parallelism", "predicted"
    )?;
    let work = Duration::from_millis(settings.work_ms);
    for row in rows {
        let predicted = row
            .model
            .predicted_sleep(settings.clients, settings.workers);
        match &row.outcome {
            Ok(report) => writeln!(
                out,
                "{:<14} {:>7} {:>8} {:>7.2} s {:>11.2} {:>9}",
                row.model.name,
                report.clients,
                report.acked,
                report.wall.as_secs_f64(),
                report.parallelism(Some(work)),
                predicted
            )?,
            Err(e) => writeln!(out, "{:<14} error: {e}", row.model.name)?,
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "parallelism: messages x work / wall, the messages worked on at once"
    )?;
    writeln!(out, "predicted, with sleep work:")?;
    for model in MODELS {
        writeln!(out, "  {:<14} {}", model.name, model.sleep.rule())?;
    }
    Ok(())
}
