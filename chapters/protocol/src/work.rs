//! Simulated work: the `2 s sleep per message` of the seed playground,
//! made a flag.

use std::hint::black_box;
use std::time::Duration;

use nix::time::{clock_gettime, ClockId};

use crate::config::WorkKind;

/// The work a server does for each message before it sends `ack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Work {
    /// Sleep or spin.
    pub kind: WorkKind,
    /// How long.
    pub duration: Duration,
}

impl Work {
    /// Does the work on the calling thread, blocking it for `duration`.
    ///
    /// Event loops must not call this for `sleep` work: they schedule a
    /// timer instead (chapter 4).
    pub fn perform(&self) {
        match self.kind {
            WorkKind::Sleep => std::thread::sleep(self.duration),
            WorkKind::Spin => spin_for(self.duration),
        }
    }
}

/// Burns `duration` of this thread's CPU time.
///
/// The clock is the thread's own CPU clock, not the wall clock: the work is
/// a fixed amount of computing. On a machine with fewer cores than busy
/// threads, each gets a share of a core and its work takes longer in wall
/// time, exactly as a real CPU-bound server's would. (A wall-clock spin
/// would let five "spinning" workers on two cores all finish on time, and
/// hide the very contention this flag is for.)
fn spin_for(duration: Duration) {
    let start = thread_cpu_time();
    let mut x = 0u64;
    while thread_cpu_time().saturating_sub(start) < duration {
        // A little arithmetic between clock reads, kept alive by
        // `black_box` so the optimizer cannot remove the loop.
        for i in 0..1000 {
            x = black_box(x.wrapping_mul(31).wrapping_add(i));
        }
    }
    black_box(x);
}

/// CPU time used by the calling thread so far.
fn thread_cpu_time() -> Duration {
    // The thread CPU clock exists on every Linux since 2.6.12, and the
    // call cannot fail with a valid clock id and a valid pointer.
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .expect("Linux always has CLOCK_THREAD_CPUTIME_ID")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A spin burns at least its duration of CPU, and takes at least as
    /// long in wall time.
    #[test]
    fn spin_burns_cpu_time() {
        let cpu = thread_cpu_time();
        let wall = Instant::now();
        spin_for(Duration::from_millis(50));
        assert!(thread_cpu_time() - cpu >= Duration::from_millis(50));
        assert!(wall.elapsed() >= Duration::from_millis(50));
    }
}
