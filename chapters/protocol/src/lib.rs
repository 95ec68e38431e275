//! The contract every server in the book keeps, as code, and the little
//! every server shares.
//!
//! - [`decoder`] and [`encoder`]: the wire format, ETX-framed ASCII
//!   messages, read (the server's side) and written (the client's). The
//!   only code in the book that frames bytes.
//! - [`config`] and [`cli`]: the command line every server takes, and the
//!   steps of every server's `main` (parse, bind, announce, exit code).
//! - [`shutdown`]: SIGINT/SIGTERM as a switch blocking code can poll;
//!   SIGHUP, SIGUSR1 and SIGUSR2 logged and ignored, or claimed by a model.
//! - [`clock`]: the message deadline (`--message-timeout-ms`), one
//!   [`MessageClock`] per connection.
//! - [`budget`]: the server-wide buffer budget (`--max-buffered-bytes`):
//!   a [`Ledger`](budget::Ledger) of who holds how much, and accounts
//!   shared by tasks.
//! - [`close`]: why a connection ended ([`Ending`]), and how long a
//!   lingering close may take ([`LINGER`](close::LINGER)).
//! - [`limits`]: running out of descriptors: raising the open-file limit,
//!   and the pause after a failed `accept`.
//! - [`work`]: the simulated work per message (sleep or spin).
//! - [`log`]: per-event lines naming the process and thread.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod budget;
pub mod cli;
pub mod clock;
pub mod close;
pub mod config;
pub mod decoder;
pub mod encoder;
pub mod limits;
pub mod log;
pub mod shutdown;
pub mod spare;
pub mod work;

pub use clock::MessageClock;
pub use close::Ending;
pub use config::{Balance, Config, PollerKind, WorkKind};
pub use decoder::{Decoder, Frame, ProtocolError, ACK, ETX, GOODBYE};
pub use encoder::{AckReader, NotAck, GOODBYE_FRAME};
pub use shutdown::Shutdown;
pub use work::Work;
