//! Core hot paths of borrowstore on the memory store, each next to the
//! physical floor it is measured against (see "Performance targets" in
//! DESIGN.md). Ratios are what count; absolute numbers depend on the machine.
//!
//! ```text
//! cargo bench --bench core                 # full run (about 2 minutes)
//! cargo bench --bench core -- --test       # run every benchmark once, as a check
//! cargo bench --bench core -- borrow/      # one group
//! ```
//!
//! Groups, and the targets they check:
//!
//! | group         | measured                                   | target                  |
//! |---------------|--------------------------------------------|-------------------------|
//! | `owned_proxy` | `store.owned_proxy(v)` + drop              | ≤ 300 ns                |
//! | `borrow`      | `borrow(&owner)` + drop, 0 and 16 k live   | ≤ 20 ns, flat           |
//! | `mut_borrow`  | `mut_borrow(&owner)` + drop                | (as `borrow`)           |
//! | `resolve`     | cold / cached / borrow + resolve / `get_shared` | ≤ 300 ns; ≤ 30 ns cached |
//! | `update`      | a small local change + `update(&mut owner)` | —                       |
//!
//! Benchmarks named `baseline_*` measure plain Rust doing the same kind of
//! work without borrowstore: `Arc`, `RwLock`, `DashMap`.

use std::hint::black_box;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use borrowstore::{OwnedProxy, Proxy, RefProxy, Store, borrow, mut_borrow, update};
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use dashmap::DashMap;

/// Number of live shared borrows held during the "many borrows" variants.
const LIVE_BORROWS: usize = 16_384;

fn store() -> Store {
    Store::memory("bench-core")
}

fn vec4() -> Vec<u64> {
    vec![1, 2, 3, 4]
}

/// `owned_proxy` create + drop, next to `Arc::new` + drop and DashMap
/// insert + remove.
fn owned_proxy(c: &mut Criterion) {
    let store = store();
    let mut g = c.benchmark_group("owned_proxy");

    g.bench_function(BenchmarkId::new("create_drop", "u64"), |b| {
        b.iter(|| drop(black_box(store.owned_proxy(black_box(42u64)).unwrap())))
    });
    g.bench_function(BenchmarkId::new("create_drop", "vec4"), |b| {
        b.iter(|| drop(black_box(store.owned_proxy(black_box(vec4())).unwrap())))
    });

    g.bench_function(BenchmarkId::new("baseline_arc_new_drop", "u64"), |b| {
        b.iter(|| drop(black_box(Arc::new(black_box(42u64)))))
    });
    g.bench_function(BenchmarkId::new("baseline_arc_new_drop", "vec4"), |b| {
        b.iter(|| drop(black_box(Arc::new(black_box(vec4())))))
    });

    // A map shaped like the memory connector's: 128-bit keys, `Arc` values.
    let map: DashMap<u128, Arc<u64>> = DashMap::new();
    let mut next: u128 = 0;
    g.bench_function("baseline_dashmap_insert_remove", |b| {
        b.iter(|| {
            next = next.wrapping_add(0x9E37_79B9_7F4A_7C15);
            map.insert(black_box(next), Arc::new(42));
            black_box(map.remove(&next));
        })
    });

    g.finish();
}

/// `borrow` + drop with 0 and 16 k other live borrows of the same object,
/// next to an `RwLock` read guard and a DashMap counter.
fn borrow_bench(c: &mut Criterion) {
    let store = store();
    let owner: OwnedProxy<u64> = store.owned_proxy(42).unwrap();
    let mut g = c.benchmark_group("borrow");

    g.bench_function(BenchmarkId::new("borrow_drop", "live_0"), |b| {
        b.iter(|| drop(black_box(borrow(black_box(&owner)).unwrap())))
    });

    let live: Vec<RefProxy<u64>> = (0..LIVE_BORROWS).map(|_| borrow(&owner).unwrap()).collect();
    g.bench_function(BenchmarkId::new("borrow_drop", "live_16384"), |b| {
        b.iter(|| drop(black_box(borrow(black_box(&owner)).unwrap())))
    });
    drop(live);

    let lock = Arc::new(RwLock::new(42u64));
    g.bench_function("baseline_rwlock_read_guard", |b| {
        b.iter(|| drop(black_box(black_box(&lock).read().unwrap())))
    });

    // One lookup to count the borrow, one to count it back, as a keyed
    // state table would do.
    let counts: DashMap<u128, u64> = (0..1024u128).map(|k| (k, 0)).collect();
    let key: u128 = 517;
    g.bench_function("baseline_dashmap_get_mut_incr_decr", |b| {
        b.iter(|| {
            *counts.get_mut(black_box(&key)).unwrap() += 1;
            *counts.get_mut(black_box(&key)).unwrap() -= 1;
        })
    });

    g.finish();
}

/// `mut_borrow` + drop, next to an `RwLock` write guard.
fn mut_borrow_bench(c: &mut Criterion) {
    let store = store();
    let owner: OwnedProxy<u64> = store.owned_proxy(42).unwrap();
    let mut g = c.benchmark_group("mut_borrow");

    g.bench_function("mut_borrow_drop", |b| {
        b.iter(|| drop(black_box(mut_borrow(black_box(&owner)).unwrap())))
    });

    let lock = Arc::new(RwLock::new(42u64));
    g.bench_function("baseline_rwlock_write_guard", |b| {
        b.iter(|| drop(black_box(black_box(&lock).write().unwrap())))
    });

    g.finish();
}

/// Resolving a proxy of a small value: cold (through the connector), cached
/// (already resolved), borrow + resolve, and `get_shared` of a value put as
/// bytes (decode-cache hit).
fn resolve(c: &mut Criterion) {
    let store = store();
    let mut g = c.benchmark_group("resolve");

    // Kept undecoded in the memory store (`Value::Local`).
    let local: Proxy<u64> = store.proxy(42).unwrap();
    let local_key = *Proxy::key(&local);
    g.bench_function(BenchmarkId::new("cold", "u64"), |b| {
        b.iter_batched(
            || store.proxy_from_key::<u64>(local_key),
            |p| {
                black_box(*Proxy::resolve(black_box(&p)).unwrap());
                p
            },
            BatchSize::SmallInput,
        )
    });
    let local_vec: Proxy<Vec<u64>> = store.proxy(vec4()).unwrap();
    let local_vec_key = *Proxy::key(&local_vec);
    g.bench_function(BenchmarkId::new("cold", "vec4"), |b| {
        b.iter_batched(
            || store.proxy_from_key::<Vec<u64>>(local_vec_key),
            |p| {
                black_box(Proxy::resolve(black_box(&p)).unwrap().len());
                p
            },
            BatchSize::SmallInput,
        )
    });

    let cached: Proxy<u64> = store.proxy_from_key(local_key);
    Proxy::resolve(&cached).unwrap();
    g.bench_function("cached", |b| {
        b.iter(|| black_box(*Proxy::resolve(black_box(&cached)).unwrap()))
    });

    let owner: OwnedProxy<u64> = store.owned_proxy(42).unwrap();
    g.bench_function("borrow_resolve", |b| {
        b.iter(|| {
            let r = borrow(black_box(&owner)).unwrap();
            black_box(*RefProxy::resolve(&r).unwrap());
            drop(r);
        })
    });

    // Put as encoded bytes: the first read decodes into the cache, every
    // later read is a cache hit.
    let bytes_key = store.put(&42u64).unwrap();
    store.get_shared::<u64>(&bytes_key).unwrap().unwrap();
    g.bench_function("get_shared_bytes_cache_hit", |b| {
        b.iter(|| black_box(store.get_shared::<u64>(black_box(&bytes_key)).unwrap()))
    });

    // The floor of a cold resolve on a keyed store: one map lookup that
    // hands out a clone of an `Arc`.
    let map: DashMap<u128, Arc<u64>> = (0..1024u128).map(|k| (k, Arc::new(42))).collect();
    let key: u128 = 517;
    g.bench_function("baseline_dashmap_get_arc_clone", |b| {
        b.iter(|| black_box(map.get(black_box(&key)).map(|v| v.value().clone())))
    });

    g.finish();
    drop((local, local_vec, cached));
}

/// `update` of an owner after a small local change (copy-on-write), next to
/// replacing an `Arc` behind an `RwLock`.
fn update_bench(c: &mut Criterion) {
    let store = store();
    let mut g = c.benchmark_group("update");

    let mut owner: OwnedProxy<u64> = store.owned_proxy(0).unwrap();
    g.bench_function(BenchmarkId::new("change_update", "u64"), |b| {
        b.iter(|| {
            *owner += 1;
            update(black_box(&mut owner)).unwrap();
        })
    });
    g.bench_function(BenchmarkId::new("change_only", "u64"), |b| {
        b.iter(|| {
            *owner += 1;
            OwnedProxy::discard_changes(black_box(&mut owner));
        })
    });

    let mut owner_vec: OwnedProxy<Vec<u64>> = store.owned_proxy(vec4()).unwrap();
    g.bench_function(BenchmarkId::new("change_update", "vec4"), |b| {
        b.iter(|| {
            owner_vec[0] += 1;
            update(black_box(&mut owner_vec)).unwrap();
        })
    });

    let lock = RwLock::new(Arc::new(0u64));
    g.bench_function("baseline_rwlock_arc_replace", |b| {
        b.iter(|| {
            let next = Arc::new(**black_box(&lock).read().unwrap() + 1);
            drop(std::mem::replace(&mut *lock.write().unwrap(), next));
        })
    });

    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = owned_proxy, borrow_bench, mut_borrow_bench, resolve, update_bench
}
criterion_main!(benches);
