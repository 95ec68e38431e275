//! What `async`/`await` writes for us, measured: the size of the state
//! machines the compiler builds from this crate's `async fn`s.
//!
//! Calling an `async fn` runs none of its body; it returns a future, a value
//! that holds the arguments and, for every `.await` the function can stop
//! at, a state with the local variables live across it - including the
//! future being awaited. The future's size is that of its largest state,
//! and a spawned task keeps it inline in its one heap allocation. These
//! tests print the sizes (the book shows them, from
//! `book/output/ch05-tokio-future-size.sh`) and hold them under a bound, so
//! that a change that makes every connection heavier is noticed.

use std::mem::size_of_val;
use std::net::{TcpListener as StdListener, TcpStream as StdStream};
use std::sync::Arc;

use protocol::budget::SharedBudget;
use protocol::Config;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::{close_gracefully, handle_client, perform, session};

/// One connected pair of sockets on loopback: a tokio stream for the
/// server's side, and the client's side, kept open while the test runs.
fn connected_stream() -> (TcpStream, StdStream) {
    let listener = StdListener::bind("127.0.0.1:0").expect("loopback binds");
    let client = StdStream::connect(listener.local_addr().expect("bound"))
        .expect("loopback connects");
    let (server, _) = listener.accept().expect("the connection is queued");
    server
        .set_nonblocking(true)
        .expect("sockets can be non-blocking");
    let server = TcpStream::from_std(server).expect("inside a runtime");
    (server, client)
}

/// A connection's task future is under 1.5 KiB: no buffer lives across
/// an `.await` - reads and the linger's discards go into the spare buffer
/// taken once input is ready, and the decoder's buffer is on the heap -
/// so the states hold the stream, the decoder, the clocks and the inner
/// futures.
#[tokio::test]
async fn a_connections_future_is_under_one_and_a_half_kib() {
    let config = Config::default();
    let (_switch, stop) = watch::channel(false);
    let (stream, _client) = connected_stream();
    let peer = stream.peer_addr().expect("connected");
    let budget = SharedBudget::new(config.max_buffered_bytes);
    let task = handle_client(
        stream,
        peer,
        Arc::new(config.clone()),
        stop,
        budget.open(),
    );
    let (stream, _client2) = connected_stream();
    let session = session(
        stream,
        peer,
        &config,
        watch::channel(false).1,
        budget.open(),
    );
    let (stream, _client3) = connected_stream();
    let close = close_gracefully(stream, b"");
    let perform = perform(config.work());

    let sizes = [
        ("handle_client", size_of_val(&task)),
        ("session", size_of_val(&session)),
        ("close_gracefully", size_of_val(&close)),
        ("perform", size_of_val(&perform)),
    ];
    for (name, size) in sizes {
        println!("{name:>16}: {size:5} bytes");
    }
    // Each future holds the one it awaits, so none is smaller than the
    // next one down.
    assert!(sizes.windows(2).take(2).all(|pair| pair[0].1 >= pair[1].1));
    // The linger holds no discard buffer of its own.
    assert!(sizes[2].1 < 1024);
    assert!(
        sizes[0].1 < 1536,
        "a connection's future is {} bytes",
        sizes[0].1
    );
}
