//! How fast the decoder frames bytes: `cargo bench -p protocol`.
//!
//! The input is 1 MiB of back-to-back messages of one size, decoded
//! either from one buffer or in 4 KiB pieces, the size of one socket read.
//! divan reports the throughput in bytes per second.

use divan::counter::BytesCount;
use divan::{black_box, Bencher};
use protocol::{Decoder, Frame, ETX};

fn main() {
    divan::main();
}

/// Content bytes per message: the seed's `package 0` (9), a line of
/// text (100), and large messages near the default limit (60,000).
const SIZES: [usize; 3] = [9, 100, 60_000];

/// About this many bytes of messages per benchmark iteration.
const STREAM: usize = 1 << 20;

/// Largest message the decoders accept (the default limit).
const LIMIT: usize = 65_536;

/// A stream of whole messages of `size` content bytes each.
fn stream(size: usize) -> Vec<u8> {
    let mut message = vec![b'x'; size];
    message.push(ETX);
    message.repeat(STREAM.div_ceil(message.len()))
}

/// Decodes `chunks` in order; returns the messages seen.
fn decode_all<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> usize {
    let mut decoder = Decoder::new(LIMIT);
    let mut messages = 0;
    for chunk in chunks {
        let mut input = chunk;
        while let Some(frame) = decoder.decode(&mut input).expect("valid") {
            if let Frame::Message(text) = frame {
                black_box(text);
                messages += 1;
            }
        }
    }
    messages
}

/// The whole stream in one buffer.
#[divan::bench(args = SIZES)]
fn whole(bencher: Bencher, size: usize) {
    let bytes = stream(size);
    bencher
        .counter(BytesCount::of_slice(&bytes))
        .bench_local(|| decode_all(std::iter::once(black_box(&bytes[..]))));
}

/// The stream as 4 KiB reads: messages split across reads.
#[divan::bench(args = SIZES)]
fn reads_of_4k(bencher: Bencher, size: usize) {
    let bytes = stream(size);
    bencher
        .counter(BytesCount::of_slice(&bytes))
        .bench_local(|| decode_all(black_box(&bytes[..]).chunks(4096)));
}
