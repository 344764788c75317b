//! Wake-ups at a time, for any executor: one process-wide thread that
//! wakes [`Waker`]s when their deadlines pass.
//!
//! Waiting borrows re-check a store that cannot announce every release
//! (another process's release on a file store, a Redis message lost with
//! its connection) after a bounded delay. They may be polled by any
//! executor — tokio, `futures::executor`, the thread of a `*_timeout` call
//! — so the delay cannot come from one runtime's timer. This thread is that
//! timer: a heap of deadlines behind a std `Mutex` and `Condvar` (never
//! modelled by loom: the memory store, which the models drive, never sets a
//! deadline).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, Once, OnceLock};
use std::task::Waker;
use std::time::Instant;

use crate::sync::unmodeled;

/// One deadline and the waker to wake at it.
struct Alarm {
    at: Instant,
    seq: u64,
    waker: Waker,
}

impl PartialEq for Alarm {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Alarm {}

impl PartialOrd for Alarm {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Alarm {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
struct Alarms {
    heap: BinaryHeap<Reverse<Alarm>>,
    seq: u64,
}

struct Timer {
    alarms: Mutex<Alarms>,
    changed: Condvar,
    /// Whether the thread runs; when it could not be started, alarms are
    /// woken at once (callers then re-check early, never late).
    running: AtomicBool,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<Timer> = OnceLock::new();
    static START: Once = Once::new();
    let t = TIMER.get_or_init(|| Timer {
        alarms: Mutex::new(Alarms::default()),
        changed: Condvar::new(),
        running: AtomicBool::new(false),
    });
    START.call_once(|| {
        match std::thread::Builder::new()
            .name("borrowstore-timer".into())
            .spawn(move || run(t))
        {
            Ok(_) => t.running.store(true, Ordering::Release),
            Err(e) => tracing::error!(error = %e, "cannot start the timer thread; waiting borrows re-check at once"),
        }
    });
    t
}

fn run(t: &'static Timer) {
    let mut alarms = unmodeled::lock(&t.alarms);
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        while alarms.heap.peek().is_some_and(|Reverse(a)| a.at <= now) {
            if let Some(Reverse(a)) = alarms.heap.pop() {
                due.push(a.waker);
            }
        }
        if !due.is_empty() {
            drop(alarms);
            due.into_iter().for_each(Waker::wake);
            alarms = unmodeled::lock(&t.alarms);
            continue;
        }
        alarms = match alarms.heap.peek().map(|Reverse(a)| a.at) {
            Some(at) => {
                let wait = at.saturating_duration_since(now);
                t.changed
                    .wait_timeout(alarms, wait)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0)
            }
            None => t
                .changed
                .wait(alarms)
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        };
    }
}

/// Wakes `waker` at `at` (at once if `at` has passed).
pub(crate) fn wake_at(at: Instant, waker: Waker) {
    let t = timer();
    if !t.running.load(Ordering::Acquire) || at <= Instant::now() {
        waker.wake();
        return;
    }
    let mut alarms = unmodeled::lock(&t.alarms);
    alarms.seq += 1;
    let seq = alarms.seq;
    let earliest = alarms.heap.peek().is_none_or(|Reverse(a)| at < a.at);
    alarms.heap.push(Reverse(Alarm { at, seq, waker }));
    drop(alarms);
    if earliest {
        t.changed.notify_one();
    }
}

/// A future that completes at a time, on any executor.
#[cfg(feature = "redis")]
pub(crate) struct Sleep {
    at: Instant,
    armed: Option<Waker>,
}

#[cfg(feature = "redis")]
impl Sleep {
    pub(crate) fn until(at: Instant) -> Sleep {
        Sleep { at, armed: None }
    }
}

#[cfg(feature = "redis")]
impl std::future::Future for Sleep {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        use std::task::Poll;
        if Instant::now() >= self.at {
            return Poll::Ready(());
        }
        if !self.armed.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.armed = Some(cx.waker().clone());
            wake_at(self.at, cx.waker().clone());
        }
        Poll::Pending
    }
}
