//! The store's plumbing for the proxy and ownership layers: encoding values
//! for the connector, and resolving them through this process's cache.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::Store;
use super::cache::Cached;
use super::target::Target;
use crate::codec::{self, Storable};
use crate::connector::{Entry, Fetch, LocalValue, Stored, Value};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::state::Init;

impl Store {
    pub(super) fn encode<T: Storable>(&self, value: &T) -> Result<Value> {
        let bytes = codec::encode(value)?;
        if let Some(limit) = self.inner.max_value_size
            && bytes.len() > limit
        {
            return Err(Error::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        Ok(Value::Bytes(bytes.into()))
    }

    /// The value to hand to the connector: kept as it is where the
    /// connector keeps values in this process, else encoded here (and
    /// checked against the size limit).
    pub(crate) fn value_of<T: Storable>(&self, value: Arc<T>) -> Result<Value> {
        if self.connector().keeps_local_values() {
            Ok(Value::Local(LocalValue::new(value)))
        } else {
            self.encode(&*value)
        }
    }

    /// Stores a new object with its initial state; returns its entry if the
    /// connector has entries.
    pub(crate) fn insert(
        &self,
        key: Key,
        value: Value,
        init: Init,
    ) -> Result<Option<Arc<dyn Entry>>> {
        self.blocking().put(&key, value, init)
    }

    /// Publishes `value` for the object at `target` on behalf of `writer`;
    /// returns the new version.
    pub(crate) fn publish(
        &self,
        target: Target<'_>,
        writer: crate::state::Claim,
        value: Value,
    ) -> Result<u64> {
        target.publish(self, writer, value)
    }

    /// The current value of the object at `target`, shared: from the
    /// connector's local value, or decoded once per version through the cache.
    pub(crate) fn resolve<T: Storable>(&self, target: Target<'_>) -> Result<Arc<T>> {
        self.resolve_versioned(target).map(|(v, _)| v)
    }

    /// [`resolve`](Store::resolve), with the version resolved.
    pub(crate) fn resolve_versioned<T: Storable>(
        &self,
        target: Target<'_>,
    ) -> Result<(Arc<T>, u64)> {
        let key = target.key();
        let (cached, known) = self.cached(key);
        let fetch = match self.vouched_fetch(key, known) {
            Some(f) => f,
            None => target.fetch(self, known)?,
        };
        match self.settle(key, cached, fetch)? {
            Some(resolved) => Ok(resolved),
            // The entry changed under us: read without the version check.
            None => self.refetched(key, self.blocking().fetch(key, None)?),
        }
    }

    /// What a version-checked read found, given the cache entry it sent the
    /// version of; `None` if the cache entry changed meanwhile (read again
    /// without the check, and pass the result to [`refetched`](Store::refetched)).
    pub(super) fn settle<T: Storable>(
        &self,
        key: &Key,
        cached: Option<Cached>,
        fetch: Fetch,
    ) -> Result<Option<(Arc<T>, u64)>> {
        match fetch {
            Fetch::Changed(stored) => self.materialize(key, stored).map(Some),
            Fetch::Missing => {
                self.inner.cache.remove(key);
                Err(self.not_found(key))
            }
            Fetch::Unchanged => match cached {
                Some(c) => {
                    let version = c.version;
                    tracing::trace!(target: "borrowstore", store = %self.name(), %key, version, "cache hit");
                    downcast_cached(c).map(|v| Some((v, version)))
                }
                None => Ok(None),
            },
        }
    }

    /// The value of a read made without the version check.
    pub(super) fn refetched<T: Storable>(&self, key: &Key, fetch: Fetch) -> Result<(Arc<T>, u64)> {
        match fetch {
            Fetch::Changed(stored) => self.materialize(key, stored),
            _ => Err(self.not_found(key)),
        }
    }

    #[cfg(feature = "apalis")]
    /// Vouches that `version` of `key` is current until `until` (see
    /// [`Cache::vouch`](super::cache::Cache::vouch)): the caller holds a
    /// reader claim of the object, just confirmed at that version, that
    /// lasts past `until`. The vouch ends when the returned guard drops.
    pub(crate) fn vouch(&self, key: Key, version: u64, until: std::time::Instant) -> Vouched {
        let id = self.inner.cache.vouch(key, version, until);
        Vouched {
            store: self.clone(),
            key,
            id,
        }
    }

    /// What a version-checked read of `key`, sending `known`, finds with no
    /// round trip: `Unchanged` where a held reader claim vouches for that
    /// version (see [`Cache::vouch`](super::cache::Cache::vouch)); `None`
    /// otherwise, and the connector is asked.
    pub(super) fn vouched_fetch(&self, key: &Key, known: Option<u64>) -> Option<Fetch> {
        known
            .filter(|&v| self.inner.cache.vouched(key, v))
            .map(|_| Fetch::Unchanged)
    }

    /// The cache entry of `key` and its version, for a version-checked read.
    pub(super) fn cached(&self, key: &Key) -> (Option<Cached>, Option<u64>) {
        let cached = self.inner.cache.get(key);
        let known = cached.as_ref().map(|c| c.version);
        (cached, known)
    }

    /// Caches a value this process published (connectors that encode only).
    pub(crate) fn remember<T: Storable>(&self, key: Key, version: u64, value: Arc<T>) {
        if !self.connector().keeps_local_values() {
            self.inner.cache.insert(
                key,
                Cached {
                    version,
                    type_name: std::any::type_name::<T>(),
                    value,
                },
            );
        }
    }

    /// The version of `key` in this process's cache.
    pub(crate) fn cached_version(&self, key: &Key) -> Option<u64> {
        self.inner.cache.version(key)
    }

    /// The value a combined acquire-and-read returned, given the version
    /// that was sent as known.
    pub(crate) fn materialize_fetch<T: Storable>(
        &self,
        key: &Key,
        fetch: Fetch,
        known: Option<u64>,
    ) -> Result<(Arc<T>, u64)> {
        match self.materialize_known(key, fetch, known)? {
            Some(v) => Ok(v),
            None => self.resolve_versioned(Target::keyed(key)),
        }
    }

    /// [`materialize_fetch`](Store::materialize_fetch), except that `None`
    /// asks for a full resolve (the cache moved on since the read).
    pub(crate) fn materialize_known<T: Storable>(
        &self,
        key: &Key,
        fetch: Fetch,
        known: Option<u64>,
    ) -> Result<Option<(Arc<T>, u64)>> {
        match fetch {
            Fetch::Changed(stored) => self.materialize(key, stored).map(Some),
            Fetch::Unchanged => match self.inner.cache.get(key) {
                Some(c) if Some(c.version) == known => {
                    let version = c.version;
                    downcast_cached(c).map(|v| Some((v, version)))
                }
                _ => Ok(None),
            },
            Fetch::Missing => Err(self.not_found(key)),
        }
    }

    /// Evicts `key` and returns its value (ephemeral resolve).
    pub(crate) fn take<T: Storable>(&self, key: &Key) -> Result<Arc<T>> {
        let stored = self.blocking().take(key)?;
        self.taken(key, stored)
    }

    /// The value an ephemeral resolve took.
    pub(super) fn taken<T: Storable>(&self, key: &Key, stored: Option<Stored>) -> Result<Arc<T>> {
        self.inner.cache.remove(key);
        match stored {
            Some(s) => self.materialize_uncached(s),
            None => Err(self.not_found(key)),
        }
    }

    pub(crate) fn not_found(&self, key: &Key) -> Error {
        Error::KeyNotFound {
            key: *key,
            store: self.name().to_owned(),
        }
    }

    pub(crate) fn forget_cached(&self, key: &Key) {
        self.inner.cache.remove(key);
    }

    fn materialize<T: Storable>(&self, key: &Key, stored: Stored) -> Result<(Arc<T>, u64)> {
        match stored.value {
            Value::Local(l) => downcast_local(&l).map(|v| (v, stored.version)),
            Value::Bytes(b) => {
                let value: Arc<T> = Arc::new(crate::blob::decode_shared(&b)?);
                self.inner.cache.insert(
                    *key,
                    Cached {
                        version: stored.version,
                        type_name: std::any::type_name::<T>(),
                        value: value.clone(),
                    },
                );
                Ok((value, stored.version))
            }
        }
    }

    fn materialize_uncached<T: Storable>(&self, stored: Stored) -> Result<Arc<T>> {
        match stored.value {
            Value::Local(l) => downcast_local(&l),
            Value::Bytes(b) => Ok(Arc::new(crate::blob::decode_shared(&b)?)),
        }
    }

    pub(super) fn to_owned_value<T: Storable + DeserializeOwned>(
        &self,
        stored: Stored,
    ) -> Result<T> {
        match stored.value {
            Value::Local(l) => downcast_local::<T>(&l).map(|v| T::clone(&v)),
            Value::Bytes(b) => crate::blob::decode_shared(&b),
        }
    }
}

fn downcast_local<T: Storable>(l: &LocalValue) -> Result<Arc<T>> {
    l.downcast::<T>().ok_or_else(|| Error::TypeMismatch {
        expected: std::any::type_name::<T>(),
        found: l.type_name().to_owned(),
    })
}

fn downcast_cached<T: Storable>(c: Cached) -> Result<Arc<T>> {
    c.value.downcast::<T>().map_err(|_| Error::TypeMismatch {
        expected: std::any::type_name::<T>(),
        found: c.type_name.to_owned(),
    })
}

/// A vouch for a version of an object ([`Store::vouch`]), withdrawn when
/// dropped.
#[cfg(feature = "apalis")]
#[clippy::has_significant_drop]
pub(crate) struct Vouched {
    store: Store,
    key: Key,
    id: u64,
}

#[cfg(feature = "apalis")]
impl Drop for Vouched {
    fn drop(&mut self) {
        self.store.inner.cache.unvouch(&self.key, self.id);
    }
}
