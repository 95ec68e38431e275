//! The contract every server in the book keeps, as code.
//!
//! - [`decoder`] and [`encoder`]: the wire format, ETX-framed ASCII
//!   messages, read (the server's side) and written (the client's). The
//!   only code in the book that frames bytes.
//! - [`config`] and [`cli`]: the command line every server takes.
//! - [`work`]: the simulated work per message (sleep or spin).
//! - [`shutdown`]: SIGINT/SIGTERM as a descriptor blocking code can poll.
//! - [`blocking`]: waiting for a client and serving one session on one
//!   thread, shared by the single, prefork and threaded chapters.
//! - [`log`]: per-event lines naming the process and thread.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod blocking;
pub mod cli;
pub mod config;
pub mod decoder;
pub mod encoder;
pub mod log;
pub mod shutdown;
pub mod work;

pub use config::{Config, WorkKind};
pub use decoder::{Decoder, Frame, ProtocolError, ACK, ETX, GOODBYE};
pub use encoder::{AckReader, NotAck, GOODBYE_FRAME};
pub use shutdown::Shutdown;
pub use work::Work;
