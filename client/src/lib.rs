//! The reader's client: drives any chapter's server the way the seed
//! playground's Python client did, and reports what parallelism it saw.
//!
//! - [`connection`]: one blocking connection speaking the protocol.
//! - [`load`]: many clients at once, timed: what the `client` binary, the
//!   tour and the tests run.
//! - [`limits`]: room for many connections on the client's side.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod connection;
pub mod limits;
pub mod load;

pub use connection::{Closed, Connection, ReplyError};
pub use load::{Load, LoadError, Report};
