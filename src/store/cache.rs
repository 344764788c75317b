//! The per-process cache of decoded values.
//!
//! Values that arrive as bytes are decoded once per version and shared as
//! `Arc<T>` by every reader in this process. An entry is valid while the
//! store-side version matches; a resolve sends the version it holds and the
//! connector moves no value when it is current.

use std::any::Any;

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::key::Key;
use crate::sync::{Arc, Map};

#[derive(Clone)]
pub(crate) struct Cached {
    pub(crate) version: u64,
    pub(crate) type_name: &'static str,
    pub(crate) value: Arc<dyn Any + Send + Sync>,
}

/// The cache. Memory stores keep values undecoded and never fill it, so
/// every operation first checks an entry count and skips the map (a hash
/// and a shard lock) while it is empty.
#[derive(Default)]
pub(crate) struct Cache {
    map: Map<Key, Cached>,
    entries: AtomicUsize,
}

impl Cache {
    fn is_empty(&self) -> bool {
        self.entries.load(Ordering::Acquire) == 0
    }

    pub(crate) fn version(&self, key: &Key) -> Option<u64> {
        if self.is_empty() {
            return None;
        }
        self.map.with(key, |c| c.version)
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Cached> {
        if self.is_empty() {
            return None;
        }
        self.map.get(key)
    }

    /// Keeps `cached` unless a newer version is already there.
    pub(crate) fn insert(&self, key: Key, cached: Cached) {
        let newer = self
            .map
            .with_mut(&key, |c| {
                if c.version <= cached.version {
                    *c = cached.clone();
                }
            })
            .is_some();
        if !newer {
            // Count first: a reader that sees the entry must not skip the map.
            self.entries.fetch_add(1, Ordering::AcqRel);
            if self.map.insert(key, cached).is_some() {
                self.entries.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    pub(crate) fn remove(&self, key: &Key) {
        if self.is_empty() {
            return;
        }
        if self.map.remove(key).is_some() {
            self.entries.fetch_sub(1, Ordering::AcqRel);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.load(Ordering::Acquire)
    }
}
