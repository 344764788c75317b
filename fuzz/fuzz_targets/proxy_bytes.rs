//! Proxies from arbitrary bytes: `Proxy::from_bytes` and serde.
//!
//! Reading is a proxy or `Malformed` / `TypeMismatch` / a store error
//! (`InvalidUrl`, `Connector`, `Untrusted`, `LocalStore`, `TooManyStores`)
//! — the config in the bytes finds a store, or opens one the harness
//! trusts, through `Store::from_config`. A proxy that was read writes back to
//! bytes that read to the same proxy, and resolving it is a value or a clear
//! error. The store `fuzz` holds objects under the keys 1 to 4 (a local
//! `u64`, blobs of a `String` and a `Vec<String>`, and a damaged blob), so
//! inputs can reach real objects; ephemeral proxies consume them, and they
//! are put back for the next input.
#![no_main]

use std::fmt::Debug;
use std::sync::{Arc, OnceLock};

use borrowstore::codec;
use borrowstore::connector::{Connector, LocalValue, MemoryConnector, Value};
use borrowstore::state::Init;
use borrowstore::{Error, Key, Proxy, Storable, Store};
use borrowstore_fuzz::{
    FIXTURE_STORES, Record, forgetting_stores, input_is_safe, is_store_error, trust_the_sandbox,
};
use libfuzzer_sys::fuzz_target;

fn fixture() -> Store {
    trust_the_sandbox();
    // The store and its connector, which stores the raw (and damaged) blobs.
    static FIXTURE: OnceLock<(Store, Arc<MemoryConnector>)> = OnceLock::new();
    let (store, connector) = FIXTURE.get_or_init(|| {
        let connector = Arc::new(MemoryConnector::new("fuzz"));
        let store = Store::builder("fuzz")
            .connector(connector.clone(), "memory://fuzz")
            .build()
            .expect("build the fuzz store");
        (store, connector)
    });
    let objects: [(u128, Value); 4] = [
        (1, Value::Local(LocalValue::new(Arc::new(42u64)))),
        (
            2,
            Value::Bytes(codec::encode(&String::from("hello")).unwrap().into()),
        ),
        (
            3,
            Value::Bytes(
                codec::encode(&vec![String::from("a"), String::from("b")])
                    .unwrap()
                    .into(),
            ),
        ),
        (4, Value::Bytes(b"BSTO\x01 not a value".to_vec().into())),
    ];
    for (k, v) in objects {
        let key = Key::from_u128(k);
        if !store.exists(&key).unwrap() {
            connector.put(&key, v, Init::Plain).unwrap();
        }
    }
    // A damaged URL under this name may have displaced it from the registry.
    store.register();
    store.clone()
}

fn check_proxy<T: Storable + Debug>(data: &[u8]) {
    let p = match Proxy::<T>::from_bytes(data) {
        Ok(p) => p,
        Err(Error::Malformed { what: "proxy", .. } | Error::TypeMismatch { .. }) => return,
        Err(e) if is_store_error(&e) => return,
        Err(e) => panic!("undocumented proxy error: {e:?}"),
    };
    // Written back, it reads as the same proxy.
    let bytes = Proxy::to_bytes(&p).expect("a proxy that was read writes back");
    let q = Proxy::<T>::from_bytes(&bytes).expect("a proxy's own bytes read back");
    assert_eq!(Proxy::key(&q), Proxy::key(&p));
    assert!(Proxy::store(&q).same_store(Proxy::store(&p)));
    assert_eq!(Proxy::is_ephemeral(&q), Proxy::is_ephemeral(&p));
    assert_eq!(Proxy::to_bytes(&q).unwrap(), bytes);
    match Proxy::resolve(&p) {
        Ok(_) => assert!(Proxy::is_resolved(&p)),
        Err(
            Error::KeyNotFound { .. }
            | Error::TypeMismatch { .. }
            | Error::Decode { .. }
            | Error::Connector { .. },
        ) => {}
        Err(e) => panic!("undocumented resolve error: {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    if !input_is_safe(data) {
        return;
    }
    let _fixture = fixture();
    forgetting_stores(data, FIXTURE_STORES, || {
        check_proxy::<u64>(data);
        check_proxy::<String>(data);
        check_proxy::<Vec<String>>(data);
        check_proxy::<Record>(data);
        // Through serde, as part of a message.
        let _ = postcard::from_bytes::<Proxy<u64>>(data);
        let _ = postcard::from_bytes::<(Proxy<String>, u8)>(data);
    });
});
