//! (w) Waiting borrows: a waiter's registration racing the release that
//! frees the object. A waiter records what was announced, marks the slot,
//! then tries; a release that finds the mark announces itself. If a
//! wake-up could be lost, `loom::future::block_on` would park forever and
//! loom would report the deadlock.
#![cfg(borrowstore_loom)]

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use borrowstore::{OwnedProxy, borrow, borrow_async, mut_borrow, mut_borrow_async};
use borrowstore_loom_tests::{finish_empty, fresh_store, state};
use loom::thread;

/// Asserts that the object has no borrow left, then drops the owner and
/// checks the store is empty.
fn finish(store: borrowstore::Store, owner: Arc<OwnedProxy<u64>>) {
    let key = *OwnedProxy::key(&owner);
    let s = state(&store, &key).expect("still owned");
    assert!(
        s.readers == 0 && !s.writer,
        "claims left after every borrow ended: {s:?}"
    );
    drop(Arc::try_unwrap(owner).expect("joined"));
    finish_empty(store);
}

/// `borrow_async` waits for a writer that another thread drops meanwhile.
#[test]
fn borrow_async_races_the_writers_release() {
    loom::model(|| {
        let store = fresh_store("wait-reader");
        let owner = Arc::new(store.owned_proxy(1u64).unwrap());
        let w = mut_borrow(&owner).unwrap();
        let t = thread::spawn(move || drop(w));
        let r = loom::future::block_on(borrow_async(&owner)).expect("granted once released");
        assert_eq!(*r, 1);
        drop(r);
        t.join().unwrap();
        finish(store, owner);
    });
}

/// `mut_borrow_async` waits for two readers that two threads drop at once:
/// it gets in after the last of them, whichever it is.
#[test]
fn mut_borrow_async_races_the_last_readers_release() {
    loom::model(|| {
        let store = fresh_store("wait-writer");
        let owner = Arc::new(store.owned_proxy(1u64).unwrap());
        let r1 = borrow(&owner).unwrap();
        let r2 = borrow(&owner).unwrap();
        let t1 = thread::spawn(move || drop(r1));
        let t2 = thread::spawn(move || drop(r2));
        let w = loom::future::block_on(mut_borrow_async(&owner)).expect("granted once released");
        let key = *OwnedProxy::key(&owner);
        let s = state(&store, &key).unwrap();
        assert!(s.writer && s.readers == 0, "a writer beside readers: {s:?}");
        drop(w);
        t1.join().unwrap();
        t2.join().unwrap();
        finish(store, owner);
    });
}

/// A waiter polled once and dropped while the writer is released on
/// another thread leaves no claim and no place in line: the next waiting
/// borrow is not held up.
#[test]
fn a_dropped_waiter_races_the_release() {
    loom::model(|| {
        let store = fresh_store("wait-dropped");
        let owner = Arc::new(store.owned_proxy(1u64).unwrap());
        let w = mut_borrow(&owner).unwrap();
        let t = thread::spawn(move || drop(w));
        {
            let mut pending = Box::pin(borrow_async(&owner));
            let mut cx = Context::from_waker(futures_noop_waker());
            if let Poll::Ready(r) = pending.as_mut().poll(&mut cx) {
                drop(r.expect("granted"));
            }
        }
        t.join().unwrap();
        let w = loom::future::block_on(mut_borrow_async(&owner)).expect("nothing in the way");
        drop(w);
        finish(store, owner);
    });
}

/// A waker that does nothing (the dropped waiter is never woken usefully).
fn futures_noop_waker() -> &'static std::task::Waker {
    std::task::Waker::noop()
}
