//! New owners: `clone`, `into_owned`, and objects that have none.

use borrowstore::{
    Error, Key, OwnedProxy, Proxy, RefProxy, Store, borrow, clone, into_owned, mut_borrow, update,
};

use super::{V, assert_evicted, assert_idle_owned, assert_stored, state, version};
use crate::assert_err;
use crate::probe::assert_empty;

/// `clone` makes a new object with its own key, owner and borrows, copied
/// from what the owner sees (local changes included); changing or
/// dropping one leaves the other alone.
pub fn clone_is_independent_of_its_source(store: Store) {
    let mut a = store.owned_proxy(vec![1u64, 2]).unwrap();
    let ka = *OwnedProxy::key(&a);
    let mut b = clone(&a).unwrap();
    let kb = *OwnedProxy::key(&b);
    assert_ne!(ka, kb);
    assert_stored(&store, &kb);
    assert_idle_owned(state(&store, &kb));
    assert_eq!(store.get::<V>(&kb).unwrap(), Some(vec![1, 2]));
    let va = version(&store, &ka);

    b.push(3);
    update(&mut b).unwrap();
    assert_eq!(store.get::<V>(&ka).unwrap(), Some(vec![1, 2]));
    assert_eq!(store.get::<V>(&kb).unwrap(), Some(vec![1, 2, 3]));
    assert_eq!(*a, vec![1, 2]);
    assert_eq!(version(&store, &ka), va);

    a.push(10);
    update(&mut a).unwrap();
    assert_eq!(store.get::<V>(&kb).unwrap(), Some(vec![1, 2, 3]));
    let mut w = mut_borrow(&a).unwrap();
    w.push(11);
    drop(w);
    assert_eq!(store.get::<V>(&ka).unwrap(), Some(vec![1, 2, 10, 11]));
    assert_eq!(store.get::<V>(&kb).unwrap(), Some(vec![1, 2, 3]));
    // borrows are per object
    let rb = borrow(&b).unwrap();
    let wa = mut_borrow(&a).unwrap();
    drop((rb, wa));

    // a clone is taken as the owner sees it, local changes included
    let mut c = store.owned_proxy(vec![5u64]).unwrap();
    let kc = *OwnedProxy::key(&c);
    c.push(6);
    let d = clone(&c).unwrap();
    let kd = *OwnedProxy::key(&d);
    assert_eq!(store.get::<V>(&kd).unwrap(), Some(vec![5, 6]));
    assert_eq!(store.get::<V>(&kc).unwrap(), Some(vec![5]));

    drop(a);
    assert_evicted(&store, &ka);
    assert_stored(&store, &kb);
    assert_eq!(store.get::<V>(&kb).unwrap(), Some(vec![1, 2, 3]));
    drop(b);
    assert_evicted(&store, &kb);
    drop((c, d));
    assert_empty(&store);
}

/// `into_owned` of a plain proxy (of a local value or of a `put` blob)
/// makes it the object's owner: dropping that owner evicts the object.
pub fn into_owned_adopts_a_plain_proxy(store: Store) {
    let p = store.proxy(vec![9u64]).unwrap();
    let key = *Proxy::key(&p);
    let s = state(&store, &key);
    assert!(!s.owner && s.plain, "{s:?}");
    let twin = p.clone();
    drop(twin); // a plain proxy owns nothing
    assert_stored(&store, &key);

    let owner = into_owned(p).unwrap();
    assert_eq!(OwnedProxy::key(&owner), &key);
    assert_idle_owned(state(&store, &key));
    assert_eq!(OwnedProxy::resolve(&owner).unwrap(), &vec![9]);
    let r = borrow(&owner).unwrap();
    assert_eq!(RefProxy::resolve(&r).unwrap(), &vec![9]);
    drop(r);
    drop(owner);
    assert_evicted(&store, &key);

    // a proxy made from the key of a put blob
    let key = store.put(&vec![5u64, 6]).unwrap();
    let owner = into_owned(store.proxy_from_key::<V>(key)).unwrap();
    assert_idle_owned(state(&store, &key));
    assert_eq!(*owner, vec![5, 6]);
    drop(owner);
    assert_evicted(&store, &key);
    assert_empty(&store);
}

/// `into_owned` of an object that has an owner is refused with
/// `AlreadyOwned` and steals nothing.
pub fn into_owned_twice_is_already_owned(store: Store) {
    let p = store.proxy(vec![1u64]).unwrap();
    let key = *Proxy::key(&p);
    let q = store.proxy_from_key::<V>(key);
    let owner = into_owned(p).unwrap();
    assert_err!(into_owned(q), Error::AlreadyOwned { key: k } if k == key);
    assert_idle_owned(state(&store, &key));

    let born_owned = store.owned_proxy(vec![2u64]).unwrap();
    let k2 = *OwnedProxy::key(&born_owned);
    assert_err!(
        into_owned(store.proxy_from_key::<V>(k2)),
        Error::AlreadyOwned { key: k } if k == k2
    );
    assert_idle_owned(state(&store, &k2));

    // the refused adoption did not steal anything: the owners still evict
    drop(owner);
    assert_evicted(&store, &key);
    drop(born_owned);
    assert_evicted(&store, &k2);
    assert_empty(&store);
}

/// `into_owned` of a key that was never stored, or was evicted, is
/// `KeyNotFound`.
pub fn into_owned_of_missing_key_is_key_not_found(store: Store) {
    let missing = Key::random();
    assert_err!(
        into_owned(store.proxy_from_key::<V>(missing)),
        Error::KeyNotFound { key: k, .. } if k == missing
    );
    let key = store.put(&vec![1u64]).unwrap();
    assert!(store.evict(&key).unwrap());
    assert_err!(
        into_owned(store.proxy_from_key::<V>(key)),
        Error::KeyNotFound { key: k, .. } if k == key
    );
    assert_empty(&store);
}

/// Objects without an owner stay until they are evicted, whatever plain
/// proxies of them are dropped.
pub fn plain_objects_persist_until_evicted(store: Store) {
    let p = store.proxy(vec![1u64]).unwrap();
    let key = *Proxy::key(&p);
    drop(p);
    assert_stored(&store, &key);
    let q: Proxy<V> = store.proxy_from_key(key);
    assert_eq!(Proxy::resolve(&q).unwrap(), &vec![1]);
    drop(q);
    assert_stored(&store, &key);
    let k2 = store.put(&String::from("kept")).unwrap();
    assert_stored(&store, &k2);
    assert!(store.evict(&key).unwrap());
    assert!(store.evict(&k2).unwrap());
    assert_empty(&store);
}
