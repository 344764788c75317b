//! Lifetimes (issue 5): ProxyStore's lifetime tests — cleanup, idempotent
//! close, errors after close, lease expiry, extension and shortening,
//! static cleanup — plus shared ownership with owners and scopes, and a
//! close racing creation.
//!
//! Every check looks at what the connector really holds, after
//! `store.flush()`. The behavioural tests run against the memory, file and
//! Redis stores.

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use borrowstore::{
    ContextLifetime, Error, Key, LeaseLifetime, Lifetime, LivenessScope, OwnedProxy,
    StaticLifetime, Store, borrow,
};
use borrowstore_testkit::{Suite, contents, exists, holders, key, on_every_store, poll_until, set};

/// Names this suite's stores and directories.
const SUITE: Suite = borrowstore_testkit::suite!("lifetimes");

on_every_store!(SUITE;
    context_lifetime_cleanup,
    close_is_idempotent,
    errors_after_close_write_nothing,
    drop_closes,
    lifetime_shares_ownership_with_an_owner_and_a_scope,
    close_defers_eviction_while_borrowed,
    adding_twice_holds_twice,
    lifetime_spans_stores,
    lease_expiry,
    lease_extension,
    lease_extension_by_duration_max_saturates,
    lease_shortening,
    lease_in_the_past_expires_at_once,
    lease_close_and_done,
    close_racing_creation_leaves_nothing,
);

// -------------------------------------------------------- ContextLifetime --

/// ProxyStore `test_context_lifetime_cleanup`: everything the lifetime
/// holds is evicted when it closes; what it does not hold stays.
fn context_lifetime_cleanup(store: Store) {
    let outside = store.put(&"outside".to_owned()).unwrap();
    let lt = ContextLifetime::new(&store);
    let k1 = store.put_in(&lt, &"k1".to_owned()).unwrap();
    let p1 = store.proxy_in(&lt, vec![1u32, 2]).unwrap();
    let k2 = store.put(&"k2".to_owned()).unwrap();
    lt.add_key(k2).unwrap();
    let p2 = store.proxy(3u64).unwrap();
    lt.add_proxy(&p2).unwrap();
    let k3 = store.put(&"k3".to_owned()).unwrap();
    lt.add_keys([k3]).unwrap();
    assert_eq!(lt.len(), 5);
    for k in [k1, key(&p1), k2, key(&p2), k3] {
        assert_eq!(holders(&store, &k), 1);
    }
    assert_eq!(*p1, vec![1, 2]);
    assert!(!lt.done());

    lt.close().unwrap();
    assert!(lt.done());
    assert!(lt.is_empty());
    assert_eq!(contents(&store), set(&[outside]));
}

/// ProxyStore: closing twice is fine, and so is dropping after closing.
fn close_is_idempotent(store: Store) {
    let lt = ContextLifetime::new(&store);
    let k = store.put_in(&lt, &1u8).unwrap();
    lt.close().unwrap();
    lt.close().unwrap();
    assert!(lt.done());
    drop(lt);
    assert!(!exists(&store, &k));
    assert!(contents(&store).is_empty());
}

/// ProxyStore: using a closed lifetime raises; here it is
/// `Error::LifetimeEnded`, and nothing is written or claimed.
fn errors_after_close_write_nothing(store: Store) {
    let lt = ContextLifetime::new(&store);
    lt.close().unwrap();
    let plain = store.put(&"plain".to_owned()).unwrap();
    let before = contents(&store);

    assert!(matches!(store.put_in(&lt, &1u8), Err(Error::LifetimeEnded)));
    assert!(matches!(
        store.proxy_in(&lt, 2u8),
        Err(Error::LifetimeEnded)
    ));
    assert!(matches!(lt.add_key(plain), Err(Error::LifetimeEnded)));
    let p = store.proxy_from_key::<String>(plain);
    assert!(matches!(lt.add_proxy(&p), Err(Error::LifetimeEnded)));

    assert_eq!(contents(&store), before);
    assert_eq!(holders(&store, &plain), 0);
    assert!(lt.is_empty());
}

fn drop_closes(store: Store) {
    let k = {
        let lt = ContextLifetime::new(&store);
        store.put_in(&lt, &1u8).unwrap()
    };
    assert!(!exists(&store, &k));
}

/// One ownership model: an object held by a lifetime, owned by an
/// `OwnedProxy` and managed by a scope lives until all three are gone.
fn lifetime_shares_ownership_with_an_owner_and_a_scope(store: Store) {
    let lt = ContextLifetime::new(&store);
    let scope = LivenessScope::new();
    let owner = scope.open(|| store.owned_proxy(vec![1u64]).unwrap());
    let k = *OwnedProxy::key(&owner);
    lt.add_proxy(&owner).unwrap();
    assert_eq!(holders(&store, &k), 2);

    lt.close().unwrap();
    assert!(exists(&store, &k));
    drop(owner);
    assert!(exists(&store, &k));
    scope.release().unwrap();
    assert!(!exists(&store, &k));
}

fn close_defers_eviction_while_borrowed(store: Store) {
    let lt = ContextLifetime::new(&store);
    let owner = store.owned_proxy(vec![5u64]).unwrap();
    let k = *OwnedProxy::key(&owner);
    lt.add_proxy(&owner).unwrap();
    let r = borrow(&owner).unwrap();
    drop(owner);
    lt.close().unwrap();
    assert!(exists(&store, &k), "references are always valid");
    assert_eq!(*r, vec![5]);
    drop(r);
    assert!(!exists(&store, &k));
}

fn adding_twice_holds_twice(store: Store) {
    let (a, b) = (ContextLifetime::new(&store), ContextLifetime::new(&store));
    let k = store.put(&1u8).unwrap();
    a.add_key(k).unwrap();
    a.add_key(k).unwrap();
    b.add_key(k).unwrap();
    assert_eq!(holders(&store, &k), 3);
    a.close().unwrap();
    assert_eq!(holders(&store, &k), 1);
    b.close().unwrap();
    assert!(!exists(&store, &k));
}

/// A lifetime may hold objects of several stores (ProxyStore's `store=`
/// argument): `add_proxy` uses the proxy's own store.
fn lifetime_spans_stores(store: Store) {
    let other = SUITE.memory_store();
    let lt = ContextLifetime::new(&store);
    let here = store.put_in(&lt, &1u8).unwrap();
    let there = other.proxy(2u8).unwrap();
    lt.add_proxy(&there).unwrap();
    let also_there = other.put_in(&lt, &3u8).unwrap();
    lt.close().unwrap();
    assert!(!exists(&store, &here));
    assert!(!exists(&other, &key(&there)));
    assert!(!exists(&other, &also_there));
}

/// Objects that were added before the close are evicted by it, creations
/// that lose the race fail with `LifetimeEnded` and leave nothing behind:
/// the store ends up empty either way.
fn close_racing_creation_leaves_nothing(store: Store) {
    for _ in 0..5 {
        let lt = ContextLifetime::new(&store);
        let stop = AtomicBool::new(false);
        let created = AtomicU64::new(0);
        let made = std::thread::scope(|ts| {
            let creators: Vec<_> = (0..2)
                .map(|_| {
                    ts.spawn(|| {
                        let mut made = Vec::new();
                        let mut ended = false;
                        while !ended && !stop.load(Ordering::Relaxed) {
                            match store.put_in(&lt, &7u8) {
                                Ok(k) => {
                                    made.push(k);
                                    created.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(Error::LifetimeEnded) => ended = true,
                                Err(e) => panic!("{e}"),
                            }
                            match store.proxy_in(&lt, 8u8) {
                                Ok(p) => made.push(key(&p)),
                                Err(Error::LifetimeEnded) => ended = true,
                                Err(e) => panic!("{e}"),
                            }
                        }
                        made
                    })
                })
                .collect();
            // Close while both creators are busy.
            assert!(
                poll_until(Duration::from_secs(20), || {
                    created.load(Ordering::Relaxed) >= 8
                })
                .is_some()
            );
            lt.close().unwrap();
            std::thread::sleep(Duration::from_millis(5));
            stop.store(true, Ordering::Relaxed);
            creators
                .into_iter()
                .flat_map(|c| c.join().unwrap())
                .collect::<Vec<_>>()
        });
        assert!(!made.is_empty());
        assert!(
            contents(&store).is_empty(),
            "{} objects left",
            contents(&store).len()
        );
    }
}

// --------------------------------------------------------- LeaseLifetime --

/// ProxyStore `test_lease_lifetime`: the objects are evicted when the
/// lease expires, not before.
fn lease_expiry(store: Store) {
    let lease = LeaseLifetime::new(&store, Duration::from_millis(800));
    let k = store.put_in(&lease, &1u8).unwrap();
    let p = store.proxy(2u8).unwrap();
    lease.add_proxy(&p).unwrap();
    assert!(!lease.done());
    assert!(exists(&store, &k));
    assert!(poll_until(Duration::from_secs(10), || lease.done()).is_some());
    assert!(!exists(&store, &k));
    assert!(!exists(&store, &key(&p)));
    assert!(matches!(
        store.put_in(&lease, &3u8),
        Err(Error::LifetimeEnded)
    ));
    assert!(contents(&store).is_empty());
}

/// ProxyStore `test_lease_lifetime_extend`: extending keeps the objects
/// past the original expiry.
fn lease_extension(store: Store) {
    let start = Instant::now();
    let lease = LeaseLifetime::new(&store, Duration::from_millis(300));
    let k = store.put_in(&lease, &1u8).unwrap();
    lease.extend(Duration::from_millis(1700)).unwrap();
    assert!(lease.remaining() > Duration::from_millis(1700));
    // Past the original expiry: still there.
    std::thread::sleep(Duration::from_millis(600).saturating_sub(start.elapsed()));
    assert!(!lease.done());
    assert!(exists(&store, &k));
    assert!(poll_until(Duration::from_secs(15), || lease.done()).is_some());
    assert!(start.elapsed() >= Duration::from_millis(2000));
    assert!(!exists(&store, &k));
    assert!(matches!(
        lease.extend(Duration::from_secs(1)),
        Err(Error::LifetimeEnded)
    ));
}

/// Extending by more than an `Instant` can hold saturates (as `new` and
/// `expire_in` do): the lease lasts practically forever. It used to keep its
/// old expiry, so the objects were evicted on time although `extend` said
/// `Ok`.
fn lease_extension_by_duration_max_saturates(store: Store) {
    const A_CENTURY_LESS_A_DAY: Duration = Duration::from_secs((100 * 365 - 1) * 24 * 3600);
    let lease = LeaseLifetime::new(&store, Duration::from_millis(200));
    let k = store.put_in(&lease, &1u8).unwrap();
    lease.extend(Duration::MAX).unwrap();
    assert!(
        lease.remaining() > A_CENTURY_LESS_A_DAY,
        "remaining {:?}",
        lease.remaining()
    );
    assert!(lease.expiry() > SystemTime::now() + A_CENTURY_LESS_A_DAY);
    // Past the original expiry: still there.
    std::thread::sleep(Duration::from_millis(600));
    assert!(!lease.done());
    assert!(exists(&store, &k));
    // Saturated leases stay saturated, and never get shorter by extending.
    let before = lease.expiry();
    lease.extend(Duration::MAX).unwrap();
    lease.extend(Duration::from_secs(1)).unwrap();
    assert!(lease.expiry() >= before);
    // A lease made with `Duration::MAX` can be extended too.
    let forever = LeaseLifetime::new(&store, Duration::MAX);
    forever.extend(Duration::MAX).unwrap();
    assert!(forever.remaining() > A_CENTURY_LESS_A_DAY);
    // And shortening still works afterwards.
    lease.expire_in(Duration::from_millis(50)).unwrap();
    assert!(poll_until(Duration::from_secs(10), || lease.done()).is_some());
    assert!(!exists(&store, &k));
    forever.close().unwrap();
}

/// Shortening takes effect at the new time (ProxyStore ignores it until
/// the old expiry).
fn lease_shortening(store: Store) {
    let start = Instant::now();
    let lease = LeaseLifetime::new(&store, Duration::from_secs(3600));
    let k = store.put_in(&lease, &1u8).unwrap();
    lease
        .set_expiry(SystemTime::now() + Duration::from_millis(200))
        .unwrap();
    assert!(lease.remaining() <= Duration::from_millis(200));
    assert!(poll_until(Duration::from_secs(10), || lease.done()).is_some());
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(!exists(&store, &k));

    // expire_in, and a later extension of a shortened lease.
    let lease = LeaseLifetime::new(&store, Duration::from_secs(3600));
    let k = store.put_in(&lease, &2u8).unwrap();
    lease.expire_in(Duration::from_millis(200)).unwrap();
    lease.extend(Duration::from_millis(1000)).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        exists(&store, &k),
        "the extension after the shortening counts"
    );
    assert!(poll_until(Duration::from_secs(10), || lease.done()).is_some());
    assert!(!exists(&store, &k));
}

fn lease_in_the_past_expires_at_once(store: Store) {
    let lease = LeaseLifetime::until(&store, SystemTime::now() - Duration::from_secs(1));
    assert!(poll_until(Duration::from_secs(10), || lease.done()).is_some());
    assert!(matches!(
        store.put_in(&lease, &1u8),
        Err(Error::LifetimeEnded)
    ));
    assert!(contents(&store).is_empty());
}

fn lease_close_and_done(store: Store) {
    let lease = LeaseLifetime::new(&store, Duration::from_secs(3600));
    let k = store.put(&1u8).unwrap();
    lease.add_key(k).unwrap();
    // Dropping the handle does not end a lease; closing does.
    let other = LeaseLifetime::new(&store, Duration::from_secs(3600));
    let kept = store.put_in(&other, &2u8).unwrap();
    drop(other);
    lease.close().unwrap();
    lease.close().unwrap();
    assert!(lease.done());
    assert!(!exists(&store, &k));
    assert!(exists(&store, &kept));
    assert!(matches!(
        lease.set_expiry(SystemTime::now() + Duration::from_secs(1)),
        Err(Error::LifetimeEnded)
    ));
    store.evict(&kept).unwrap();
}

#[test]
fn many_leases_expire_in_deadline_order() {
    let store = SUITE.memory_store();
    let start = Instant::now();
    let leases: Vec<(LeaseLifetime, Key, u64)> = (0..50u64)
        .rev()
        .map(|i| {
            let ms = 50 + 10 * i;
            let lease = LeaseLifetime::new(&store, Duration::from_millis(ms));
            let k = store.put_in(&lease, &i).unwrap();
            (lease, k, ms)
        })
        .collect();
    assert!(
        poll_until(Duration::from_secs(20), || leases
            .iter()
            .all(|(l, _, _)| l.done()))
        .is_some()
    );
    for (lease, k, ms) in &leases {
        assert!(lease.done());
        assert!(!exists(&store, k));
        assert!(start.elapsed() >= Duration::from_millis(*ms));
    }
    assert!(contents(&store).is_empty());
}

/// A lifetime with 10,000 objects closes on a 256 KiB stack.
#[test]
fn a_lifetime_of_10000_objects_closes_on_a_small_stack() {
    let store = SUITE.memory_store();
    let lt = ContextLifetime::new(&store);
    for i in 0..10_000u64 {
        store.put_in(&lt, &i).unwrap();
    }
    assert_eq!(contents(&store).len(), 10_000);
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || lt.close().unwrap())
        .unwrap()
        .join()
        .expect("close overflowed a 256 KiB stack");
    assert!(contents(&store).is_empty());
}

// ------------------------------------------------------- StaticLifetime --

/// ProxyStore static lifetime cleanup. The static lifetime is process-wide
/// and closable once, so this is the only test of this binary that uses
/// it (the child processes below have their own).
#[test]
fn static_lifetime_cleanup_and_close_once() {
    let (mem, file) = (SUITE.memory_store(), SUITE.file_store());
    let st = StaticLifetime::get();
    assert!(std::ptr::eq(st, StaticLifetime::get()));
    mem.put_in(st, &1u8).unwrap();
    file.put_in(st, &2u8).unwrap();
    let c = mem.put(&3u8).unwrap();
    st.add_key(&mem, c).unwrap();
    let d = file.proxy(4u8).unwrap();
    st.add_proxy(&d).unwrap();
    assert_eq!(st.len(), 4);
    assert!(!st.done());

    st.close().unwrap();
    assert!(st.done());
    assert!(contents(&mem).is_empty());
    assert!(contents(&file).is_empty());
    st.close().unwrap();
    assert!(matches!(mem.put_in(st, &5u8), Err(Error::LifetimeEnded)));
    assert!(matches!(
        st.add_key(&mem, mem.put(&6u8).unwrap()),
        Err(Error::LifetimeEnded)
    ));
    assert_eq!(contents(&mem).len(), 1);
}

// -------------------------------------------------------- child processes --

const CHILD_ENV: &str = "BORROWSTORE_LIFETIMES_CHILD";

/// The child half of the process tests (does nothing unless started by
/// them with `CHILD_ENV` set to `<mode> <store url>`). It prints the keys it
/// made, then returns without closing anything.
#[test]
fn child_process_lifetimes() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (mode, url) = spec.split_once(' ').unwrap();
    let store = Store::open(url).unwrap();
    match mode {
        "static" => {
            let k = store
                .put_in(StaticLifetime::get(), &"static".to_owned())
                .unwrap();
            println!("@@KEY {k}");
        }
        "exit_guard" => {
            let _guard = StaticLifetime::exit_guard();
            let k = store
                .put_in(StaticLifetime::get(), &"guarded".to_owned())
                .unwrap();
            println!("@@KEY {k}");
        }
        "lease" => {
            let lease = LeaseLifetime::new(&store, Duration::from_secs(3600));
            let k = store.put_in(&lease, &"leased".to_owned()).unwrap();
            println!("@@KEY {k}");
        }
        other => panic!("unknown mode {other}"),
    }
}

/// Runs the child in `mode` on the store at `url`; returns its key and how
/// long it ran.
fn run_child(mode: &str, url: &str) -> (Key, Duration) {
    let start = Instant::now();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["child_process_lifetimes", "--exact", "--nocapture"])
        .env(CHILD_ENV, format!("{mode} {url}"))
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let k = stdout
        .lines()
        .find_map(|l| {
            l.split_once("@@KEY ")
                .map(|(_, k)| k.trim().parse().unwrap())
        })
        .expect("the child printed its key");
    (k, elapsed)
}

/// A process that exits without closing the static lifetime leaves nothing
/// behind for good: on a file store its claims are leased, so the object is
/// reclaimed within the lease once the process is gone.
#[test]
fn static_lifetime_objects_are_reclaimed_after_the_process_exits() {
    let url = format!("file://{}?lease_ms=400", SUITE.file_dir().display());
    let (k, _) = run_child("static", &url);
    let store = Store::open(&url).unwrap();
    // The child is gone; its lease runs out.
    assert!(poll_until(Duration::from_secs(20), || !exists(&store, &k)).is_some());
    assert!(contents(&store).is_empty());
}

/// With the exit guard in `main`, the static lifetime's objects are
/// evicted when the process ends normally: at once, not after a lease.
#[test]
fn static_lifetime_exit_guard_evicts_at_normal_exit() {
    let url = format!("file://{}", SUITE.file_dir().display()); // 30 s lease
    let (k, _) = run_child("exit_guard", &url);
    let store = Store::open(&url).unwrap();
    assert!(!exists(&store, &k));
}

/// The lease timer never delays process exit: a child with an hour-long
/// lease exits at once.
#[test]
fn a_lease_never_delays_process_exit() {
    let url = format!("file://{}?lease_ms=400", SUITE.file_dir().display());
    let (k, elapsed) = run_child("lease", &url);
    assert!(elapsed < Duration::from_secs(60), "child took {elapsed:?}");
    let store = Store::open(&url).unwrap();
    assert!(poll_until(Duration::from_secs(20), || !exists(&store, &k)).is_some());
}

#[test]
fn lifetimes_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ContextLifetime>();
    send_sync::<LeaseLifetime>();
    send_sync::<StaticLifetime>();
}

/// Code generic over lifetimes works through the `Lifetime` trait, for
/// each kind and for references to them.
#[test]
fn the_lifetime_trait_covers_every_kind() {
    fn fill_and_close<L: Lifetime>(store: &Store, lt: L) -> Key {
        let k = store.put_in(&lt, &1u8).unwrap();
        assert_eq!(Lifetime::len(&lt), 1);
        Lifetime::close(&lt).unwrap();
        assert!(Lifetime::done(&lt));
        k
    }
    let store = SUITE.memory_store();
    let context = ContextLifetime::new(&store);
    let a = fill_and_close(&store, &context);
    let b = fill_and_close(&store, LeaseLifetime::new(&store, Duration::from_secs(60)));
    assert!(!exists(&store, &a) && !exists(&store, &b));
}
