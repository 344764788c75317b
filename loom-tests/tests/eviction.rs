//! (b) An owner dropped while borrowed defers eviction to the end of the last
//! borrow: the object is evicted exactly once, never while borrowed, and the
//! store is empty at the end.
#![cfg(borrowstore_loom)]

use borrowstore::{Error, OwnedProxy, RefProxy, borrow};
use borrowstore_loom_tests::{counting_store, finish_empty, fresh_store};
use loom::thread;

/// Uses a borrow: the object must still be stored, and readable.
fn use_then_release(r: RefProxy<Vec<u64>>) {
    let store = RefProxy::store(&r).clone();
    let key = *RefProxy::key(&r);
    assert!(store.exists(&key).unwrap(), "evicted while borrowed");
    assert_eq!(*r, vec![7, 8, 9], "value gone while borrowed");
    drop(r);
}

/// The owner's drop races the last borrow's release.
#[test]
fn owner_drop_races_last_release() {
    loom::model(|| {
        let store = fresh_store("drop1");
        let owner = store.owned_proxy(vec![7u64, 8, 9]).unwrap();
        let key = *OwnedProxy::key(&owner);
        let r = borrow(&owner).unwrap();

        let t = thread::spawn(move || use_then_release(r));
        drop(owner);
        t.join().unwrap();

        assert!(
            !store.exists(&key).unwrap(),
            "the object outlived its owner and its last borrow"
        );
        assert!(store.inspect(&key).unwrap().is_none());
        finish_empty(store);
    });
}

/// The owner's drop races the releases of two borrows.
#[test]
fn owner_drop_races_two_releases() {
    loom::model(|| {
        let store = fresh_store("drop2");
        let owner = store.owned_proxy(vec![7u64, 8, 9]).unwrap();
        let key = *OwnedProxy::key(&owner);
        let r1 = borrow(&owner).unwrap();
        let r2 = borrow(&owner).unwrap();

        let t1 = thread::spawn(move || use_then_release(r1));
        let t2 = thread::spawn(move || use_then_release(r2));
        drop(owner);
        t1.join().unwrap();
        t2.join().unwrap();

        assert!(
            !store.exists(&key).unwrap(),
            "the object outlived its owner and its last borrow"
        );
        finish_empty(store);
    });
}

/// Owner drop, the last borrow's release and an explicit `store.evict` all
/// race; the connector counts every transition whose effect is an eviction,
/// on every path. Exactly one, and `evict` is refused only while borrowed.
#[test]
fn evicted_exactly_once() {
    loom::model(|| {
        let (store, tally) = counting_store("once");
        let owner = store.owned_proxy(vec![7u64, 8, 9]).unwrap();
        let key = *OwnedProxy::key(&owner);
        let r = borrow(&owner).unwrap();

        let t1 = thread::spawn(move || use_then_release(r));
        let s = store.clone();
        let t2 = thread::spawn(move || match s.evict(&key) {
            Ok(_) => {}
            Err(Error::AlreadyBorrowed { .. }) => {}
            Err(e) => panic!("evict failed with the wrong error: {e:?}"),
        });
        drop(owner);
        t1.join().unwrap();
        t2.join().unwrap();

        assert_eq!(tally.evictions(), 1, "evictions");
        assert!(
            !store.exists(&key).unwrap(),
            "the object outlived its owner and its last borrow"
        );
        finish_empty(store);
    });
}

/// An explicit eviction races a new borrow: either the borrow is granted
/// and the eviction refused (`AlreadyBorrowed`), or the eviction wins and
/// the borrow is refused (`KeyNotFound`), or the borrow comes and goes
/// first and the eviction succeeds after it.
#[test]
fn evict_races_borrow() {
    loom::model(|| {
        let store = fresh_store("evb");
        let owner = store.owned_proxy(vec![7u64, 8, 9]).unwrap();
        let key = *OwnedProxy::key(&owner);

        let s = store.clone();
        let t = thread::spawn(move || match s.evict(&key) {
            Ok(evicted) => {
                assert!(evicted);
                true
            }
            Err(Error::AlreadyBorrowed { .. }) => false,
            Err(e) => panic!("evict failed with the wrong error: {e:?}"),
        });
        let borrowed = match borrow(&owner) {
            Ok(r) => {
                use_then_release(r);
                true
            }
            Err(Error::KeyNotFound { .. }) => false,
            Err(e) => panic!("borrow refused with the wrong error: {e:?}"),
        };
        let evicted = t.join().unwrap();
        assert!(borrowed || evicted, "both refused");
        if !evicted {
            assert!(store.exists(&key).unwrap(), "refused eviction evicted");
        }
        drop(owner);
        assert!(
            !store.exists(&key).unwrap(),
            "the object outlived its owner and its last borrow"
        );
        finish_empty(store);
    });
}
