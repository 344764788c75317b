//! [`Store`]: a named connector with a cache, and the plain object API.

mod async_ops;
mod blocking;
mod cache;
mod config;
mod executor;
mod flush;
mod info;
pub(crate) mod manager;
mod registry;
mod resolve;
mod target;

use std::sync::Arc;

pub(crate) use config::Location;
pub use config::StoreConfig;
pub use info::ObjectInfo;
pub(crate) use target::Target;

use crate::codec::Storable;
use crate::connector::{Connector, MemoryConnector, Recheck, Waiters};
use crate::error::{Error, Result};
use crate::key::Key;
use blocking::Blocking;
use cache::Cache;

/// A store of objects: a name, a [`Connector`], and this process's cache of
/// decoded values. Cheap to clone; clones share everything.
///
/// Every operation that can touch the disk or the network has an `_async`
/// form ([`put_async`](Store::put_async), [`get_async`](Store::get_async),
/// [`owned_proxy_async`](Store::owned_proxy_async), …) that never blocks the
/// thread polling it; on a memory store they complete in their first poll.
/// The blocking forms are for blocking contexts (threads, `spawn_blocking`):
/// one called on a tokio worker thread of a file or Redis store logs a
/// `tracing` warning, once per store.
///
/// ```
/// use borrowstore::Store;
/// # fn main() -> Result<(), borrowstore::Error> {
/// let store = Store::memory("doc-store");
/// let key = store.put(&vec![1u64, 2, 3])?;
/// assert_eq!(store.get::<Vec<u64>>(&key)?, Some(vec![1, 2, 3]));
/// assert!(store.exists(&key)?);
/// store.evict(&key)?;
/// assert!(!store.exists(&key)?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    config: StoreConfig,
    connector: Arc<dyn Connector>,
    cache: Cache,
    max_value_size: Option<usize>,
    /// Where this process's waiting borrows of the store's objects queue:
    /// the connector's, or one of the store's own that re-checks with a
    /// backoff (a connector that announces nothing).
    waiters: Arc<Waiters>,
    /// Blocking forms called on an executor thread, and failures of work
    /// done for `Drop` that the next flush reports.
    blocking: Blocking,
}

/// How the waiters of a store whose connector announces nothing re-check.
const RECHECK: Recheck = Recheck::Backoff {
    first: std::time::Duration::from_millis(1),
    max: std::time::Duration::from_millis(100),
};

impl Inner {
    fn new(
        config: StoreConfig,
        connector: Arc<dyn Connector>,
        max_value_size: Option<usize>,
    ) -> Inner {
        let waiters = connector
            .waiters()
            .cloned()
            .unwrap_or_else(|| Waiters::new(RECHECK));
        let blocking = Blocking::new(connector.does_io());
        Inner {
            config,
            connector,
            cache: Cache::default(),
            max_value_size,
            waiters,
            blocking,
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("name", &self.name())
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Store`] with non-default settings.
///
/// ```
/// use borrowstore::Store;
/// let store = Store::builder("limited").max_value_size(1 << 20).build().unwrap();
/// assert_eq!(store.url(), "memory://limited");
/// ```
#[must_use]
pub struct StoreBuilder {
    name: String,
    url: Option<String>,
    connector: Option<Arc<dyn Connector>>,
    max_value_size: Option<usize>,
    register: bool,
}

impl StoreBuilder {
    /// The connector URL (default `memory://<name>`).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// A connector of your own; `url` is what other processes will open to
    /// reach the same objects.
    pub fn connector(mut self, connector: Arc<dyn Connector>, url: impl Into<String>) -> Self {
        self.connector = Some(connector);
        self.url = Some(url.into());
        self
    }

    /// Refuse encoded values larger than `bytes` with [`Error::TooLarge`].
    /// The limit applies to every value that is encoded: everything stored in
    /// file and Redis stores, and `put` in memory stores; values that a
    /// memory store keeps undecoded are never encoded and are not measured.
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = Some(bytes);
        self
    }

    /// Whether to register the store by name (default: yes). Proxies and
    /// tickets that arrive in this process find their store in the registry.
    pub fn register(mut self, yes: bool) -> Self {
        self.register = yes;
        self
    }

    /// Builds the store.
    pub fn build(self) -> Result<Store> {
        let url = self
            .url
            .unwrap_or_else(|| format!("memory://{}", self.name));
        let connector = match self.connector {
            Some(c) => c,
            None => Location::parse(&url)?.connect(&self.name)?,
        };
        let store = Store {
            inner: Arc::new(Inner::new(
                StoreConfig {
                    name: self.name,
                    url,
                },
                connector,
                self.max_value_size,
            )),
        };
        if self.register {
            registry::insert(store.clone());
        }
        Ok(store)
    }
}

impl Store {
    /// The in-memory store named `name`: the registered one if a memory store
    /// of that name exists, else a new one, registered.
    ///
    /// Give it a name. This constructor cannot fail, so `Store::memory("")`
    /// still returns a working in-process store, but its URL `memory://` is
    /// refused by [`Store::open`] and [`Store::from_config`]
    /// ([`Error::InvalidUrl`]): proxies and tickets of that store cannot be
    /// decoded again, not even in this process.
    pub fn memory(name: impl Into<String>) -> Store {
        let name = name.into();
        let url = format!("memory://{name}");
        registry::get_or_insert(
            || Store {
                inner: Arc::new(Inner::new(
                    StoreConfig {
                        name: name.clone(),
                        url: url.clone(),
                    },
                    Arc::new(MemoryConnector::new(name.clone())),
                    None,
                )),
            },
            &name,
            &url,
        )
    }

    /// Opens a store by connector URL, and registers it:
    ///
    /// - `memory://name` — the in-process store `name` (see [`Store::memory`]);
    ///   the name must not be empty;
    /// - `file:///absolute/dir` — a directory shared by the processes of one
    ///   host; `?lease_ms=N` sets how long a dead process's claims survive it
    ///   (default 30 s).
    ///
    /// The store is named by its URL (memory stores: by their name). Returns
    /// the registered store of that name and URL if there is one.
    pub fn open(url: &str) -> Result<Store> {
        match Location::parse(url)? {
            Location::Memory { name } => Ok(Store::memory(name)),
            location => Store::from_parts(url.to_owned(), url.to_owned(), location),
        }
    }

    fn from_parts(name: String, url: String, location: Location) -> Result<Store> {
        if let Some(s) = registry::get(&name).filter(|s| s.url() == url) {
            return Ok(s);
        }
        let connector = location.connect(&name)?;
        Ok(Store::registered_or(name, url, connector))
    }

    /// The registered store of this name and URL, or a new one over
    /// `connector` (registered if the name is free).
    fn registered_or(name: String, url: String, connector: Arc<dyn Connector>) -> Store {
        let fresh = Store {
            inner: Arc::new(Inner::new(
                StoreConfig {
                    name: name.clone(),
                    url: url.clone(),
                },
                connector,
                None,
            )),
        };
        registry::get_or_insert_if_free(|| fresh, &name, &url)
    }

    /// A builder for a store named `name`.
    pub fn builder(name: impl Into<String>) -> StoreBuilder {
        StoreBuilder {
            name: name.into(),
            url: None,
            connector: None,
            max_value_size: None,
            register: true,
        }
    }

    /// The store described by `config`: the registered store of that name if
    /// its URL matches, else the store opened from the URL — registered under
    /// the name if the name is free. A config naming a registered store with
    /// another URL (bytes from elsewhere) never displaces it: it gets a store
    /// of its own, unregistered.
    pub fn from_config(config: &StoreConfig) -> Result<Store> {
        let location = Location::parse(&config.url)?;
        Store::from_parts(config.name.clone(), config.url.clone(), location)
    }

    /// The registered store named `name`.
    pub fn registered(name: &str) -> Option<Store> {
        registry::get(name)
    }

    /// Registers this store under its name, replacing any other.
    pub fn register(&self) {
        registry::insert(self.clone());
    }

    /// Removes the store named `name` from the registry. Handles that hold it
    /// keep working.
    pub fn unregister(name: &str) -> Option<Store> {
        registry::remove(name)
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// The store's connector URL.
    pub fn url(&self) -> &str {
        &self.inner.config.url
    }

    /// The store's serializable description.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// The connector. Crate-private: users see what is stored through
    /// [`inspect`](Store::inspect) and [`keys`](Store::keys), and claims reach
    /// the connector only through the handles that took them.
    pub(crate) fn connector(&self) -> &Arc<dyn Connector> {
        &self.inner.connector
    }

    /// What the store holds for the object under `key` — its version, its
    /// owners and its borrows, read store-side in one step — or `None` if
    /// there is no object under `key` (never stored, or evicted).
    ///
    /// Releases this process queued may not have been applied yet on
    /// connectors that queue them; [`flush`](Store::flush) first to see them.
    ///
    /// ```
    /// use borrowstore::{OwnedProxy, Store, borrow};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-inspect");
    /// let owner = store.owned_proxy(vec![1u64, 2])?;
    /// let key = *OwnedProxy::key(&owner);
    /// let reader = borrow(&owner)?;
    ///
    /// let info = store.inspect(&key)?.expect("stored");
    /// assert_eq!((info.owners, info.readers, info.writer), (1, 1, false));
    /// assert_eq!(info.version, 1);
    /// println!("{info}");
    ///
    /// drop(owner); // eviction waits for the reader
    /// assert_eq!(store.inspect(&key)?.expect("still borrowed").owners, 0);
    /// drop(reader);
    /// assert!(store.inspect(&key)?.is_none());
    /// # Ok(()) }
    /// ```
    pub fn inspect(&self, key: &Key) -> Result<Option<ObjectInfo>> {
        Ok(self
            .blocking()
            .inspect(key)?
            .and_then(|i| ObjectInfo::from_inspect(*key, i)))
    }

    /// The keys of every object in the store, in no particular order. On a
    /// shared store that includes other processes' objects.
    ///
    /// ```
    /// use borrowstore::Store;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-keys");
    /// let a = store.put(&1u8)?;
    /// let b = store.put(&2u8)?;
    /// let mut keys = store.keys()?;
    /// keys.sort();
    /// let mut expected = vec![a, b];
    /// expected.sort();
    /// assert_eq!(keys, expected);
    /// store.evict_batch(&[a, b])?;
    /// assert!(store.keys()?.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn keys(&self) -> Result<Vec<Key>> {
        self.blocking().keys()
    }

    /// Whether two handles are the same store.
    pub fn same_store(&self, other: &Store) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Number of decoded values in this process's cache.
    pub fn cached_values(&self) -> usize {
        self.inner.cache.len()
    }

    /// Stores a copy of `value` (encoded) under a new key, with no owner: it
    /// persists until evicted.
    ///
    /// While a liveness scope is open on this thread, the new object is
    /// managed by it.
    pub fn put<T: Storable>(&self, value: &T) -> Result<Key> {
        let key = Key::random();
        self.insert_managed(key, self.encode(value)?)?;
        Ok(key)
    }

    /// Stores copies of several values; one key each, in order.
    ///
    /// While a liveness scope is open on this thread, each new object is
    /// managed by it (and they are stored one by one).
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

    /// A copy of the value under `key`, or `None` if there is none.
    pub fn get<T: Storable>(&self, key: &Key) -> Result<Option<T>> {
        match self.blocking().get(key)? {
            None => Ok(None),
            Some(stored) => self.to_owned_value(stored).map(Some),
        }
    }

    /// The value under `key`, shared with every other reader in this process
    /// (no copy), or `None`.
    pub fn get_shared<T: Storable>(&self, key: &Key) -> Result<Option<Arc<T>>> {
        match self.resolve(Target::keyed(key)) {
            Ok(v) => Ok(Some(v)),
            Err(Error::KeyNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Copies of several values.
    pub fn get_batch<T: Storable>(&self, keys: &[Key]) -> Result<Vec<Option<T>>> {
        self.blocking()
            .get_batch(keys)?
            .into_iter()
            .map(|s| s.map(|s| self.to_owned_value(s)).transpose())
            .collect()
    }

    /// Whether an object is stored under `key`.
    pub fn exists(&self, key: &Key) -> Result<bool> {
        self.blocking().exists(key)
    }

    /// Whether objects are stored under each of `keys`.
    pub fn exists_batch(&self, keys: &[Key]) -> Result<Vec<bool>> {
        self.blocking().exists_batch(keys)
    }

    /// Evicts the object under `key` now, whoever owns it. Returns whether
    /// there was one. Refused with [`Error::AlreadyBorrowed`] while the object
    /// is borrowed: references are always valid.
    pub fn evict(&self, key: &Key) -> Result<bool> {
        let r = self.blocking().evict(key);
        self.inner.cache.remove(key);
        r
    }

    /// Evicts several objects; stops at the first refusal.
    pub fn evict_batch(&self, keys: &[Key]) -> Result<Vec<bool>> {
        keys.iter().map(|k| self.evict(k)).collect()
    }

    /// Waits until every release this process queued has been applied
    /// store-side. Immediate for the memory store.
    ///
    /// Also reports the failure of a publish that a dropped, changed
    /// [`RefMutProxy`](crate::RefMutProxy) made (queued, or applied at
    /// once) since the last flush: that publish is not retried.
    ///
    /// Inside async code use [`flush_async`](Store::flush_async): this
    /// blocks the thread until the store answers.
    pub fn flush(&self) -> Result<()> {
        if self.connector().queues_releases() {
            self.blocking().flush()?;
        }
        self.take_deferred()
    }

    /// Waits until every queued release has been applied, without blocking
    /// the executor; reports what [`flush`](Store::flush) reports.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future stops the wait, not the releases.
    pub async fn flush_async(&self) -> Result<()> {
        if self.connector().queues_releases() {
            self.connector().flush_async().await?;
        }
        self.take_deferred()
    }
}
