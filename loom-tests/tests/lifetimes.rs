//! (g) A `ContextLifetime` closing races `put_in` on the lifetime, and the
//! last borrow's release: an object created in a lifetime that ends
//! meanwhile is taken back out (never left unowned), a lifetime's holder
//! claim is given back exactly once, and the object is evicted exactly
//! once, after its last owner and its last borrow. The store is empty at
//! the end.
//!
//! The lifetime's table is a `crate::sync::Mutex`, seen by loom.
#![cfg(borrowstore_loom)]

use std::sync::Arc;

use borrowstore::state::ClaimKind;
use borrowstore::{ContextLifetime, Error, OwnedProxy, RefProxy, borrow};
use borrowstore_loom_tests::{counting_store, finish_empty, state};
use loom::thread;

type V = Vec<u64>;

/// `put_in` on one thread races `close` on another: either the object was
/// created in the lifetime and evicted by the close, or `put_in` was
/// refused with `LifetimeEnded` (before writing, or after, taking it back
/// out). Nothing is left behind.
#[test]
fn close_races_put_in() {
    loom::model(|| {
        let (store, tally) = counting_store("ltput");
        let lt = Arc::new(ContextLifetime::new(&store));

        let (l, s) = (lt.clone(), store.clone());
        let t = thread::spawn(move || s.put_in(&*l, &vec![7u64, 8, 9]));
        lt.close().unwrap();
        let put = t.join().unwrap();

        assert!(lt.done() && lt.is_empty());
        match put {
            Ok(key) => {
                assert!(state(&store, &key).is_none(), "outlived its lifetime");
                assert_eq!(tally.evictions(), 1, "evictions");
                assert_eq!(tally.releases(ClaimKind::Holder), 1);
            }
            Err(Error::LifetimeEnded) => {
                // Refused before writing (no eviction), or written and
                // taken back out (one).
                assert!(tally.evictions() <= 1, "evictions");
                assert_eq!(tally.releases(ClaimKind::Holder), tally.evictions());
            }
            Err(e) => panic!("put_in failed with the wrong error: {e:?}"),
        }
        assert_eq!(tally.refused_releases(), 0, "refused releases");
        drop(lt);
        finish_empty(store);
    });
}

/// The lifetime is the object's last owner and closes while the last
/// borrow is released on another thread: evicted exactly once, never while
/// borrowed.
#[test]
fn close_races_last_borrow_release() {
    loom::model(|| {
        let (store, tally) = counting_store("ltborrow");
        let lt = ContextLifetime::new(&store);
        let owner = store.owned_proxy(vec![7u64, 8, 9]).unwrap();
        let key = *OwnedProxy::key(&owner);
        lt.add_proxy(&owner).unwrap();
        let r = borrow(&owner).unwrap();
        drop(owner); // the lifetime and the borrow remain
        assert!(store.exists(&key).unwrap(), "evicted while held");

        let t = thread::spawn(move || {
            let r: RefProxy<V> = r;
            assert!(
                RefProxy::store(&r).exists(&key).unwrap(),
                "evicted while borrowed"
            );
            assert_eq!(*r, vec![7, 8, 9], "value gone while borrowed");
        });
        lt.close().unwrap();
        t.join().unwrap();

        assert!(
            state(&store, &key).is_none(),
            "outlived its lifetime and borrow"
        );
        assert_eq!(tally.evictions(), 1, "evictions");
        assert_eq!(tally.releases(ClaimKind::Holder), 1, "holder releases");
        assert_eq!(tally.refused_releases(), 0, "refused releases");
        drop(lt);
        finish_empty(store);
    });
}
