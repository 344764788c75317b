//! Waiting borrows, the `_async` forms and the publish of a dropped
//! writer (borrowstore's semantics, rules 4 and 10): a waiting
//! `borrow_async` / `mut_borrow_async` is woken by the release that frees
//! it, leaves no claim when dropped, and does not let arriving readers
//! starve a waiting writer; `borrow_timeout` fails with `Error::Timeout`;
//! every `_async` form works on a current-thread runtime; a writer that
//! panics publishes nothing, one dropped normally publishes, one discarded
//! does not.
//!
//! Waits are bounded ([`PATIENCE`]) so a lost wake-up fails a check
//! instead of hanging it; "is still waiting" is checked after a short
//! pause, which a slow machine can only make pass vacuously, never fail.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use borrowstore::{
    BorrowTicket, Error, Key, ObjectInfo, OwnedProxy, OwnerTicket, Proxy, RefMutProxy, RefProxy,
    Store, borrow, borrow_async, borrow_timeout, clone_async, into_owned_async, mut_borrow,
    mut_borrow_async, mut_borrow_timeout, update_async,
};

use super::V;

/// How long a woken waiter may take, at most, on a busy machine.
pub const PATIENCE: Duration = Duration::from_secs(20);
/// How long a waiter is given to (wrongly) finish before it is released.
const PAUSE: Duration = Duration::from_millis(150);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn info(store: &Store, key: &Key) -> ObjectInfo {
    store.flush().expect("flush");
    store
        .inspect(key)
        .expect("inspect")
        .unwrap_or_else(|| panic!("{key} is not stored"))
}

/// Waits (bounded) until the object has neither readers nor a writer.
fn assert_idle(store: &Store, key: &Key) {
    let start = Instant::now();
    loop {
        let i = info(store, key);
        if i.readers == 0 && !i.writer {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "claims left on {key}: {i:?} after {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn assert_evicted(store: &Store, key: &Key) {
    store.flush().expect("flush");
    assert!(
        store.inspect(key).expect("inspect").is_none(),
        "{key} was not evicted"
    );
}

/// Ends the check: drops the owner, and checks the store is empty.
fn finish(store: &Store, owner: Arc<OwnedProxy<V>>) {
    let key = *OwnedProxy::key(&owner);
    drop(Arc::try_unwrap(owner).expect("every other handle of the owner is gone"));
    assert_evicted(store, &key);
}

fn shared_owner(store: &Store, v: V) -> (Arc<OwnedProxy<V>>, Key) {
    let owner = store.owned_proxy(v).expect("owned_proxy");
    let key = *OwnedProxy::key(&owner);
    (Arc::new(owner), key)
}

/// Awaits `h`, which must finish within [`PATIENCE`].
fn join<T>(rt: &tokio::runtime::Runtime, h: tokio::task::JoinHandle<T>, what: &str) -> T {
    rt.block_on(async { tokio::time::timeout(PATIENCE, h).await })
        .unwrap_or_else(|_| panic!("{what}: not woken within {PATIENCE:?}"))
        .unwrap_or_else(|e| panic!("{what}: the task failed: {e}"))
}

/// A `borrow_async` in another task waits while a writer holds the object, and
/// gets the value the writer published when it is dropped.
pub fn borrow_async_waits_for_the_writer(store: Store) {
    let rt = runtime();
    let (owner, key) = shared_owner(&store, vec![1]);
    let mut w = mut_borrow(&owner).unwrap();
    let o = owner.clone();
    let waiter = rt.spawn(async move {
        let r = borrow_async(&o).await?;
        Ok::<V, Error>(RefProxy::resolve_async(&r).await?.clone())
    });
    std::thread::sleep(PAUSE);
    assert!(
        !waiter.is_finished(),
        "borrow_async did not wait for the writer"
    );
    w.push(2);
    drop(w);
    assert_eq!(join(&rt, waiter, "borrow_async").unwrap(), vec![1, 2]);
    assert_idle(&store, &key);
    finish(&store, owner);
}

/// A `mut_borrow_async` in another task waits while any of three readers is
/// held, and gets in when the last is dropped.
pub fn mut_borrow_async_waits_for_the_last_of_several_readers(store: Store) {
    let rt = runtime();
    let (owner, key) = shared_owner(&store, vec![1]);
    let mut readers: Vec<RefProxy<V>> = (0..3).map(|_| borrow(&owner).unwrap()).collect();
    let o = owner.clone();
    let v0 = info(&store, &key).version;
    let writer = rt.spawn(async move {
        let mut w = mut_borrow_async(&o).await?;
        w.push(7);
        update_async(&mut w).await?;
        Ok::<(), Error>(())
    });
    while readers.len() > 1 {
        std::thread::sleep(PAUSE);
        assert!(
            !writer.is_finished(),
            "mut_borrow_async got in beside {} readers",
            readers.len()
        );
        readers.pop();
    }
    std::thread::sleep(PAUSE);
    assert!(
        !writer.is_finished(),
        "mut_borrow_async got in beside a reader"
    );
    readers.clear();
    join(&rt, writer, "mut_borrow_async").unwrap();
    assert_idle(&store, &key);
    assert_eq!(info(&store, &key).version, v0 + 1);
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 7]));
    finish(&store, owner);
}

/// A waiting `borrow_async` is woken by a writer dropped on another thread.
pub fn borrow_async_in_another_task_is_woken_by_a_drop_on_a_thread(store: Store) {
    let rt = runtime();
    let (owner, key) = shared_owner(&store, vec![3]);
    let w = mut_borrow(&owner).unwrap();
    let o = owner.clone();
    let waiter = rt.spawn(async move { borrow_async(&o).await.map(|r| r.len()) });
    std::thread::sleep(PAUSE);
    assert!(!waiter.is_finished());
    std::thread::spawn(move || drop(w)).join().unwrap();
    assert_eq!(join(&rt, waiter, "borrow_async").unwrap(), 1);
    assert_idle(&store, &key);
    finish(&store, owner);
}

/// Waiting futures dropped while they wait (timed out, or polled once) leave no
/// claim and no place in line.
pub fn dropping_a_pending_waiter_leaves_no_claim(store: Store) {
    let rt = runtime();
    let (owner, key) = shared_owner(&store, vec![1]);
    let w = mut_borrow(&owner).unwrap();
    rt.block_on(async {
        let reader = tokio::time::timeout(PAUSE, borrow_async(&owner)).await;
        assert!(reader.is_err(), "borrow_async did not wait for the writer");
        let writer = tokio::time::timeout(PAUSE, mut_borrow_async(&owner)).await;
        assert!(
            writer.is_err(),
            "mut_borrow_async did not wait for the writer"
        );
        // Polled once, then dropped.
        let mut pending = Box::pin(borrow_async(&owner));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(
            std::future::Future::poll(pending.as_mut(), &mut cx).is_pending(),
            "borrow_async did not wait for the writer"
        );
        drop(pending);
    });
    let i = info(&store, &key);
    assert!(
        i.writer && i.readers == 0,
        "a dropped waiter left a claim: {i:?}"
    );
    drop(w);
    assert_idle(&store, &key);
    // The line is empty again: nobody is in the way of the next borrows.
    let w = mut_borrow_timeout(&owner, PATIENCE).unwrap();
    drop(w);
    let r = rt.block_on(borrow_async(&owner)).unwrap();
    drop(r);
    assert_idle(&store, &key);
    finish(&store, owner);
}

/// Waiting futures cut off after a few microseconds — on file and Redis stores
/// mostly while their request is in flight — leave no claim behind.
pub fn a_waiter_cancelled_while_its_request_is_in_flight_leaves_no_claim(store: Store) {
    let rt = runtime();
    let (owner, key) = shared_owner(&store, vec![1]);
    rt.block_on(async {
        for i in 0..40u64 {
            // Cut off after a few microseconds: on file and Redis stores
            // mostly while the request that takes the claim is in flight.
            let cut = Duration::from_micros(5 + 25 * i);
            if let Ok(r) = tokio::time::timeout(cut, borrow_async(&owner)).await {
                drop(r.unwrap());
            }
            if let Ok(w) = tokio::time::timeout(cut, mut_borrow_async(&owner)).await {
                drop(w.unwrap());
            }
        }
    });
    assert_idle(&store, &key);
    let w = mut_borrow_timeout(&owner, PATIENCE).unwrap();
    drop(w);
    finish(&store, owner);
}

/// A `mut_borrow_async` gets in while readers keep borrowing with
/// `borrow_async` (the object is never free of readers), and few readers pass
/// it.
pub fn a_waiting_writer_is_not_starved_by_arriving_readers(store: Store) {
    let rt = runtime();
    let (owner, key) = shared_owner(&store, vec![1]);
    let stop = Arc::new(AtomicBool::new(false));
    let arrivals = Arc::new(AtomicU64::new(0));
    // Three readers that borrow again as soon as they let go, each holding
    // for 20 ms, started 7 ms apart: the object is never free of readers.
    let readers: Vec<_> = (0..3u64)
        .map(|i| {
            let (o, stop, arrivals) = (owner.clone(), stop.clone(), arrivals.clone());
            rt.spawn(async move {
                tokio::time::sleep(Duration::from_millis(7 * i)).await;
                while !stop.load(Ordering::Relaxed) {
                    let r = borrow_async(&o).await?;
                    arrivals.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    drop(r);
                }
                Ok::<(), Error>(())
            })
        })
        .collect();
    // Let them overlap; a slow machine (or miri) may take longer to start
    // the first.
    std::thread::sleep(Duration::from_millis(100));
    crate::wait_until("the readers to start", Duration::from_secs(30), || {
        arrivals.load(Ordering::Relaxed) > 0
    });
    let o = owner.clone();
    let a = arrivals.clone();
    let writer = rt.spawn(async move {
        let before = a.load(Ordering::Relaxed);
        let w = mut_borrow_async(&o).await?;
        let passed = a.load(Ordering::Relaxed) - before;
        drop(w);
        Ok::<u64, Error>(passed)
    });
    let passed = join(&rt, writer, "the waiting writer").unwrap();
    // Only readers already in line (or borrowing) when it came may pass it.
    assert!(
        passed <= 6,
        "{passed} readers got in ahead of the waiting writer"
    );
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        join(&rt, r, "a reader").unwrap();
    }
    assert_idle(&store, &key);
    finish(&store, owner);
}

/// `borrow_timeout` and `mut_borrow_timeout` fail with `Error::Timeout` naming
/// the object after their duration, and leave no claim.
pub fn borrow_timeout_returns_timeout_after_its_duration(store: Store) {
    let (owner, key) = shared_owner(&store, vec![1]);
    let wait = Duration::from_millis(200);
    let w = mut_borrow(&owner).unwrap();
    let start = Instant::now();
    match borrow_timeout(&owner, wait) {
        Err(Error::Timeout { key: k, waited, .. }) => {
            assert_eq!(k, key);
            assert_eq!(waited, wait);
        }
        other => panic!("expected Err(Timeout), got {other:?}"),
    }
    let took = start.elapsed();
    assert!(
        took >= wait && took < PATIENCE,
        "borrow_timeout took {took:?}"
    );
    let i = info(&store, &key);
    assert!(i.writer && i.readers == 0, "{i:?}");
    drop(w);

    let r = borrow(&owner).unwrap();
    let start = Instant::now();
    assert!(matches!(
        mut_borrow_timeout(&owner, wait),
        Err(Error::Timeout { .. })
    ));
    assert!(start.elapsed() >= wait);
    let i = info(&store, &key);
    assert!(!i.writer && i.readers == 1, "{i:?}");
    drop(r);
    assert_idle(&store, &key);
    finish(&store, owner);
}

/// `borrow_timeout` and `mut_borrow_timeout` get in when the holder is dropped
/// within the timeout.
pub fn timeouts_succeed_when_released_in_time(store: Store) {
    let (owner, key) = shared_owner(&store, vec![4]);
    let w = mut_borrow(&owner).unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(PAUSE);
        drop(w);
    });
    let start = Instant::now();
    let r = borrow_timeout(&owner, PATIENCE).unwrap();
    assert!(start.elapsed() < PATIENCE);
    assert_eq!(*r, vec![4]);
    release.join().unwrap();
    let r2 = borrow(&owner).unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(PAUSE);
        drop((r, r2));
    });
    let w = mut_borrow_timeout(&owner, PATIENCE).unwrap();
    release.join().unwrap();
    drop(w);
    assert_idle(&store, &key);
    finish(&store, owner);
}

/// Waiting borrows of an evicted object fail with `Error::KeyNotFound` at once.
pub fn waiting_fails_at_once_when_the_object_is_gone(store: Store) {
    let rt = runtime();
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    assert!(store.evict(&key).unwrap());
    let start = Instant::now();
    assert!(matches!(
        rt.block_on(borrow_async(&owner)),
        Err(Error::KeyNotFound { .. })
    ));
    assert!(matches!(
        rt.block_on(mut_borrow_async(&owner)),
        Err(Error::KeyNotFound { .. })
    ));
    assert!(matches!(
        mut_borrow_timeout(&owner, PATIENCE),
        Err(Error::KeyNotFound { .. })
    ));
    assert!(
        start.elapsed() < PATIENCE / 2,
        "waited for a missing object"
    );
    drop(owner);
    assert_evicted(&store, &key);
}

/// Every `_async` form of the store, the proxies and the tickets works on a
/// current-thread runtime.
pub fn async_forms_on_a_current_thread_runtime(store: Store) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // `Store::open` knows the crate's own schemes; a connector of
        // another scheme is reached through its registered store only.
        let known = ["memory://", "file://", "redis://", "rediss://"];
        if known.iter().any(|scheme| store.url().starts_with(scheme)) {
            let again = Store::open_async(store.url()).await.unwrap();
            assert!(again.same_store(&store) || again.url() == store.url());
        }

        let key = store.put_async(&vec![1u64, 2]).await.unwrap();
        assert_eq!(store.get_async::<V>(&key).await.unwrap(), Some(vec![1, 2]));
        assert_eq!(
            *store.get_shared_async::<V>(&key).await.unwrap().unwrap(),
            vec![1, 2]
        );
        assert!(store.exists_async(&key).await.unwrap());
        assert!(store.keys_async().await.unwrap().contains(&key));
        assert_eq!(store.inspect_async(&key).await.unwrap().unwrap().version, 1);
        assert!(store.evict_async(&key).await.unwrap());
        assert!(!store.exists_async(&key).await.unwrap());

        let p: Proxy<V> = store.proxy_async(vec![5]).await.unwrap();
        let fresh: Proxy<V> = store.proxy_from_key(*Proxy::key(&p));
        assert_eq!(Proxy::resolve_async(&fresh).await.unwrap(), &vec![5]);
        let once: Proxy<V> = store.ephemeral_proxy_async(vec![6]).await.unwrap();
        assert_eq!(Proxy::resolve_async(&once).await.unwrap(), &vec![6]);
        store.evict_async(Proxy::key(&p)).await.unwrap();

        let mut owner = store.owned_proxy_async(vec![1u64]).await.unwrap();
        let okey = *OwnedProxy::key(&owner);
        assert_eq!(OwnedProxy::resolve_async(&owner).await.unwrap(), &vec![1]);
        {
            let r = borrow_async(&owner).await.unwrap();
            assert_eq!(RefProxy::resolve_async(&r).await.unwrap(), &vec![1]);
        }
        {
            let mut w = mut_borrow_async(&owner).await.unwrap();
            w.push(2);
            update_async(&mut w).await.unwrap();
            assert_eq!(RefMutProxy::resolve_async(&w).await.unwrap(), &vec![1, 2]);
        }
        assert_eq!(*OwnedProxy::latest_async(&owner).await.unwrap(), vec![1, 2]);
        OwnedProxy::refresh_async(&mut owner).await.unwrap();
        owner.push(3);
        update_async(&mut owner).await.unwrap();
        let copy = clone_async(&owner).await.unwrap();
        assert_eq!(
            OwnedProxy::resolve_async(&copy).await.unwrap(),
            &vec![1, 2, 3]
        );
        drop(copy);

        let plain: Proxy<V> = store.proxy_async(vec![9]).await.unwrap();
        let adopted = into_owned_async(plain).await.unwrap();
        let akey = *OwnedProxy::key(&adopted);

        let bytes = OwnedProxy::into_ticket_async(adopted)
            .await
            .unwrap()
            .to_bytes()
            .unwrap();
        let adopted = OwnerTicket::<V>::from_bytes(&bytes)
            .unwrap()
            .redeem_async()
            .await
            .unwrap();
        let r = borrow_async(&adopted).await.unwrap();
        let ticket = RefProxy::into_ticket_async(r).await.unwrap();
        let bytes = ticket.to_bytes().unwrap();
        let r = BorrowTicket::<V>::from_bytes(&bytes)
            .unwrap()
            .redeem_async()
            .await
            .unwrap();
        assert_eq!(RefProxy::resolve_async(&r).await.unwrap(), &vec![9]);
        let ticket = RefProxy::into_ticket_async(r).await.unwrap();
        ticket.cancel_async().await.unwrap();
        drop(adopted);
        store.flush_async().await.unwrap();
        assert!(store.inspect_async(&akey).await.unwrap().is_none());

        drop(owner);
        store.flush_async().await.unwrap();
        assert!(store.inspect_async(&okey).await.unwrap().is_none());
    });
}

/// The futures of the `_async` forms are `Send` (they can be spawned on a
/// multi-threaded runtime).
pub fn async_futures_are_send(store: Store) {
    fn send<F: Send>(_: &F) {}
    let mut owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    send(&borrow_async(&owner));
    send(&mut_borrow_async(&owner));
    send(&clone_async(&owner));
    send(&store.put_async(&1u8));
    send(&store.owned_proxy_async(1u8));
    send(&store.get_async::<V>(&key));
    send(&store.flush_async());
    send(&OwnedProxy::resolve_async(&owner));
    send(&update_async(&mut owner));
    drop(owner);
    assert_evicted(&store, &key);
}

/// A writer that changes the value and panics publishes nothing: the store
/// keeps the previous version.
pub fn a_writer_that_panics_publishes_nothing(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let v0 = info(&store, &key).version;
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut w = mut_borrow(&owner).unwrap();
        w.push(2);
        panic!("the writer fails half-way");
    }));
    assert!(panicked.is_err());
    store.flush().unwrap();
    let i = info(&store, &key);
    assert_eq!(i.version, v0, "a panicking writer published");
    assert!(!i.writer && i.readers == 0, "{i:?}");
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1]));
    assert_eq!(*borrow(&owner).unwrap(), vec![1]);
    drop(owner);
    assert_evicted(&store, &key);
}

/// A changed writer dropped normally is published (once); an unchanged one
/// publishes nothing.
pub fn a_changed_writer_dropped_normally_is_published(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let v0 = info(&store, &key).version;
    let mut w = mut_borrow(&owner).unwrap();
    w.push(2);
    drop(w);
    store.flush().unwrap();
    assert_eq!(info(&store, &key).version, v0 + 1);
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2]));
    assert_eq!(*borrow(&owner).unwrap(), vec![1, 2]);
    // An unchanged one publishes nothing.
    drop(mut_borrow(&owner).unwrap());
    store.flush().unwrap();
    assert_eq!(info(&store, &key).version, v0 + 1);
    drop(owner);
    assert_evicted(&store, &key);
}

/// `RefMutProxy::discard` ends the borrow without publishing.
pub fn discard_publishes_nothing(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let v0 = info(&store, &key).version;
    let mut w = mut_borrow(&owner).unwrap();
    w.push(2);
    RefMutProxy::discard(w);
    store.flush().unwrap();
    let i = info(&store, &key);
    assert_eq!(i.version, v0);
    assert!(!i.writer, "discard did not end the borrow: {i:?}");
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1]));
    drop(owner);
    assert_evicted(&store, &key);
}
