//! Dropping an owner, and the many-readers-or-one-writer rule.

use borrowstore::{Error, OwnedProxy, RefMutProxy, RefProxy, Store, borrow, mut_borrow, update};

use super::{V, assert_evicted, assert_idle_owned, assert_stored, state, version};
use crate::assert_err;
use crate::probe::assert_empty;

/// Dropping the owner of an object nobody borrows evicts it, also after
/// borrows that ended first.
pub fn owner_drop_evicts(store: Store) {
    let owner = store.owned_proxy(vec![1u64, 2, 3]).unwrap();
    let key = *OwnedProxy::key(&owner);
    assert_stored(&store, &key);
    assert_idle_owned(state(&store, &key));
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2, 3]));
    drop(owner);
    assert_evicted(&store, &key);
    assert_eq!(store.get::<V>(&key).unwrap(), None);

    // also after it was borrowed and the borrows ended first
    let owner = store.owned_proxy(vec![4u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    drop(borrow(&owner).unwrap());
    drop(mut_borrow(&owner).unwrap());
    assert_idle_owned(state(&store, &key));
    drop(owner);
    assert_evicted(&store, &key);
    assert_empty(&store);
}

/// An owner dropped while three readers hold the object leaves it to them:
/// it stays, every reader still resolves, and the last one to go evicts
/// it — in each of the six release orders.
pub fn owner_drop_while_read_defers_eviction_in_every_release_order(store: Store) {
    const ORDERS: [[usize; 3]; 6] = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in ORDERS {
        let owner = store.owned_proxy(vec![7u64; 4]).unwrap();
        let key = *OwnedProxy::key(&owner);
        let mut readers: Vec<Option<RefProxy<V>>> =
            (0..3).map(|_| Some(borrow(&owner).unwrap())).collect();
        assert_eq!(state(&store, &key).readers, 3);
        drop(owner);
        let s = state(&store, &key);
        assert!(!s.owner, "{order:?}: {s:?}");
        assert_eq!(s.readers, 3, "{order:?}");
        assert_stored(&store, &key);
        for (n, &i) in order.iter().enumerate() {
            // references stay valid: every remaining reader still resolves,
            // even for the first time after the owner is gone
            for r in readers.iter().flatten() {
                assert_eq!(RefProxy::resolve(r).unwrap(), &vec![7u64; 4]);
            }
            drop(readers[i].take());
            let left = 3 - (n as u32 + 1);
            if left > 0 {
                assert_stored(&store, &key);
                assert_eq!(state(&store, &key).readers, left, "{order:?}");
            } else {
                assert_evicted(&store, &key);
            }
        }
    }
    assert_empty(&store);
}

/// An owner dropped while a writer holds the object leaves it to the
/// writer, which still publishes; the object is evicted when the writer
/// goes, changed or not.
pub fn owner_drop_while_written_defers_eviction(store: Store) {
    // a writer that publishes after the owner is gone
    let owner = store.owned_proxy(vec![1u64, 2, 3]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let mut w = mut_borrow(&owner).unwrap();
    drop(owner);
    let s = state(&store, &key);
    assert!(s.writer && !s.owner && s.readers == 0, "{s:?}");
    assert_stored(&store, &key);
    w.push(4);
    update(&mut w).unwrap();
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2, 3, 4]));
    assert_eq!(version(&store, &key), 2);
    w.push(5); // published on drop, then the object is evicted
    drop(w);
    assert_evicted(&store, &key);

    // an unchanged writer
    let owner = store.owned_proxy(String::from("x")).unwrap();
    let key = *OwnedProxy::key(&owner);
    let w = mut_borrow(&owner).unwrap();
    drop(owner);
    assert_stored(&store, &key);
    assert_eq!(RefMutProxy::resolve(&w).unwrap(), "x");
    drop(w);
    assert_evicted(&store, &key);
    assert_empty(&store);
}

/// While readers hold an object a mutable borrow is refused with
/// `AlreadyBorrowed`, leaving no trace; once the last reader is gone it
/// succeeds.
pub fn readers_refuse_a_writer(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let r1 = borrow(&owner).unwrap();
    let r2 = borrow(&owner).unwrap();
    assert_err!(mut_borrow(&owner), Error::AlreadyBorrowed { key: k, .. } if k == key);
    // the refusal left no trace
    let s = state(&store, &key);
    assert_eq!(s.readers, 2);
    assert!(!s.writer && s.owner);
    drop(r1);
    assert_err!(mut_borrow(&owner), Error::AlreadyBorrowed { key: k, .. } if k == key);
    assert_eq!(state(&store, &key).readers, 1);
    drop(r2);
    let w = mut_borrow(&owner).unwrap();
    let s = state(&store, &key);
    assert!(s.writer && s.readers == 0, "{s:?}");
    drop(w);
    assert_idle_owned(state(&store, &key));
    drop(owner);
    assert_empty(&store);
}

/// While a writer holds an object, a shared borrow is refused with
/// `AlreadyMutablyBorrowed` and a second writer with `AlreadyBorrowed`.
pub fn a_writer_refuses_readers_and_a_second_writer(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let w = mut_borrow(&owner).unwrap();
    assert_err!(borrow(&owner), Error::AlreadyMutablyBorrowed { key: k, .. } if k == key);
    assert_err!(mut_borrow(&owner), Error::AlreadyBorrowed { key: k, .. } if k == key);
    let s = state(&store, &key);
    assert!(s.writer && s.readers == 0 && s.owner, "{s:?}");
    drop(w);
    assert_idle_owned(state(&store, &key));
    let r = borrow(&owner).unwrap();
    assert_eq!(state(&store, &key).readers, 1);
    drop(r);
    drop(owner);
    assert_empty(&store);
}

// ------------------------------------------------------------ reborrow

/// `RefProxy::reborrow` takes a new reader claim of its own: two reborrows
/// and the original are three readers, each released by its own drop, in
/// any order.
pub fn reborrow_is_a_reader_of_its_own(store: Store) {
    let owner = store.owned_proxy(vec![1u64, 2, 3]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let r = borrow(&owner).unwrap();
    let a = RefProxy::reborrow(&r).unwrap();
    let b = RefProxy::reborrow(&a).unwrap();
    assert_eq!(RefProxy::key(&b), &key);
    assert_eq!(state(&store, &key).readers, 3);
    assert_err!(mut_borrow(&owner), Error::AlreadyBorrowed { .. });

    drop(r);
    store.flush().unwrap();
    assert_eq!(state(&store, &key).readers, 2);
    assert_eq!(*a, vec![1, 2, 3]);
    drop(b);
    store.flush().unwrap();
    assert_eq!(state(&store, &key).readers, 1);
    assert_eq!(a.len(), 3);

    // The owner goes while a reborrow is held: eviction waits for it.
    drop(owner);
    let c = RefProxy::reborrow(&a).unwrap();
    drop(a);
    store.flush().unwrap();
    assert_eq!(state(&store, &key).readers, 1);
    assert_eq!(c.len(), 3);
    drop(c);
    store.flush().unwrap();
    assert_evicted(&store, &key);
    assert_empty(&store);
}

/// A reborrow handed to `submit` ends with its task; the original lives
/// on. A task can hand reborrows of its own borrow to sub-tasks. A borrow
/// whose task has ended it cannot be reborrowed ([`Error::ClaimLost`]).
pub fn reborrow_handed_to_a_task_ends_with_it(store: Store) {
    use borrowstore::submit::{StdThreads, submit_blocking};

    let owner = store.owned_proxy(vec![1u64, 2]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let r = borrow(&owner).unwrap();
    let n = submit_blocking(&StdThreads, RefProxy::reborrow(&r).unwrap(), |s| s.len())
        .join()
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(state(&store, &key).readers, 1);
    assert_eq!(*r, vec![1, 2]);

    // A task holding a borrow hands reborrows to its sub-tasks.
    let total = submit_blocking(&StdThreads, r, |r| {
        let subs: Vec<_> = (0..2)
            .map(|_| {
                let s = RefProxy::reborrow(&r).unwrap();
                submit_blocking(&StdThreads, s, |s| s.iter().sum::<u64>())
            })
            .collect();
        subs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    })
    .join()
    .unwrap();
    assert_eq!(total, 6);
    assert_idle_owned(state(&store, &key));

    // A borrow that escaped its task has been ended: no reborrow of it.
    let escaped = submit_blocking(&StdThreads, borrow(&owner).unwrap(), |r| r)
        .join()
        .unwrap();
    assert_err!(RefProxy::reborrow(&escaped), Error::ClaimLost { .. });
    drop(escaped);
    assert_idle_owned(state(&store, &key));
    drop(owner);
    assert_evicted(&store, &key);
    assert_empty(&store);
}
