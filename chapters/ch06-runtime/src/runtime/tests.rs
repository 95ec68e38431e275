//! The runtime's parts on their own, without a server: the executor runs
//! what is spawned, polls a task once per batch of wakes, in the order
//! of its ready queue, and never starves the timers; the timers
//! keep only live deadlines, `race` drops the loser, and the reactor
//! wakes a task that watches for a reset.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io::Write;
use std::net;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use client::connection::reset;

use super::executor::{with_core, within_budget, CHECKS_PER_POLL};
use super::{all_tasks_done, block_on, race, sleep, spawn, timeout, Either};
use super::{TcpListener, TcpStream};

/// How many deadlines the timer table holds.
fn pending_timers() -> usize {
    with_core(|core| core.timers.borrow().pending.len())
}

/// Spawned tasks run, concurrently: three 500 ms sleeps take about
/// 500 ms, not 1.5 s, and `all_tasks_done` returns once the last one finished.
#[test]
fn spawned_tasks_sleep_together() {
    let finished = Rc::new(Cell::new(0));
    let took = block_on({
        let finished = finished.clone();
        async move {
            let start = Instant::now();
            for _ in 0..3 {
                let finished = finished.clone();
                spawn(async move {
                    sleep(Duration::from_millis(500)).await;
                    finished.set(finished.get() + 1);
                });
            }
            all_tasks_done().await;
            start.elapsed()
        }
    })
    .expect("the runtime starts");
    assert_eq!(finished.get(), 3);
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_millis(1200), "{took:?}");
}

/// A task woken several times before it runs is polled once: the ready
/// queue holds its number once.
#[test]
fn many_wakes_one_poll() {
    let polls = Rc::new(Cell::new(0));
    block_on({
        let polls = polls.clone();
        async move {
            spawn(poll_fn(move |cx| {
                polls.set(polls.get() + 1);
                if polls.get() == 1 {
                    for _ in 0..5 {
                        cx.waker().wake_by_ref();
                    }
                    return Poll::Pending;
                }
                Poll::Ready(())
            }));
            all_tasks_done().await;
        }
    })
    .expect("the runtime starts");
    assert_eq!(polls.get(), 2);
}

/// Waits once: wakes its own task and says `Pending`, so the task is
/// queued again behind the others, and finishes at the next poll.
async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}

/// The order of the ready queue: `block_on`'s own future first, then the
/// tasks never polled, then the woken ones, each in the order they came.
/// One poll of a task may check readiness `CHECKS_PER_POLL` times; the
/// next check says no and wakes the task, which runs again and gets a
/// fresh budget.
#[test]
fn a_poll_is_bounded_by_its_budget() {
    let polls = Cell::new(0);
    let checks = block_on(poll_fn(|cx| {
        polls.set(polls.get() + 1);
        let mut passed = 0;
        while within_budget(cx) {
            passed += 1;
        }
        if polls.get() == 1 {
            assert_eq!(passed, CHECKS_PER_POLL);
            return Poll::Pending; // woken by the refused check
        }
        Poll::Ready(passed)
    }))
    .expect("runs");
    assert_eq!((polls.get(), checks), (2, CHECKS_PER_POLL));
}

/// Task `c` is spawned by `a` after `a` and `b` woke themselves, and is
/// polled before either runs again.
#[test]
fn new_tasks_run_before_woken_ones() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let log = |name: &'static str| {
        let order = order.clone();
        move || order.borrow_mut().push(name)
    };
    block_on({
        let (a, b, c, main) = (log("a"), log("b"), log("c"), log("main"));
        let again = (log("a again"), log("b again"));
        async move {
            spawn(async move {
                a();
                spawn(async move { c() });
                yield_now().await;
                (again.0)();
            });
            spawn(async move {
                b();
                yield_now().await;
                (again.1)();
            });
            // Woken while `a` and `b` wait for their first poll.
            yield_now().await;
            main();
            all_tasks_done().await;
        }
    })
    .expect("the runtime starts");
    let expected = ["main", "a", "b", "c", "a again", "b again"];
    assert_eq!(*order.borrow(), expected);
}

/// A task that wakes itself at every poll does not keep the reactor and
/// the timers from running: a round polls a bounded number of tasks, so
/// a 1 ms sleep ends while the spinner still spins. The spinner gives up
/// after a million polls (far more than a millisecond's worth), so a
/// broken bound fails the test instead of hanging it.
#[test]
fn a_busy_task_does_not_starve_the_timers() {
    const GIVE_UP: u32 = 1_000_000;
    let spins = Rc::new(Cell::new(0));
    let stop = Rc::new(Cell::new(false));
    block_on({
        let (spins, stop) = (spins.clone(), stop.clone());
        async move {
            let spinner_stop = stop.clone();
            spawn(poll_fn(move |cx| {
                spins.set(spins.get() + 1);
                if spinner_stop.get() || spins.get() == GIVE_UP {
                    return Poll::Ready(());
                }
                cx.waker().wake_by_ref();
                Poll::Pending
            }));
            sleep(Duration::from_millis(1)).await;
            stop.set(true);
            all_tasks_done().await;
        }
    })
    .expect("the runtime starts");
    assert!(spins.get() < GIVE_UP, "the sleep waited for the spinner");
}

/// `race` returns the first to finish and drops the other; a dropped
/// sleep takes its deadline out of the table, and `timeout` says
/// `Elapsed` when the limit comes first.
#[test]
fn the_loser_of_a_race_leaves_no_deadline() {
    block_on(async {
        let short = sleep(Duration::from_millis(10));
        let long = sleep(Duration::from_secs(3600));
        let won = race(short, long).await;
        assert!(matches!(won, Either::Left(())));
        assert_eq!(pending_timers(), 0, "the hour-long sleep is gone");
        let never = poll_fn(|_| Poll::<()>::Pending);
        let limit = Some(Duration::from_millis(10));
        assert!(timeout(limit, never).await.is_err());
        assert_eq!(pending_timers(), 0);
    })
    .expect("the runtime starts");
}

/// `reset` to a later time keeps the entry already in the table: it
/// fires early, once, and the sleep registers its new time then, still
/// ending no sooner than that.
#[test]
fn a_reset_sleep_ends_at_its_new_time() {
    block_on(async {
        let start = Instant::now();
        let mut timer = sleep(Duration::from_millis(20));
        let first = race(&mut timer, poll_fn(|_| Poll::<()>::Pending));
        // Poll once so that the 20 ms deadline is in the table.
        let polled = race(first, async {}).await;
        assert!(matches!(polled, Either::Right(())));
        assert_eq!(pending_timers(), 1);
        timer.reset(Some(start + Duration::from_millis(60)));
        assert_eq!(pending_timers(), 1, "the early entry is kept");
        (&mut timer).await;
        assert!(start.elapsed() >= Duration::from_millis(60));
        assert_eq!(pending_timers(), 0);
    })
    .expect("the runtime starts");
}

/// A task watching for a reset is woken by it even when input came first
/// and nobody read it: the report of that input must not take the
/// watcher's waker with it. The sleep is only a bound: an hour, so that
/// it cannot win unless the wake is lost.
#[test]
fn a_reset_after_unread_input_wakes_the_watcher() {
    block_on(async {
        let listener = net::TcpListener::bind("127.0.0.1:0").expect("binds");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("bound");
        let listener = TcpListener::from_std(listener).expect("registers");
        let mut client = net::TcpStream::connect(addr).expect("connects");
        let (server, _): (TcpStream, _) =
            listener.accept().await.expect("accepts");
        spawn(async move {
            client.write_all(b"unread").expect("sent");
            // Time for the reactor to report the input on its own.
            sleep(Duration::from_millis(50)).await;
            reset(client).expect("SO_LINGER");
            // Never done: the last task to finish would wake the main
            // future, and hide a lost wake.
            std::future::pending::<()>().await;
        });
        let hour = sleep(Duration::from_secs(3600));
        let won = race(hour, server.failed()).await;
        assert!(matches!(won, Either::Right(())), "the reset was missed");
    })
    .expect("the runtime starts");
}
