//! What a server costs, read from `/proc`: CPU time and resident memory of
//! every process in its process group, and the threads of a process. The
//! one place the tests and the benchmark read `/proc` for these.
//!
//! [`ServerProcess`](crate::ServerProcess) starts each server in its own
//! process group, so "the server" is every process whose group id is the
//! server's pid: the prefork master and its workers, or the one process
//! of the other models (whose threads `/proc/PID/stat` already sums,
//! including threads that have exited). A process of the group that exits
//! (a prefork worker that dies and is replaced) leaves `/proc`, but once
//! its parent reaps it, its CPU time is added to the parent's "children"
//! fields (`cutime`, `cstime`), which we count too: the group's total never
//! loses it. (Only its context switches are lost: `/proc` has no field for
//! those of reaped children.)

use std::fs;
use std::io;
use std::time::Duration;

/// CPU and memory of a group of processes at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// User plus system CPU time, summed over the processes and their
    /// reaped children.
    pub cpu: Duration,
    /// The user-space part of `cpu`; the rest is the kernel's.
    pub user: Duration,
    /// Resident memory summed over the processes. Pages shared between a
    /// prefork master and its workers count once per process.
    pub rss_bytes: u64,
    /// How many processes were found.
    pub processes: usize,
    /// Voluntary context switches of all their threads: how often the
    /// server went to sleep waiting for something (and was woken).
    pub sleeps: u64,
    /// Involuntary context switches of all their threads: how often the
    /// scheduler took the CPU from a thread that still had work.
    pub preemptions: u64,
}

impl Usage {
    /// Every context switch, voluntary or not: `sleeps + preemptions`.
    pub fn switches(&self) -> u64 {
        self.sleeps + self.preemptions
    }
}

/// Sums [`Usage`] over every process whose process group is `pgid`.
///
/// # Errors
///
/// If `/proc` cannot be listed. Processes that exit while we read are
/// skipped.
pub fn group_usage(pgid: u32) -> io::Result<Usage> {
    let ticks = clock_ticks();
    let page = page_size();
    let mut usage = Usage::default();
    for (pid, stat) in group_members(pgid)? {
        usage.processes += 1;
        // Its own time, and that of its children that exited and were
        // reaped (the workers a prefork master replaced).
        let user_ticks = stat.utime + stat.cutime;
        let cpu_ticks = user_ticks + stat.stime + stat.cstime;
        usage.cpu += Duration::from_secs_f64(cpu_ticks as f64 / ticks);
        usage.user += Duration::from_secs_f64(user_ticks as f64 / ticks);
        usage.rss_bytes += stat.rss_pages * page;
        let (sleeps, preemptions) = context_switches(pid);
        usage.sleeps += sleeps;
        usage.preemptions += preemptions;
    }
    Ok(usage)
}

/// The process ids of every live process whose process group is `pgid`,
/// in no particular order; empty if `/proc` cannot be listed.
pub fn group_pids(pgid: u32) -> Vec<u32> {
    group_members(pgid)
        .map(|members| members.into_iter().map(|(pid, _)| pid).collect())
        .unwrap_or_default()
}

/// The thread ids of every live process whose process group is `pgid`,
/// in no particular order; empty if `/proc` cannot be listed. Counters
/// summed over threads (context switches) lose what a thread counted
/// once it exits: comparing two of these lists tells whether any did.
pub fn group_threads(pgid: u32) -> Vec<u32> {
    let mut threads = Vec::new();
    for pid in group_pids(pgid) {
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        threads.extend(tasks.flatten().filter_map(|task| {
            task.file_name()
                .to_str()
                .and_then(|t| t.parse::<u32>().ok())
        }));
    }
    threads
}

/// Whether every process of group `pgid` is stopped (state `T`, as after
/// SIGSTOP), and there is at least one.
pub fn group_stopped(pgid: u32) -> bool {
    group_members(pgid).is_ok_and(|members| {
        !members.is_empty() && members.iter().all(|(_, stat)| stat.stopped)
    })
}

/// The number of threads of process `pid` (the `Threads:` line of
/// `/proc/PID/status`).
///
/// # Errors
///
/// If the process does not exist (any more), or the line is missing.
pub fn thread_count(pid: u32) -> io::Result<usize> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no Threads line in /proc/PID/status"))
}

/// Every process whose process group is `pgid`, with its `stat` fields.
fn group_members(pgid: u32) -> io::Result<Vec<(u32, Stat)>> {
    let mut members = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // The process may exit while we look: then it is not a member.
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        match Stat::parse(&stat) {
            Some(stat) if stat.pgrp == pgid => members.push((pid, stat)),
            _ => {}
        }
    }
    Ok(members)
}

/// Voluntary and involuntary context switches, each summed over the
/// threads of process `pid` (`/proc/PID/task/TID/status`).
fn context_switches(pid: u32) -> (u64, u64) {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0, 0);
    };
    let (mut voluntary, mut involuntary) = (0, 0);
    for task in tasks.flatten() {
        // A thread may exit while we look: then it has nothing to add.
        let Ok(status) = fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        voluntary += field("voluntary_ctxt_switches:");
        involuntary += field("nonvoluntary_ctxt_switches:");
    }
    (voluntary, involuntary)
}

/// The fields of `/proc/PID/stat` we need (see proc(5)).
struct Stat {
    /// State `T`: stopped by a signal (SIGSTOP, SIGTSTP).
    stopped: bool,
    pgrp: u32,
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
    rss_pages: u64,
}

impl Stat {
    fn parse(stat: &str) -> Option<Stat> {
        // The command name (field 2) is in parentheses and may contain
        // spaces or parentheses itself: split after the last ')'.
        let (_, rest) = stat.rsplit_once(") ")?;
        let fields: Vec<&str> = rest.split(' ').collect();
        // `rest` starts at field 3, so field N is at index N - 3.
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        Some(Stat {
            stopped: *fields.first()? == "T",
            pgrp: u32::try_from(field(5)?).ok()?,
            utime: field(14)?,
            stime: field(15)?,
            cutime: field(16)?,
            cstime: field(17)?,
            rss_pages: field(24)?,
        })
    }
}

/// What the hypervisor took so far: the time this virtual machine's
/// CPUs were ready to run but the host ran something else instead (the
/// `steal` column of `/proc/stat`), summed over the CPUs, and how many
/// CPUs there are. Zero on bare metal.
///
/// # Errors
///
/// If `/proc/stat` cannot be read or has no `cpu` line.
pub fn stolen() -> io::Result<(Duration, usize)> {
    let stat = fs::read_to_string("/proc/stat")?;
    let mut lines = stat.lines();
    let total = lines
        .next()
        .filter(|l| l.starts_with("cpu "))
        .ok_or_else(|| io::Error::other("no cpu line in /proc/stat"))?;
    // cpu user nice system idle iowait irq softirq steal ...
    let ticks: u64 = total
        .split_whitespace()
        .nth(8)
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let cpus = lines.take_while(|l| l.starts_with("cpu")).count();
    Ok((Duration::from_secs_f64(ticks as f64 / clock_ticks()), cpus))
}

/// Clock ticks per second, the unit of `utime` and `stime`.
fn clock_ticks() -> f64 {
    match sysconf(libc::_SC_CLK_TCK) {
        t if t > 0 => t as f64,
        // 100 is what Linux has reported on every architecture for years.
        _ => 100.0,
    }
}

/// Bytes per page, the unit of `rss` (and of the kernel's socket memory
/// in `/proc/net/sockstat`).
pub fn page_size() -> u64 {
    match sysconf(libc::_SC_PAGESIZE) {
        p if p > 0 => p as u64,
        _ => 4096,
    }
}

fn sysconf(name: libc::c_int) -> libc::c_long {
    // SAFETY: sysconf only reads a configuration value; it takes no
    // pointers and an unknown name just returns -1.
    unsafe { libc::sysconf(name) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command name with spaces and parentheses does not shift fields.
    #[test]
    fn parses_odd_command_names() {
        let line = "42 (a) b (c) S 1 42 42 0 -1 0 0 0 0 0 7 3 2 1 20 0 1 \
                    0 100 1000 25 0";
        let stat = Stat::parse(line).expect("parses");
        assert_eq!((stat.pgrp, stat.utime, stat.stime), (42, 7, 3));
        assert_eq!((stat.cutime, stat.cstime), (2, 1));
        assert_eq!(stat.rss_pages, 25);
    }

    /// A process of the group that exits during the measurement (a
    /// prefork worker that dies and is replaced) still counts: once its
    /// parent reaps it, its CPU time moves to the parent's "children"
    /// fields, and the group's total keeps it.
    #[test]
    fn counts_children_that_exited() {
        use std::io::{BufRead, BufReader, Write};
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};
        // The child burns CPU, exits and is reaped; `times` then prints
        // the shell's own and its children's user and system time.
        let script = concat!(
            "read go; ",
            "sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'; ",
            "times; read done",
        );
        let mut shell = Command::new("sh")
            .args(["-c", script])
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh starts");
        let pgid = shell.id();
        let mut stdin = shell.stdin.take().expect("stdin");
        let mut lines = BufReader::new(shell.stdout.take().expect("stdout"))
            .lines()
            .map_while(Result::ok);
        let before = group_usage(pgid).expect("reads /proc");
        writeln!(stdin, "go").expect("go");
        let _shell_times = lines.next().expect("the shell's times");
        let children = lines.next().expect("the children's times");
        let after = group_usage(pgid).expect("reads /proc");
        writeln!(stdin, "done").expect("done");
        let _ = shell.wait();
        // "0m0.31s 0m0.01s": minutes and seconds, user then system.
        let seconds = |t: &str| -> f64 {
            let (m, s) = t.trim_end_matches('s').split_once('m').expect("NmS");
            m.parse::<f64>().expect("minutes") * 60.0
                + s.parse::<f64>().expect("seconds")
        };
        let child: f64 = children.split_whitespace().map(seconds).sum();
        assert!(child >= 0.05, "the child burnt only {child} s");
        let counted = after.cpu.saturating_sub(before.cpu).as_secs_f64();
        // Two samples of 10 ms ticks each way.
        assert!(
            counted >= child - 0.03,
            "the group's CPU grew {counted} s; its exited child used {child} s"
        );
    }

    /// This test process finds itself in its own group, with its threads.
    #[test]
    fn finds_our_own_group() {
        let pgid = nix::unistd::getpgrp().as_raw() as u32;
        let usage = group_usage(pgid).expect("reads /proc");
        assert!(usage.processes >= 1);
        assert!(usage.rss_bytes > 0);
        assert!(group_pids(pgid).contains(&std::process::id()));
        assert!(group_threads(pgid).contains(&std::process::id()));
        let threads = thread_count(std::process::id()).expect("reads /proc");
        assert!(threads >= 1);
    }
}
