//! `submit` to tokio with one borrow, next to plain `tokio::spawn` + join.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use borrowstore::{OwnedProxy, Store, borrow, submit};
use tokio::runtime::{Handle, Runtime};

use crate::measure::{Budget, emit_time, time};

/// `n` cycles of: borrow, `submit` a task that reads it, await the handle.
async fn submit_cycles(owner: &OwnedProxy<u64>, n: u64) -> Duration {
    let handle = Handle::current();
    let start = Instant::now();
    for _ in 0..n {
        let r = borrow(owner).expect("borrow");
        let out = submit(&handle, r, |r| async move { *r })
            .await
            .expect("submitted task");
        black_box(out);
    }
    start.elapsed()
}

/// `n` cycles of: borrow, read the borrow, drop it (what `submit_cycles`
/// does besides the task: the part of its time that is the borrow's own).
async fn borrow_cycles(owner: &OwnedProxy<u64>, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        let r = borrow(owner).expect("borrow");
        black_box(*r);
    }
    start.elapsed()
}

/// `n` cycles of: clone an `Arc`, `tokio::spawn` a task that reads it, join.
async fn spawn_cycles(value: &Arc<u64>, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        let v = Arc::clone(value);
        let out = tokio::spawn(async move { *v }).await.expect("join");
        black_box(out);
    }
    start.elapsed()
}

/// Both pairs: on a current-thread runtime (the loop in `block_on`), and
/// on a 2-worker multi-thread runtime (the loop in a spawned task).
pub fn run(budget: Budget) {
    let store = Store::memory("bench-harness-submit");
    let owner = Arc::new(store.owned_proxy(42u64).expect("owned_proxy"));
    let value = Arc::new(42u64);

    let ct: Runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let t = time(budget, |n| ct.block_on(submit_cycles(&owner, n)));
    emit_time(
        "submit_borrow_join_ct",
        "memory",
        "borrowstore",
        t,
        "current-thread runtime: borrow(&owner) + submit(handle, r, |r| async move { *r }) + await",
    );
    let t = time(budget, |n| ct.block_on(spawn_cycles(&value, n)));
    emit_time(
        "spawn_join_ct",
        "-",
        "reference",
        t,
        "current-thread runtime: Arc::clone + tokio::spawn(async move { *v }) + await",
    );
    let t = time(budget, |n| ct.block_on(borrow_cycles(&owner, n)));
    emit_time(
        "borrow_read_ct",
        "memory",
        "borrowstore",
        t,
        "current-thread runtime: borrow(&owner) + *r + drop, no task (the borrow's share of submit_borrow_join_ct)",
    );
    drop(ct);

    let mt: Runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let t = time(budget, |n| {
        let owner = Arc::clone(&owner);
        mt.block_on(mt.spawn(async move { submit_cycles(&owner, n).await }))
            .expect("bench task")
    });
    emit_time(
        "submit_borrow_join_mt",
        "memory",
        "borrowstore",
        t,
        "2-worker multi-thread runtime, loop in a spawned task: borrow + submit + await",
    );
    let t = time(budget, |n| {
        let value = Arc::clone(&value);
        mt.block_on(mt.spawn(async move { spawn_cycles(&value, n).await }))
            .expect("bench task")
    });
    emit_time(
        "spawn_join_mt",
        "-",
        "reference",
        t,
        "2-worker multi-thread runtime, loop in a spawned task: Arc::clone + tokio::spawn + await",
    );
}
