//! A minimal closed-loop load generator on tokio, to check the driver.
//!
//! If the benchmark's client were slower than what anyone would write in a
//! few lines of tokio, its numbers would measure the client, not the
//! servers. This is those few lines: a current-thread runtime (one thread,
//! like the driver), one task per connection, `write_all` then
//! `read_exact` in a loop. The benchmark runs both against the same server
//! and reports messages per second and client CPU per message side by
//! side.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout_at;

use super::driver::Outcome;
use protocol::encoder::{message, GOODBYE_FRAME};
use protocol::ACK;

use super::driver::thread_cpu;

/// Runs `connections` closed-loop connections against `addr` for
/// `warmup` + `window`, counting acks inside the window.
///
/// # Errors
///
/// If the runtime cannot be built. Connection failures are counted.
pub fn run(
    addr: SocketAddr,
    connections: usize,
    session_messages: u32,
    warmup: Duration,
    window: Duration,
) -> io::Result<(Outcome, Duration)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let start = Instant::now() + warmup;
    let end = start + window;
    let outcome = runtime.block_on(async move {
        let tasks: Vec<_> = (0..connections)
            .map(|_| {
                tokio::spawn(connection(addr, session_messages, start, end))
            })
            .collect();
        // Client CPU is measured from the window's start on this thread,
        // which runs every task.
        tokio::time::sleep_until(start.into()).await;
        let cpu_before = thread_cpu();
        let mut outcome = Outcome {
            elapsed: window,
            ..Outcome::default()
        };
        for task in tasks {
            match task.await {
                Ok((messages, latencies, errors)) => {
                    outcome.messages += messages;
                    outcome.served_connections += usize::from(messages > 0);
                    outcome.latencies_ns.extend(latencies);
                    outcome.errors += errors;
                }
                Err(_) => outcome.errors += 1,
            }
        }
        (outcome, thread_cpu() - cpu_before)
    });
    Ok(outcome)
}

/// One connection's closed loop: returns acks counted, their latencies in
/// nanoseconds, and failures.
async fn connection(
    addr: SocketAddr,
    session_messages: u32,
    start: Instant,
    end: Instant,
) -> (u64, Vec<u64>, u64) {
    let (mut messages, mut latencies, mut errors) = (0, Vec::new(), 0);
    let deadline = tokio::time::Instant::from(end);
    let ping = message(b"ping");
    'sessions: while Instant::now() < end {
        let Ok(Ok(mut stream)) =
            timeout_at(deadline, TcpStream::connect(addr)).await
        else {
            errors += 1;
            // Do not hammer a server that refuses us.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        for _ in 0..session_messages {
            let sent = Instant::now();
            let mut ack = [0; ACK.len()];
            let exchange = async {
                stream.write_all(&ping).await?;
                stream.read_exact(&mut ack).await
            };
            match timeout_at(deadline, exchange).await {
                Ok(Ok(_)) if ack[..] == *ACK => {}
                // The window ended while waiting.
                Err(_) => break 'sessions,
                Ok(_) => {
                    errors += 1;
                    continue 'sessions;
                }
            }
            let now = Instant::now();
            if now >= end {
                break 'sessions;
            }
            if now >= start {
                messages += 1;
                latencies.push((now - sent).as_nanos() as u64);
            }
        }
        let _ = stream.write_all(GOODBYE_FRAME).await;
    }
    (messages, latencies, errors)
}
