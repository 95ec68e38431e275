//! A single-threaded async runtime, written out: std and chapter 4's
//! poller, nothing else.
//!
//! - [`executor`]: tasks, wakers, the ready queue, `spawn` and `block_on`;
//! - [`reactor`]: the poller, turning readiness into wakes;
//! - [`timers`]: `sleep`, and the `race` and `timeout` combinators;
//! - [`net`]: `TcpListener` and `TcpStream` with `async` methods.
//!
//! The parts meet only through `std::task::Waker`: the reactor and the
//! timers keep wakers and call them; the executor makes them and runs
//! the tasks they name.

pub mod executor;
pub mod net;
mod reactor;
pub mod timers;

pub use executor::{all_tasks_done, block_on, live_tasks, spawn, wake_all};
pub use net::{Registration, TcpListener, TcpStream};
pub use timers::{
    race, sleep, sleep_until, timeout, timeout_at, Either, Elapsed, Race,
    Sleep, Timeout,
};

#[cfg(test)]
mod tests;
