//! Memory workloads. Each runs in a fresh child process (`bench-harness
//! child NAME`), so its RSS readings see nothing but the workload.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use borrowstore::{OwnedProxy, Store, borrow, submit};
use dashmap::DashMap;
use tokio::runtime::Handle;

use crate::measure::{Record, peak_rss, reset_peak_rss, rss};

const MIB: f64 = 1024.0 * 1024.0;

fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime")
}

/// A `size`-byte value on the memory store, borrowed by `tasks` tasks at
/// once (all borrows live together), each reading it: peak RSS over the
/// RSS before the value existed, as a multiple of the value's size.
pub fn peak_value(size: usize, tasks: usize) {
    let rt = two_workers();
    let store = Store::memory("bench-harness-peak");
    // Warm up the store and the runtime, so they are part of the baseline.
    drop(store.owned_proxy(vec![1u8; 16]).expect("owned_proxy"));
    rt.block_on(async { tokio::task::yield_now().await });

    let before = rss();
    let reset = reset_peak_rss();
    let hwm_before = peak_rss();

    // Non-zero bytes: every page is written, so all of it is resident.
    let owner: OwnedProxy<Vec<u8>> = store.owned_proxy(vec![1u8; size]).expect("owned_proxy");
    let key = *OwnedProxy::key(&owner);
    let barrier = Arc::new(tokio::sync::Barrier::new(tasks + 1));
    let (sum, readers) = rt.block_on(async {
        let handle = Handle::current();
        let mut running = Vec::with_capacity(tasks);
        for i in 0..tasks {
            let r = borrow(&owner).expect("borrow");
            let barrier = Arc::clone(&barrier);
            running.push(submit(&handle, r, move |r| async move {
                // Every task holds its borrow until all of them do.
                barrier.wait().await;
                let v: &Vec<u8> = &r;
                u64::from(v[(i * 99_991) % v.len()]) + v.len() as u64
            }));
        }
        let readers = store
            .inspect(&key)
            .expect("inspect")
            .map_or(0, |i| i.readers);
        barrier.wait().await;
        let mut sum = 0u64;
        for h in running {
            sum += h.await.expect("task");
        }
        (sum, readers)
    });
    black_box(sum);
    let peak = peak_rss();
    drop(owner);
    store.flush().expect("flush");
    let left = store.keys().expect("keys").len();

    let delta = peak.saturating_sub(before);
    let ratio = delta as f64 / size as f64;
    eprintln!(
        "  peak_rss_100mb_1000_tasks              memory  borrowstore  {ratio:>9.3} x value ({:.1} MiB over baseline)",
        delta as f64 / MIB
    );
    Record::new(
        "peak_rss_100mb_1000_tasks",
        "memory",
        "borrowstore",
        ("peak_rss_ratio", ratio, "x"),
        tasks as u64,
    )
    .notes(format!(
        "fresh process: (VmHWM after - VmRSS before) / value size; a {size}-byte Vec<u8> owned on \
         the memory store, {tasks} submit()ed tokio tasks (2 workers) each with its own borrow, all \
         live at once (barrier), each reads it"
    ))
    .with("value_bytes", size as u64)
    .with("rss_before", before)
    .with("hwm_before", hwm_before)
    .with("hwm_reset", reset)
    .with("peak_rss", peak)
    .with("peak_delta", delta)
    .with("readers_when_all_live", readers)
    .with("keys_left_after_drop", left as u64)
    .emit();
}

/// `n` live owned objects (`u64`) on the memory store: store overhead per
/// object = RSS growth / n − the 8-byte payload − the handle's slot in the
/// `Vec` that keeps it alive.
pub fn live_objects(n: usize) {
    let store = Store::memory("bench-harness-live");
    drop(store.owned_proxy(0u64).expect("owned_proxy"));
    let handle_size = std::mem::size_of::<OwnedProxy<u64>>();

    let before = rss();
    let start = Instant::now();
    let mut owners: Vec<OwnedProxy<u64>> = Vec::with_capacity(n);
    for i in 0..n {
        owners.push(store.owned_proxy(i as u64).expect("owned_proxy"));
    }
    let took = start.elapsed();
    let after = rss();
    let keys = store.keys().expect("keys").len();

    let per_object = after.saturating_sub(before) as f64 / n as f64;
    let overhead = per_object - 8.0 - handle_size as f64;
    drop(owners);
    store.flush().expect("flush");
    let left = store.keys().expect("keys").len();
    eprintln!(
        "  live_objects                           memory  borrowstore  {overhead:>9.1} B/object store overhead ({per_object:.1} B total)"
    );
    Record::new(
        "live_objects",
        "memory",
        "borrowstore",
        ("bytes_per_object", overhead, "B"),
        n as u64,
    )
    .notes(format!(
        "fresh process: {n} OwnedProxy<u64> kept in a Vec; (VmRSS after - before) / n - 8 B payload \
         - {handle_size} B handle slot"
    ))
    .with("rss_before", before)
    .with("rss_after", after)
    .with("total_bytes_per_object", per_object)
    .with("handle_bytes", handle_size as u64)
    .with("keys_in_store", keys as u64)
    .with("keys_left_after_drop", left as u64)
    .with("ns_per_create", took.as_nanos() as f64 / n as f64)
    .emit();
}

/// The reference for `live_objects`: `n` entries in a
/// `DashMap<u128, Arc<u64>>` (a key and a shared value, nothing else).
pub fn live_dashmap(n: usize) {
    let before = rss();
    let map: DashMap<u128, Arc<u64>> = DashMap::new();
    for i in 0..n as u128 {
        map.insert(
            i.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
            Arc::new(i as u64),
        );
    }
    let after = rss();
    let per_object = after.saturating_sub(before) as f64 / n as f64;
    let overhead = per_object - 8.0;
    black_box(map.len());
    eprintln!(
        "  live_objects_dashmap                   -       reference    {overhead:>9.1} B/object"
    );
    Record::new(
        "live_objects",
        "-",
        "reference",
        ("bytes_per_object", overhead, "B"),
        n as u64,
    )
    .notes(format!(
        "fresh process: {n} entries in a DashMap<u128, Arc<u64>>; (VmRSS after - before) / n - 8 B \
         payload"
    ))
    .with("rss_before", before)
    .with("rss_after", after)
    .with("total_bytes_per_object", per_object)
    .emit();
}

/// `n` cycles of: create an owner, borrow it, `submit` a task with the
/// borrow, drop the owner (eviction deferred to the task's end), await.
/// Then the store must be empty, and RSS must not grow between cycle
/// `checkpoint` and cycle `n`.
pub fn submit_cycles(n: u64, checkpoint: u64) {
    let rt = two_workers();
    let store = Store::memory("bench-harness-cycles");
    let task_store = store.clone();
    let start = Instant::now();
    let (rss_checkpoint, keys_checkpoint) = rt
        .block_on(rt.spawn(async move {
            let store = task_store;
            let handle = Handle::current();
            let mut at_checkpoint = (0u64, 0usize);
            for i in 0..n {
                let owner = store.owned_proxy(i).expect("owned_proxy");
                let r = borrow(&owner).expect("borrow");
                let h = submit(&handle, r, |r| async move { *r });
                drop(owner);
                black_box(h.await.expect("task"));
                if i + 1 == checkpoint {
                    store.flush_async().await.expect("flush");
                    at_checkpoint = (rss(), store.keys().expect("keys").len());
                }
            }
            at_checkpoint
        }))
        .expect("bench task");
    let took = start.elapsed();
    store.flush().expect("flush");
    let keys_left = store.keys().expect("keys").len();
    let rss_end = rss();
    let growth = rss_end as i64 - rss_checkpoint as i64;
    eprintln!(
        "  submit_cycles                          memory  borrowstore  {keys_left} keys left, RSS growth {:.2} MiB from cycle {checkpoint} to {n}",
        growth as f64 / MIB
    );
    let notes = format!(
        "fresh process, 2-worker runtime: {n} x (owned_proxy(u64), borrow, submit a task with the \
         borrow, drop the owner, await); store.keys() after the last cycle; VmRSS after \
         cycle {checkpoint} and after cycle {n}"
    );
    Record::new(
        "submit_cycles_keys_left",
        "memory",
        "borrowstore",
        ("keys_left", keys_left as f64, "count"),
        n,
    )
    .notes(notes.clone())
    .with("keys_at_checkpoint", keys_checkpoint as u64)
    .with("ns_per_cycle", took.as_nanos() as f64 / n as f64)
    .emit();
    Record::new(
        "submit_cycles_rss_growth",
        "memory",
        "borrowstore",
        ("rss_growth_bytes", growth as f64, "B"),
        n,
    )
    .notes(notes)
    .with("checkpoint", checkpoint)
    .with("rss_checkpoint", rss_checkpoint)
    .with("rss_end", rss_end)
    .emit();
}

/// Whether a task's borrow is still held once its result is in: `n` ×
/// (owner, borrow, `submit` a task with it, await, then `mut_borrow`).
pub fn held_after_join(n: u64) {
    let rt = two_workers();
    let store = Store::memory("bench-harness-held");
    let task_store = store.clone();
    let held = rt
        .block_on(rt.spawn(async move {
            let handle = Handle::current();
            let mut held = 0u64;
            for i in 0..n {
                let owner = task_store.owned_proxy(i).expect("owned_proxy");
                let r = borrow(&owner).expect("borrow");
                black_box(
                    submit(&handle, r, |r| async move { *r })
                        .await
                        .expect("task"),
                );
                match borrowstore::mut_borrow(&owner) {
                    Ok(w) => drop(w),
                    Err(_) => held += 1,
                }
            }
            held
        }))
        .expect("bench task");
    store.flush().expect("flush");
    let left = store.keys().expect("keys").len();
    eprintln!(
        "  borrow_held_after_join                 memory  borrowstore  {held} of {n} borrows still held after the handle resolved; {left} objects left"
    );
    Record::new(
        "borrow_held_after_join",
        "memory",
        "borrowstore",
        ("count", held as f64, "count"),
        n,
    )
    .notes(format!(
        "{n} x (owned_proxy, borrow, submit to a 2-worker tokio runtime, await the handle, then \
         mut_borrow(&owner)): cycles where mut_borrow was refused"
    ))
    .with("keys_left_at_end", left as u64)
    .emit();
}
