//! `submit` and `submit_blocking` next to the plain executor calls they wrap
//! (see "Performance targets" in DESIGN.md: at most 1.3×). Memory store.
//!
//! ```text
//! cargo bench --bench submit --features rayon              # full run
//! cargo bench --bench submit --features rayon -- --test    # every benchmark once, as a check
//! ```
//!
//! | group | measured | against |
//! |---|---|---|
//! | `submit_tokio/multi_thread`, `…/current_thread` | `submit(handle, borrow(&o)?, …).await` | `tokio::spawn` of a task that owns the same borrow, `.await`ed (`baseline_spawn_join`); and with no borrow at all (`baseline_spawn_join_no_borrow`) |
//! | `submit_blocking/rayon` (feature `rayon`) | `submit_blocking(&pool, borrow(&o)?, …).join()` | `pool.spawn` of a job that owns the same borrow, joined through a channel |
//! | `submit_blocking/tokio` | `submit_blocking(handle, borrow(&o)?, …).await` | `spawn_blocking` of the same, `.await`ed |
//!
//! Each iteration runs one task to completion, so what is measured is the
//! round trip: spawn, run on another thread (on the multi-thread runtime and
//! the pools), and wake the waiter.

use std::hint::black_box;
use std::time::{Duration, Instant};

use borrowstore::submit::{submit, submit_blocking};
use borrowstore::{OwnedProxy, Store, borrow};
use criterion::{Criterion, criterion_group, criterion_main};

type V = Vec<u64>;

fn owner() -> OwnedProxy<V> {
    Store::memory("bench-submit")
        .owned_proxy(vec![1, 2, 3, 4])
        .unwrap()
}

fn tokio_group(c: &mut Criterion, name: &str, rt: &tokio::runtime::Runtime) {
    let owner = owner();
    let handle = rt.handle().clone();
    let mut g = c.benchmark_group(format!("submit_tokio/{name}"));

    g.bench_function("baseline_spawn_join_no_borrow", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let v = black_box(4usize);
                    black_box(handle.spawn(async move { v + 1 }).await.unwrap());
                }
                start.elapsed()
            })
        })
    });

    g.bench_function("baseline_spawn_join", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let r = borrow(&owner).unwrap();
                    black_box(handle.spawn(async move { r.len() }).await.unwrap());
                }
                start.elapsed()
            })
        })
    });

    g.bench_function("submit_one_borrow", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let r = borrow(&owner).unwrap();
                    black_box(
                        submit(&handle, r, |r| async move { r.len() })
                            .await
                            .unwrap(),
                    );
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

fn submit_tokio(c: &mut Criterion) {
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    tokio_group(c, "multi_thread", &multi);
    let current = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    tokio_group(c, "current_thread", &current);
}

#[cfg(feature = "rayon")]
fn submit_blocking_rayon(c: &mut Criterion) {
    let owner = owner();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let mut g = c.benchmark_group("submit_blocking/rayon");

    g.bench_function("baseline_spawn_join", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let r = borrow(&owner).unwrap();
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                pool.spawn(move || {
                    let _ = tx.send(r.len());
                });
                black_box(rx.recv().unwrap());
            }
            start.elapsed()
        })
    });

    g.bench_function("submit_blocking_one_borrow", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let r = borrow(&owner).unwrap();
                black_box(submit_blocking(&pool, r, |r| r.len()).join().unwrap());
            }
            start.elapsed()
        })
    });
    g.finish();
}

#[cfg(not(feature = "rayon"))]
fn submit_blocking_rayon(_: &mut Criterion) {
    eprintln!("submit_blocking/rayon: skipped (build with --features rayon)");
}

fn submit_blocking_tokio(c: &mut Criterion) {
    let owner = owner();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let mut g = c.benchmark_group("submit_blocking/tokio");

    g.bench_function("baseline_spawn_blocking_join", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let r = borrow(&owner).unwrap();
                    black_box(handle.spawn_blocking(move || r.len()).await.unwrap());
                }
                start.elapsed()
            })
        })
    });

    g.bench_function("submit_blocking_one_borrow", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let r = borrow(&owner).unwrap();
                    black_box(submit_blocking(&handle, r, |r| r.len()).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = submit_tokio, submit_blocking_rayon, submit_blocking_tokio
}
criterion_main!(benches);
