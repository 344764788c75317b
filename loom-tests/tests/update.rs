//! (d) `update` racing a borrow: a published change never lands while a
//! reader holds the object, a refused `update` keeps the local changes, and
//! a reader sees one whole version from start to end. (`update` on an owner
//! racing a reader claim taken through the connector, with no handle, is
//! modelled inside the crate: `src/sync/models.rs`.)
#![cfg(borrowstore_loom)]

use std::sync::Arc;

use borrowstore::{Error, OwnedProxy, borrow, mut_borrow, update};
use borrowstore_loom_tests::{Ghost, finish_empty, fresh_store, state};
use loom::thread;

/// `update` through a `RefMutProxy` races `borrow` from another thread.
#[test]
fn refmut_update_races_borrow() {
    loom::model(|| {
        let store = fresh_store("upw");
        let owner = Arc::new(store.owned_proxy(vec![1u64]).unwrap());
        let key = *OwnedProxy::key(&owner);
        let ghost = Arc::new(Ghost::default());

        let (o, g) = (owner.clone(), ghost.clone());
        let t = thread::spawn(move || match borrow(&o) {
            Ok(r) => {
                g.reader_in();
                let seen = r.clone();
                assert!(seen == [1] || seen == [1, 2], "{seen:?}");
                let s = OwnedProxy::store(&o);
                let stored: Vec<u64> = s.get(OwnedProxy::key(&o)).unwrap().unwrap();
                assert_eq!(stored, seen, "value changed under a shared borrow");
                g.reader_out();
                drop(r);
                Some(seen)
            }
            Err(Error::AlreadyMutablyBorrowed { .. }) => None,
            Err(e) => panic!("borrow refused with the wrong error: {e:?}"),
        });

        let wrote = match mut_borrow(&owner) {
            Ok(mut w) => {
                ghost.writer_in();
                w.push(2);
                update(&mut w).expect("the writer can always publish");
                ghost.writer_out();
                drop(w);
                true
            }
            Err(Error::AlreadyBorrowed { .. }) => false,
            Err(e) => panic!("mut_borrow refused with the wrong error: {e:?}"),
        };
        let seen = t.join().unwrap();
        assert!(wrote || seen.is_some(), "both refused");

        let expect: &[u64] = if wrote { &[1, 2] } else { &[1] };
        assert_eq!(store.get::<Vec<u64>>(&key).unwrap().unwrap(), expect);
        let s = state(&store, &key).unwrap();
        assert!(
            s.readers == 0 && !s.writer,
            "claims left after all were released: {s:?}"
        );
        drop(Arc::try_unwrap(owner).expect("joined"));
        finish_empty(store);
    });
}
