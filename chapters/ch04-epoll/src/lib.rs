//! Chapter 4: one thread, an epoll event loop, every client at once.
//!
//! PLACEHOLDER: this crate is being written; `serve` refuses to run.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::io;
use std::net::TcpListener;

use protocol::Config;

/// What `--help` says about this server.
pub const ABOUT: &str =
    "Chapter 4: one thread, an epoll event loop, every client at once";

/// Serves clients on `listener` until SIGINT or SIGTERM.
///
/// # Errors
///
/// Always, for now: the chapter is not written yet.
pub fn serve(_listener: TcpListener, _config: &Config) -> io::Result<()> {
    Err(io::Error::other("ch04-epoll is not written yet"))
}
