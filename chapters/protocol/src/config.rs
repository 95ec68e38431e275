//! The command line every server takes (the contract, book/contract.md).

use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::decoder::GOODBYE;
use crate::work::Work;

/// How a server simulates the work it does for each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorkKind {
    /// Wait without using the CPU, like a server waiting on a disk or
    /// another service.
    Sleep,
    /// Burn `--work-ms` of the thread's CPU time, like a server computing
    /// an answer (longer in wall time on a core shared with busy threads).
    Spin,
}

/// Every server's flags. Each model reads the ones that apply to it.
#[derive(Debug, Clone, Parser)]
pub struct Config {
    /// Where to listen, HOST:PORT; port 0 lets the OS choose.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub addr: String,

    /// Simulated work per message, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub work_ms: u64,

    /// Wait (like I/O) or burn CPU for the work.
    #[arg(long, value_enum, default_value_t = WorkKind::Sleep)]
    pub work_kind: WorkKind,

    /// Processes or threads, where the model has them.
    #[arg(long, default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub workers: u32,

    /// Accept-queue capacity, where the model has one.
    #[arg(long, default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub queue: u32,

    /// Longest accepted message, in content bytes (ETX not counted); at
    /// least 7, so that `goodbye` fits.
    #[arg(long, default_value_t = 65536, value_parser = message_limit)]
    pub max_message_bytes: usize,

    /// Close a connection that sends nothing for this long; 0 for never.
    #[arg(long, default_value_t = 30_000)]
    pub idle_timeout_ms: u64,

    /// No per-event log lines.
    #[arg(long)]
    pub quiet: bool,
}

impl Config {
    /// The simulated work for one message.
    pub fn work(&self) -> Work {
        Work {
            kind: self.work_kind,
            duration: Duration::from_millis(self.work_ms),
        }
    }

    /// The idle limit, or `None` when it is disabled (`0`).
    pub fn idle_timeout(&self) -> Option<Duration> {
        (self.idle_timeout_ms > 0)
            .then(|| Duration::from_millis(self.idle_timeout_ms))
    }
}

/// Parses `--max-message-bytes`: a limit below the length of `goodbye`
/// would turn every session's last message into a protocol violation.
fn message_limit(text: &str) -> Result<usize, String> {
    let limit: usize = text.parse().map_err(|e| format!("{e}"))?;
    if limit < GOODBYE.len() {
        return Err(format!(
            "{limit} is too small: `goodbye` alone is {} bytes",
            GOODBYE.len()
        ));
    }
    Ok(limit)
}

impl Default for Config {
    /// The defaults of the contract, as if no flag was given.
    fn default() -> Config {
        Config::parse_from(["server"])
    }
}
