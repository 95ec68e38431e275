//! The steps of every server's `main`, one function each, so that each
//! `main.rs` reads as the story of starting a server: [`parse`] the flags,
//! install the shutdown switch ([`Shutdown::on_signals`]), [`bind`],
//! [`announce`] the address, call the model's `serve`, and turn how it all
//! ended into an [`exit_code`]. [`run`] tells the same story for the tour,
//! which picks the model at run time.

use std::ffi::OsString;
use std::io::{self, Write};
use std::net::TcpListener;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::config::Config;
use crate::shutdown::Shutdown;

/// A model's entry point: serve clients on `listener` until `shutdown` is
/// triggered.
pub type Serve = fn(TcpListener, &Config, Shutdown) -> io::Result<()>;

/// Why a server stopped before serving, or how its serving failed.
#[derive(Debug)]
pub enum Exit {
    /// Already reported (help printed, or a bad flag named): exit with
    /// this code and say nothing more.
    Code(ExitCode),
    /// A failure to report as one line, then exit 1.
    Failed(io::Error),
}

impl From<io::Error> for Exit {
    fn from(error: io::Error) -> Exit {
        Exit::Failed(error)
    }
}

/// Runs the server `name`, whose entry point is `serve`, with `args` (the
/// first one is the program name, as in `std::env::args_os`): each
/// chapter's `main`, for a model chosen at run time.
pub fn run(
    name: &'static str,
    about: &'static str,
    args: impl IntoIterator<Item = OsString>,
    serve: Serve,
) -> ExitCode {
    let started = || -> Result<(), Exit> {
        let config = parse(name, about, args)?;
        let shutdown = Shutdown::on_signals()?;
        let listener = bind(&config)?;
        announce(&listener)?;
        serve(listener, &config, shutdown)?;
        Ok(())
    };
    exit_code(name, started())
}

/// Parses the flags of the server `name` from `args` (the first one is
/// the program name, as in `std::env::args_os`), and applies `--quiet`,
/// which holds for the whole process.
///
/// # Errors
///
/// [`Exit::Code`] once the help text is printed (exit 0) or a bad flag
/// reported (exit 2), see [`bad_arguments`].
pub fn parse(
    name: &'static str,
    about: &'static str,
    args: impl IntoIterator<Item = OsString>,
) -> Result<Config, Exit> {
    let command = Config::command().name(name).bin_name(name).about(about);
    let config = command
        .clone()
        .try_get_matches_from(args)
        .and_then(|mut matches| Config::from_arg_matches_mut(&mut matches))
        .and_then(|config| {
            config.validate().map(|()| config).map_err(|reason| {
                let mut command = command;
                command.error(clap::error::ErrorKind::ValueValidation, reason)
            })
        })
        .map_err(|e| Exit::Code(bad_arguments(name, &e)))?;
    crate::log::set_quiet(config.quiet);
    Ok(config)
}

/// Binds the listening socket on `--addr`.
///
/// # Errors
///
/// If the address is taken, not local, or malformed; the error names it.
pub fn bind(config: &Config) -> io::Result<TcpListener> {
    TcpListener::bind(&config.addr)
        .map_err(|e| context(&format!("cannot listen on {}", config.addr), e))
}

/// Prints `listening on HOST:PORT` with the real port, flushed at once:
/// tests and the tour wait for this line before they connect.
///
/// # Errors
///
/// If standard output is closed.
pub fn announce(listener: &TcpListener) -> io::Result<()> {
    let addr = listener.local_addr()?;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on {addr}")?;
    stdout.flush()
}

/// The exit code for how the server `name` ended, having printed a
/// failure as one line (`name: what went wrong`): no panic, no backtrace.
pub fn exit_code(name: &str, ended: Result<(), Exit>) -> ExitCode {
    match ended {
        Ok(()) => ExitCode::SUCCESS,
        Err(Exit::Code(code)) => code,
        Err(Exit::Failed(e)) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
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

/// `error`, with what we were doing in front of it, keeping its kind.
pub(crate) fn context(doing: &str, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{doing}: {error}"))
}
