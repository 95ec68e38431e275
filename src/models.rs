//! Every chapter's server, in one table: the only list of the models. The
//! tour, the benchmark, the tests and the book's output scripts (through
//! `server-models models`) all read it. A new chapter adds its crate and
//! one entry here.

use protocol::cli::Serve;

/// One server model.
#[derive(Debug, Clone, Copy)]
pub struct Model {
    /// What `server-models serve <name>` runs: the chapter's package and
    /// binary name, e.g. `ch03-threaded`, as `cargo run -p <name>` would;
    /// chapter 3's second binary, `thread-per-connection` (`cargo run -p
    /// ch03-threaded --bin thread-per-connection`); or, for a variant of a
    /// chapter's server, a name of its own (`ch04-poll` is `ch04-epoll
    /// --poller poll`).
    pub name: &'static str,
    /// A short name for the benchmark's tables and plots, e.g. `threaded`.
    pub label: &'static str,
    /// What `--help` says about it.
    pub about: &'static str,
    /// Its entry point.
    pub serve: Serve,
    /// Flags that make this model out of its chapter's server, passed
    /// before any others: empty but for a variant.
    pub flags: &'static [&'static str],
    /// How many messages it works on at once with sleep work, in theory.
    pub sleep: Parallelism,
    /// The same with spin work, before the machine's cores cap it:
    /// spinning needs a core, so no model beats the machine.
    pub spin: Parallelism,
    /// Whether `--workers` changes it (the process and thread pools).
    /// Every server accepts the flag; the others ignore it.
    pub takes_workers: bool,
    /// Whether `--queue` changes it (the thread pool's queue bound).
    pub takes_queue: bool,
    /// The most connections the benchmark's zero-work sweep drives it
    /// with: a thread or process per client (or a pool of them) stops
    /// at 1,000.
    pub max_connections: usize,
    /// Readiness loops serve every connection, none blocks on a client
    /// (one loop, or one per core in chapter 7): the benchmark measures its memory per idle connection and holds it to
    /// the goal against the reference.
    pub event_loop: bool,
    /// The reference implementation the book's own event loop is held
    /// against, and the server the benchmark's load generator is checked
    /// on.
    pub reference: bool,
}

/// A model's parallelism: how many messages it works on at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parallelism {
    /// One message at a time, whatever the load.
    One,
    /// One per worker (process or thread), while there are enough
    /// clients: `min(clients, workers)`.
    Workers,
    /// Every client at once: sleeping work is a timer, not a worker.
    Clients,
}

impl Parallelism {
    /// The predicted parallelism for `clients` clients and `workers`
    /// workers.
    pub fn value(self, clients: u32, workers: u32) -> u32 {
        match self {
            Parallelism::One => 1,
            Parallelism::Workers => clients.min(workers),
            Parallelism::Clients => clients,
        }
    }

    /// The rule, for the table's legend.
    pub fn rule(self) -> &'static str {
        match self {
            Parallelism::One => "1",
            Parallelism::Workers => "min(clients, workers)",
            Parallelism::Clients => "clients",
        }
    }
}

impl Model {
    /// The predicted parallelism with sleep work.
    pub fn predicted_sleep(&self, clients: u32, workers: u32) -> u32 {
        self.sleep.value(clients, workers)
    }

    /// The `--workers` flag, and `--queue` if `queue` is given, for the
    /// models that take them: `workers` workers, room for `queue` waiting
    /// clients.
    pub fn pool_flags(
        &self,
        workers: u32,
        queue: Option<usize>,
    ) -> Vec<String> {
        let mut flags = Vec::new();
        if self.takes_workers {
            flags.extend(["--workers".to_owned(), workers.to_string()]);
        }
        if let (true, Some(queue)) = (self.takes_queue, queue) {
            flags.extend(["--queue".to_owned(), queue.to_string()]);
        }
        flags
    }
}

/// Every model, in chapter order.
pub const MODELS: &[Model] = &[
    Model {
        name: "ch01-single",
        label: "single",
        about: ch01_single::ABOUT,
        serve: ch01_single::serve,
        flags: &[],
        sleep: Parallelism::One,
        spin: Parallelism::One,
        takes_workers: false,
        takes_queue: false,
        max_connections: 1000,
        event_loop: false,
        reference: false,
    },
    Model {
        name: "ch02-prefork",
        label: "prefork",
        about: ch02_prefork::ABOUT,
        serve: ch02_prefork::serve,
        flags: &[],
        sleep: Parallelism::Workers,
        spin: Parallelism::Workers,
        takes_workers: true,
        takes_queue: false,
        max_connections: 1000,
        event_loop: false,
        reference: false,
    },
    Model {
        name: "thread-per-connection",
        label: "per-connection",
        about: ch03_threaded::per_connection::ABOUT,
        serve: ch03_threaded::per_connection::serve,
        flags: &[],
        // A thread for every client: nobody waits for a worker.
        sleep: Parallelism::Clients,
        spin: Parallelism::Clients,
        takes_workers: false,
        takes_queue: false,
        max_connections: 1000,
        event_loop: false,
        reference: false,
    },
    Model {
        name: "ch03-threaded",
        label: "threaded",
        about: ch03_threaded::ABOUT,
        serve: ch03_threaded::serve,
        flags: &[],
        sleep: Parallelism::Workers,
        spin: Parallelism::Workers,
        takes_workers: true,
        takes_queue: true,
        max_connections: 1000,
        event_loop: false,
        reference: false,
    },
    Model {
        name: "ch04-epoll",
        label: "epoll",
        about: ch04_epoll::ABOUT,
        serve: ch04_epoll::serve,
        flags: &[],
        sleep: Parallelism::Clients,
        // Spinning holds the loop's one thread.
        spin: Parallelism::One,
        takes_workers: false,
        takes_queue: false,
        max_connections: 10_000,
        event_loop: true,
        reference: false,
    },
    Model {
        name: "ch04-poll",
        label: "poll",
        about: ch04_epoll::ABOUT,
        serve: ch04_epoll::serve,
        // The same loop, asking for readiness with poll(2): a wait costs
        // every registered descriptor, not just the ready ones.
        flags: &["--poller", "poll"],
        sleep: Parallelism::Clients,
        spin: Parallelism::One,
        takes_workers: false,
        takes_queue: false,
        max_connections: 10_000,
        event_loop: true,
        reference: false,
    },
    Model {
        name: "ch05-tokio",
        label: "tokio",
        about: ch05_tokio::ABOUT,
        serve: ch05_tokio::serve,
        flags: &[],
        sleep: Parallelism::Clients,
        // Spin work goes to tokio's blocking thread pool.
        spin: Parallelism::Clients,
        takes_workers: false,
        takes_queue: false,
        max_connections: 10_000,
        event_loop: true,
        reference: true,
    },
    Model {
        name: "ch06-runtime",
        label: "runtime",
        about: ch06_runtime::ABOUT,
        serve: ch06_runtime::serve,
        flags: &[],
        sleep: Parallelism::Clients,
        // Spin work runs in place on the one thread, as in chapter 4.
        spin: Parallelism::One,
        takes_workers: false,
        takes_queue: false,
        max_connections: 10_000,
        event_loop: true,
        reference: false,
    },
    // Chapter 7: one loop per CPU. shared: every loop watches one
    // listener, so a connection wakes them all (the herd); exclusive: the
    // same listener added with EPOLLEXCLUSIVE, one loop woken; reuseport:
    // a listener per loop (SO_REUSEPORT), the kernel picks the loop.
    loops("ch07-shared", "loops-shared", &["--balance", "shared"]),
    loops(
        "ch07-exclusive",
        "loops-exclusive",
        &["--balance", "exclusive"],
    ),
    loops(
        "ch07-reuseport",
        "loops-reuseport",
        &["--balance", "reuseport"],
    ),
    Model {
        name: "ch08-uring",
        label: "uring",
        about: ch08_uring::ABOUT,
        serve: ch08_uring::serve,
        flags: &[],
        sleep: Parallelism::Clients,
        // Spin work runs in place on the one thread, as in chapter 4.
        spin: Parallelism::One,
        takes_workers: false,
        takes_queue: false,
        max_connections: 10_000,
        event_loop: true,
        reference: false,
    },
];

/// A row of chapter 7's server, which `flags` set to one way of sharing
/// the port.
const fn loops(
    name: &'static str,
    label: &'static str,
    flags: &'static [&'static str],
) -> Model {
    Model {
        name,
        label,
        about: ch07_loops::ABOUT,
        serve: ch07_loops::serve,
        flags,
        sleep: Parallelism::Clients,
        // Each loop spins one message at a time, and there is a loop per
        // core: the cores cap it, as they cap every model. (A loop holds
        // the clients it accepted, so two spinning on one loop wait for
        // each other while another loop may idle: chapter 7.)
        spin: Parallelism::Clients,
        takes_workers: false,
        takes_queue: false,
        max_connections: 10_000,
        event_loop: true,
        reference: false,
    }
}

/// The model called `name`.
pub fn find(name: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.name == name)
}

/// The reference implementation (see [`Model::reference`]).
pub fn reference() -> &'static Model {
    MODELS
        .iter()
        .find(|m| m.reference)
        .expect("the table above has a reference model")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names and labels are unique, and exactly one model is the
    /// reference, so every lookup has one answer.
    #[test]
    fn the_table_is_consistent() {
        for (i, a) in MODELS.iter().enumerate() {
            for b in &MODELS[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.label, b.label);
            }
        }
        assert_eq!(MODELS.iter().filter(|m| m.reference).count(), 1);
        assert!(reference().event_loop, "the reference is an event loop");
    }

    /// The pools get `--workers` (and the thread pool `--queue`); the
    /// others get neither.
    #[test]
    fn pool_flags_follow_the_table() {
        let pool = find("ch03-threaded").expect("chapter 3");
        assert_eq!(
            pool.pool_flags(5, Some(64)),
            ["--workers", "5", "--queue", "64"]
        );
        let single = find("ch01-single").expect("chapter 1");
        assert!(single.pool_flags(5, Some(64)).is_empty());
        assert_eq!(pool.predicted_sleep(6, 3), 3);
    }

    /// A variant's flags are ones every server parses: `serve ch04-poll`
    /// starts chapter 4's server with the poll backend.
    #[test]
    fn variant_flags_parse() {
        use clap::Parser;
        let poll = find("ch04-poll").expect("the poll variant");
        let args = std::iter::once(poll.name).chain(poll.flags.iter().copied());
        let config = protocol::Config::try_parse_from(args).expect("parses");
        assert_eq!(config.poller, protocol::PollerKind::Poll);
        let exclusive = find("ch07-exclusive").expect("a chapter 7 row");
        let args = std::iter::once(exclusive.name)
            .chain(exclusive.flags.iter().copied());
        let config = protocol::Config::try_parse_from(args).expect("parses");
        assert_eq!(config.balance, protocol::Balance::Exclusive);
        assert!(MODELS.iter().filter(|m| m.flags.is_empty()).count() >= 5);
    }
}
