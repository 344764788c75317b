//! Eviction: refused while borrowed, the end of an owner, ephemeral proxies.

use borrowstore::{Error, OwnedProxy, Proxy, RefProxy, Store, borrow, mut_borrow, update};

use super::{Fixture, V, assert_evicted, assert_stored, state};
use crate::assert_err;
use crate::probe::assert_empty;

/// `evict` (of the store and of the connector) is refused with
/// `AlreadyBorrowed` while the object is read, and succeeds once the
/// reader is gone.
pub fn evict_refused_while_read(f: Fixture) {
    let Fixture { store, connector } = f;
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let r = borrow(&owner).unwrap();
    assert_err!(store.evict(&key), Error::AlreadyBorrowed { key: k, .. } if k == key);
    assert_err!(connector.evict(&key), Error::AlreadyBorrowed { key: k, .. } if k == key);
    assert_stored(&store, &key);
    assert_eq!(state(&store, &key).readers, 1);
    assert_eq!(RefProxy::resolve(&r).unwrap(), &vec![1]);
    drop(r);
    assert!(store.evict(&key).unwrap());
    assert_evicted(&store, &key);
    assert!(!store.evict(&key).unwrap());
    drop(owner);
    assert_empty(&store);
}

/// `evict` is refused with `AlreadyBorrowed` while the object is written;
/// the writer still works, and the evict succeeds after it.
pub fn evict_refused_while_written(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let mut w = mut_borrow(&owner).unwrap();
    assert_err!(store.evict(&key), Error::AlreadyBorrowed { key: k, .. } if k == key);
    assert_stored(&store, &key);
    assert!(state(&store, &key).writer);
    w.push(2);
    update(&mut w).unwrap(); // the writer still works
    drop(w);
    assert!(store.evict(&key).unwrap());
    assert_evicted(&store, &key);
    drop(owner);
    assert_empty(&store);
}

/// Evicting an owned object ends its owner: borrows are `KeyNotFound`, an
/// `update` fails and keeps the changes, and dropping it resurrects
/// nothing.
pub fn evicting_an_owned_object_ends_its_owner(store: Store) {
    let mut owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    assert!(store.evict(&key).unwrap());
    assert_evicted(&store, &key);
    assert_err!(borrow(&owner), Error::KeyNotFound { key: k, .. } if k == key);
    assert_err!(mut_borrow(&owner), Error::KeyNotFound { key: k, .. } if k == key);
    owner.push(2);
    assert!(update(&mut owner).is_err());
    assert!(
        OwnedProxy::is_modified(&owner),
        "a failed update keeps the changes"
    );
    drop(owner); // must not panic, must not resurrect
    assert_evicted(&store, &key);
    assert_empty(&store);
}

/// The first resolve of an ephemeral proxy, through whichever copy of it,
/// evicts the object; that copy keeps the value, the others are
/// `KeyNotFound`.
pub fn ephemeral_proxy_is_evicted_by_first_resolve(store: Store) {
    let once = store.ephemeral_proxy(vec![7u8]).unwrap();
    let key = *Proxy::key(&once);
    assert!(Proxy::is_ephemeral(&once));
    assert_stored(&store, &key);
    let twin = once.clone(); // made before the resolve
    let by_key: Proxy<Vec<u8>> = store.proxy_from_key(key);

    assert_eq!(Proxy::resolve(&once).unwrap(), &vec![7u8]);
    assert_evicted(&store, &key);
    assert_eq!(
        Proxy::resolve(&once).unwrap(),
        &vec![7u8],
        "the value is kept"
    );
    assert_err!(Proxy::resolve(&twin), Error::KeyNotFound { key: k, .. } if k == key);
    assert_err!(Proxy::resolve(&by_key), Error::KeyNotFound { key: k, .. } if k == key);
    assert_eq!(store.get::<Vec<u8>>(&key).unwrap(), None);

    // a clone made after the resolve carries the value
    let after = once.clone();
    assert_eq!(Proxy::resolve(&after).unwrap(), &vec![7u8]);

    // the first resolve wins, whichever proxy makes it
    let once = store.ephemeral_proxy(String::from("x")).unwrap();
    let key = *Proxy::key(&once);
    let twin = once.clone();
    assert_eq!(Proxy::resolve(&twin).unwrap(), "x");
    assert_evicted(&store, &key);
    assert_err!(Proxy::resolve(&once), Error::KeyNotFound { key: k, .. } if k == key);
    assert_empty(&store);
}

/// An ephemeral proxy is still ephemeral after a round trip through bytes:
/// the first resolve anywhere evicts the object.
pub fn ephemeral_proxy_stays_ephemeral_through_serialization(store: Store) {
    let once = store.ephemeral_proxy(vec![1u64, 2]).unwrap();
    let key = *Proxy::key(&once);
    let bytes = Proxy::to_bytes(&once).unwrap();
    let remote = Proxy::<V>::from_bytes(&bytes).unwrap();
    assert!(Proxy::is_ephemeral(&remote));
    assert_stored(&store, &key);
    assert_eq!(Proxy::resolve(&remote).unwrap(), &vec![1, 2]);
    assert_evicted(&store, &key);
    assert_err!(Proxy::resolve(&once), Error::KeyNotFound { key: k, .. } if k == key);
    let again = Proxy::<V>::from_bytes(&bytes).unwrap();
    assert_err!(Proxy::resolve(&again), Error::KeyNotFound { key: k, .. } if k == key);
    assert_empty(&store);
}
