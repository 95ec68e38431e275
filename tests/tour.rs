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
    // Six models, each well under 10 s with this load; a hung tour fails
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

/// The tour prints a row for every model of the registry, succeeds only
/// if every row has numbers, and every model's row shows the parallelism
/// its registry entry predicts: never more (sleeping work cannot go
/// faster), and at least half of it (a busy machine only slows it down).
/// Chapter 1 in particular takes at least clients x messages x work.
#[test]
fn tour_table_is_sane() {
    let (success, table) =
        run_tour(&["--clients", "3", "--messages", "2", "--work-ms", "50"]);
    let registry = registry_names();
    let rows = model_rows(&table, &registry);
    let names: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(names, registry, "one row per model:\n{table}");
    // The hand-made runtime of chapter 6 is one of them, predicted like
    // chapter 4: every client at once.
    assert!(names.contains(&"ch06-runtime"), "chapter 6's row:\n{table}");
    let errors = rows.iter().filter(|r| r[1] == "error:").count();
    assert_eq!(success, errors == 0, "exit status vs error rows:\n{table}");

    // model clients messages wall "s" parallelism predicted
    for row in &rows {
        assert_eq!(row.len(), 7, "{} has numbers:\n{table}", row[0]);
        let number = |i: usize| -> f64 {
            row[i]
                .parse()
                .unwrap_or_else(|_| panic!("column {i} of {row:?}"))
        };
        assert_eq!(number(1), 3.0, "clients");
        assert_eq!(number(2), 6.0, "messages acked, 3 x 2");
        let (observed, predicted) = (number(5), number(6));
        // min(3 clients, 3 workers) = 3 for all but the single server.
        let expected = if row[0] == "ch01-single" { 1.0 } else { 3.0 };
        assert_eq!(predicted, expected, "{}'s prediction:\n{table}", row[0]);
        assert!(
            (0.5 * predicted..=predicted * 1.05).contains(&observed),
            "{}: parallelism {observed}, predicted {predicted}:\n{table}",
            row[0]
        );
        if predicted == 1.0 {
            assert!(number(3) >= 0.3, "wall time under 6 x 50 ms:\n{table}");
        }
    }
}

/// Under every model's row the tour draws its run: one line per client,
/// then the time scale, each client's line with served (`#`) time on it,
/// in plain ASCII since stdout is a pipe. The single server's clients
/// are served one after another, so their first `#` moves right line by
/// line: a staircase. `--no-timeline` prints the table alone.
#[test]
fn tour_draws_each_models_timeline() {
    let load = ["--clients", "3", "--messages", "1", "--work-ms", "50"];
    let (_, text) = run_tour(&load);
    let lines: Vec<&str> = text.lines().collect();
    let names = registry_names();
    for name in &names {
        let row = lines
            .iter()
            .position(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("a row for {name}:\n{text}"));
        let clients: Vec<&str> = lines[row + 1..]
            .iter()
            .take_while(|l| l.trim_start().starts_with("client "))
            .copied()
            .collect();
        assert_eq!(clients.len(), 3, "{name}'s timeline:\n{text}");
        for line in &clients {
            assert!(line.starts_with("    client "), "indented:\n{text}");
            assert!(line.ends_with('|') && line.contains('#'), "{text}");
            assert!(line.is_ascii(), "plain in a pipe:\n{text}");
        }
        assert!(
            lines[row + 4].trim_start().starts_with('+'),
            "{name}'s time scale:\n{text}"
        );
        if name == "ch01-single" {
            let first: Vec<usize> = clients
                .iter()
                .map(|l| l.find('#').expect("served"))
                .collect();
            assert!(
                first.windows(2).all(|w| w[0] < w[1]),
                "not a staircase:\n{text}"
            );
        }
    }
    assert!(text.contains("# served, . waiting"), "a legend:\n{text}");

    let mut args = load.to_vec();
    args.push("--no-timeline");
    let (_, table) = run_tour(&args);
    assert_eq!(
        model_rows(&table, &names).len(),
        names.len(),
        "the table is still there:\n{table}"
    );
    assert!(
        !table.lines().any(|l| l.trim_start().starts_with("client ")),
        "no timeline with --no-timeline:\n{table}"
    );
    assert!(!table.contains("# served"), "no legend:\n{table}");
}

/// The table's rows, one per line that starts with a model's name (the
/// legend's lines are indented), split into words.
fn model_rows<'a>(table: &'a str, names: &[String]) -> Vec<Vec<&'a str>> {
    table
        .lines()
        .filter(|l| names.iter().any(|n| l.split(' ').next() == Some(n)))
        .map(|l| l.split_whitespace().collect())
        .collect()
}

/// The model names `server-models models` lists, in order.
fn registry_names() -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_server-models"))
        .arg("models")
        .output()
        .expect("server-models models runs");
    assert!(out.status.success(), "server-models models fails");
    String::from_utf8(out.stdout)
        .expect("the registry is text")
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_owned())
        .collect()
}

/// `server-models models` lists each model once, with its predictions
/// and the flags it takes, tab-separated, as scripts read it.
#[test]
fn models_lists_the_registry() {
    let names = registry_names();
    assert!(names.len() >= 6, "every chapter's model: {names:?}");
    assert!(
        names.iter().any(|n| n == "thread-per-connection"),
        "chapter 3's first server: {names:?}"
    );
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(unique, names);
}
