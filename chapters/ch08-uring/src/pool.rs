//! The receive buffers: one pool, lent to the kernel, for every
//! connection.
//!
//! A receive that names its own buffer holds that buffer for as long as
//! it waits, and a connection waits for its client nearly all the time:
//! 10,000 idle connections would hold 10,000 buffers. A *provided-buffer
//! ring* turns this around. The server gives the kernel a pool of
//! buffers once; a receive names the pool, and the kernel picks a buffer
//! only when bytes arrive, and says which in the completion (its buffer
//! id). The buffer is then the server's until it gives it back. An idle
//! connection holds no buffer at all.
//!
//! The pool is two pieces of memory the kernel uses without the
//! compiler's knowledge: the buffers, and the ring through which buffers
//! are given back (an array of `{address, length, id}` entries and a
//! tail index that the kernel reads). Both are allocated here and freed
//! only when the kernel can no longer use them (see `Drop for Ring`).

use std::alloc::{self, Layout};
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// The id of our one pool: receives name it.
pub const GROUP: u16 = 0;

/// Buffers in the pool: a power of two, as the kernel requires. When all
/// are in use at once - more clients' bytes arrived in one turn than
/// this - a receive ends with `ENOBUFS` and is asked for again after the
/// turn has given its buffers back.
const BUFFERS: u16 = 1024;

/// Bytes per buffer: a whole 64 KiB message takes 16 completions.
pub const BUFFER_SIZE: usize = 4 * 1024;

/// The kernel maps the ring of entries in whole pages.
const PAGE: usize = 4096;

/// A buffer the kernel filled: ours until [`Pool::give_back`].
#[derive(Debug, PartialEq, Eq)]
pub struct Filled {
    id: u16,
    len: usize,
}

/// The pool: the buffers and the ring that gives them back.
#[derive(Debug)]
pub struct Pool {
    /// `BUFFERS` entries of 16 bytes, page-aligned; the kernel reads it.
    entries: NonNull<BufRingEntry>,
    /// `BUFFERS` x `BUFFER_SIZE` bytes; the kernel writes into it.
    memory: NonNull<u8>,
    /// How many buffers we have given the kernel so far, wrapping: the
    /// ring's tail, which we write and the kernel reads.
    tail: u16,
}

impl Pool {
    // ANCHOR: register
    /// Allocates the pool, registers it with `uring` and gives the kernel
    /// every buffer.
    ///
    /// # Errors
    ///
    /// When the kernel refuses the registration (before Linux 5.19), or
    /// memory runs out.
    pub fn register(uring: &IoUring) -> io::Result<Pool> {
        let memory = allocate(memory_layout())?;
        let entries = match allocate(entries_layout()) {
            Ok(entries) => entries.cast::<BufRingEntry>(),
            Err(e) => {
                // SAFETY: allocated just above with this layout, and not
                // yet shared with anyone.
                unsafe { alloc::dealloc(memory.as_ptr(), memory_layout()) };
                return Err(e);
            }
        };
        let mut pool = Pool {
            entries,
            memory,
            tail: 0,
        };
        let address = pool.entries.as_ptr() as u64;
        // SAFETY: `entries` holds `BUFFERS` zeroed entries in whole pages,
        // and stays allocated until the kernel is done with it: `Ring`
        // frees it only with no receive in flight, after unregistering,
        // or leaks it (see `Drop for Ring`).
        let registered = unsafe {
            uring
                .submitter()
                .register_buf_ring_with_flags(address, BUFFERS, GROUP, 0)
        };
        if let Err(e) = registered {
            // SAFETY: never registered, so the kernel never saw it.
            unsafe { pool.free() };
            return Err(e);
        }
        for id in 0..BUFFERS {
            // Every buffer starts out with the kernel.
            pool.give_back(Filled { id, len: 0 });
        }
        Ok(pool)
    }
    // ANCHOR_END: register

    /// The buffer the kernel chose for a completion (the `id` in its
    /// flags) and filled with `len` bytes.
    ///
    /// # Safety
    ///
    /// `id` must come from a completion's flags, and be turned into a
    /// `Filled` once: the kernel has handed that buffer over, and will
    /// write into it again only after [`Pool::give_back`].
    pub unsafe fn filled(id: u16, len: usize) -> Filled {
        Filled { id, len }
    }

    /// The bytes in a filled buffer.
    pub fn bytes(&self, filled: &Filled) -> &[u8] {
        let start = usize::from(filled.id % BUFFERS) * BUFFER_SIZE;
        let len = filled.len.min(BUFFER_SIZE);
        // SAFETY: the range lies within `memory` (the id is reduced to
        // the pool's size, the length to a buffer's), and the kernel
        // does not write into this buffer until it is given back, which
        // takes `filled` by value - after this borrow of `self` ends.
        unsafe {
            std::slice::from_raw_parts(self.memory.as_ptr().add(start), len)
        }
    }

    // ANCHOR: give_back
    /// Returns a buffer to the kernel: an entry at the tail of the ring,
    /// then the tail moved past it, which the kernel reads.
    pub fn give_back(&mut self, filled: Filled) {
        let id = filled.id % BUFFERS;
        let slot = usize::from(self.tail % BUFFERS);
        // SAFETY: the address is buffer `id` within `memory`.
        let address =
            unsafe { self.memory.as_ptr().add(usize::from(id) * BUFFER_SIZE) };
        // SAFETY: `slot` < `BUFFERS`, so the entry lies within the
        // allocation; the kernel reads entries only between its head and
        // the tail we publish below, and this one is past the tail.
        let entry = unsafe { &mut *self.entries.as_ptr().add(slot) };
        entry.set_addr(address as u64);
        entry.set_len(BUFFER_SIZE as u32);
        entry.set_bid(id);
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail is a u16 inside the first entry (what
        // `BufRingEntry::tail` computes), valid for the life of the
        // allocation, and aligned for an atomic u16. The kernel reads it
        // concurrently, so it is written atomically, with Release: the
        // entry written above is visible before the new tail is.
        let tail = unsafe {
            AtomicU16::from_ptr(
                BufRingEntry::tail(self.entries.as_ptr()).cast_mut(),
            )
        };
        tail.store(self.tail, Ordering::Release);
    }
    // ANCHOR_END: give_back

    /// Frees the memory.
    ///
    /// # Safety
    ///
    /// The kernel must be unable to use the pool any more (no receive in
    /// flight that could pick a buffer, or the pool never registered),
    /// and `free` is called once: the pool is not used after.
    pub unsafe fn free(&mut self) {
        // SAFETY: both were allocated in `register` with these layouts;
        // the caller guarantees nobody uses them any more.
        unsafe {
            alloc::dealloc(self.memory.as_ptr(), memory_layout());
            alloc::dealloc(self.entries.as_ptr().cast(), entries_layout());
        }
    }
}

fn memory_layout() -> Layout {
    Layout::from_size_align(usize::from(BUFFERS) * BUFFER_SIZE, PAGE)
        .expect("a valid layout: the size is a few MiB")
}

fn entries_layout() -> Layout {
    let size = usize::from(BUFFERS) * std::mem::size_of::<BufRingEntry>();
    Layout::from_size_align(size.next_multiple_of(PAGE), PAGE)
        .expect("a valid layout: the size is a few pages")
}

/// Zeroed memory for `layout`.
fn allocate(layout: Layout) -> io::Result<NonNull<u8>> {
    // SAFETY: both layouts have a non-zero size.
    let pointer = unsafe { alloc::alloc_zeroed(layout) };
    NonNull::new(pointer).ok_or_else(|| io::ErrorKind::OutOfMemory.into())
}
