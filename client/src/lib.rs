//! The shared client: drives any chapter's server, and checks that it
//! keeps the contract of SPEC.md.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod process;

pub use process::ServerProcess;
