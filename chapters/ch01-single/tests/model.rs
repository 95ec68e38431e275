//! Chapter 1's claim, measured: one client at a time, so C clients of M
//! messages with W of work each take about C x M x W - an observed
//! parallelism of 1, however many clients wait.
use std::time::Duration;

use client::load::{self, Load};
use client::ServerProcess;

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
