//! The per-operation workloads of one store (memory, file or Redis), on a
//! small value (`u64`), and the physical references in plain Rust.

use std::hint::black_box;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use borrowstore::{OwnedProxy, Proxy, RefProxy, Store, borrow, mut_borrow};
use dashmap::DashMap;

use crate::measure::{Budget, emit_time, time, time_loop};

/// Live shared borrows held during `borrow_drop_live16k`.
pub const LIVE_BORROWS: usize = 16_384;

/// Fresh proxies are made (untimed) in chunks of this many for cold resolves.
const COLD_CHUNK: u64 = 1 << 16;

/// Waits for the store's queued releases, so a round's time includes them.
fn flush(store: &Store) {
    store.flush().expect("flush");
}

/// `owned_proxy` create + drop, `borrow` + drop (and with 16 k live
/// borrows on the memory and file stores), `mut_borrow` + drop, and resolving a
/// proxy cold and cached, all of a `u64`.
///
/// On file and Redis stores every round ends with `store.flush()`, inside
/// the timed part: the queued releases of the round are paid for.
pub fn small_value_set(store: &Store, label: &'static str, budget: Budget) {
    let imp = "borrowstore";
    let flush_note = if label == "memory" {
        ""
    } else {
        "; each round ends with store.flush() (queued releases applied), timed"
    };

    let t = time(budget, |n| {
        let start = Instant::now();
        for i in 0..n {
            drop(black_box(
                store.owned_proxy(black_box(i)).expect("owned_proxy"),
            ));
        }
        flush(store);
        start.elapsed()
    });
    emit_time(
        "owned_proxy_create_drop",
        label,
        imp,
        t,
        format!("store.owned_proxy(u64) + drop (evicts){flush_note}"),
    );

    let owner: OwnedProxy<u64> = store.owned_proxy(42).expect("owned_proxy");
    // Resolve once so every borrow below finds the value current.
    black_box(*OwnedProxy::resolve(&owner).expect("resolve"));
    let borrow_round = |n: u64| {
        let start = Instant::now();
        for _ in 0..n {
            drop(black_box(borrow(black_box(&owner)).expect("borrow")));
        }
        flush(store);
        start.elapsed()
    };
    let t = time(budget, borrow_round);
    emit_time(
        "borrow_drop",
        label,
        imp,
        t,
        format!("borrow(&owner) + drop of a u64 owner, no other borrow{flush_note}"),
    );

    if label == "memory" || label == "file" {
        let live: Vec<RefProxy<u64>> = (0..LIVE_BORROWS)
            .map(|_| borrow(&owner).expect("borrow"))
            .collect();
        let t = time(budget, borrow_round);
        emit_time(
            "borrow_drop_live16k",
            label,
            imp,
            t,
            format!("borrow(&owner) + drop while {LIVE_BORROWS} other borrows of it are live"),
        );
        drop(live);
    }

    let t = time(budget, |n| {
        let start = Instant::now();
        for _ in 0..n {
            drop(black_box(
                mut_borrow(black_box(&owner)).expect("mut_borrow"),
            ));
        }
        flush(store);
        start.elapsed()
    });
    emit_time(
        "mut_borrow_drop",
        label,
        imp,
        t,
        format!("mut_borrow(&owner) + drop, unchanged{flush_note}"),
    );
    drop(owner);

    // A plain object (no owner) that the proxies below resolve.
    let plain: Proxy<u64> = store.proxy(42).expect("proxy");
    let key = *Proxy::key(&plain);
    let t = time(budget, |n| {
        let mut took = Duration::ZERO;
        let mut left = n;
        while left > 0 {
            let chunk = left.min(COLD_CHUNK);
            left -= chunk;
            let fresh: Vec<Proxy<u64>> = (0..chunk).map(|_| store.proxy_from_key(key)).collect();
            let start = Instant::now();
            for p in &fresh {
                black_box(*Proxy::resolve(black_box(p)).expect("resolve"));
            }
            took += start.elapsed();
            drop(fresh);
        }
        took
    });
    let cold_note = if label == "memory" {
        "first Proxy::resolve of a fresh proxy_from_key proxy (made untimed): a connector lookup"
    } else {
        "first Proxy::resolve of a fresh proxy_from_key proxy (made untimed): a version-checked \
         fetch; the process's decoded-value cache is current, so no value moves"
    };
    emit_time("resolve_cold", label, imp, t, cold_note);

    let cached: Proxy<u64> = store.proxy_from_key(key);
    black_box(*Proxy::resolve(&cached).expect("resolve"));
    let t = time_loop(budget, || {
        black_box(*Proxy::resolve(black_box(&cached)).expect("resolve"));
    });
    emit_time(
        "resolve_cached",
        label,
        imp,
        t,
        "Proxy::resolve of a proxy already resolved",
    );
    drop((plain, cached));
    store.evict(&key).expect("evict");
    flush(store);
}

/// Plain Rust doing the same kind of work without a store: the physical
/// floor the memory-store figures are compared with.
pub fn references(budget: Budget) {
    let imp = "reference";

    let t = time_loop(budget, || drop(black_box(Arc::new(black_box(42u64)))));
    emit_time("arc_new_drop", "-", imp, t, "Arc::new(u64) + drop");

    let lock = Arc::new(RwLock::new(42u64));
    let t = time_loop(budget, || {
        drop(black_box(black_box(&lock).read().expect("read")));
    });
    emit_time(
        "rwlock_read_guard",
        "-",
        imp,
        t,
        "Arc<RwLock<u64>>: read guard acquire + drop",
    );

    let t = time_loop(budget, || {
        drop(black_box(black_box(&lock).write().expect("write")));
    });
    emit_time(
        "rwlock_write_guard",
        "-",
        imp,
        t,
        "Arc<RwLock<u64>>: write guard acquire + drop",
    );

    // A map shaped like a keyed store: 128-bit keys, `Arc` values.
    let map: DashMap<u128, Arc<u64>> = DashMap::new();
    let mut next: u128 = 0;
    let t = time_loop(budget, || {
        next = next.wrapping_add(0x9E37_79B9_7F4A_7C15);
        map.insert(black_box(next), Arc::new(42));
        black_box(map.remove(&next));
    });
    emit_time(
        "dashmap_insert_remove",
        "-",
        imp,
        t,
        "DashMap<u128, Arc<u64>>: insert + remove",
    );

    // Counting a borrow in and out of a keyed state table.
    let counts: DashMap<u128, u64> = (0..1024u128).map(|k| (k, 0)).collect();
    let key: u128 = 517;
    let t = time_loop(budget, || {
        *counts.get_mut(black_box(&key)).expect("key") += 1;
        *counts.get_mut(black_box(&key)).expect("key") -= 1;
    });
    emit_time(
        "dashmap_get_mut_incr_decr",
        "-",
        imp,
        t,
        "DashMap<u128, u64>: get_mut + increment, get_mut + decrement",
    );

    let values: DashMap<u128, Arc<u64>> = (0..1024u128).map(|k| (k, Arc::new(42))).collect();
    let t = time_loop(budget, || {
        black_box(values.get(black_box(&key)).map(|v| v.value().clone()));
    });
    emit_time(
        "dashmap_get_arc_clone",
        "-",
        imp,
        t,
        "DashMap<u128, Arc<u64>>: get + Arc clone (floor of a keyed cold resolve)",
    );
}
