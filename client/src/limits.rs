//! Room for many connections on the client's side.
//!
//! Every connection costs the client a descriptor too, and the usual soft
//! limit (1,024) is far below the 10,000 connections the benchmark opens.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Raises this process's soft limit on open descriptors (`RLIMIT_NOFILE`)
/// to its hard limit, the most an unprivileged process may ask for, and
/// returns the new soft limit.
///
/// # Errors
///
/// If the limits cannot be read or set.
pub fn raise_open_file_limit() -> nix::Result<u64> {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    Ok(hard)
}
