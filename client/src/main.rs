//! `cargo run -p client -- 3`: the seed playground's Python client, in
//! Rust. Three clients connect to 127.0.0.1:3000 at once; each sends
//! `package 0` .. `package 4`, waits for `ack` after each, says `goodbye`
//! and closes. Prints the timeline as it happens, then a summary; with
//! `--chart` and `--svg`, draws it.
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use client::load::{self, Load, Report};
use client::timeline::server_log::ServerLog;
use client::timeline::{svg, text, Basis, Timeline};

/// Client lines in a `--chart`, at most: more clients share lines.
const CHART_ROWS: usize = 40;

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

    /// Start the clients one by one, this many milliseconds apart, instead
    /// of all at once: client k connects (k - 1) x this after the first.
    #[arg(long, default_value_t = 0)]
    arrive_ms: u64,

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

    /// After the summary, draw the run as text: a line per client (more
    /// than 40 share lines), waiting and served time across it. Not on
    /// by default, on a terminal or not: the printed events tell a few
    /// clients' story, and the output stays the same wherever it goes.
    #[arg(long)]
    chart: bool,

    /// Characters per line of the --chart [default: $COLUMNS, else 80].
    #[arg(long, requires = "chart",
          value_parser = clap::value_parser!(u16).range(30..))]
    chart_width: Option<u16>,

    /// Draw the --chart in plain ASCII (`#` served, `.` waiting), without
    /// colour, even on a terminal. (Off a terminal, or with NO_COLOR set,
    /// it has no colour anyway.)
    #[arg(long, requires = "chart")]
    ascii: bool,

    /// Write the run as an SVG timeline to this file: a row per client,
    /// waiting and served time on a time axis.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,

    /// What was run, e.g. the server's name: the --chart's and --svg's
    /// title starts with it.
    #[arg(long)]
    title: Option<String>,

    /// Draw the --chart's and --svg's time axis at least this long, so
    /// that pictures of different runs share one scale. A longer run
    /// keeps its whole, longer axis.
    #[arg(long, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..))]
    span_ms: Option<u64>,

    /// The server's stderr from this run, for --chart and --svg: split
    /// each message by the moments the server read it and sent its ack,
    /// and draw a row per server worker, instead of taking the last
    /// --work-ms of each latency as the served part.
    #[arg(long, value_name = "FILE")]
    server_log: Option<PathBuf>,
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
    // Said before the run, not after minutes of it.
    let drawing = args.chart || args.svg.is_some();
    if args.server_log.is_some() && !drawing {
        return Err("--server-log is read for --chart or --svg".into());
    }
    if args.title.is_some() && !drawing {
        return Err("--title is the title of --chart or --svg".into());
    }
    if args.span_ms.is_some() && !drawing {
        return Err("--span-ms is the axis of --chart or --svg".into());
    }
    let load = Load {
        addr: resolve(&args.addr)?,
        clients: args.clients as usize,
        messages: args.messages,
        throttle: Duration::from_millis(args.throttle_ms),
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
    };
    let every = Duration::from_millis(args.arrive_ms);
    let report = load::run_arriving(&load, every, |event| {
        if !args.quiet {
            // One write per line, so client threads never interleave.
            let _ = writeln!(io::stdout().lock(), "{event}");
        }
    })
    .map_err(|e| e.to_string())?;
    if !args.quiet {
        println!();
    }
    let work = args.work_ms.map(Duration::from_millis);
    println!("{}", report.summary(work));
    if drawing {
        draw(args, &report, work)?;
    }
    Ok(())
}

/// The run's timeline, as `--chart` on stdout and `--svg` to a file.
fn draw(
    args: &Cli,
    report: &Report,
    work: Option<Duration>,
) -> Result<(), String> {
    let mut timeline = match &args.server_log {
        None => Timeline::from_report(report, work),
        Some(path) => {
            let timeline = read_server_log(path, report, work)?;
            // With no message acked there is nothing to find in it.
            let found = matches!(timeline.basis, Basis::ServerLog { .. });
            if report.acked > 0 && !found {
                eprintln!(
                    "client: {} says nothing about this run's connections \
                     (a --quiet server, or another run's log?); drawing \
                     by work time",
                    path.display()
                );
            }
            timeline
        }
    };
    if let Some(what) = &args.title {
        timeline.title = format!("{what}: {}", timeline.title);
    }
    if let Some(span) = args.span_ms {
        timeline.stretch_to(Duration::from_millis(span));
        if timeline.span > Duration::from_millis(span) {
            eprintln!(
                "client: the run took {} ms, longer than --span-ms {span}: \
                 the axis is as long as the run",
                timeline.span.as_millis()
            );
        }
    }
    if args.chart {
        let mut style = text::Style::for_stdout();
        if args.ascii {
            style = text::Style::PLAIN;
        }
        let options = text::Options {
            width: chart_width(args.chart_width),
            max_rows: CHART_ROWS,
            style,
        };
        println!();
        print!("{}", text::render(&timeline, &options));
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, svg::render(&timeline))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The timeline of `report` split by the server log at `path`. A server
/// logs `ack sent` just after sending the ack, so the log may lag the
/// client by a moment: its last lines can still be on their way when the
/// last ack has arrived. Read again, briefly, until every message is
/// found.
fn read_server_log(
    path: &Path,
    report: &Report,
    work: Option<Duration>,
) -> Result<Timeline, String> {
    const TRIES: u32 = 10;
    let mut tried = 1;
    loop {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let log = ServerLog::parse(&text);
        let timeline = Timeline::with_server_log(report, work, &log);
        let complete = match timeline.basis {
            Basis::ServerLog { matched, total, .. } => matched == total,
            // Nothing of this run in it: not a lag, another log.
            _ => true,
        };
        if complete || tried == TRIES {
            return Ok(timeline);
        }
        tried += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `--chart-width`, else the terminal's width as the shell exports it,
/// else 80.
fn chart_width(flag: Option<u16>) -> usize {
    let columns = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok());
    flag.map(usize::from)
        .or(columns)
        .filter(|&w| w >= 30)
        .unwrap_or(80)
}

/// The first address `addr` names (it may be a host name).
fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("bad address {addr:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("bad address {addr:?}: no such host"))
}
