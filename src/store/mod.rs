//! [`Store`]: a named connector with a cache, and the plain object API.

mod async_ops;
mod blocking;
mod cache;
mod config;
mod connect;
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
    /// Held while the store is open because bytes named it (not registered).
    slot: std::sync::Mutex<Option<crate::trust::Slot>>,
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
/// A built store is registered under its name (unless
/// [`register(false)`](StoreBuilder::register)), and never silently takes
/// a name from another store: if a store with the same URL and the same
/// settings is registered under the name, [`build`](StoreBuilder::build)
/// returns that store; if the registered store has another URL or other
/// settings, `build` fails with [`Error::NameTaken`] and leaves it
/// registered, unless the builder asks to [`replace`](StoreBuilder::replace)
/// it.
///
/// ```
/// use borrowstore::{Error, Store};
/// let store = Store::builder("limited").max_value_size(1 << 20).build().unwrap();
/// assert_eq!(store.url(), "memory://limited");
///
/// // The same again is the same store.
/// let again = Store::builder("limited").max_value_size(1 << 20).build().unwrap();
/// assert!(again.same_store(&store));
/// // Other settings under the name are refused, unless asked for.
/// let other = Store::builder("limited").max_value_size(64).build();
/// assert!(matches!(other, Err(Error::NameTaken { .. })));
/// let replaced = Store::builder("limited").max_value_size(64).replace(true).build().unwrap();
/// assert!(Store::registered("limited").unwrap().same_store(&replaced));
/// ```
#[must_use]
pub struct StoreBuilder {
    name: String,
    url: Option<String>,
    connector: Option<Arc<dyn Connector>>,
    max_value_size: Option<usize>,
    register: bool,
    replace: bool,
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

    /// Whether to replace a store registered under the name with other
    /// settings (default: no, [`Error::NameTaken`]). Handles of the
    /// replaced store keep working; the name then finds the new one.
    pub fn replace(mut self, yes: bool) -> Self {
        self.replace = yes;
        self
    }

    /// Builds the store: opens its connector (for `file://`, creating the
    /// directory if needed) and registers it, or returns the store
    /// registered under the name with the same URL and settings. Fails with
    /// [`Error::NameTaken`] if the name belongs to a store with another URL
    /// or other settings (a size limit, a connector of its own), unless
    /// [`replace`](StoreBuilder::replace) is set.
    pub fn build(self) -> Result<Store> {
        let url = self
            .url
            .clone()
            .unwrap_or_else(|| format!("memory://{}", self.name));
        if !self.register || self.replace {
            let store = self.make(url)?;
            if self.register {
                registry::insert(store.clone());
            }
            return Ok(store);
        }
        let same = |s: &Store| {
            s.url() == url
                && s.inner.max_value_size == self.max_value_size
                && self
                    .connector
                    .as_ref()
                    .is_none_or(|c| Arc::ptr_eq(c, s.connector()))
        };
        registry::insert_unless_taken(
            &self.name,
            || self.make(url.clone()),
            |s| {
                if same(s) {
                    Ok(s.clone())
                } else {
                    Err(Error::NameTaken {
                        name: self.name.clone(),
                        url: s.url().to_owned(),
                    })
                }
            },
        )
    }

    fn make(&self, url: String) -> Result<Store> {
        let connector = match &self.connector {
            Some(c) => c.clone(),
            None => Location::parse(&url)?.connect(&self.name)?,
        };
        let config = StoreConfig {
            name: self.name.clone(),
            url,
        };
        Ok(Store::from_connector(
            config,
            connector,
            self.max_value_size,
            None,
        ))
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
            || {
                let config = StoreConfig {
                    name: name.clone(),
                    url: url.clone(),
                };
                let connector = Arc::new(MemoryConnector::new(name.clone()));
                Store::from_connector(config, connector, None, None)
            },
            &name,
            &url,
        )
    }

    fn from_connector(
        config: StoreConfig,
        connector: Arc<dyn Connector>,
        max_value_size: Option<usize>,
        slot: Option<crate::trust::Slot>,
    ) -> Store {
        let waiters = connector
            .waiters()
            .cloned()
            .unwrap_or_else(|| Waiters::new(RECHECK));
        let blocking = Blocking::new(connector.does_io());
        Store {
            inner: Arc::new(Inner {
                config,
                connector,
                cache: Cache::default(),
                max_value_size,
                slot: std::sync::Mutex::new(slot),
                waiters,
                blocking,
            }),
        }
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
    /// the registered store of that name and URL if there is one (or the
    /// store that arriving bytes opened for that URL, now registered).
    ///
    /// Opening is this process's own choice, so it is never subject to the
    /// [`trust`](crate::trust) policy, and a `file://` directory is created
    /// if needed (with its `borrowstore.dir` marker). Once a store is open
    /// here, proxies and tickets of it that arrive from other processes
    /// reach it.
    pub fn open(url: &str) -> Result<Store> {
        match Location::parse(url)? {
            Location::Memory { name } => Ok(Store::memory(name)),
            location => Store::from_parts(url.to_owned(), url.to_owned(), location),
        }
    }

    fn from_parts(name: String, url: String, location: Location) -> Result<Store> {
        if let Some(s) = Store::open_already(&name, &url) {
            return Ok(s);
        }
        let connector = location.connect(&name)?;
        Ok(Store::registered_or(name, url, connector))
    }

    /// The store of this name and URL that this process has open already:
    /// the registered one, or the one arriving bytes opened (now
    /// registered, and no longer counted against the bound).
    fn open_already(name: &str, url: &str) -> Option<Store> {
        if let Some(s) = registry::get(name).filter(|s| s.url() == url) {
            return Some(s);
        }
        let connected = registry::get(name)
            .is_none()
            .then(|| registry::take_connected(name, url))
            .flatten()?;
        // Now the process's own: no longer counted against the bound.
        drop(connected.inner.slot.lock().map(|mut s| s.take()));
        Some(registry::get_or_insert_if_free(|| connected, name, url))
    }

    /// The registered store of this name and URL, or a new one over
    /// `connector` (registered if the name is free).
    fn registered_or(name: String, url: String, connector: Arc<dyn Connector>) -> Store {
        let config = StoreConfig {
            name: name.clone(),
            url: url.clone(),
        };
        let fresh = Store::from_connector(config, connector, None, None);
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
            replace: false,
        }
    }

    /// The store described by `config`, as proxy and ticket bytes that
    /// arrive in this process reach it; this process's
    /// [`trust`](crate::trust) policy decides:
    ///
    /// 1. the store registered under `config.name` with `config.url` —
    ///    always;
    /// 2. else, if [`trust::allow`](crate::trust::allow) admits the URL, the
    ///    store opened for it: shared by every handle that names the same
    ///    name and URL, closed when the last of them is dropped, never
    ///    registered (so it never displaces a registered store). At most
    ///    [`trust::max_stores`](crate::trust::max_stores) are open at once
    ///    ([`Error::TooManyStores`]); a `file://` directory must already be a
    ///    borrowstore directory (nothing is created);
    /// 3. else [`Error::Untrusted`], with nothing opened or created.
    ///
    /// A `memory://` config of another process is [`Error::LocalStore`], a
    /// malformed URL [`Error::InvalidUrl`]. To open a store yourself, use
    /// [`Store::open`] or [`Store::builder`].
    ///
    /// ```
    /// use borrowstore::{Error, Store, StoreConfig};
    /// # fn main() -> Result<(), Error> {
    /// let store = Store::memory("doc-from-config");
    /// assert!(Store::from_config(store.config())?.same_store(&store));
    ///
    /// let elsewhere = StoreConfig {
    ///     name: "jobs".into(),
    ///     url: "file:///srv/not-allowed/jobs".into(),
    /// };
    /// assert!(matches!(Store::from_config(&elsewhere), Err(Error::Untrusted { .. })));
    /// # Ok(()) }
    /// ```
    pub fn from_config(config: &StoreConfig) -> Result<Store> {
        connect::from_config(config)
    }

    /// The registered store named `name`.
    pub fn registered(name: &str) -> Option<Store> {
        registry::get(name)
    }

    /// Registers this store under its name, replacing any other. (A store
    /// that arriving bytes opened is then the process's own: it no longer
    /// counts against [`trust::max_stores`](crate::trust::max_stores).)
    pub fn register(&self) {
        drop(self.inner.slot.lock().map(|mut s| s.take()));
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
