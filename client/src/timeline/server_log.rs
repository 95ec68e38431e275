//! Reading a server's stderr: the per-event lines every chapter's server
//! writes (`protocol::log`), e.g.
//!
//! ```text
//! 12:00:01.250 [pid 4242 worker-3] message "package 0" from 127.0.0.1:50312
//! 12:00:01.450 [pid 4242 worker-3] ack sent to 127.0.0.1:50312
//! ```
//!
//! Three kinds of line matter to a timeline: `accepted PEER`, `message
//! TEXT from PEER` and `ack sent to PEER`. Each names the worker (process
//! id and thread name) and the client, by the client's address as the
//! server sees it: the client's local address. Every other line (start,
//! shutdown, warnings, another program's output) is skipped, so a whole
//! captured stderr can be read as it is.

use std::net::SocketAddr;
use std::time::Duration;

/// Who wrote a line: a process and one of its threads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Worker {
    /// The process id.
    pub pid: u32,
    /// The thread's name (`main`, `worker-3`, ...).
    pub thread: String,
}

/// What a line says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerWhat {
    /// `accepted PEER` (chapter 3 adds `, N waiting for a worker`).
    Accepted(SocketAddr),
    /// `message "TEXT" from PEER`: the server has read a whole message.
    /// `number` is N when the text is the load's `package N`.
    Message {
        /// The client.
        peer: SocketAddr,
        /// N of `package N`, if the text reads so.
        number: Option<usize>,
    },
    /// `ack sent to PEER`: the work is done and the ack written.
    AckSent(SocketAddr),
}

/// One line that matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEvent {
    /// Wall-clock time of day (UTC) the line stamps, to the millisecond.
    pub time_of_day: Duration,
    /// Who wrote it.
    pub worker: Worker,
    /// What it says.
    pub what: ServerWhat,
}

/// Every line of a server's stderr that matters, in the order written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerLog {
    /// The events, in file order (which is time order: each line is one
    /// write, stamped just before it).
    pub events: Vec<ServerEvent>,
}

impl ServerLog {
    /// Reads a whole captured stderr, skipping lines that do not matter
    /// or do not parse.
    pub fn parse(text: &str) -> ServerLog {
        ServerLog {
            events: text.lines().filter_map(parse_line).collect(),
        }
    }
}

/// One line, or `None` if it is not one of the three that matter.
pub fn parse_line(line: &str) -> Option<ServerEvent> {
    let (time, rest) = line.split_once(' ')?;
    let time_of_day = parse_time(time)?;
    let rest = rest.strip_prefix("[pid ")?;
    let (pid, rest) = rest.split_once(' ')?;
    let pid = pid.parse().ok()?;
    let (thread, text) = rest.split_once("] ")?;
    let worker = Worker {
        pid,
        thread: thread.to_string(),
    };
    let what = parse_what(text)?;
    Some(ServerEvent {
        time_of_day,
        worker,
        what,
    })
}

/// `HH:MM:SS.mmm` as a time of day.
fn parse_time(time: &str) -> Option<Duration> {
    let (hms, millis) = time.split_once('.')?;
    let mut parts = hms.splitn(3, ':');
    let mut field = |max: u64| -> Option<u64> {
        let part = parts.next()?;
        let value: u64 = part.parse().ok()?;
        (part.len() == 2 && value < max).then_some(value)
    };
    let (h, m, s) = (field(24)?, field(60)?, field(60)?);
    if millis.len() != 3 {
        return None;
    }
    let millis: u64 = millis.parse().ok()?;
    Some(Duration::from_millis(
        ((h * 60 + m) * 60 + s) * 1000 + millis,
    ))
}

/// The text after the worker, for the three kinds of line that matter.
fn parse_what(text: &str) -> Option<ServerWhat> {
    if let Some(rest) = text.strip_prefix("accepted ") {
        // Chapter 3: `accepted PEER, 2 waiting for a worker`.
        let peer = rest.split(',').next()?;
        return Some(ServerWhat::Accepted(peer.parse().ok()?));
    }
    if let Some(peer) = text.strip_prefix("ack sent to ") {
        return Some(ServerWhat::AckSent(peer.parse().ok()?));
    }
    let rest = text.strip_prefix("message ")?;
    // The text is quoted with `{:?}`, so it may hold " from " itself;
    // the peer is what follows the last one.
    let (preview, peer) = rest.rsplit_once(" from ")?;
    let number = preview
        .strip_prefix("\"package ")
        .and_then(|n| n.strip_suffix('"'))
        .and_then(|n| n.parse().ok());
    Some(ServerWhat::Message {
        peer: peer.parse().ok()?,
        number,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::log::Preview;

    /// A line exactly as `protocol::log::write_line` formats it.
    fn line(ms: u64, pid: u32, thread: &str, text: &str) -> String {
        let secs = ms / 1000;
        format!(
            "{:02}:{:02}:{:02}.{:03} [pid {} {}] {}",
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60,
            ms % 1000,
            pid,
            thread,
            text
        )
    }

    /// The three lines that matter parse, with worker and peer; the
    /// `package N` number is read from the quoted text.
    #[test]
    fn parses_the_three_kinds_of_line() {
        let peer: SocketAddr = "127.0.0.1:50312".parse().unwrap();
        let noon = 12 * 3_600_000;
        let text = [
            line(noon, 4242, "main", &format!("accepted {peer}")),
            line(
                noon + 1,
                4242,
                "worker-3",
                &format!("message {} from {peer}", Preview("package 7")),
            ),
            line(noon + 201, 4242, "worker-3", &format!("ack sent to {peer}")),
        ]
        .join("\n");
        let log = ServerLog::parse(&text);
        let worker = |thread: &str| Worker {
            pid: 4242,
            thread: thread.to_string(),
        };
        let at = |ms| Duration::from_millis(noon + ms);
        assert_eq!(
            log.events,
            [
                ServerEvent {
                    time_of_day: at(0),
                    worker: worker("main"),
                    what: ServerWhat::Accepted(peer),
                },
                ServerEvent {
                    time_of_day: at(1),
                    worker: worker("worker-3"),
                    what: ServerWhat::Message {
                        peer,
                        number: Some(7)
                    },
                },
                ServerEvent {
                    time_of_day: at(201),
                    worker: worker("worker-3"),
                    what: ServerWhat::AckSent(peer),
                },
            ]
        );
    }

    /// Chapter 3's longer accept line, IPv6 peers, and a message whose
    /// text is not the load's (or holds " from ") still parse.
    #[test]
    fn tolerates_variants() {
        let v6: SocketAddr = "[::1]:4000".parse().unwrap();
        let accepted = line(5, 7, "main", &format!("accepted {v6}, 2 waiting"));
        let odd = format!("message {} from {v6}", Preview("hi from me"));
        let message = line(6, 8, "main", &odd);
        let log = ServerLog::parse(&format!("{accepted}\n{message}\n"));
        assert_eq!(log.events.len(), 2);
        assert_eq!(log.events[0].what, ServerWhat::Accepted(v6));
        assert_eq!(
            log.events[1].what,
            ServerWhat::Message {
                peer: v6,
                number: None
            }
        );
        assert_eq!(log.events[1].worker.pid, 8);
    }

    /// Lines that do not matter, or are broken, are skipped, not errors.
    #[test]
    fn skips_unrelated_lines() {
        let text = [
            "listening on 127.0.0.1:3000".to_string(),
            line(0, 1, "main", "shut down"),
            line(0, 1, "main", "closed 127.0.0.1:5: goodbye"),
            line(0, 1, "worker-1", "ready"),
            line(0, 1, "main", "ack for 127.0.0.1:5 waits: 3 bytes unsent"),
            line(0, 1, "main", "accepted not-an-address"),
            "25:00:00.000 [pid 1 main] accepted 127.0.0.1:5".to_string(),
            "12:00:00.00 [pid 1 main] accepted 127.0.0.1:5".to_string(),
            "12:00:00.000 [pid x main] accepted 127.0.0.1:5".to_string(),
            "thread 'main' panicked at src/main.rs:1:1".to_string(),
            String::new(),
        ]
        .join("\n");
        assert_eq!(ServerLog::parse(&text), ServerLog::default());
    }
}
