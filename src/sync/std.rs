//! The std half of [`sync`](super): what every normal build uses.

use std::hash::Hash;

pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
pub(crate) use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
pub(crate) use std::thread::yield_now;
pub(crate) use std::thread_local;

use super::raw_map::RawMap;

/// The concurrent map's storage: a sharded DashMap.
///
/// Keys are the crate's 128-bit random ids, so the map hashes them with
/// foldhash (keyed per process) rather than SipHash: one folded multiply
/// instead of a dozen rounds, on every borrow-free lookup.
pub(crate) type Table<K, V> = dashmap::DashMap<K, V, foldhash::fast::RandomState>;

impl<K: Eq + Hash + Clone, V> RawMap<K, V> for Table<K, V> {
    fn read<R>(&self, k: &K, f: impl FnOnce(&V) -> R) -> Option<R> {
        self.get(k).map(|v| f(v.value()))
    }

    fn write<R>(&self, k: &K, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        self.get_mut(k).map(|mut v| f(v.value_mut()))
    }

    fn insert(&self, k: K, v: V) -> Option<V> {
        dashmap::DashMap::insert(self, k, v)
    }

    fn insert_vacant(&self, k: K, v: V) -> bool {
        match self.entry(k) {
            dashmap::Entry::Occupied(_) => false,
            dashmap::Entry::Vacant(e) => {
                e.insert(v);
                true
            }
        }
    }

    fn remove_if(&self, k: &K, f: impl FnOnce(&V) -> bool) -> Option<V> {
        dashmap::DashMap::remove_if(self, k, |_, v| f(v)).map(|(_, v)| v)
    }

    fn retain(&self, mut f: impl FnMut(&K, &mut V) -> bool) {
        dashmap::DashMap::retain(self, |k, v| f(k, v));
    }

    fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        for e in self.iter() {
            f(e.key(), e.value());
        }
    }

    fn len(&self) -> usize {
        dashmap::DashMap::len(self)
    }
}
