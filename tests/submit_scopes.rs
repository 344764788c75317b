//! A task `submit`ted while a liveness scope is open runs inside that scope
//! (DESIGN.md, semantics 11), on every executor: the objects it creates are
//! managed by the scope, as in `LivenessScope::open_async`, whichever thread
//! runs it and however many `.await`s it crosses.
//!
//! Each check submits from inside `outer.open(|| scope.open(|| …))` and
//! waits for the handle *outside* both, so the task runs where no scope is
//! open: only what `submit` carried can manage its objects. The task makes
//! five temporaries (`put`, `proxy`, `ephemeral_proxy`, an `owned_proxy`
//! and a `clone` of it whose owners it drops), `preserve`s one object into
//! `outer` and returns an owner. `scope.release()` evicts the five; the
//! preserved object lives until `outer` is released, the returned owner
//! until it is dropped. Then work spawned on the same executor without
//! `submit` (its worker threads are reused) shows that nothing stayed on
//! their scope stacks.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use borrowstore::submit::{Plain, StdThreads, submit, submit_blocking};
use borrowstore::{Key, LivenessScope, OwnedProxy, Proxy, Store, clone};

fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn memory_store() -> Store {
    Store::memory(unique("submit-scopes-memory"))
}

fn file_store() -> Store {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("submit-scopes")
        .join(unique("file"));
    Store::open(&format!("file://{}", dir.display())).expect("open file store")
}

fn exists(store: &Store, key: &Key) -> bool {
    store.flush().unwrap();
    store.exists(key).unwrap()
}

/// Returns `Pending` once, so that a task is polled (at least) twice.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

fn yield_now() -> YieldNow {
    YieldNow(false)
}

/// What a task made.
struct Made {
    temporaries: Vec<Key>,
    preserved: Proxy<String>,
    returned: OwnedProxy<u64>,
}

/// The first part of a task's work: two temporaries.
fn first_half(store: &Store) -> Vec<Key> {
    let a = store.put(&1u64).unwrap();
    let b = *Proxy::key(&store.proxy(vec![2u8; 16]).unwrap());
    vec![a, b]
}

/// The rest: three more temporaries, a preserved object, a returned owner.
fn second_half(store: &Store, scope: &LivenessScope, mut temporaries: Vec<Key>) -> Made {
    temporaries.push(*Proxy::key(&store.ephemeral_proxy(3u32).unwrap()));
    let owner = store.owned_proxy(vec![4u64]).unwrap();
    let copy = clone(&owner).unwrap();
    temporaries.push(*OwnedProxy::key(&owner));
    temporaries.push(*OwnedProxy::key(&copy));
    drop((owner, copy));
    let preserved = store.proxy(String::from("kept")).unwrap();
    scope.preserve(&preserved).unwrap();
    let returned = store.owned_proxy(5u64).unwrap();
    Made {
        temporaries,
        preserved,
        returned,
    }
}

/// The blocking form of a task's work.
fn blocking_work(store: Store, scope: LivenessScope) -> impl FnOnce(Plain<()>) -> Made + Send {
    move |_| {
        let first = first_half(&store);
        second_half(&store, &scope, first)
    }
}

/// The async form: the work spread over several polls.
fn async_work(
    store: Store,
    scope: LivenessScope,
) -> impl FnOnce(Plain<()>) -> Pin<Box<dyn Future<Output = Made> + Send>> + Send {
    move |_| {
        Box::pin(async move {
            let first = first_half(&store);
            yield_now().await;
            let made = second_half(&store, &scope, first);
            yield_now().await;
            made
        })
    }
}

/// Opens `outer` and, inside it, `scope`; `submit` is called in there.
fn in_scopes<R>(outer: &LivenessScope, scope: &LivenessScope, f: impl FnOnce() -> R) -> R {
    outer.open(|| scope.open(f))
}

/// The assertions every executor must pass, once its task has completed
/// (`made`) and no scope is open on this thread.
fn check(store: &Store, outer: &LivenessScope, scope: &LivenessScope, made: Made) {
    assert!(!scope.is_open() && !outer.is_open());
    assert_eq!(made.temporaries.len(), 5);
    for k in &made.temporaries {
        assert!(exists(store, k), "{k}: evicted before the scope's release");
        assert_eq!(
            scope.references(&(store, *k)),
            1,
            "{k}: made in the task but not managed by the scope it was submitted in"
        );
    }
    assert_eq!(scope.references(&made.preserved), 0);
    assert_eq!(outer.references(&made.preserved), 1);

    scope.release().unwrap();
    for k in &made.temporaries {
        assert!(
            !exists(store, k),
            "{k}: a temporary of the task outlived scope.release()"
        );
    }
    assert!(exists(store, Proxy::key(&made.preserved)), "preserved");
    assert_eq!(*made.returned, 5);
    let returned = *OwnedProxy::key(&made.returned);
    assert!(exists(store, &returned), "the returned owner lives on");

    outer.release().unwrap();
    assert!(!exists(store, Proxy::key(&made.preserved)));
    drop(made.returned);
    assert!(!exists(store, &returned));
}

/// An object made by work spawned without `submit` is managed by no scope.
fn assert_unmanaged(store: &Store, scopes: [&LivenessScope; 2], key: Key) {
    for s in scopes {
        assert_eq!(
            s.references(&(store, key)),
            0,
            "a scope leaked onto an executor thread"
        );
    }
    store.evict(&key).unwrap();
}

// ------------------------------------------------------------- executors

fn tokio_current_thread(store: Store) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (outer, scope) = (LivenessScope::new(), LivenessScope::new());
    let h = in_scopes(&outer, &scope, || {
        submit(
            rt.handle(),
            Plain(()),
            async_work(store.clone(), scope.clone()),
        )
    });
    let made = rt.block_on(h).unwrap();
    let bare = rt
        .block_on(rt.spawn({
            let store = store.clone();
            async move { store.put(&0u8).unwrap() }
        }))
        .unwrap();
    assert_unmanaged(&store, [&outer, &scope], bare);
    check(&store, &outer, &scope, made);
}

fn tokio_multi_thread(store: Store) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let (outer, scope) = (LivenessScope::new(), LivenessScope::new());
    let h = in_scopes(&outer, &scope, || {
        submit(&rt, Plain(()), async_work(store.clone(), scope.clone()))
    });
    let made = rt.block_on(h).unwrap();
    for _ in 0..4 {
        let bare = rt
            .block_on(rt.spawn({
                let store = store.clone();
                async move { store.put(&0u8).unwrap() }
            }))
            .unwrap();
        assert_unmanaged(&store, [&outer, &scope], bare);
    }
    check(&store, &outer, &scope, made);
}

fn tokio_spawn_blocking(store: Store) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let (outer, scope) = (LivenessScope::new(), LivenessScope::new());
    let h = in_scopes(&outer, &scope, || {
        submit_blocking(
            rt.handle(),
            Plain(()),
            blocking_work(store.clone(), scope.clone()),
        )
    });
    let made = h.join().unwrap();
    let bare = rt
        .block_on(rt.spawn_blocking({
            let store = store.clone();
            move || store.put(&0u8).unwrap()
        }))
        .unwrap();
    assert_unmanaged(&store, [&outer, &scope], bare);
    check(&store, &outer, &scope, made);
}

fn futures_thread_pool(store: Store) {
    let pool = futures::executor::ThreadPool::builder()
        .pool_size(1)
        .create()
        .unwrap();
    let (outer, scope) = (LivenessScope::new(), LivenessScope::new());
    let h = in_scopes(&outer, &scope, || {
        submit(&pool, Plain(()), async_work(store.clone(), scope.clone()))
    });
    let made = h.join().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    pool.spawn_ok({
        let store = store.clone();
        async move { tx.send(store.put(&0u8).unwrap()).unwrap() }
    });
    let bare = rx.recv().unwrap();
    assert_unmanaged(&store, [&outer, &scope], bare);
    check(&store, &outer, &scope, made);
}

fn std_threads(store: Store) {
    let (outer, scope) = (LivenessScope::new(), LivenessScope::new());
    let h = in_scopes(&outer, &scope, || {
        submit_blocking(
            &StdThreads,
            Plain(()),
            blocking_work(store.clone(), scope.clone()),
        )
    });
    let made = h.join().unwrap();
    check(&store, &outer, &scope, made);
}

#[cfg(feature = "rayon")]
fn rayon_pool(store: Store) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let (outer, scope) = (LivenessScope::new(), LivenessScope::new());
    let h = in_scopes(&outer, &scope, || {
        submit_blocking(
            &pool,
            Plain(()),
            blocking_work(store.clone(), scope.clone()),
        )
    });
    let made = h.join().unwrap();
    let bare = pool.install({
        let store = store.clone();
        move || store.put(&0u8).unwrap()
    });
    assert_unmanaged(&store, [&outer, &scope], bare);
    check(&store, &outer, &scope, made);
}

macro_rules! on_stores {
    ($($(#[$attr:meta])* $check:ident),* $(,)?) => {
        mod memory {
            $(
                $(#[$attr])*
                #[test]
                fn $check() {
                    super::$check(super::memory_store());
                }
            )*
        }
        mod file {
            $(
                $(#[$attr])*
                #[test]
                fn $check() {
                    super::$check(super::file_store());
                }
            )*
        }
    };
}

on_stores!(
    tokio_current_thread,
    tokio_multi_thread,
    tokio_spawn_blocking,
    futures_thread_pool,
    std_threads,
    #[cfg(feature = "rayon")]
    rayon_pool,
);

// ------------------------------------------------------------------ more

/// A task submitted where no scope is open manages nothing, even when it is
/// polled on a thread where a scope is open: it runs in the scopes open
/// where it was submitted, and only those.
#[test]
fn a_task_submitted_outside_scopes_stays_outside() {
    let store = memory_store();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let scope = LivenessScope::new();
    let h = submit(rt.handle(), Plain(store.clone()), |s| async move {
        s.put(&1u8).unwrap()
    });
    let key = scope.open(|| rt.block_on(h)).unwrap();
    assert_eq!(scope.references(&(&store, key)), 0);
    scope.release().unwrap();
    assert!(exists(&store, &key));
}

/// A task submitted from a submitted task carries the scope on.
#[test]
fn nested_submits_carry_the_scope() {
    let store = memory_store();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let scope = LivenessScope::new();
    let handle = rt.handle().clone();
    let h = scope.open(|| {
        submit(rt.handle(), Plain(store.clone()), move |s| async move {
            let inner = submit_blocking(&handle, s, |s| s.0.put(&2u8).unwrap());
            inner.await.unwrap()
        })
    });
    let key = rt.block_on(h).unwrap();
    assert_eq!(scope.references(&(&store, key)), 1);
    scope.release().unwrap();
    assert!(!exists(&store, &key));
}

/// Work spawned with the executor's own `spawn` is not carried into the
/// scope: the scope stack belongs to the thread (or, with `open_async`, to
/// the future), and only `submit` knows to take it along.
#[test]
fn a_bare_spawn_is_not_in_the_scope() {
    let store = memory_store();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let scope = LivenessScope::new();
    let (task, thread) = scope.open(|| {
        let s = store.clone();
        let task = rt.spawn(async move { s.put(&1u8).unwrap() });
        let s = store.clone();
        let thread = std::thread::spawn(move || s.put(&2u8).unwrap());
        (task, thread)
    });
    let keys = [rt.block_on(task).unwrap(), thread.join().unwrap()];
    for k in keys {
        assert_eq!(scope.references(&(&store, k)), 0);
    }
    scope.release().unwrap();
    assert!(keys.iter().all(|k| exists(&store, k)));
}
