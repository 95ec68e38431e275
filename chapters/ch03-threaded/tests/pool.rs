//! The thread pool's claims, tested on the real binary: N workers serve
//! N clients at once, a full queue turns clients away, a panic costs one
//! connection and no worker, idle workers cost no CPU, and SIGTERM lets
//! sessions finish.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use client::load::parallelism;
use nix::sys::signal::Signal;
use protocol::ACK;
use support::*;

/// Observed parallelism of `clients` sessions of `messages` messages of
/// `work_ms` each, done in `took`.
fn observed(
    clients: usize,
    messages: usize,
    work_ms: u64,
    took: Duration,
) -> f64 {
    let done = (clients * messages) as u64;
    parallelism(done, Duration::from_millis(work_ms), took)
}

/// With 3 workers and 6 slow clients, about 3 clients are served at once
/// (observed parallelism ~3), by three different threads.
#[test]
fn n_workers_serve_n_clients_at_once() {
    let (workers, clients, messages, work_ms) = (3, 6, 2, 300);
    let server = start(&["--workers", "3", "--work-ms", "300"]);
    let took = run_clients(&server, clients, messages);
    let observed = observed(clients, messages, work_ms, took);
    println!("3 workers: parallelism {observed:.2} in {took:?}");
    // Ideal is 3.0; a busy 2-core machine loses some, and nothing can
    // make it more than 3 (only 3 threads ever serve).
    assert!(
        (2.0..=workers as f64 + 0.3).contains(&observed),
        "parallelism {observed:.2} with {workers} workers, took {took:?}"
    );
    let threads = serving_threads(&server.log());
    assert_eq!(threads, ["worker-1", "worker-2", "worker-3"]);
}

/// With one worker the pool is chapter 1: clients are served one after
/// another (observed parallelism ~1).
#[test]
fn one_worker_serves_one_client_at_a_time() {
    let (clients, messages, work_ms) = (3, 2, 200);
    let server = start(&["--workers", "1", "--work-ms", "200"]);
    let took = run_clients(&server, clients, messages);
    let observed = observed(clients, messages, work_ms, took);
    println!("1 worker: parallelism {observed:.2} in {took:?}");
    assert!(
        (0.5..=1.2).contains(&observed),
        "parallelism {observed:.2} with 1 worker, took {took:?}"
    );
    assert_eq!(serving_threads(&server.log()), ["worker-1"]);
}

/// With the only worker busy and the one queue slot taken, the next
/// client gets `err server busy` and is closed; the two others are still
/// served in full.
#[test]
fn a_full_queue_turns_the_next_client_away() {
    let server =
        start(&["--workers", "1", "--queue", "1", "--work-ms", "1500"]);
    // Client A keeps the worker busy...
    let mut a = server.connect(TIMEOUT).unwrap();
    send(&mut a, "package a").unwrap();
    wait_for_log(&server, |l| l.contains("message \"package a\""));
    // ...client B takes the only place in the queue...
    let mut b = server.connect(TIMEOUT).unwrap();
    let b_addr = b.local_addr().unwrap().to_string();
    wait_for_log(&server, |l| l.contains(&format!("accepted {b_addr}")));
    send(&mut b, "package b").unwrap();
    // ...so client C is turned away at once, without a worker.
    let mut c = server.connect(TIMEOUT).unwrap();
    let asked = Instant::now();
    assert_eq!(read_to_close(&mut c), "err server busy");
    // At once: long before the worker could have got to it.
    assert!(asked.elapsed() < Duration::from_millis(1000), "not at once");
    wait_for_log(&server, |l| l.contains("busy: turned"));
    // A and B lose nothing.
    assert_eq!(read_n(&mut a, ACK.len()).unwrap().as_bytes(), ACK);
    send(&mut a, "goodbye").unwrap();
    assert_eq!(read_to_close(&mut a), "");
    assert_eq!(read_n(&mut b, ACK.len()).unwrap().as_bytes(), ACK);
    send(&mut b, "goodbye").unwrap();
    assert_eq!(read_to_close(&mut b), "");
}

/// A burst of clients at an idle pool goes to the idle workers first:
/// with 4 idle workers and room for 1 in the queue, 5 clients arriving
/// at once are all served, however late the workers wake.
#[test]
fn a_burst_goes_to_idle_workers_before_the_queue() {
    let server = start(&["--workers", "4", "--queue", "1", "--work-ms", "300"]);
    wait_ready(&server, 4);
    run_clients(&server, 5, 1);
    assert!(!server.log().contains("busy"), "{}", server.log());
}

/// Handlers that panic (forced by the test hook) cost their connection
/// only: afterwards the pool still has its 3 workers (and main, closer),
/// serves 3 clients at once, and the log names each panic.
#[test]
fn a_panicking_handler_does_not_shrink_the_pool() {
    let (clients, messages, work_ms) = (3, 2, 300);
    let server =
        start_with_panic_hook("boom", &["--workers", "3", "--work-ms", "300"]);
    wait_ready(&server, 3);
    assert_eq!(thread_count(server.pid()), 5, "main, closer, 3 workers");
    // Twice as many panics as workers: a pool that lost a thread per
    // panic would have none left.
    for _ in 0..6 {
        let mut stream = server.connect(TIMEOUT).unwrap();
        send(&mut stream, "boom").unwrap();
        assert_eq!(read_to_close(&mut stream), "", "no ack for a panic");
    }
    // Each one logged, and the pool is whole.
    wait_until(&server, |log| {
        log.matches("panic while serving").count() == 6
    });
    assert_eq!(thread_count(server.pid()), 5, "main, closer, 3 workers");
    let took = run_clients(&server, clients, messages);
    let observed = observed(clients, messages, work_ms, took);
    println!("after 6 panics: parallelism {observed:.2} in {took:?}");
    assert!(observed >= 2.0, "pool shrank: parallelism {observed:.2}");
    assert_eq!(thread_count(server.pid()), 5, "main, closer, 3 workers");
}

/// A server with 8 idle workers, before and after serving clients, uses
/// almost no CPU: workers sleep on the condition variable, the accepting
/// thread in `poll`.
#[test]
fn an_idle_server_uses_no_cpu() {
    let server = start(&["--workers", "8", "--work-ms", "10"]);
    run_clients(&server, 4, 2);
    // Measure the seed's bug: workers spinning on an empty queue after
    // their clients left would burn ~100% of a core per worker here.
    let pid = server.pid();
    let before = server.group_cpu_time();
    let window = Duration::from_secs(2);
    thread::sleep(window);
    let used = server.group_cpu_time().saturating_sub(before);
    println!("idle: {used:?} of CPU in {window:?}");
    // ~0 in truth; 5% leaves room for a tick of accounting noise.
    assert!(
        used < window / 20,
        "idle server used {used:?} in {window:?}"
    );
    assert_eq!(thread_count(pid), 10, "main, closer, 8 workers");
}

/// SIGTERM while one client is being worked on and another waits in the
/// queue: the first gets the `ack` for the message it sent, the waiting
/// one (never read from) is closed without one, and the server exits 0
/// within `--work-ms` + 1 s.
#[test]
fn sigterm_finishes_sessions_and_closes_the_waiting() {
    let work_ms = 800;
    let mut server = start(&["--workers", "1", "--work-ms", "800"]);
    let mut served = server.connect(TIMEOUT).unwrap();
    send(&mut served, "package 1").unwrap();
    wait_for_log(&server, |l| l.contains("message \"package 1\""));
    let mut waiting = server.connect(TIMEOUT).unwrap();
    let addr = waiting.local_addr().unwrap().to_string();
    wait_for_log(&server, |l| l.contains(&format!("accepted {addr}")));
    send(&mut waiting, "package 2").unwrap();

    let signalled = Instant::now();
    server.signal(Signal::SIGTERM).unwrap();
    assert_eq!(
        read_to_close(&mut served).as_bytes(),
        ACK,
        "received, so acked"
    );
    assert_eq!(read_to_close(&mut waiting), "", "never read, no ack");
    let status = server.wait_timeout(TIMEOUT).unwrap().expect("exited");
    let took = signalled.elapsed();
    assert!(status.success(), "exit status {status}");
    // The contract: within work-ms + 1 s; a little slack for a busy machine.
    let limit = Duration::from_millis(work_ms + 1000 + 500);
    assert!(took < limit, "shutdown took {took:?}");
    wait_for_log(&server, |l| l.contains("shut down"));
}

/// SIGINT with nobody connected: every idle worker wakes from its wait,
/// the threads are joined, exit 0 promptly.
#[test]
fn sigint_stops_an_idle_pool() {
    let mut server = start(&["--workers", "4"]);
    wait_ready(&server, 4);
    server.signal(Signal::SIGINT).unwrap();
    let status = server
        .wait_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("exited within 5 s");
    assert!(status.success(), "exit status {status}");
    wait_until(&server, |log| {
        log.matches("queue closed, stopping").count() == 4
    });
}

/// `--queue` is a bound, not a size to reserve: the largest value the
/// flag takes (65,536) starts a server that serves, without reserving
/// room for clients that may never come.
#[test]
fn the_largest_queue_flag_is_only_a_bound() {
    let server = start(&["--queue", "65536", "--work-ms", "10"]);
    session(&server, 1);
    assert!(
        !server.log().contains("memory allocation"),
        "{}",
        server.log()
    );
}
