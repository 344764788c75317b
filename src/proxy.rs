//! [`Proxy<T>`]: a lazy, plain (non-owning), serializable reference to a
//! stored object.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{self, Storable};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::store::{Store, StoreConfig};

/// A lazy reference to an object in a store.
///
/// A proxy resolves its value on first use — [`Deref`], or
/// [`Proxy::resolve`] to get a `Result` — and keeps it: later uses cost
/// nothing. Readers in one process share one decoded value.
///
/// A proxy does not own its object: dropping it changes nothing store-side.
/// Serializing a proxy writes its store's config and key, never the value;
/// deserializing it in another process finds the store in the registry or
/// opens it from the config — if that process trusts it (see
/// [`trust`](crate::trust)).
///
/// Helpers are associated functions (`Proxy::key(&p)`) so they never hide a
/// method of `T`.
///
/// ```
/// use borrowstore::{Proxy, Store};
/// # fn main() -> Result<(), borrowstore::Error> {
/// let store = Store::memory("doc-proxy");
/// let p: Proxy<Vec<u64>> = store.proxy(vec![1, 2, 3])?;
/// assert_eq!(p.iter().sum::<u64>(), 6);
///
/// let bytes = postcard::to_allocvec(&p).unwrap(); // the key, not the value
/// let q: Proxy<Vec<u64>> = postcard::from_bytes(&bytes).unwrap();
/// assert_eq!(q.len(), 3);
/// # Ok(()) }
/// ```
///
/// # Panics
///
/// `Deref` panics, naming the key, the store and the cause, when the value
/// cannot be resolved (evicted, wrong type, damaged bytes, store
/// unreachable). Use [`Proxy::resolve`] where that can happen.
pub struct Proxy<T> {
    store: Store,
    key: Key,
    ephemeral: bool,
    value: OnceLock<Arc<T>>,
}

impl<T: Storable> Proxy<T> {
    pub(crate) fn new(store: Store, key: Key, ephemeral: bool, value: Option<Arc<T>>) -> Self {
        let cell = OnceLock::new();
        if let Some(v) = value {
            let _ = cell.set(v);
        }
        Proxy {
            store,
            key,
            ephemeral,
            value: cell,
        }
    }

    /// The value, resolving it if this proxy has not yet.
    ///
    /// For an ephemeral proxy the first resolve also evicts the object; any
    /// other proxy of it then fails with [`Error::KeyNotFound`].
    ///
    /// Inside async code use [`Proxy::resolve_async`]: on a file or Redis
    /// store this blocks the thread until the store answers.
    /// # Errors
    ///
    /// [`Error::KeyNotFound`] if the object is gone, [`Error::TypeMismatch`]
    /// if it holds another type, [`Error::Decode`] for damaged bytes,
    /// [`Error::Connector`] if the store cannot be reached. A failed resolve
    /// is tried again next time.
    ///
    /// ```
    /// use borrowstore::{Error, Proxy, Store};
    /// # fn main() -> Result<(), Error> {
    /// let store = Store::memory("doc-proxy-resolve");
    /// let p: Proxy<String> = store.proxy("hi".to_owned())?;
    /// assert_eq!(Proxy::resolve(&p)?, "hi");
    ///
    /// let gone: Proxy<String> = store.proxy_from_key(borrowstore::Key::random());
    /// assert!(matches!(Proxy::resolve(&gone), Err(Error::KeyNotFound { .. })));
    /// # Ok(()) }
    /// ```
    pub fn resolve(this: &Self) -> Result<&T> {
        Proxy::shared(this).map(|a| &**a)
    }

    /// The shared value (`Arc<T>`), resolving it if needed: the same `Arc`
    /// for every reader of the object in this process. It may outlive the
    /// proxy.
    ///
    /// # Errors
    ///
    /// As [`Proxy::resolve`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use borrowstore::{Proxy, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-proxy-shared");
    /// let p = store.proxy(vec![0u8; 1024])?;
    /// let q: Proxy<Vec<u8>> = store.proxy_from_key(*Proxy::key(&p));
    /// assert!(Arc::ptr_eq(Proxy::shared(&p)?, Proxy::shared(&q)?));
    /// # Ok(()) }
    /// ```
    pub fn shared(this: &Self) -> Result<&Arc<T>> {
        if let Some(v) = this.value.get() {
            return Ok(v);
        }
        let resolved = if this.ephemeral {
            this.store.take::<T>(&this.key)
        } else {
            this.store
                .resolve::<T>(crate::store::Target::keyed(&this.key))
        };
        match resolved {
            Ok(v) => Ok(this.value.get_or_init(|| v)),
            // Another thread may have resolved (and, if ephemeral, consumed) it.
            Err(e) => this.value.get().ok_or(e),
        }
    }

    /// [`Proxy::resolve`], without blocking the executor: on a file or
    /// Redis store the read is awaited. On a memory store it completes in
    /// its first poll.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe for a plain proxy: it only reads. For an ephemeral proxy,
    /// dropping the future may leave the object evicted and its value lost
    /// (it is read once).
    ///
    /// ```
    /// use borrowstore::{Proxy, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-proxy-async");
    /// let p: Proxy<Vec<u64>> = futures::executor::block_on(store.proxy_async(vec![1, 2]))?;
    /// let again: Proxy<Vec<u64>> = store.proxy_from_key(*Proxy::key(&p));
    /// let v = futures::executor::block_on(Proxy::resolve_async(&again))?;
    /// assert_eq!(v, &vec![1, 2]);
    /// # Ok(()) }
    /// ```
    pub async fn resolve_async(this: &Self) -> Result<&T> {
        Proxy::shared_async(this).await.map(|a| &**a)
    }

    /// [`Proxy::shared`], without blocking the executor; as
    /// [`Proxy::resolve_async`].
    ///
    /// # Cancel safety
    ///
    /// As [`Proxy::resolve_async`].
    pub async fn shared_async(this: &Self) -> Result<&Arc<T>> {
        if let Some(v) = this.value.get() {
            return Ok(v);
        }
        let resolved = if this.ephemeral {
            this.store.take_async::<T>(&this.key).await
        } else {
            this.store
                .resolve_async::<T>(crate::store::Target::keyed(&this.key))
                .await
        };
        match resolved {
            Ok(v) => Ok(this.value.get_or_init(|| v)),
            Err(e) => this.value.get().ok_or(e),
        }
    }

    /// Whether the value is already resolved in this proxy.
    ///
    /// ```
    /// use borrowstore::{Proxy, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-proxy-is-resolved");
    /// let p = store.proxy(1u8)?;
    /// assert!(Proxy::is_resolved(&p));                   // made with its value
    /// let q: Proxy<u8> = store.proxy_from_key(*Proxy::key(&p));
    /// assert!(!Proxy::is_resolved(&q));                  // lazy
    /// assert_eq!(*q, 1);
    /// assert!(Proxy::is_resolved(&q));
    /// # Ok(()) }
    /// ```
    pub fn is_resolved(this: &Self) -> bool {
        this.value.get().is_some()
    }

    /// Whether the first resolve evicts the object (made by
    /// [`Store::ephemeral_proxy`]).
    ///
    /// ```
    /// use borrowstore::{Proxy, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-proxy-is-ephemeral");
    /// assert!(Proxy::is_ephemeral(&store.ephemeral_proxy(1u8)?));
    /// assert!(!Proxy::is_ephemeral(&store.proxy(1u8)?));
    /// # Ok(()) }
    /// ```
    pub fn is_ephemeral(this: &Self) -> bool {
        this.ephemeral
    }

    /// The object's key. An associated function, so call it as
    /// `Proxy::key(&p)`: a method would hide a `key` method of `T`.
    ///
    /// ```
    /// use borrowstore::{Proxy, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-proxy-key");
    /// let p = store.proxy(5u32)?;
    /// let key = *Proxy::key(&p);
    /// assert_eq!(store.get::<u32>(&key)?, Some(5));
    /// # Ok(()) }
    /// ```
    pub fn key(this: &Self) -> &Key {
        &this.key
    }

    /// The object's store.
    ///
    /// ```
    /// use borrowstore::{Proxy, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-proxy-store");
    /// let p = store.proxy(5u32)?;
    /// assert!(Proxy::store(&p).same_store(&store));
    /// # Ok(()) }
    /// ```
    pub fn store(this: &Self) -> &Store {
        &this.store
    }

    /// The proxy's wire form (store config and key; never the value), the
    /// same bytes as serializing it with postcard.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] only if serialization fails.
    ///
    /// ```
    /// use borrowstore::{Proxy, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-proxy-to-bytes");
    /// let p = store.proxy(vec![0u8; 1 << 16])?;
    /// let bytes = Proxy::to_bytes(&p)?;
    /// assert!(bytes.len() < 200);                        // the key, not the 64 KiB value
    /// # Ok(()) }
    /// ```
    pub fn to_bytes(this: &Self) -> Result<Vec<u8>> {
        postcard::to_allocvec(this).map_err(Error::encode)
    }

    /// A proxy from its wire form, in this or another process: it finds
    /// its store in the registry, or opens it from the store config it
    /// carries if this process's [`trust`](crate::trust) policy allows
    /// that URL ([`Store::from_config`]). Nothing is read until it
    /// resolves.
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] for bytes that are not a proxy,
    /// [`Error::TypeMismatch`] (naming the type) for a proxy of another
    /// type, and [`Store::from_config`]'s errors for its store:
    /// [`Error::Untrusted`], [`Error::LocalStore`] (another process's
    /// memory store), [`Error::TooManyStores`], [`Error::InvalidUrl`].
    ///
    /// ```
    /// use borrowstore::{Error, Proxy, Store};
    /// # fn main() -> Result<(), Error> {
    /// let store = Store::memory("doc-proxy-from-bytes");
    /// let bytes = Proxy::to_bytes(&store.proxy(vec![1u64, 2])?)?;
    /// let p = Proxy::<Vec<u64>>::from_bytes(&bytes)?;
    /// assert_eq!(*p, vec![1, 2]);
    ///
    /// assert!(matches!(Proxy::<String>::from_bytes(&bytes), Err(Error::TypeMismatch { .. })));
    /// assert!(matches!(Proxy::<u8>::from_bytes(b"junk"), Err(Error::Malformed { .. })));
    /// # Ok(()) }
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let wire: Wire = postcard::from_bytes(bytes).map_err(|e| Error::malformed("proxy", e))?;
        wire.into_proxy()
    }

    pub(crate) fn into_parts(self) -> (Store, Key, Option<Arc<T>>) {
        (self.store, self.key, self.value.into_inner())
    }
}

impl<T: Storable> Deref for Proxy<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match Proxy::resolve(self) {
            Ok(v) => v,
            Err(e) => panic!(
                "borrowstore: cannot resolve proxy of key {} in store {:?}: {e}",
                self.key,
                self.store.name()
            ),
        }
    }
}

impl<T> Clone for Proxy<T> {
    fn clone(&self) -> Self {
        Proxy {
            store: self.store.clone(),
            key: self.key,
            ephemeral: self.ephemeral,
            value: self.value.clone(),
        }
    }
}

impl<T> fmt::Debug for Proxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("key", &self.key)
            .field("store", &self.store.name())
            .field("ephemeral", &self.ephemeral)
            .field("resolved", &self.value.get().is_some())
            .finish()
    }
}

/// The serialized form of a proxy: its store, key and kind, and the
/// fingerprint and name of its type (the name only to report a mismatch).
#[derive(Serialize, Deserialize)]
struct Wire {
    store: StoreConfig,
    key: Key,
    ephemeral: bool,
    fingerprint: u64,
    type_name: Cow<'static, str>,
}

impl Wire {
    fn into_proxy<T: Storable>(self) -> Result<Proxy<T>> {
        codec::check_type::<T>(self.fingerprint, &self.type_name, "a proxy of")?;
        let store = Store::from_config(&self.store)?;
        Ok(Proxy::new(store, self.key, self.ephemeral, None))
    }
}

impl<T: Storable> Serialize for Proxy<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        Wire {
            store: self.store.config().clone(),
            key: self.key,
            ephemeral: self.ephemeral,
            fingerprint: codec::fingerprint::<T>(),
            type_name: Cow::Borrowed(codec::recorded_type_name::<T>()),
        }
        .serialize(s)
    }
}

impl<'de, T: Storable> Deserialize<'de> for Proxy<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Wire::deserialize(d)?
            .into_proxy()
            .map_err(serde::de::Error::custom)
    }
}

impl Store {
    /// Stores `value` (kept undecoded in a memory store) under a new key with
    /// no owner, and returns a resolved proxy of it.
    ///
    /// While a liveness scope is open on this thread, the new object is
    /// managed by it.
    ///
    /// The object has no owner: it persists until it is evicted
    /// ([`Store::evict`]), or until the owners it gets later let it go
    /// ([`into_owned`](crate::into_owned), a scope that manages it, a
    /// lifetime that holds it).
    ///
    /// # Errors
    ///
    /// As [`Store::put`]: [`Error::Encode`], [`Error::TooLarge`] (file and
    /// Redis stores encode every value), [`Error::Connector`].
    ///
    /// ```
    /// use borrowstore::{Proxy, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-store-proxy");
    /// let p: Proxy<Vec<u64>> = store.proxy(vec![1, 2, 3])?;
    /// assert_eq!(p.iter().sum::<u64>(), 6);              // Deref: no copy, no decode
    /// let key = *Proxy::key(&p);
    /// drop(p);                                           // a proxy owns nothing
    /// assert!(store.exists(&key)?);
    /// # Ok(()) }
    /// ```
    pub fn proxy<T: Storable>(&self, value: T) -> Result<Proxy<T>> {
        let value = Arc::new(value);
        let key = Key::random();
        self.insert_managed(key, self.value_of(value.clone())?)?;
        Ok(Proxy::new(self.clone(), key, false, Some(value)))
    }

    /// [`Store::proxy`], without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the value stored under a key nobody
    /// was told (a plain object: it persists until evicted).
    pub async fn proxy_async<T: Storable>(&self, value: T) -> Result<Proxy<T>> {
        let value = Arc::new(value);
        let key = Key::random();
        self.insert_managed_async(key, self.value_of(value.clone())?)
            .await?;
        Ok(Proxy::new(self.clone(), key, false, Some(value)))
    }

    /// [`Store::ephemeral_proxy`], without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// As [`Store::proxy_async`].
    pub async fn ephemeral_proxy_async<T: Storable>(&self, value: T) -> Result<Proxy<T>> {
        let key = Key::random();
        self.insert_managed_async(key, self.value_of(Arc::new(value))?)
            .await?;
        Ok(Proxy::new(self.clone(), key, true, None))
    }

    /// A proxy of the object under `key`; nothing is checked until it
    /// resolves (then: [`Error::KeyNotFound`], [`Error::TypeMismatch`]).
    ///
    /// ```
    /// use borrowstore::{Proxy, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-proxy-from-key");
    /// let key = store.put(&"stored".to_owned())?;
    /// let p: Proxy<String> = store.proxy_from_key(key);
    /// assert_eq!(p.as_str(), "stored");
    /// # Ok(()) }
    /// ```
    pub fn proxy_from_key<T: Storable>(&self, key: Key) -> Proxy<T> {
        Proxy::new(self.clone(), key, false, None)
    }

    /// Stores `value` and returns a proxy whose first resolve evicts it:
    /// exactly one resolve, in any process, gets the value.
    ///
    /// While a liveness scope is open on this thread, the new object is
    /// managed by it too: the first resolve still evicts it, and if nothing
    /// resolves it, releasing the scope does.
    ///
    /// # Errors
    ///
    /// As [`Store::put`].
    ///
    /// ```
    /// use borrowstore::{Error, Proxy, Store};
    /// # fn main() -> Result<(), Error> {
    /// let store = Store::memory("doc-ephemeral-proxy");
    /// let once = store.ephemeral_proxy(vec![7u8])?;
    /// let bytes = Proxy::to_bytes(&once)?;               // sent to a worker …
    /// let there = Proxy::<Vec<u8>>::from_bytes(&bytes)?;
    /// assert_eq!(*there, vec![7]);                       // … whose resolve evicts it
    /// assert!(!store.exists(Proxy::key(&once))?);
    /// assert!(matches!(Proxy::resolve(&once), Err(Error::KeyNotFound { .. })));
    /// # Ok(()) }
    /// ```
    pub fn ephemeral_proxy<T: Storable>(&self, value: T) -> Result<Proxy<T>> {
        let key = Key::random();
        self.insert_managed(key, self.value_of(Arc::new(value))?)?;
        Ok(Proxy::new(self.clone(), key, true, None))
    }
}
