//! What each half of [`sync`](super) provides under the concurrent
//! [`Map`](super::Map): a handful of closure-based operations, each atomic
//! with respect to the others on the same key. The map's methods are
//! written once, on top of these.

/// The storage of a concurrent map. No operation hands out a guard: `f`
/// runs while the entry (or, for the whole-map operations, each entry in
/// turn) is locked, and must not call back into the map.
pub(crate) trait RawMap<K, V>: Default {
    /// Runs `f` on the value under `k`, if any.
    fn read<R>(&self, k: &K, f: impl FnOnce(&V) -> R) -> Option<R>;

    /// Runs `f` on the value under `k` mutably, if any.
    fn write<R>(&self, k: &K, f: impl FnOnce(&mut V) -> R) -> Option<R>;

    /// Puts `v` under `k`; returns the value it replaced.
    fn insert(&self, k: K, v: V) -> Option<V>;

    /// Puts `v` under `k` unless `k` is present; returns whether it did.
    fn insert_vacant(&self, k: K, v: V) -> bool;

    /// Removes the entry under `k` if `f` approves of its value.
    fn remove_if(&self, k: &K, f: impl FnOnce(&V) -> bool) -> Option<V>;

    /// Keeps only the entries for which `f` returns true.
    fn retain(&self, f: impl FnMut(&K, &mut V) -> bool);

    /// Runs `f` on every entry.
    fn for_each(&self, f: impl FnMut(&K, &V));

    /// The number of entries.
    fn len(&self) -> usize;
}
