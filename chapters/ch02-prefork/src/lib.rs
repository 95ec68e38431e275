//! Chapter 2: a master process and N forked workers.
//!
//! PLACEHOLDER: this crate is being written; `serve` refuses to run.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::io;
use std::net::TcpListener;

use protocol::Config;

/// What `--help` says about this server.
pub const ABOUT: &str = "Chapter 2: a master process and N forked workers";

/// Serves clients on `listener` until SIGINT or SIGTERM.
///
/// # Errors
///
/// Always, for now: the chapter is not written yet.
pub fn serve(_listener: TcpListener, _config: &Config) -> io::Result<()> {
    Err(io::Error::other("ch02-prefork is not written yet"))
}
