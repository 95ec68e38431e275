//! What the tests share: a chapter's server as a real process, what it
//! costs read from `/proc`, and the conformance suite.
//!
//! - [`process`]: [`ServerProcess`], a server started on a free port and
//!   killed, with its whole process group, when dropped.
//! - [`procfs`]: CPU time, memory and threads of a process group, from
//!   `/proc`: what the tests and the benchmark measure a server with.
//! - [`conformance`]: one check per rule of the contract
//!   (book/contract.md), written once; [`conformance_tests!`] runs them all
//!   from a chapter crate (with [`event_loop_conformance_tests!`],
//!   [`bounded_queue_conformance_tests!`] and
//!   [`thread_per_connection_conformance_tests!`] for the models they
//!   fit), and [`CHECKS`] names them.
//!
//! Every chapter crate takes this crate as its one dev-dependency for
//! servers-as-processes, so none of them compiles the benchmark's plots or
//! runtime to run its tests.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod conformance;
pub mod process;
pub mod procfs;

pub use process::ServerProcess;

/// Expands to one `#[test]` per check of the contract (book/contract.md),
/// each running the [`conformance`] check of the same name against
/// `program` (the server binary, e.g. `env!("CARGO_BIN_EXE_ch01-single")`),
/// started with the optional `extra` flags (`&["--workers", "2"]`) before
/// the check's own.
///
/// ```ignore
/// // chapters/ch03-threaded/tests/conformance.rs
/// harness::conformance_tests!(
///     env!("CARGO_BIN_EXE_ch03-threaded"),
///     &["--workers", "2"]
/// );
/// ```
///
/// A server that needs something the machine may refuse (io_uring) adds
/// `unavailable: EXPR`, an `Option<String>` evaluated in each test: when
/// it is `Some(why)`, the test prints that it is skipped and why, and
/// passes without starting the server.
#[macro_export]
macro_rules! conformance_tests {
    ($program:expr $(,)?) => {
        $crate::conformance_tests!($program, &[]);
    };
    ($program:expr, $extra:expr $(,)?) => {
        $crate::__every_model_checks!(__conformance_cases, ($program, $extra));
    };
    ($program:expr, $extra:expr, unavailable: $why:expr $(,)?) => {
        $crate::__every_model_checks!(
            __conformance_cases,
            ($program, $extra, $why)
        );
    };
}

/// Like [`conformance_tests!`], for the checks only an event loop can
/// pass: every connection is served at once, so many idle connections can
/// each have finished a message. Chapter crates whose server is one (or
/// many) event loops run these too.
#[macro_export]
macro_rules! event_loop_conformance_tests {
    ($program:expr $(,)?) => {
        $crate::event_loop_conformance_tests!($program, &[]);
    };
    ($program:expr, $extra:expr $(,)?) => {
        $crate::__event_loop_checks!(__conformance_cases, ($program, $extra));
    };
    ($program:expr, $extra:expr, unavailable: $why:expr $(,)?) => {
        $crate::__event_loop_checks!(
            __conformance_cases,
            ($program, $extra, $why)
        );
    };
}

/// Like [`conformance_tests!`], for the checks of a server that turns
/// clients away when its accept queue is full (`--queue`).
#[macro_export]
macro_rules! bounded_queue_conformance_tests {
    ($program:expr $(,)?) => {
        $crate::bounded_queue_conformance_tests!($program, &[]);
    };
    ($program:expr, $extra:expr $(,)?) => {
        $crate::__bounded_queue_checks!(
            __conformance_cases,
            ($program, $extra)
        );
    };
}

/// Like [`conformance_tests!`], for the checks of a server that starts a
/// thread for every connection.
#[macro_export]
macro_rules! thread_per_connection_conformance_tests {
    ($program:expr $(,)?) => {
        $crate::thread_per_connection_conformance_tests!($program, &[]);
    };
    ($program:expr, $extra:expr $(,)?) => {
        $crate::__thread_per_connection_checks!(
            __conformance_cases,
            ($program, $extra)
        );
    };
}

/// The lists of checks, the only ones, one per group: each hands every
/// check's name (with its one-line doc) to the macro `$callback`, after
/// `$args`. Both the test macros and [`CHECKS`] are made from them, so
/// the tests a chapter runs and the names the book is checked against
/// cannot diverge.
///
/// The checks every model passes.
#[doc(hidden)]
#[macro_export]
macro_rules! __every_model_checks {
    ($callback:ident, $args:tt) => {
        $crate::$callback! { $args
        /// The seed's session: 5 messages acked after the work, goodbye.
        basic_session,
        /// Messages in one write are framed apart and acked in order.
        pipelined_messages,
        /// Sent one byte per write, a session is framed as if whole.
        byte_by_byte,
        /// A lone ETX is an empty message and is acked.
        empty_message,
        /// After a half-close every whole message is acked, then EOF.
        half_close,
        /// An unfinished message before EOF is dropped, not acked.
        half_close_drops_unfinished,
        /// Bytes after goodbye, even invalid, get no reply; it closes.
        bytes_after_goodbye,
        /// A message of exactly --max-message-bytes is acked.
        max_size_message,
        /// Over the limit: earlier acks, `err message too long`, EOF.
        oversize_message,
        /// A flood with no ETX gets `err message too long`; others served.
        flood_without_etx,
        /// A byte >= 0x80: earlier acks, `err non-ASCII byte`, EOF.
        non_ascii_byte,
        /// A reset mid-message or mid-work costs only that connection.
        reset_mid_message,
        /// Closing before reading acks costs only that connection.
        close_before_reading_acks,
        /// Silence for --idle-timeout-ms: `err idle timeout`, not sooner.
        idle_timeout,
        /// Stopping mid-message: earlier acks, then `err idle timeout`.
        idle_timeout_mid_message,
        /// Work longer than the idle limit is not idle time: still acked.
        work_is_not_idle,
        /// Bytes sent while the server was stopped are served, not idle.
        stopped_process_serves_waiting_bytes,
        /// A trickled message: earlier acks, `err message timeout`, EOF.
        trickling_message_timeout,
        /// Bytes sent during the work are not on the next message's clock.
        work_is_not_message_time,
        /// --message-timeout-ms 0: a message trickled for 2 s is acked.
        message_timeout_zero_disables,
        /// --max-buffered-bytes is taken, down to --max-message-bytes.
        buffer_budget_flag,
        /// Stopped past the message deadline: the rest is read, then acked.
        stopped_process_finishes_message,
        /// SIGTERM mid-work: the ack arrives, exit 0 within work-ms + 1 s.
        sigterm_drains,
        /// SIGINT mid-work: the ack arrives, exit 0 within work-ms + 1 s.
        sigint_drains,
        /// SIGTERM with pipelined messages: ack in progress, then exit.
        sigterm_with_pipelined_messages,
        /// SIGTERM while blocked on unread acks: exit within 1 s.
        sigterm_with_unread_acks,
        /// SIGTERM with many open, some mid-message: all closed in time.
        sigterm_with_many_clients,
        /// SIGTERM as soon as `listening on` appears: still exit 0.
        sigterm_right_after_listening,
        /// SIGHUP, SIGUSR1, SIGUSR2 mid-work: logged, ack, still serving.
        hangup_and_user_signals_do_not_kill,
        /// SIGTERM while 1,024 workers start: no more start; exit 0 in time.
        sigterm_while_starting_workers,
        /// A bad flag: one stderr line, non-zero exit, no panic.
        bad_flag,
        /// The largest work and idle limits: no overflow, no panic.
        huge_flag_values,
        /// A busy port: a clear error line, non-zero exit, no panic.
        busy_port,
        /// stdout's first line is `listening on` with the real port.
        listening_line,
        /// Idle, alone or with idle clients: under 5% of a core.
        idle_cpu,
        /// Event lines go to stderr, each naming a server pid.
        log_lines,
        /// --quiet: a whole session logs no event line.
        quiet,
        /// --work-kind spin burns CPU for the work and still acks.
        spin_work,
        /// Out of descriptors (EMFILE): no exit, no spin, serves after.
        accept_failures,
        }
    };
}

/// The body of [`conformance_tests!`]: one `#[test]` per listed check.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    (($program:expr, $extra:expr) $($(#[$doc:meta])* $name:ident,)*) => {
        $(
            $(#[$doc])*
            #[test]
            fn $name() {
                $crate::conformance::$name($program, $extra);
            }
        )*
    };
    (($program:expr, $extra:expr, $why:expr)
        $($(#[$doc:meta])* $name:ident,)*) => {
        $(
            $(#[$doc])*
            #[test]
            fn $name() {
                let unavailable: Option<String> = $why;
                if let Some(why) = unavailable {
                    eprintln!("{}: skipped: {why}", stringify!($name));
                    return;
                }
                $crate::conformance::$name($program, $extra);
            }
        )*
    };
}

/// The checks only an event loop passes (see
/// [`event_loop_conformance_tests!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __event_loop_checks {
    ($callback:ident, $args:tt) => {
        $crate::$callback! { $args
        /// 500 quiet connections after a 60 KB message each stay small.
        big_messages_leave_small_buffers,
        /// Over --max-buffered-bytes the largest holders get busy, EOF.
        buffer_budget_evicts_largest,
        /// 2,000 x 60 KB against 8 MiB: memory stays within budget + 16 MiB.
        buffer_budget_bounds_memory,
        /// A refused thread: `err server busy`, no panic, serves after.
        refused_thread_gets_busy,
        }
    };
}

/// The checks of a server with a bounded accept queue (see
/// [`bounded_queue_conformance_tests!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __bounded_queue_checks {
    ($callback:ident, $args:tt) => {
        $crate::$callback! { $args
        /// A full queue: 20 open clients get `err server busy` at once.
        busy_reply_is_immediate,
        }
    };
}

/// The checks of a server with a thread per connection (see
/// [`thread_per_connection_conformance_tests!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __thread_per_connection_checks {
    ($callback:ident, $args:tt) => {
        $crate::$callback! { $args
        /// No thread for a new client: `err server busy`, no panic.
        refused_connection_thread_gets_busy,
        }
    };
}

/// The body of the group constants: the names, and a compile-time proof
/// that each names a function of [`conformance`] with a check's signature.
#[doc(hidden)]
#[macro_export]
macro_rules! __check_names {
    (($group:ident) $($(#[$doc:meta])* $name:ident,)*) => {
        /// The names of one group of conformance checks, in order.
        pub const $group: &[&str] = &[$(stringify!($name),)*];

        const _: &[fn(&str, &[&str])] = &[$($crate::conformance::$name,)*];
    };
}

__every_model_checks!(__check_names, (EVERY_MODEL));
__event_loop_checks!(__check_names, (EVENT_LOOP));
__bounded_queue_checks!(__check_names, (BOUNDED_QUEUE));
__thread_per_connection_checks!(__check_names, (THREAD_PER_CONNECTION));

/// Every conformance check, group by group: what the contract page
/// (book/contract.md) must mention, one by one.
pub const CHECKS: &[&[&str]] = &[
    EVERY_MODEL,
    EVENT_LOOP,
    BOUNDED_QUEUE,
    THREAD_PER_CONNECTION,
];

/// The names in [`CHECKS`], one after another.
pub fn all_checks() -> impl Iterator<Item = &'static str> {
    CHECKS.iter().flat_map(|group| group.iter().copied())
}

#[cfg(test)]
mod tests {
    /// Every check has a distinct name, so none hides another.
    #[test]
    fn check_names_are_distinct() {
        let mut names: Vec<&str> = super::all_checks().collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
    }
}
