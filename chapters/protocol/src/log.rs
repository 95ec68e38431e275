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
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("thread");
    let mut line = String::new();
    // Writing into a `String` cannot fail.
    let _ = format_line(&mut line, std::process::id(), name, args);
    // One write per line, so lines from several processes or threads do not
    // interleave mid-line. A failed log write is not worth dying for.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Writes one event line, unless `--quiet`, from a signal handler.
///
/// [`write_event`] may not run there: the signal may have interrupted a
/// thread that holds stderr's lock, or the allocator's, and taking either
/// again would deadlock. This formats into a buffer on the stack and
/// writes with write(2), and asks the kernel, not std, for the thread's
/// name: each step is async-signal-safe (clock_gettime, getpid, gettid,
/// prctl and write are system calls; formatting into a fixed buffer
/// allocates nothing and takes no lock).
pub fn write_event_from_signal_handler(args: fmt::Arguments<'_>) {
    if is_quiet() {
        return;
    }
    let mut line = StackLine::default();
    let mut name = [0u8; 16];
    // `format_line` fails only when the line does not fit: then it is cut
    // short, with its newline.
    if format_line(&mut line, std::process::id(), kernel_name(&mut name), args)
        .is_err()
    {
        line.cut();
    }
    let bytes = &line.buf[..line.len];
    // SAFETY: `bytes` is a valid, initialised slice for the whole call.
    let _ = unsafe {
        libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len())
    };
}

/// The calling thread's name as the kernel has it (std names threads
/// with `pthread_setname_np`, which sets it, cut at 15 bytes), or `main`
/// for the main thread, whose kernel name is the program's.
fn kernel_name(buf: &mut [u8; 16]) -> &str {
    // SAFETY: both calls only read the calling thread's ids.
    let (pid, tid) = unsafe { (libc::getpid(), libc::gettid()) };
    if pid == tid {
        return "main";
    }
    // SAFETY: PR_GET_NAME writes at most 16 bytes, NUL included, into
    // `buf`, which has room for 16.
    let r = unsafe { libc::prctl(libc::PR_GET_NAME, buf.as_mut_ptr()) };
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..len]) {
        Ok(name) if r == 0 => name,
        _ => "thread",
    }
}

/// `12:00:01.250 [pid 4242 worker-3] {args}` and a newline, into `out`.
fn format_line(
    out: &mut impl fmt::Write,
    pid: u32,
    thread: &str,
    args: fmt::Arguments<'_>,
) -> fmt::Result {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    writeln!(
        out,
        "{:02}:{:02}:{:02}.{:03} [pid {} {}] {}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60,
        now.subsec_millis(),
        pid,
        thread,
        args
    )
}

/// A log line in a fixed buffer on the stack, for a signal handler.
struct StackLine {
    buf: [u8; 256],
    len: usize,
}

impl Default for StackLine {
    fn default() -> Self {
        StackLine {
            buf: [0; 256],
            len: 0,
        }
    }
}

impl StackLine {
    /// Ends a line that did not fit with a newline, in its last byte.
    fn cut(&mut self) {
        self.len = self.len.min(self.buf.len() - 1);
        self.buf[self.len] = b'\n';
        self.len += 1;
    }
}

impl fmt::Write for StackLine {
    /// Takes what fits; an error says the rest did not.
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = &mut self.buf[self.len..];
        let n = room.len().min(s.len());
        room[..n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        if n < s.len() {
            return Err(fmt::Error);
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A line for a signal handler fits its stack buffer whole, in the
    /// format of every other line; one that does not fit is cut, and
    /// still ends with its newline.
    #[test]
    fn stack_lines_fit_or_are_cut_with_a_newline() {
        let mut line = StackLine::default();
        let text = "SIGHUP received: ignored";
        format_line(&mut line, 42, "main", format_args!("{text}"))
            .expect("fits");
        let got = std::str::from_utf8(&line.buf[..line.len]).expect("text");
        let tail = " [pid 42 main] SIGHUP received: ignored\n";
        assert!(got.ends_with(tail), "{got:?}");
        // Only the time, `12:00:01.250`, comes before.
        assert_eq!(got.len(), "12:00:01.250".len() + tail.len());

        let mut long = StackLine::default();
        let x = "x".repeat(300);
        let fits = format_line(&mut long, 42, "main", format_args!("{x}"));
        assert!(fits.is_err());
        long.cut();
        assert_eq!(long.len, long.buf.len());
        assert_eq!(long.buf[long.len - 1], b'\n');
    }
}
