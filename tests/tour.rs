//! The tour (`cargo run --release`) runs every model and prints one table
//! whose numbers make sense.
use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Runs the tour with a small load and returns its exit status and stdout.
fn run_tour(args: &[&str]) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_server-models"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the tour starts");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    // Five models, each well under 10 s with this load; a hung tour fails
    // the test rather than hanging it.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the tour") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the tour did not finish within 120 s");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let text = reader.join().expect("the reader thread does not panic");
    (status.success(), text)
}

/// The tour prints a row for every model, succeeds only if every row has
/// numbers, and chapter 1's row shows one message at a time: wall time
/// at least clients x messages x work, parallelism ~1, predicted 1.
#[test]
fn tour_table_is_sane() {
    let (success, table) =
        run_tour(&["--clients", "3", "--messages", "2", "--work-ms", "50"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .filter(|l| l.starts_with("ch0"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 5, "one row per model:\n{table}");
    let errors = rows.iter().filter(|r| r[1] == "error:").count();
    assert_eq!(success, errors == 0, "exit status vs error rows:\n{table}");

    // model clients messages wall "s" parallelism predicted
    let ch01 = rows
        .iter()
        .find(|r| r[0] == "ch01-single")
        .expect("a ch01-single row");
    assert_eq!(ch01.len(), 7, "ch01-single has numbers:\n{table}");
    let number = |i: usize| -> f64 {
        ch01[i]
            .parse()
            .unwrap_or_else(|_| panic!("column {i} of {ch01:?}"))
    };
    assert_eq!(number(1), 3.0, "clients");
    assert_eq!(number(2), 6.0, "messages acked, 3 x 2");
    assert!(number(3) >= 0.3, "wall time under 6 x 50 ms:\n{table}");
    let parallelism = number(5);
    assert!(
        (0.5..=1.05).contains(&parallelism),
        "parallelism {parallelism}:\n{table}"
    );
    assert_eq!(number(6), 1.0, "predicted");
}
