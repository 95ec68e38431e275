//! How a connection ends: why (the reason on the `closed` log line), and
//! how long a lingering close may take.
//!
//! Every server, blocking or event-driven, ends sessions for the same
//! reasons and closes them the same way, so they log the same line and
//! keep the same promise about how long a close can take.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::decoder::ProtocolError;

// ANCHOR: linger
/// How long a closing connection may keep sending before we stop reading
/// and close anyway: the whole of a lingering close, last words included,
/// takes at most this long.
pub const LINGER: Duration = Duration::from_millis(500);
// ANCHOR_END: linger

/// Why a session ended, for the `closed` log line.
#[derive(Debug)]
pub enum Ending {
    /// The client said `goodbye`.
    Goodbye,
    /// The client closed its side; `dropped` bytes of an unfinished
    /// message were thrown away.
    EndOfStream {
        /// Content bytes of a message with no ETX yet.
        dropped: usize,
    },
    /// The client broke the protocol and was told so.
    Violation(ProtocolError),
    /// The client sent nothing for `--idle-timeout-ms`.
    IdleTimeout,
    /// A message was not complete within `--message-timeout-ms` of its
    /// first byte; the client was told `err message timeout`.
    MessageTimeout,
    /// Evicted to keep all connections' unfinished messages within
    /// `--max-buffered-bytes`, holding `held` bytes of one; the client
    /// was told `err server busy`.
    Evicted {
        /// Bytes of the unfinished message dropped.
        held: usize,
    },
    /// The server is shutting down.
    Shutdown,
    /// The connection failed under us (reset, broken pipe, timeout).
    Vanished(io::Error),
    /// The server could not serve it (the OS refused a thread, say) and
    /// told the client `err server busy`.
    Busy(io::Error),
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Goodbye => write!(f, "goodbye"),
            Ending::EndOfStream { dropped: 0 } => write!(f, "end of stream"),
            Ending::EndOfStream { dropped } => write!(
                f,
                "end of stream, dropped an unfinished {dropped}-byte message"
            ),
            Ending::Violation(e) => write!(f, "protocol violation: {e}"),
            Ending::IdleTimeout => write!(f, "idle timeout"),
            Ending::MessageTimeout => write!(f, "message timeout"),
            Ending::Evicted { held } => write!(
                f,
                "evicted over the buffer budget, holding {held} bytes"
            ),
            Ending::Shutdown => write!(f, "server shutting down"),
            Ending::Vanished(e) => write!(f, "connection lost: {e}"),
            Ending::Busy(e) => write!(f, "server busy: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `closed` line names the reason, and says how much of an
    /// unfinished message was lost only when something was.
    #[test]
    fn endings_read_as_log_reasons() {
        let lines = [
            (Ending::Goodbye, "goodbye"),
            (Ending::EndOfStream { dropped: 0 }, "end of stream"),
            (
                Ending::EndOfStream { dropped: 4 },
                "end of stream, dropped an unfinished 4-byte message",
            ),
            (Ending::IdleTimeout, "idle timeout"),
            (Ending::MessageTimeout, "message timeout"),
            (
                Ending::Evicted { held: 9 },
                "evicted over the buffer budget, holding 9 bytes",
            ),
            (Ending::Shutdown, "server shutting down"),
        ];
        for (ending, line) in lines {
            assert_eq!(ending.to_string(), line);
        }
    }
}
