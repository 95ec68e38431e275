//! `cargo run -p ch01-single -- --help`
use std::process::ExitCode;

fn main() -> ExitCode {
    protocol::cli::main("ch01-single", ch01_single::ABOUT, ch01_single::serve)
}
