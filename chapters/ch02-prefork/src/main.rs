//! `cargo run -p ch02-prefork -- --help`
use std::process::ExitCode;

fn main() -> ExitCode {
    protocol::cli::main(
        "ch02-prefork",
        ch02_prefork::ABOUT,
        ch02_prefork::serve,
    )
}
