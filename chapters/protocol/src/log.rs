//! Per-event log lines on stderr, each naming who did the work.
//!
//! A line reads `12:00:01.250 [pid 4242 worker-3] ack sent to 127.0.0.1:50312`:
//! wall-clock time (UTC), process id, thread name. That is what lets a
//! reader see which process or thread served which client.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Turns per-event lines off (`--quiet`) or on.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether per-event lines are off.
fn is_quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Writes one event line, unless `--quiet`. Use [`event!`](crate::event).
pub fn write_event(args: fmt::Arguments<'_>) {
    if is_quiet() {
        return;
    }
    write_line(args);
}

/// Writes one line whatever `--quiet` says: for errors worth seeing.
pub fn write_line(args: fmt::Arguments<'_>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("thread");
    let line = format!(
        "{:02}:{:02}:{:02}.{:03} [pid {} {}] {}\n",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60,
        now.subsec_millis(),
        std::process::id(),
        name,
        args
    );
    // One write per line, so lines from several processes or threads do not
    // interleave mid-line. A failed log write is not worth dying for.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// A message's text for a log line: quoted like `{:?}`, and cut after
/// [`Preview::LIMIT`] characters with the full length said.
///
/// A message may hold up to `--max-message-bytes` of control bytes, each
/// quoted as six characters (`\u{1}`): logged whole, one 64 KiB message
/// would be a 384 KiB line, and a string that size per connection.
///
/// ```
/// use protocol::log::Preview;
///
/// assert_eq!(Preview("package 0").to_string(), "\"package 0\"");
/// let long = "x".repeat(1000);
/// assert_eq!(
///     Preview(&long).to_string(),
///     format!("\"{}\"... (1000 bytes)", "x".repeat(Preview::LIMIT))
/// );
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Preview<'a>(pub &'a str);

impl Preview<'_> {
    /// Characters of the message shown, at most.
    pub const LIMIT: usize = 60;
}

impl fmt::Display for Preview<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Messages are ASCII, so a byte index is a character boundary;
        // `get` keeps it safe for any `str` all the same.
        match self.0.get(..Preview::LIMIT) {
            Some(head) if head.len() < self.0.len() => {
                write!(f, "{head:?}... ({} bytes)", self.0.len())
            }
            _ => write!(f, "{:?}", self.0),
        }
    }
}

/// Logs one per-event line: `event!("accepted {peer}")`.
#[macro_export]
macro_rules! event {
    ($($arg:tt)*) => {
        $crate::log::write_event(format_args!($($arg)*))
    };
}

/// Logs one line even under `--quiet`: `warn!("accept failed: {e}")`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {
        $crate::log::write_line(format_args!($($arg)*))
    };
}
