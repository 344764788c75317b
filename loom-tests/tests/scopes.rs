//! (e) Liveness scopes count store-side: a scope's `manage`, `unmanage` and
//! `release` race each other, a peer scope's release, the owner's drop and
//! a borrow's release. Every holder claim a scope takes is given back
//! exactly once (by `release`, or later, if it was recorded after the
//! release took the table); the store-side holder count always equals the
//! references the scopes report once the threads are joined; the object is
//! evicted exactly once, only when no owner, holder or borrow remains; and
//! the store is empty at the end.
//!
//! A scope's table is a `crate::sync::Mutex`, so loom sees (and schedules)
//! its lock; the store's state is the memory connector's loom `AtomicU64`.
#![cfg(borrowstore_loom)]

use borrowstore::state::ClaimKind;
use borrowstore::{Error, Key, LivenessScope, OwnedProxy, RefProxy, Store, borrow};
use borrowstore_loom_tests::{counting_store, finish_empty, state};
use loom::thread;

type V = Vec<u64>;

/// The store-side holder count of `key` (the object must still exist).
fn holders(store: &Store, key: &Key) -> u32 {
    state(store, key)
        .expect("evicted while a scope or an owner still held it")
        .holders
}

/// Uses a borrow: the object must still be stored, and readable.
fn use_then_release(r: RefProxy<V>) {
    let store = RefProxy::store(&r).clone();
    let key = *RefProxy::key(&r);
    assert!(store.exists(&key).unwrap(), "evicted while borrowed");
    assert_eq!(*r, vec![7, 8, 9], "value gone while borrowed");
    drop(r);
}

/// `manage` on one thread races `release` of the same scope on another.
/// The new claim is either taken by the release or stays held by the
/// scope; either way the store-side count matches the scope's table, and
/// the owner keeps the object alive throughout.
#[test]
fn manage_races_release() {
    loom::model(|| {
        let (store, tally) = counting_store("scm");
        let owner = store.owned_proxy(vec![7u64, 8, 9]).unwrap();
        let key = *OwnedProxy::key(&owner);
        let scope = LivenessScope::new();
        scope.manage(&owner).unwrap();

        let (sc, s) = (scope.clone(), store.clone());
        let t = thread::spawn(move || {
            // The owner is alive: managing cannot fail.
            sc.manage(&(s, key)).expect("manage refused while owned");
        });
        scope.release().unwrap();
        t.join().unwrap();

        let refs = scope.references(&(&store, key));
        assert!(refs <= 1, "{refs} references after one manage");
        assert_eq!(
            holders(&store, &key) as usize,
            refs,
            "store-side holders differ from the scope's table"
        );
        assert_eq!(tally.evictions(), 0, "evicted while owned");

        drop(owner);
        if refs == 0 {
            assert!(state(&store, &key).is_none(), "outlived its last owner");
        } else {
            assert!(
                store.exists(&key).unwrap(),
                "evicted while the scope holds it"
            );
            scope.release().unwrap();
        }
        assert!(scope.is_empty());
        assert_eq!(tally.releases(ClaimKind::Holder), 2, "holder releases");
        assert_eq!(tally.refused_releases(), 0, "refused releases");
        assert_eq!(tally.evictions(), 1, "evictions");
        finish_empty(store);
    });
}

/// `manage` by scope `b` races the release of the object's only holder,
/// scope `a` (a plain object: no owner proxy). Either `b` gets in first and
/// the object lives on until `b` lets go, or the release evicted it and
/// `manage` is refused with `KeyNotFound`, recording nothing. Never an
/// object resurrected after its eviction.
#[test]
fn manage_races_last_holder_release() {
    loom::model(|| {
        let (store, tally) = counting_store("sclast");
        let a = LivenessScope::new();
        let p = a.open(|| store.proxy(vec![7u64, 8, 9])).unwrap();
        let key = *borrowstore::Proxy::key(&p);
        assert_eq!(holders(&store, &key), 1);

        let b = LivenessScope::new();
        let (bc, s) = (b.clone(), store.clone());
        let t = thread::spawn(move || match bc.manage(&(s, key)) {
            Ok(()) => true,
            Err(Error::KeyNotFound { .. }) => false,
            Err(e) => panic!("manage failed with the wrong error: {e:?}"),
        });
        a.release().unwrap();
        let managed = t.join().unwrap();

        if managed {
            assert_eq!(b.references(&(&store, key)), 1);
            assert_eq!(holders(&store, &key), 1, "holders");
            assert_eq!(tally.evictions(), 0, "evicted while b holds it");
            b.release().unwrap();
        } else {
            assert!(b.is_empty(), "a refused manage was recorded");
        }
        assert!(state(&store, &key).is_none(), "outlived its last holder");
        assert_eq!(tally.evictions(), 1, "evictions");
        assert_eq!(tally.refused_releases(), 0, "refused releases");
        drop(p);
        finish_empty(store);
    });
}

/// `unmanage` and `release` of one scope race over its two references:
/// each claim is given back exactly once, by whichever took it.
#[test]
fn unmanage_races_release() {
    loom::model(|| {
        let (store, tally) = counting_store("scun");
        let owner = store.owned_proxy(vec![7u64, 8, 9]).unwrap();
        let key = *OwnedProxy::key(&owner);
        let scope = LivenessScope::new();
        scope.manage(&owner).unwrap();
        scope.manage(&owner).unwrap();
        assert_eq!(holders(&store, &key), 2);

        let (sc, s) = (scope.clone(), store.clone());
        let t = thread::spawn(move || sc.unmanage(&(s, key)));
        scope.release().unwrap();
        let _unmanaged = t.join().unwrap(); // false if the release took both

        assert!(scope.is_empty());
        assert_eq!(holders(&store, &key), 0, "holders after release");
        assert_eq!(tally.releases(ClaimKind::Holder), 2, "holder releases");
        assert_eq!(tally.refused_releases(), 0, "refused releases");
        assert_eq!(tally.evictions(), 0, "evicted while owned");
        drop(owner);
        assert_eq!(tally.evictions(), 1, "evictions");
        finish_empty(store);
    });
}

/// Two peer scopes manage an owned, borrowed object. Scope `a`'s release
/// and the borrow's release each run on a thread of their own, while this
/// thread drops the owner, checks that scope `b` still keeps the object,
/// and releases `b`. Evicted exactly once, after all of them.
#[test]
fn peer_release_races_owner_drop_and_borrow() {
    loom::model(|| {
        let (store, tally) = counting_store("scpeer");
        let owner = store.owned_proxy(vec![7u64, 8, 9]).unwrap();
        let key = *OwnedProxy::key(&owner);
        let (a, b) = (LivenessScope::new(), LivenessScope::new());
        a.manage(&owner).unwrap();
        b.manage(&owner).unwrap();
        let r = borrow(&owner).unwrap();

        let ac = a.clone();
        let ta = thread::spawn(move || ac.release().unwrap());
        let tr = thread::spawn(move || use_then_release(r));
        drop(owner);
        let h = holders(&store, &key);
        assert!((1..=2).contains(&h), "{h} holders while b holds it");
        assert!(store.exists(&key).unwrap(), "evicted while b holds it");
        b.release().unwrap();
        ta.join().unwrap();
        tr.join().unwrap();

        assert!(
            state(&store, &key).is_none(),
            "outlived its owners and borrow"
        );
        assert_eq!(tally.evictions(), 1, "evictions");
        assert_eq!(tally.releases(ClaimKind::Holder), 2, "holder releases");
        assert_eq!(tally.refused_releases(), 0, "refused releases");
        finish_empty(store);
    });
}
