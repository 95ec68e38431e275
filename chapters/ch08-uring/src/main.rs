//! Starts chapter 8's server: `cargo run -p ch08-uring -- --help`.
use std::process::ExitCode;

use ch08_uring::{serve, ABOUT};
use protocol::cli::{self, Exit};
use protocol::Shutdown;

const NAME: &str = "ch08-uring";

fn main() -> ExitCode {
    cli::exit_code(NAME, start())
}

/// Parses the flags, installs the shutdown switch, binds, says where it
/// listens, and serves until the switch is triggered.
fn start() -> Result<(), Exit> {
    let config = cli::parse(NAME, ABOUT, std::env::args_os())?;
    // Before anyone can learn our address: a SIGTERM sent the moment
    // `listening on` appears must stop the server politely, not kill it.
    let shutdown = Shutdown::on_signals()?;
    let listener = cli::bind(&config)?;
    cli::announce(&listener)?;
    serve(listener, &config, shutdown)?;
    Ok(())
}
