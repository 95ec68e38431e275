//! The benchmark's smoke run (`cargo run --release -- bench --quick`, as
//! CI runs it) measures the models and writes every result file.
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `server-models bench --quick` with `args`, writing into `out`,
/// and asserts that it succeeded.
fn quick_bench(args: &[&str], out: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_server-models"))
        .args(["bench", "--quick"])
        .args(args)
        .arg("--out")
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("server-models runs");
    assert!(status.success(), "bench --quick failed: {status}");
}

/// The result file `name` the run wrote into `out`.
fn read_result(out: &Path, name: &str) -> String {
    std::fs::read_to_string(out.join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `bench --quick` exits 0, writes every table and plot, and measures the
/// reference server (always built with the workspace) at every zero-work
/// point of the quick plan.
#[test]
fn quick_run_writes_every_result() {
    let out = std::env::temp_dir()
        .join(format!("bench-smoke-{}", std::process::id()));
    quick_bench(&[], &out);
    let read = |name: &str| read_result(&out, name);
    for name in [
        "machine.md",
        "sessions-sleep.md",
        "sessions-spin.md",
        "zero-work.md",
        "connection-limit.md",
        "comparisons.md",
        "client-check.md",
        "goals.md",
        "idle-connections.md",
        "slow-clients.md",
        "slow-clients-tokio.md",
        "hostile.md",
    ] {
        assert!(read(name).starts_with('|'), "{name} is a table");
    }
    for name in [
        "sessions-sleep.svg",
        "sessions-spin.svg",
        "zero-work-cpu.svg",
        "zero-work-throughput.svg",
        "idle-connections.svg",
        "slow-clients.svg",
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

/// `--scenarios slow-clients` writes the slow-clients results and leaves
/// the other scenarios' files as they were; behind slow clients, the
/// reference event loop still acks at every K, and the single server
/// acks only with no slow client ahead (the quick plan's wait is shorter
/// than one idle timeout plus the linger after it).
#[test]
fn one_scenario_writes_only_its_own_results() {
    let out =
        std::env::temp_dir().join(format!("bench-slow-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("the temp dir is writable");
    let earlier = "| an earlier run's table |\n";
    std::fs::write(out.join("sessions-sleep.md"), earlier).expect("write");
    let only = ["--scenarios", "slow-clients"];
    quick_bench(
        &[&only[..], &["--models", "ch01-single,ch05-tokio"]].concat(),
        &out,
    );
    let read = |name: &str| read_result(&out, name);
    assert_eq!(read("sessions-sleep.md"), earlier);
    assert!(!out.join("machine.md").exists(), "machine.md was written");
    assert!(
        !out.join("zero-work.csv").exists(),
        "zero-work.csv was written"
    );
    let csv = read("slow-clients.csv");
    // model,k,slow_connections_open,backlog_full,idle_timeout_ms,wait_ms,
    // first_ack_ms,result
    let result = |model: &str, k: usize| {
        let prefix = format!("{model},{k},");
        let line = csv
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {model} at K = {k}:\n{csv}"));
        line.rsplit(',').next().unwrap_or_default().to_owned()
    };
    for k in [0, 1, 4, 5] {
        assert_eq!(result("tokio", k), "ack", "tokio at K = {k}:\n{csv}");
    }
    assert_eq!(result("single", 0), "ack", "{csv}");
    for k in [1, 4, 5] {
        assert_eq!(result("single", k), "no ack", "single at {k}:\n{csv}");
    }
    assert!(read("slow-clients-single.md").starts_with("| K | single |"));
    let _ = std::fs::remove_dir_all(&out);
}

/// `--scenarios hostile` attacks each chosen model five ways and writes
/// the overview, one table per attack and a CSV row per cell; no attack
/// kills a server (the contract's clause 7), and the event loop serves a
/// new client once the attackers are gone.
#[test]
fn hostile_scenario_attacks_every_model() {
    let out = std::env::temp_dir()
        .join(format!("bench-hostile-{}", std::process::id()));
    let only = ["--scenarios", "hostile"];
    let models = ["--models", "ch03-threaded,ch04-epoll"];
    quick_bench(&[&only[..], &models[..]].concat(), &out);
    let read = |name: &str| read_result(&out, name);
    assert!(read("hostile.md").starts_with("| model |"));
    let attacks = ["silent", "trickle", "partial", "unread", "flood"];
    for attack in attacks {
        let table = read(&format!("hostile-{attack}.md"));
        assert!(table.starts_with("| model |"), "{attack}:\n{table}");
    }
    let csv = read("hostile.csv");
    let header: Vec<&str> =
        csv.lines().next().unwrap_or("").split(',').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name}: {header:?}"))
    };
    let (survived, serves_after) = (column("survived"), column("serves_after"));
    for model in ["threaded", "epoll"] {
        for attack in attacks {
            let prefix = format!("{model},{attack},");
            let row: Vec<&str> = csv
                .lines()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or_else(|| panic!("no {model} {attack}:\n{csv}"))
                .split(',')
                .collect();
            assert_eq!(row[survived], "true", "{model} {attack}:\n{csv}");
            if model == "epoll" {
                assert_eq!(row[serves_after], "true", "{attack}:\n{csv}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out);
}
