//! Every chapter's server, in one table: the only place the tour lists
//! them. A new chapter adds one row.

use protocol::cli::Serve;

/// One server model.
#[derive(Debug, Clone, Copy)]
pub struct Model {
    /// The chapter's package name, e.g. `ch03-threaded`.
    pub name: &'static str,
    /// What `--help` says about it.
    pub about: &'static str,
    /// Its entry point.
    pub serve: Serve,
    /// How many messages it works on at once, in theory.
    pub prediction: Prediction,
}

/// What a model predicts for its parallelism, with sleep work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prediction {
    /// One message at a time, whatever the load.
    One,
    /// One per worker (process or thread), while there are enough
    /// clients: `min(clients, workers)`.
    Workers,
    /// Every client at once: sleeping work is a timer, not a worker.
    Clients,
}

impl Prediction {
    /// The predicted parallelism for `clients` clients and `workers`
    /// workers.
    pub fn value(self, clients: u32, workers: u32) -> u32 {
        match self {
            Prediction::One => 1,
            Prediction::Workers => clients.min(workers),
            Prediction::Clients => clients,
        }
    }

    /// The rule, for the table's legend.
    pub fn rule(self) -> &'static str {
        match self {
            Prediction::One => "1",
            Prediction::Workers => "min(clients, workers)",
            Prediction::Clients => "clients",
        }
    }
}

/// Every model, in chapter order.
pub const MODELS: &[Model] = &[
    Model {
        name: "ch01-single",
        about: ch01_single::ABOUT,
        serve: ch01_single::serve,
        prediction: Prediction::One,
    },
    Model {
        name: "ch02-prefork",
        about: ch02_prefork::ABOUT,
        serve: ch02_prefork::serve,
        prediction: Prediction::Workers,
    },
    Model {
        name: "ch03-threaded",
        about: ch03_threaded::ABOUT,
        serve: ch03_threaded::serve,
        prediction: Prediction::Workers,
    },
    Model {
        name: "ch04-epoll",
        about: ch04_epoll::ABOUT,
        serve: ch04_epoll::serve,
        prediction: Prediction::Clients,
    },
    Model {
        name: "ch05-tokio",
        about: ch05_tokio::ABOUT,
        serve: ch05_tokio::serve,
        prediction: Prediction::Clients,
    },
];

/// The model called `name`.
pub fn find(name: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.name == name)
}
