//! Chapter 5: the production reference, on tokio.
//!
//! PLACEHOLDER: this crate is being written; `serve` refuses to run.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::io;
use std::net::TcpListener;

use protocol::Config;

/// What `--help` says about this server.
pub const ABOUT: &str = "Chapter 5: the production reference, on tokio";

/// Serves clients on `listener` until SIGINT or SIGTERM.
///
/// # Errors
///
/// Always, for now: the chapter is not written yet.
pub fn serve(_listener: TcpListener, _config: &Config) -> io::Result<()> {
    Err(io::Error::other("ch05-tokio is not written yet"))
}
