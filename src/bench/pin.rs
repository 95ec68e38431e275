//! Pinning: the server on one CPU, the load driver on another.
//!
//! Left to itself, the scheduler decides from run to run whether a server
//! and its client share a CPU or sit on two, and the same ping-pong then
//! costs up to twice as much server CPU per message (the measuring
//! chapter's "One connection" shows it). Pinning makes that choice once,
//! for every run: the bench process and all its threads (the driver, the
//! tokio load generator) on the first CPU it may use, every process and
//! thread of the server on the second. The server's affinity is set in
//! the child between `fork` and `exec`, so its threads and the workers it
//! forks inherit it.

use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// Where the load and the server run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinning {
    /// The load generator on CPU `load`, the server on CPU `server`.
    Pinned {
        /// The CPU of the bench process and all its threads.
        load: usize,
        /// The CPU of every process and thread of the server.
        server: usize,
        /// Every CPU this process could use before it pinned itself:
        /// what an unpinned server gets (a child inherits its parent's
        /// affinity, so it must be given back explicitly).
        all: CpuSet,
    },
    /// Anywhere the scheduler likes, and why.
    Off(&'static str),
}

impl Pinning {
    /// Pins this process (every thread it has now, and so every thread
    /// it starts later) to the first CPU it may run on, and keeps the
    /// second for the servers - unless `enabled` is false or there is
    /// only one CPU.
    pub fn apply(enabled: bool) -> Pinning {
        if !enabled {
            return Pinning::Off("--no-pin");
        }
        let Ok(allowed) = sched_getaffinity(Pid::from_raw(0)) else {
            return Pinning::Off("the CPU affinity cannot be read");
        };
        let mut cpus = (0..CpuSet::count())
            .filter(|&c| allowed.is_set(c).is_ok_and(|s| s));
        let (Some(load), Some(server)) = (cpus.next(), cpus.next()) else {
            return Pinning::Off("one CPU");
        };
        match pin_own_threads(load) {
            Ok(()) => Pinning::Pinned {
                load,
                server,
                all: allowed,
            },
            Err(_) => Pinning::Off("sched_setaffinity failed"),
        }
    }

    /// Makes `command`'s process run on the server's CPU, if pinned.
    pub fn server(&self, command: &mut Command) {
        if let Pinning::Pinned { server, .. } = *self {
            run_on(command, one_cpu(server));
        }
    }

    /// Makes `command`'s process free to run on every CPU this process
    /// could use before it pinned itself.
    pub fn unpinned(&self, command: &mut Command) {
        if let Pinning::Pinned { all, .. } = *self {
            run_on(command, all);
        }
    }

    /// For the machine table: which CPUs, or why none.
    pub fn describe(&self) -> String {
        match self {
            Pinning::Pinned { load, server, .. } => {
                format!("server on CPU {server}, load generator on CPU {load}")
            }
            Pinning::Off(why) => format!("off ({why})"),
        }
    }
}

/// Sets the affinity of `command`'s process to `set` before it runs.
fn run_on(command: &mut Command, set: CpuSet) {
    // SAFETY: the closure runs in the child between fork and exec,
    // where only async-signal-safe calls are allowed: it makes one
    // system call, sched_setaffinity(2), on a set built before the
    // fork, and a failure becomes an `io::Error` from the errno
    // without allocating.
    unsafe {
        command.pre_exec(move || {
            sched_setaffinity(Pid::from_raw(0), &set).map_err(Into::into)
        });
    }
}

/// Sets the affinity of every thread of this process to CPU `cpu`.
/// `sched_setaffinity(0)` would set only the calling thread's.
fn pin_own_threads(cpu: usize) -> io::Result<()> {
    let set = one_cpu(cpu);
    for task in fs::read_dir("/proc/self/task")? {
        let task = task?;
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok())
        else {
            continue;
        };
        sched_setaffinity(Pid::from_raw(tid), &set)?;
    }
    Ok(())
}

fn one_cpu(cpu: usize) -> CpuSet {
    let mut set = CpuSet::new();
    // `cpu` came from an affinity mask, so it is below `CpuSet::count()`.
    set.set(cpu)
        .expect("a CPU number from an affinity mask fits");
    set
}
