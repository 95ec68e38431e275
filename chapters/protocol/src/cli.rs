//! What every server's `main` does: parse the flags, bind, announce the
//! address, hand over to the model's `serve`, and turn failures into one
//! clear line and an exit code.

use std::ffi::OsString;
use std::io::{self, Write};
use std::net::TcpListener;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::config::Config;
use crate::shutdown::Shutdown;

/// A model's entry point: serve clients on `listener` until shut down.
pub type Serve = fn(TcpListener, &Config) -> io::Result<()>;

/// Runs a server binary named `name` with the process's arguments.
pub fn main(name: &'static str, about: &'static str, serve: Serve) -> ExitCode {
    run(name, about, std::env::args_os(), serve)
}

/// Runs a server named `name` with `args` (the first one is the program
/// name, as in `std::env::args_os`).
pub fn run(
    name: &'static str,
    about: &'static str,
    args: impl IntoIterator<Item = OsString>,
    serve: Serve,
) -> ExitCode {
    let config = match parse(name, about, args) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    crate::log::set_quiet(config.quiet);
    let listener = match TcpListener::bind(&config.addr) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("{name}: cannot listen on {}: {e}", config.addr);
            return ExitCode::FAILURE;
        }
    };
    // Catch SIGINT and SIGTERM before anyone can learn our address: a
    // signal sent the moment `listening on` appears must stop the server
    // politely, not kill it. The model's `Shutdown::on_signals` gets this
    // same switch, already on if a signal came in between.
    if let Err(e) = Shutdown::on_signals() {
        eprintln!("{name}: cannot handle signals: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = announce(&listener) {
        eprintln!("{name}: {e}");
        return ExitCode::FAILURE;
    }
    match serve(listener, &config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the flags; on failure prints one line (or the help text, which
/// is asked for) and says how to exit.
fn parse(
    name: &'static str,
    about: &'static str,
    args: impl IntoIterator<Item = OsString>,
) -> Result<Config, ExitCode> {
    let command = Config::command().name(name).bin_name(name).about(about);
    let parsed = command
        .try_get_matches_from(args)
        .and_then(|mut matches| Config::from_arg_matches_mut(&mut matches));
    parsed.map_err(|e| bad_arguments(name, &e))
}

/// Prints clap's verdict on the command line of the program `name`: help
/// (or the version) in full, for exit 0; an error as one line, for exit 2.
/// Every binary in the workspace answers bad flags this way.
pub fn bad_arguments(name: &str, e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
    if matches!(e.kind(), DisplayHelp | DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    // clap's message spans several lines; keep the first, which says what
    // is wrong.
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("bad arguments");
    let first = first.trim_start_matches("error: ");
    eprintln!("{name}: {first} (see --help)");
    ExitCode::from(2)
}

/// Prints `listening on HOST:PORT` with the real port, flushed at once:
/// tests and the tour wait for this line before they connect.
fn announce(listener: &TcpListener) -> io::Result<()> {
    let addr = listener.local_addr()?;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on {addr}")?;
    stdout.flush()
}
