//! `client --chart --svg --server-log` end to end, against a stand-in
//! server in this test: one thread serving one client at a time, and
//! logging its events in the servers' stderr format (`protocol::log`)
//! to a file, the way a reader captures a real server's stderr.
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protocol::log::Preview;
use protocol::{ACK, ETX, GOODBYE};

/// The work per message.
const WORK: Duration = Duration::from_millis(40);

/// Held by each test that times a run: the charts are checked to a few
/// milliseconds, and two runs at once on two cores skew each other's.
static TIMING: Mutex<()> = Mutex::new(());

/// Takes [`TIMING`], whether or not a test that held it failed.
fn one_run_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    TIMING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One line as `protocol::log::write_line` formats it, for this process
/// and a thread named `single`.
fn log_line(text: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970");
    let secs = now.as_secs();
    format!(
        "{:02}:{:02}:{:02}.{:03} [pid {} single] {text}\n",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60,
        now.subsec_millis(),
        std::process::id(),
    )
}

/// Serves `clients` sessions one after another, logging to `log` a line
/// at a time, as a server's stderr captured to a file is written.
fn serve_one_at_a_time(listener: TcpListener, clients: usize, log: &Path) {
    let mut log = File::create(log).expect("the log file can be written");
    for _ in 0..clients {
        let (stream, peer) = listener.accept().expect("a client connects");
        write_line(&mut log, &format!("accepted {peer}"));
        serve(stream, &peer.to_string(), &mut log);
    }
}

/// Appends one event line to the log.
fn write_line(log: &mut File, text: &str) {
    log.write_all(log_line(text).as_bytes())
        .expect("the log file can be written");
}

/// One session: each message worked on for `WORK` and acked, until
/// `goodbye`.
fn serve(mut stream: TcpStream, peer: &str, log: &mut File) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout can be set");
    let mut pending = Vec::new();
    let mut buffer = [0; 512];
    loop {
        let n = stream.read(&mut buffer).expect("the client sends");
        if n == 0 {
            return;
        }
        pending.extend_from_slice(&buffer[..n]);
        while let Some(end) = pending.iter().position(|&b| b == ETX) {
            let frame: Vec<u8> = pending.drain(..=end).take(end).collect();
            if frame == GOODBYE {
                return;
            }
            let text = String::from_utf8(frame).expect("ASCII messages");
            let message = format!("message {} from {peer}", Preview(&text));
            write_line(log, &message);
            thread::sleep(WORK);
            // Logged just before the write, not after as the servers
            // do: the client may read this file as soon as it has its
            // last ack, and the line must be there.
            write_line(log, &format!("ack sent to {peer}"));
            stream.write_all(ACK).expect("the client reads");
        }
    }
}

/// Three clients of a one-at-a-time server: the chart and the SVG show
/// a staircase split by the server's own moments, and a worker row.
#[test]
fn chart_and_svg_from_a_server_log() {
    let _timing = one_run_at_a_time();
    let dir = std::env::temp_dir()
        .join(format!("client-timeline-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("a temporary directory");
    let (log, svg) = (dir.join("server.log"), dir.join("run.svg"));
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = listener.local_addr().expect("bound").to_string();
    let server = {
        let log = log.clone();
        thread::spawn(move || serve_one_at_a_time(listener, 3, &log))
    };
    // The client reads the log after its run: every line it needs is
    // in the file before the ack it is about is sent.
    let out = Command::new(env!("CARGO_BIN_EXE_client"))
        .args(["3", "--addr", &addr, "--messages", "2", "--quiet"])
        .args(["--work-ms", "40", "--chart", "--chart-width", "60"])
        .arg("--svg")
        .arg(&svg)
        .arg("--server-log")
        .arg(&log)
        .output()
        .expect("the client binary runs");
    server.join().expect("the stand-in server ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.is_empty(), "{stderr}");

    // The chart: three lines, each waiting for the ones before it.
    let chart: Vec<&str> = stdout
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("client "))
        .collect();
    assert_eq!(chart.len(), 3, "{stdout}");
    let first_served: Vec<usize> =
        chart.iter().map(|l| l.find('#').expect("served")).collect();
    assert!(
        first_served.windows(2).all(|w| w[0] < w[1]),
        "not a staircase:\n{stdout}"
    );
    // The first client is served as soon as its message is out, the
    // last waits first. A character is about 6 ms here, so on a busy
    // machine the run's start, the client threads' connecting and the
    // server's reading each take one or two of them: the first client's
    // service starts within the first few, the last's long after.
    let plot = |line: &str| line.split('|').nth(1).expect("bars").to_owned();
    assert!(matches!(plot(chart[0]).find('#'), Some(0..=3)), "{stdout}");
    assert!(plot(chart[2]).trim_start().starts_with('.'), "{stdout}");
    assert!(stdout.contains("(server log)"), "{stdout}");
    // One worker, serving one client at a time, all along.
    let worker = format!("pid {} single |", std::process::id());
    let line = stdout.lines().find(|l| l.trim_start().starts_with(&worker));
    let busy = line.expect("a worker line").trim_end_matches('|');
    assert!(busy.ends_with(&"1".repeat(20)), "{stdout}");

    let svg = fs::read_to_string(&svg).expect("the SVG was written");
    assert_eq!(svg.matches("<g data-client=").count(), 3);
    assert!(svg.contains("Server workers"));
    let worker = format!(">pid {} single</text>", std::process::id());
    assert!(svg.contains(&worker), "{svg}");
    assert_eq!(svg.matches("class=\"job\"").count(), 6);
    let _ = fs::remove_dir_all(&dir);
}

/// `--span-ms` draws a short run on a longer axis, the one other runs
/// share: the SVG's ticks reach 2 s, and the chart's run of about 240 ms
/// takes the first part of its line, blank after.
#[test]
fn span_sets_one_scale_for_every_run() {
    let _timing = one_run_at_a_time();
    let dir = std::env::temp_dir()
        .join(format!("client-span-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("a temporary directory");
    let (log, svg) = (dir.join("server.log"), dir.join("run.svg"));
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = listener.local_addr().expect("bound").to_string();
    let server = {
        let log = log.clone();
        thread::spawn(move || serve_one_at_a_time(listener, 2, &log))
    };
    let out = Command::new(env!("CARGO_BIN_EXE_client"))
        .args(["2", "--addr", &addr, "--messages", "3", "--quiet"])
        .args(["--work-ms", "40", "--chart", "--chart-width", "60"])
        .args(["--span-ms", "2000", "--svg"])
        .arg(&svg)
        .output()
        .expect("the client binary runs");
    server.join().expect("the stand-in server ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.is_empty(), "{stderr}");

    let svg = fs::read_to_string(&svg).expect("the SVG was written");
    let ticks: Vec<&str> = svg
        .split("class=\"tick\"")
        .skip(1)
        .filter_map(|t| t.split_once('>')?.1.split_once('<'))
        .map(|(label, _)| label)
        .collect();
    assert_eq!(ticks.first(), Some(&"0.0 s"), "{ticks:?}");
    assert_eq!(ticks.last(), Some(&"2.0 s"), "{ticks:?}");
    // 6 x 40 ms of work one at a time: well under half of the 2 s axis,
    // however slow the machine, so each line ends in blanks.
    let chart: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("client "))
        .collect();
    assert_eq!(chart.len(), 2, "{stdout}");
    for line in chart {
        let plot = line.split('|').nth(1).expect("a plot between bars");
        let (used, rest) = plot.split_at(plot.len() / 2);
        assert!(used.contains('#'), "{stdout}");
        assert!(rest.trim().is_empty(), "{stdout}");
    }
    let _ = fs::remove_dir_all(&dir);
}

/// `--server-log` or `--span-ms` with nothing to draw, or `--ascii`
/// without `--chart`,
/// is a mistake said in one line before any load runs.
#[test]
fn drawing_flags_need_a_drawing() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_client"))
            .args(args)
            // Nothing listens here: a load would fail on connecting.
            .args(["--addr", "127.0.0.1:1", "--timeout-ms", "1000"])
            .output()
            .expect("the client binary runs")
    };
    let out = run(&["--server-log", "server.log"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "client: --server-log is read for --chart or --svg"
    );
    let out = run(&["--span-ms", "4000"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "client: --span-ms is the axis of --chart or --svg"
    );
    for flag in [&["--ascii"][..], &["--chart-width", "60"]] {
        let out = run(flag);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr:?}");
    }
}

/// `--arrive-ms`: the clients connect one by one, that far apart (a
/// lower bound only: a busy machine makes the gaps longer, never
/// shorter), instead of all at once.
#[test]
fn clients_arrive_one_by_one() {
    let _timing = one_run_at_a_time();
    let dir = std::env::temp_dir()
        .join(format!("client-arrive-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("a temporary directory");
    let log = dir.join("server.log");
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = listener.local_addr().expect("bound").to_string();
    let server = {
        let log = log.clone();
        thread::spawn(move || serve_one_at_a_time(listener, 3, &log))
    };
    let out = Command::new(env!("CARGO_BIN_EXE_client"))
        .args(["3", "--addr", &addr, "--messages", "1"])
        .args(["--arrive-ms", "150"])
        .output()
        .expect("the client binary runs");
    server.join().expect("the stand-in server ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    // `   0.151s  client 2   connected`: each client's connect time.
    let connected = |client: usize| -> f64 {
        let line = stdout
            .lines()
            .find(|l| {
                l.ends_with("connected")
                    && l.contains(&format!("client {client} "))
            })
            .unwrap_or_else(|| panic!("client {client} connects:\n{stdout}"));
        let at = line.trim_start().split('s').next().expect("a time");
        at.parse().expect("seconds")
    };
    assert!(connected(2) >= 0.15, "{stdout}");
    assert!(connected(3) >= 0.30, "{stdout}");
    fs::remove_dir_all(&dir).expect("the temporary directory is removed");
}
