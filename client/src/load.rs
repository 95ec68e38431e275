//! The load: N clients at once, each running the seed playground's session
//! (`package 0` .. `package M-1`, an `ack` for each, then `goodbye`), timed.
//!
//! Every client is a thread with a blocking socket, like the seed's Python
//! client. The run records a timeline (who sent what, who got which ack,
//! when) and every message's latency (send to ack), and sums them up in a
//! [`Report`].
//!
//! # Observed parallelism
//!
//! How many messages the server worked on at once, on average:
//!
//! ```text
//! parallelism = (messages acked x W) / wall time
//! ```
//!
//! where W is the server's work time per message. A server that works on one
//! message at a time needs at least `acked x W` in total, so it shows 1; one
//! that works on 5 at a time shows up to 5. When W is not known, the run
//! estimates it as the smallest latency seen, since no message can be
//! acked faster than its work. The estimate can only be too high (it
//! includes a round trip), and the parallelism with it: slightly, for
//! `sleep` work; a lot, for `spin` work on fewer cores than busy workers,
//! where every message takes longer than W of wall time and the estimate
//! credits the server with cores it does not have. Give W when it is known
//! (`client --work-ms`; the tour always does).

use std::fmt;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::connection::{Connection, ReplyError};

/// What to run: how many clients, how many messages each, against what.
#[derive(Debug, Clone)]
pub struct Load {
    /// The server.
    pub addr: SocketAddr,
    /// Clients connected at once, one thread each.
    pub clients: usize,
    /// Messages each client sends before `goodbye`.
    pub messages: usize,
    /// Pause after each ack before the next message (the seed client's
    /// second argument).
    pub throttle: Duration,
    /// Bound on connecting and on every read and write. A client may wait
    /// for its first ack while the server serves everyone before it, so
    /// this must exceed the whole run on a one-at-a-time server.
    pub timeout: Duration,
}

/// One line of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Time since the run started.
    pub at: Duration,
    /// Which client, from 1.
    pub client: usize,
    /// What happened.
    pub what: What,
}

/// What a client did or saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// The connection is open (the kernel accepted it; the server may not
    /// have yet).
    Connected,
    /// Sent `package N`.
    Sent(usize),
    /// Got the `ack` for `package N`, `latency` after sending it.
    Acked(usize, Duration),
    /// Sent `goodbye` and closed.
    Goodbye,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>8.3}s  client {:<3} ",
            self.at.as_secs_f64(),
            self.client
        )?;
        match self.what {
            What::Connected => write!(f, "connected"),
            What::Sent(n) => write!(f, "sent package {n}"),
            What::Acked(n, latency) => {
                write!(f, "got ack for package {n} after {}", ms(latency))
            }
            What::Goodbye => write!(f, "sent goodbye, closed"),
        }
    }
}

/// Where a client was when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Connecting.
    Connect,
    /// Sending `package N` or waiting for its ack.
    Message(usize),
    /// Sending `goodbye`.
    Goodbye,
}

/// A failed run: which client, at which step, and why.
#[derive(Debug)]
pub struct LoadError {
    /// Which client, from 1.
    pub client: usize,
    /// Where it was.
    pub step: Step,
    /// What went wrong (refused, timeout, `err ...` reply, ...).
    pub error: ReplyError,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let client = self.client;
        match self.step {
            Step::Connect => write!(f, "client {client}, connecting")?,
            Step::Message(n) => write!(f, "client {client}, package {n}")?,
            Step::Goodbye => write!(f, "client {client}, goodbye")?,
        }
        write!(f, ": {}", self.error)
    }
}

impl std::error::Error for LoadError {}

/// The outcome of a run that went through.
#[derive(Debug, Clone)]
pub struct Report {
    /// Clients run at once.
    pub clients: usize,
    /// Wall-clock time of the start, the moment every [`Event::at`]
    /// counts from: what lines a server's log (which stamps wall-clock
    /// time) up with the run.
    pub started: SystemTime,
    /// Each client's local address (client 1 first), the address the
    /// server's log calls it by; `None` if the OS would not say.
    pub local_addrs: Vec<Option<SocketAddr>>,
    /// Messages acked, over all clients.
    pub acked: usize,
    /// From the start to the last client's `goodbye`.
    pub wall: Duration,
    /// Every event, in time order.
    pub timeline: Vec<Event>,
    /// Every message's send-to-ack time, sorted, shortest first.
    pub latencies: Vec<Duration>,
}

impl Report {
    /// The shortest latency.
    pub fn latency_min(&self) -> Duration {
        self.latencies.first().copied().unwrap_or_default()
    }

    /// The median latency (the upper one of an even count).
    pub fn latency_median(&self) -> Duration {
        self.latencies
            .get(self.latencies.len() / 2)
            .copied()
            .unwrap_or_default()
    }

    /// The longest latency.
    pub fn latency_max(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }

    /// Observed parallelism: `acked x work / wall` (see the
    /// [module docs](self)). With `work` unknown (`None`), the smallest
    /// latency stands in for it, and the result is an upper bound.
    pub fn parallelism(&self, work: Option<Duration>) -> f64 {
        let work = work.unwrap_or_else(|| self.latency_min());
        parallelism(self.acked as u64, work, self.wall)
    }

    /// The summary lines the `client` binary prints, given the work time
    /// if known.
    pub fn summary(&self, work: Option<Duration>) -> String {
        let per_client = self.acked / self.clients.max(1);
        let basis = match work {
            Some(w) => format!("work {} given", ms(w)),
            None => format!(
                "work estimated as the min latency, {}: an upper bound, \
                 so is this; give --work-ms",
                ms(self.latency_min())
            ),
        };
        format!(
            "{} messages acked ({} clients x {}) in {:.3} s\n\
             latency min {}, median {}, max {}\n\
             observed parallelism {:.2} ({basis})",
            self.acked,
            self.clients,
            per_client,
            self.wall.as_secs_f64(),
            ms(self.latency_min()),
            ms(self.latency_median()),
            ms(self.latency_max()),
            self.parallelism(work),
        )
    }
}

/// Milliseconds, for people.
fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// Observed parallelism (see the [module docs](self)): `messages`
/// messages of `work` each, done in `wall` of wall time, is how many
/// were worked on at once, on average. Zero if no time passed.
pub fn parallelism(messages: u64, work: Duration, wall: Duration) -> f64 {
    if wall.is_zero() {
        return 0.0;
    }
    messages as f64 * work.as_secs_f64() / wall.as_secs_f64()
}

/// Runs `load` and reports it.
///
/// # Errors
///
/// The first failure in time, naming the client and the message, if any
/// client fails (the others still run to their end).
pub fn run(load: &Load) -> Result<Report, LoadError> {
    run_with(load, |_| {})
}

/// Runs `load`, calling `observe` with every event as it happens (from
/// the client's thread), e.g. to print a live timeline.
///
/// # Errors
///
/// As for [`run`].
pub fn run_with(
    load: &Load,
    observe: impl Fn(&Event) + Sync,
) -> Result<Report, LoadError> {
    run_arriving(load, Duration::ZERO, observe)
}

/// Runs `load` with the clients arriving one by one, `every` apart
/// (client k connects (k - 1) x `every` after the first), instead of all
/// at once, calling `observe` as [`run_with`] does: a server then meets
/// each client in the state the earlier ones left it in.
///
/// # Errors
///
/// As for [`run`].
pub fn run_arriving(
    load: &Load,
    every: Duration,
    observe: impl Fn(&Event) + Sync,
) -> Result<Report, LoadError> {
    let start = Instant::now();
    let started = SystemTime::now();
    let outcomes: Vec<_> = thread::scope(|scope| {
        let threads: Vec<_> = (1..=load.clients)
            .map(|client| {
                let observe = &observe;
                thread::Builder::new()
                    .name(format!("client-{client}"))
                    .spawn_scoped(scope, move || {
                        let earlier =
                            u32::try_from(client - 1).unwrap_or(u32::MAX);
                        let arrives = every.saturating_mul(earlier);
                        thread::sleep(arrives.saturating_sub(start.elapsed()));
                        session(load, client, start, observe)
                    })
                    .expect("the OS can start a few client threads")
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a client thread never panics"))
            .collect()
    });
    let wall = start.elapsed();
    let mut timeline = Vec::new();
    let mut local_addrs = Vec::with_capacity(load.clients);
    let mut first_error: Option<(Duration, LoadError)> = None;
    for Outcome {
        events,
        local,
        result,
    } in outcomes
    {
        timeline.extend(events);
        local_addrs.push(local);
        if let Err((at, e)) = result {
            if first_error.as_ref().is_none_or(|(first, _)| at < *first) {
                first_error = Some((at, e));
            }
        }
    }
    if let Some((_, e)) = first_error {
        return Err(e);
    }
    timeline.sort_by_key(|e| (e.at, e.client));
    let mut latencies: Vec<_> = timeline
        .iter()
        .filter_map(|e| match e.what {
            What::Acked(_, latency) => Some(latency),
            _ => None,
        })
        .collect();
    latencies.sort();
    Ok(Report {
        clients: load.clients,
        started,
        local_addrs,
        acked: latencies.len(),
        wall,
        timeline,
        latencies,
    })
}

/// What one client thread hands back.
struct Outcome {
    /// Its events, in time order.
    events: Vec<Event>,
    /// Its connection's local address, once connected.
    local: Option<SocketAddr>,
    /// Its failure, with the time it happened.
    result: Result<(), (Duration, LoadError)>,
}

/// One client's whole session.
fn session(
    load: &Load,
    client: usize,
    start: Instant,
    observe: &(impl Fn(&Event) + Sync),
) -> Outcome {
    let mut events = Vec::new();
    let mut local = None;
    let mut record = |what| {
        let event = Event {
            at: start.elapsed(),
            client,
            what,
        };
        observe(&event);
        events.push(event);
    };
    let result =
        converse(load, &mut local, &mut record).map_err(|(step, error)| {
            let e = LoadError {
                client,
                step,
                error,
            };
            (start.elapsed(), e)
        });
    Outcome {
        events,
        local,
        result,
    }
}

/// Connects, sends every message and reads its ack, says goodbye:
/// `record`ing each step, and noting the connection's `local` address.
fn converse(
    load: &Load,
    local: &mut Option<SocketAddr>,
    record: &mut impl FnMut(What),
) -> Result<(), (Step, ReplyError)> {
    let mut connection = Connection::connect(load.addr, load.timeout)
        .map_err(|e| (Step::Connect, e.into()))?;
    // One getsockname per client: nothing next to a round trip.
    *local = connection.stream().local_addr().ok();
    record(What::Connected);
    for n in 0..load.messages {
        let sent = Instant::now();
        let message = format!("package {n}");
        connection
            .send(message.as_bytes())
            .map_err(|e| (Step::Message(n), e.into()))?;
        record(What::Sent(n));
        connection.read_ack().map_err(|e| (Step::Message(n), e))?;
        record(What::Acked(n, sent.elapsed()));
        if n + 1 < load.messages && !load.throttle.is_zero() {
            thread::sleep(load.throttle);
        }
    }
    connection
        .send_goodbye()
        .map_err(|e| (Step::Goodbye, e.into()))?;
    // Every ack is read, so this close is an orderly one (FIN).
    drop(connection);
    record(What::Goodbye);
    Ok(())
}
