//! The `client` binary fails the way a user can act on: one line, a
//! non-zero exit, never a panic.
use std::net::TcpListener;
use std::process::{Command, Output};

fn client(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_client"))
        .args(args)
        .output()
        .expect("the client binary runs")
}

/// Nothing listening: one line naming the client and the step, exit 1.
#[test]
fn refused_connection_is_one_line() {
    // A port that was free a moment ago and has nobody listening now.
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("bound").port()
    };
    let addr = format!("127.0.0.1:{port}");
    let out = client(&["2", "--addr", &addr, "--timeout-ms", "5000"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "stderr: {stderr:?}");
    assert!(stderr.contains("connecting"), "stderr: {stderr:?}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr:?}");
}

/// A bad flag or value: one line, exit 2.
#[test]
fn bad_flag_is_one_line() {
    for args in [&["--bogus"][..], &["0"], &["--messages", "many"]] {
        let out = client(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr:?}");
    }
}
