//! Bad input: the wrong type, damaged blobs, malformed proxy and ticket
//! bytes — an `Error`, never a panic, and nothing stored is lost.

use borrowstore::codec::{self, HEADER_LEN};
use borrowstore::{
    BorrowTicket, Error, Key, OwnedProxy, OwnerTicket, Proxy, RefProxy, Store, StoreConfig, borrow,
    into_owned,
};

use super::{Fixture, V, assert_evicted, assert_idle_owned, good_blob, put_raw, state};
use crate::assert_err;
use crate::names::unique_name;
use crate::probe::assert_empty;

/// `get` as another type is `TypeMismatch`, for blobs and owned objects, and
/// leaves the object as it was.
pub fn type_mismatch_via_get(store: Store) {
    let key = store.put(&vec![1u64, 2]).unwrap();
    assert_err!(store.get::<String>(&key), Error::TypeMismatch { .. });
    assert_err!(store.get::<u64>(&key), Error::TypeMismatch { .. });
    assert_err!(store.get_shared::<String>(&key), Error::TypeMismatch { .. });
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2]));

    let owner = store.owned_proxy(vec![3u64]).unwrap();
    let ko = *OwnedProxy::key(&owner);
    assert_err!(store.get::<String>(&ko), Error::TypeMismatch { .. });
    assert_err!(store.get::<Vec<u32>>(&ko), Error::TypeMismatch { .. });
    assert_eq!(store.get::<V>(&ko).unwrap(), Some(vec![3]));
    assert_idle_owned(state(&store, &ko));

    assert!(store.evict(&key).unwrap());
    drop(owner);
    assert_empty(&store);
}

/// Resolving a proxy as another type is `TypeMismatch`, for blobs (decoded
/// and cached or not), owned objects, plain and ephemeral proxies.
pub fn type_mismatch_via_proxy(store: Store) {
    // a blob
    let key = store.put(&vec![1u64, 2]).unwrap();
    let wrong: Proxy<String> = store.proxy_from_key(key);
    assert_err!(Proxy::resolve(&wrong), Error::TypeMismatch { .. });
    // also once the right type is decoded and cached
    let right: Proxy<V> = store.proxy_from_key(key);
    assert_eq!(Proxy::resolve(&right).unwrap(), &vec![1, 2]);
    let wrong: Proxy<String> = store.proxy_from_key(key);
    assert_err!(Proxy::resolve(&wrong), Error::TypeMismatch { .. });
    assert_err!(Proxy::shared(&wrong), Error::TypeMismatch { .. });
    let right: Proxy<V> = store.proxy_from_key(key);
    assert_eq!(Proxy::resolve(&right).unwrap(), &vec![1, 2]);

    // an owned value
    let owner = store.owned_proxy(vec![3u64]).unwrap();
    let ko = *OwnedProxy::key(&owner);
    let wrong: Proxy<Vec<u32>> = store.proxy_from_key(ko);
    assert_err!(Proxy::resolve(&wrong), Error::TypeMismatch { .. });
    assert_idle_owned(state(&store, &ko));

    // a plain proxy of a local value
    let p = store.proxy(String::from("s")).unwrap();
    let kp = *Proxy::key(&p);
    let wrong: Proxy<V> = store.proxy_from_key(kp);
    assert_err!(Proxy::resolve(&wrong), Error::TypeMismatch { .. });

    // an ephemeral proxy resolved as the wrong type
    let once = store.ephemeral_proxy(7u32).unwrap();
    let ke = *Proxy::key(&once);
    let wrong: Proxy<u64> = store.proxy_from_key(ke);
    assert_err!(Proxy::resolve(&wrong), Error::TypeMismatch { .. });

    assert!(store.evict(&key).unwrap());
    assert!(store.evict(&kp).unwrap());
    assert_eq!(Proxy::resolve(&once).unwrap(), &7);
    drop(owner);
    assert_empty(&store);
}

/// Proxy bytes read as a proxy of another type are `TypeMismatch`.
pub fn type_mismatch_via_proxy_from_bytes(store: Store) {
    let p = store.proxy(vec![1u64]).unwrap();
    let key = *Proxy::key(&p);
    let bytes = Proxy::to_bytes(&p).unwrap();
    assert_err!(
        Proxy::<String>::from_bytes(&bytes),
        Error::TypeMismatch { .. }
    );
    assert_err!(
        Proxy::<Vec<u32>>::from_bytes(&bytes),
        Error::TypeMismatch { .. }
    );
    assert!(postcard::from_bytes::<Proxy<String>>(&bytes).is_err());
    let q = Proxy::<V>::from_bytes(&bytes).unwrap();
    assert_eq!(Proxy::resolve(&q).unwrap(), &vec![1]);
    assert!(store.evict(&key).unwrap());
    assert_empty(&store);
}

/// Every way to read a damaged blob reports `Error::Decode`, and leaves it.
fn assert_decode_error(store: &Store, key: Key, what: &str) {
    let got = store.get::<String>(&key);
    assert!(
        matches!(got, Err(Error::Decode { .. })),
        "{what}: get gave {got:?}"
    );
    let got = store.get_shared::<String>(&key);
    assert!(
        matches!(got, Err(Error::Decode { .. })),
        "{what}: get_shared gave {got:?}"
    );
    let p: Proxy<String> = store.proxy_from_key(key);
    let got = Proxy::resolve(&p);
    assert!(
        matches!(got, Err(Error::Decode { .. })),
        "{what}: resolve gave {got:?}"
    );
    assert!(
        store.exists(&key).unwrap(),
        "{what}: a failed read evicted the blob"
    );
}

/// A blob cut short anywhere is `Decode` for every way of reading it, and
/// is left in place.
pub fn damaged_blob_truncated_is_decode_error(f: Fixture) {
    let Fixture { store, connector } = f;
    let good = good_blob();
    for len in [
        0,
        1,
        4,
        HEADER_LEN - 1,
        HEADER_LEN,
        HEADER_LEN + 1,
        good.len() - 1,
    ] {
        let key = put_raw(&connector, good[..len].to_vec());
        assert_decode_error(&store, key, &format!("truncated to {len}"));
        assert!(store.evict(&key).unwrap());
    }
    // the intact blob reads fine, through a borrow too
    let key = put_raw(&connector, good);
    assert_eq!(
        store.get::<String>(&key).unwrap().as_deref(),
        Some("hello world")
    );
    let owner = into_owned(store.proxy_from_key::<String>(key)).unwrap();
    assert_eq!(&*borrow(&owner).unwrap(), "hello world");
    drop(owner);
    assert_empty(&store);
}

/// A blob with a damaged header (magic, format version) is `Decode`; one
/// with a damaged type fingerprint is `TypeMismatch`.
pub fn damaged_blob_bad_header_is_decode_error(f: Fixture) {
    let Fixture { store, connector } = f;
    let mut magic = good_blob();
    magic[0] = b'X';
    let mut zeros = good_blob();
    zeros[..HEADER_LEN].fill(0);
    let mut format = good_blob();
    format[4] = 99;
    for (what, bytes) in [
        ("bad magic", magic),
        ("zero header", zeros),
        ("bad format version", format),
    ] {
        let key = put_raw(&connector, bytes);
        assert_decode_error(&store, key, what);
        // through a borrow as well
        let owner = into_owned(store.proxy_from_key::<String>(key)).unwrap();
        let r = borrow(&owner).unwrap();
        assert_err!(RefProxy::resolve(&r), Error::Decode { .. });
        drop(r);
        drop(owner);
        assert_evicted(&store, &key);
    }
    // a damaged type fingerprint looks like another type
    let mut fp = good_blob();
    fp[7] ^= 0x01;
    let key = put_raw(&connector, fp);
    assert_err!(store.get::<String>(&key), Error::TypeMismatch { .. });
    assert!(store.evict(&key).unwrap());
    assert_empty(&store);
}

/// A blob whose payload is damaged (invalid UTF-8, a bad length, trailing
/// bytes, an endless varint) is `Decode`.
pub fn damaged_blob_payload_is_decode_error(f: Fixture) {
    let Fixture { store, connector } = f;
    let good = good_blob();
    let mut utf8 = good.clone();
    *utf8.last_mut().unwrap() = 0xFF; // invalid UTF-8
    let mut length = good.clone();
    length[codec::header_len::<String>()] = 200; // length prefix beyond the data
    let mut trailing = good.clone();
    trailing.push(0);
    let mut varint = good.clone();
    varint.truncate(codec::header_len::<String>());
    varint.extend_from_slice(&[0x80; 12]); // an endless length varint
    for (what, bytes) in [
        ("invalid utf-8", utf8),
        ("bad length", length),
        ("trailing byte", trailing),
        ("overlong varint", varint),
    ] {
        let key = put_raw(&connector, bytes);
        assert_decode_error(&store, key, what);
        let owner = into_owned(store.proxy_from_key::<String>(key)).unwrap();
        assert_err!(OwnedProxy::resolve(&owner), Error::Decode { .. });
        drop(owner);
        assert_evicted(&store, &key);
    }
    assert_empty(&store);
}

/// Damaged or truncated proxy bytes are `Malformed`; well-formed bytes
/// naming an unsupported URL are `InvalidUrl`.
pub fn malformed_proxy_bytes_are_malformed(store: Store) {
    let p = store.proxy(vec![1u64]).unwrap();
    let key = *Proxy::key(&p);
    let good = Proxy::to_bytes(&p).unwrap();
    let mut bad: Vec<Vec<u8>> = vec![vec![], vec![0xFF; 4], vec![0x80; 64]];
    bad.extend((0..good.len()).map(|n| good[..n].to_vec()));
    for b in &bad {
        let got = Proxy::<V>::from_bytes(b);
        assert!(
            matches!(got, Err(Error::Malformed { what: "proxy", .. })),
            "{b:?} gave {got:?}"
        );
    }
    // well-formed bytes naming a store URL nobody supports
    let odd = postcard::to_allocvec(&(
        StoreConfig {
            name: unique_name("nowhere"),
            url: String::from("nope://x"),
        },
        key,
        false,
        codec::fingerprint::<V>(),
        std::any::type_name::<V>(),
    ))
    .unwrap();
    assert_err!(Proxy::<V>::from_bytes(&odd), Error::InvalidUrl { .. });
    // the good bytes still work
    assert_eq!(
        Proxy::resolve(&Proxy::<V>::from_bytes(&good).unwrap()).unwrap(),
        &vec![1]
    );
    assert!(store.evict(&key).unwrap());
    assert_empty(&store);
}

/// Damaged or truncated ticket bytes are `Malformed`; a forged ticket is
/// never redeemed, and the real one still is.
pub fn malformed_ticket_bytes_are_malformed(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let good = RefProxy::into_ticket(borrow(&owner).unwrap())
        .unwrap()
        .to_bytes()
        .unwrap();
    let mut bad: Vec<Vec<u8>> = vec![vec![], vec![0xFF; 4], vec![0x80; 64]];
    bad.extend((0..good.len()).map(|n| good[..n].to_vec()));
    for b in &bad {
        let got = OwnerTicket::<V>::from_bytes(b);
        assert!(
            matches!(
                got,
                Err(Error::Malformed {
                    what: "owner ticket",
                    ..
                })
            ),
            "{b:?} gave {got:?}"
        );
        let got = BorrowTicket::<V>::from_bytes(b);
        assert!(
            matches!(
                got,
                Err(Error::Malformed {
                    what: "borrow ticket",
                    ..
                })
            ),
            "{b:?} gave {got:?}"
        );
    }
    // well-formed bytes of a ticket the store never issued
    let mut forged = good.clone();
    // (the ticket ends with its type name, one length byte and the name)
    let n = forged.len() - 1 - codec::recorded_type_name::<V>().len();
    forged[n - 12] ^= 0x55; // inside the ticket id
    if let Ok(t) = BorrowTicket::<V>::from_bytes(&forged) {
        assert!(t.redeem().is_err(), "a forged ticket was redeemed");
    }
    assert_eq!(state(&store, &key).readers, 1);
    let r = BorrowTicket::<V>::from_bytes(&good)
        .unwrap()
        .redeem()
        .unwrap();
    drop(r);
    assert_idle_owned(state(&store, &key));
    drop(owner);
    assert_empty(&store);
}
