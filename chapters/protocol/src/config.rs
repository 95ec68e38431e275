//! The command line every server takes: the flags, their defaults and
//! the values each accepts (the contract, book/contract.md, "Flags").
//!
//! A value that would defeat a limit is a bad flag, refused by the parser
//! like a typo: one line on stderr and exit 2 (`cli::bad_arguments`), before
//! the server binds anything.

use std::time::Duration;

use clap::{Parser, ValueEnum};

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

/// How an event loop asks the kernel which descriptors are ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PollerKind {
    /// epoll(7): the kernel keeps the interest list, and a wait costs
    /// what is ready.
    Epoll,
    /// poll(2): every wait hands the kernel the whole list, and costs
    /// what is registered.
    Poll,
}

/// How the loops of the many-loops server (chapter 7) share the
/// connections that arrive on one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Balance {
    /// One listening socket in every loop's epoll: a connection wakes
    /// every idle loop, and all but one find nothing to accept.
    Shared,
    /// The same socket, registered with EPOLLEXCLUSIVE: a connection
    /// wakes one idle loop (or a few).
    Exclusive,
    /// A listening socket per loop, all bound to the port with
    /// SO_REUSEPORT: the kernel hashes each connection to one of them.
    Reuseport,
}

/// The most content bytes `--max-message-bytes` may allow: 16 MiB. The
/// limit is what bounds a connection's memory; a larger one would let a
/// few thousand clients that never send ETX take tens of gigabytes.
pub const MESSAGE_BYTES_CEILING: usize = 16 * 1024 * 1024;

/// The most `--workers`: each is a process or a thread with its own
/// stack, and more than a thousand is a typo, not a tuning.
pub const WORKERS_CEILING: u32 = 1024;

/// The largest `--queue`: each waiting connection holds a descriptor, and
/// 65,536 is already more than a process may usually open.
pub const QUEUE_CEILING: u32 = 65_536;

/// The longest `--work-ms`, one hour. A signal's drain waits for the work
/// in progress, so a longer value would turn "exit within `--work-ms`
/// plus one second" into no promise at all.
pub const WORK_MS_CEILING: u64 = 60 * 60 * 1000;

/// Every server's flags. Each model reads the ones that apply to it.
#[derive(Debug, Clone, Parser)]
pub struct Config {
    /// Where to listen, HOST:PORT; port 0 lets the OS choose.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub addr: String,

    /// Simulated work per message, in milliseconds; at most 3600000 (one
    /// hour).
    #[arg(long, default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(..=WORK_MS_CEILING))]
    pub work_ms: u64,

    /// Wait (like I/O) or burn CPU for the work.
    #[arg(long, value_enum, default_value_t = WorkKind::Sleep)]
    pub work_kind: WorkKind,

    /// Processes or threads, where the model has them; 1 to 1024.
    #[arg(
        long,
        default_value_t = 5,
        value_parser = clap::value_parser!(u32)
            .range(1..=i64::from(WORKERS_CEILING)),
    )]
    pub workers: u32,

    /// Accept-queue capacity, where the model has one; 1 to 65536.
    #[arg(
        long,
        default_value_t = 64,
        value_parser = clap::value_parser!(u32)
            .range(1..=i64::from(QUEUE_CEILING)),
    )]
    pub queue: u32,

    /// Longest accepted message, in content bytes (ETX not counted); 7
    /// (so that `goodbye` fits) to 16777216 (16 MiB).
    #[arg(long, default_value_t = 65536, value_parser = message_limit)]
    pub max_message_bytes: usize,

    /// Readiness backend, for the event-loop servers only (chapter 4; the
    /// others ignore it).
    #[arg(long, value_enum, default_value_t = PollerKind::Epoll)]
    pub poller: PollerKind,

    /// Event loops, one thread each, for the many-loops server only
    /// (chapter 7; the others ignore it); 1 to 1024. Default: the
    /// number of CPUs the server may run on.
    #[arg(
        long,
        value_parser = clap::value_parser!(u32)
            .range(1..=i64::from(WORKERS_CEILING)),
    )]
    pub loops: Option<u32>,

    /// How the many-loops server (chapter 7) shares accepts among its
    /// loops; the others ignore it.
    #[arg(long, value_enum, default_value_t = Balance::Shared)]
    pub balance: Balance,

    /// Close a connection that sends nothing for this long; 0 for never.
    #[arg(long, default_value_t = 30_000)]
    pub idle_timeout_ms: u64,

    /// Time a client has to finish a message once its first byte arrived,
    /// in milliseconds, not counting time spent working on earlier ones;
    /// 0 for no limit. This is what bounds a client that trickles a byte
    /// every few seconds (the idle timeout never fires on it).
    #[arg(long, default_value_t = 10_000)]
    pub message_timeout_ms: u64,

    /// All connections' unfinished messages together, in bytes; at least
    /// --max-message-bytes. The event-loop servers evict the connections
    /// holding the largest ones to stay within it. In the blocking models
    /// (one worker per connection) --workers x --max-message-bytes
    /// already bounds this total: they accept the flag, and it changes
    /// nothing for them.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub max_buffered_bytes: usize,

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

    /// The number of event loops: `--loops`, or one per CPU the process
    /// may run on (its affinity mask and cgroup quota, as
    /// `std::thread::available_parallelism` reads them).
    pub fn loops(&self) -> u32 {
        self.loops.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(1))
                .min(WORKERS_CEILING)
        })
    }

    /// The time a started message has to finish, or `None` when it is
    /// disabled (`0`).
    pub fn message_timeout(&self) -> Option<Duration> {
        (self.message_timeout_ms > 0)
            .then(|| Duration::from_millis(self.message_timeout_ms))
    }

    /// Checks the rules that tie one flag to another, which clap's
    /// per-flag parsers cannot see: the buffer budget must hold at least
    /// one whole message, or no message could ever be received.
    ///
    /// # Errors
    ///
    /// A one-line reason naming the flag to fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_buffered_bytes < self.max_message_bytes {
            return Err(format!(
                "--max-buffered-bytes {} is less than \
                 --max-message-bytes {}: the budget must hold one message",
                self.max_buffered_bytes, self.max_message_bytes
            ));
        }
        Ok(())
    }
}

/// Parses `--max-message-bytes`: at least one byte (`goodbye` may pass a
/// smaller limit, see the decoder), and at most [`MESSAGE_BYTES_CEILING`],
/// above which memory would be unbounded in practice.
fn message_limit(text: &str) -> Result<usize, String> {
    let limit: usize = text.parse().map_err(|e| format!("{e}"))?;
    if limit == 0 {
        return Err("0 is too small: at least 1".into());
    }
    if limit > MESSAGE_BYTES_CEILING {
        return Err(format!(
            "{limit} is too large: at most {MESSAGE_BYTES_CEILING} (16 MiB)"
        ));
    }
    Ok(limit)
}

impl Default for Config {
    /// The contract's defaults, as if no flag was given.
    fn default() -> Config {
        Config::parse_from(["server"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    /// Parses `flag value` the way every server does, after the program
    /// name.
    fn parse(flag: &str, value: &str) -> Result<Config, clap::Error> {
        Config::try_parse_from(["server".to_owned(), format!("{flag}={value}")])
    }

    /// Each ranged flag takes its edges and refuses one past each, as a
    /// bad value (not a panic, not a wrapped-around number).
    #[test]
    fn ranges_are_inclusive_at_both_edges() {
        let ceiling = MESSAGE_BYTES_CEILING.to_string();
        let past = (MESSAGE_BYTES_CEILING + 1).to_string();
        let cases = [
            ("--max-message-bytes", "1", "0"),
            ("--max-message-bytes", ceiling.as_str(), past.as_str()),
            ("--workers", "1", "0"),
            ("--workers", "1024", "1025"),
            ("--queue", "1", "0"),
            ("--queue", "65536", "65537"),
            ("--loops", "1", "0"),
            ("--loops", "1024", "1025"),
            ("--work-ms", "0", "-1"),
            ("--work-ms", "3600000", "3600001"),
        ];
        for (flag, edge, beyond) in cases {
            let accepted = parse(flag, edge);
            assert!(accepted.is_ok(), "{flag} {edge}: {accepted:?}");
            let refused = parse(flag, beyond).map(|_| ()).unwrap_err();
            assert_eq!(refused.kind(), ErrorKind::ValueValidation);
            // The message names the flag, so the one line says what to fix.
            let text = refused.to_string();
            assert!(text.contains(flag), "{flag} {beyond}: {text}");
        }
    }

    /// The edges land in the fields unchanged.
    #[test]
    fn edge_values_are_kept() {
        let top = parse("--max-message-bytes", "16777216").expect("16 MiB");
        assert_eq!(top.max_message_bytes, 16 * 1024 * 1024);
        let hour = parse("--work-ms", "3600000").expect("one hour");
        assert_eq!(hour.work().duration, Duration::from_secs(3600));
        assert_eq!(parse("--workers", "1024").expect("1024").workers, 1024);
        assert_eq!(parse("--queue", "65536").expect("65536").queue, 65_536);
        assert_eq!(parse("--loops", "1024").expect("1024").loops(), 1024);
    }

    /// The defaults lie inside every range (they are parsed like any
    /// value, so `Config::default` would panic otherwise).
    #[test]
    fn defaults_are_valid() {
        let config = Config::default();
        assert_eq!(config.work_ms, 2000);
        assert_eq!(config.workers, 5);
        assert_eq!(config.queue, 64);
        assert_eq!(config.max_message_bytes, 65_536);
        assert_eq!(config.poller, PollerKind::Epoll);
        assert_eq!(config.message_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(config.max_buffered_bytes, 64 * 1024 * 1024);
        assert_eq!(config.validate(), Ok(()));
    }

    /// The budget must hold one whole message; equal is enough.
    #[test]
    fn budget_holds_at_least_one_message() {
        let parse2 = |budget: &str, message: &str| {
            Config::try_parse_from([
                "server",
                "--max-buffered-bytes",
                budget,
                "--max-message-bytes",
                message,
            ])
            .expect("each value parses alone")
        };
        assert_eq!(parse2("1000", "1000").validate(), Ok(()));
        let refused = parse2("999", "1000").validate().unwrap_err();
        assert!(refused.contains("--max-buffered-bytes"), "{refused}");
        assert_eq!(
            parse2("0", "1000").message_timeout(),
            Some(Duration::from_secs(10))
        );
    }

    /// `--message-timeout-ms 0` turns the deadline off.
    #[test]
    fn message_timeout_zero_is_none() {
        let off = parse("--message-timeout-ms", "0").expect("0");
        assert_eq!(off.message_timeout(), None);
    }

    /// `--poller` takes the two backends by name and refuses others.
    #[test]
    fn poller_takes_its_two_names() {
        assert_eq!(
            parse("--poller", "poll").expect("poll").poller,
            PollerKind::Poll
        );
        assert_eq!(
            parse("--poller", "epoll").expect("epoll").poller,
            PollerKind::Epoll
        );
        let refused = parse("--poller", "select").map(|_| ()).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::InvalidValue);
    }

    /// `--balance` takes its three ways by name; `--loops` defaults to
    /// the CPUs, which is at least one loop.
    #[test]
    fn balance_takes_its_three_names() {
        for (name, balance) in [
            ("shared", Balance::Shared),
            ("exclusive", Balance::Exclusive),
            ("reuseport", Balance::Reuseport),
        ] {
            assert_eq!(parse("--balance", name).expect(name).balance, balance);
        }
        let refused = parse("--balance", "random").map(|_| ()).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::InvalidValue);
        assert_eq!(Config::default().balance, Balance::Shared);
        assert!(Config::default().loops() >= 1);
    }

    /// A server started with a value past a limit exits 2 before it
    /// serves (or binds): the path every binary takes.
    #[test]
    fn out_of_range_exits_2_without_serving() {
        fn never(
            _: std::net::TcpListener,
            _: &Config,
            _: crate::Shutdown,
        ) -> std::io::Result<()> {
            panic!("a refused flag must not reach serve")
        }
        for (flag, beyond) in [
            ("--max-message-bytes", "16777217"),
            ("--workers", "1025"),
            ("--queue", "65537"),
            ("--work-ms", "3600001"),
            ("--max-buffered-bytes", "65535"),
        ] {
            let args = ["server", "--addr", "127.0.0.1:0", flag, beyond];
            let exit =
                crate::cli::run("server", "test", args.map(Into::into), never);
            assert_eq!(
                exit,
                std::process::ExitCode::from(2),
                "{flag} {beyond}"
            );
        }
    }
}
