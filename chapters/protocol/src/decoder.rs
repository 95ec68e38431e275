//! Framing: turning a byte stream into messages.
//!
//! TCP delivers bytes, not messages. One `read` may return half a message,
//! or three messages and the start of a fourth. The [`Decoder`] is fed
//! whatever the socket produced and hands back one complete [`Frame`] at a
//! time, keeping the unfinished tail for the next read.
//!
//! It never holds more than `max_message_bytes` of content: a client that
//! sends a megabyte with no ETX costs the server `max_message_bytes`, then
//! gets [`ProtocolError::TooLong`]. And once a message is complete it keeps
//! at most [`IDLE_CAPACITY`], so a connection that once sent a big message
//! and went quiet costs what any idle connection costs.

use std::fmt;

/// The byte that ends every message (ASCII "end of text").
pub const ETX: u8 = 0x03;

/// The content of the message that ends a session.
pub const GOODBYE: &[u8] = b"goodbye";

/// What the server sends for every message, after the work.
pub const ACK: &[u8] = b"ack";

/// The most buffer a decoder keeps once a message is complete: 4 KiB.
///
/// A buffer grows to fit the largest message so far, and a `Vec` never
/// gives memory back by itself: 2,000 idle connections that once sent a
/// 60 KB message would hold 117 MiB between them. So after a message the
/// decoder shrinks its buffer to this size. Shrinking is a reallocation,
/// but only a buffer that a message took past this size is ever shrunk:
/// the common path, short messages, never reallocates.
pub const IDLE_CAPACITY: usize = 4 * 1024;

/// One complete unit of the protocol, as the decoder hands it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A message to work on and acknowledge. Always ASCII, never holds ETX,
    /// may be empty.
    Message(&'a str),
    /// The client said `goodbye`: send nothing more, close.
    Goodbye,
}

/// A protocol violation. The connection is answered with
/// [`ProtocolError::reply`] and closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// More than the limit of content bytes arrived before an ETX.
    TooLong {
        /// The configured `--max-message-bytes`.
        limit: usize,
    },
    /// A byte outside ASCII (0x80 or above) arrived.
    NonAscii {
        /// The offending byte.
        byte: u8,
    },
}

impl ProtocolError {
    /// The bytes sent to the client before closing: `err ` and a reason.
    pub fn reply(&self) -> &'static [u8] {
        match self {
            ProtocolError::TooLong { .. } => b"err message too long",
            ProtocolError::NonAscii { .. } => b"err non-ASCII byte",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::TooLong { limit } => {
                write!(f, "message longer than {limit} bytes")
            }
            ProtocolError::NonAscii { byte } => {
                write!(f, "non-ASCII byte 0x{byte:02x}")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

// ANCHOR: decoder
/// An incremental decoder: feed it bytes as they arrive, take frames out.
///
/// ```
/// use protocol::{Decoder, Frame};
///
/// let mut decoder = Decoder::new(64);
/// // "pack" in one read, "age 0", ETX and half of the next in another.
/// let mut first: &[u8] = b"pack";
/// assert_eq!(decoder.decode(&mut first), Ok(None));
/// let mut second: &[u8] = b"age 0\x03goo";
/// assert_eq!(decoder.decode(&mut second), Ok(Some(Frame::Message("package 0"))));
/// assert_eq!(decoder.decode(&mut second), Ok(None));
/// let mut third: &[u8] = b"dbye\x03";
/// assert_eq!(decoder.decode(&mut third), Ok(Some(Frame::Goodbye)));
/// ```
#[derive(Debug)]
pub struct Decoder {
    /// Content of the message being received, never longer than `max`
    /// (but for a `goodbye` that passes a limit below seven bytes).
    partial: Vec<u8>,
    /// `partial` holds a frame that was handed out; clear it before reuse.
    complete: bool,
    max: usize,
}

impl Decoder {
    /// A decoder that accepts messages of at most `max_message_bytes`
    /// content bytes (ETX not counted).
    pub fn new(max_message_bytes: usize) -> Decoder {
        Decoder {
            // Grown on demand: most messages are short, and an idle
            // connection should cost next to nothing.
            partial: Vec::new(),
            complete: false,
            max: max_message_bytes,
        }
    }

    /// Takes bytes from the front of `input` up to the end of one message.
    ///
    /// Returns `Ok(Some(frame))` and leaves the rest of `input` for the next
    /// call; or `Ok(None)` once `input` is used up without finishing a
    /// message (the unfinished part is kept). Feeding a stream in any split
    /// gives the same frames as feeding it whole.
    ///
    /// # Errors
    ///
    /// [`ProtocolError`] when the stream breaks the protocol. The decoder is
    /// then finished: the connection must be answered and closed.
    pub fn decode<'d>(
        &'d mut self,
        input: &mut &[u8],
    ) -> Result<Option<Frame<'d>>, ProtocolError> {
        if self.complete {
            // The frame handed out borrowed `partial`; only now, at the
            // next call, may it be cleared - and given back if big.
            self.partial.clear();
            self.partial.shrink_to(IDLE_CAPACITY);
            self.complete = false;
        }
        // Find the first byte that ends the message or breaks the rules.
        let stop = find_stop(input);
        let content_len = stop.unwrap_or(input.len());
        let content = &input[..content_len];
        if self.partial.len() + content_len > self.max
            && !self.could_be_goodbye(content)
        {
            return Err(ProtocolError::TooLong { limit: self.max });
        }
        self.grow_for(content_len);
        self.partial.extend_from_slice(content);
        let Some(stop) = stop else {
            *input = &[];
            return Ok(None);
        };
        let byte = input[stop];
        if byte != ETX {
            return Err(ProtocolError::NonAscii { byte });
        }
        *input = &input[stop + 1..];
        self.complete = true;
        if self.partial == GOODBYE {
            return Ok(Some(Frame::Goodbye));
        }
        // Every byte is below 0x80, so this is valid UTF-8.
        let text = std::str::from_utf8(&self.partial)
            .expect("the decoder only keeps ASCII bytes");
        Ok(Some(Frame::Message(text)))
    }
    // ANCHOR_END: decoder

    /// Makes room for `more` bytes (already checked against the limit),
    /// doubling like `Vec` would but never past the limit: `Vec`'s own
    /// doubling could leave a buffer of nearly twice the limit.
    fn grow_for(&mut self, more: usize) {
        let needed = self.partial.len() + more;
        let capacity = self.partial.capacity();
        if needed > capacity {
            let ceiling = self.max.max(needed);
            let target = capacity.saturating_mul(2).max(needed).min(ceiling);
            self.partial.reserve_exact(target - self.partial.len());
        }
    }

    /// Whether the message so far, followed by `more`, could still be
    /// `goodbye`. A session can always end politely: with a limit below
    /// seven bytes, `goodbye` is the one message allowed past it.
    fn could_be_goodbye(&self, more: &[u8]) -> bool {
        let len = self.partial.len() + more.len();
        len <= GOODBYE.len()
            && GOODBYE.starts_with(&self.partial)
            && GOODBYE[self.partial.len()..].starts_with(more)
    }

    /// Bytes of an unfinished message held since the last complete one.
    /// Non-zero at end of stream means the client hung up mid-message.
    pub fn pending_bytes(&self) -> usize {
        if self.complete {
            0
        } else {
            self.partial.len()
        }
    }

    /// The capacity of the internal buffer, for checking the memory bound.
    pub fn buffered_capacity(&self) -> usize {
        self.partial.capacity()
    }
}

/// The index of the first byte that ends a message (ETX) or breaks the
/// rules (not ASCII), if any.
///
/// A byte-at-a-time search stops at every byte to ask; a chunk at a time,
/// with no early exit inside the chunk, the compiler tests the whole chunk
/// in a few vector instructions. Long messages are scanned several times
/// faster (`benches/decoder.rs`), which matters when thousands of clients
/// send long messages at once: a byte-at-a-time scan was the largest cost
/// of a server flooded with them.
fn find_stop(input: &[u8]) -> Option<usize> {
    const CHUNK: usize = 32;
    let stops = |b: u8| b == ETX || b >= 0x80;
    // Whole chunks free of stops are skipped; the search below then
    // looks at the first chunk with one, or the short tail.
    let mut checked = 0;
    for chunk in input.chunks_exact(CHUNK) {
        if chunk.iter().fold(false, |any, &b| any | stops(b)) {
            break;
        }
        checked += CHUNK;
    }
    input[checked..]
        .iter()
        .position(|&b| stops(b))
        .map(|i| checked + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    /// One decoded result, owned, so whole runs can be compared.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Item {
        Message(String),
        Goodbye,
        Error(ProtocolError),
    }

    /// Feeds `chunks` in order and collects every result up to the first
    /// error, checking the memory bound (the buffer's capacity) after
    /// every call: the limit, or seven bytes for a `goodbye` that passes
    /// a smaller one.
    fn run(max: usize, chunks: &[&[u8]]) -> Vec<Item> {
        let mut decoder = Decoder::new(max);
        let bound = max.max(GOODBYE.len());
        let mut out = Vec::new();
        for chunk in chunks {
            let mut input = *chunk;
            loop {
                let item = match decoder.decode(&mut input) {
                    Ok(Some(Frame::Message(m))) => Item::Message(m.to_owned()),
                    Ok(Some(Frame::Goodbye)) => Item::Goodbye,
                    Ok(None) => {
                        assert!(input.is_empty());
                        assert!(decoder.buffered_capacity() <= bound);
                        break;
                    }
                    Err(e) => Item::Error(e),
                };
                assert!(decoder.buffered_capacity() <= bound);
                let failed = matches!(item, Item::Error(_));
                out.push(item);
                if failed {
                    return out;
                }
            }
        }
        out
    }

    fn msg(s: &str) -> Item {
        Item::Message(s.to_owned())
    }

    /// The seed client's whole session, in one read.
    #[test]
    fn whole_session_in_one_read() {
        let wire = b"package 0\x03package 1\x03goodbye\x03";
        assert_eq!(
            run(64, &[wire]),
            [msg("package 0"), msg("package 1"), Item::Goodbye]
        );
    }

    /// A message split byte by byte comes out once, whole.
    #[test]
    fn byte_by_byte() {
        let wire = b"package 0\x03";
        let chunks: Vec<&[u8]> = wire.chunks(1).collect();
        assert_eq!(run(64, &chunks), [msg("package 0")]);
    }

    /// A lone ETX is an empty message, and it is acked like any other.
    #[test]
    fn empty_messages() {
        assert_eq!(run(64, &[b"\x03\x03"]), [msg(""), msg("")]);
    }

    /// Exactly the limit is fine; one byte more is an error, even before
    /// the ETX arrives.
    #[test]
    fn limit_is_inclusive() {
        assert_eq!(run(4, &[b"abcd\x03"]), [msg("abcd")]);
        let too_long = Item::Error(ProtocolError::TooLong { limit: 4 });
        assert_eq!(run(4, &[b"abcde"]), std::slice::from_ref(&too_long));
        assert_eq!(run(4, &[b"ab", b"cd", b"e"]), [too_long]);
    }

    /// Messages before a violation are still delivered, in order.
    #[test]
    fn messages_before_an_error_survive() {
        assert_eq!(
            run(64, &[b"a\x03b\x03c\xffd\x03"]),
            [
                msg("a"),
                msg("b"),
                Item::Error(ProtocolError::NonAscii { byte: 0xff })
            ]
        );
    }

    /// `goodbye` must be the whole content; a longer message is just a
    /// message.
    #[test]
    fn goodbye_is_exact() {
        assert_eq!(
            run(64, &[b"goodbye!\x03goodbye\x03"]),
            [msg("goodbye!"), Item::Goodbye]
        );
    }

    /// End of stream mid-message leaves the bytes pending, for the log.
    #[test]
    fn pending_bytes_report_an_unfinished_message() {
        let mut decoder = Decoder::new(64);
        let mut input: &[u8] = b"ok\x03unfini";
        assert_eq!(decoder.decode(&mut input), Ok(Some(Frame::Message("ok"))));
        assert_eq!(decoder.pending_bytes(), 0);
        assert_eq!(decoder.decode(&mut input), Ok(None));
        assert_eq!(decoder.pending_bytes(), 6);
    }

    /// The buffer's capacity, not only its length, stays within the
    /// limit: `Vec`'s doubling would take a buffer of 32,766 bytes to
    /// 65,532 and then to 131,064 for a 65,536-byte limit.
    #[test]
    fn capacity_stays_within_the_limit() {
        let max = 65_536;
        let mut decoder = Decoder::new(max);
        let mut first: &[u8] = &[b'x'; 16_383];
        assert_eq!(decoder.decode(&mut first), Ok(None));
        for _ in 16_383..max {
            let mut one: &[u8] = b"x";
            assert_eq!(decoder.decode(&mut one), Ok(None));
            assert!(decoder.buffered_capacity() <= max);
        }
        let mut end: &[u8] = b"\x03";
        assert!(matches!(decoder.decode(&mut end), Ok(Some(_))));
    }

    /// A 60 KB message, arriving in segment-sized reads, leaves a buffer
    /// of at most [`IDLE_CAPACITY`] behind once it is complete - not the
    /// 60 KB it took - and the next short message costs no reallocation.
    #[test]
    fn a_big_message_leaves_no_big_buffer() {
        let mut decoder = Decoder::new(65_536);
        let mut wire = vec![b'x'; 60_000];
        wire.push(ETX);
        let mut during = 0;
        for segment in wire.chunks(1448) {
            let mut input = segment;
            while let Some(frame) = decoder.decode(&mut input).unwrap() {
                assert!(
                    matches!(frame, Frame::Message(m) if m.len() == 60_000)
                );
            }
            during = during.max(decoder.buffered_capacity());
        }
        assert!(during >= 60_000, "the message itself was held whole");
        assert_eq!(decoder.pending_bytes(), 0);
        assert!(decoder.buffered_capacity() <= IDLE_CAPACITY);
        let kept = decoder.buffered_capacity();
        let mut short: &[u8] = b"package 0\x03";
        assert_eq!(
            decoder.decode(&mut short),
            Ok(Some(Frame::Message("package 0")))
        );
        assert_eq!(decoder.decode(&mut short), Ok(None));
        assert_eq!(decoder.buffered_capacity(), kept);
    }

    /// Any byte stream, with a split point list.
    fn stream_and_splits() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
        // Mostly protocol-shaped bytes, with the odd non-ASCII one.
        let byte = prop_oneof![
            8 => b'a'..=b'z',
            2 => Just(ETX),
            1 => Just(b' '),
            1 => any::<u8>(),
        ];
        prop::collection::vec(byte, 0..400).prop_flat_map(|bytes| {
            let len = bytes.len();
            (Just(bytes), prop::collection::vec(0..=len, 0..20))
        })
    }

    fn split<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut cuts = cuts.to_vec();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for cut in cuts {
            chunks.push(&bytes[start..cut]);
            start = cut;
        }
        chunks.push(&bytes[start..]);
        chunks
    }

    proptest! {
        /// Any partition of any byte stream yields the same results as
        /// feeding it whole, and the buffer never passes the limit.
        #[test]
        fn any_split_gives_the_same_frames(
            (bytes, cuts) in stream_and_splits(),
            max in 0usize..40,
        ) {
            let whole = run(max, &[&bytes]);
            let pieces = run(max, &split(&bytes, &cuts));
            prop_assert_eq!(whole, pieces);
        }

        /// Whenever the decoder waits for more input, its buffer holds at
        /// most [`IDLE_CAPACITY`] or, for the unfinished message, twice its
        /// bytes (the doubling growth): never what an earlier, bigger
        /// message needed, however the stream is split.
        #[test]
        fn idle_buffer_is_small_after_any_message(
            lengths in prop::collection::vec(
                prop_oneof![3 => 0usize..100, 1 => 0usize..20_000],
                0..8,
            ),
            tail in 0usize..20_000,
            cuts in prop::collection::vec(0.0f64..=1.0, 0..20),
        ) {
            let mut bytes = Vec::new();
            for len in lengths {
                bytes.extend(std::iter::repeat_n(b'm', len));
                bytes.push(ETX);
            }
            bytes.extend(std::iter::repeat_n(b't', tail));
            let cuts: Vec<usize> = cuts
                .iter()
                .map(|f| (f * bytes.len() as f64) as usize)
                .collect();
            let mut decoder = Decoder::new(20_000);
            for chunk in split(&bytes, &cuts) {
                let mut input = chunk;
                while decoder.decode(&mut input).unwrap().is_some() {}
                let pending = decoder.pending_bytes();
                prop_assert!(
                    decoder.buffered_capacity()
                        <= IDLE_CAPACITY.max(2 * pending),
                    "capacity {} with {} bytes pending",
                    decoder.buffered_capacity(),
                    pending
                );
            }
        }

        /// The chunked search finds the same byte as asking byte by byte,
        /// wherever the stop falls against the chunks, or that none is
        /// there.
        #[test]
        fn find_stop_agrees_with_a_byte_at_a_time_search(
            plain in prop::collection::vec(0u8..0x80, 0..200),
            stops in prop::collection::vec(
                (any::<prop::sample::Index>(), prop_oneof![Just(ETX), 0x80u8..]),
                0..3,
            ),
        ) {
            let mut bytes = plain;
            for (at, byte) in stops {
                if !bytes.is_empty() {
                    let at = at.index(bytes.len());
                    bytes[at] = byte;
                }
            }
            let expected = bytes.iter().position(|&b| b == ETX || b >= 0x80);
            prop_assert_eq!(find_stop(&bytes), expected);
        }

        /// A flood without ETX is cut off at the limit, however it is split.
        #[test]
        fn floods_are_bounded(len in 0usize..5000, max in 0usize..1000) {
            let flood = vec![b'x'; len];
            let chunks: Vec<&[u8]> = flood.chunks(7).collect();
            let items = run(max, &chunks);
            if len > max {
                prop_assert_eq!(
                    items,
                    vec![Item::Error(ProtocolError::TooLong { limit: max })]
                );
            } else {
                prop_assert!(items.is_empty());
            }
        }

        /// Every message that comes out is ASCII without ETX and within
        /// the limit; arbitrary bytes never panic.
        #[test]
        fn frames_are_well_formed(
            bytes in prop::collection::vec(any::<u8>(), 0..600),
            max in 0usize..64,
        ) {
            for item in run(max, &[&bytes]) {
                if let Item::Message(m) = item {
                    prop_assert!(m.len() <= max);
                    prop_assert!(m.bytes().all(|b| b < 0x80 && b != ETX));
                }
            }
        }
    }

    /// With a limit below seven bytes, `goodbye` still ends the session,
    /// whatever the split; any other message past the limit is refused.
    #[test]
    fn goodbye_passes_a_tiny_limit() {
        for split in 0..=8 {
            let wire = b"goodbye\x03";
            let (a, b) = wire.split_at(split);
            let mut decoder = Decoder::new(1);
            let mut goodbyes = 0;
            for mut part in [a, b] {
                while let Some(frame) = decoder.decode(&mut part).unwrap() {
                    assert_eq!(frame, Frame::Goodbye, "split {split}");
                    goodbyes += 1;
                }
            }
            assert_eq!(goodbyes, 1, "split {split}");
        }
        let mut decoder = Decoder::new(1);
        assert_eq!(
            decoder.decode(&mut &b"a\x03"[..]),
            Ok(Some(Frame::Message("a")))
        );
        let too_long = decoder.decode(&mut &b"go"[..]);
        assert_eq!(too_long, Ok(None), "still a prefix of goodbye");
        let broken = decoder.decode(&mut &b"x"[..]);
        assert_eq!(broken, Err(ProtocolError::TooLong { limit: 1 }));
    }
}
