//! [`ContextLifetime`]: ends when closed or dropped.

use std::fmt;

use crate::error::Result;
use crate::key::Key;
use crate::lifetime::{Core, sealed};
use crate::store::Store;

/// A lifetime that ends when it is closed, or when it is dropped — the
/// Rust form of ProxyStore's `with ContextLifetime(store) as lt:`.
///
/// Its objects are evicted when it ends, unless something else owns them
/// then (an [`OwnedProxy`](crate::OwnedProxy), a scope, another lifetime):
/// ownership is counted store-side, so the last owner of any kind decides.
///
/// ```
/// use borrowstore::{ContextLifetime, Lifetime, Proxy, Store, Error};
/// # fn main() -> Result<(), Error> {
/// let store = Store::memory("doc-context-lifetime");
/// let lt = ContextLifetime::new(&store);
/// let k = store.put_in(&lt, &"x".to_owned())?;        // held by `lt`
/// let kept = store.owned_proxy(7u64)?;
/// lt.add_proxy(&kept)?;                               // shared with its owner
/// let plain = store.put(&1u8)?;
/// lt.add_key(plain)?;                                 // adopted by `lt`
///
/// lt.close()?;
/// assert!(!store.exists(&k)?);
/// assert!(!store.exists(&plain)?);
/// assert_eq!(*kept, 7);                               // its owner still holds it
/// lt.close()?;                                        // idempotent
/// assert!(matches!(lt.add_key(store.put(&2u8)?), Err(Error::LifetimeEnded)));
/// # Ok(()) }
/// ```
pub struct ContextLifetime {
    store: Store,
    core: Core,
}

impl ContextLifetime {
    /// A new, open lifetime whose default store (for
    /// [`add_key`](ContextLifetime::add_key)) is `store`.
    ///
    /// ```
    /// # use borrowstore::{ContextLifetime, Lifetime, Store};
    /// let lt = ContextLifetime::new(&Store::memory("doc-context-new"));
    /// assert!(!lt.done() && lt.is_empty());
    /// ```
    #[track_caller]
    pub fn new(store: &Store) -> ContextLifetime {
        ContextLifetime {
            store: store.clone(),
            core: Core::new(),
        }
    }

    /// The lifetime's default store.
    ///
    /// ```
    /// # use borrowstore::{ContextLifetime, Store};
    /// let store = Store::memory("doc-context-store");
    /// assert!(ContextLifetime::new(&store).store().same_store(&store));
    /// ```
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Adds the object under `key` in the lifetime's store: the lifetime
    /// becomes one of its owners.
    ///
    /// [`Error::LifetimeEnded`](crate::Error::LifetimeEnded) once the
    /// lifetime has ended (nothing is added);
    /// [`Error::KeyNotFound`](crate::Error::KeyNotFound) if there is no
    /// such object.
    ///
    /// ```
    /// # use borrowstore::{ContextLifetime, Lifetime, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-context-add-key");
    /// let lt = ContextLifetime::new(&store);
    /// let key = store.put(&3u8)?;
    /// lt.add_key(key)?;
    /// drop(lt);
    /// assert!(!store.exists(&key)?);
    /// # Ok(()) }
    /// ```
    pub fn add_key(&self, key: Key) -> Result<()> {
        self.core.add(&self.store, key)
    }

    /// Adds several keys of the lifetime's store; stops at the first error.
    ///
    /// ```
    /// # use borrowstore::{ContextLifetime, Lifetime, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-context-add-keys");
    /// let lt = ContextLifetime::new(&store);
    /// lt.add_keys(store.put_batch(&[1u8, 2, 3])?)?;
    /// assert_eq!(lt.len(), 3);
    /// # Ok(()) }
    /// ```
    pub fn add_keys(&self, keys: impl IntoIterator<Item = Key>) -> Result<()> {
        keys.into_iter().try_for_each(|k| self.add_key(k))
    }
}

impl sealed::Sealed for ContextLifetime {
    fn core(&self) -> &Core {
        &self.core
    }
}

impl Drop for ContextLifetime {
    /// Ends the lifetime (without waiting for the store to apply the
    /// releases: `Drop` never blocks on the network).
    fn drop(&mut self) {
        let _ = self.core.end(false);
    }
}

impl fmt::Debug for ContextLifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextLifetime")
            .field("store", &self.store.name())
            .field("done", &self.done())
            .field("claims", &self.core.len())
            .finish()
    }
}
