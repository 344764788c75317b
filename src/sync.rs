//! The std / loom switch.
//!
//! Everything in this crate that two threads may touch at once goes through
//! this module, so that the loom models in `loom-tests/` check the real code.
//! Under `cfg(borrowstore_loom)` the primitives come from loom, and the
//! concurrent map — a [`DashMap`](dashmap::DashMap) normally, which loom
//! cannot see into — becomes a loom `Mutex<HashMap>` behind the same
//! closure-based facade. The facade never hands out map guards, so no caller
//! can hold a shard lock across a call into other code.
//!
//! `Arc` stays the std one in both builds: loom's `Arc` cannot hold a
//! `dyn Trait`, and reference counts are not what the models check.

#![allow(dead_code)]

pub(crate) use std::sync::Arc;

#[cfg(not(borrowstore_loom))]
pub(crate) use std::sync::{
    Mutex, RwLock,
    atomic::{AtomicU64, Ordering},
};

#[cfg(borrowstore_loom)]
pub(crate) use loom::sync::{
    Mutex, RwLock,
    atomic::{AtomicU64, Ordering},
};

use std::hash::Hash;

/// Lets other threads run: a spin loop's back-off (under loom, a point
/// where the model may switch threads).
#[cfg(not(borrowstore_loom))]
pub(crate) fn yield_now() {
    std::thread::yield_now();
}

#[cfg(borrowstore_loom)]
pub(crate) fn yield_now() {
    loom::thread::yield_now();
}

/// Locks a mutex, recovering the data of a poisoned lock: every critical
/// section in this crate leaves its data consistent before it can panic.
#[cfg(not(borrowstore_loom))]
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(not(borrowstore_loom))]
pub(crate) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(not(borrowstore_loom))]
pub(crate) fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(borrowstore_loom)]
pub(crate) fn read<T>(l: &RwLock<T>) -> loom::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(borrowstore_loom)]
pub(crate) fn write<T>(l: &RwLock<T>) -> loom::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(borrowstore_loom)]
pub(crate) fn lock<T>(m: &Mutex<T>) -> loom::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A concurrent hash map with a closure-based interface.
///
/// Keys are the crate's 128-bit random ids, so the map hashes them with
/// foldhash (keyed per process) rather than SipHash: one folded multiply
/// instead of a dozen rounds, on every borrow-free lookup.
pub(crate) struct Map<K, V> {
    #[cfg(not(borrowstore_loom))]
    inner: dashmap::DashMap<K, V, foldhash::fast::RandomState>,
    #[cfg(borrowstore_loom)]
    inner: Mutex<std::collections::HashMap<K, V>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Default for Map<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Map<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            inner: Default::default(),
        }
    }

    /// A clone of the value under `k`.
    pub(crate) fn get(&self, k: &K) -> Option<V> {
        #[cfg(not(borrowstore_loom))]
        {
            self.inner.get(k).map(|v| v.value().clone())
        }
        #[cfg(borrowstore_loom)]
        {
            lock(&self.inner).get(k).cloned()
        }
    }

    /// Runs `f` on the value under `k` while the entry is locked.
    pub(crate) fn with<R>(&self, k: &K, f: impl FnOnce(&V) -> R) -> Option<R> {
        #[cfg(not(borrowstore_loom))]
        {
            self.inner.get(k).map(|v| f(v.value()))
        }
        #[cfg(borrowstore_loom)]
        {
            lock(&self.inner).get(k).map(f)
        }
    }

    /// Runs `f` on the value under `k` mutably while the entry is locked.
    pub(crate) fn with_mut<R>(&self, k: &K, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        #[cfg(not(borrowstore_loom))]
        {
            self.inner.get_mut(k).map(|mut v| f(v.value_mut()))
        }
        #[cfg(borrowstore_loom)]
        {
            lock(&self.inner).get_mut(k).map(f)
        }
    }

    pub(crate) fn contains(&self, k: &K) -> bool {
        #[cfg(not(borrowstore_loom))]
        {
            self.inner.contains_key(k)
        }
        #[cfg(borrowstore_loom)]
        {
            lock(&self.inner).contains_key(k)
        }
    }

    pub(crate) fn insert(&self, k: K, v: V) -> Option<V> {
        #[cfg(not(borrowstore_loom))]
        {
            self.inner.insert(k, v)
        }
        #[cfg(borrowstore_loom)]
        {
            lock(&self.inner).insert(k, v)
        }
    }

    /// Inserts `v` unless `k` is present; returns whether it inserted.
    pub(crate) fn insert_new(&self, k: K, v: V) -> bool {
        #[cfg(not(borrowstore_loom))]
        {
            match self.inner.entry(k) {
                dashmap::Entry::Occupied(_) => false,
                dashmap::Entry::Vacant(e) => {
                    e.insert(v);
                    true
                }
            }
        }
        #[cfg(borrowstore_loom)]
        {
            let mut m = lock(&self.inner);
            if let std::collections::hash_map::Entry::Vacant(e) = m.entry(k) {
                e.insert(v);
                true
            } else {
                false
            }
        }
    }

    pub(crate) fn remove(&self, k: &K) -> Option<V> {
        #[cfg(not(borrowstore_loom))]
        {
            self.inner.remove(k).map(|(_, v)| v)
        }
        #[cfg(borrowstore_loom)]
        {
            lock(&self.inner).remove(k)
        }
    }

    /// Removes the entry under `k` if `f` approves of its value.
    pub(crate) fn remove_if(&self, k: &K, f: impl FnOnce(&V) -> bool) -> Option<V> {
        #[cfg(not(borrowstore_loom))]
        {
            self.inner.remove_if(k, |_, v| f(v)).map(|(_, v)| v)
        }
        #[cfg(borrowstore_loom)]
        {
            let mut m = lock(&self.inner);
            if m.get(k).is_some_and(f) {
                m.remove(k)
            } else {
                None
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        #[cfg(not(borrowstore_loom))]
        {
            self.inner.len()
        }
        #[cfg(borrowstore_loom)]
        {
            lock(&self.inner).len()
        }
    }

    pub(crate) fn keys(&self) -> Vec<K> {
        #[cfg(not(borrowstore_loom))]
        {
            self.inner.iter().map(|e| e.key().clone()).collect()
        }
        #[cfg(borrowstore_loom)]
        {
            lock(&self.inner).keys().cloned().collect()
        }
    }

    /// Keeps only the entries for which `f` returns true.
    pub(crate) fn retain(&self, mut f: impl FnMut(&K, &mut V) -> bool) {
        #[cfg(not(borrowstore_loom))]
        {
            self.inner.retain(|k, v| f(k, v))
        }
        #[cfg(borrowstore_loom)]
        {
            lock(&self.inner).retain(|k, v| f(k, v))
        }
    }

    pub(crate) fn clear(&self) {
        #[cfg(not(borrowstore_loom))]
        {
            self.inner.clear()
        }
        #[cfg(borrowstore_loom)]
        {
            lock(&self.inner).clear()
        }
    }
}
