//! Borrows from several threads at once: one thread per core borrowing one
//! object together, and each borrowing an object of its own, next to the
//! same threads taking read guards of one `Arc<RwLock<u64>>` and of a lock
//! each. The figure is the total throughput of all threads (borrows, or
//! guards, per second), over the median of the rounds.

use std::hint::black_box;
use std::sync::{Arc, Barrier, RwLock};
use std::time::{Duration, Instant};

use borrowstore::{OwnedProxy, Store, borrow};

use crate::measure::{Budget, Record};

/// How many threads: one per core the process may use.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// Runs `op(thread)` `n` times on each of `threads` threads started
/// together, and returns the wall time from the start to the last one's end.
fn round(threads: usize, n: u64, op: &(impl Fn(usize) + Sync)) -> Duration {
    let start = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    for _ in 0..n {
                        op(t);
                    }
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        for w in workers {
            w.join().expect("a benchmark thread panicked");
        }
        began.elapsed()
    })
}

/// Times `op` on `threads` threads: sizes the per-thread count to about one
/// round, then reports the median total throughput (operations per second
/// over all threads).
fn throughput(budget: Budget, threads: usize, op: impl Fn(usize) + Sync) -> (f64, u64) {
    let mut n: u64 = 1_000;
    let floor = budget.round / 10;
    let mut took = round(threads, n, &op);
    while took < floor && n < (1 << 28) {
        n *= 2;
        took = round(threads, n, &op);
    }
    let per_op = took.as_secs_f64() / n as f64;
    let n = ((budget.round.as_secs_f64() / per_op.max(1e-10)) as u64).clamp(1_000, 1 << 28);
    let mut samples: Vec<f64> = (0..budget.rounds.max(1))
        .map(|_| (threads as u64 * n) as f64 / round(threads, n, &op).as_secs_f64())
        .collect();
    samples.sort_by(f64::total_cmp);
    (samples[samples.len() / 2], n)
}

fn emit(workload: &'static str, imp: &'static str, threads: usize, (ops, n): (f64, u64)) {
    let store = if imp == "reference" { "-" } else { "memory" };
    eprintln!(
        "  {workload:<34} {store:<7} {imp:<12} {:>12.1} M/s on {threads} threads",
        ops / 1e6
    );
    Record::new(workload, store, imp, ("ops_per_sec", ops, "1/s"), n)
        .notes(format!(
            "{threads} threads (one per core) started together, {n} operations each; \
             total operations per second of all threads, median round"
        ))
        .with("threads", threads as u64)
        .emit();
}

/// The contention group.
pub fn run(budget: Budget) {
    let threads = threads();
    let store = Store::memory("bench-harness-contention");

    let owner: OwnedProxy<u64> = store.owned_proxy(42).expect("owned_proxy");
    let t = throughput(budget, threads, |_| {
        drop(black_box(borrow(black_box(&owner)).expect("borrow")));
    });
    emit("concurrent_borrow_one_object", "borrowstore", threads, t);

    let lock = Arc::new(RwLock::new(42u64));
    let t = throughput(budget, threads, |_| {
        drop(black_box(black_box(&lock).read().expect("read")));
    });
    emit("concurrent_read_guard_one_lock", "reference", threads, t);

    let owners: Vec<OwnedProxy<u64>> = (0..threads)
        .map(|i| store.owned_proxy(i as u64).expect("owned_proxy"))
        .collect();
    let t = throughput(budget, threads, |i| {
        drop(black_box(borrow(black_box(&owners[i])).expect("borrow")));
    });
    emit("concurrent_borrow_own_objects", "borrowstore", threads, t);

    // One lock per thread, each on a cache line of its own (as the slots of
    // separate objects are separate allocations).
    #[repr(align(128))]
    struct Padded(RwLock<u64>);
    let locks: Vec<Arc<Padded>> = (0..threads)
        .map(|i| Arc::new(Padded(RwLock::new(i as u64))))
        .collect();
    let t = throughput(budget, threads, |i| {
        drop(black_box(black_box(&locks[i]).0.read().expect("read")));
    });
    emit("concurrent_read_guard_own_locks", "reference", threads, t);
}
