//! Wake-up latency of a waiting borrow: from the release that frees the
//! object to the moment the waiter holds its borrow, on the memory and file
//! stores, next to the same hand-off through a `tokio::sync::RwLock` in the
//! same run. (The Redis figure is in `benches/redis.rs`.)
//!
//! ```text
//! cargo bench --bench wake
//! cargo bench --bench wake -- --test       # every benchmark once, as a check
//! ```
//!
//! | benchmark | measured | target |
//! |---|---|---|
//! | `wake/tokio_rwlock_handoff` | a task awaiting `RwLock::read` while a write guard is held; the guard is dropped | the floor |
//! | `wake/memory_borrow_async` | a task awaiting `borrow_async` while a `RefMutProxy` is held; it is dropped | ≤ 2× the RwLock hand-off |
//! | `wake/memory_mut_borrow_async` | a task awaiting `mut_borrow_async` while a `RefProxy` is held; it is dropped | — |
//! | `wake/file_borrow_async` | as `memory_borrow_async`, on a file store (released by this process) | — |
//!
//! Each hand-off: the holder takes the object, a task on a 2-worker runtime
//! starts waiting, the holder pauses 100 µs (so the waiter is surely
//! asleep), notes the time and releases; the waiter notes the time it holds
//! its borrow. Only that interval is counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use borrowstore::{OwnedProxy, Store, borrow, borrow_async, mut_borrow, mut_borrow_async};
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

/// How long the holder waits before it releases: the waiter is asleep by then.
const PAUSE: Duration = Duration::from_micros(100);

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `iters` hand-offs; the sum of the intervals from each release to the
/// waiter's grant. `hold` takes the object; `wait` is the waiting task,
/// which resolves to the instant it held its borrow.
fn handoffs<H, F>(
    rt: &Runtime,
    iters: u64,
    mut hold: impl FnMut() -> H,
    wait: impl Fn() -> F,
) -> Duration
where
    F: std::future::Future<Output = Instant> + Send + 'static,
{
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let held = hold();
        let (started, ready) = std::sync::mpsc::sync_channel(1);
        let waiting = wait();
        let task = rt.spawn(async move {
            let _ = started.send(());
            waiting.await
        });
        ready.recv().unwrap();
        std::thread::sleep(PAUSE);
        let released = Instant::now();
        drop(held);
        let granted = rt.block_on(task).unwrap();
        total += granted.saturating_duration_since(released);
    }
    total
}

fn store_handoffs(c: &mut Criterion, store: &Store, label: &str) {
    let rt = runtime();
    let owner: Arc<OwnedProxy<u64>> = Arc::new(store.owned_proxy(42).unwrap());
    let mut g = c.benchmark_group("wake");
    g.bench_function(format!("{label}_borrow_async"), |b| {
        b.iter_custom(|iters| {
            handoffs(
                &rt,
                iters,
                || mut_borrow(&owner).unwrap(),
                || {
                    let o = owner.clone();
                    async move {
                        let r = borrow_async(&o).await.unwrap();
                        let at = Instant::now();
                        drop(r);
                        at
                    }
                },
            )
        })
    });
    g.bench_function(format!("{label}_mut_borrow_async"), |b| {
        b.iter_custom(|iters| {
            handoffs(
                &rt,
                iters,
                || borrow(&owner).unwrap(),
                || {
                    let o = owner.clone();
                    async move {
                        let w = mut_borrow_async(&o).await.unwrap();
                        let at = Instant::now();
                        drop(w);
                        at
                    }
                },
            )
        })
    });
    g.finish();
    drop(owner);
    store.flush().unwrap();
}

fn bench_wake(c: &mut Criterion) {
    let rt = runtime();
    let lock = Arc::new(tokio::sync::RwLock::new(42u64));
    let mut g = c.benchmark_group("wake");
    g.bench_function("tokio_rwlock_handoff", |b| {
        b.iter_custom(|iters| {
            handoffs(
                &rt,
                iters,
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
        })
    });
    g.finish();

    store_handoffs(c, &Store::memory("bench-wake"), "memory");

    let dir = std::env::temp_dir().join(format!("borrowstore-bench-wake-{}", std::process::id()));
    let file = Store::open(&format!("file://{}", dir.display())).unwrap();
    store_handoffs(c, &file, "file");
    drop(file);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    targets = bench_wake
}
criterion_main!(benches);
