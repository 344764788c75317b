//! The plain object API of [`Store`]: put, get, exists, evict, and their batch forms.

use std::sync::Arc;

use super::Store;
#[cfg(doc)]
use super::StoreBuilder;
use super::manager;
use super::target::Target;
use crate::codec::Storable;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::observe::{self, op_span};

impl Store {
    /// Stores a copy of `value` (encoded) under a new key, with no owner: it
    /// persists until evicted.
    ///
    /// While a liveness scope is open on this thread, the new object is
    /// managed by it.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] if the value cannot be encoded,
    /// [`Error::TooLarge`] above the store's
    /// [size limit](StoreBuilder::max_value_size), [`Error::Connector`] if
    /// the store cannot be reached.
    ///
    /// ```
    /// use borrowstore::Store;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-put");
    /// let mut value = vec![1u64, 2, 3];
    /// let key = store.put(&value)?;                      // a copy
    /// value.push(4);                                     // does not change the stored one
    /// assert_eq!(store.get::<Vec<u64>>(&key)?, Some(vec![1, 2, 3]));
    /// # Ok(()) }
    /// ```
    pub fn put<T: Storable>(&self, value: &T) -> Result<Key> {
        let key = Key::random();
        let span = op_span!("put", self, key);
        let r = {
            let _in = span.enter();
            self.encode(value).and_then(|v| self.insert_managed(key, v))
        };
        observe::finish(&span, || self.name(), "put", &r);
        r?;
        observe::objects(|| self.name(), 1.0);
        Ok(key)
    }

    /// Stores copies of several values; one key each, in order.
    ///
    /// While a liveness scope is open on this thread, each new object is
    /// managed by it (and they are stored one by one).
    ///
    /// # Errors
    ///
    /// As [`Store::put`]; nothing is stored if a value cannot be encoded.
    ///
    /// ```
    /// use borrowstore::Store;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-put-batch");
    /// let keys = store.put_batch(&["a".to_owned(), "b".to_owned()])?;
    /// assert_eq!(store.get::<String>(&keys[1])?.as_deref(), Some("b"));
    /// # Ok(()) }
    /// ```
    pub fn put_batch<T: Storable>(&self, values: &[T]) -> Result<Vec<Key>> {
        if manager::active() {
            return values.iter().map(|v| self.put(v)).collect();
        }
        let items = values
            .iter()
            .map(|v| Ok((Key::random(), self.encode(v)?)))
            .collect::<Result<Vec<_>>>()?;
        let keys = items.iter().map(|(k, _)| *k).collect();
        self.blocking().put_batch(items)?;
        Ok(keys)
    }

    /// A copy of the value under `key`, or `None` if there is none. Use
    /// [`Store::get_shared`] to read without a copy.
    ///
    /// # Errors
    ///
    /// [`Error::TypeMismatch`] if the value is of another type (naming the
    /// stored type), [`Error::Decode`] if its bytes are damaged,
    /// [`Error::Connector`] if the store cannot be reached.
    ///
    /// ```
    /// use borrowstore::{Error, Key, Store};
    /// # fn main() -> Result<(), Error> {
    /// let store = Store::memory("doc-get");
    /// let key = store.put(&vec![1u64, 2, 3])?;
    /// assert_eq!(store.get::<Vec<u64>>(&key)?, Some(vec![1, 2, 3]));
    /// assert!(matches!(store.get::<String>(&key), Err(Error::TypeMismatch { .. })));
    /// assert_eq!(store.get::<Vec<u64>>(&Key::random())?, None);
    /// # Ok(()) }
    /// ```
    pub fn get<T: Storable>(&self, key: &Key) -> Result<Option<T>> {
        let span = op_span!("get", self, key);
        let r = {
            let _in = span.enter();
            match self.blocking().get(key) {
                Ok(None) => Ok(None),
                Ok(Some(stored)) => self.to_owned_value(stored).map(Some),
                Err(e) => Err(e),
            }
        };
        observe::finish(&span, || self.name(), "get", &r);
        r
    }

    /// The value under `key`, shared with every other reader in this process
    /// (no copy), or `None`.
    ///
    /// # Errors
    ///
    /// As [`Store::get`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use borrowstore::Store;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-get-shared");
    /// let key = store.put(&vec![0u8; 1024])?;
    /// let a: Arc<Vec<u8>> = store.get_shared(&key)?.expect("stored");
    /// let b: Arc<Vec<u8>> = store.get_shared(&key)?.expect("stored");
    /// assert!(Arc::ptr_eq(&a, &b));                      // one value, two readers
    /// # Ok(()) }
    /// ```
    pub fn get_shared<T: Storable>(&self, key: &Key) -> Result<Option<Arc<T>>> {
        let span = op_span!("get", self, key);
        let r = match span.in_scope(|| self.resolve(Target::keyed(key))) {
            Ok(v) => Ok(Some(v)),
            Err(Error::KeyNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        };
        observe::finish(&span, || self.name(), "get", &r);
        r
    }

    /// Copies of several values, in the order of `keys`; `None` where
    /// there is no object.
    ///
    /// # Errors
    ///
    /// As [`Store::get`], for the first value that fails.
    ///
    /// ```
    /// use borrowstore::{Key, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-get-batch");
    /// let keys = store.put_batch(&[1u8, 2])?;
    /// let found = store.get_batch::<u8>(&[keys[1], Key::random(), keys[0]])?;
    /// assert_eq!(found, vec![Some(2), None, Some(1)]);
    /// # Ok(()) }
    /// ```
    pub fn get_batch<T: Storable>(&self, keys: &[Key]) -> Result<Vec<Option<T>>> {
        self.blocking()
            .get_batch(keys)?
            .into_iter()
            .map(|s| s.map(|s| self.to_owned_value(s)).transpose())
            .collect()
    }

    /// Whether an object is stored under `key`.
    ///
    /// # Errors
    ///
    /// [`Error::Connector`] if the store cannot be reached.
    ///
    /// ```
    /// use borrowstore::{Key, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-exists");
    /// let key = store.put(&1u8)?;
    /// assert!(store.exists(&key)?);
    /// assert!(!store.exists(&Key::random())?);
    /// # Ok(()) }
    /// ```
    pub fn exists(&self, key: &Key) -> Result<bool> {
        self.blocking().exists(key)
    }

    /// Whether objects are stored under each of `keys`, in order.
    ///
    /// ```
    /// use borrowstore::{Key, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-exists-batch");
    /// let key = store.put(&1u8)?;
    /// assert_eq!(store.exists_batch(&[key, Key::random()])?, vec![true, false]);
    /// # Ok(()) }
    /// ```
    pub fn exists_batch(&self, keys: &[Key]) -> Result<Vec<bool>> {
        self.blocking().exists_batch(keys)
    }

    /// Evicts the object under `key` now, whoever owns it. Returns whether
    /// there was one. Refused with [`Error::AlreadyBorrowed`] while the object
    /// is borrowed: references are always valid.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyBorrowed`] (operation `"evict"`, naming the borrows)
    /// while a [`RefProxy`](crate::RefProxy) or
    /// [`RefMutProxy`](crate::RefMutProxy) of the object exists anywhere;
    /// [`Error::Connector`] if the store cannot be reached.
    ///
    /// ```
    /// use borrowstore::{Error, OwnedProxy, Store, borrow};
    /// # fn main() -> Result<(), Error> {
    /// let store = Store::memory("doc-evict");
    /// let key = store.put(&1u8)?;
    /// assert!(store.evict(&key)?);
    /// assert!(!store.evict(&key)?);                      // already gone
    ///
    /// let owner = store.owned_proxy(2u8)?;
    /// let key = *OwnedProxy::key(&owner);
    /// let reader = borrow(&owner)?;
    /// assert!(matches!(store.evict(&key), Err(Error::AlreadyBorrowed { .. })));
    /// drop(reader);
    /// assert!(store.evict(&key)?);                       // whoever owns it
    /// # Ok(()) }
    /// ```
    pub fn evict(&self, key: &Key) -> Result<bool> {
        let span = op_span!("evict", self, key);
        let r = span.in_scope(|| self.blocking().evict(key));
        self.inner.cache.remove(key);
        observe::finish(&span, || self.name(), "evict", &r);
        if let Ok(true) = r {
            observe::objects(|| self.name(), -1.0);
        }
        r
    }

    /// Evicts several objects, in order; returns whether each was there.
    /// Stops at the first refusal, with its error (the objects before it
    /// are evicted).
    ///
    /// ```
    /// use borrowstore::{Key, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-evict-batch");
    /// let keys = store.put_batch(&[1u8, 2])?;
    /// assert_eq!(store.evict_batch(&[keys[0], Key::random(), keys[1]])?, vec![true, false, true]);
    /// assert!(store.keys()?.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn evict_batch(&self, keys: &[Key]) -> Result<Vec<bool>> {
        keys.iter().map(|k| self.evict(k)).collect()
    }

    /// Waits until every release this process queued has been applied
    /// store-side. Immediate for the memory and file stores, which apply
    /// releases before `drop` returns; a Redis store queues them (a `Drop`
    /// never waits on the network), so call `flush` before you check from
    /// elsewhere what a drop released.
    ///
    /// Also reports the failure of a publish that a dropped, changed
    /// [`RefMutProxy`](crate::RefMutProxy) made (queued, or applied at
    /// once) since the last flush: that publish is not retried.
    ///
    /// Inside async code use [`flush_async`](Store::flush_async): this
    /// blocks the thread until the store answers.
    ///
    /// # Errors
    ///
    /// [`Error::Connector`] if the store cannot confirm the releases; they
    /// stay queued and are sent again. The error of a dropped writer's
    /// publish that failed, once.
    ///
    /// ```
    /// use borrowstore::{OwnedProxy, Store, borrow};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-flush");
    /// let owner = store.owned_proxy(1u8)?;
    /// let key = *OwnedProxy::key(&owner);
    /// drop(borrow(&owner)?);
    /// drop(owner);
    /// store.flush()?;                                    // every release has landed
    /// assert!(!store.exists(&key)?);
    /// # Ok(()) }
    /// ```
    pub fn flush(&self) -> Result<()> {
        if self.connector().queues_releases() {
            self.blocking().flush()?;
        }
        self.take_deferred()
    }

    /// Waits until every queued release has been applied, without blocking
    /// the executor; reports what [`flush`](Store::flush) reports.
    ///
    /// # Errors
    ///
    /// As [`Store::flush`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future stops the wait, not the releases.
    ///
    /// ```
    /// use borrowstore::Store;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-flush-async");
    /// drop(store.owned_proxy(1u8)?);
    /// futures::executor::block_on(store.flush_async())?;
    /// assert!(store.keys()?.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn flush_async(&self) -> Result<()> {
        if self.connector().queues_releases() {
            self.connector().flush_async().await?;
        }
        self.take_deferred()
    }
}
