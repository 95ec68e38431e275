//! `cargo run -p ch04-epoll -- --help`
use std::process::ExitCode;

fn main() -> ExitCode {
    protocol::cli::main("ch04-epoll", ch04_epoll::ABOUT, ch04_epoll::serve)
}
