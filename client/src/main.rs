//! `cargo run -p client -- 3`: the seed playground's Python client, in
//! Rust. Three clients connect to 127.0.0.1:3000 at once; each sends
//! `package 0` .. `package 4`, waits for `ack` after each, says `goodbye`
//! and closes. Prints the timeline as it happens, then a summary.
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use client::load::{self, Load};

/// Drive a chapter's server with concurrent clients, like the seed
/// playground's Python client, and report what parallelism it showed.
#[derive(Debug, Parser)]
#[command(name = "client")]
struct Cli {
    /// Clients connected at once, one thread each.
    #[arg(default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    clients: u32,

    /// The server, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: String,

    /// Messages each client sends before `goodbye`.
    #[arg(long, default_value_t = 5)]
    messages: usize,

    /// Pause after each ack before the next message, in milliseconds.
    #[arg(long, default_value_t = 0)]
    throttle_ms: u64,

    /// The server's --work-ms, if known: the parallelism is then exact
    /// rather than estimated from the smallest latency.
    #[arg(long)]
    work_ms: Option<u64>,

    /// Give up on a connect, read or write after this many milliseconds.
    /// A one-at-a-time server makes the last client wait for all the
    /// others, so keep it above the whole run.
    #[arg(long, default_value_t = 120_000)]
    timeout_ms: u64,

    /// Print only the summary, no timeline.
    #[arg(long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return protocol::cli::bad_arguments("client", &e),
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("client: {message}");
            ExitCode::FAILURE
        }
    }
}

/// One load run, printed; the error is the one line to show.
fn run(args: &Cli) -> Result<(), String> {
    let load = Load {
        addr: resolve(&args.addr)?,
        clients: args.clients as usize,
        messages: args.messages,
        throttle: Duration::from_millis(args.throttle_ms),
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
    };
    let report = load::run_with(&load, |event| {
        if !args.quiet {
            // One write per line, so client threads never interleave.
            let _ = writeln!(io::stdout().lock(), "{event}");
        }
    })
    .map_err(|e| e.to_string())?;
    if !args.quiet {
        println!();
    }
    println!(
        "{}",
        report.summary(args.work_ms.map(Duration::from_millis))
    );
    Ok(())
}

/// The first address `addr` names (it may be a host name).
fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("bad address {addr:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("bad address {addr:?}: no such host"))
}
