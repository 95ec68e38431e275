//! The client's side of the wire: framing messages to send, and checking
//! the replies that come back.
//!
//! The [`Decoder`](crate::Decoder) is the server's half; this is the other
//! half, used by every program that plays a client (the `client` binary,
//! the tour, the benchmark, the tests). With both halves here, this crate
//! is the only code that knows how the protocol lays out bytes.

use crate::decoder::{ACK, ETX, GOODBYE};

/// `goodbye` followed by ETX: the whole frame that ends a session.
pub const GOODBYE_FRAME: &[u8] = b"goodbye\x03";

// `GOODBYE_FRAME` must stay `GOODBYE` + ETX; checked at compile time.
const _: () = {
    assert!(GOODBYE_FRAME.len() == GOODBYE.len() + 1);
    assert!(GOODBYE_FRAME[GOODBYE.len()] == ETX);
};

/// Appends one message frame to `out`: `content`, then ETX.
///
/// `content` is sent as given: a test may put ETX or non-ASCII bytes in it
/// on purpose, to see what the server does with them.
pub fn encode_message(content: &[u8], out: &mut Vec<u8>) {
    out.reserve(content.len() + 1);
    out.extend_from_slice(content);
    out.push(ETX);
}

/// One message frame: `content`, then ETX.
pub fn message(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 1);
    encode_message(content, &mut out);
    out
}

/// Counts `ack` replies in a stream of reply bytes, however the reads
/// split them, and stops at the first byte that is not part of an `ack`
/// (the start of an `err ...` reply, or garbage).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AckReader {
    /// Bytes of the current, unfinished `ack` seen so far (0 to 2).
    partial: usize,
    /// Complete acks seen.
    acks: u64,
}

/// Reply bytes that are not an `ack`: `offset` into the slice given to
/// [`AckReader::feed`] where they start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAck {
    /// Index of the first byte that does not continue an `ack`.
    pub offset: usize,
}

impl AckReader {
    /// A reader that has seen nothing yet.
    pub fn new() -> AckReader {
        AckReader::default()
    }

    /// Feeds the next reply bytes; returns how many acks they completed.
    ///
    /// # Errors
    ///
    /// [`NotAck`] at the first byte that cannot continue an `ack`. The
    /// acks before it are counted; the reader should not be fed again.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<u64, NotAck> {
        let before = self.acks;
        for (offset, &byte) in bytes.iter().enumerate() {
            if byte != ACK[self.partial] {
                return Err(NotAck { offset });
            }
            self.partial += 1;
            if self.partial == ACK.len() {
                self.partial = 0;
                self.acks += 1;
            }
        }
        Ok(self.acks - before)
    }

    /// Complete acks seen so far.
    pub fn acks(&self) -> u64 {
        self.acks
    }

    /// Whether an `ack` has started but not finished: bytes are owed.
    pub fn in_ack(&self) -> bool {
        self.partial > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decoder, Frame};

    /// What the encoder frames, the decoder reads back unchanged.
    #[test]
    fn decoder_reads_what_encoder_writes() {
        let mut wire = Vec::new();
        for content in [&b"package 0"[..], b"", b"x"] {
            encode_message(content, &mut wire);
        }
        wire.extend_from_slice(GOODBYE_FRAME);
        let mut decoder = Decoder::new(64);
        let mut input = &wire[..];
        let mut frames = Vec::new();
        while let Some(frame) = decoder.decode(&mut input).expect("valid") {
            frames.push(match frame {
                Frame::Message(text) => text.to_owned(),
                Frame::Goodbye => "<goodbye>".to_owned(),
            });
        }
        assert_eq!(frames, ["package 0", "", "x", "<goodbye>"]);
        assert_eq!(message(b"hi"), b"hi\x03");
    }

    /// Acks split over reads at every point are counted once each, and
    /// the first byte of an `err` reply is found where it starts.
    #[test]
    fn ack_reader_counts_split_acks_and_stops_at_err() {
        let reply = b"ackackerr message too long";
        for split in 0..=reply.len() {
            let mut reader = AckReader::new();
            let (a, b) = reply.split_at(split);
            let first = reader.feed(a);
            let result = match first {
                Ok(_) => reader.feed(b).map_err(|e| e.offset + a.len()),
                Err(e) => Err(e.offset),
            };
            assert_eq!(result, Err(6), "split at {split}");
            assert_eq!(reader.acks(), 2, "split at {split}");
        }
        let mut reader = AckReader::new();
        assert_eq!(reader.feed(b"ac"), Ok(0));
        assert!(reader.in_ack());
        assert_eq!(reader.feed(b"k"), Ok(1));
        assert!(!reader.in_ack());
    }
}
