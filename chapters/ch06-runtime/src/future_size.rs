//! What `async`/`await` writes for us, measured: the size of the state
//! machines the compiler builds from this crate's `async fn`s.
//!
//! A task holds its future inline in one heap allocation, so the size of
//! `handle_client`'s future is most of what a connection costs the
//! executor. These tests print the sizes (the book shows them, from
//! `book/output/ch06-runtime.sh`) and hold them under a bound.

use std::mem::size_of_val;
use std::net::{TcpListener as StdListener, TcpStream as StdStream};
use std::rc::Rc;

use protocol::budget::SharedBudget;
use protocol::Config;

use super::runtime::{block_on, sleep_until, TcpStream};
use super::Stop;
use super::{close_gracefully, handle_client, next_input, perform, session};

/// A connected pair on loopback: our stream for the server's side, and
/// the client's side, kept open while the test runs.
fn connected_stream() -> (TcpStream, StdStream) {
    let listener = StdListener::bind("127.0.0.1:0").expect("loopback binds");
    let client = StdStream::connect(listener.local_addr().expect("bound"))
        .expect("loopback connects");
    let (server, _) = listener.accept().expect("the connection is queued");
    let server = TcpStream::from_std(server).expect("inside the runtime");
    (server, client)
}

/// A connection's task future is a few hundred bytes: no buffer lives
/// across an `.await` (the read buffer and the linger's sink are on the
/// heap), so its largest state holds little more than the stream, the
/// peer's address, the decoder and a deadline.
#[test]
fn a_connections_future_is_small() {
    block_on(async {
        let config = Config::default();
        let stop = Stop::default();
        let budget = SharedBudget::new(config.max_buffered_bytes);
        let (stream, client) = connected_stream();
        let peer = client.local_addr().expect("connected");
        let task = handle_client(
            stream,
            peer,
            Rc::new(config.clone()),
            stop.clone(),
            budget.open(),
        );
        let (stream, _client2) = connected_stream();
        let account = budget.open();
        let session = session(stream, peer, &config, &stop, &account);
        let (stream, _client3) = connected_stream();
        let mut idle = sleep_until(None);
        let input = next_input(&stream, &mut idle);
        let (stream4, _client4) = connected_stream();
        let close = close_gracefully(stream4, b"");
        let perform = perform(config.work());
        let sizes = [
            ("handle_client", size_of_val(&task)),
            ("session", size_of_val(&session)),
            ("next_input", size_of_val(&input)),
            ("close_gracefully", size_of_val(&close)),
            ("perform", size_of_val(&perform)),
        ];
        for (name, size) in sizes {
            println!("{name:>16}: {size:5} bytes");
        }
        // Each future holds the one it awaits.
        assert!(sizes[0].1 >= sizes[1].1);
        assert!(sizes[1].1 >= sizes[2].1.max(sizes[3].1));
        assert!(sizes[0].1 < 1024, "a connection's future is {sizes:?}");
    })
    .expect("the runtime starts");
}
