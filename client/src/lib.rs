//! The shared client: drives any chapter's server, and checks that it
//! keeps the contract of SPEC.md.
//!
//! - [`connection`]: one blocking connection speaking the protocol.
//! - [`load`]: many clients at once, timed: what the `client` binary,
//!   the tour and the benchmarks run.
//! - [`process`]: a chapter's server as a real process, for tests.
//! - [`conformance`]: the one test suite every server passes, and the
//!   [`conformance_tests!`] macro that runs it from a chapter crate.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod bench;
pub mod connection;
pub mod load;
pub mod process;

pub use connection::{Closed, Connection, ReplyError};
pub use load::{Load, LoadError, Report};
pub use process::ServerProcess;
