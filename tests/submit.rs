//! `submit` and `submit_blocking` against every executor: the task's borrows
//! end store-side before its handle resolves, whatever way the task ends.
//!
//! Every check reads what the connector really holds
//! (`store.inspect(&key)`, `keys()`) right after the handle
//! resolves — never a cache or a flag. The per-executor checks run on a
//! memory store, a file store (a fresh directory under cargo's per-target
//! temp dir) and a Redis store (a `redis-server` started for the test on a
//! free loopback port, where releases are queued: the handle must wait for
//! them).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use borrowstore::submit::{Plain, StdThreads, submit, submit_blocking, task_borrows};
use borrowstore::{
    Error, Key, OwnedProxy, RefMutProxy, RefProxy, Store, borrow, mut_borrow, update,
};
use borrowstore_testkit::{
    Suite, assert_empty, assert_err, borrows, key_of, observed, on_every_store, wait_until,
};

type V = Vec<u64>;

const TIMEOUT: Duration = Duration::from_secs(20);

// ------------------------------------------------------------------ helpers

/// Names this suite's stores and directories; its Redis stores come with an
/// observer, which the checks read through.
const SUITE: Suite = borrowstore_testkit::suite!("submit").with_observer();

#[track_caller]
fn assert_idle(store: &Store, key: &Key) {
    assert_eq!(
        borrows(store, key),
        (0, false),
        "{key} should not be borrowed"
    );
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A signal a task sends when it has started, and a gate it waits at.
fn started() -> (mpsc::Sender<()>, mpsc::Receiver<()>) {
    mpsc::channel()
}

#[track_caller]
fn expect_started(rx: &mpsc::Receiver<()>) {
    rx.recv_timeout(TIMEOUT).expect("the task did not start");
}

// ----------------------------------------------------- tokio (async tasks)

fn tokio_completion(store: Store) {
    let rt = multi_thread();
    let owner = store.owned_proxy(vec![1u64, 2, 3]).unwrap();
    let key = key_of(&owner);
    let h = submit(rt.handle(), borrow(&owner).unwrap(), |r| async move {
        r.iter().sum::<u64>()
    });
    assert_eq!(rt.block_on(h).unwrap(), 6);
    assert_idle(&store, &key);
    assert!(mut_borrow(&owner).is_ok());

    // `submit(&runtime, …)` and several borrows at once.
    let other = store.owned_proxy(vec![4u64]).unwrap();
    let args = (
        borrow(&owner).unwrap(),
        borrow(&owner).unwrap(),
        Some(borrow(&other).unwrap()),
        Plain(10u64),
    );
    assert_eq!(borrows(&store, &key), (2, false));
    let h = submit(&rt, args, |(a, b, c, k)| async move {
        a.len() as u64 + b.len() as u64 + c.map_or(0, |c| c[0]) + k.0
    });
    assert_eq!(rt.block_on(h).unwrap(), 3 + 3 + 4 + 10);
    assert_idle(&store, &key);
    assert_idle(&store, &key_of(&other));
}

fn tokio_error(store: Store) {
    let rt = multi_thread();
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = key_of(&owner);
    let h = submit(rt.handle(), borrow(&owner).unwrap(), |r| async move {
        if r.len() == 1 {
            Err::<u64, String>("the task failed".into())
        } else {
            Ok(0)
        }
    });
    assert_eq!(rt.block_on(h).unwrap(), Err("the task failed".to_owned()));
    assert_idle(&store, &key);
}

fn tokio_panic(store: Store) {
    let rt = multi_thread();
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = key_of(&owner);
    let w = mut_borrow(&owner).unwrap();
    let h = submit(rt.handle(), w, |w: RefMutProxy<V>| async move {
        tokio::task::yield_now().await;
        if w.len() == 1 {
            panic!("boom in the task");
        }
        1
    });
    match rt.block_on(h) {
        Err(Error::TaskPanicked { message }) => assert!(message.contains("boom in the task")),
        other => panic!("expected TaskPanicked, got {other:?}"),
    }
    assert_idle(&store, &key);
    assert!(borrow(&owner).is_ok());
}

fn tokio_abort(store: Store) {
    let rt = multi_thread();
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = key_of(&owner);
    let (tx, rx) = started();
    let h = submit(rt.handle(), borrow(&owner).unwrap(), move |r| async move {
        tx.send(()).unwrap();
        std::future::pending::<()>().await;
        r.len()
    });
    expect_started(&rx);
    assert_eq!(borrows(&store, &key), (1, false));
    h.abort();
    assert_err!(rt.block_on(h), Error::TaskCancelled { .. });
    assert_idle(&store, &key);
}

fn tokio_drop_handle_detaches(store: Store) {
    let rt = multi_thread();
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = key_of(&owner);
    let (tx, rx) = started();
    let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
    let h = submit(rt.handle(), borrow(&owner).unwrap(), move |r| async move {
        tx.send(()).unwrap();
        let _ = gate_rx.await;
        r.len()
    });
    expect_started(&rx);
    drop(h);
    // Detached, not cancelled: the task still holds its borrow…
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(borrows(&store, &key), (1, false));
    // …and ends it when it finishes.
    gate_tx.send(()).unwrap();
    wait_until("the detached task's borrow to end", TIMEOUT, || {
        borrows(&store, &key) == (0, false)
    });
}

fn tokio_runtime_shutdown(store: Store) {
    let rt = multi_thread();
    let handle = rt.handle().clone();
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = key_of(&owner);
    let (tx, rx) = started();
    let h = submit(&handle, borrow(&owner).unwrap(), move |r| async move {
        tx.send(()).unwrap();
        std::future::pending::<()>().await;
        r.len()
    });
    expect_started(&rx);
    drop(rt); // shuts down: the runtime drops the task
    assert_err!(futures::executor::block_on(h), Error::TaskCancelled { .. });
    assert_idle(&store, &key);

    // Submitting to a runtime that has shut down: never runs, same outcome.
    let h = submit(&handle, borrow(&owner).unwrap(), |r| async move { r.len() });
    assert_err!(futures::executor::block_on(h), Error::TaskCancelled { .. });
    assert_idle(&store, &key);
}

// ----------------------------------------------- tokio (spawn_blocking)

fn tokio_blocking_completion(store: Store) {
    let rt = multi_thread();
    let (a, b) = (
        store.owned_proxy(vec![1u64]).unwrap(),
        store.owned_proxy(vec![2u64, 3]).unwrap(),
    );
    let n = submit_blocking(
        rt.handle(),
        (borrow(&a).unwrap(), borrow(&b).unwrap()),
        |(a, b)| a.len() + b.len(),
    )
    .join()
    .unwrap();
    assert_eq!(n, 3);
    assert_idle(&store, &key_of(&a));
    assert_idle(&store, &key_of(&b));
    // Awaited instead of joined, on `&Runtime`.
    let h = submit_blocking(&rt, borrow(&a).unwrap(), |a| a[0]);
    assert_eq!(rt.block_on(h).unwrap(), 1);
    assert_idle(&store, &key_of(&a));
}

fn tokio_blocking_error(store: Store) {
    let rt = multi_thread();
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = key_of(&owner);
    let r = submit_blocking(rt.handle(), borrow(&owner).unwrap(), |_r| {
        Err::<(), _>(std::io::Error::other("blocking failure"))
    })
    .join()
    .unwrap();
    assert!(r.is_err());
    assert_idle(&store, &key);
}

fn tokio_blocking_panic(store: Store) {
    let rt = multi_thread();
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = key_of(&owner);
    let h = submit_blocking(rt.handle(), borrow(&owner).unwrap(), |r| {
        if r.len() == 1 {
            panic!("blocking boom");
        }
        0
    });
    assert_err!(h.join(), Error::TaskPanicked { .. });
    assert_idle(&store, &key);
}

fn tokio_blocking_abort_before_start(store: Store) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = key_of(&owner);
    // Occupy the only blocking thread.
    let (tx, rx) = started();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let first = submit_blocking(rt.handle(), (), move |()| {
        tx.send(()).unwrap();
        gate_rx.recv_timeout(TIMEOUT).unwrap();
    });
    expect_started(&rx);
    let queued = submit_blocking(rt.handle(), borrow(&owner).unwrap(), |r| r.len());
    assert_eq!(borrows(&store, &key), (1, false));
    queued.abort();
    gate_tx.send(()).unwrap();
    first.join().unwrap();
    assert_err!(queued.join(), Error::TaskCancelled { .. });
    assert_idle(&store, &key);
}

fn tokio_blocking_runtime_shutdown(store: Store) {
    let rt = multi_thread();
    let handle = rt.handle().clone();
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = key_of(&owner);
    drop(rt);
    let h = submit_blocking(&handle, borrow(&owner).unwrap(), |r| r.len());
    assert_err!(h.join(), Error::TaskCancelled { .. });
    assert_idle(&store, &key);
}

// ------------------------------------------------ futures::ThreadPool

fn futures_pool() -> futures::executor::ThreadPool {
    futures::executor::ThreadPool::builder()
        .pool_size(2)
        .create()
        .unwrap()
}

fn futures_completion_error_panic(store: Store) {
    let pool = futures_pool();
    let owner = store.owned_proxy(vec![5u64]).unwrap();
    let key = key_of(&owner);

    let h = submit(&pool, borrow(&owner).unwrap(), |r| async move { r[0] });
    assert_eq!(h.join().unwrap(), 5);
    assert_idle(&store, &key);

    let h = submit(&pool, borrow(&owner).unwrap(), |_r| async move {
        Err::<(), &str>("nope")
    });
    assert_eq!(h.join().unwrap(), Err("nope"));
    assert_idle(&store, &key);

    let h = submit(&pool, mut_borrow(&owner).unwrap(), |_w| async move {
        panic!("futures boom");
    });
    assert_err!(h.join(), Error::TaskPanicked { .. });
    assert_idle(&store, &key);
}

fn futures_abort_and_drop_cancel(store: Store) {
    let pool = futures_pool();
    let owner = store.owned_proxy(vec![5u64]).unwrap();
    let key = key_of(&owner);

    let (tx, rx) = started();
    let h = submit(&pool, borrow(&owner).unwrap(), move |r| async move {
        tx.send(()).unwrap();
        std::future::pending::<()>().await;
        r.len()
    });
    expect_started(&rx);
    h.abort();
    assert_err!(h.join(), Error::TaskCancelled { .. });
    assert_idle(&store, &key);

    // Dropping the handle cancels the task (and so ends its borrow).
    let (tx, rx) = started();
    let h = submit(&pool, borrow(&owner).unwrap(), move |r| async move {
        tx.send(()).unwrap();
        std::future::pending::<()>().await;
        r.len()
    });
    expect_started(&rx);
    assert_eq!(borrows(&store, &key), (1, false));
    drop(h);
    wait_until("the cancelled task's borrow to end", TIMEOUT, || {
        borrows(&store, &key) == (0, false)
    });
}

fn futures_pool_dropped(store: Store) {
    let pool = futures_pool();
    let owner = store.owned_proxy(vec![5u64]).unwrap();
    let key = key_of(&owner);
    let (tx, rx) = started();
    let (gate_tx, gate_rx) = futures::channel::oneshot::channel::<()>();
    let h = submit(&pool, borrow(&owner).unwrap(), move |r| async move {
        tx.send(()).unwrap();
        let _ = gate_rx.await;
        r.len()
    });
    expect_started(&rx);
    // The pool lives on while its tasks do.
    drop(pool);
    gate_tx.send(()).unwrap();
    assert_eq!(h.join().unwrap(), 1);
    assert_idle(&store, &key);
}

// ---------------------------------------------------------- std threads

fn std_threads_all(store: Store) {
    let owner = store.owned_proxy(vec![1u64, 2]).unwrap();
    let key = key_of(&owner);

    let n = submit_blocking(&StdThreads, borrow(&owner).unwrap(), |r| r.len())
        .join()
        .unwrap();
    assert_eq!(n, 2);
    assert_idle(&store, &key);

    let r = submit_blocking(&StdThreads, borrow(&owner).unwrap(), |_| Err::<(), u8>(7))
        .join()
        .unwrap();
    assert_eq!(r, Err(7));
    assert_idle(&store, &key);

    let h = submit_blocking(&StdThreads, mut_borrow(&owner).unwrap(), |_w| -> u8 {
        panic!("thread boom")
    });
    assert_err!(h.join(), Error::TaskPanicked { .. });
    assert_idle(&store, &key);

    // Dropping the handle detaches; the thread ends its borrow when done.
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let h = submit_blocking(&StdThreads, borrow(&owner).unwrap(), move |r| {
        gate_rx.recv_timeout(TIMEOUT).unwrap();
        r.len()
    });
    h.abort(); // cannot cancel a running thread: does nothing
    drop(h);
    assert_eq!(borrows(&store, &key), (1, false));
    gate_tx.send(()).unwrap();
    wait_until("the detached thread's borrow to end", TIMEOUT, || {
        borrows(&store, &key) == (0, false)
    });
}

// ---------------------------------------------------------------- rayon

#[cfg(feature = "rayon")]
fn rayon_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

#[cfg(feature = "rayon")]
fn rayon_all(store: Store) {
    let pool = rayon_pool(2);
    let (a, b) = (
        store.owned_proxy(vec![1u64]).unwrap(),
        store.owned_proxy(vec![2u64, 3]).unwrap(),
    );
    let n = submit_blocking(
        &pool,
        (borrow(&a).unwrap(), borrow(&b).unwrap()),
        |(a, b)| a.len() + b.len(),
    )
    .join()
    .unwrap();
    assert_eq!(n, 3);
    assert_idle(&store, &key_of(&a));
    assert_idle(&store, &key_of(&b));

    let r = submit_blocking(&pool, borrow(&a).unwrap(), |_| Err::<(), u8>(1))
        .join()
        .unwrap();
    assert_eq!(r, Err(1));
    assert_idle(&store, &key_of(&a));

    let h = submit_blocking(&pool, mut_borrow(&a).unwrap(), |_w| -> u8 {
        panic!("rayon boom")
    });
    assert_err!(h.join(), Error::TaskPanicked { .. });
    assert_idle(&store, &key_of(&a));

    // Dropping the handle detaches.
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let h = submit_blocking(&pool, borrow(&a).unwrap(), move |r| {
        gate_rx.recv_timeout(TIMEOUT).unwrap();
        r.len()
    });
    drop(h);
    gate_tx.send(()).unwrap();
    wait_until("the detached rayon task's borrow to end", TIMEOUT, || {
        borrows(&store, &key_of(&a)) == (0, false)
    });
}

#[cfg(feature = "rayon")]
fn rayon_pool_dropped(store: Store) {
    let pool = rayon_pool(1);
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = key_of(&owner);
    let (tx, rx) = started();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let first = submit_blocking(&pool, (), move |()| {
        tx.send(()).unwrap();
        gate_rx.recv_timeout(TIMEOUT).unwrap();
    });
    expect_started(&rx);
    let queued = submit_blocking(&pool, borrow(&owner).unwrap(), |r| r.len());
    // Spawned tasks still run after the pool is dropped.
    drop(pool);
    gate_tx.send(()).unwrap();
    first.join().unwrap();
    assert_eq!(queued.join().unwrap(), 1);
    assert_idle(&store, &key);
}

// ------------------------------------------- leaked and escaped borrows

fn leaked_borrows_are_invalidated(store: Store) {
    let rt = multi_thread();
    let owner = store.owned_proxy(vec![1u64, 2, 3]).unwrap();
    let key = key_of(&owner);

    // mem::forget: the borrow is still ended.
    let h = submit(rt.handle(), borrow(&owner).unwrap(), |r| async move {
        std::mem::forget(r);
    });
    rt.block_on(h).unwrap();
    assert_idle(&store, &key);

    // Leaked for good (`&'static`) and moved out of the task.
    let (tx, rx) = mpsc::channel::<&'static RefProxy<V>>();
    let (mtx, mrx) = mpsc::channel::<RefProxy<V>>();
    let h = submit(
        rt.handle(),
        (borrow(&owner).unwrap(), borrow(&owner).unwrap()),
        move |(a, b)| async move {
            assert_eq!(a.len(), 3);
            tx.send(Box::leak(Box::new(a))).unwrap();
            mtx.send(b).unwrap();
        },
    );
    rt.block_on(h).unwrap();
    assert_idle(&store, &key);
    let leaked = rx.recv().unwrap();
    let moved = mrx.recv().unwrap();
    assert_err!(RefProxy::resolve(leaked), Error::ClaimLost { .. });
    assert_err!(RefProxy::resolve(&moved), Error::ClaimLost { .. });
    let panic =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| leaked.len())).unwrap_err();
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("no longer held"), "{text}");

    // Dropping the escaped borrow later releases nothing a second time.
    let live = borrow(&owner).unwrap();
    drop(moved);
    store.flush().unwrap();
    assert_eq!(borrows(&store, &key), (1, false));
    drop(live);
    store.flush().unwrap();
    assert_idle(&store, &key);

    // A leaked writer: released without publishing, refuses to publish after.
    let (wtx, wrx) = mpsc::channel::<RefMutProxy<V>>();
    let version = observed(&store).inspect(&key).unwrap().unwrap().version;
    let h = submit(
        rt.handle(),
        mut_borrow(&owner).unwrap(),
        move |mut w| async move {
            w.push(4);
            wtx.send(w).unwrap();
        },
    );
    rt.block_on(h).unwrap();
    assert_idle(&store, &key);
    let mut escaped = wrx.recv().unwrap();
    assert_err!(update(&mut escaped), Error::ClaimLost { .. });
    assert_err!(RefMutProxy::resolve(&escaped), Error::ClaimLost { .. });
    let other_writer = mut_borrow(&owner).unwrap();
    drop(escaped); // must neither publish nor release the other writer's claim
    assert_eq!(borrows(&store, &key), (0, true));
    drop(other_writer);
    store.flush().unwrap();
    assert_idle(&store, &key);
    assert_eq!(
        observed(&store).inspect(&key).unwrap().unwrap().version,
        version
    );

    // The same in a blocking task.
    let (tx, rx) = mpsc::channel::<RefProxy<V>>();
    submit_blocking(&StdThreads, borrow(&owner).unwrap(), move |r| {
        tx.send(r).unwrap()
    })
    .join()
    .unwrap();
    assert_idle(&store, &key);
    assert_err!(
        RefProxy::resolve(&rx.recv().unwrap()),
        Error::ClaimLost { .. }
    );

    drop(owner);
    store.flush().unwrap();
    assert_empty(&store);
}

/// A borrow returned in the output comes back ended: borrows end with the
/// task.
fn returned_borrow_is_ended(store: Store) {
    let rt = multi_thread();
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = key_of(&owner);
    let h = submit(rt.handle(), borrow(&owner).unwrap(), |r| async move { r });
    let back = rt.block_on(h).unwrap();
    assert_idle(&store, &key);
    assert_err!(RefProxy::resolve(&back), Error::ClaimLost { .. });
    drop(back);
    store.flush().unwrap();
    assert_idle(&store, &key);
}

// ------------------------------------------- writers, owners, nesting

fn writer_publishes_and_owner_moves_back(store: Store) {
    let rt = multi_thread();
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = key_of(&owner);

    // A writer's change is published when the task drops it.
    let h = submit(
        rt.handle(),
        mut_borrow(&owner).unwrap(),
        |mut w| async move {
            w.push(2);
        },
    );
    rt.block_on(h).unwrap();
    assert_idle(&store, &key);
    assert_eq!(*borrow(&owner).unwrap(), vec![1, 2]);

    // An owner moves into the task and back out, exactly once.
    let h = submit(rt.handle(), owner, |o: OwnedProxy<V>| async move {
        let r = borrow(&o).unwrap();
        assert_eq!(r.len(), 2);
        drop(r);
        o
    });
    let owner = rt.block_on(h).unwrap();
    assert_idle(&store, &key);
    let state = observed(&store).inspect(&key).unwrap().unwrap();
    assert!(state.owner);

    // A new owner made by the task is the submitter's.
    let h = submit(rt.handle(), borrow(&owner).unwrap(), |r| async move {
        let store = RefProxy::store(&r).clone();
        store.owned_proxy(r.iter().sum::<u64>()).unwrap()
    });
    let made = rt.block_on(h).unwrap();
    assert_eq!(*made, 3);
    let made_key = key_of(&made);
    drop(made);
    store.flush().unwrap();
    assert!(!observed(&store).exists(&made_key).unwrap());

    // An owner dropped by the task is evicted before the handle resolves.
    let h = submit_blocking(&StdThreads, owner, drop);
    h.join().unwrap();
    assert!(!observed(&store).exists(&key).unwrap());
    assert_empty(&store);
}

fn nested_submit(store: Store) {
    let rt = multi_thread();
    let owner = store.owned_proxy(vec![1u64, 2]).unwrap();
    let key = key_of(&owner);
    let handle = rt.handle().clone();
    let h = submit(rt.handle(), borrow(&owner).unwrap(), move |r| async move {
        // Moved on into a second task.
        let inner = submit(&handle, r, |r| async move { r.len() });
        inner.await
    });
    assert_eq!(rt.block_on(h).unwrap().unwrap(), 2);
    assert_idle(&store, &key);
}

on_every_store!(SUITE;
    tokio_completion,
    tokio_error,
    tokio_panic,
    tokio_abort,
    tokio_drop_handle_detaches,
    tokio_runtime_shutdown,
    tokio_blocking_completion,
    tokio_blocking_error,
    tokio_blocking_panic,
    tokio_blocking_abort_before_start,
    tokio_blocking_runtime_shutdown,
    futures_completion_error_panic,
    futures_abort_and_drop_cancel,
    futures_pool_dropped,
    std_threads_all,
    leaked_borrows_are_invalidated,
    returned_borrow_is_ended,
    writer_publishes_and_owner_moves_back,
    nested_submit,
);

#[cfg(feature = "rayon")]
mod rayon_on_stores {
    #[test]
    fn memory_rayon_all() {
        super::rayon_all(super::SUITE.memory_store());
    }

    #[test]
    fn file_rayon_all() {
        super::rayon_all(super::SUITE.file_store());
    }

    #[test]
    fn memory_rayon_pool_dropped() {
        super::rayon_pool_dropped(super::SUITE.memory_store());
    }

    #[test]
    fn file_rayon_pool_dropped() {
        super::rayon_pool_dropped(super::SUITE.file_store());
    }
}

// ---------------------------------------------------------------- misc

#[test]
fn task_borrows_reports_without_tying() {
    let store = SUITE.memory_store();
    let a = store.owned_proxy(1u8).unwrap();
    let b = store.owned_proxy(2u8).unwrap();
    let mut args = (
        borrow(&a).unwrap(),
        vec![borrow(&b).unwrap(), borrow(&b).unwrap()],
        [Plain(1), Plain(2)],
        None::<RefProxy<u8>>,
        store.proxy(3u8).unwrap(),
    );
    let found = task_borrows(&mut args);
    assert_eq!(found.len(), 3);
    assert!(found.iter().all(|b| b.store.same_store(&store)));
    assert_eq!(found[0].key, key_of(&a));
    // Not tied to any task: still ordinary borrows.
    drop(args);
    assert_idle(&store, &key_of(&a));
    assert_idle(&store, &key_of(&b));
}

/// Tasks take arrays, vectors, boxes and 12-tuples.
#[test]
fn containers_of_borrows() {
    let store = SUITE.memory_store();
    let rt = multi_thread();
    let o = store.owned_proxy(vec![1u64]).unwrap();
    let key = key_of(&o);
    let b = || borrow(&o).unwrap();
    let args = (
        [b(), b()],
        vec![b(), b(), b()],
        Box::new(b()),
        Some(b()),
        Plain("x"),
        7u32,
        (),
        String::from("s"),
        b(),
        b(),
        b(),
        b(),
    );
    assert_eq!(borrows(&store, &key), (11, false));
    let h = submit(rt.handle(), args, |a| async move {
        a.0.len() + a.1.len() + a.2.len() + a.3.map_or(0, |r| r.len())
    });
    assert_eq!(rt.block_on(h).unwrap(), 2 + 3 + 1 + 1);
    assert_idle(&store, &key);
}

// ------------------------------------------------------ volume and stress

/// 100,000 submit cycles with borrows (and owners moving through tasks)
/// leave the store empty.
#[test]
fn hundred_thousand_submit_cycles_leave_the_store_empty() {
    const CYCLES: usize = 100_000;
    const IN_FLIGHT: usize = 64;
    let store = SUITE.memory_store();
    let rt = multi_thread();
    let start = Instant::now();
    let shared = store.owned_proxy(vec![1u64, 2, 3]).unwrap();
    let shared_key = key_of(&shared);
    let handle = rt.handle().clone();
    let total = rt.block_on(async {
        let mut total = 0u64;
        let mut done = 0;
        while done < CYCLES {
            let n = IN_FLIGHT.min(CYCLES - done);
            let mut hs = Vec::with_capacity(n);
            for i in 0..n {
                let own = store.owned_proxy(vec![(done + i) as u64]).unwrap();
                let args = (borrow(&shared).unwrap(), borrow(&own).unwrap(), own);
                hs.push(submit(&handle, args, |(s, r, own)| async move {
                    let v = s.len() as u64 + r[0];
                    drop(r);
                    // Half the owners come back, half die in the task.
                    v.is_multiple_of(2).then_some(own)
                }));
            }
            for h in hs {
                if let Some(own) = h.await.unwrap() {
                    total += own[0];
                }
            }
            done += n;
        }
        total
    });
    let elapsed = start.elapsed();
    eprintln!("{CYCLES} submit cycles in {elapsed:?}");
    assert!(total > 0);
    assert_idle(&store, &shared_key);
    drop(shared);
    assert_empty(&store);
}

/// Fewer cycles on a file store (each borrow is a file-locked ledger write).
#[test]
fn file_store_submit_cycles_leave_the_store_empty() {
    const CYCLES: usize = 1_000;
    let store = SUITE.file_store();
    let rt = multi_thread();
    let start = Instant::now();
    let shared = store.owned_proxy(vec![1u64]).unwrap();
    for i in 0..CYCLES {
        let own = store.owned_proxy(i as u64).unwrap();
        let h = submit(
            rt.handle(),
            (borrow(&shared).unwrap(), own),
            |(s, own)| async move { s[0] + *own },
        );
        assert_eq!(rt.block_on(h).unwrap(), 1 + i as u64);
    }
    eprintln!("{CYCLES} file-store submit cycles in {:?}", start.elapsed());
    drop(shared);
    assert_empty(&store);
}

/// Threads submit readers and writers of shared owners to several
/// executors at once. Inside every task the connector shows the rule held
/// (a writer alone, or readers without a writer); every published
/// increment is counted; at the end nothing is borrowed and, once the
/// owners go, the store is empty.
#[test]
fn concurrent_submits_keep_the_invariant() {
    const THREADS: usize = 4;
    const ROUNDS: usize = 250;
    const OWNERS: usize = 3;
    let store = SUITE.memory_store();
    let rt = multi_thread();
    let pool = futures_pool();
    let owners: Arc<Vec<OwnedProxy<V>>> = Arc::new(
        (0..OWNERS)
            .map(|_| store.owned_proxy(vec![0u64]).unwrap())
            .collect(),
    );
    let writes: Arc<Vec<AtomicUsize>> =
        Arc::new((0..OWNERS).map(|_| AtomicUsize::new(0)).collect());
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));

    std::thread::scope(|s| {
        for t in 0..THREADS {
            let owners = owners.clone();
            let writes = writes.clone();
            let violations = violations.clone();
            let handle = rt.handle().clone();
            let pool = pool.clone();
            s.spawn(move || {
                for round in 0..ROUNDS {
                    let i = (t + round) % OWNERS;
                    let owner = &owners[i];
                    let key = key_of(owner);
                    let check = {
                        let violations = violations.clone();
                        move |store: &Store, want_writer: bool| {
                            let state = store.inspect(&key).unwrap().unwrap();
                            let ok = if want_writer {
                                state.writer && state.readers == 0
                            } else {
                                !state.writer && state.readers >= 1
                            };
                            if !ok {
                                violations.lock().unwrap().push(format!("{key}: {state:?}"));
                            }
                        }
                    };
                    if round % 3 == 0 {
                        let Ok(w) = mut_borrow(owner) else { continue };
                        let writes = writes.clone();
                        let job = move |mut w: RefMutProxy<V>| {
                            check(RefMutProxy::store(&w), true);
                            w[0] += 1;
                            update(&mut w).unwrap();
                            writes[i].fetch_add(1, Ordering::Relaxed);
                        };
                        match round % 2 {
                            0 => submit_blocking(&StdThreads, w, job).join().unwrap(),
                            _ => submit_blocking(&handle, w, job).join().unwrap(),
                        }
                    } else {
                        let Ok(r) = borrow(owner) else { continue };
                        let job = move |r: RefProxy<V>| {
                            check(RefProxy::store(&r), false);
                            r[0]
                        };
                        let _seen = match round % 3 {
                            1 => submit(&pool, r, move |r| async move { job(r) })
                                .join()
                                .unwrap(),
                            _ => submit(&handle, r, move |r| async move {
                                tokio::task::yield_now().await;
                                job(r)
                            })
                            .join()
                            .unwrap(),
                        };
                    }
                }
            });
        }
    });

    let violations = violations.lock().unwrap();
    assert!(violations.is_empty(), "rule broken: {violations:?}");
    for (i, owner) in owners.iter().enumerate() {
        assert_idle(&store, &key_of(owner));
        let written = writes[i].load(Ordering::Relaxed) as u64;
        assert_eq!(borrow(owner).unwrap()[0], written, "owner {i}");
    }
    drop(owners);
    assert_empty(&store);
}
