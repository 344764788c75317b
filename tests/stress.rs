//! Many threads borrowing, mutating, updating, dropping and re-creating
//! owners of a small shared set of objects, checking after every step what
//! the connector really holds: never a writer beside readers, and every
//! borrow a thread holds is visible store-side. At the end the store is empty.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use borrowstore::{
    Error, Key, OwnedProxy, RefMutProxy, RefProxy, Store, borrow, mut_borrow, update,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type V = Vec<u64>;

const THREADS: usize = 8;
const OBJECTS: usize = 6;
const STEPS: usize = 20_000;
const MAX_HELD: usize = 3;
const SEED: u64 = 0x5EED_B0BB_0057_0AE5;

type Owners = Arc<Mutex<Vec<Option<OwnedProxy<V>>>>>;

enum Held {
    Read(RefProxy<V>),
    Write(RefMutProxy<V>),
}

impl Held {
    fn key(&self) -> Key {
        match self {
            Held::Read(r) => *RefProxy::key(r),
            Held::Write(w) => *RefMutProxy::key(w),
        }
    }
}

#[derive(Default)]
struct Stats {
    reads: AtomicU64,
    writes: AtomicU64,
    read_refusals: AtomicU64,
    write_refusals: AtomicU64,
    writer_updates: AtomicU64,
    owner_updates: AtomicU64,
    owner_update_refusals: AtomicU64,
    owner_drops: AtomicU64,
    creations: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn lock(owners: &Owners) -> MutexGuard<'_, Vec<Option<OwnedProxy<V>>>> {
    owners.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every borrow this thread holds is what the connector shows.
fn check_held(store: &Store, held: &[Held], ctx: &str) {
    for h in held {
        let key = h.key();
        let i = store.inspect(&key).unwrap().unwrap_or_else(|| {
            panic!("{ctx}: {key} is borrowed by this thread but not stored (or gone)")
        });
        let s = i;
        match h {
            Held::Write(_) => assert!(
                s.writer && s.readers == 0,
                "{ctx}: this thread holds the writer of {key}, store says {s:?}"
            ),
            Held::Read(_) => {
                let mine = held
                    .iter()
                    .filter(|o| matches!(o, Held::Read(_)) && o.key() == key)
                    .count() as u32;
                assert!(
                    s.readers >= mine && !s.writer,
                    "{ctx}: this thread holds {mine} readers of {key}, store says {s:?}"
                );
            }
        }
    }
}

/// Never a writer beside readers, on any object.
fn check_all(store: &Store, ctx: &str) {
    for key in store.keys().unwrap() {
        if let Some(i) = store.inspect(&key).unwrap() {
            let s = i;
            assert!(
                !(s.writer && s.readers > 0),
                "{ctx}: {key} has a writer and {} readers",
                s.readers
            );
        }
    }
}

fn holds_writer(held: &[Held], key: Key) -> bool {
    held.iter()
        .any(|h| matches!(h, Held::Write(_)) && h.key() == key)
}

fn holds_any(held: &[Held], key: Key) -> bool {
    held.iter().any(|h| h.key() == key)
}

fn worker(t: usize, store: &Store, owners: &Owners, stats: &Stats) {
    let mut rng = StdRng::seed_from_u64(SEED ^ (t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut held: Vec<Held> = Vec::new();
    for step in 0..STEPS {
        let ctx = format!("thread {t} step {step} (seed {SEED:#x})");
        let slot = rng.random_range(0..OBJECTS);
        let roll = rng.random_range(0..100);
        match roll {
            // shared borrow
            0..30 if held.len() < MAX_HELD => {
                let guard = lock(owners);
                if let Some(owner) = &guard[slot] {
                    let key = *OwnedProxy::key(owner);
                    let mine = holds_writer(&held, key);
                    match borrow(owner) {
                        Ok(r) => {
                            drop(guard);
                            assert!(!mine, "{ctx}: borrow beside this thread's own writer");
                            bump(&stats.reads);
                            assert_eq!(RefProxy::resolve(&r).unwrap().len(), 4, "{ctx}");
                            held.push(Held::Read(r));
                        }
                        Err(Error::AlreadyMutablyBorrowed { key: k, .. }) if k == key => {
                            bump(&stats.read_refusals);
                        }
                        Err(e) => panic!("{ctx}: borrow failed with {e:?}"),
                    }
                }
            }
            // mutable borrow
            30..45 if held.len() < MAX_HELD => {
                let guard = lock(owners);
                if let Some(owner) = &guard[slot] {
                    let key = *OwnedProxy::key(owner);
                    let mine = holds_any(&held, key);
                    match mut_borrow(owner) {
                        Ok(w) => {
                            drop(guard);
                            assert!(!mine, "{ctx}: writer beside this thread's own borrow");
                            bump(&stats.writes);
                            held.push(Held::Write(w));
                        }
                        Err(Error::AlreadyBorrowed { key: k, .. }) if k == key => {
                            bump(&stats.write_refusals);
                        }
                        Err(e) => panic!("{ctx}: mut_borrow failed with {e:?}"),
                    }
                }
            }
            // end a borrow (a writer maybe with changes, published on drop)
            0..70 if !held.is_empty() => {
                let i = rng.random_range(0..held.len());
                let mut h = held.swap_remove(i);
                if let Held::Write(w) = &mut h
                    && rng.random_bool(0.5)
                {
                    w[2] += 1;
                }
                drop(h);
            }
            // publish through a held writer
            70..80 => {
                if let Some(Held::Write(w)) = held.iter_mut().find(|h| matches!(h, Held::Write(_)))
                {
                    let key = *RefMutProxy::key(w);
                    let before = store.inspect(&key).unwrap().expect("stored");
                    w[0] += 1;
                    let expected = w[0];
                    update(w).unwrap_or_else(|e| panic!("{ctx}: writer update failed: {e:?}"));
                    let after = store.inspect(&key).unwrap().expect("stored");
                    // nobody else can publish while we hold the writer
                    assert_eq!(after.version, before.version + 1, "{ctx}");
                    assert_eq!(RefMutProxy::resolve(w).unwrap()[0], expected, "{ctx}");
                    bump(&stats.writer_updates);
                }
            }
            // update through the owner
            80..88 => {
                let mut guard = lock(owners);
                if let Some(owner) = &mut guard[slot] {
                    let key = *OwnedProxy::key(owner);
                    let mine = holds_any(&held, key);
                    owner[1] += 1;
                    match update(owner) {
                        Ok(()) => {
                            assert!(!mine, "{ctx}: owner update while this thread borrows");
                            assert!(!OwnedProxy::is_modified(owner), "{ctx}");
                            bump(&stats.owner_updates);
                        }
                        Err(Error::AlreadyBorrowed { key: k, .. }) if k == key => {
                            assert!(OwnedProxy::is_modified(owner), "{ctx}: changes lost");
                            bump(&stats.owner_update_refusals);
                        }
                        // The kept changes were made on a version a writer has
                        // since replaced: never published over it.
                        Err(Error::Conflict { key: k }) if k == key => {
                            assert!(OwnedProxy::is_modified(owner), "{ctx}: changes lost");
                            OwnedProxy::discard_changes(owner);
                            bump(&stats.owner_update_refusals);
                        }
                        Err(e) => panic!("{ctx}: owner update failed with {e:?}"),
                    }
                }
            }
            // drop the owner
            88..96 => {
                let mut guard = lock(owners);
                if let Some(owner) = guard[slot].take() {
                    let key = *OwnedProxy::key(&owner);
                    drop(owner);
                    if holds_any(&held, key) {
                        let i = store.inspect(&key).unwrap().unwrap_or_else(|| {
                            panic!("{ctx}: owner drop evicted {key} while this thread borrows it")
                        });
                        assert!(!i.owner, "{ctx}: {i:?}");
                    }
                    bump(&stats.owner_drops);
                }
            }
            // create a new owner in an empty slot
            _ => {
                let mut guard = lock(owners);
                if guard[slot].is_none() {
                    guard[slot] = Some(store.owned_proxy(vec![0u64; 4]).unwrap());
                    bump(&stats.creations);
                }
            }
        }
        check_held(store, &held, &ctx);
        if step % 4 == 0 {
            check_all(store, &ctx);
        }
        // readers always see a whole value, even after their owner is gone
        if let Some(Held::Read(r)) = held.first() {
            assert_eq!(RefProxy::resolve(r).unwrap().len(), 4, "{ctx}");
        }
    }
    drop(held);
}

#[test]
fn random_borrows_keep_the_rules_and_leave_nothing_behind() {
    let store = Store::memory(format!("stress-{}", std::process::id()));
    let owners: Owners = Arc::new(Mutex::new(
        (0..OBJECTS)
            .map(|_| Some(store.owned_proxy(vec![0u64; 4]).unwrap()))
            .collect(),
    ));
    let stats = Stats::default();

    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (store, owners, stats) = (&store, &owners, &stats);
            s.spawn(move || worker(t, store, owners, stats));
        }
    });

    // every borrow is gone: each live owner's object is idle, and the only
    // objects left are those with a live owner
    let mut guard = lock(&owners);
    let live: Vec<Key> = guard
        .iter()
        .flatten()
        .map(|o| *OwnedProxy::key(o))
        .collect();
    let mut keys = store.keys().unwrap();
    keys.sort();
    let mut expected = live.clone();
    expected.sort();
    assert_eq!(
        keys, expected,
        "objects without an owner or borrow were left"
    );
    for key in &live {
        let s = store
            .inspect(key)
            .unwrap()
            .expect("stored (an object being evicted has no info)");
        assert!(s.owner && s.readers == 0 && !s.writer, "{key}: {s:?}");
    }
    guard.clear();
    drop(guard);
    store.flush().unwrap();
    assert!(store.keys().unwrap().is_empty());

    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    eprintln!(
        "reads {} writes {} read refusals {} write refusals {} writer updates {} \
         owner updates {} refused {} owner drops {} creations {}",
        get(&stats.reads),
        get(&stats.writes),
        get(&stats.read_refusals),
        get(&stats.write_refusals),
        get(&stats.writer_updates),
        get(&stats.owner_updates),
        get(&stats.owner_update_refusals),
        get(&stats.owner_drops),
        get(&stats.creations),
    );
    // the run really exercised contention
    for (what, c) in [
        ("reads", &stats.reads),
        ("writes", &stats.writes),
        ("read refusals", &stats.read_refusals),
        ("write refusals", &stats.write_refusals),
        ("writer updates", &stats.writer_updates),
        ("owner updates", &stats.owner_updates),
        ("owner update refusals", &stats.owner_update_refusals),
        ("owner drops", &stats.owner_drops),
    ] {
        assert!(get(c) > 0, "no {what} happened");
    }
}
