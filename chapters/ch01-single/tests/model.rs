//! Chapter 1's claim, measured: one client at a time, so C clients of M
//! messages with W of work each take about C x M x W - an observed
//! parallelism of 1, however many clients wait.
use std::time::Duration;

use client::load::{self, Load};
use harness::ServerProcess;

/// With 4 concurrent clients the single server still works on one message
/// at a time: the run takes at least C x M x W, parallelism ~1.
#[test]
fn serves_one_client_at_a_time() {
    const CLIENTS: usize = 4;
    const MESSAGES: usize = 3;
    const WORK: Duration = Duration::from_millis(100);
    let server = ServerProcess::start(
        env!("CARGO_BIN_EXE_ch01-single"),
        &["--work-ms", "100", "--quiet"],
    )
    .expect("the server starts");
    let load = Load {
        addr: server.addr(),
        clients: CLIENTS,
        messages: MESSAGES,
        throttle: Duration::ZERO,
        timeout: Duration::from_secs(30),
    };
    let report = load::run(&load).expect("every message is acked");
    assert_eq!(report.acked, CLIENTS * MESSAGES);
    // The model's floor: the work is done one message after another.
    let serial = WORK * (CLIENTS * MESSAGES) as u32;
    assert!(
        report.wall >= serial,
        "{:?} for {serial:?} of one-at-a-time work",
        report.wall
    );
    // And no more than one at a time: a busy machine only makes it slower
    // (lower), so the lower bound is generous.
    let parallelism = report.parallelism(Some(WORK));
    assert!(
        (0.5..=1.05).contains(&parallelism),
        "observed parallelism {parallelism:.2}, the model says 1"
    );
    // Only one client is served at a time, so the last one served waits
    // for all the others before its first ack.
    let waited = WORK * ((CLIENTS - 1) * MESSAGES) as u32;
    assert!(
        report.latency_max() >= waited,
        "longest latency {:?}; someone should wait {waited:?}",
        report.latency_max()
    );
}

/// A message of control bytes as long as the limit is logged as a short
/// preview, not quoted whole (six characters per byte: a 384 KiB line).
#[test]
fn long_messages_are_logged_short() {
    use std::time::Instant;
    let server = ServerProcess::start(
        env!("CARGO_BIN_EXE_ch01-single"),
        &["--work-ms", "0"],
    )
    .expect("the server starts");
    let mut conn = server.connection(Duration::from_secs(10)).expect("connect");
    conn.send(&[1; 65_536]).expect("send");
    conn.read_ack().expect("ack");
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let log = server.log();
        if let Some(line) = log.lines().find(|l| l.contains("] message ")) {
            break line.to_owned();
        }
        assert!(Instant::now() < deadline, "no message line:\n{log}");
        std::thread::sleep(Duration::from_millis(10));
    };
    // At most 60 characters quoted, 6 bytes each: a constant.
    assert!(line.len() < 512, "a {}-byte log line", line.len());
    assert!(line.contains("(65536 bytes)"), "{line}");
}
