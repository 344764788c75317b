//! The plain API (put, get, exists, evict, the batch forms, serialized
//! proxies, missing keys), shared decoded values, and flush.

use std::sync::Arc;

use borrowstore::codec::{self};
use borrowstore::connector::Value;
use borrowstore::state::Init;
use borrowstore::{
    Error, Key, OwnedProxy, Proxy, RefProxy, Store, borrow, into_owned, mut_borrow, update,
};

use super::{Fixture, V, assert_evicted, assert_idle_owned, assert_stored, good_blob, state};
use crate::assert_err;
use crate::probe::assert_empty;

/// The plain API: `put`, `get`, `get_shared`, `exists`, `keys` and `evict`.
pub fn put_get_exists_evict(store: Store) {
    let key = store.put(&vec![1u64, 2, 3]).unwrap();
    assert_stored(&store, &key);
    assert!(store.exists(&key).unwrap());
    let i = state(&store, &key);
    assert_eq!(i.version, 1);
    assert!(!i.owner && i.plain && i.readers == 0 && !i.writer);
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2, 3]));
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2, 3]));
    assert_eq!(
        *store.get_shared::<V>(&key).unwrap().unwrap(),
        vec![1, 2, 3]
    );

    let again = store.put(&vec![1u64, 2, 3]).unwrap();
    assert_ne!(key, again, "every put gets a new key");
    let text = store.put(&String::from("hi")).unwrap();
    let tuple = store.put(&(1u8, Some(String::from("x")), -3i64)).unwrap();
    assert_eq!(store.get::<String>(&text).unwrap().as_deref(), Some("hi"));
    assert_eq!(
        store.get::<(u8, Option<String>, i64)>(&tuple).unwrap(),
        Some((1, Some(String::from("x")), -3))
    );
    let mut keys = store.keys().unwrap();
    keys.sort();
    let mut expected = vec![key, again, text, tuple];
    expected.sort();
    assert_eq!(keys, expected);

    assert!(store.evict(&key).unwrap());
    assert_evicted(&store, &key);
    assert!(!store.exists(&key).unwrap());
    assert_eq!(store.get::<V>(&key).unwrap(), None);
    assert!(!store.evict(&key).unwrap());
    assert_stored(&store, &again);
    for k in [again, text, tuple] {
        assert!(store.evict(&k).unwrap());
    }
    assert_empty(&store);
}

/// The store's batch forms (`put_batch`, `exists_batch`, `get_batch`,
/// `evict_batch`), and an `evict_batch` refused while one of its objects
/// is borrowed.
pub fn batch_forms(store: Store) {
    let keys = store.put_batch(&[vec![1u64], vec![2, 2], vec![]]).unwrap();
    assert_eq!(keys.len(), 3);
    assert!(keys[0] != keys[1] && keys[1] != keys[2] && keys[0] != keys[2]);
    for k in &keys {
        assert_stored(&store, k);
    }
    let missing = Key::random();
    assert_eq!(
        store
            .exists_batch(&[keys[0], keys[1], keys[2], missing])
            .unwrap(),
        vec![true, true, true, false]
    );
    assert_eq!(
        store.get_batch::<V>(&[keys[2], missing, keys[0]]).unwrap(),
        vec![Some(vec![]), None, Some(vec![1])]
    );
    assert_err!(store.get_batch::<String>(&keys), Error::TypeMismatch { .. });
    assert_eq!(
        store.evict_batch(&[keys[0], missing]).unwrap(),
        vec![true, false]
    );
    assert_eq!(store.exists_batch(&keys).unwrap(), vec![false, true, true]);

    // refused while borrowed
    let owner = store.owned_proxy(vec![5u64]).unwrap();
    let ko = *OwnedProxy::key(&owner);
    let r = borrow(&owner).unwrap();
    assert_err!(
        store.evict_batch(&[keys[1], ko]),
        Error::AlreadyBorrowed { key: k, .. } if k == ko
    );
    assert_stored(&store, &ko);
    assert_eq!(state(&store, &ko).readers, 1);
    drop(r);
    assert_eq!(store.evict_batch(&[keys[1], keys[2]]).unwrap().len(), 2);
    assert_eq!(store.exists_batch(&keys).unwrap(), vec![false; 3]);
    assert_eq!(store.put_batch::<V>(&[]).unwrap(), Vec::<Key>::new());
    drop(owner);
    assert_empty(&store);
}

/// The connector's own batch forms, and a `put` that never overwrites an
/// existing key.
pub fn connector_batch_forms(f: Fixture) {
    let Fixture {
        store,
        connector: c,
    } = f;
    let items: Vec<(Key, Vec<u8>)> = (0..4u64)
        .map(|i| (Key::random(), codec::encode(&vec![i; i as usize]).unwrap()))
        .collect();
    let keys: Vec<Key> = items.iter().map(|(k, _)| *k).collect();
    c.put_batch(
        items
            .iter()
            .map(|(k, b)| (*k, Value::Bytes(b.clone().into())))
            .collect(),
    )
    .unwrap();
    for k in &keys {
        let s = state(&store, k);
        assert!(!s.owner && s.plain && s.readers == 0 && !s.writer, "{s:?}");
    }
    let missing = Key::random();
    let mut probe = keys.clone();
    probe.push(missing);
    assert_eq!(
        c.exists_batch(&probe).unwrap(),
        vec![true, true, true, true, false]
    );
    let got = c.get_batch(&probe).unwrap();
    assert_eq!(got.len(), 5);
    assert!(got[4].is_none());
    for (i, stored) in got.into_iter().take(4).enumerate() {
        let stored = stored.expect("stored");
        assert_eq!(stored.version, 1);
        let bytes = stored.value.into_bytes().unwrap();
        assert_eq!(codec::decode::<V>(&bytes).unwrap(), vec![i as u64; i]);
    }
    // what the store API reads back
    assert_eq!(store.get::<V>(&keys[3]).unwrap(), Some(vec![3, 3, 3]));
    assert_eq!(
        c.evict_batch(&[keys[0], missing, keys[1]]).unwrap(),
        vec![true, false, true]
    );
    assert_eq!(
        c.exists_batch(&keys).unwrap(),
        vec![false, false, true, true]
    );
    assert_eq!(
        c.evict_batch(&keys).unwrap(),
        vec![false, false, true, true]
    );
    // a key that exists is not overwritten by put
    let k = store.put(&1u8).unwrap();
    assert!(
        c.put(&k, Value::Bytes(good_blob().into()), Init::Plain)
            .is_err()
    );
    assert_eq!(store.get::<u8>(&k).unwrap(), Some(1));
    assert!(store.evict(&k).unwrap());
    assert_empty(&store);
}

/// A proxy serialized and deserialized (never carrying the value) resolves
/// to the value; resolving a plain proxy of an owned object owns
/// nothing.
pub fn serialized_proxy_round_trips_and_resolves(store: Store) {
    let big: V = (0..10_000).collect();
    let p = store.proxy(big.clone()).unwrap();
    let key = *Proxy::key(&p);
    let bytes = postcard::to_allocvec(&p).unwrap();
    // The store's name and URL, the key and a little framing; the value
    // alone is over 10,000 bytes. (A cluster's URL lists its nodes.)
    let carried = store.name().len() + store.url().len() + 128;
    assert!(
        bytes.len() < carried,
        "a proxy must never carry the value ({} bytes, more than {carried})",
        bytes.len()
    );
    let q: Proxy<V> = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(Proxy::key(&q), &key);
    assert!(!Proxy::is_resolved(&q));
    assert!(!Proxy::is_ephemeral(&q));
    assert!(Proxy::store(&q).same_store(&store));
    assert_eq!(Proxy::resolve(&q).unwrap(), &big);
    assert_eq!(q.len(), 10_000); // Deref

    let via_api = Proxy::<V>::from_bytes(&Proxy::to_bytes(&p).unwrap()).unwrap();
    assert_eq!(Proxy::resolve(&via_api).unwrap(), &big);

    // of an owned object: resolving a plain proxy owns nothing
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let ko = *OwnedProxy::key(&owner);
    let pb = postcard::to_allocvec(&store.proxy_from_key::<V>(ko)).unwrap();
    let remote: Proxy<V> = postcard::from_bytes(&pb).unwrap();
    assert_eq!(Proxy::resolve(&remote).unwrap(), &vec![1]);
    assert_idle_owned(state(&store, &ko));
    drop(remote);
    drop(owner);
    assert_evicted(&store, &ko);
    assert!(store.evict(&key).unwrap());
    assert_empty(&store);
}

/// Every read of a key that is not stored (never, or no longer) reports it:
/// `None`, `false`, or `KeyNotFound` naming the key and the store.
pub fn missing_keys(store: Store) {
    let missing = Key::random();
    assert_eq!(store.get::<V>(&missing).unwrap(), None);
    assert!(store.get_shared::<V>(&missing).unwrap().is_none());
    assert!(!store.exists(&missing).unwrap());
    assert!(!store.evict(&missing).unwrap());
    assert!(store.inspect(&missing).unwrap().is_none());
    let p: Proxy<V> = store.proxy_from_key(missing);
    match Proxy::resolve(&p) {
        Err(Error::KeyNotFound { key, store: name }) => {
            assert_eq!(key, missing);
            assert_eq!(name, store.name());
        }
        other => panic!("expected KeyNotFound, got {other:?}"),
    }
    assert!(!Proxy::is_resolved(&p));
    // an evicted key is missing too
    let key = store.put(&vec![1u64]).unwrap();
    let p: Proxy<V> = store.proxy_from_key(key);
    assert!(store.evict(&key).unwrap());
    assert_err!(Proxy::resolve(&p), Error::KeyNotFound { key: k, .. } if k == key);
    assert_eq!(store.get::<V>(&key).unwrap(), None);
    assert_empty(&store);
}

/// Readers of an owned object share one value (`Arc`), not copies.
pub fn readers_share_one_value_of_an_owned_proxy(store: Store) {
    let owner = store.owned_proxy((0..100u64).collect::<V>()).unwrap();
    let a = borrow(&owner).unwrap();
    let b = borrow(&owner).unwrap();
    let sa = RefProxy::shared(&a).unwrap();
    let sb = RefProxy::shared(&b).unwrap();
    assert!(Arc::ptr_eq(sa, sb), "two readers hold two copies");
    assert_eq!(sa.len(), 100);
    drop((a, b));
    drop(owner);
    assert_empty(&store);
}

/// Readers of an adopted blob share one decoded value per version; a new
/// version is a new value, and an old snapshot stays as it was.
pub fn readers_share_one_decoded_value_of_an_adopted_blob(store: Store) {
    let key = store.put(&(0..100u64).collect::<V>()).unwrap();
    let owner = into_owned(store.proxy_from_key::<V>(key)).unwrap();
    let a = borrow(&owner).unwrap();
    let b = borrow(&owner).unwrap();
    let sa = RefProxy::shared(&a).unwrap().clone();
    let sb = RefProxy::shared(&b).unwrap();
    assert!(Arc::ptr_eq(&sa, sb), "two readers decoded two copies");
    drop((a, b));
    // decoded once per version: a later reader of the same version shares it
    let c = borrow(&owner).unwrap();
    assert!(Arc::ptr_eq(&sa, RefProxy::shared(&c).unwrap()));
    drop(c);
    // a new version is a new value, never the stale one
    let mut w = mut_borrow(&owner).unwrap();
    w.push(100);
    update(&mut w).unwrap();
    drop(w);
    let d = borrow(&owner).unwrap();
    let e = borrow(&owner).unwrap();
    let sd = RefProxy::shared(&d).unwrap();
    assert!(!Arc::ptr_eq(&sa, sd));
    assert_eq!(sd.len(), 101);
    assert!(Arc::ptr_eq(sd, RefProxy::shared(&e).unwrap()));
    assert_eq!(sa.len(), 100, "an old snapshot stays immutable");
    drop((d, e));
    drop(owner);
    assert_evicted(&store, &key);
    assert_empty(&store);
}

/// `flush` succeeds, and every release before it is applied when it
/// returns.
pub fn flush_is_ok_and_releases_are_applied(store: Store) {
    store.flush().unwrap();
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let r = borrow(&owner).unwrap();
    drop(owner);
    store.flush().unwrap();
    assert_stored(&store, &key);
    drop(r);
    store.flush().unwrap();
    assert_evicted(&store, &key);
    assert_empty(&store);
}

/// A `Blob` reads back as its bytes, by borrow, by proxy and by `get`, in
/// every version; readers of one version share one `Blob` (no copy per
/// reader); an empty `Blob` is one too; and it is evicted like any value.
pub fn blobs_read_back_as_their_bytes(store: Store) {
    let bytes: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let owner = store
        .owned_proxy(borrowstore::Blob::from(bytes.clone()))
        .unwrap();
    let key = *OwnedProxy::key(&owner);
    let a = borrow(&owner).unwrap();
    let b = borrow(&owner).unwrap();
    assert_eq!(&a[..], &bytes[..]);
    assert!(Arc::ptr_eq(
        RefProxy::shared(&a).unwrap(),
        RefProxy::shared(&b).unwrap()
    ));
    assert_eq!(
        store.get::<borrowstore::Blob>(&key).unwrap().as_deref(),
        Some(&bytes[..])
    );
    drop((a, b));
    let mut w = mut_borrow(&owner).unwrap();
    *w = borrowstore::Blob::from(vec![9u8; 3]);
    update(&mut w).unwrap();
    drop(w);
    assert_eq!(&borrow(&owner).unwrap()[..], &[9, 9, 9]);
    let empty = store.proxy(borrowstore::Blob::default()).unwrap();
    assert!(Proxy::resolve(&empty).unwrap().is_empty());
    store.evict(Proxy::key(&empty)).unwrap();
    drop(owner);
    store.flush().unwrap();
    assert_evicted(&store, &key);
    assert_empty(&store);
}
