//! Simulated work: the `2 s sleep per message` of the seed playground,
//! made a flag.

use std::hint::black_box;
use std::time::{Duration, Instant};

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

/// Keeps one CPU busy for `duration`.
pub fn spin_for(duration: Duration) {
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < duration {
        // A little arithmetic between clock reads, kept alive by
        // `black_box` so the optimizer cannot remove the loop.
        for i in 0..1000 {
            x = black_box(x.wrapping_mul(31).wrapping_add(i));
        }
    }
    black_box(x);
}
