//! Publishing changes: `update`, a writer dropped with changes, and what
//! an owner sees of what a writer published.

use borrowstore::{
    Error, OwnedProxy, Proxy, RefMutProxy, RefProxy, Store, borrow, clone, mut_borrow, update,
};

use super::{V, assert_idle_owned, state, version};
use crate::assert_err;
use crate::probe::assert_empty;

/// `update` of a writer publishes its changes, bumps the version once and
/// keeps the borrow; with nothing new it changes nothing; readers and
/// plain proxies then see the new value.
pub fn update_of_ref_mut_publishes_and_bumps_version(store: Store) {
    let owner = store.owned_proxy(vec![1u64, 2, 3]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let v0 = version(&store, &key);
    let mut w = mut_borrow(&owner).unwrap();
    w.push(4);
    assert!(RefMutProxy::is_modified(&w));
    // local until published
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2, 3]));
    assert_eq!(version(&store, &key), v0);

    update(&mut w).unwrap();
    assert!(!RefMutProxy::is_modified(&w));
    assert_eq!(*w, vec![1, 2, 3, 4]);
    assert_eq!(version(&store, &key), v0 + 1);
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2, 3, 4]));
    // nothing new to publish: no bump
    update(&mut w).unwrap();
    assert_eq!(version(&store, &key), v0 + 1);
    assert!(state(&store, &key).writer, "update keeps the borrow");
    drop(w);
    assert_eq!(
        version(&store, &key),
        v0 + 1,
        "drop after update republished"
    );
    assert_idle_owned(state(&store, &key));

    let r = borrow(&owner).unwrap();
    assert_eq!(RefProxy::resolve(&r).unwrap(), &vec![1, 2, 3, 4]);
    let p: Proxy<V> = store.proxy_from_key(key);
    assert_eq!(Proxy::resolve(&p).unwrap(), &vec![1, 2, 3, 4]);
    drop(r);

    // a second round
    let mut w = mut_borrow(&owner).unwrap();
    w.clear();
    update(&mut w).unwrap();
    drop(w);
    assert_eq!(version(&store, &key), v0 + 2);
    let p: Proxy<V> = store.proxy_from_key(key);
    assert_eq!(Proxy::resolve(&p).unwrap(), &Vec::<u64>::new());
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![]));
    drop(owner);
    assert_empty(&store);
}

/// `update` of an owner publishes its local changes and bumps the version;
/// with nothing new, or after `discard_changes`, it publishes nothing.
pub fn update_of_owner_publishes_local_changes(store: Store) {
    let mut owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let v0 = version(&store, &key);
    owner.push(2);
    assert!(OwnedProxy::is_modified(&owner));
    assert_eq!(*owner, vec![1, 2]);
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1]));
    assert_eq!(version(&store, &key), v0);

    update(&mut owner).unwrap();
    assert!(!OwnedProxy::is_modified(&owner));
    assert_eq!(*owner, vec![1, 2]);
    assert_eq!(version(&store, &key), v0 + 1);
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2]));
    assert_idle_owned(state(&store, &key)); // the transient writer is gone

    let r = borrow(&owner).unwrap();
    assert_eq!(RefProxy::resolve(&r).unwrap(), &vec![1, 2]);
    drop(r);
    let p: Proxy<V> = store.proxy_from_key(key);
    assert_eq!(Proxy::resolve(&p).unwrap(), &vec![1, 2]);

    // nothing to publish: Ok, no bump
    update(&mut owner).unwrap();
    assert_eq!(version(&store, &key), v0 + 1);

    // discarded changes are never published
    owner.push(99);
    OwnedProxy::discard_changes(&mut owner);
    assert_eq!(*owner, vec![1, 2]);
    update(&mut owner).unwrap();
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2]));
    assert_eq!(version(&store, &key), v0 + 1);
    drop(owner);
    assert_empty(&store);
}

/// `update` of an owner is refused with `AlreadyBorrowed` while the object
/// is borrowed (even with nothing to publish), and the owner keeps its
/// local changes for a later `update`.
pub fn update_of_owner_refused_while_borrowed_keeps_local_changes(store: Store) {
    let mut owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let v0 = version(&store, &key);

    // refused even with nothing to publish
    let r = borrow(&owner).unwrap();
    assert_err!(update(&mut owner), Error::AlreadyBorrowed { key: k, .. } if k == key);

    owner.push(2);
    assert_err!(update(&mut owner), Error::AlreadyBorrowed { key: k, .. } if k == key);
    assert!(OwnedProxy::is_modified(&owner));
    assert_eq!(*owner, vec![1, 2]);
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1]));
    assert_eq!(version(&store, &key), v0);
    let s = state(&store, &key);
    assert!(s.readers == 1 && !s.writer, "{s:?}");
    assert_eq!(RefProxy::resolve(&r).unwrap(), &vec![1]);
    drop(r);

    let w = mut_borrow(&owner).unwrap();
    assert_err!(update(&mut owner), Error::AlreadyBorrowed { key: k, .. } if k == key);
    assert!(OwnedProxy::is_modified(&owner));
    assert_eq!(*owner, vec![1, 2]);
    let s = state(&store, &key);
    assert!(s.writer && s.readers == 0, "{s:?}");
    drop(w);
    assert_eq!(version(&store, &key), v0);

    update(&mut owner).unwrap();
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2]));
    assert_eq!(version(&store, &key), v0 + 1);
    assert_idle_owned(state(&store, &key));
    drop(owner);
    assert_empty(&store);
}

/// A writer with changes publishes them when it is dropped.
pub fn changed_ref_mut_publishes_on_drop(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let v0 = version(&store, &key);
    let mut w = mut_borrow(&owner).unwrap();
    w.push(9);
    assert_eq!(version(&store, &key), v0);
    drop(w);
    assert_eq!(version(&store, &key), v0 + 1);
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 9]));
    assert_idle_owned(state(&store, &key));
    let r = borrow(&owner).unwrap();
    assert_eq!(RefProxy::resolve(&r).unwrap(), &vec![1, 9]);
    drop(r);
    drop(owner);
    assert_empty(&store);
}

/// A writer that changed nothing (or discarded its changes) publishes
/// nothing: the version stays.
pub fn unchanged_ref_mut_does_not_bump_version(store: Store) {
    let owner = store.owned_proxy(vec![1u64, 2]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let v0 = version(&store, &key);

    let w = mut_borrow(&owner).unwrap();
    assert_eq!(w.len(), 2); // read through Deref only
    drop(w);
    assert_eq!(version(&store, &key), v0);

    let mut w = mut_borrow(&owner).unwrap();
    w.push(3);
    RefMutProxy::discard_changes(&mut w);
    assert!(!RefMutProxy::is_modified(&w));
    drop(w);
    assert_eq!(version(&store, &key), v0);
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2]));
    assert_idle_owned(state(&store, &key));
    drop(owner);
    assert_empty(&store);
}

/// After a mutable borrow ends, its owner sees what it published: at once
/// through `OwnedProxy::latest`, and in its `Deref` view after any `&mut`
/// access (`refresh`, `DerefMut`, `update`), as documented on `OwnedProxy`.
pub fn owner_sees_changes_published_by_a_writer(store: Store) {
    let mut owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let mut w = mut_borrow(&owner).unwrap();
    w.push(2);
    update(&mut w).unwrap();
    drop(w);
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2]));
    assert_eq!(*OwnedProxy::latest(&owner).unwrap(), vec![1, 2]);
    assert_eq!(OwnedProxy::refresh(&mut owner).unwrap(), &vec![1, 2]);
    assert_eq!(*owner, vec![1, 2]);
    // clone copies the current value, not a stale snapshot
    let mut w = mut_borrow(&owner).unwrap();
    w.push(3);
    drop(w);
    let copy = clone(&owner).unwrap();
    assert_eq!(*copy, vec![1, 2, 3]);
    // the next change through the owner starts from the published value
    owner.push(4);
    assert_eq!(*owner, vec![1, 2, 3, 4]);
    drop((owner, copy));
    assert_empty(&store);
}

/// Local changes of an owner made on a version that a writer has since
/// replaced are not published over it: `Conflict`, and the changes are kept.
pub fn owner_update_on_a_stale_copy_is_a_conflict_and_keeps_changes(store: Store) {
    let mut owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    owner.push(10); // local copy of version 1
    let mut w = mut_borrow(&owner).unwrap();
    w.push(2);
    drop(w); // version 2 published
    assert_err!(update(&mut owner), Error::Conflict { key: k } if k == key);
    assert_eq!(*owner, vec![1, 10], "local changes are kept");
    assert_eq!(
        store.get::<V>(&key).unwrap(),
        Some(vec![1, 2]),
        "the writer's change is kept"
    );
    OwnedProxy::discard_changes(&mut owner);
    owner.push(3);
    update(&mut owner).unwrap();
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2, 3]));
    drop(owner);
    assert_empty(&store);
}

/// Publishing the owner's local changes must not silently drop what a writer
/// published before (no lost data).
pub fn owner_update_after_a_writer_keeps_the_writers_changes(store: Store) {
    let mut owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let mut w = mut_borrow(&owner).unwrap();
    w.push(2);
    drop(w); // published on drop
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2]));
    owner.push(3);
    update(&mut owner).unwrap();
    assert_eq!(
        store.get::<V>(&key).unwrap(),
        Some(vec![1, 2, 3]),
        "the owner's update overwrote the writer's published change"
    );
    drop(owner);
    assert_empty(&store);
}
