//! `cargo run -p ch05-tokio -- --help`
use std::process::ExitCode;

fn main() -> ExitCode {
    protocol::cli::main("ch05-tokio", ch05_tokio::ABOUT, ch05_tokio::serve)
}
