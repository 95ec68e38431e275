//! The server-wide buffer budget: `--max-buffered-bytes` for the
//! unfinished messages of all connections together.
//!
//! `--max-message-bytes` bounds one connection. An event-driven server
//! holds thousands of connections, so that bound alone lets 10,000
//! clients that each send 60 KB and no ETX make it hold 600 MB. The
//! budget bounds their sum: after every read, a connection records how
//! many bytes of an unfinished message it holds; when the total is over
//! the budget, the connections holding the most are evicted (told
//! [`BUSY_REPLY`] and closed) until it fits. Reads are bounded by a
//! buffer, so the total is over the budget by at most one read, and only
//! until the evictions it triggers.
//!
//! An evicted connection's bytes are gone only once its owner has dropped
//! them. An event loop does that inside the eviction. A task does it when
//! it next runs, and on a busy server thousands of readable tasks may run
//! first, each reading more: counting the victims as gone at once let
//! 10,000 clients of 60 KB hold 300 MB against a 16 MiB budget. So a
//! [`SharedBudget`] keeps counting an evicted connection's bytes until
//! its owner says they are dropped ([`Account::release`], or dropping the
//! [`Account`]). A read that takes the total over evicts the largest
//! holders until the rest fits once they have released; a read taken
//! while the total is still over (they have not yet run) evicts its own
//! connection, whose bytes are the only ones that can be dropped at once.
//! So the total stays within one read of the budget however late the
//! evicted tasks run. On several threads, each can be inside its one
//! read at once: over by at most one read per thread.
//!
//! Whom to evict follows Redis's client eviction (`maxmemory-clients`):
//! Redis updates each client's memory after every read, and when the sum
//! is over the limit disconnects clients from the biggest down until it
//! fits. Redis sorts clients into power-of-two buckets to find the big
//! ones cheaply; we keep them in exact order ([`Ledger`], a sorted set),
//! which costs O(log n) per update and names the largest holder at once.
//!
//! What counts as held: the bytes of the message a connection is still
//! receiving (`Decoder::pending_bytes`), nothing else. Complete messages
//! waiting for their work cost a counter, not their bytes, and the read
//! buffer is bounded per read. An evicted connection drops its
//! unfinished message (see above for when that counts).
//!
//! What an evicted connection gets: the acks of messages whose work has
//! finished (they are owed), no ack for complete messages not yet worked
//! on or in work (they are dropped, as at shutdown), then
//! [`BUSY_REPLY`] and a lingering close.
//!
//! Two forms, one core:
//!
//! - [`Ledger`]: plain data for a server whose connections one thread
//!   owns (an event loop, io_uring): it names its connections by its own
//!   ids (tokens), calls [`Ledger::record`] after each read and evicts
//!   the ids [`Ledger::evict_to_fit`] returns.
//! - [`SharedBudget`] and [`Account`]: for connections served by tasks
//!   (or by several loops on several threads). Each connection opens an
//!   account; [`Account::hold`] records and evicts in one step, and an
//!   evicted account's owner learns it from [`Account::is_evicted`] or
//!   by awaiting [`Account::evicted`], which works on any executor (it
//!   wakes the task through its `std::task::Waker`), then drops the
//!   message and calls [`Account::release`].

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// What an evicted connection is told before it closes.
pub const BUSY_REPLY: &[u8] = b"err server busy";

/// A connection's name in a [`Ledger`]: the event loop's token, or an
/// [`Account`]'s number.
pub type HolderId = u64;

// ANCHOR: ledger
/// Who holds how many bytes of unfinished messages, in order of size.
#[derive(Debug, Clone)]
pub struct Ledger {
    budget: usize,
    total: usize,
    /// Every holder with at least one byte, and its bytes.
    held: HashMap<HolderId, usize>,
    /// The same, ordered by bytes (then id): the last is the largest.
    by_size: BTreeSet<(usize, HolderId)>,
}

impl Ledger {
    /// An empty ledger for at most `budget` bytes (`--max-buffered-bytes`).
    pub fn new(budget: usize) -> Ledger {
        Ledger {
            budget,
            total: 0,
            held: HashMap::new(),
            by_size: BTreeSet::new(),
        }
    }

    /// The budget it was made with.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// The bytes held by every holder together.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The bytes `id` holds (0 for one it does not know).
    pub fn held(&self, id: HolderId) -> usize {
        self.held.get(&id).copied().unwrap_or(0)
    }

    /// Records that `id` now holds `bytes` (replacing what it held):
    /// call it after every read that was decoded, and with 0 when the
    /// connection closes. Costs O(log n).
    pub fn record(&mut self, id: HolderId, bytes: usize) {
        let old = if bytes == 0 {
            self.held.remove(&id)
        } else {
            self.held.insert(id, bytes)
        };
        if let Some(old) = old {
            self.by_size.remove(&(old, id));
            self.total -= old;
        }
        if bytes > 0 {
            self.by_size.insert((bytes, id));
            self.total += bytes;
        }
    }

    /// Whether the holders together hold more than the budget.
    pub fn is_over(&self) -> bool {
        self.total > self.budget
    }

    /// Picks the holders to evict so that the total fits the budget,
    /// largest first (of two equal holders, the higher id), forgets them,
    /// and returns them with the bytes each held. Empty when the total
    /// fits. The caller must drop what they held and close them with
    /// [`BUSY_REPLY`]: the ledger already counts them as holding nothing.
    pub fn evict_to_fit(&mut self) -> Vec<(HolderId, usize)> {
        self.evict_to_fit_beside(0)
    }

    /// Like [`evict_to_fit`], for a budget that `elsewhere` bytes, held
    /// outside the ledger, share: evicts until `total + elsewhere` fits,
    /// or until nobody is left to evict.
    ///
    /// [`evict_to_fit`]: Ledger::evict_to_fit
    pub fn evict_to_fit_beside(
        &mut self,
        elsewhere: usize,
    ) -> Vec<(HolderId, usize)> {
        let mut evicted = Vec::new();
        while self.total.saturating_add(elsewhere) > self.budget {
            // Nobody left: only `elsewhere` is over.
            let Some(&(bytes, id)) = self.by_size.last() else {
                break;
            };
            self.record(id, 0);
            evicted.push((id, bytes));
        }
        evicted
    }
}
// ANCHOR_END: ledger

// ANCHOR: shared_budget
/// A [`Ledger`] shared by every connection's task (or by several event
/// loops on several threads): clone it freely, then [`open`] one
/// [`Account`] per connection.
///
/// [`open`]: SharedBudget::open
#[derive(Debug, Clone)]
pub struct SharedBudget {
    inner: Arc<Mutex<Shared>>,
}

#[derive(Debug)]
struct Shared {
    /// What the open accounts hold.
    ledger: Ledger,
    /// What evicted accounts held and have not yet released: still in
    /// memory, so still counted against the budget.
    releasing: HashMap<HolderId, usize>,
    /// The sum of `releasing`.
    releasing_total: usize,
    next_id: HolderId,
    /// How to tell each open account it was evicted.
    notices: HashMap<HolderId, Arc<Notice>>,
}

/// One connection's share of a [`SharedBudget`]. Dropping it forgets
/// what it held.
#[derive(Debug)]
pub struct Account {
    id: HolderId,
    budget: SharedBudget,
    notice: Arc<Notice>,
}

/// An eviction, as the evicted connection learns of it: a flag, and the
/// waker of whoever awaits it.
#[derive(Debug, Default)]
struct Notice {
    evicted: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl SharedBudget {
    /// A budget of `budget` bytes (`--max-buffered-bytes`), held by nobody.
    pub fn new(budget: usize) -> SharedBudget {
        SharedBudget {
            inner: Arc::new(Mutex::new(Shared {
                ledger: Ledger::new(budget),
                releasing: HashMap::new(),
                releasing_total: 0,
                next_id: 0,
                notices: HashMap::new(),
            })),
        }
    }

    /// An account for a new connection, holding nothing.
    pub fn open(&self) -> Account {
        let notice = Arc::new(Notice::default());
        let mut shared = self.lock();
        let id = shared.next_id;
        shared.next_id += 1;
        shared.notices.insert(id, Arc::clone(&notice));
        Account {
            id,
            budget: self.clone(),
            notice,
        }
    }

    /// The bytes every account holds together, the evicted ones that have
    /// not released theirs included.
    pub fn total(&self) -> usize {
        let shared = self.lock();
        shared.ledger.total() + shared.releasing_total
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // Nothing panics while the lock is held (the ledger's updates
        // cannot), so a poisoned lock still guards a consistent ledger.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Account {
    /// Its id in the ledger (for log lines).
    pub fn id(&self) -> HolderId {
        self.id
    }

    /// Records that this connection now holds `bytes` of an unfinished
    /// message, and evicts the largest holders, this one included, until
    /// the total - what evicted accounts have not yet released included -
    /// fits the budget: each evicted account is flagged and its task
    /// woken. Returns whether this account is evicted: then its owner
    /// must drop its unfinished message and call [`release`], and
    /// further calls change nothing.
    ///
    /// [`release`]: Account::release
    pub fn hold(&self, bytes: usize) -> bool {
        if self.is_evicted() {
            return true;
        }
        let mut shared = self.budget.lock();
        let old = shared.ledger.held(self.id);
        shared.ledger.record(self.id, bytes);
        let releasing = shared.releasing_total;
        // The total before this read: a read taken while evicted
        // connections had not yet released enough is the one that must go,
        // since its bytes are the only ones that can be dropped now.
        // Otherwise each read while they wait would add to the total.
        let total = shared.ledger.total() + releasing;
        let before = total - bytes.saturating_sub(old);
        if bytes > old && before > shared.ledger.budget() {
            shared.evict(self.id);
        }
        // Then the largest, until the rest fits once they have released.
        for (id, bytes) in shared.ledger.evict_to_fit_beside(releasing) {
            shared.evict_forgotten(id, bytes);
        }
        drop(shared);
        self.is_evicted()
    }

    /// Tells the budget that this evicted connection has dropped its
    /// unfinished message, so its bytes no longer count. Call it right
    /// after the drop, before the lingering close: until then (or until
    /// the account is dropped) the budget counts them, and evicts others
    /// to make room. Does nothing for an account that was not evicted.
    pub fn release(&self) {
        self.budget.lock().release(self.id);
    }

    /// Whether this connection was evicted: it must drop its unfinished
    /// message and close with [`BUSY_REPLY`].
    pub fn is_evicted(&self) -> bool {
        self.notice.evicted.load(Ordering::Acquire)
    }

    /// Completes once this connection is evicted: race it against the
    /// connection's reads and work.
    pub fn evicted(&self) -> Evicted<'_> {
        Evicted {
            notice: &self.notice,
        }
    }

    /// Asks for `waker` to be woken when this account is evicted, in
    /// place of any waker given before (or stored by [`evicted`]). For a
    /// connection that is not a task: an event loop on another thread can
    /// pass a waker made from an `Arc<impl std::task::Wake>` that notes
    /// the connection and writes the loop's eventfd. If the account is
    /// evicted already, `waker` is woken at once.
    ///
    /// [`evicted`]: Account::evicted
    pub fn wake_on_eviction(&self, waker: &Waker) {
        self.notice.register(waker);
        if self.is_evicted() {
            waker.wake_by_ref();
        }
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let mut shared = self.budget.lock();
        shared.ledger.record(self.id, 0);
        shared.notices.remove(&self.id);
        shared.release(self.id);
    }
}

impl Shared {
    /// Evicts account `id` (see [`Account::hold`]).
    fn evict(&mut self, id: HolderId) {
        let bytes = self.ledger.held(id);
        self.ledger.record(id, 0);
        self.evict_forgotten(id, bytes);
    }

    /// Counts the `bytes` of `id`, which the ledger has forgotten, until
    /// it releases them, and tells it it is evicted.
    fn evict_forgotten(&mut self, id: HolderId, bytes: usize) {
        self.releasing.insert(id, bytes);
        self.releasing_total += bytes;
        if let Some(notice) = self.notices.remove(&id) {
            notice.evict();
        }
    }

    /// Forgets what evicted account `id` held, if anything.
    fn release(&mut self, id: HolderId) {
        if let Some(bytes) = self.releasing.remove(&id) {
            self.releasing_total -= bytes;
        }
    }
}

impl Notice {
    /// Keeps `waker` for [`Notice::evict`] (a clone, unless the one kept
    /// already wakes the same task).
    fn register(&self, waker: &Waker) {
        let mut kept =
            self.waker.lock().unwrap_or_else(PoisonError::into_inner);
        match &*kept {
            Some(old) if old.will_wake(waker) => {}
            _ => *kept = Some(waker.clone()),
        }
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        let waker = self
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The future of [`Account::evicted`].
#[derive(Debug)]
pub struct Evicted<'a> {
    notice: &'a Notice,
}

impl Future for Evicted<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let notice = self.notice;
        if notice.evicted.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        notice.register(cx.waker());
        // Evicted between the first look and storing the waker: `evict`
        // may have found no waker to wake, so look again.
        if notice.evicted.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}
// ANCHOR_END: shared_budget

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use proptest::prelude::*;

    /// A waker that counts its wakes.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A waker, and the count of its wakes.
    fn counting_waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        (count, waker)
    }

    /// Over the budget, the largest holders go first, just enough of
    /// them for the rest to fit; small holders stay.
    #[test]
    fn evicts_the_largest_until_it_fits() {
        let mut ledger = Ledger::new(100);
        ledger.record(1, 10);
        ledger.record(2, 50);
        ledger.record(3, 30);
        assert!(ledger.evict_to_fit().is_empty());
        ledger.record(4, 40); // 130 held
        assert_eq!(ledger.evict_to_fit(), [(2, 50)]);
        assert_eq!(ledger.total(), 80);
        assert_eq!(ledger.held(2), 0);
        ledger.record(3, 95); // 145: 95 goes, 50 is left
        assert_eq!(ledger.evict_to_fit(), [(3, 95)]);
        assert_eq!(ledger.total(), 50);
    }

    /// Recording replaces; recording 0 forgets.
    #[test]
    fn record_replaces_and_zero_forgets() {
        let mut ledger = Ledger::new(100);
        ledger.record(7, 60);
        ledger.record(7, 20);
        assert_eq!((ledger.total(), ledger.held(7)), (20, 20));
        ledger.record(7, 0);
        assert_eq!(ledger.total(), 0);
        ledger.record(7, 0);
        assert_eq!(ledger.total(), 0);
    }

    /// An account that pushes the total over is evicted itself when it is
    /// the largest, and others are flagged when they are; dropping an
    /// account gives its bytes back.
    #[test]
    fn accounts_flag_whoever_is_largest() {
        let budget = SharedBudget::new(100);
        let small = budget.open();
        let big = budget.open();
        let newcomer = budget.open();
        assert!(!small.hold(10));
        assert!(!big.hold(80));
        // 10 + 80 + 30 = 120: `big` goes, `newcomer` stays.
        assert!(!newcomer.hold(30));
        assert!(big.is_evicted());
        assert!(big.hold(5), "an evicted account records nothing");
        // Its 80 bytes count until it says they are dropped.
        assert_eq!(budget.total(), 120);
        big.release();
        assert_eq!(budget.total(), 40);
        // Now `newcomer` is the largest when it grows past the budget.
        assert!(newcomer.hold(95));
        drop(newcomer);
        assert_eq!(budget.total(), 10);
        drop(small);
        assert_eq!(budget.total(), 0);
    }

    /// Bytes an evicted account has not released still take room: a
    /// read that takes the total over evicts the largest open account
    /// even when the open ones alone would fit, and a read taken while
    /// the total is over evicts the reader.
    #[test]
    fn unreleased_bytes_still_count() {
        let budget = SharedBudget::new(100);
        let [a, b, c] = [budget.open(), budget.open(), budget.open()];
        assert!(!a.hold(50));
        assert!(!b.hold(30));
        assert!(!c.hold(25)); // 105: `a` goes...
        assert!(a.is_evicted());
        assert_eq!(budget.total(), 105, "...but its 50 still count");
        // A message completed: 95; then 100, which fits.
        assert!(!b.hold(20));
        assert!(!c.hold(30));
        // 101: the open ones hold 51 and would fit alone; with `a`'s 50,
        // the largest open one goes.
        assert!(!b.hold(21));
        assert!(c.is_evicted());
        // Over (50 + 30 unreleased, 21 open): a read now evicts the reader,
        // whose bytes are the only ones that can go at once.
        assert!(b.hold(22));
        assert_eq!(budget.total(), 50 + 30 + 22);
        for account in [&a, &b, &c] {
            account.release();
        }
        assert_eq!(budget.total(), 0);
        let d = budget.open();
        assert!(!d.hold(100), "released bytes make room again");
    }

    /// Bytes added to the total while it is over the budget are evicted
    /// with the account that added them: however the reads interleave
    /// and however late the evicted release, the total never exceeds the
    /// budget by more than one read.
    #[test]
    fn over_by_at_most_one_read_while_victims_wait() {
        const READ: usize = 7;
        let budget = SharedBudget::new(100);
        let accounts: Vec<Account> = (0..40).map(|_| budget.open()).collect();
        let mut held = vec![0; accounts.len()];
        for round in 0..30 {
            for (i, account) in accounts.iter().enumerate() {
                if account.is_evicted() {
                    continue;
                }
                held[i] += READ;
                if account.hold(held[i]) {
                    // Evicted by its own read: it runs, so it drops the
                    // message at once.
                    account.release();
                }
                assert!(budget.total() <= 100 + READ, "round {round}");
            }
            // Only every third round do the others evicted get to run.
            if round % 3 == 2 {
                accounts.iter().for_each(Account::release);
            }
        }
    }

    /// `evicted()` completes when another account's `hold` evicts it,
    /// waking the task that awaits it.
    #[test]
    fn eviction_wakes_the_waiting_task() {
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);

        let budget = SharedBudget::new(10);
        let victim = budget.open();
        let other = budget.open();
        let mut evicted = std::pin::pin!(victim.evicted());
        assert!(!victim.hold(8));
        assert_eq!(evicted.as_mut().poll(&mut cx), Poll::Pending);
        assert!(!other.hold(5)); // 13: the victim, at 8, goes
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(evicted.as_mut().poll(&mut cx), Poll::Ready(()));
    }

    /// A connection that is not a task registers a waker of its own,
    /// and is woken once when evicted (at once, if it already was).
    #[test]
    fn a_registered_waker_is_woken() {
        let (count, waker) = counting_waker();
        let budget = SharedBudget::new(10);
        let victim = budget.open();
        victim.wake_on_eviction(&waker);
        assert!(victim.hold(11));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        victim.wake_on_eviction(&waker);
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
    }

    proptest! {
        /// Whatever the updates, after `evict_to_fit` the total fits, it
        /// equals the sum of what the live holders hold, and every
        /// evicted holder held at least as much as any holder kept.
        #[test]
        fn the_total_always_fits_after_eviction(
            updates in prop::collection::vec((0u64..20, 0usize..500), 1..200),
            budget in 0usize..2000,
        ) {
            let mut ledger = Ledger::new(budget);
            let mut live: HashMap<u64, usize> = HashMap::new();
            for (id, bytes) in updates {
                ledger.record(id, bytes);
                if bytes == 0 { live.remove(&id); } else { live.insert(id, bytes); }
                let evicted = ledger.evict_to_fit();
                for &(id, _) in &evicted {
                    live.remove(&id);
                }
                let kept_max = live.values().copied().max().unwrap_or(0);
                for &(_, bytes) in &evicted {
                    prop_assert!(bytes >= kept_max);
                }
                prop_assert!(ledger.total() <= budget);
                prop_assert_eq!(ledger.total(), live.values().sum::<usize>());
            }
        }
    }
}
