//! The store's `_async` forms: the same operations as the blocking ones,
//! doing their I/O without blocking the thread that polls them. On a
//! memory store they complete in their first poll.

use std::sync::Arc;

use super::config::Location;
use super::target::Target;
use super::{ObjectInfo, Store};
use crate::codec::Storable;
use crate::connector::offload::offload;
use crate::connector::{Entry, Value, Waiters};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::state::{Claim, Init};

impl Store {
    /// [`Store::open`], without blocking the executor: a file store's
    /// directory is opened (and created) on tokio's blocking pool when
    /// polled inside a tokio runtime.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the directory created; nothing else.
    ///
    /// ```
    /// use borrowstore::Store;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = futures::executor::block_on(Store::open_async("memory://doc-open-async"))?;
    /// assert_eq!(store.name(), "doc-open-async");
    /// # Ok(()) }
    /// ```
    pub async fn open_async(url: &str) -> Result<Store> {
        let location = Location::parse(url)?;
        if let Location::Memory { name } = location {
            return Ok(Store::memory(name));
        }
        if let Some(s) = Store::open_already(url, url) {
            return Ok(s);
        }
        let name = url.to_owned();
        let n = name.clone();
        let connector = offload(name.clone(), move || location.connect(&n)).await?;
        Ok(Store::registered_or(name.clone(), name, connector))
    }

    /// [`Store::put`], without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the value stored under a key nobody
    /// was told (a plain object: it persists until evicted).
    ///
    /// ```
    /// use borrowstore::Store;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-put-async");
    /// futures::executor::block_on(async {
    ///     let key = store.put_async(&vec![1u64, 2]).await?;
    ///     assert_eq!(store.get_async::<Vec<u64>>(&key).await?, Some(vec![1, 2]));
    ///     assert!(store.exists_async(&key).await?);
    ///     assert!(store.evict_async(&key).await?);
    ///     Ok(())
    /// })
    /// # }
    /// ```
    pub async fn put_async<T: Storable>(&self, value: &T) -> Result<Key> {
        let key = Key::random();
        self.insert_managed_async(key, self.encode(value)?).await?;
        Ok(key)
    }

    /// [`Store::get`], without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    pub async fn get_async<T: Storable>(&self, key: &Key) -> Result<Option<T>> {
        match self.connector().fetch_async(*key, None).await? {
            crate::connector::Fetch::Changed(stored) => self.to_owned_value(stored).map(Some),
            _ => Ok(None),
        }
    }

    /// [`Store::get_shared`], without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    pub async fn get_shared_async<T: Storable>(&self, key: &Key) -> Result<Option<Arc<T>>> {
        match self.resolve_async(Target::keyed(key)).await {
            Ok(v) => Ok(Some(v)),
            Err(Error::KeyNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// [`Store::exists`], without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    pub async fn exists_async(&self, key: &Key) -> Result<bool> {
        self.connector().exists_async(*key).await
    }

    /// [`Store::evict`], without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the object evicted or not.
    pub async fn evict_async(&self, key: &Key) -> Result<bool> {
        let r = self.connector().evict_async(*key).await;
        self.forget_cached(key);
        r
    }

    /// [`Store::inspect`], without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    pub async fn inspect_async(&self, key: &Key) -> Result<Option<ObjectInfo>> {
        Ok(self
            .connector()
            .inspect_async(*key)
            .await?
            .and_then(|i| ObjectInfo::from_inspect(*key, i)))
    }

    /// [`Store::keys`], without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    pub async fn keys_async(&self) -> Result<Vec<Key>> {
        self.connector().keys_async().await
    }

    /// Where this process's waiting borrows of the store's objects queue.
    pub(crate) fn waiters(&self) -> &Arc<Waiters> {
        &self.inner.waiters
    }

    /// [`insert`](Store::insert), without blocking the executor. If the
    /// future is dropped, a claim the object was put with is given back.
    pub(crate) async fn insert_async(
        &self,
        key: Key,
        value: Value,
        init: Init,
    ) -> Result<Option<Arc<dyn Entry>>> {
        self.connector().put_async(key, value, init).await
    }

    /// [`resolve`](Store::resolve), without blocking the executor.
    pub(crate) async fn resolve_async<T: Storable>(&self, target: Target<'_>) -> Result<Arc<T>> {
        self.resolve_versioned_async(target).await.map(|(v, _)| v)
    }

    /// [`resolve_versioned`](Store::resolve_versioned), without blocking
    /// the executor.
    pub(crate) async fn resolve_versioned_async<T: Storable>(
        &self,
        target: Target<'_>,
    ) -> Result<(Arc<T>, u64)> {
        let key = target.key();
        let (cached, known) = self.cached(key);
        let fetch = match self.vouched_fetch(key, known) {
            Some(f) => f,
            None => target.fetch_async(self, known).await?,
        };
        match self.settle(key, cached, fetch)? {
            Some(resolved) => Ok(resolved),
            None => {
                let fetch = self.connector().fetch_async(*key, None).await?;
                self.refetched(key, fetch)
            }
        }
    }

    /// [`take`](Store::take) (an ephemeral resolve), without blocking the
    /// executor.
    pub(crate) async fn take_async<T: Storable>(&self, key: &Key) -> Result<Arc<T>> {
        let stored = self.connector().take_async(*key).await?;
        self.taken(key, stored)
    }

    /// [`publish`](Store::publish), without blocking the executor.
    pub(crate) async fn publish_async(
        &self,
        target: Target<'_>,
        writer: Claim,
        value: Value,
    ) -> Result<u64> {
        target.publish_async(self, writer, value).await
    }
}
