//! [`Store`]: a named connector with a cache, and the plain object API.

mod async_ops;
mod blocking;
mod builder;
mod cache;
mod config;
mod connect;
mod executor;
mod flush;
mod info;
pub(crate) mod manager;
mod objects;
mod registry;
mod resolve;
#[cfg(feature = "apalis")]
pub(crate) use resolve::Vouched;
mod snapshot;
mod target;

use std::sync::Arc;

pub use builder::StoreBuilder;
pub(crate) use config::Location;
pub use config::StoreConfig;
pub use info::ObjectInfo;
pub use snapshot::{Snapshot, Summary};
pub(crate) use target::Target;

use crate::connector::{Connector, MemoryConnector, Recheck, Waiters};
#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;
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

impl Store {
    /// The in-memory store named `name`: the registered one if a memory store
    /// of that name exists, else a new one, registered.
    ///
    /// Give it a name. This constructor cannot fail, so `Store::memory("")`
    /// still returns a working in-process store, but its URL `memory://` is
    /// refused by [`Store::open`] and [`Store::from_config`]
    /// ([`Error::InvalidUrl`]): proxies and tickets of that store cannot be
    /// decoded again, not even in this process.
    ///
    /// ```
    /// use borrowstore::Store;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let a = Store::memory("doc-memory");
    /// let b = Store::memory("doc-memory");              // the registered one
    /// assert!(a.same_store(&b));
    /// assert_eq!(a.url(), "memory://doc-memory");
    /// let key = a.put(&7u8)?;
    /// assert_eq!(b.get::<u8>(&key)?, Some(7));
    /// # Ok(()) }
    /// ```
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

    /// Opens a store by connector URL, and registers it.
    ///
    /// The store is named by its URL (memory stores: by their name). If a
    /// store of that name and URL is registered, that store is returned,
    /// and nothing new is opened (nor is a store that arriving bytes opened
    /// for that URL: it is registered now, and returned).
    ///
    /// Opening is this process's own choice, so it is never subject to the
    /// [`trust`](crate::trust) policy, and a `file://` directory is created
    /// if needed (with its `borrowstore.dir` marker). Once a store is open
    /// here, proxies and tickets of it that arrive from other processes
    /// reach it.
    ///
    /// # URLs
    ///
    /// **`memory://name`** — the in-process store `name`, the same as
    /// [`Store::memory`]`("name")`: shared by the threads and tasks of this
    /// process, values kept as `Arc<T>` (never encoded). The name must not
    /// be empty. No parameters.
    ///
    /// **`file:///absolute/dir?lease_ms=N`** — a directory shared by the
    /// processes of one host ([`FileConnector`](crate::connector::FileConnector)),
    /// created if missing. The path must be absolute (three slashes), with
    /// no `..` and no control characters. One parameter:
    ///
    /// - `lease_ms` — the lease, in milliseconds (a positive integer;
    ///   default 30 000): how long the claims (owners, borrows, holders,
    ///   tickets) of a process that died survive it before the store
    ///   reclaims them. A live process renews its claims every third of
    ///   the lease.
    ///
    /// **`redis://[user:pass@]host:port/db?ns=NAME&lease_ms=N&timeout_ms=N`**
    /// — a Redis server shared by processes on many machines
    /// (`connector::RedisConnector`; the default-on
    /// `redis` feature). The part before `?` is a redis-rs connection URL:
    /// user and password (optional), host, port (default 6379), database
    /// number (default 0). Parameters:
    ///
    /// - `ns` — the namespace: every key the store writes starts with
    ///   `NAME:`, and nothing outside it is read, changed or deleted
    ///   (default `borrowstore`; `[A-Za-z0-9._-]`, not empty). Stores with
    ///   different namespaces on one server are separate stores;
    /// - `lease_ms` — the lease, as for `file://` (default 30 000);
    /// - `timeout_ms` — how long one operation may take, connecting and
    ///   the reply included, before it fails with [`Error::Connector`]
    ///   (default 5 000);
    /// - any other parameter is left in the URL for redis-rs (for example
    ///   `protocol=resp3`), which checks it here.
    ///
    /// Opening does not contact the server: the connection is made on
    /// first use, and an unreachable server is an [`Error::Connector`]
    /// from that operation.
    ///
    /// **`rediss://…`** — the same over TLS (feature `redis-tls`, on by
    /// default: redis-rs over rustls, no OpenSSL). The server's certificate
    /// is checked against the system's authorities, or against those of
    /// `tls_ca=/path/ca.pem` (a PEM file, read when the URL is opened).
    ///
    /// **`redis+cluster://[user:pass@]host1:port1,host2:port2?ns=NAME&…`**
    /// — a Redis Cluster, reached through any of the nodes listed (the
    /// others are found from them), with the parameters of `redis://`;
    /// **`rediss+cluster://…`** is a cluster over TLS (with `tls_ca=`).
    /// Every object's keys share one hash tag, so each transition runs on
    /// one slot; the keys of a store are scanned on every primary, and the
    /// release announcements (`PUBLISH`) reach every node. A failover moves
    /// slots under the store: requests are retried on the new primary
    /// within `timeout_ms`, and since every transition is idempotent by
    /// claim id, a retried one is not applied twice.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidUrl`] — no `scheme://`, an unknown scheme, an empty
    ///   memory store name, a relative file path or one with `..`, an
    ///   unknown or invalid parameter, a URL redis-rs refuses, a `tls_ca`
    ///   file that cannot be read or holds no certificate, several hosts
    ///   in a `redis://` URL (a cluster is `redis+cluster://`), a
    ///   `rediss://` URL in a build without the `redis-tls` feature, or a
    ///   Redis URL in a build without the `redis` feature;
    /// - [`Error::Connector`] — a file store's directory cannot be created
    ///   or opened (the error names the path and the operation).
    ///
    /// # Examples
    ///
    /// Memory and file stores:
    ///
    /// ```
    /// use borrowstore::Store;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let mem = Store::open("memory://doc-open")?;
    /// assert!(mem.same_store(&Store::memory("doc-open")));
    ///
    /// let dir = std::env::temp_dir().join(format!("borrowstore-doc-open-{}", std::process::id()));
    /// let url = format!("file://{}?lease_ms=10000", dir.display());
    /// let files = Store::open(&url)?;                    // creates the directory
    /// assert_eq!(files.name(), url);                     // named by its URL
    /// let key = files.put(&vec![1u32, 2, 3])?;
    /// // Another process on this host opens the same URL and sees the object.
    /// assert_eq!(files.get::<Vec<u32>>(&key)?, Some(vec![1, 2, 3]));
    /// assert!(Store::open(&url)?.same_store(&files));    // the registered one
    /// # files.evict(&key)?; Store::unregister(&url); drop(files);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok(()) }
    /// ```
    ///
    /// A Redis server (this example needs one on 127.0.0.1:6379):
    ///
    /// ```no_run
    /// use borrowstore::{Store, borrow};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::open("redis://127.0.0.1:6379/0?ns=myapp&lease_ms=10000&timeout_ms=2000")?;
    /// let owner = store.owned_proxy(vec![1u64, 2, 3])?;
    /// assert_eq!(borrow(&owner)?.len(), 3);              // counted in Redis
    /// # Ok(()) }
    /// ```
    ///
    /// Mistakes, and an unreachable server:
    ///
    /// ```
    /// use borrowstore::{Error, Store};
    /// for bad in [
    ///     "memory://",                                   // no name
    ///     "file://relative/dir",                         // not absolute
    ///     "file:///tmp/x?lease_ms=0",                    // not positive
    ///     "file:///tmp/x?colour=red",                    // unknown parameter
    ///     "redis://127.0.0.1:6379/0?ns=a:b",             // not [A-Za-z0-9._-]
    ///     "redis://127.0.0.1:6379,127.0.0.1:6380/0",     // a cluster is redis+cluster://
    ///     "rediss://127.0.0.1:6380/0?tls_ca=/no/such.pem", // an unreadable CA file
    ///     "ftp://example.com",                           // unknown scheme
    /// ] {
    ///     assert!(matches!(Store::open(bad), Err(Error::InvalidUrl { .. })), "{bad}");
    /// }
    /// # #[cfg(feature = "redis")] {
    /// // Nothing listens on port 1: opening succeeds, the first use fails.
    /// let store = Store::open("redis://127.0.0.1:1/0?timeout_ms=500").unwrap();
    /// assert!(matches!(store.put(&1u8), Err(Error::Connector { .. })));
    /// # }
    /// ```
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

    /// A builder for a store named `name`: its URL (default
    /// `memory://<name>`), a connector of your own, a size limit, and
    /// whether to register it.
    ///
    /// ```
    /// use borrowstore::Store;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::builder("doc-builder").max_value_size(1 << 20).build()?;
    /// assert_eq!((store.name(), store.url()), ("doc-builder", "memory://doc-builder"));
    /// # Ok(()) }
    /// ```
    pub fn builder(name: impl Into<String>) -> StoreBuilder {
        StoreBuilder::new(name.into())
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
    /// # Errors
    ///
    /// [`Error::Untrusted`], [`Error::TooManyStores`], [`Error::LocalStore`],
    /// [`Error::InvalidUrl`] as above; [`Error::Connector`] if an allowed
    /// store cannot be opened (a `file://` directory that is missing or not
    /// a borrowstore directory).
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

    /// The registered store named `name`, if there is one.
    ///
    /// ```
    /// use borrowstore::Store;
    /// let store = Store::memory("doc-registered");
    /// assert!(Store::registered("doc-registered").unwrap().same_store(&store));
    /// assert!(Store::registered("doc-registered-never").is_none());
    /// ```
    pub fn registered(name: &str) -> Option<Store> {
        registry::get(name)
    }

    /// Registers this store under its name, replacing any other. (A store
    /// that arriving bytes opened is then the process's own: it no longer
    /// counts against [`trust::max_stores`](crate::trust::max_stores).)
    ///
    /// ```
    /// use borrowstore::Store;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::builder("doc-register").register(false).build()?;
    /// assert!(Store::registered("doc-register").is_none());
    /// store.register();
    /// assert!(Store::registered("doc-register").unwrap().same_store(&store));
    /// # Ok(()) }
    /// ```
    pub fn register(&self) {
        drop(self.inner.slot.lock().map(|mut s| s.take()));
        registry::insert(self.clone());
    }

    /// Removes the store named `name` from the registry, and returns it.
    /// Handles that hold it keep working. Proxies and tickets of it that
    /// are decoded afterwards no longer find it: they get
    /// [`Error::Untrusted`], unless the [`trust`](crate::trust) policy
    /// allows its URL (see [`Store::from_config`]).
    ///
    /// ```
    /// use borrowstore::Store;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-unregister");
    /// let key = store.put(&1u8)?;
    /// assert!(Store::unregister("doc-unregister").unwrap().same_store(&store));
    /// assert!(Store::registered("doc-unregister").is_none());
    /// assert_eq!(store.get::<u8>(&key)?, Some(1));       // still works
    /// # Ok(()) }
    /// ```
    pub fn unregister(name: &str) -> Option<Store> {
        registry::remove(name)
    }

    /// The store's name: its key in the registry, and what errors name.
    ///
    /// ```
    /// use borrowstore::Store;
    /// assert_eq!(Store::memory("doc-name").name(), "doc-name");
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// The store's connector URL, as [`Store::open`] accepts it.
    ///
    /// ```
    /// use borrowstore::Store;
    /// assert_eq!(Store::memory("doc-url").url(), "memory://doc-url");
    /// ```
    pub fn url(&self) -> &str {
        &self.inner.config.url
    }

    /// The store's serializable description: its name and URL, what
    /// proxies and tickets carry so that another process can reopen the
    /// store ([`Store::from_config`]).
    ///
    /// ```
    /// use borrowstore::Store;
    /// let config = Store::memory("doc-config").config().clone();
    /// assert_eq!((config.name.as_str(), config.url.as_str()), ("doc-config", "memory://doc-config"));
    /// ```
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

    /// Whether two handles are the same store (clones of one `Store`).
    ///
    /// ```
    /// use borrowstore::Store;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-same-store");
    /// assert!(store.same_store(&store.clone()));
    /// let private = Store::builder("doc-same-store").register(false).build()?;
    /// assert!(!store.same_store(&private));              // same name, another store
    /// # Ok(()) }
    /// ```
    pub fn same_store(&self, other: &Store) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Number of decoded values in this process's cache. A memory store
    /// keeps values as they are and caches nothing; file and Redis stores
    /// cache each value they decode, per version, until its object is
    /// evicted or changes.
    ///
    /// ```
    /// use borrowstore::Store;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-cached-values");
    /// let p = store.proxy(vec![1u8; 16])?;
    /// assert_eq!(p.len(), 16);
    /// assert_eq!(store.cached_values(), 0);              // nothing to decode in memory
    /// # Ok(()) }
    /// ```
    pub fn cached_values(&self) -> usize {
        self.inner.cache.len()
    }
}
