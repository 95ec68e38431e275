//! `cargo run -p ch03-threaded -- --help`
use std::process::ExitCode;

fn main() -> ExitCode {
    protocol::cli::main(
        "ch03-threaded",
        ch03_threaded::ABOUT,
        ch03_threaded::serve,
    )
}
