//! Wake-up latency of a waiting borrow — from the release that frees the
//! object to the moment the waiter holds its borrow — next to the same
//! hand-off through a `tokio::sync::RwLock`.
//!
//! Each hand-off: the holder takes the object, a task on a 2-worker
//! runtime starts waiting, the holder pauses (so the waiter is surely
//! asleep), notes the time and releases; the waiter notes the time it holds
//! its borrow. Only that interval is counted.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use borrowstore::{OwnedProxy, Store, borrow_async, mut_borrow};
use tokio::runtime::Runtime;

use crate::measure::{Budget, emit_time, time};

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// `n` hand-offs, pausing `pause` before each release; the sum of the
/// intervals from release to grant.
fn handoffs<H, F>(
    rt: &Runtime,
    n: u64,
    pause: Duration,
    mut hold: impl FnMut() -> H,
    wait: impl Fn() -> F,
) -> Duration
where
    F: Future<Output = Instant> + Send + 'static,
{
    let mut total = Duration::ZERO;
    for _ in 0..n {
        let held = hold();
        let (started, ready) = std::sync::mpsc::sync_channel(1);
        let waiting = wait();
        let task = rt.spawn(async move {
            let _ = started.send(());
            waiting.await
        });
        ready.recv().expect("the waiter started");
        std::thread::sleep(pause);
        let released = Instant::now();
        drop(held);
        let granted = rt.block_on(task).expect("the waiter");
        total += granted.saturating_duration_since(released);
    }
    total
}

/// The reference: a task awaiting `RwLock::read` while a write guard is
/// held, and the guard dropped.
pub fn rwlock(budget: Budget) {
    let rt = runtime();
    let lock = Arc::new(tokio::sync::RwLock::new(42u64));
    let t = time(budget, |n| {
        handoffs(
            &rt,
            n,
            Duration::from_micros(100),
            || rt.block_on(lock.clone().write_owned()),
            || {
                let l = lock.clone();
                async move {
                    let r = l.read().await;
                    let at = Instant::now();
                    drop(r);
                    at
                }
            },
        )
    });
    emit_time(
        "wake_handoff",
        "-",
        "reference",
        t,
        "tokio::sync::RwLock: write guard dropped -> a task awaiting read() holds its guard \
         (2-worker runtime; 100 us pause before each release)",
    );
}

/// A task awaiting `borrow_async` while this thread holds a `RefMutProxy`,
/// and the writer dropped. `pause` gives the waiter time to go to sleep
/// (longer on Redis, where its first try is a round trip).
pub fn run(store: &Store, label: &'static str, pause: Duration, budget: Budget) {
    let rt = runtime();
    let owner: Arc<OwnedProxy<u64>> = Arc::new(store.owned_proxy(42).expect("owned_proxy"));
    // The first waiter starts what wakes the others (a Redis subscriber).
    drop(rt.block_on(borrow_async(&owner)).expect("borrow_async"));
    let t = time(budget, |n| {
        handoffs(
            &rt,
            n,
            pause,
            || mut_borrow(&owner).expect("mut_borrow"),
            || {
                let o = owner.clone();
                async move {
                    let r = borrow_async(&o).await.expect("borrow_async");
                    let at = Instant::now();
                    drop(r);
                    at
                }
            },
        )
    });
    let how = match label {
        "memory" => "an in-process notification",
        "file" => "an in-process notification (the release is this process's)",
        _ => "the release script's PUBLISH, through the store's subscriber",
    };
    emit_time(
        "wake_handoff",
        label,
        "borrowstore",
        t,
        format!(
            "RefMutProxy dropped -> a task awaiting borrow_async holds its borrow, woken by {how} \
             (2-worker runtime; {pause:?} pause before each release)"
        ),
    );
    drop(owner);
    store.flush().expect("flush");
}
