//! The executor: tasks, the queue of those ready to run, and the loop that
//! runs them and then sleeps in the reactor until something happens.
//!
//! A task is a spawned future, boxed so that tasks of every type fit in one
//! table. Its waker is an `Arc` of a tiny struct that knows the task's
//! number; waking it puts the number on the ready queue. That is the whole
//! contract between the executor and everything else: the reactor and the
//! timers never see a task, only wakers.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::mem::swap;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::reactor::Reactor;
use super::timers::Timers;

/// The number `block_on`'s own future is woken under.
const MAIN: usize = usize::MAX;

// ANCHOR: waker
/// What a waker points to: a task's number and the queue to put it on.
/// `std::task::Wake` turns an `Arc` of it into a `Waker`; wakers must be
/// `Send` and `Sync`, hence the atomic and the mutex, though this runtime
/// only ever wakes from its own thread.
struct TaskWaker {
    id: usize,
    /// On the queue already: a second wake before the poll adds nothing.
    queued: AtomicBool,
    ready: Arc<Mutex<VecDeque<usize>>>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            // Poisoned only if a push panicked, which needs an allocation
            // failure, and that aborts the process first.
            let mut ready = self.ready.lock().expect("never poisoned");
            ready.push_back(self.id);
        }
    }
}
// ANCHOR_END: waker

/// A spawned future and its waker. The future is `None` while it is being
/// polled, so that a task may spawn others meanwhile.
struct Task {
    future: Option<Pin<Box<dyn Future<Output = ()>>>>,
    waker: Arc<TaskWaker>,
}

/// Everything the runtime owns, one per thread that runs `block_on`.
pub(super) struct Core {
    pub(super) reactor: RefCell<Reactor>,
    pub(super) timers: RefCell<Timers>,
    /// Tasks by number; numbers of finished tasks are reused.
    tasks: RefCell<Vec<Option<Task>>>,
    free: RefCell<Vec<usize>>,
    live: Cell<usize>,
    ready: Arc<Mutex<VecDeque<usize>>>,
    /// Who waits for the last task to finish ([`all_tasks_done`]).
    all_done: RefCell<Option<Waker>>,
}

thread_local! {
    static CORE: RefCell<Option<Core>> = const { RefCell::new(None) };
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
/// Starts `future` as a task of its own; it runs when `block_on`'s loop
/// gets to it, first at the loop's next round.
pub fn spawn(future: impl Future<Output = ()> + 'static) {
    with_core(|core| {
        let id = core.free.borrow_mut().pop();
        let mut tasks = core.tasks.borrow_mut();
        let id = id.unwrap_or(tasks.len());
        let waker = Arc::new(TaskWaker {
            id,
            queued: AtomicBool::new(false),
            ready: core.ready.clone(),
        });
        waker.wake_by_ref(); // ready to run its first step
        let task = Some(Task {
            future: Some(Box::pin(future)),
            waker,
        });
        match tasks.get_mut(id) {
            Some(slot) => *slot = task,
            None => tasks.push(task),
        }
        core.live.set(core.live.get() + 1);
    });
}
// ANCHOR_END: spawn

/// How many spawned tasks have not finished.
pub fn live_tasks() -> usize {
    with_core(|core| core.live.get())
}

/// Wakes every task, for news that concerns them all (a shutdown): each
/// polls again and looks.
pub fn wake_all() {
    with_core(|core| {
        for task in core.tasks.borrow().iter().flatten() {
            task.waker.wake_by_ref();
        }
    });
}

/// Returns once no spawned task is left.
pub async fn all_tasks_done() {
    poll_fn(|cx| {
        with_core(|core| {
            if core.live.get() == 0 {
                return Poll::Ready(());
            }
            *core.all_done.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
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
    let ready = Arc::new(Mutex::new(VecDeque::from([MAIN])));
    let core = Core {
        reactor: RefCell::new(Reactor::new()?),
        timers: RefCell::new(Timers::new()),
        tasks: RefCell::new(Vec::new()),
        free: RefCell::new(Vec::new()),
        live: Cell::new(0),
        ready: ready.clone(),
        all_done: RefCell::new(None),
    };
    CORE.with(|slot| *slot.borrow_mut() = Some(core));
    let main = Arc::new(TaskWaker {
        id: MAIN,
        queued: AtomicBool::new(true),
        ready,
    });
    let result = run(pin!(future), &main);
    // Dropping the tasks drops their sockets and timers, which reach for
    // the reactor: the core must still be in place.
    let tasks = with_core(|core| core.tasks.take());
    drop(tasks);
    CORE.with(|slot| slot.borrow_mut().take());
    result
}

/// The loop: run what is ready, then sleep until the reactor reports
/// readiness or the earliest timer is due, and fire what is due.
fn run<F: Future>(
    mut main: Pin<&mut F>,
    main_waker: &Arc<TaskWaker>,
) -> io::Result<F::Output> {
    let waker = Waker::from(main_waker.clone());
    let mut cx = Context::from_waker(&waker);
    let mut batch = VecDeque::new();
    loop {
        // Only the tasks ready now, taken in one go: one that wakes
        // itself at every poll must not keep the reactor from running.
        with_core(|core| swap(&mut batch, &mut *core.ready_queue()));
        for id in batch.drain(..) {
            if id != MAIN {
                poll_task(id);
                continue;
            }
            main_waker.queued.store(false, Ordering::Release);
            if let Poll::Ready(out) = main.as_mut().poll(&mut cx) {
                return Ok(out);
            }
        }
        let timeout = with_core(|core| {
            if !core.ready_queue().is_empty() {
                return Some(Duration::ZERO);
            }
            core.timers.borrow().time_left(Instant::now())
        });
        with_core(|core| core.reactor.borrow_mut().wait(timeout))?;
        with_core(|core| core.timers.borrow_mut().fire(Instant::now()));
    }
}
// ANCHOR_END: block_on

// ANCHOR: poll_task
/// Polls task `id` once; a finished task is dropped.
fn poll_task(id: usize) {
    // A stale number (a waker that outlived its task) finds no future,
    // or a newer task's: that one is polled for nothing, which futures
    // must tolerate anyway.
    let Some((mut future, waker)) = with_core(|core| {
        let mut tasks = core.tasks.borrow_mut();
        let task = tasks.get_mut(id)?.as_mut()?;
        // Before the poll: a wake during it must queue the task again.
        task.waker.queued.store(false, Ordering::Release);
        Some((task.future.take()?, Waker::from(task.waker.clone())))
    }) else {
        return;
    };
    // Polled with no borrow held: the task may spawn, sleep or do I/O.
    let done = future.as_mut().poll(&mut Context::from_waker(&waker));
    with_core(|core| {
        let mut tasks = core.tasks.borrow_mut();
        if done.is_pending() {
            if let Some(Some(task)) = tasks.get_mut(id) {
                task.future = Some(future);
            }
            return;
        }
        tasks[id] = None;
        core.free.borrow_mut().push(id);
        core.live.set(core.live.get() - 1);
        if core.live.get() == 0 {
            if let Some(waker) = core.all_done.take() {
                waker.wake();
            }
        }
    });
}
// ANCHOR_END: poll_task

impl Core {
    fn ready_queue(&self) -> MutexGuard<'_, VecDeque<usize>> {
        self.ready.lock().expect("never poisoned")
    }
}
