//! Copy-on-write of a large value on the memory store: the first `DerefMut`
//! of a 50 MB writer (`RefMutProxy`) and of an owner (`OwnedProxy`), next to
//! `Vec::clone` of the same vector — the floor, since copy-on-write copies
//! with `Clone` — and to `codec::deep_copy`, the copy through the
//! serialized form (encode + decode) that copy-on-write used to make.
//!
//! ```text
//! cargo bench --bench copy_on_write              # full run (under a minute)
//! cargo bench --bench copy_on_write -- --test    # run every benchmark once, as a check
//! ```
//!
//! Only the copy is timed: the writer is taken before, and the copy is
//! dropped (or published) after, outside the measurement.

use std::hint::black_box;
use std::time::{Duration, Instant};

use borrowstore::{OwnedProxy, RefMutProxy, Store, codec, mut_borrow};
use criterion::{Criterion, criterion_group, criterion_main};

/// 50 MB of `u64`s.
const LEN: usize = 50 * 1000 * 1000 / 8;

fn big() -> Vec<u64> {
    (0..LEN as u64).collect()
}

fn copy_on_write(c: &mut Criterion) {
    let store = Store::memory("bench-copy-on-write");
    let mut g = c.benchmark_group("copy_on_write_50MB");

    let owner: OwnedProxy<Vec<u64>> = store.owned_proxy(big()).unwrap();
    g.bench_function("ref_mut_first_deref_mut", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut w = mut_borrow(&owner).unwrap();
                let start = Instant::now();
                black_box(&mut *w)[0] = 1;
                total += start.elapsed();
                RefMutProxy::discard_changes(&mut w);
                drop(w);
            }
            total
        })
    });

    let mut changed: OwnedProxy<Vec<u64>> = store.owned_proxy(big()).unwrap();
    g.bench_function("owned_first_deref_mut", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                black_box(&mut *changed)[0] = 1;
                total += start.elapsed();
                OwnedProxy::discard_changes(&mut changed);
            }
            total
        })
    });

    let v = big();
    g.bench_function("baseline_vec_clone", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let copy = black_box(black_box(&v).clone());
                total += start.elapsed();
                drop(copy);
            }
            total
        })
    });

    g.bench_function("before_codec_deep_copy", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let copy = black_box(codec::deep_copy(black_box(&v)).unwrap());
                total += start.elapsed();
                drop(copy);
            }
            total
        })
    });

    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = copy_on_write
}
criterion_main!(benches);
