//! (f) `submit` / `submit_blocking` end the task's borrows store-side before
//! the handle resolves: after `loom::future::block_on(handle)` returns, the
//! object has no reader left and a `mut_borrow` is granted, whether the
//! task returned, leaked its borrow (`mem::forget`), panicked, or was
//! dropped by its executor (before or after it ran, reported before or
//! after the drop). Every borrow's claim is released exactly once.
//!
//! The executor is [`LoomExecutor`]: each task runs on a `loom::thread`, and
//! its handle is a [`LoomJoin`] built on a loom `Mutex`, so the only
//! happens-before edges between the task and the submitter are the ones
//! loom sees (a `ChannelJoin` would hand the output over through a
//! `futures` oneshot, whose std atomics loom cannot see).
#![cfg(borrowstore_loom)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use borrowstore::state::ClaimKind;
use borrowstore::submit::{Spawn, SpawnBlocking, TaskJoin, submit, submit_blocking};
use borrowstore::{Error, Key, OwnedProxy, RefProxy, Store, borrow, mut_borrow};
use borrowstore_loom_tests::{Tally, counting_store, finish_empty, state};
use loom::future::block_on;
use loom::sync::Mutex;
use loom::thread::{self, JoinHandle};

type V = Vec<u64>;

// ------------------------------------------------------------ the executor

/// What the executor does with a task.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Runs it to the end (`loom::future::block_on`), then reports its
    /// output.
    Run,
    /// Drops it unpolled, then reports it cancelled (a pool that drops its
    /// queue).
    DropThenReport,
    /// Reports it cancelled, then drops it unpolled (an executor that
    /// reports before it drops).
    ReportThenDrop,
    /// Polls it once, reports it cancelled, then drops it: the task's
    /// future still holds its borrow when it is dropped (an abort at an
    /// `.await`).
    PollReportDrop,
}

/// An executor that runs each task on a `loom::thread` of its own.
struct LoomExecutor {
    mode: Mode,
    /// The task threads, joined by [`LoomExecutor::join_all`]. Only the
    /// model's main thread touches this (std) lock.
    threads: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl LoomExecutor {
    fn new(mode: Mode) -> Self {
        LoomExecutor {
            mode,
            threads: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn start(&self, f: impl FnOnce() + Send + 'static) {
        let t = thread::spawn(f);
        self.threads.lock().unwrap().push(t);
    }

    /// Waits until every task thread has finished.
    fn join_all(&self) {
        for t in std::mem::take(&mut *self.threads.lock().unwrap()) {
            t.join().unwrap();
        }
    }
}

impl Spawn for LoomExecutor {
    type Join<T: Send + 'static> = LoomJoin<T>;

    fn spawn<F>(&self, task: F) -> LoomJoin<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, join) = LoomJoin::pair();
        let mode = self.mode;
        self.start(move || match mode {
            Mode::Run => tx.send(block_on(task)),
            Mode::DropThenReport => {
                drop(task);
                drop(tx);
            }
            Mode::ReportThenDrop => {
                drop(tx);
                drop(task);
            }
            Mode::PollReportDrop => {
                let mut task = Box::pin(task);
                let mut cx = Context::from_waker(Waker::noop());
                match task.as_mut().poll(&mut cx) {
                    Poll::Ready(out) => tx.send(out),
                    Poll::Pending => {
                        drop(tx);
                        drop(task);
                    }
                }
            }
        });
        join
    }
}

impl SpawnBlocking for LoomExecutor {
    type Join<T: Send + 'static> = LoomJoin<T>;

    fn spawn_blocking<F, T>(&self, task: F) -> LoomJoin<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, join) = LoomJoin::pair();
        match self.mode {
            Mode::Run => self.start(move || tx.send(task())),
            _ => self.start(move || {
                drop(tx);
                drop(task);
            }),
        }
        join
    }
}

/// Where a task's output waits for its handle.
enum Outcome<T> {
    Running,
    Done(T),
    Cancelled,
    Taken,
}

struct Slot<T> {
    /// The outcome and the waker of the handle's last poll: a loom lock, so
    /// handing the output over is a happens-before edge loom sees.
    inner: Mutex<(Outcome<T>, Option<Waker>)>,
}

/// The handle on a task of the [`LoomExecutor`].
struct LoomJoin<T>(Arc<Slot<T>>);

/// The task's side: reports the output, or (dropped unsent) a cancel.
struct Reporter<T>(Option<Arc<Slot<T>>>);

impl<T> LoomJoin<T> {
    fn pair() -> (Reporter<T>, LoomJoin<T>) {
        let slot = Arc::new(Slot {
            inner: Mutex::new((Outcome::Running, None)),
        });
        (Reporter(Some(slot.clone())), LoomJoin(slot))
    }
}

impl<T> Reporter<T> {
    fn send(mut self, out: T) {
        self.finish(Outcome::Done(out));
    }

    fn finish(&mut self, outcome: Outcome<T>) {
        if let Some(slot) = self.0.take() {
            let waker = {
                let mut g = slot.inner.lock().unwrap();
                g.0 = outcome;
                g.1.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

impl<T> Drop for Reporter<T> {
    fn drop(&mut self) {
        self.finish(Outcome::Cancelled);
    }
}

impl<T: Send> Future for LoomJoin<T> {
    type Output = borrowstore::Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut g = self.0.inner.lock().unwrap();
        match std::mem::replace(&mut g.0, Outcome::Taken) {
            Outcome::Running => {
                g.0 = Outcome::Running;
                g.1 = Some(cx.waker().clone());
                Poll::Pending
            }
            Outcome::Done(out) => Poll::Ready(Ok(out)),
            Outcome::Cancelled => Poll::Ready(Err(Error::TaskCancelled {
                reason: "the loom executor dropped the task".to_owned(),
            })),
            Outcome::Taken => panic!("LoomJoin polled after it resolved"),
        }
    }
}

impl<T: Send> TaskJoin<T> for LoomJoin<T> {}

/// Pending once (waking its waker), then ready: an `.await` at which an
/// executor can drop the task.
#[derive(Default)]
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

// ---------------------------------------------------------------- checks

/// Right after the handle resolved: the release is visible store-side, and
/// a writer is granted.
fn released_before_resolve(store: &Store, owner: &OwnedProxy<V>) {
    let key = *OwnedProxy::key(owner);
    let s = state(store, &key).expect("evicted while owned");
    assert_eq!(s.readers, 0, "the handle resolved before the release");
    let w = mut_borrow(owner).expect("mut_borrow refused after the handle resolved");
    drop(w);
}

/// After every task thread is joined: the reader claim was released
/// exactly once, nothing was refused, and dropping the owner evicts.
fn finish_released_once(store: Store, tally: &Tally, owner: OwnedProxy<V>, key: Key) {
    assert_eq!(tally.releases(ClaimKind::Reader), 1, "reader releases");
    assert_eq!(tally.refused_releases(), 0, "refused releases");
    assert_eq!(tally.evictions(), 0, "evicted while owned");
    drop(owner);
    assert!(state(&store, &key).is_none(), "outlived its owner");
    assert_eq!(tally.evictions(), 1, "evictions");
    finish_empty(store);
}

/// Submits a task over one borrow of a fresh owner on `exec`; returns the
/// handle's result after checking the release was visible first.
fn run_model<T: Send + 'static, Fut>(
    mode: Mode,
    model: &str,
    task: impl FnOnce(RefProxy<V>) -> Fut + Send + 'static,
    check: impl FnOnce(borrowstore::Result<T>),
) where
    Fut: Future<Output = T> + Send + 'static,
{
    let (store, tally) = counting_store(model);
    let owner = store.owned_proxy(vec![7u64, 8, 9]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let exec = LoomExecutor::new(mode);

    let h = submit(&exec, borrow(&owner).unwrap(), task);
    let out = block_on(h);
    released_before_resolve(&store, &owner);
    check(out);

    exec.join_all();
    finish_released_once(store, &tally, owner, key);
}

// ---------------------------------------------------------------- models

/// The task runs and drops its borrow itself.
#[test]
fn submit_completes_after_release() {
    loom::model(|| {
        run_model(
            Mode::Run,
            "sub-run",
            |r| async move { r.len() },
            |out| assert_eq!(out.unwrap(), 3),
        );
    });
}

/// The task leaks its borrow: the end of the task releases the claim,
/// exactly once, before the handle resolves.
#[test]
fn submit_leaked_borrow_released_once() {
    loom::model(|| {
        run_model(
            Mode::Run,
            "sub-leak",
            |r| async move {
                let n = r.len();
                std::mem::forget(r);
                n
            },
            |out| assert_eq!(out.unwrap(), 3),
        );
    });
}

fn cancelled(out: borrowstore::Result<usize>) {
    assert!(
        matches!(out, Err(Error::TaskCancelled { .. })),
        "expected TaskCancelled, got {out:?}"
    );
}

/// The executor drops the task unpolled, then reports: the task's drop
/// ended the borrow.
#[test]
fn submit_dropped_then_reported() {
    loom::model(|| {
        run_model(
            Mode::DropThenReport,
            "sub-drop",
            |r| async move { r.len() },
            cancelled,
        );
    });
}

/// The executor reports the cancel before it drops the task: the handle
/// ends the borrow itself, racing the task's drop; exactly one of them
/// releases it.
#[test]
fn submit_reported_then_dropped() {
    loom::model(|| {
        run_model(
            Mode::ReportThenDrop,
            "sub-rep",
            |r| async move { r.len() },
            cancelled,
        );
    });
}

/// The task is dropped at an `.await`, holding its borrow, after the
/// cancel was reported: the borrow's own drop (through the guard's `BUSY`
/// state) races the handle ending it.
#[test]
fn submit_dropped_at_await_after_report() {
    loom::model(|| {
        run_model(
            Mode::PollReportDrop,
            "sub-await",
            |r| async move {
                YieldOnce::default().await;
                r.len()
            },
            cancelled,
        );
    });
}

/// `submit_blocking`: a task that leaks its borrow and then panics. The
/// handle resolves to `TaskPanicked`, after the claim was released once.
#[test]
fn submit_blocking_panic_after_leak() {
    quiet_panics();
    loom::model(|| {
        let (store, tally) = counting_store("subb-panic");
        let owner = store.owned_proxy(vec![7u64, 8, 9]).unwrap();
        let key = *OwnedProxy::key(&owner);
        let exec = LoomExecutor::new(Mode::Run);

        let h = submit_blocking(&exec, borrow(&owner).unwrap(), |r| -> usize {
            std::mem::forget(r);
            std::panic::panic_any(QUIET)
        });
        let out = block_on(h);
        released_before_resolve(&store, &owner);
        assert!(
            matches!(&out, Err(Error::TaskPanicked { message }) if message == QUIET),
            "expected TaskPanicked, got {out:?}"
        );

        exec.join_all();
        finish_released_once(store, &tally, owner, key);
    });
}

/// `submit_blocking` whose executor drops the closure unrun and reports a
/// cancel.
#[test]
fn submit_blocking_dropped() {
    loom::model(|| {
        let (store, tally) = counting_store("subb-drop");
        let owner = store.owned_proxy(vec![7u64, 8, 9]).unwrap();
        let key = *OwnedProxy::key(&owner);
        let exec = LoomExecutor::new(Mode::ReportThenDrop);

        let h = submit_blocking(&exec, borrow(&owner).unwrap(), |r| r.len());
        let out = block_on(h);
        released_before_resolve(&store, &owner);
        cancelled(out);

        exec.join_all();
        finish_released_once(store, &tally, owner, key);
    });
}

/// The payload of the models' deliberate panics.
const QUIET: &str = "deliberate panic in a loom submit model";

/// Keeps the deliberate panics (one per loom iteration) out of the output;
/// every other panic is reported as usual.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&QUIET) {
                previous(info);
            }
        }));
    });
}
