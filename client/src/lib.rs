//! The reader's client: drives any chapter's server the way the seed
//! playground's Python client did, and reports what parallelism it saw.
//!
//! - [`connection`]: one blocking connection speaking the protocol.
//! - [`load`]: many clients at once, timed: what the `client` binary, the
//!   tour and the tests run.
//! - [`timeline`]: a load run drawn, one row per client, as an SVG or
//!   as text.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod connection;
pub mod load;
pub mod timeline;

pub use connection::{Closed, Connection, ReplyError};
pub use load::{Load, LoadError, Report};
