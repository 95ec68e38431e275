//! Running out of descriptors. Every connection is one, and a process may
//! hold only as many as its open-file limit: servers raise the limit as
//! far as they may, and when they reach it anyway, pause accepting
//! instead of retrying in a busy loop.

use std::io;
use std::time::Duration;

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// After an `accept` failure, wait this long before trying again, so that
/// running out of descriptors does not become a busy loop.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

// ANCHOR: raise_open_files
/// Raises this process's soft limit on open files to its hard limit, and
/// returns the soft limit before and after.
///
/// The usual soft limit (1024) would stop a server at about a thousand
/// clients, and a load generator at about a thousand connections. The
/// hard limit is as far as an unprivileged process may go.
///
/// # Errors
///
/// If the limits cannot be read or set. Callers go on with the limit they
/// have: fewer connections fit, nothing else changes.
pub fn raise_open_files() -> io::Result<(u64, u64)> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok((soft, hard))
}
// ANCHOR_END: raise_open_files

#[cfg(test)]
mod tests {
    use super::*;

    /// After the call, the soft limit is the hard limit, and the call
    /// reports both the limit it found and the one it left.
    #[test]
    fn soft_limit_reaches_the_hard_limit() {
        let (before, after) = raise_open_files().expect("raise");
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("read");
        assert!(before <= after);
        assert_eq!((soft, hard), (after, after));
    }
}
