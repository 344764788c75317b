//! The loom half of [`sync`](super): what the crate is built with under
//! `cfg(borrowstore_loom)`, for the models in `loom-tests/`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::PoisonError;

pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
pub(crate) use loom::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
pub(crate) use loom::thread::yield_now;

use super::raw_map::RawMap;

/// `loom::thread_local!`, also accepting std's `const { … }` initializers
/// (loom's macro takes a plain expression; the value is the same). One
/// static per invocation.
macro_rules! loom_thread_local {
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = const { $init:expr };) => {
        ::loom::thread_local! { $(#[$attr])* $vis static $name: $t = $init; }
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr;) => {
        ::loom::thread_local! { $(#[$attr])* $vis static $name: $t = $init; }
    };
}
pub(crate) use loom_thread_local as thread_local;

/// The concurrent map's storage: one loom mutex around a `HashMap`, so the
/// models see every access (a DashMap's shard locks are invisible to loom).
pub(crate) type Table<K, V> = Mutex<HashMap<K, V>>;

fn table<K, V>(t: &Table<K, V>) -> MutexGuard<'_, HashMap<K, V>> {
    t.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<K: Eq + Hash + Clone, V> RawMap<K, V> for Table<K, V> {
    fn read<R>(&self, k: &K, f: impl FnOnce(&V) -> R) -> Option<R> {
        table(self).get(k).map(f)
    }

    fn write<R>(&self, k: &K, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        table(self).get_mut(k).map(f)
    }

    fn insert(&self, k: K, v: V) -> Option<V> {
        table(self).insert(k, v)
    }

    fn insert_vacant(&self, k: K, v: V) -> bool {
        match table(self).entry(k) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(v);
                true
            }
        }
    }

    fn remove_if(&self, k: &K, f: impl FnOnce(&V) -> bool) -> Option<V> {
        let mut m = table(self);
        if m.get(k).is_some_and(f) {
            m.remove(k)
        } else {
            None
        }
    }

    fn retain(&self, f: impl FnMut(&K, &mut V) -> bool) {
        table(self).retain(f);
    }

    fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        for (k, v) in table(self).iter() {
            f(k, v);
        }
    }

    fn len(&self) -> usize {
        table(self).len()
    }
}
