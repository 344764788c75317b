//! The per-process cache of decoded values.
//!
//! Values that arrive as bytes are decoded once per version and shared as
//! `Arc<T>` by every reader in this process. An entry is valid while the
//! store-side version matches; a resolve sends the version it holds and the
//! connector moves no value when it is current.

use std::any::Any;

use crate::key::Key;
use crate::sync::{Arc, Map};

#[derive(Clone)]
pub(crate) struct Cached {
    pub(crate) version: u64,
    pub(crate) type_name: &'static str,
    pub(crate) value: Arc<dyn Any + Send + Sync>,
}

#[derive(Default)]
pub(crate) struct Cache {
    map: Map<Key, Cached>,
}

impl Cache {
    pub(crate) fn version(&self, key: &Key) -> Option<u64> {
        self.map.with(key, |c| c.version)
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Cached> {
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
            self.map.insert(key, cached);
        }
    }

    pub(crate) fn remove(&self, key: &Key) {
        self.map.remove(key);
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}
