//! The concurrent map facade: every method written once, on the
//! [`RawMap`] of the build's half of [`sync`](super).

use std::hash::Hash;

use super::raw_map::RawMap;

#[cfg(not(borrowstore_loom))]
use super::std::Table;

#[cfg(borrowstore_loom)]
use super::loom::Table;

/// A concurrent hash map with a closure-based interface: a DashMap in
/// normal builds, a loom `Mutex<HashMap>` under loom. It never hands out
/// map guards, so no caller can hold a shard lock across a call into other
/// code.
pub(crate) struct Map<K, V> {
    inner: Table<K, V>,
}

impl<K: Eq + Hash + Clone, V: Clone> Default for Map<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Map<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            inner: Table::default(),
        }
    }

    /// The storage, seen only through [`RawMap`] (whose names shadow none
    /// of the storage type's own methods).
    fn raw(&self) -> &impl RawMap<K, V> {
        &self.inner
    }

    /// A clone of the value under `k`.
    pub(crate) fn get(&self, k: &K) -> Option<V> {
        self.raw().read(k, V::clone)
    }

    /// Runs `f` on the value under `k` while the entry is locked.
    pub(crate) fn with<R>(&self, k: &K, f: impl FnOnce(&V) -> R) -> Option<R> {
        self.raw().read(k, f)
    }

    /// Runs `f` on the value under `k` mutably while the entry is locked.
    pub(crate) fn with_mut<R>(&self, k: &K, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        self.raw().write(k, f)
    }

    pub(crate) fn contains(&self, k: &K) -> bool {
        self.raw().read(k, |_| ()).is_some()
    }

    pub(crate) fn insert(&self, k: K, v: V) -> Option<V> {
        self.raw().insert(k, v)
    }

    /// Inserts `v` unless `k` is present; returns whether it inserted.
    pub(crate) fn insert_new(&self, k: K, v: V) -> bool {
        self.raw().insert_vacant(k, v)
    }

    pub(crate) fn remove(&self, k: &K) -> Option<V> {
        self.raw().remove_if(k, |_| true)
    }

    /// Removes the entry under `k` if `f` approves of its value.
    pub(crate) fn remove_if(&self, k: &K, f: impl FnOnce(&V) -> bool) -> Option<V> {
        self.raw().remove_if(k, f)
    }

    pub(crate) fn len(&self) -> usize {
        self.raw().len()
    }

    pub(crate) fn keys(&self) -> Vec<K> {
        let mut out = Vec::new();
        self.raw().for_each(|k, _| out.push(k.clone()));
        out
    }

    /// Keeps only the entries for which `f` returns true.
    pub(crate) fn retain(&self, f: impl FnMut(&K, &mut V) -> bool) {
        self.raw().retain(f)
    }

    pub(crate) fn clear(&self) {
        self.raw().retain(|_, _| false)
    }
}
