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
//! When more bytes arrive in one turn than the pool holds, it runs dry,
//! and the kernel ends each receive whose bytes find it empty
//! (`ENOBUFS`).
//! Which of them gets the next buffers is then up to the server: the
//! kernel would hand them to whichever receive it happens to run first,
//! and a client with ten bytes to send could lose that race, turn after
//! turn, to thousands of clients with 60 KB each. So a small part of the
//! pool, the *reserve*, is lent only to receives the loop asks for one
//! at a time, in an order it chooses (see the loop's `resume_receives`).
//! Its buffers are small: enough for a short message, or a first taste of
//! a long one.
//!
//! Each part is two pieces of memory the kernel uses without the
//! compiler's knowledge: the buffers, and the ring through which buffers
//! are given back (an array of `{address, length, id}` entries and a
//! tail index that the kernel reads). All are allocated here and freed
//! only when the kernel can no longer use them (see `Drop for Ring`).

use std::alloc::{self, Layout};
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// The group of the shared part: every multishot receive names it.
pub const SHARED: u16 = 0;

/// Buffers in the shared part: a power of two, as the kernel requires.
/// They bound what one turn of the loop takes in (2 MiB), and so how
/// long a turn lasts - and every waiting client waits whole turns.
const SHARED_BUFFERS: u16 = 512;

/// Bytes per shared buffer: a whole 64 KiB message takes 16 completions.
pub const BUFFER_SIZE: usize = 4 * 1024;

/// The group of the reserve: the loop's one-buffer receives name it.
pub const RESERVE: u16 = 1;

/// Buffers in the reserve, also a power of two: how many one-buffer
/// receives may be in flight at once, so how many waiting connections
/// one turn serves.
pub const RESERVE_BUFFERS: u16 = 256;

/// Bytes per reserve buffer: a short message, or the first kilobyte of a
/// long one, after which its sender waits behind those holding less.
pub const RESERVE_BUFFER_SIZE: usize = 1024;

/// The kernel maps the ring of entries in whole pages.
const PAGE: usize = 4096;

/// A buffer the kernel filled: ours until [`Pool::give_back`].
#[derive(Debug, PartialEq, Eq)]
pub struct Filled {
    /// Unique across the pool: the reserve's ids follow the shared ones.
    id: u16,
    len: usize,
}

/// The pool: the shared part and the reserve.
#[derive(Debug)]
pub struct Pool {
    shared: Part,
    reserve: Part,
}

/// One part of the pool: a group of buffers, and its ring.
#[derive(Debug)]
struct Part {
    /// `count` x `size` bytes, page-aligned; the kernel writes into it.
    memory: NonNull<u8>,
    /// `count` entries of 16 bytes, page-aligned; the kernel reads it.
    entries: NonNull<BufRingEntry>,
    /// The group receives name to pick from this part.
    group: u16,
    /// Buffers (and entries); a power of two.
    count: u16,
    /// Bytes per buffer.
    size: usize,
    /// The id of this part's first buffer.
    first_id: u16,
    /// How many buffers we have given the kernel so far, wrapping: the
    /// ring's tail, which we write and the kernel reads.
    tail: u16,
}

impl Pool {
    // ANCHOR: register
    /// Allocates both parts, registers them with `uring` and gives the
    /// kernel every buffer.
    ///
    /// # Errors
    ///
    /// When the kernel refuses the registration (before Linux 5.19), or
    /// memory runs out.
    pub fn register(uring: &IoUring) -> io::Result<Pool> {
        let shared =
            Part::register(uring, SHARED, SHARED_BUFFERS, BUFFER_SIZE, 0)?;
        let reserve = Part::register(
            uring,
            RESERVE,
            RESERVE_BUFFERS,
            RESERVE_BUFFER_SIZE,
            SHARED_BUFFERS,
        );
        let reserve = match reserve {
            Ok(reserve) => reserve,
            Err(e) => {
                // SAFETY: no receive was ever asked for, so the kernel
                // never used the shared part.
                unsafe { shared.free(uring) };
                return Err(e);
            }
        };
        let mut pool = Pool { shared, reserve };
        for id in 0..SHARED_BUFFERS + RESERVE_BUFFERS {
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
        let (part, index) = self.part(filled.id);
        let len = filled.len.min(part.size);
        // SAFETY: the buffer lies within the part's memory (`part`
        // reduces the index to its count, and the length is cut to a
        // buffer's), and the kernel does not write into it until it is
        // given back, which takes `filled` by value - after this borrow
        // of `self` ends.
        unsafe { std::slice::from_raw_parts(part.buffer(index), len) }
    }

    // ANCHOR: give_back
    /// Returns a buffer to the kernel, to the part it came from: an entry
    /// at the tail of the part's ring, then the tail moved past it, which
    /// the kernel reads.
    pub fn give_back(&mut self, filled: Filled) {
        let (part, index) = self.part(filled.id);
        let part = if part.group == SHARED {
            &mut self.shared
        } else {
            &mut self.reserve
        };
        let address = part.buffer(index);
        let slot = usize::from(part.tail % part.count);
        // SAFETY: `slot` < `count`, so the entry lies within the
        // allocation; the kernel reads entries only between its head and
        // the tail we publish below, and this one is past the tail.
        let entry = unsafe { &mut *part.entries.as_ptr().add(slot) };
        entry.set_addr(address as u64);
        entry.set_len(part.size as u32);
        entry.set_bid(filled.id);
        part.tail = part.tail.wrapping_add(1);
        // SAFETY: the tail is a u16 inside the first entry (what
        // `BufRingEntry::tail` computes), valid for the life of the
        // allocation, and aligned for an atomic u16. The kernel reads it
        // concurrently, so it is written atomically, with Release: the
        // entry written above is visible before the new tail is.
        let tail = unsafe {
            AtomicU16::from_ptr(
                BufRingEntry::tail(part.entries.as_ptr()).cast_mut(),
            )
        };
        tail.store(part.tail, Ordering::Release);
    }
    // ANCHOR_END: give_back

    /// The part a buffer id belongs to, and the buffer's index in it.
    fn part(&self, id: u16) -> (&Part, u16) {
        if id < self.reserve.first_id {
            (&self.shared, id % self.shared.count)
        } else {
            (
                &self.reserve,
                (id - self.reserve.first_id) % self.reserve.count,
            )
        }
    }

    /// Takes both parts back from the kernel and frees them.
    ///
    /// # Safety
    ///
    /// The kernel must be unable to use the pool any more (no receive in
    /// flight that could pick a buffer), and `free` is called once: the
    /// pool is not used after.
    pub unsafe fn free(&mut self, uring: &IoUring) {
        // SAFETY: as the caller guarantees.
        unsafe {
            self.shared.free(uring);
            self.reserve.free(uring);
        }
    }
}

impl Part {
    /// Allocates `count` buffers of `size` bytes with ids from
    /// `first_id`, and registers their ring with the kernel as `group`,
    /// none lent yet.
    fn register(
        uring: &IoUring,
        group: u16,
        count: u16,
        size: usize,
        first_id: u16,
    ) -> io::Result<Part> {
        let memory = allocate(memory_layout(count, size))?;
        let entries = match allocate(entries_layout(count)) {
            Ok(entries) => entries.cast::<BufRingEntry>(),
            Err(e) => {
                // SAFETY: allocated just above with this layout, and not
                // yet shared with anyone.
                unsafe {
                    alloc::dealloc(memory.as_ptr(), memory_layout(count, size));
                }
                return Err(e);
            }
        };
        let part = Part {
            memory,
            entries,
            group,
            count,
            size,
            first_id,
            tail: 0,
        };
        let address = part.entries.as_ptr() as u64;
        // SAFETY: `entries` holds `count` zeroed entries in whole pages,
        // and stays allocated until the kernel is done with it: `Ring`
        // frees it only with no receive in flight, after unregistering,
        // or leaks it (see `Drop for Ring`).
        let registered = unsafe {
            uring
                .submitter()
                .register_buf_ring_with_flags(address, count, group, 0)
        };
        if let Err(e) = registered {
            // SAFETY: never registered, so the kernel never saw it; the
            // failed registration makes `free`'s unregistration a no-op.
            unsafe { part.free(uring) };
            return Err(e);
        }
        Ok(part)
    }

    /// The address of buffer `index` (< `count`).
    fn buffer(&self, index: u16) -> *mut u8 {
        let offset = usize::from(index % self.count) * self.size;
        // SAFETY: the offset is within the `count * size` bytes of
        // `memory`.
        unsafe { self.memory.as_ptr().add(offset) }
    }

    /// Unregisters the ring and frees the memory.
    ///
    /// # Safety
    ///
    /// No receive in flight may pick from this group, and the part is
    /// not used after.
    unsafe fn free(&self, uring: &IoUring) {
        let _ = uring.submitter().unregister_buf_ring(self.group);
        // SAFETY: both were allocated in `register` with these layouts;
        // the kernel has let go of them, and the caller guarantees
        // nobody else uses them.
        unsafe {
            alloc::dealloc(
                self.memory.as_ptr(),
                memory_layout(self.count, self.size),
            );
            alloc::dealloc(
                self.entries.as_ptr().cast(),
                entries_layout(self.count),
            );
        }
    }
}

fn memory_layout(count: u16, size: usize) -> Layout {
    Layout::from_size_align(usize::from(count) * size, PAGE)
        .expect("a valid layout: the size is a few MiB")
}

fn entries_layout(count: u16) -> Layout {
    let bytes = usize::from(count) * std::mem::size_of::<BufRingEntry>();
    Layout::from_size_align(bytes.next_multiple_of(PAGE), PAGE)
        .expect("a valid layout: the size is a few pages")
}

/// Zeroed memory for `layout`.
fn allocate(layout: Layout) -> io::Result<NonNull<u8>> {
    // SAFETY: every layout here has a non-zero size.
    let pointer = unsafe { alloc::alloc_zeroed(layout) };
    NonNull::new(pointer).ok_or_else(|| io::ErrorKind::OutOfMemory.into())
}
