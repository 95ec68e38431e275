//! The bounded queue between the accepting thread and the workers.
//!
//! One `Mutex` guards the items, a count of idle consumers and a `closed`
//! flag; one `Condvar` lets idle workers sleep until there is something to
//! do. The accepting thread never waits: [`Queue::try_push`] fails at once
//! when the queue is full, and the accept loop turns the client away.
//! Workers wait in [`Queue::pop`], which returns `None` once the queue is
//! closed and empty: that is how they learn to stop.
//!
//! The standard library's `std::sync::mpsc::sync_channel` does nearly the
//! same; the chapter explains why this one is written out.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

// ANCHOR: queue
/// A first-in, first-out queue shared by producers and consumers, where at
/// most `capacity` items wait for a busy consumer.
#[derive(Debug)]
pub struct Queue<T> {
    state: Mutex<State<T>>,
    /// Signalled when an item arrives or the queue closes: what a
    /// waiting consumer is waiting for.
    changed: Condvar,
    capacity: usize,
}

/// Everything the mutex protects. The fields change together, under one
/// lock, so nobody sees "empty" and "open" from two different moments.
#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    /// Consumers asleep in `pop`. The next `idle` items pushed are as good
    /// as taken: they do not wait for a busy consumer, so they do not count
    /// against the capacity.
    idle: usize,
    closed: bool,
}
// ANCHOR_END: queue

/// [`Queue::try_push`] gave the item back: `capacity` items already wait
/// for a busy consumer.
#[derive(Debug, PartialEq, Eq)]
pub struct Full<T>(pub T);

impl<T> Queue<T> {
    /// An empty, open queue where at most `capacity` items may wait.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0: such a queue could never hold anything.
    pub fn new(capacity: usize) -> Queue<T> {
        assert!(capacity > 0, "a queue needs room for at least one item");
        Queue {
            state: Mutex::new(State {
                // Grown on demand, not reserved: `capacity` is a bound,
                // and `--queue 65536` should not cost megabytes for
                // clients that may never come.
                items: VecDeque::new(),
                idle: 0,
                closed: false,
            }),
            changed: Condvar::new(),
            capacity,
        }
    }

    // ANCHOR: try_push
    /// Adds `item` at the back, without ever waiting.
    ///
    /// Returns how many items now wait for a busy consumer, this one
    /// included if no consumer is idle (for the log).
    ///
    /// # Errors
    ///
    /// Gives the item back if the queue is full.
    ///
    /// # Panics
    ///
    /// If the queue is closed: nobody would pop the item. The producer
    /// stops pushing before anyone closes the queue (in chapter 3, `serve`
    /// closes it once the accept loop has returned).
    pub fn try_push(&self, item: T) -> Result<usize, Full<T>> {
        let mut state = self.lock();
        assert!(!state.closed, "pushed onto a closed queue");
        // Items an idle consumer is about to take do not wait: with 3
        // idle workers, a burst of 3 clients must not fill the queue
        // before the workers have even woken up.
        if state.items.len() >= self.capacity + state.idle {
            return Err(Full(item));
        }
        state.items.push_back(item);
        let waiting = state.items.len().saturating_sub(state.idle);
        // Release the lock before waking a worker, so that it does not
        // wake only to block on the lock we still hold.
        drop(state);
        // One item, one worker: the others stay asleep.
        self.changed.notify_one();
        Ok(waiting)
    }
    // ANCHOR_END: try_push

    // ANCHOR: pop
    /// Takes the item at the front, sleeping while the queue is empty.
    ///
    /// Returns `None` once the queue is closed and empty: the caller
    /// should stop.
    pub fn pop(&self) -> Option<T> {
        let mut state = self.lock();
        // `while`, not `if`: waking up proves nothing. Another consumer
        // may have taken the item between the notify and our return from
        // `wait`, and a condition variable may also wake a thread that
        // nobody notified (a spurious wake-up). So look again, every time.
        while state.items.is_empty() && !state.closed {
            state.idle += 1;
            // Atomically unlocks and sleeps; relocks before returning.
            // The check above and the sleep happen under one lock, so a
            // push cannot slip in between them and its notify be lost.
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.idle -= 1;
        }
        state.items.pop_front()
    }
    // ANCHOR_END: pop

    // ANCHOR: close
    /// Closes the queue and returns the items still waiting, oldest first.
    ///
    /// After this, every [`Queue::pop`], waiting or future, returns
    /// `None`, and nothing may be pushed.
    pub fn close(&self) -> Vec<T> {
        let mut state = self.lock();
        state.closed = true;
        let left: Vec<T> = state.items.drain(..).collect();
        drop(state);
        // Every waiter must wake and see `closed`, not only one.
        self.changed.notify_all();
        left
    }
    // ANCHOR_END: close

    /// How many items are in the queue right now, including any an idle
    /// consumer is about to take (already stale when you read it; for logs
    /// and tests).
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Whether no item is waiting right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // ANCHOR: lock
    /// Locks the state, even if a thread panicked while holding the lock.
    ///
    /// A panic with a `MutexGuard` alive "poisons" the mutex, and every
    /// later `lock()` returns an error, so that nobody trusts data left
    /// half-updated. Here nothing that runs under the lock can panic
    /// half-way through an update: the one assertion comes before any
    /// change, pushing to a `VecDeque` fails only by running out of
    /// memory, which aborts the process instead of unwinding, and the rest
    /// are single stores. The state is consistent whatever happened, so we
    /// take it back instead of letting one panic stop every worker.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
    // ANCHOR_END: lock
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    /// Long enough that a thread that could run has run, on a busy
    /// machine; only used to check that something does NOT happen.
    const SETTLE: Duration = Duration::from_millis(200);

    /// A queue of capacity 2 takes two items and refuses the third,
    /// handing it back.
    #[test]
    fn refuses_items_beyond_capacity() {
        let queue = Queue::new(2);
        assert_eq!(queue.try_push(1), Ok(1));
        assert_eq!(queue.try_push(2), Ok(2));
        assert_eq!(queue.try_push(3), Err(Full(3)));
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.pop(), Some(1));
        assert_eq!(queue.try_push(3), Ok(2));
    }

    /// While consumers sleep in `pop`, items meant for them do not count
    /// against the capacity: with 2 idle consumers and capacity 1, a burst
    /// of 3 is accepted (whoever wakes when) and the 4th is refused.
    #[test]
    fn items_for_idle_consumers_do_not_count() {
        let queue = Arc::new(Queue::new(1));
        let (took, taken) = mpsc::channel();
        let (release, parked) = mpsc::channel::<()>();
        let parked = Arc::new(Mutex::new(parked));
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let (queue, took) = (Arc::clone(&queue), took.clone());
                let parked = Arc::clone(&parked);
                // Each takes one item, then stays busy until released.
                thread::spawn(move || {
                    took.send(queue.pop()).unwrap();
                    let _ = parked.lock().unwrap().recv();
                })
            })
            .collect();
        while queue.lock().idle < 2 {
            thread::sleep(Duration::from_millis(1));
        }
        assert!(queue.try_push(1).is_ok());
        assert!(queue.try_push(2).is_ok());
        assert!(queue.try_push(3).is_ok());
        assert_eq!(queue.try_push(4), Err(Full(4)));
        let timeout = Duration::from_secs(10);
        let mut got: Vec<u32> = (0..2)
            .map(|_| taken.recv_timeout(timeout).unwrap().unwrap())
            .collect();
        got.sort();
        assert_eq!(got, [1, 2], "first in, first out");
        // Both consumers busy now: one waits, the queue is full.
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.try_push(5), Err(Full(5)));
        drop(release);
        for consumer in consumers {
            consumer.join().unwrap();
        }
    }

    /// Items come out in the order they went in.
    #[test]
    fn is_first_in_first_out() {
        let queue = Queue::new(100);
        for i in 0..100 {
            queue.try_push(i).unwrap();
        }
        let out: Vec<i32> = (0..100).map(|_| queue.pop().unwrap()).collect();
        assert_eq!(out, (0..100).collect::<Vec<_>>());
    }

    /// `close` hands back what was waiting, and makes `pop` return `None`
    /// without blocking.
    #[test]
    fn close_returns_leftovers() {
        let queue = Queue::new(4);
        queue.try_push("a").unwrap();
        queue.try_push("b").unwrap();
        assert_eq!(queue.close(), vec!["a", "b"]);
        assert_eq!(queue.pop(), None);
        assert!(queue.is_empty());
    }

    /// Pushing onto a closed queue is a bug in the producer, and says so
    /// instead of queueing an item nobody will pop.
    #[test]
    #[should_panic(expected = "pushed onto a closed queue")]
    fn pushing_after_close_panics() {
        let queue = Queue::new(4);
        queue.close();
        let _ = queue.try_push("late");
    }

    /// Every consumer blocked in `pop` wakes and gets `None` when the
    /// queue closes: `notify_all`, not `notify_one`.
    #[test]
    fn close_wakes_every_waiter() {
        let queue = Arc::new(Queue::<u32>::new(1));
        let (done, finished) = mpsc::channel();
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let queue = Arc::clone(&queue);
                let done = done.clone();
                thread::spawn(move || done.send(queue.pop()).unwrap())
            })
            .collect();
        // Nobody returns while the queue is open and empty.
        assert!(finished.recv_timeout(SETTLE).is_err());
        assert!(queue.close().is_empty());
        for _ in 0..8 {
            let got = finished.recv_timeout(Duration::from_secs(10));
            assert_eq!(got, Ok(None), "a waiter was not woken by close");
        }
        for waiter in waiters {
            waiter.join().unwrap();
        }
    }

    /// Many producers and consumers hammering a small queue: every item
    /// pushed is popped exactly once, and no consumer sleeps through an
    /// item (a lost wake-up would leave an item in the queue and a
    /// consumer asleep, and this test would time out).
    #[test]
    fn no_item_lost_or_duplicated_and_no_lost_wake_up() {
        const PRODUCERS: u32 = 4;
        const PER_PRODUCER: u32 = 5_000;
        let queue = Arc::new(Queue::new(3));
        let (tx, rx) = mpsc::channel();
        let consumers: Vec<_> = (0..4)
            .map(|_| {
                let queue = Arc::clone(&queue);
                let tx = tx.clone();
                thread::spawn(move || {
                    while let Some(item) = queue.pop() {
                        tx.send(item).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let queue = Arc::clone(&queue);
                thread::spawn(move || {
                    for i in 0..PER_PRODUCER {
                        let mut item = p * PER_PRODUCER + i;
                        // The queue is tiny, so it is often full; a real
                        // server would turn the client away, here we
                        // retry until there is room.
                        loop {
                            match queue.try_push(item) {
                                Ok(_) => break,
                                Err(Full(back)) => {
                                    item = back;
                                    thread::yield_now();
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        let total = (PRODUCERS * PER_PRODUCER) as usize;
        let mut seen = vec![false; total];
        for _ in 0..total {
            let item = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("an item was lost, or a consumer slept through it");
            assert!(!seen[item as usize], "item {item} popped twice");
            seen[item as usize] = true;
        }
        for producer in producers {
            producer.join().unwrap();
        }
        assert!(queue.close().is_empty());
        for consumer in consumers {
            consumer.join().unwrap();
        }
        assert!(rx.try_recv().is_err(), "more items out than went in");
    }

    /// A consumer blocked on an empty queue wakes for a push that happens
    /// after it started waiting.
    #[test]
    fn a_push_wakes_a_sleeping_consumer() {
        let queue = Arc::new(Queue::new(1));
        let (tx, rx) = mpsc::channel();
        let consumer = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || tx.send(queue.pop()).unwrap())
        };
        assert!(rx.recv_timeout(SETTLE).is_err());
        queue.try_push(7).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(Some(7)));
        consumer.join().unwrap();
    }

    /// A thread that panics while holding the lock poisons the mutex; the
    /// queue keeps working for everyone else.
    #[test]
    fn survives_a_poisoned_lock() {
        let queue = Arc::new(Queue::new(2));
        queue.try_push(1).unwrap();
        let poisoner = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let _guard = queue.state.lock().unwrap();
                panic!("poisoning the queue's mutex on purpose");
            })
        };
        assert!(poisoner.join().is_err());
        assert!(queue.state.is_poisoned());
        assert_eq!(queue.try_push(2), Ok(2));
        assert_eq!(queue.pop(), Some(1));
        assert_eq!(queue.pop(), Some(2));
    }
}
