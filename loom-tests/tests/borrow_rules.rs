//! (a) Many readers or one writer, decided store-side: concurrent `borrow`,
//! `mut_borrow` and releases on one object never leave a writer beside a
//! reader (or beside another writer), and refusals carry the right error.
#![cfg(borrowstore_loom)]

use std::sync::Arc;

use borrowstore::{Error, OwnedProxy, borrow, mut_borrow};
use borrowstore_loom_tests::{Ghost, finish_empty, fresh_store, state};
use loom::thread;

type Owner = Arc<OwnedProxy<Vec<u64>>>;

/// Takes a shared borrow, checks it, reads the value, gives it back.
/// Returns whether the borrow was granted.
fn reader(owner: &Owner, ghost: &Ghost) -> bool {
    match borrow(owner) {
        Ok(r) => {
            ghost.reader_in();
            let key = OwnedProxy::key(owner);
            let s = state(OwnedProxy::store(owner), key).expect("evicted while borrowed");
            assert!(
                !s.writer && s.readers >= 1,
                "a granted shared borrow is not what the store records: {s:?}"
            );
            assert_eq!(*r, vec![1, 2, 3]);
            ghost.reader_out();
            drop(r);
            true
        }
        Err(Error::AlreadyMutablyBorrowed { .. }) => false,
        Err(e) => panic!("borrow refused with the wrong error: {e:?}"),
    }
}

/// Takes the mutable borrow, checks it is alone, gives it back.
/// Returns whether the borrow was granted.
fn writer(owner: &Owner, ghost: &Ghost) -> bool {
    match mut_borrow(owner) {
        Ok(w) => {
            ghost.writer_in();
            let key = OwnedProxy::key(owner);
            let s = state(OwnedProxy::store(owner), key).expect("evicted while borrowed");
            assert!(
                s.writer && s.readers == 0,
                "a granted mutable borrow is not what the store records: {s:?}"
            );
            assert_eq!(*w, vec![1, 2, 3]);
            ghost.writer_out();
            drop(w);
            true
        }
        Err(Error::AlreadyBorrowed { .. }) => false,
        Err(e) => panic!("mut_borrow refused with the wrong error: {e:?}"),
    }
}

fn end(owner: Owner) {
    let owner = Arc::try_unwrap(owner).expect("every thread joined");
    let store = OwnedProxy::store(&owner).clone();
    let key = *OwnedProxy::key(&owner);
    let s = state(&store, &key).expect("still stored while owned");
    assert!(
        s.owner && s.readers == 0 && !s.writer,
        "claims leaked: {s:?}"
    );
    drop(owner);
    assert!(!store.exists(&key).unwrap());
    finish_empty(store);
}

/// Two readers (one in the model's main thread) and one writer.
#[test]
fn readers_and_writer_exclude_each_other() {
    loom::model(|| {
        let store = fresh_store("rw");
        let owner: Owner = Arc::new(store.owned_proxy(vec![1u64, 2, 3]).unwrap());
        let ghost = Arc::new(Ghost::default());

        let (o, g) = (owner.clone(), ghost.clone());
        let r1 = thread::spawn(move || reader(&o, &g));
        let (o, g) = (owner.clone(), ghost.clone());
        let w = thread::spawn(move || writer(&o, &g));
        let r0 = reader(&owner, &ghost);

        let r1 = r1.join().unwrap();
        let w = w.join().unwrap();
        // A refusal needs a reason: a refused reader means the writer got in,
        // a refused writer means a reader got in.
        if !r0 || !r1 {
            assert!(w, "a reader was refused but no writer ever held the object");
        }
        if !w {
            assert!(
                r0 || r1,
                "the writer was refused but no reader ever held the object"
            );
        }
        assert_eq!(ghost.live(), 0);
        drop(store);
        end(owner);
    });
}

/// Two writers: never both at once; the loser gets `AlreadyBorrowed`.
#[test]
fn two_writers_never_overlap() {
    loom::model(|| {
        let store = fresh_store("ww");
        let owner: Owner = Arc::new(store.owned_proxy(vec![1u64, 2, 3]).unwrap());
        let ghost = Arc::new(Ghost::default());

        let (o, g) = (owner.clone(), ghost.clone());
        let t = thread::spawn(move || writer(&o, &g));
        let a = writer(&owner, &ghost);
        let b = t.join().unwrap();
        assert!(a || b, "both writers refused");
        drop(store);
        end(owner);
    });
}

/// A borrow held across the race: the writer is always refused while it
/// lives, and gets in once the reader is released.
#[test]
fn release_lets_the_writer_in() {
    loom::model(|| {
        let store = fresh_store("rel");
        let owner: Owner = Arc::new(store.owned_proxy(vec![1u64, 2, 3]).unwrap());
        let held = borrow(&owner).unwrap();

        let o = owner.clone();
        let t = thread::spawn(move || match mut_borrow(&o) {
            Ok(w) => {
                // Only possible after `held` was released.
                let s = state(OwnedProxy::store(&o), OwnedProxy::key(&o)).unwrap();
                assert!(s.writer && s.readers == 0, "{s:?}");
                drop(w);
                true
            }
            Err(Error::AlreadyBorrowed { .. }) => false,
            Err(e) => panic!("wrong refusal: {e:?}"),
        });
        drop(held);
        let got_in = t.join().unwrap();
        if !got_in {
            // Refused while `held` lived; now it must be granted.
            drop(mut_borrow(&owner).expect("the reader was released"));
        }
        drop(store);
        end(owner);
    });
}
