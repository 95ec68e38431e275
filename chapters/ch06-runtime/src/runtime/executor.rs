//! The executor: tasks, the queue of those ready to run, and the loop that
//! runs them and then sleeps in the reactor until something happens.
//!
//! A task is a spawned future, boxed so that tasks of every type fit in one
//! table. Its waker is an `Arc` of a tiny struct that knows the task's
//! number; waking it puts the number on the ready queue. That is the whole
//! contract between the executor and everything else: the reactor and the
//! timers never see a task, only wakers.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::reactor::Reactor;
use super::timers::Timers;

/// The number `block_on`'s own future is woken under.
const MAIN: usize = 0;

/// Polls per round, before the reactor is asked again: as many as one
/// wait reports events. Tokio asks every 61 polls; here, at 1,000 busy
/// connections, 61 cost 1.5 times chapter 4's CPU per message against
/// 1.2 times with this bound (alternating rounds): every extra wait
/// reports again the sockets of tasks that are queued already.
const POLLS_PER_ROUND: usize = 1024;

/// Readiness checks one poll of a task may make before it must let the
/// others run (tokio's budget is 128 too): a client that pipelines
/// without reading its acks keeps its task's socket ready both ways, and
/// the task would otherwise never return `Pending`.
pub(super) const CHECKS_PER_POLL: u32 = 128;

thread_local! {
    /// What is left of the running task's [`CHECKS_PER_POLL`].
    static BUDGET: Cell<u32> = const { Cell::new(CHECKS_PER_POLL) };
}

/// Takes one readiness check from the running task's budget; false if it
/// has none left, and then the task is woken to run again later.
pub(super) fn within_budget(cx: &Context<'_>) -> bool {
    let left = BUDGET.get();
    if left == 0 {
        cx.waker().wake_by_ref();
        return false;
    }
    BUDGET.set(left - 1);
    true
}

/// The ready queue, shared by the executor and every waker.
type Ready = Arc<Mutex<ReadyQueue>>;

// ANCHOR: ready_queue
/// The numbers of the tasks to poll, in two lines, each first come first
/// served: `new` for tasks not yet polled, `woken` for the rest. `new`
/// goes first, and `block_on`'s own future (the server's accept loop)
/// goes to its head: a client just accepted is served before the tasks
/// that were busy when it came. A task is queued at most once: woken
/// twice before it runs (by its socket and its timer), it is polled once.
#[derive(Default)]
struct ReadyQueue {
    new: VecDeque<usize>,
    woken: VecDeque<usize>,
    queued: HashSet<usize>,
}

impl ReadyQueue {
    /// Queues a task that was woken, unless it is queued already.
    fn wake(&mut self, id: usize) {
        if !self.queued.insert(id) {
            return;
        }
        if id == MAIN {
            self.new.push_front(id);
        } else {
            self.woken.push_back(id);
        }
    }

    /// Queues a task just spawned.
    fn spawned(&mut self, id: usize) {
        self.queued.insert(id);
        self.new.push_back(id);
    }

    /// The next task to poll; a wake from now on queues it again.
    fn pop(&mut self) -> Option<usize> {
        let id = self.new.pop_front().or_else(|| self.woken.pop_front())?;
        self.queued.remove(&id);
        Some(id)
    }

    fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// How many tasks are queued.
    fn len(&self) -> usize {
        self.queued.len()
    }
}
// ANCHOR_END: ready_queue

// ANCHOR: waker
/// What a waker points to: a task's number and the queue to put it on.
/// `std::task::Wake` turns an `Arc` of it into a `Waker`; wakers must be
/// `Send` and `Sync`, hence the mutex, though this runtime only ever
/// wakes from its own thread.
struct TaskWaker {
    id: usize,
    ready: Ready,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        // Poisoned only if an insert panicked, which needs an allocation
        // failure, and that aborts the process first.
        self.ready.lock().expect("never poisoned").wake(self.id);
    }
}
// ANCHOR_END: waker

/// A spawned future and its waker. Shared (`Rc`) between the table and
/// the poll in progress, so that no borrow of the table is held while a
/// task runs.
struct Task {
    future: RefCell<Pin<Box<dyn Future<Output = ()>>>>,
    waker: Waker,
}

/// Everything the runtime owns, one per thread that runs `block_on`.
pub(super) struct Core {
    pub(super) reactor: RefCell<Reactor>,
    pub(super) timers: RefCell<Timers>,
    /// Tasks by number. Numbers are never reused, so a waker that
    /// outlives its task finds nothing, rather than another task.
    tasks: RefCell<HashMap<usize, Rc<Task>>>,
    last_id: Cell<usize>,
    ready: Ready,
}

thread_local! {
    static CORE: RefCell<Option<Core>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's reactor.
pub(super) fn with_reactor<R>(f: impl FnOnce(&mut Reactor) -> R) -> R {
    with_core(|core| f(&mut core.reactor.borrow_mut()))
}

/// Runs `f` on this thread's runtime.
///
/// # Panics
///
/// Outside [`block_on`]: futures of this runtime only run inside it.
pub(super) fn with_core<R>(f: impl FnOnce(&Core) -> R) -> R {
    CORE.with(|core| {
        let core = core.borrow();
        f(core.as_ref().expect("called inside block_on"))
    })
}

// ANCHOR: spawn
/// Starts `future` as a task of its own. Its first poll comes before
/// those of the tasks woken meanwhile, after the tasks spawned before it
/// (see `ReadyQueue`): a new client is not kept behind the busy ones.
pub fn spawn(future: impl Future<Output = ()> + 'static) {
    with_core(|core| {
        let id = core.last_id.get() + 1;
        core.last_id.set(id);
        let ready = core.ready.clone();
        let waker = Waker::from(Arc::new(TaskWaker { id, ready }));
        core.ready_queue().spawned(id); // to run its first step
        let future = RefCell::new(Box::pin(future));
        let task = Rc::new(Task { future, waker });
        core.tasks.borrow_mut().insert(id, task);
    });
}
// ANCHOR_END: spawn

/// How many spawned tasks have not finished.
pub fn live_tasks() -> usize {
    with_core(|core| core.tasks.borrow().len())
}

/// Wakes every task, for news that concerns them all (a shutdown): each
/// polls again and looks.
pub fn wake_all() {
    with_core(|core| {
        for task in core.tasks.borrow().values() {
            task.waker.wake_by_ref();
        }
    });
}

/// Returns once no spawned task is left. Only `block_on`'s own future
/// waits for it: the last task to finish wakes that one.
pub async fn all_tasks_done() {
    poll_fn(|_| {
        if live_tasks() == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

// ANCHOR: block_on
/// Runs `future` to completion on this thread, and every task it spawns
/// with it; tasks left when it completes are dropped (cancelled).
///
/// # Errors
///
/// When the poller cannot be created or waited on.
pub fn block_on<F: Future>(future: F) -> io::Result<F::Output> {
    let ready = Ready::default();
    let core = Core {
        reactor: RefCell::new(Reactor::new()?),
        timers: RefCell::default(),
        tasks: RefCell::default(),
        last_id: Cell::new(MAIN),
        ready: ready.clone(),
    };
    CORE.with(|slot| *slot.borrow_mut() = Some(core));
    let waker = Waker::from(Arc::new(TaskWaker { id: MAIN, ready }));
    waker.wake_by_ref(); // ready to run its first step
    let result = run(pin!(future), &mut Context::from_waker(&waker));
    // Dropping the tasks drops their sockets and timers, which reach for
    // the reactor: the core must still be in place.
    drop(with_core(|core| core.tasks.take()));
    CORE.with(|slot| slot.borrow_mut().take());
    result
}

/// The loop: poll a round of ready tasks, then ask the reactor (sleeping
/// only if nothing is ready, until it reports readiness or the earliest
/// timer is due), and fire what is due.
fn run<F: Future>(
    mut main: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> io::Result<F::Output> {
    loop {
        // A bounded round: the tasks ready now, at most POLLS_PER_ROUND
        // of them. A task that wakes itself runs again in the next round,
        // and thousands woken at once take several, so neither keeps the
        // reactor from hearing of a new client for long.
        let round = with_core(|core| core.ready_queue().len());
        for _ in 0..round.min(POLLS_PER_ROUND) {
            let next = with_core(|core| core.ready_queue().pop());
            let Some(id) = next else { break };
            BUDGET.set(CHECKS_PER_POLL);
            if id != MAIN {
                poll_task(id);
            } else if let Poll::Ready(out) = main.as_mut().poll(cx) {
                return Ok(out);
            }
        }
        with_core(|core| {
            let mut timeout = core.timers.borrow().time_left(Instant::now());
            if !core.ready_queue().is_empty() {
                timeout = Some(Duration::ZERO); // no sleep: work is waiting
            }
            core.reactor.borrow_mut().wait(timeout)?;
            core.timers.borrow_mut().fire(Instant::now());
            Ok::<_, io::Error>(())
        })?;
    }
}
// ANCHOR_END: block_on

// ANCHOR: poll_task
/// Polls task `id` once; a finished task is dropped.
fn poll_task(id: usize) {
    // A task that finished since it was woken is not there any more.
    let task = with_core(|core| core.tasks.borrow().get(&id).cloned());
    let Some(task) = task else { return };
    // No borrow of the table is held while it runs: it may spawn, sleep
    // or do I/O, and all of these reach for the core.
    let mut cx = Context::from_waker(&task.waker);
    if task.future.borrow_mut().as_mut().poll(&mut cx).is_pending() {
        return;
    }
    // Out of the table. The future itself is dropped with `task`, at the
    // end, with no borrow held: dropping its sockets and timers reaches
    // for the core too.
    with_core(|core| {
        let mut tasks = core.tasks.borrow_mut();
        tasks.remove(&id);
        if tasks.is_empty() {
            core.ready_queue().wake(MAIN); // see `all_tasks_done`
        }
    });
}
// ANCHOR_END: poll_task

impl Core {
    fn ready_queue(&self) -> MutexGuard<'_, ReadyQueue> {
        self.ready.lock().expect("never poisoned")
    }
}
