//! What the io_uring server promises beyond the conformance suite (the
//! contract, book/contract.md), tested against the real binary: 10,000
//! connections, and one clear line when the kernel refuses io_uring.
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use harness::conformance::serve_at_once;
use harness::ServerProcess;

const SERVER: &str = env!("CARGO_BIN_EXE_ch08-uring");

/// Whether this kernel lets us set up io_uring; if not, says why the
/// calling test is skipped.
fn uring_available(test: &str) -> bool {
    match ch08_uring::ring::Ring::new() {
        Ok(_) => true,
        Err(e) => {
            eprintln!("{test}: skipped: {e}");
            false
        }
    }
}

fn start(flags: &[&str]) -> ServerProcess {
    ServerProcess::start(SERVER, flags).expect("the server starts")
}

/// 10,000 clients connected at once each exchange a message and all get
/// their ack; then each says goodbye and is closed.
#[test]
fn ten_thousand_connections() {
    if !uring_available("ten_thousand_connections") {
        return;
    }
    let server = start(&["--work-ms", "0", "--quiet"]);
    serve_at_once(&server, 10_000);
}

// ANCHOR: refused
/// Where the kernel refuses io_uring (here a seccomp filter makes
/// `io_uring_setup` fail with EPERM, as Docker's default profile does),
/// the server says so in one line on stderr and exits non-zero, without
/// a panic.
#[test]
fn refused_io_uring_is_one_line_and_an_exit() {
    let filter = deny_io_uring_setup();
    let mut command = Command::new(SERVER);
    command
        .args(["--addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec the closure only makes two prctl
    // calls, which are async-signal-safe, on memory (`filter`) allocated
    // before the fork; it allocates and locks nothing.
    unsafe {
        command.pre_exec(move || filter.install());
    }
    let output = command.output().expect("the server runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "exit status: {}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line:\n{stderr}");
    assert!(lines[0].contains("io_uring"), "{stderr}");
    eprintln!("the server said: {}", lines[0]);
}

/// A seccomp filter that fails `io_uring_setup` with EPERM and allows
/// every other system call.
struct Filter {
    program: Vec<libc::sock_filter>,
}

fn deny_io_uring_setup() -> Filter {
    const NR: u32 = libc::SYS_io_uring_setup as u32;
    // Load the system call number (offset 0 of `struct seccomp_data`);
    // if it is io_uring_setup, return EPERM, else allow.
    let load = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let jump = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    Filter {
        program: vec![
            op(load, 0, 0, 0),
            op(jump, 0, 1, NR),
            op(ret, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
            op(ret, 0, 0, libc::SECCOMP_RET_ALLOW),
        ],
    }
}

impl Filter {
    /// Installs the filter in the calling process (a child about to
    /// exec the server).
    fn install(&self) -> std::io::Result<()> {
        let program = libc::sock_fprog {
            len: self.program.len() as u16,
            filter: self.program.as_ptr().cast_mut(),
        };
        // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only; it
        // lets an unprivileged process install a filter.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `program` points to `self.program`, a valid filter that
        // outlives the call; the kernel copies it.
        let set = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
            )
        };
        if set != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}
// ANCHOR_END: refused
