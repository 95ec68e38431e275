//! A run drawn as a timeline: one row per client connection, each message
//! a bar from the moment it was sent to the moment its ack came back,
//! split into the time it *waited* and the time the server *worked* on
//! it. A server that serves one client at a time draws a staircase; one
//! with N workers, N lanes; one that serves everyone at once, a block.
//!
//! The split comes from one of two places:
//!
//! - the known work time (`--work-ms`): the last W of each latency is the
//!   work, the rest waiting. Exact for `sleep` work on a server that
//!   starts each message as soon as it can; an estimate otherwise.
//! - the server's own log (`--server-log`): the moments it read each
//!   message and sent its ack. The log also says which worker (process or
//!   thread) did it, which gives a second panel: one row per worker,
//!   showing whom it served when.
//!
//! [`svg`] and [`text`] draw the same [`Timeline`].

pub mod scale;
pub mod server_log;
pub mod svg;
pub mod text;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

use crate::load::{Report, What};
use server_log::{ServerLog, ServerWhat, Worker};

/// A stretch of time, counted from the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// When it starts.
    pub start: Duration,
    /// When it ends (not before `start`).
    pub end: Duration,
}

impl Span {
    /// How long it lasts.
    pub fn len(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }

    /// Whether it lasts no time at all.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// One message, as the client and (maybe) the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// N of `package N`.
    pub number: usize,
    /// When the client started sending it.
    pub sent: Duration,
    /// When the client had its ack.
    pub acked: Duration,
    /// The part of `sent..acked` the server worked on it; the rest is
    /// waiting (for a worker, for the network, for the ack to arrive).
    pub served: Span,
    /// Which of [`Timeline::workers`] served it, if the log says.
    pub worker: Option<usize>,
}

/// One client connection's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Which client, from 1.
    pub client: usize,
    /// Its messages, in order.
    pub messages: Vec<Message>,
}

/// One message's work, on a worker's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    /// For which client, from 1.
    pub client: usize,
    /// Which message.
    pub number: usize,
    /// When the worker worked on it.
    pub span: Span,
    /// Which of the worker's lanes it is drawn in: a worker that serves
    /// several clients at once (an event loop) needs one lane for each.
    pub lane: usize,
}

/// One worker (a process or a thread) of the server, from its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRow {
    /// Its name as the log gives it: `worker-2`, `pid 4242`, ...
    pub name: String,
    /// What it worked on, in time order.
    pub jobs: Vec<Job>,
    /// How many clients it worked on at most at once (1 for a worker
    /// that serves one client at a time).
    pub lanes: usize,
}

/// Where the split between waiting and served comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The last W of each latency, W the `--work-ms` given.
    GivenWork(Duration),
    /// The last W of each latency, W estimated as the smallest latency.
    EstimatedWork(Duration),
    /// The server's log, which gave the moments for `matched` of `total`
    /// messages; the others use the last `work` of their latency.
    ServerLog {
        /// Messages the log gave moments for.
        matched: usize,
        /// Messages in the run.
        total: usize,
        /// W for the messages the log did not cover.
        work: Duration,
    },
}

impl Basis {
    /// One sentence for a legend: what "served" and "waiting" mean here.
    pub fn explain(&self) -> String {
        match *self {
            Basis::GivenWork(w) => format!(
                "served = the last {} of each latency (the --work-ms \
                 given), waiting = the rest",
                ms(w)
            ),
            Basis::EstimatedWork(w) => format!(
                "served = the last {} of each latency (no --work-ms given: \
                 the smallest latency), waiting = the rest",
                ms(w)
            ),
            Basis::ServerLog {
                matched,
                total,
                work,
            } if matched < total => format!(
                "served = from the server reading each message to its ack \
                 (server log; {} of {total} messages found there, the rest \
                 use the last {})",
                matched,
                ms(work)
            ),
            Basis::ServerLog { .. } => "served = from the server reading \
                each message to sending its ack (server log), waiting = \
                the rest"
                .to_string(),
        }
    }
}

/// A whole run, ready to draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// What was run, e.g. `6 clients x 3 messages, work 200 ms`. A
    /// caller that knows more (which server) may prepend it.
    pub title: String,
    /// From the start to the end of the run: the length of the axis.
    pub span: Duration,
    /// Where the split of each message comes from.
    pub basis: Basis,
    /// One row per client connection, in the order the server first
    /// served them (then by client).
    pub rows: Vec<Row>,
    /// One row per server worker, by process id and then thread name
    /// (`worker-2` before `worker-10`); empty without a server log.
    pub workers: Vec<WorkerRow>,
}

impl Timeline {
    /// The timeline of `report`, split by the work time: `work` if
    /// known, else the smallest latency.
    pub fn from_report(report: &Report, work: Option<Duration>) -> Timeline {
        let basis = match work {
            Some(w) => Basis::GivenWork(w),
            None => Basis::EstimatedWork(report.latency_min()),
        };
        let w = work.unwrap_or_else(|| report.latency_min());
        let mut rows: Vec<Row> = (1..=report.clients)
            .map(|client| Row {
                client,
                messages: Vec::new(),
            })
            .collect();
        for event in &report.timeline {
            let What::Acked(number, latency) = event.what else {
                continue;
            };
            let acked = event.at;
            let sent = acked.saturating_sub(latency);
            let served = Span {
                start: acked.saturating_sub(w).max(sent),
                end: acked,
            };
            if let Some(row) = rows.get_mut(event.client - 1) {
                row.messages.push(Message {
                    number,
                    sent,
                    acked,
                    served,
                    worker: None,
                });
            }
        }
        sort_rows(&mut rows);
        let messages = rows.iter().map(|r| r.messages.len()).max();
        let end = report.timeline.last().map(|e| e.at);
        Timeline {
            title: format!(
                "{} x {}, work {}{}",
                count(report.clients, "client"),
                count(messages.unwrap_or(0), "message"),
                ms(w),
                if work.is_some() { "" } else { " (estimated)" }
            ),
            span: report.wall.max(end.unwrap_or_default()),
            basis,
            rows,
            workers: Vec::new(),
        }
    }

    /// The timeline of `report` with each message's served part taken
    /// from `log`, the stderr of the server it ran against, and a row per
    /// worker. Messages the log does not cover (a `--quiet` server, a log
    /// of another run) keep the split by work time, and the legend says
    /// how many did.
    pub fn with_server_log(
        report: &Report,
        work: Option<Duration>,
        log: &ServerLog,
    ) -> Timeline {
        let mut timeline = Timeline::from_report(report, work);
        let w = work.unwrap_or_else(|| report.latency_min());
        let moments = ServerMoments::collect(report, log, timeline.span);
        let mut names: Vec<Worker> = Vec::new();
        let mut matched = 0;
        let mut total = 0;
        for row in &mut timeline.rows {
            let local = report.local_addrs.get(row.client - 1).copied();
            let seen = local.flatten().and_then(|a| moments.of.get(&a));
            for message in &mut row.messages {
                total += 1;
                let Some(seen) = seen.and_then(|s| s.get(&message.number))
                else {
                    continue;
                };
                matched += 1;
                // The log stamps whole milliseconds, from another clock:
                // keep the served part inside what the client saw.
                let start = seen.read.clamp(message.sent, message.acked);
                let end = seen.acked.unwrap_or(message.acked);
                message.served = Span {
                    start,
                    end: end.clamp(start, message.acked),
                };
                let index = match names.iter().position(|n| *n == seen.by) {
                    Some(i) => i,
                    None => {
                        names.push(seen.by.clone());
                        names.len() - 1
                    }
                };
                message.worker = Some(index);
            }
        }
        if matched == 0 {
            return timeline;
        }
        timeline.basis = Basis::ServerLog {
            matched,
            total,
            work: w,
        };
        sort_rows(&mut timeline.rows);
        timeline.workers = worker_rows(&mut timeline.rows, &names);
        timeline
    }

    /// Lengthens the time axis to `span` if the run was shorter, so that
    /// pictures of different runs share one scale: the same distance is
    /// the same time in each. A longer run keeps its own, longer axis -
    /// cutting it off would hide the very clients that waited longest.
    pub fn stretch_to(&mut self, span: Duration) {
        self.span = self.span.max(span);
    }

    /// How many clients were waiting (a message out and not being
    /// served), from each moment on: the steps of a curve, in time
    /// order, from 0 at the start. Where it is above zero while every
    /// worker is busy, nobody was free.
    pub fn waiting(&self) -> Vec<(Duration, usize)> {
        let mut changes: Vec<(Duration, i64)> = Vec::new();
        for m in self.rows.iter().flat_map(|r| &r.messages) {
            for (from, to) in
                [(m.sent, m.served.start), (m.served.end, m.acked)]
            {
                if from < to {
                    changes.push((from, 1));
                    changes.push((to, -1));
                }
            }
        }
        // At one moment, ends before starts: a client handed from
        // waiting to served, or served to done, is not counted twice.
        changes.sort();
        let mut steps = vec![(Duration::ZERO, 0)];
        let mut count = 0i64;
        for (at, change) in changes {
            count += change;
            let now = usize::try_from(count).unwrap_or(0);
            match steps.last_mut() {
                Some(last) if last.0 == at => last.1 = now,
                _ => steps.push((at, now)),
            }
        }
        steps.dedup_by_key(|step| step.1);
        steps
    }
}

/// Puts the rows in the order the server first served them, so that a
/// server serving one client at a time draws a staircase, not a jumble of
/// the order the clients' threads happened to connect in.
fn sort_rows(rows: &mut [Row]) {
    rows.sort_by_key(|r| {
        (r.messages.first().map(|m| m.served.start), r.client)
    });
}

/// What the log says about one message.
#[derive(Debug)]
struct Seen {
    /// When the server had read it.
    read: Duration,
    /// When it had sent the ack, if it logged that.
    acked: Option<Duration>,
    /// Who read it.
    by: Worker,
}

/// The log's moments for every message of a run, by client address and
/// message number, as times since the start of the run.
struct ServerMoments {
    of: HashMap<SocketAddr, HashMap<usize, Seen>>,
}

impl ServerMoments {
    fn collect(report: &Report, log: &ServerLog, span: Duration) -> Self {
        // The log stamps wall-clock time of day; the run started at
        // `report.started`. A line outside the run (by more than the
        // log's millisecond rounding) belongs to another run that may
        // have used the same client port.
        let day = 86_400_000i64;
        let start_ms = report
            .started
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as i64
            % day;
        let span_ms = span.as_millis() as i64;
        let since_start = |time_of_day: Duration| -> Option<Duration> {
            let mut ms = time_of_day.as_millis() as i64 - start_ms;
            // A run across midnight UTC: bring it back next to the start.
            if ms < -day / 2 {
                ms += day;
            } else if ms > day / 2 {
                ms -= day;
            }
            (-2..=span_ms + 2)
                .contains(&ms)
                .then(|| Duration::from_millis(ms.max(0) as u64))
        };
        let mut of: HashMap<SocketAddr, HashMap<usize, Seen>> = HashMap::new();
        // Per client: how many messages read, how many acks sent, so
        // far. Acks go out in order, so the k-th ack is the k-th
        // message's, and a message whose text is not `package N` is
        // numbered by its place.
        let mut counts: HashMap<SocketAddr, (usize, Vec<usize>)> =
            HashMap::new();
        for event in &log.events {
            let Some(at) = since_start(event.time_of_day) else {
                continue;
            };
            match event.what {
                ServerWhat::Message { peer, number } => {
                    let (_, order) = counts.entry(peer).or_default();
                    let number = number.unwrap_or(order.len());
                    order.push(number);
                    of.entry(peer).or_default().insert(
                        number,
                        Seen {
                            read: at,
                            acked: None,
                            by: event.worker.clone(),
                        },
                    );
                }
                ServerWhat::AckSent(peer) => {
                    let (acks, order) = counts.entry(peer).or_default();
                    if let Some(&number) = order.get(*acks) {
                        let seen =
                            of.get_mut(&peer).and_then(|m| m.get_mut(&number));
                        if let Some(seen) = seen {
                            seen.acked = Some(at);
                        }
                    }
                    *acks += 1;
                }
                ServerWhat::Accepted(_) => {}
            }
        }
        ServerMoments { of }
    }
}

/// The worker rows, in order of pid and thread: every message's served
/// part, on the row of the worker that served it, in lanes where they
/// overlap. Each message's `worker`, an index into `names`, becomes one
/// into the rows returned.
fn worker_rows(rows: &mut [Row], names: &[Worker]) -> Vec<WorkerRow> {
    let mut jobs: Vec<Vec<Job>> = vec![Vec::new(); names.len()];
    for row in rows.iter() {
        for m in &row.messages {
            if let Some(worker) = m.worker {
                jobs[worker].push(Job {
                    client: row.client,
                    number: m.number,
                    span: m.served,
                    lane: 0,
                });
            }
        }
    }
    let labels = worker_labels(names);
    let mut workers: Vec<(usize, WorkerRow)> = jobs
        .into_iter()
        .zip(labels)
        .enumerate()
        .map(|(index, (mut jobs, name))| {
            jobs.sort_by_key(|j| (j.span.start, j.client));
            let lanes = assign_lanes(&mut jobs);
            (index, WorkerRow { name, jobs, lanes })
        })
        .collect();
    workers.sort_by_key(|(index, _)| natural(&names[*index]));
    let mut new_index = vec![0; names.len()];
    for (new, (old, _)) in workers.iter().enumerate() {
        new_index[*old] = new;
    }
    for m in rows.iter_mut().flat_map(|r| &mut r.messages) {
        m.worker = m.worker.map(|old| new_index[old]);
    }
    workers.into_iter().map(|(_, w)| w).collect()
}

/// A worker's place in order: by process id, then by thread name with
/// its trailing number as a number, so that `worker-2` comes before
/// `worker-10`.
fn natural(worker: &Worker) -> (u32, &str, u64) {
    let name = worker.thread.as_str();
    let prefix = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let number = name[prefix.len()..].parse().unwrap_or(0);
    (worker.pid, prefix, number)
}

/// Puts each job (sorted by start) in a lane free at its start: the lane
/// of the same client's previous job if it is free, so that a client
/// keeps its lane, else the first free one. Returns how many lanes that
/// took.
fn assign_lanes(jobs: &mut [Job]) -> usize {
    // The end of the last job in each lane, and whose it was.
    let mut lanes: Vec<(Duration, usize)> = Vec::new();
    for job in jobs {
        let free = |&(end, _): &(Duration, usize)| end <= job.span.start;
        let same = lanes
            .iter()
            .position(|lane| free(lane) && lane.1 == job.client);
        match same.or_else(|| lanes.iter().position(free)) {
            Some(lane) => {
                lanes[lane] = (job.span.end, job.client);
                job.lane = lane;
            }
            None => {
                job.lane = lanes.len();
                lanes.push((job.span.end, job.client));
            }
        }
    }
    lanes.len()
}

/// Short names for workers: the thread name when all are one process
/// (threads), the pid when all have one thread name (processes), both
/// otherwise, or when there is only one.
fn worker_labels(names: &[Worker]) -> Vec<String> {
    if let [only] = names {
        return vec![format!("pid {} {}", only.pid, only.thread)];
    }
    let one_pid = names.windows(2).all(|w| w[0].pid == w[1].pid);
    let one_thread = names.windows(2).all(|w| w[0].thread == w[1].thread);
    names
        .iter()
        .map(|w| match (one_pid, one_thread) {
            (true, _) => w.thread.clone(),
            (false, true) => format!("pid {}", w.pid),
            (false, false) => format!("pid {} {}", w.pid, w.thread),
        })
        .collect()
}

/// `n things`, or `1 thing`.
fn count(n: usize, thing: &str) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("{n} {thing}{s}")
}

/// Milliseconds, for people.
fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::load::Event;
    use protocol::log::Preview;
    use std::time::SystemTime;

    /// A report as `load::run` would give it: `acks[c]` lists client
    /// c+1's (sent, acked) times in ms, from a run that started at
    /// `started`.
    pub(crate) fn report(
        started: SystemTime,
        acks: &[&[(u64, u64)]],
    ) -> Report {
        let mut timeline = Vec::new();
        let mut latencies = Vec::new();
        for (c, messages) in acks.iter().enumerate() {
            for (n, &(sent, acked)) in messages.iter().enumerate() {
                let latency = Duration::from_millis(acked - sent);
                latencies.push(latency);
                timeline.push(Event {
                    at: Duration::from_millis(acked),
                    client: c + 1,
                    what: What::Acked(n, latency),
                });
            }
        }
        timeline.sort_by_key(|e| e.at);
        latencies.sort();
        Report {
            clients: acks.len(),
            started,
            local_addrs: (0..acks.len())
                .map(|c| {
                    Some(SocketAddr::from(([127, 0, 0, 1], 40001 + c as u16)))
                })
                .collect(),
            acked: latencies.len(),
            wall: timeline.last().map(|e| e.at).unwrap_or_default(),
            timeline,
            latencies,
        }
    }

    fn span(start: u64, end: u64) -> Span {
        Span {
            start: Duration::from_millis(start),
            end: Duration::from_millis(end),
        }
    }

    /// Without a log, the last W of each latency is served.
    #[test]
    fn split_by_given_work() {
        let report = report(UNIX_EPOCH, &[&[(0, 100), (100, 300)]]);
        let timeline =
            Timeline::from_report(&report, Some(Duration::from_millis(100)));
        let served: Vec<_> =
            timeline.rows[0].messages.iter().map(|m| m.served).collect();
        assert_eq!(served, [span(0, 100), span(200, 300)]);
        assert_eq!(timeline.title, "1 client x 2 messages, work 100 ms");
        assert!(timeline.workers.is_empty());
        // Unknown work: the smallest latency stands in, and says so.
        let timeline = Timeline::from_report(&report, None);
        assert_eq!(
            timeline.basis,
            Basis::EstimatedWork(Duration::from_millis(100))
        );
        assert!(timeline.basis.explain().contains("no --work-ms given"));
    }

    /// With a log, the server's moments split each message, matched by
    /// the client's local address and message number; the worker panel
    /// puts each message's work on its worker's row, in lanes where a
    /// worker serves several at once.
    #[test]
    fn split_by_server_log() {
        // A run that started at 10:00:00.000 UTC on some day.
        let started = UNIX_EPOCH + Duration::from_secs(86_400 * 9 + 36_000);
        let report = report(started, &[&[(0, 250)], &[(0, 260)], &[(0, 140)]]);
        let line = |ms: u64, thread: &str, text: String| {
            format!("10:00:00.{ms:03} [pid 9 {thread}] {text}")
        };
        let peer = |c: u16| SocketAddr::from(([127, 0, 0, 1], 40000 + c));
        let message =
            |c| format!("message {} from {}", Preview("package 0"), peer(c));
        let text = [
            line(0, "main", format!("accepted {}", peer(1))),
            line(1, "worker-1", message(1)),
            line(2, "worker-2", message(3)),
            line(120, "worker-2", format!("ack sent to {}", peer(3))),
            line(121, "worker-2", message(2)),
            line(240, "worker-1", format!("ack sent to {}", peer(1))),
            line(250, "worker-2", format!("ack sent to {}", peer(2))),
            // Another run's line, an hour later, for the same port.
            "11:00:00.000 [pid 9 worker-1] ack sent to 127.0.0.1:40001"
                .to_string(),
        ]
        .join("\n");
        let log = ServerLog::parse(&text);
        let w = Some(Duration::from_millis(100));
        let timeline = Timeline::with_server_log(&report, w, &log);
        let served: Vec<_> = timeline
            .rows
            .iter()
            .map(|r| (r.client, r.messages[0].served, r.messages[0].worker))
            .collect();
        // Rows in the order first served; workers by name.
        assert_eq!(
            served,
            [
                (1, span(1, 240), Some(0)),
                (3, span(2, 120), Some(1)),
                (2, span(121, 250), Some(1)),
            ]
        );
        assert_eq!(
            timeline.basis,
            Basis::ServerLog {
                matched: 3,
                total: 3,
                work: Duration::from_millis(100)
            }
        );
        let names: Vec<_> =
            timeline.workers.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["worker-1", "worker-2"]);
        let jobs: Vec<_> = timeline.workers[1]
            .jobs
            .iter()
            .map(|j| (j.client, j.span, j.lane))
            .collect();
        assert_eq!(jobs, [(3, span(2, 120), 0), (2, span(121, 250), 0)]);
        assert_eq!(timeline.workers[1].lanes, 1);
    }

    /// Stretching lengthens a short run's axis and leaves a longer
    /// run's alone; the bars keep their times.
    #[test]
    fn stretch_to_a_common_span() {
        let report = report(UNIX_EPOCH, &[&[(0, 100)], &[(0, 200)]]);
        let mut timeline =
            Timeline::from_report(&report, Some(Duration::from_millis(100)));
        let rows = timeline.rows.clone();
        assert_eq!(timeline.span, Duration::from_millis(200));
        timeline.stretch_to(Duration::from_millis(1000));
        assert_eq!(timeline.span, Duration::from_millis(1000));
        assert_eq!(timeline.rows, rows);
        timeline.stretch_to(Duration::from_millis(500));
        assert_eq!(timeline.span, Duration::from_millis(1000));
    }

    /// The waiting curve counts clients between sending and being
    /// served, and after the work until the ack arrives.
    #[test]
    fn waiting_curve() {
        let report = report(UNIX_EPOCH, &[&[(0, 100)], &[(0, 200)]]);
        let timeline =
            Timeline::from_report(&report, Some(Duration::from_millis(100)));
        let steps: Vec<_> = timeline
            .waiting()
            .into_iter()
            .map(|(at, n)| (at.as_millis(), n))
            .collect();
        // Client 2 waits 0-100 while client 1 is served; nobody after.
        assert_eq!(steps, [(0, 1), (100, 0)]);
        let mut timeline = timeline;
        // The server read client 1's message 10 ms late, and its ack
        // took 5 ms to arrive.
        let first = &mut timeline.rows[0].messages[0];
        first.served = Span {
            start: Duration::from_millis(10),
            end: Duration::from_millis(95),
        };
        let steps: Vec<_> = timeline
            .waiting()
            .into_iter()
            .map(|(at, n)| (at.as_millis(), n))
            .collect();
        assert_eq!(steps, [(0, 2), (10, 1), (95, 2), (100, 0)]);
    }

    /// A worker serving several clients at once gets a lane for each; a
    /// client keeps its lane when it is free.
    #[test]
    fn overlapping_jobs_get_lanes() {
        let job = |client, start, end| Job {
            client,
            number: 0,
            span: span(start, end),
            lane: 9,
        };
        let mut jobs = [
            job(1, 0, 10),
            job(2, 0, 10),
            job(3, 5, 20),
            // Lanes 0 and 1 are both free: client 2 goes back to its own.
            job(2, 10, 20),
            job(4, 10, 15),
            job(1, 15, 20),
        ];
        assert_eq!(assign_lanes(&mut jobs), 3);
        let lanes: Vec<_> = jobs.iter().map(|j| j.lane).collect();
        assert_eq!(lanes, [0, 1, 2, 1, 0, 0]);
    }

    /// Workers are named by what tells them apart, and ordered by pid
    /// and thread number.
    #[test]
    fn worker_names() {
        let w = |pid, thread: &str| Worker {
            pid,
            thread: thread.to_string(),
        };
        let threads = [w(1, "worker-1"), w(1, "worker-2")];
        assert_eq!(worker_labels(&threads), ["worker-1", "worker-2"]);
        let processes = [w(1, "main"), w(2, "main")];
        assert_eq!(worker_labels(&processes), ["pid 1", "pid 2"]);
        assert_eq!(worker_labels(&[w(7, "main")]), ["pid 7 main"]);
        let mut threads =
            [w(1, "worker-10"), w(1, "worker-2"), w(1, "main"), w(0, "z")];
        threads.sort_by(|a, b| natural(a).cmp(&natural(b)));
        let order: Vec<_> = threads.iter().map(|w| w.thread.as_str()).collect();
        assert_eq!(order, ["z", "main", "worker-2", "worker-10"]);
        let mixed = [w(1, "a"), w(2, "b")];
        assert_eq!(worker_labels(&mixed), ["pid 1 a", "pid 2 b"]);
    }
}
