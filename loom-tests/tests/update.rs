//! (d) `update` racing a borrow: a published change never lands while a
//! reader holds the object, a refused `update` keeps the local changes, and
//! a reader sees one whole version from start to end.
#![cfg(borrowstore_loom)]

use std::sync::Arc;

use borrowstore::state::{Claim, ClaimKind, Op};
use borrowstore::{Error, OwnedProxy, borrow, mut_borrow, update};
use borrowstore_loom_tests::{Ghost, finish_empty, fresh_store, state};
use loom::thread;

/// `update(&mut owner)` races a reader that another process holds: the
/// reader thread has no handle, it takes and gives back a reader claim on
/// the key through the connector, as a remote process would.
#[test]
fn owner_update_races_a_reader() {
    loom::model(|| {
        let store = fresh_store("upo");
        let mut owner = store.owned_proxy(vec![1u64]).unwrap();
        let key = *OwnedProxy::key(&owner);

        let s = store.clone();
        let t = thread::spawn(move || {
            let claim = Claim::new(ClaimKind::Reader);
            match s.connector().apply(&key, Op::Acquire(claim)) {
                Ok(_) => {
                    let first: Vec<u64> = s.get(&key).unwrap().expect("stored");
                    assert!(first == [1] || first == [1, 2], "{first:?}");
                    let again: Vec<u64> = s.get(&key).unwrap().expect("stored");
                    assert_eq!(first, again, "value changed under a shared borrow");
                    s.connector()
                        .apply(&key, Op::Release(claim))
                        .expect("the reader claim this thread holds was lost store-side");
                    true
                }
                Err(Error::AlreadyMutablyBorrowed { .. }) => false,
                Err(e) => panic!("reader refused with the wrong error: {e:?}"),
            }
        });

        owner.push(2); // local, copy-on-write
        let published = match update(&mut owner) {
            Ok(()) => {
                assert!(!OwnedProxy::is_modified(&owner));
                true
            }
            Err(Error::AlreadyBorrowed { .. }) => {
                assert!(
                    OwnedProxy::is_modified(&owner),
                    "a refused update lost the changes"
                );
                assert_eq!(*owner, vec![1, 2]);
                false
            }
            Err(e) => panic!("update refused with the wrong error: {e:?}"),
        };
        let read = t.join().unwrap();
        assert!(published || read, "both refused");
        if !published {
            update(&mut owner).expect("nothing borrows the object any more");
        }

        let i = store.connector().inspect(&key).unwrap().unwrap();
        assert_eq!(i.version, 2);
        assert!(
            !i.state.borrowed(),
            "claims left after all were released: {:?}",
            i.state
        );
        assert_eq!(store.get::<Vec<u64>>(&key).unwrap().unwrap(), vec![1, 2]);
        drop(owner);
        finish_empty(store);
    });
}

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
        assert!(!s.borrowed(), "claims left after all were released: {s:?}");
        drop(Arc::try_unwrap(owner).expect("joined"));
        finish_empty(store);
    });
}
