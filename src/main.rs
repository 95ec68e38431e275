//! `cargo run --release`: the tour. Starts every chapter's server, drives
//! each with the same concurrent load, and prints one table comparing the
//! parallelism each one showed with what its model predicts, each model's
//! run drawn as text under its row (`--no-timeline`: the table alone).
//!
//! `server-models serve <chapter> [flags]` runs one chapter's server, as
//! `cargo run -p <chapter> -- [flags]` would: the tour and the benchmark
//! start their servers that way, so one binary holds them all and is never
//! stale.
//!
//! `server-models bench` (`cargo run --release -- bench`) measures every
//! model for the chapter "Measuring the models".
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod bench;
mod models;
mod tour;

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use client::timeline::text;

use tour::Settings;

/// Every server model of the book, side by side under the same load.
#[derive(Debug, Parser)]
#[command(name = "server-models", args_conflicts_with_subcommands = true)]
struct Cli {
    /// Something other than the tour.
    #[command(subcommand)]
    command: Option<Command>,

    /// The tour's load.
    #[command(flatten)]
    tour: TourArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one chapter's server, e.g. `serve ch01-single --work-ms 100`.
    // `serve ch01-single --help` is the chapter's own help, so `--help`
    // must reach it rather than be answered here.
    #[command(disable_help_flag = true)]
    Serve {
        /// The chapter: ch01-single, ch02-prefork, ...
        chapter: String,
        /// The server's flags (see `serve <chapter> --help`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        flags: Vec<OsString>,
    },
    /// Measure every chapter's server side by side, for the book.
    Bench(bench::Options),
    /// Print the models: one line each, tab-separated, for scripts.
    Models,
}

/// The tour's load and server flags.
#[derive(Debug, Args)]
struct TourArgs {
    /// Clients connected at once.
    #[arg(long, default_value_t = 6,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    clients: u32,

    /// Messages each client sends.
    #[arg(long, default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    messages: u32,

    /// Each server's --work-ms (sleep work).
    #[arg(long, default_value_t = 100)]
    work_ms: u64,

    /// Each server's --workers, for the models that have workers.
    #[arg(long, default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    workers: u32,

    /// Print the table alone, without each model's timeline under its
    /// row.
    #[arg(long)]
    no_timeline: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return protocol::cli::bad_arguments("server-models", &e),
    };
    match cli.command {
        Some(Command::Serve { chapter, flags }) => serve(&chapter, flags),
        Some(Command::Models) => print_models(),
        Some(Command::Bench(options)) => match bench::run(&options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("server-models: bench: {e}");
                ExitCode::FAILURE
            }
        },
        None => run_tour(&cli.tour),
    }
}

/// Runs one chapter's server with `flags`, as its own binary would.
fn serve(chapter: &str, flags: Vec<OsString>) -> ExitCode {
    let Some(model) = models::find(chapter) else {
        let names: Vec<_> = models::MODELS.iter().map(|m| m.name).collect();
        eprintln!(
            "server-models: no chapter {chapter:?}; try one of {}",
            names.join(", ")
        );
        return ExitCode::from(2);
    };
    // As from the command line: the program name, then the flags.
    let args = std::iter::once(OsString::from(model.name)).chain(flags);
    protocol::cli::run(model.name, model.about, args, model.serve)
}

/// Prints the registry, one model a line: name, label, the parallelism
/// predicted with sleep and with spin work (on at most this machine's
/// cores), the pool flags it takes, the most connections it is measured
/// at, and `event-loop` if it is one.
fn print_models() -> ExitCode {
    let mut stdout = io::stdout().lock();
    for model in models::MODELS {
        let mut flags = Vec::new();
        if model.takes_workers {
            flags.push("--workers");
        }
        if model.takes_queue {
            flags.push("--queue");
        }
        let line = format!(
            "{}\t{}\t{}\tmin({}, cores)\t{}\t{}\t{}",
            model.name,
            model.label,
            model.sleep.rule(),
            model.spin.rule(),
            if flags.is_empty() {
                "-".to_owned()
            } else {
                flags.join(",")
            },
            model.max_connections,
            if model.event_loop { "event-loop" } else { "-" },
        );
        if writeln!(stdout, "{line}").is_err() {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// The tour; fails (after printing the whole table) if any model did.
fn run_tour(args: &TourArgs) -> ExitCode {
    let settings = Settings {
        clients: args.clients,
        messages: args.messages,
        work_ms: args.work_ms,
        workers: args.workers,
    };
    let rows = tour::run(&settings, |model| {
        eprintln!("running {} ...", model.name);
    });
    let mut stdout = io::stdout().lock();
    // Blocks in colour on a terminal (unless NO_COLOR), plain ASCII in a
    // pipe or file, such as the book's copy of this output.
    let timelines = (!args.no_timeline).then(text::Style::for_stdout);
    if let Err(e) = tour::print_table(&mut stdout, &settings, &rows, timelines)
    {
        eprintln!("server-models: {e}");
        return ExitCode::FAILURE;
    }
    if rows.iter().all(|row| row.outcome.is_ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
