//! The benchmark's smoke run (`cargo run --release -- bench --quick`, as
//! CI runs it) measures the models and writes every result file.
use std::process::{Command, Stdio};

/// `bench --quick` exits 0, writes every table and plot, and measures the
/// reference server (always built with the workspace) at every zero-work
/// point of the quick plan.
#[test]
fn quick_run_writes_every_result() {
    let out = std::env::temp_dir()
        .join(format!("bench-smoke-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_server-models"))
        .args(["bench", "--quick", "--out"])
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("server-models runs");
    assert!(status.success(), "bench --quick failed: {status}");
    let read = |name: &str| {
        std::fs::read_to_string(out.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    for name in [
        "machine.md",
        "sessions-sleep.md",
        "sessions-spin.md",
        "zero-work.md",
        "idle-memory.md",
        "client-check.md",
        "goals.md",
        "idle-connections.md",
    ] {
        assert!(read(name).starts_with('|'), "{name} is a table");
    }
    for name in [
        "sessions-sleep.svg",
        "sessions-spin.svg",
        "zero-work-cpu.svg",
        "zero-work-throughput.svg",
        "idle-connections.svg",
    ] {
        assert!(read(name).starts_with("<svg"), "{name} is an SVG");
    }
    // The quick plan's zero-work connection counts.
    let zero = read("zero-work.csv");
    for connections in [1, 10] {
        let prefix = format!("tokio,{connections},");
        assert!(
            zero.lines()
                .any(|l| l.starts_with(&prefix) && l.ends_with(",ok")),
            "tokio at {connections} connections:\n{zero}"
        );
    }
    // The idle-connections experiment: poll and epoll, each measured
    // with no idle connection and beside 100.
    let idle = read("idle-connections.csv");
    for model in ["poll", "epoll"] {
        for n in [0, 100] {
            let prefix = format!("{model},{n},");
            assert!(
                idle.lines()
                    .any(|l| l.starts_with(&prefix) && l.ends_with(",ok")),
                "{model} beside {n} idle connections:\n{idle}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&out);
}
