//! One spare read buffer per thread, for servers whose connections are
//! tasks (chapters 5 and 6).
//!
//! A task that owns a read buffer keeps it across every `.await`,
//! including the long one for a quiet client: 10,000 connections would
//! hold 40 MiB of buffers that are empty almost all the time. So a task
//! waits for readiness, not for bytes, takes a buffer only when input is
//! ready, and gives it back once that input is handled. On a thread that
//! runs every task, one buffer then serves all the quiet connections, and
//! a busy server neither allocates nor zeroes a buffer per read.

use std::cell::Cell;

/// Bytes read from a socket at a time, as in chapter 4: one buffer per
/// thread can be large, and large reads mean few system calls for a
/// client that sends much at once. With 4 KiB, a flood of long messages
/// cost a server fifteen reads per message where chapter 4 makes one.
pub const READ_BUFFER: usize = 64 * 1024;

thread_local! {
    /// The spare buffer, while no task of this thread has it.
    static SPARE: Cell<Option<Vec<u8>>> = const { Cell::new(None) };
}

/// The spare read buffer of this thread ([`READ_BUFFER`] bytes), or a
/// new one if a task has it.
pub fn take() -> Vec<u8> {
    SPARE.take().unwrap_or_else(|| vec![0; READ_BUFFER])
}

/// Returns a buffer from [`take`] for the next read on this thread.
pub fn give_back(buffer: Vec<u8>) {
    SPARE.set(Some(buffer));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer given back is the one taken next: no new allocation.
    #[test]
    fn the_buffer_given_back_is_taken_again() {
        let buffer = take();
        assert_eq!(buffer.len(), READ_BUFFER);
        let at = buffer.as_ptr();
        give_back(buffer);
        let again = take();
        assert_eq!(again.as_ptr(), at);
    }
}
