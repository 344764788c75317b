//! [`StoreBuilder`]: a store with non-default settings.

use std::sync::Arc;

use super::Store;
use super::config::{Location, StoreConfig};
use super::registry;
use crate::connector::Connector;
use crate::error::{Error, Result};

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
    /// A builder for a store named `name`, with the defaults.
    pub(super) fn new(name: String) -> StoreBuilder {
        StoreBuilder {
            name,
            url: None,
            connector: None,
            max_value_size: None,
            register: true,
            replace: false,
        }
    }

    /// The connector URL (default `memory://<name>`), in any form
    /// [`Store::open`] accepts.
    ///
    /// ```
    /// use borrowstore::Store;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let dir = std::env::temp_dir().join(format!("borrowstore-doc-builder-url-{}", std::process::id()));
    /// let url = format!("file://{}?lease_ms=10000", dir.display());
    /// let store = Store::builder("doc-builder-url").url(url.clone()).build()?;
    /// assert_eq!((store.name(), store.url()), ("doc-builder-url", url.as_str()));
    /// let key = store.put(&1u8)?;
    /// assert!(dir.join("objects").is_dir());            // a file store
    /// store.evict(&key)?;
    /// # Store::unregister("doc-builder-url"); drop(store);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok(()) }
    /// ```
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// A connector of your own; `url` is what other processes will open to
    /// reach the same objects (it is recorded in the store's
    /// [`config`](Store::config), and not opened here).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use borrowstore::Store;
    /// use borrowstore::connector::MemoryConnector;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let connector = Arc::new(MemoryConnector::new("doc-builder-connector"));
    /// let store = Store::builder("doc-builder-connector")
    ///     .connector(connector.clone(), "memory://doc-builder-connector")
    ///     .build()?;
    /// store.put(&1u8)?;
    /// assert_eq!(connector.len(), 1);                    // the objects are in your connector
    /// # Ok(()) }
    /// ```
    pub fn connector(mut self, connector: Arc<dyn Connector>, url: impl Into<String>) -> Self {
        self.connector = Some(connector);
        self.url = Some(url.into());
        self
    }

    /// Refuse encoded values larger than `bytes` with [`Error::TooLarge`].
    /// The limit applies to every value that is encoded: everything stored in
    /// file and Redis stores, and `put` in memory stores; values that a
    /// memory store keeps undecoded are never encoded and are not measured.
    ///
    /// ```
    /// use borrowstore::{Error, Store};
    /// # fn main() -> Result<(), Error> {
    /// let store = Store::builder("doc-builder-limit").max_value_size(64).build()?;
    /// assert!(store.put(&vec![0u8; 16]).is_ok());
    /// let refused = store.put(&vec![0u8; 1024]);
    /// assert!(matches!(refused, Err(Error::TooLarge { limit: 64, .. })));
    /// assert!(store.keys()?.len() == 1);                 // nothing was stored
    /// # Ok(()) }
    /// ```
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = Some(bytes);
        self
    }

    /// Whether to register the store by name (default: yes). Proxies and
    /// tickets that arrive in this process find their store in the registry.
    ///
    /// ```
    /// use borrowstore::Store;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let private = Store::builder("doc-builder-private").register(false).build()?;
    /// assert!(Store::registered("doc-builder-private").is_none());
    /// assert_eq!(private.name(), "doc-builder-private");
    /// # Ok(()) }
    /// ```
    pub fn register(mut self, yes: bool) -> Self {
        self.register = yes;
        self
    }

    /// Whether to replace a store registered under the name with other
    /// settings (default: no, [`Error::NameTaken`]). Handles of the
    /// replaced store keep working; the name then finds the new one.
    ///
    /// ```
    /// use borrowstore::{Error, Store};
    /// # fn main() -> Result<(), Error> {
    /// let old = Store::builder("doc-builder-replace").max_value_size(64).build()?;
    /// let taken = Store::builder("doc-builder-replace").build();
    /// assert!(matches!(taken, Err(Error::NameTaken { .. })));
    /// let new = Store::builder("doc-builder-replace").replace(true).build()?;
    /// assert!(Store::registered("doc-builder-replace").unwrap().same_store(&new));
    /// assert!(old.put(&1u8).is_ok());                    // the old handle still works
    /// # Ok(()) }
    /// ```
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
    ///
    /// # Errors
    ///
    /// [`Error::NameTaken`] as above (the registered store stays); what
    /// [`Store::open`] returns for the URL: [`Error::InvalidUrl`] for a
    /// malformed URL or an unknown scheme, [`Error::Connector`] when a file
    /// store's directory cannot be created.
    ///
    /// ```
    /// use borrowstore::{Error, Store};
    /// let store = Store::builder("doc-builder-build").build().unwrap();
    /// assert_eq!(store.url(), "memory://doc-builder-build");
    /// assert!(store.same_store(&Store::registered("doc-builder-build").unwrap()));
    ///
    /// let bad = Store::builder("doc-builder-bad").url("ftp://nowhere").build();
    /// assert!(matches!(bad, Err(Error::InvalidUrl { .. })));
    /// ```
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
