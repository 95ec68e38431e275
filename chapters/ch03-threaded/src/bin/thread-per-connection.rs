//! Starts chapter 3's first server, a thread per connection:
//! `cargo run -p ch03-threaded --bin thread-per-connection -- --help`.
//!
//! Its story is chapter 3's `main`, told by `cli::run`: parse the flags,
//! install the shutdown switch, bind, say where it listens, serve.
use std::process::ExitCode;

use ch03_threaded::per_connection::{serve, ABOUT};
use protocol::cli;

fn main() -> ExitCode {
    cli::run("thread-per-connection", ABOUT, std::env::args_os(), serve)
}
