//! Probes of what a store really holds, read from its connector: after
//! every queued release is applied ([`exists`], [`holders`], [`contents`]),
//! or through an independent connection ([`observed`], [`borrows`],
//! [`assert_empty`]), never from a cache or a flag.

use std::cell::RefCell;
use std::collections::BTreeSet;

use borrowstore::{Key, OwnedProxy, Proxy, Storable, Store};

/// Whether the store holds `key`, after every queued release is applied.
///
/// ```
/// let store = borrowstore::Store::memory("probe-exists-doc");
/// let key = store.put(&1u8).unwrap();
/// assert!(borrowstore_testkit::exists(&store, &key));
/// ```
pub fn exists(store: &Store, key: &Key) -> bool {
    store.flush().expect("flush");
    store.exists(key).expect("exists")
}

/// The store-side holder count of `key` (0 when gone), after every queued
/// release is applied.
pub fn holders(store: &Store, key: &Key) -> u32 {
    store.flush().expect("flush");
    store
        .inspect(key)
        .expect("inspect")
        .map_or(0, |i| i.holders)
}

/// Every key the store holds, after every queued release is applied.
pub fn contents(store: &Store) -> BTreeSet<Key> {
    store.flush().expect("flush");
    store.keys().expect("keys").into_iter().collect()
}

/// `keys` as a set (to compare with [`contents`]).
pub fn set(keys: &[Key]) -> BTreeSet<Key> {
    keys.iter().copied().collect()
}

/// The key of a proxy.
pub fn key<T: Storable>(p: &Proxy<T>) -> Key {
    *Proxy::key(p)
}

/// The key of an owner.
pub fn key_of<T: Storable>(o: &OwnedProxy<T>) -> Key {
    *OwnedProxy::key(o)
}

thread_local! {
    /// An independent connection to this thread's (this test's) store.
    static OBSERVER: RefCell<Option<Store>> = const { RefCell::new(None) };
}

/// Opens an independent, unregistered connection to the store at `url`,
/// which [`observed`] hands out on this thread (this test) from now on.
pub fn observe(url: &str) {
    let observer = Store::builder(crate::unique_name("observer"))
        .url(url)
        .register(false)
        .build()
        .expect("open an observer");
    OBSERVER.with(|o| *o.borrow_mut() = Some(observer));
}

/// The store to read the connector's state from: the observer this thread
/// opened on the same place as `store` (see [`observe`] and
/// [`Suite::with_observer`](crate::Suite::with_observer)), or `store`.
pub fn observed(store: &Store) -> Store {
    OBSERVER
        .with(|o| o.borrow().clone())
        .filter(|o| o.url() == store.url())
        .unwrap_or_else(|| store.clone())
}

/// (readers, writer) of `key` as the connector holds them; panics if it
/// holds nothing under `key`.
///
/// ```
/// let store = borrowstore::Store::memory("probe-borrows-doc");
/// let owner = store.owned_proxy(vec![1u64]).unwrap();
/// let key = borrowstore_testkit::key_of(&owner);
/// let r = borrowstore::borrow(&owner).unwrap();
/// assert_eq!(borrowstore_testkit::borrows(&store, &key), (1, false));
/// drop(r);
/// assert_eq!(borrowstore_testkit::borrows(&store, &key), (0, false));
/// ```
#[track_caller]
pub fn borrows(store: &Store, key: &Key) -> (u32, bool) {
    let i = observed(store)
        .inspect(key)
        .expect("inspect")
        .unwrap_or_else(|| panic!("{key} is not stored"));
    (i.readers, i.writer)
}

/// Asserts that the store holds no key (read through [`observed`]).
#[track_caller]
pub fn assert_empty(store: &Store) {
    let keys = observed(store).keys().unwrap();
    assert!(keys.is_empty(), "store should be empty, holds {keys:?}");
}
