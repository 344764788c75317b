//! Stores of every kind for one test, and probes of what a store really
//! holds (after every queued release is applied). A test crate using this
//! module names itself with `const SUITE: &str` and declares
//! `mod redis_server;`.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use borrowstore::{Key, Proxy, Store};

/// Runs every listed check (a `fn(Store)` at the test crate's root)
/// against fresh memory, file and Redis stores, one `#[test]` each.
macro_rules! on_every_store {
    ($($check:ident),* $(,)?) => {
        mod memory {
            $( #[test] fn $check() { super::$check(super::memory_store()) } )*
        }
        mod file {
            $( #[test] fn $check() { super::$check(super::file_store()) } )*
        }
        #[cfg(feature = "redis")]
        mod redis {
            $( #[test] fn $check() { super::$check(super::redis_store()) } )*
        }
    };
}
pub(crate) use on_every_store;

/// A name no other test, in this or any other process, uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh in-memory store.
pub fn memory_store() -> Store {
    Store::memory(unique(&format!("{}-memory", crate::SUITE)))
}

/// A fresh directory for a file store, under cargo's per-target temp dir.
pub fn file_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(crate::SUITE)
        .join(unique("file"))
}

/// A file store in a fresh directory.
pub fn file_store() -> Store {
    Store::open(&format!("file://{}", file_dir().display())).expect("open file store")
}

/// A Redis store on a `redis-server` started for this test.
pub fn redis_store() -> Store {
    let url = crate::redis_server::url_for_this_test(&unique(crate::SUITE), "");
    Store::open(&url).expect("open redis store")
}

/// Whether the store holds `key`.
pub fn exists(store: &Store, key: &Key) -> bool {
    store.flush().expect("flush");
    store.exists(key).expect("exists")
}

/// The store-side holder count of `key` (0 when gone).
pub fn holders(store: &Store, key: &Key) -> u32 {
    store.flush().expect("flush");
    store
        .inspect(key)
        .expect("inspect")
        .map_or(0, |i| i.holders)
}

/// Every key the store holds.
pub fn contents(store: &Store) -> BTreeSet<Key> {
    store.flush().expect("flush");
    store.keys().expect("keys").into_iter().collect()
}

/// `keys` as a set.
pub fn set(keys: &[Key]) -> BTreeSet<Key> {
    keys.iter().copied().collect()
}

/// The key of a proxy.
pub fn key<T: borrowstore::Storable>(p: &Proxy<T>) -> Key {
    *Proxy::key(p)
}
