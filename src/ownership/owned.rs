//! [`OwnedProxy<T>`]: the one owner of a stored object.

use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, OnceLock};

use crate::codec::Storable;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::ownership::object::{
    Object, Releasing, Snapshot, deref_failed, publish_local, publish_local_async, snapshot,
    snapshot_async,
};
use crate::proxy::Proxy;
use crate::state::{Claim, ClaimKind, Note, Op};
use crate::store::Store;

/// The owner of a stored object. There is exactly one per object.
///
/// Dropping the owner evicts the object — at once if it is not borrowed,
/// else when its last borrow ends (references are always valid). Borrow it
/// with [`borrow`](crate::borrow) and [`mut_borrow`](crate::mut_borrow); the
/// rules are checked store-side, so they hold across threads and processes.
///
/// The owner may be changed locally through `DerefMut` (copy-on-write: the
/// stored value is untouched); [`update`](crate::update) publishes the
/// change, and is refused while the object is borrowed. Unpublished changes
/// are discarded when the owner is dropped or turned into a ticket.
///
/// # What the owner shows
///
/// `Deref` gives `&T` from `&self`, so the owner shows a snapshot: the value
/// as of its first resolve or its last refresh. Every `&mut` access
/// refreshes it — `DerefMut`, [`update`](crate::update),
/// [`OwnedProxy::refresh`] — so after a mutable borrow has published, the
/// owner's next change starts from the published value, and
/// [`clone`](crate::clone) copies the current value. Local changes made on a
/// version that a mutable borrow has since replaced are never published over
/// it: `update` fails with [`Error::Conflict`] and keeps them.
/// [`OwnedProxy::latest`] reads the current value without `&mut`.
///
/// An owner is not serializable — that would make two owners. Move it to
/// another process with [`OwnedProxy::into_ticket`].
///
/// ```
/// use borrowstore::{Store, borrow, mut_borrow, update, Error};
/// # fn main() -> Result<(), Error> {
/// let store = Store::memory("doc-owned");
/// let mut owner = store.owned_proxy(vec![1u64, 2, 3])?;
/// {
///     let r = borrow(&owner)?;
///     assert_eq!(r.len(), 3);
///     assert!(matches!(mut_borrow(&owner), Err(Error::AlreadyBorrowed { .. })));
/// }
/// owner.push(4);              // local, copy-on-write
/// update(&mut owner)?;        // published
/// assert_eq!(borrow(&owner)?.len(), 4);
/// let key = *borrowstore::OwnedProxy::key(&owner);
/// drop(owner);                // evicted
/// assert!(!store.exists(&key)?);
/// # Ok(()) }
/// ```
#[clippy::has_significant_drop]
#[must_use = "dropping the owner evicts the object"]
pub struct OwnedProxy<T> {
    pub(crate) obj: Arc<Object>,
    pub(crate) claim: Claim,
    pub(crate) shared: OnceLock<Snapshot<T>>,
    /// Local changes, and the version they were made on.
    pub(crate) local: Option<T>,
    pub(crate) local_base: u64,
    pub(crate) live: bool,
}

impl<T: Storable> OwnedProxy<T> {
    pub(crate) fn from_parts(obj: Arc<Object>, claim: Claim, value: Option<Snapshot<T>>) -> Self {
        let shared = OnceLock::new();
        if let Some(v) = value {
            let _ = shared.set(v);
        }
        OwnedProxy {
            obj,
            claim,
            shared,
            local: None,
            local_base: 0,
            live: true,
        }
    }

    /// A view of the owner claim `claim`, which something else holds (an
    /// apalis job's ticket): it reads and publishes like the owner, but
    /// dropping it evicts nothing, and it cannot become a ticket.
    pub(crate) fn job_view(store: Store, key: Key, claim: Claim) -> Result<Self> {
        let obj = Object::attach(store, key)?;
        let mut owner = OwnedProxy::from_parts(obj, claim, None);
        owner.live = false;
        Ok(owner)
    }

    /// The object's key. An associated function (`OwnedProxy::key(&o)`), so
    /// it never hides a method of `T`.
    ///
    /// ```
    /// use borrowstore::{OwnedProxy, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-owned-key");
    /// let owner = store.owned_proxy(1u8)?;
    /// let key = *OwnedProxy::key(&owner);
    /// assert!(store.exists(&key)?);
    /// drop(owner);
    /// assert!(!store.exists(&key)?);
    /// # Ok(()) }
    /// ```
    pub fn key(this: &Self) -> &Key {
        &this.obj.key
    }

    /// The object's store.
    ///
    /// ```
    /// use borrowstore::{OwnedProxy, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-owned-store");
    /// let owner = store.owned_proxy(1u8)?;
    /// assert!(OwnedProxy::store(&owner).same_store(&store));
    /// # Ok(()) }
    /// ```
    pub fn store(this: &Self) -> &Store {
        &this.obj.store
    }

    /// The value as this owner shows it: its local changes, else its
    /// snapshot of the stored value (resolved on first use). `Deref` is
    /// this, panicking on the error.
    ///
    /// # Errors
    ///
    /// When the snapshot must be resolved: [`Error::KeyNotFound`] if the
    /// object was evicted ([`Store::evict`]), [`Error::TypeMismatch`],
    /// [`Error::Decode`], [`Error::Connector`].
    ///
    /// ```
    /// use borrowstore::{OwnedProxy, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-owned-resolve");
    /// let mut owner = store.owned_proxy(vec![1u8])?;
    /// assert_eq!(OwnedProxy::resolve(&owner)?, &vec![1]);
    /// owner.push(2);                                     // local
    /// assert_eq!(OwnedProxy::resolve(&owner)?, &vec![1, 2]);
    /// # Ok(()) }
    /// ```
    pub fn resolve(this: &Self) -> Result<&T> {
        match &this.local {
            Some(v) => Ok(v),
            None => snapshot(&this.obj, &this.shared).map(|s| &*s.value),
        }
    }

    /// [`OwnedProxy::resolve`], without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    pub async fn resolve_async(this: &Self) -> Result<&T> {
        match &this.local {
            Some(v) => Ok(v),
            None => snapshot_async(&this.obj, &this.shared)
                .await
                .map(|s| &*s.value),
        }
    }

    /// [`OwnedProxy::latest`], without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    pub async fn latest_async(this: &Self) -> Result<Arc<T>> {
        if let Some(s) = this.shared.get()
            && this.obj.is_current_async(s.version).await?
        {
            return Ok(s.value.clone());
        }
        this.obj.resolve_async::<T>().await
    }

    /// [`OwnedProxy::refresh`], without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the snapshot is replaced only once the read is in.
    pub async fn refresh_async(this: &mut Self) -> Result<&T> {
        let current = match this.shared.get() {
            Some(s) if this.obj.is_current_async(s.version).await? => None,
            _ => Some(this.obj.resolve_versioned_async::<T>().await?),
        };
        if let Some(s) = current {
            this.shared = OnceLock::from(s);
        }
        OwnedProxy::resolve(this)
    }

    /// The current stored value (not the local changes), shared. Costs a
    /// version check; moves no value when the snapshot is current.
    ///
    /// # Errors
    ///
    /// As [`OwnedProxy::resolve`].
    ///
    /// ```
    /// use borrowstore::{OwnedProxy, Store, mut_borrow, update};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-owned-latest");
    /// let owner = store.owned_proxy(vec![1u8])?;
    /// assert_eq!(*owner, vec![1]);                       // the snapshot
    /// let mut w = mut_borrow(&owner)?;
    /// w.push(2);
    /// update(&mut w)?;
    /// drop(w);
    /// assert_eq!(*OwnedProxy::latest(&owner)?, vec![1, 2]);
    /// assert_eq!(*owner, vec![1]);                       // still the old snapshot
    /// # Ok(()) }
    /// ```
    pub fn latest(this: &Self) -> Result<Arc<T>> {
        if let Some(s) = this.shared.get()
            && this.obj.is_current(s.version)?
        {
            return Ok(s.value.clone());
        }
        this.obj.resolve::<T>()
    }

    /// Brings the snapshot up to the current stored version, and returns the
    /// value as the owner now shows it (local changes, if any, stay).
    ///
    /// # Errors
    ///
    /// As [`OwnedProxy::resolve`]; the old snapshot stays.
    ///
    /// ```
    /// use borrowstore::{OwnedProxy, Store, mut_borrow};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-owned-refresh");
    /// let mut owner = store.owned_proxy(String::from("v1"))?;
    /// *mut_borrow(&owner)? = String::from("v2");         // published on drop
    /// assert_eq!(*owner, "v1");
    /// assert_eq!(OwnedProxy::refresh(&mut owner)?, "v2");
    /// assert_eq!(*owner, "v2");
    /// # Ok(()) }
    /// ```
    pub fn refresh(this: &mut Self) -> Result<&T> {
        let current = match this.shared.get() {
            Some(s) if this.obj.is_current(s.version)? => None,
            _ => Some(this.obj.resolve_versioned::<T>()?),
        };
        if let Some(s) = current {
            this.shared = OnceLock::from(s);
        }
        OwnedProxy::resolve(this)
    }

    /// Whether this owner has local changes that are not published.
    ///
    /// ```
    /// use borrowstore::{OwnedProxy, Store, update};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-owned-is-modified");
    /// let mut owner = store.owned_proxy(vec![1u8])?;
    /// assert!(!OwnedProxy::is_modified(&owner));
    /// owner.push(2);
    /// assert!(OwnedProxy::is_modified(&owner));
    /// update(&mut owner)?;
    /// assert!(!OwnedProxy::is_modified(&owner));
    /// # Ok(()) }
    /// ```
    pub fn is_modified(this: &Self) -> bool {
        this.local.is_some()
    }

    /// Drops local changes, going back to the stored value.
    ///
    /// ```
    /// use borrowstore::{OwnedProxy, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-owned-discard");
    /// let mut owner = store.owned_proxy(vec![1u8])?;
    /// owner.push(2);
    /// OwnedProxy::discard_changes(&mut owner);
    /// assert_eq!(*owner, vec![1]);
    /// # Ok(()) }
    /// ```
    pub fn discard_changes(this: &mut Self) {
        this.local = None;
    }

    fn view(&self) -> &T {
        match OwnedProxy::resolve(self) {
            Ok(v) => v,
            Err(e) => deref_failed(&self.obj, "owned proxy", &e),
        }
    }

    /// Publishes local changes under a transient mutable borrow.
    pub(crate) fn publish(this: &mut Self) -> Result<()> {
        let writer = this.obj.acquire(ClaimKind::Writer)?;
        let r = OwnedProxy::publish_under(this, writer);
        this.obj.release(writer);
        r
    }

    /// [`publish`](Self::publish), without blocking the executor. Dropping
    /// the future gives the transient borrow back; the local changes are
    /// kept unless they were published.
    pub(crate) async fn publish_async(this: &mut Self) -> Result<()> {
        let writer = this
            .obj
            .acquire_async(ClaimKind::Writer, Note::here())
            .await?;
        let _release = Releasing {
            obj: this.obj.clone(),
            claim: writer,
        };
        if this.local.is_none() {
            OwnedProxy::refresh_async(this).await?;
            return Ok(());
        }
        if !this.obj.is_current_async(this.local_base).await? {
            return Err(Error::Conflict { key: this.obj.key });
        }
        let obj = this.obj.clone();
        if let Some(published) = publish_local_async(&obj, writer, &mut this.local).await? {
            this.shared = OnceLock::from(published);
        }
        Ok(())
    }

    fn publish_under(this: &mut Self, writer: Claim) -> Result<()> {
        if this.local.is_none() {
            OwnedProxy::refresh(this)?;
            return Ok(());
        }
        if !this.obj.is_current(this.local_base)? {
            return Err(Error::Conflict { key: this.obj.key });
        }
        if let Some(published) = publish_local(&this.obj, writer, &mut this.local)? {
            this.shared = OnceLock::from(published);
        }
        Ok(())
    }
}

impl<T: Storable> Deref for OwnedProxy<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.view()
    }
}

impl<T: Storable> DerefMut for OwnedProxy<T> {
    /// Copy-on-write: the first mutable access copies the value locally,
    /// with `Clone`.
    ///
    /// # Panics
    ///
    /// If the value cannot be resolved.
    fn deref_mut(&mut self) -> &mut T {
        if self.local.is_none() {
            // Start from the current version; if it cannot be read (the
            // object was evicted, the store is unreachable), from the snapshot.
            let refreshed = OwnedProxy::refresh(self).map(|_| ());
            let base = match (self.shared.get(), refreshed) {
                (Some(s), _) => s.clone(),
                (None, Err(e)) => deref_failed(&self.obj, "owned proxy", &e),
                (None, Ok(())) => unreachable!("refresh resolved the snapshot"),
            };
            self.local_base = base.version;
            self.local = Some(T::clone(&base.value));
        }
        match self.local.as_mut() {
            Some(v) => v,
            None => unreachable!("set above"),
        }
    }
}

impl<T> Drop for OwnedProxy<T> {
    fn drop(&mut self) {
        if self.live {
            self.obj.release(self.claim);
        }
    }
}

impl<T> fmt::Debug for OwnedProxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedProxy")
            .field("key", &self.obj.key)
            .field("store", &self.obj.store.name())
            .field("modified", &self.local.is_some())
            .finish()
    }
}

/// Adopts a plain proxy: its object gets this owner, and is evicted when the
/// owner is dropped. Refused with [`Error::AlreadyOwned`](crate::Error::AlreadyOwned)
/// when the object already has an owner proxy, and with
/// [`Error::KeyNotFound`](crate::Error::KeyNotFound) when it is gone.
///
/// Scopes and lifetimes that already hold the object stay its owners too:
/// it is evicted when the last of them, and the new owner, are gone.
///
/// # Errors
///
/// [`Error::AlreadyOwned`](crate::Error::AlreadyOwned),
/// [`Error::KeyNotFound`](crate::Error::KeyNotFound),
/// [`Error::Connector`](crate::Error::Connector). The proxy is consumed
/// either way; the object is unchanged on error.
///
/// ```
/// use borrowstore::{Error, OwnedProxy, Store, into_owned};
/// # fn main() -> Result<(), Error> {
/// let store = Store::memory("doc-into-owned");
/// let p = store.proxy(vec![9u64])?;                      // plain: persists until evicted
/// let owner: OwnedProxy<Vec<u64>> = into_owned(p)?;
/// assert_eq!(*owner, vec![9]);
///
/// let twice = into_owned(store.proxy_from_key::<Vec<u64>>(*OwnedProxy::key(&owner)));
/// assert!(matches!(twice, Err(Error::AlreadyOwned { .. })));
///
/// let key = *OwnedProxy::key(&owner);
/// drop(owner);                                           // now it is evicted
/// assert!(!store.exists(&key)?);
/// # Ok(()) }
/// ```
#[track_caller]
pub fn into_owned<T: Storable>(proxy: Proxy<T>) -> Result<OwnedProxy<T>> {
    let (store, key, _) = proxy.into_parts();
    let obj = Object::attach(store, key)?;
    let claim = Claim::new(ClaimKind::Owner);
    obj.apply(Op::Acquire(claim))?;
    Ok(OwnedProxy::from_parts(obj, claim, None))
}

/// [`into_owned`], without blocking the executor.
///
/// # Cancel safety
///
/// Dropping the future leaves the object as it was: an owner claim already
/// taken is given back (which evicts the object, as dropping the owner
/// would).
#[track_caller]
pub fn into_owned_async<T: Storable>(
    proxy: Proxy<T>,
) -> impl Future<Output = Result<OwnedProxy<T>>> + Send {
    let note = Note::here();
    async move {
        let (store, key, _) = proxy.into_parts();
        let obj = Object::attach(store, key)?;
        let claim = obj.acquire_async(ClaimKind::Owner, note).await?;
        Ok(OwnedProxy::from_parts(obj, claim, None))
    }
}

/// [`clone`], without blocking the executor.
///
/// # Cancel safety
///
/// Dropping the future leaves nothing behind: a copy already stored is
/// evicted.
#[track_caller]
pub fn clone_async<T: Storable>(
    owner: &OwnedProxy<T>,
) -> impl Future<Output = Result<OwnedProxy<T>>> + Send + '_ {
    let note = Note::here();
    async move {
        let value = match &owner.local {
            Some(v) => Arc::new(v.clone()),
            None => OwnedProxy::latest_async(owner).await?,
        };
        owner.obj.store.owned_from_arc_async(value, note).await
    }
}

/// A copy of the owner's value under a new key, with its own owner: its
/// local changes if it has any (copied with `Clone`), else the current
/// stored value. Independent of its source: changing one never changes the
/// other. In a memory store an unchanged value is shared, not copied
/// (values are immutable once stored; every change replaces them).
///
/// While a liveness scope is open on this thread, the copy is managed by it
/// too, as every new object is.
///
/// # Errors
///
/// Reading the current value: [`Error::KeyNotFound`](crate::Error::KeyNotFound),
/// [`Error::TypeMismatch`](crate::Error::TypeMismatch),
/// [`Error::Decode`](crate::Error::Decode); storing the copy: as
/// [`Store::owned_proxy`].
///
/// ```
/// use borrowstore::{OwnedProxy, Store, clone, update};
/// # fn main() -> Result<(), borrowstore::Error> {
/// let store = Store::memory("doc-clone");
/// let mut owner = store.owned_proxy(vec![1u64, 2, 3])?;
/// let mut copy = clone(&owner)?;
/// assert_ne!(OwnedProxy::key(&copy), OwnedProxy::key(&owner));
/// copy.push(4);
/// update(&mut copy)?;
/// assert_eq!((owner.len(), copy.len()), (3, 4));         // independent
///
/// owner.push(9);                                         // local changes are copied too
/// assert_eq!(*clone(&owner)?, vec![1, 2, 3, 9]);
/// # Ok(()) }
/// ```
#[track_caller]
pub fn clone<T: Storable>(owner: &OwnedProxy<T>) -> Result<OwnedProxy<T>> {
    let value = match &owner.local {
        Some(v) => Arc::new(v.clone()),
        None => OwnedProxy::latest(owner)?,
    };
    owner.obj.store.owned_from_arc(value, Note::here())
}
