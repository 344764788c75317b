//! Blobs from arbitrary bytes: `codec::decode` for several types, directly
//! and through a store (`get`, `get_shared`, a proxy's resolve).
//!
//! Decoding is a value or `Error::Decode` / `Error::TypeMismatch`, never a
//! panic; a decoded value re-encodes and decodes back to itself.
#![no_main]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, OnceLock};

use borrowstore::codec;
use borrowstore::connector::{Connector, LocalValue, MemoryConnector, Value};
use borrowstore::state::Init;
use borrowstore::{Error, Key, Proxy, Storable, Store};
use borrowstore_fuzz::{Record, Shape};
use libfuzzer_sys::fuzz_target;

fn documented(e: &Error) -> bool {
    matches!(e, Error::Decode { .. } | Error::TypeMismatch { .. })
}

/// `bytes` decoded as `T`: a value that round-trips, or a documented error.
fn check<T: Storable + PartialEq + Debug>(bytes: &[u8]) {
    match codec::decode::<T>(bytes) {
        Ok(v) => {
            let again = codec::encode(&v).expect("a decoded value encodes");
            assert_eq!(
                codec::decode::<T>(&again).expect("a re-encoded value decodes"),
                v
            );
        }
        Err(e) => assert!(documented(&e), "undocumented decode error: {e:?}"),
    }
}

/// `payload` behind a valid header for `T`: what reaches postcard.
fn with_header<T: Storable + Default>(payload: &[u8]) -> Vec<u8> {
    let mut b = codec::encode(&T::default()).expect("encode");
    b.truncate(codec::header_len::<T>());
    b.extend_from_slice(payload);
    b
}

fn check_all(bytes: &[u8]) {
    check::<u64>(bytes);
    check::<String>(bytes);
    check::<Vec<String>>(bytes);
    check::<(u8, Option<Vec<u16>>, bool)>(bytes);
    check::<BTreeMap<String, Vec<u32>>>(bytes);
    check::<Record>(bytes);
    check::<Shape>(bytes);
    check::<Key>(bytes);
    check::<Option<char>>(bytes);
}

fn check_payload(payload: &[u8]) {
    check::<u64>(&with_header::<u64>(payload));
    check::<String>(&with_header::<String>(payload));
    check::<Vec<String>>(&with_header::<Vec<String>>(payload));
    check::<(u8, Option<Vec<u16>>, bool)>(&with_header::<(u8, Option<Vec<u16>>, bool)>(payload));
    check::<BTreeMap<String, Vec<u32>>>(&with_header::<BTreeMap<String, Vec<u32>>>(payload));
    let mut k = codec::encode(&Key::from_u128(0)).expect("encode");
    k.truncate(codec::header_len::<Key>());
    k.extend_from_slice(payload);
    check::<Key>(&k);
    check::<Option<char>>(&with_header::<Option<char>>(payload));
    let mut r = codec::encode(&borrowstore_fuzz::record()).expect("encode");
    r.truncate(codec::header_len::<Record>());
    r.extend_from_slice(payload);
    check::<Record>(&r);
}

/// The memory store `fuzz-blobs` and its connector, which stores the raw
/// blobs (the store API only stores values it encoded itself).
fn blob_store() -> &'static (Store, Arc<MemoryConnector>) {
    static STORE: OnceLock<(Store, Arc<MemoryConnector>)> = OnceLock::new();
    STORE.get_or_init(|| {
        let connector = Arc::new(MemoryConnector::new("fuzz-blobs"));
        let store = Store::builder("fuzz-blobs")
            .connector(connector.clone(), "memory://fuzz-blobs")
            .build()
            .expect("build the fuzz-blobs store");
        (store, connector)
    })
}

/// The blob stored under a key, read back through the store.
fn through_store<T: Storable + PartialEq + Debug>(
    (store, connector): &(Store, Arc<MemoryConnector>),
    blob: &[u8],
) {
    let key = Key::from_u128(1);
    connector
        .put(&key, Value::Bytes(blob.to_vec().into()), Init::Plain)
        .expect("the key is free");
    let direct = codec::decode::<T>(blob);
    match store.get::<T>(&key) {
        Ok(Some(v)) => assert_eq!(Some(&v), direct.as_ref().ok()),
        Ok(None) => panic!("a stored blob is missing"),
        Err(e) => assert!(documented(&e) && direct.is_err(), "get: {e:?}"),
    }
    // Twice: the second read goes through the decoded-value cache.
    for _ in 0..2 {
        match store.get_shared::<T>(&key) {
            Ok(Some(v)) => assert_eq!(Some(&*v), direct.as_ref().ok()),
            Ok(None) => panic!("a stored blob is missing"),
            Err(e) => assert!(documented(&e), "get_shared: {e:?}"),
        }
    }
    // The same key read as another type, from the cache.
    match store.get_shared::<Shape>(&key) {
        Ok(Some(_)) | Err(Error::Decode { .. } | Error::TypeMismatch { .. }) => {}
        other => panic!("get_shared as another type: {other:?}"),
    }
    let p = store.proxy_from_key::<T>(key);
    match Proxy::resolve(&p) {
        Ok(v) => assert_eq!(Some(v), direct.as_ref().ok()),
        Err(e) => assert!(documented(&e), "resolve: {e:?}"),
    }
    assert!(store.evict(&key).expect("evict an unborrowed object"));
    // A local (undecoded) value under the key, read as T: only the type matters.
    connector
        .put(
            &key,
            Value::Local(LocalValue::new(Arc::new(blob.len() as u64))),
            Init::Plain,
        )
        .expect("the key is free");
    match store.get_shared::<T>(&key) {
        Ok(Some(_)) | Err(Error::TypeMismatch { .. }) => {}
        other => panic!("a local value: {other:?}"),
    }
    assert!(store.evict(&key).expect("evict an unborrowed object"));
}

fuzz_target!(|data: &[u8]| {
    check_all(data);
    check_payload(data);

    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let store = blob_store();
    match selector % 4 {
        0 => through_store::<u64>(store, &with_header::<u64>(payload)),
        1 => through_store::<Vec<String>>(store, &with_header::<Vec<String>>(payload)),
        2 => {
            let mut r = codec::encode(&borrowstore_fuzz::record()).expect("encode");
            r.truncate(codec::header_len::<Record>());
            r.extend_from_slice(payload);
            through_store::<Record>(store, &r);
        }
        _ => through_store::<String>(store, payload),
    }
});
