//! [`RefMutProxy<T>`]: the mutable borrow.

use std::fmt;
use std::ops::{Deref, DerefMut};

use crate::codec::Storable;
use crate::error::Result;
use crate::key::Key;
use crate::observe::{self, op_span};
use crate::ownership::borrow_core::{BorrowCore, Borrowed};
use crate::ownership::object::{publish_local, publish_local_async};
use crate::ownership::owned::OwnedProxy;
#[cfg(feature = "apalis")]
use crate::ownership::staged::Staged;
use crate::state::ClaimKind;
use crate::store::Store;

/// The mutable borrow of an owned object.
///
/// While it exists no other borrow of the object exists anywhere. Changes
/// made through `DerefMut` are local until published: by
/// [`update`](crate::update) / [`update_async`](crate::update_async), or —
/// if the value was changed — when the `RefMutProxy` is dropped. Other
/// readers see the new version on their next resolve.
///
/// # Dropped with changes
///
/// Changes are published only when the writer meant them:
///
/// - dropped normally, a changed `RefMutProxy` publishes its changes
///   without blocking in `Drop`: where the store queues its releases
///   (Redis), the publish is queued ahead of the borrow's own release, so
///   every later request of this process — and every process's borrow that
///   the release lets in — sees the new version; elsewhere it is applied
///   at once. A failure is logged and returned by the store's next
///   [`flush`](crate::Store::flush) / [`flush_async`](crate::Store::flush_async);
///   `submit` waits for it before its handle resolves, as it does for
///   releases;
/// - dropped while its thread panics, it discards them: the object keeps
///   its last published version;
/// - [`RefMutProxy::discard`] drops it without publishing;
/// - one whose [`update`](crate::update) already failed because its borrow
///   is gone store-side ([`Error::ClaimLost`](crate::Error::ClaimLost),
///   [`Error::KeyNotFound`](crate::Error::KeyNotFound)) keeps its changes
///   for inspection but does not try to publish them again when dropped.
///
/// Prefer `update`: it reports errors where they happen.
///
/// ```
/// use borrowstore::{Store, borrow, mut_borrow, update, Error};
/// # fn main() -> Result<(), Error> {
/// let store = Store::memory("doc-refmut");
/// let owner = store.owned_proxy(vec![1u64])?;
/// let mut w = mut_borrow(&owner)?;
/// assert!(matches!(borrow(&owner), Err(Error::AlreadyMutablyBorrowed { .. })));
/// w.push(2);
/// update(&mut w)?;
/// drop(w);
/// assert_eq!(*borrow(&owner)?, vec![1, 2]);
/// # Ok(()) }
/// ```
#[clippy::has_significant_drop]
#[must_use = "dropping a RefMutProxy ends the borrow at once"]
pub struct RefMutProxy<T: Storable> {
    core: BorrowCore<T>,
    /// Changes not yet published.
    local: Option<T>,
    /// A publish already failed because the borrow is gone store-side
    /// (`ClaimLost`, `KeyNotFound`): `Drop` does not try again.
    lost: bool,
    /// Set for the borrow an apalis job's function receives: its publishes
    /// are held back until the job has succeeded.
    #[cfg(feature = "apalis")]
    staged: Option<Staged>,
}

impl<T: Storable> RefMutProxy<T> {
    /// The object's key. An associated function (`RefMutProxy::key(&w)`),
    /// so it never hides a method of `T`.
    ///
    /// ```
    /// use borrowstore::{OwnedProxy, RefMutProxy, Store, mut_borrow};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-refmut-key");
    /// let owner = store.owned_proxy(1u8)?;
    /// let w = mut_borrow(&owner)?;
    /// assert_eq!(RefMutProxy::key(&w), OwnedProxy::key(&owner));
    /// # Ok(()) }
    /// ```
    pub fn key(this: &Self) -> &Key {
        this.core.key()
    }

    /// The object's store.
    ///
    /// ```
    /// use borrowstore::{RefMutProxy, Store, mut_borrow};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-refmut-store");
    /// let owner = store.owned_proxy(1u8)?;
    /// assert!(RefMutProxy::store(&mut_borrow(&owner)?).same_store(&store));
    /// # Ok(()) }
    /// ```
    pub fn store(this: &Self) -> &Store {
        this.core.store()
    }

    /// The value as this borrow sees it (with its unpublished changes).
    /// `Deref` is this, panicking on the error.
    ///
    /// # Errors
    ///
    /// [`Error::ClaimLost`](crate::Error::ClaimLost) once the task this
    /// borrow was submitted to has ended; [`Error::TypeMismatch`](crate::Error::TypeMismatch),
    /// [`Error::Decode`](crate::Error::Decode) or
    /// [`Error::Connector`](crate::Error::Connector) from reading the value.
    ///
    /// ```
    /// use borrowstore::{RefMutProxy, Store, mut_borrow};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-refmut-resolve");
    /// let owner = store.owned_proxy(vec![1u8])?;
    /// let mut w = mut_borrow(&owner)?;
    /// w.push(2);
    /// assert_eq!(RefMutProxy::resolve(&w)?, &vec![1, 2]); // its own changes
    /// # Ok(()) }
    /// ```
    pub fn resolve(this: &Self) -> Result<&T> {
        this.core.check_guard()?;
        match &this.local {
            Some(v) => Ok(v),
            None => this.core.resolved().map(|a| &**a),
        }
    }

    /// Whether there are unpublished changes.
    ///
    /// ```
    /// use borrowstore::{RefMutProxy, Store, mut_borrow, update};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-refmut-is-modified");
    /// let owner = store.owned_proxy(vec![1u8])?;
    /// let mut w = mut_borrow(&owner)?;
    /// assert!(!RefMutProxy::is_modified(&w));
    /// w.push(2);                                         // the first DerefMut copies
    /// assert!(RefMutProxy::is_modified(&w));
    /// update(&mut w)?;
    /// assert!(!RefMutProxy::is_modified(&w));
    /// # Ok(()) }
    /// ```
    pub fn is_modified(this: &Self) -> bool {
        this.local.is_some()
    }

    /// Drops unpublished changes: the borrow shows the stored value again,
    /// and its drop publishes nothing.
    ///
    /// ```
    /// use borrowstore::{RefMutProxy, Store, mut_borrow};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-refmut-discard");
    /// let owner = store.owned_proxy(vec![1u8])?;
    /// let mut w = mut_borrow(&owner)?;
    /// w.push(2);
    /// RefMutProxy::discard_changes(&mut w);
    /// drop(w);                                           // nothing to publish
    /// assert_eq!(*borrowstore::borrow(&owner)?, vec![1]);
    /// # Ok(()) }
    /// ```
    pub fn discard_changes(this: &mut Self) {
        this.local = None;
    }

    /// Ends the borrow without publishing its changes: the object keeps
    /// its last published version.
    ///
    /// ```
    /// use borrowstore::{RefMutProxy, Store, borrow, mut_borrow};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-discard");
    /// let owner = store.owned_proxy(vec![1u64])?;
    /// let mut w = mut_borrow(&owner)?;
    /// w.push(2);
    /// RefMutProxy::discard(w);
    /// assert_eq!(*borrow(&owner)?, vec![1]);
    /// # Ok(()) }
    /// ```
    pub fn discard(mut this: Self) {
        this.local = None;
    }

    /// [`RefMutProxy::resolve`], without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    pub async fn resolve_async(this: &Self) -> Result<&T> {
        this.core.check_guard()?;
        match &this.local {
            Some(v) => Ok(v),
            None => this.core.resolved_async().await.map(|a| &**a),
        }
    }

    pub(crate) fn publish(this: &mut Self) -> Result<()> {
        #[cfg(feature = "apalis")]
        if this.staged.is_some() {
            return RefMutProxy::stage(this);
        }
        let local = &mut this.local;
        let r = this.core.while_held(|core| publish_held(core, local));
        if let Err(e) = &r {
            this.lost |= e.means_borrow_gone();
        }
        r
    }

    pub(crate) async fn publish_async(this: &mut Self) -> Result<()> {
        #[cfg(feature = "apalis")]
        if this.staged.is_some() {
            return RefMutProxy::stage(this);
        }
        let held = this.core.hold()?;
        let published =
            publish_local_async(this.core.object(), this.core.claim(), &mut this.local).await;
        drop(held);
        match published {
            Ok(Some(p)) => this.core.set_resolved(p.value),
            Ok(None) => {}
            Err(e) => {
                this.lost |= e.means_borrow_gone();
                return Err(e);
            }
        }
        Ok(())
    }
}

#[cfg(feature = "apalis")]
impl<T: Storable> RefMutProxy<T> {
    /// A job's borrow "publishes" into its [`Staged`] slot: the change is
    /// published when the job has succeeded, and this borrow reads it
    /// meanwhile.
    fn stage(this: &mut Self) -> Result<()> {
        this.core.check_guard()?;
        let (Some(staged), Some(value)) = (&this.staged, this.local.take()) else {
            return Ok(());
        };
        let value = std::sync::Arc::new(value);
        staged.stage(this.core.object().clone(), this.core.claim(), value.clone());
        this.core.set_resolved(value);
        Ok(())
    }
}

/// Publishes `local`; the caller knows the claim is held.
fn publish_held<T: Storable>(core: &mut BorrowCore<T>, local: &mut Option<T>) -> Result<()> {
    if let Some(published) = publish_local(core.object(), core.claim(), local)? {
        core.set_resolved(published.value);
    }
    Ok(())
}

impl<T: Storable> Borrowed for RefMutProxy<T> {
    type Value = T;
    const KIND: ClaimKind = ClaimKind::Writer;

    fn core(&self) -> &BorrowCore<T> {
        &self.core
    }

    fn core_mut(&mut self) -> &mut BorrowCore<T> {
        &mut self.core
    }

    fn from_core(core: BorrowCore<T>) -> Self {
        RefMutProxy {
            core,
            local: None,
            lost: false,
            #[cfg(feature = "apalis")]
            staged: None,
        }
    }

    #[cfg(feature = "apalis")]
    fn stage_changes(&mut self) -> Option<Staged> {
        let staged = Staged::default();
        self.staged = Some(staged.clone());
        Some(staged)
    }
}

impl<T: Storable> Deref for RefMutProxy<T> {
    type Target = T;

    fn deref(&self) -> &T {
        RefMutProxy::resolve(self).unwrap_or_else(|e| self.core.deref_failed("mutable borrow", &e))
    }
}

impl<T: Storable> DerefMut for RefMutProxy<T> {
    /// The first mutable access copies the stored value (with `Clone`);
    /// readers in other places keep the old one until it is published.
    ///
    /// # Panics
    ///
    /// If the value cannot be resolved.
    fn deref_mut(&mut self) -> &mut T {
        let core = &self.core;
        if let Err(e) = core.check_guard() {
            core.deref_failed("mutable borrow", &e)
        }
        if self.local.is_none() {
            let base = core
                .resolved()
                .unwrap_or_else(|e| core.deref_failed("mutable borrow", &e));
            self.local = Some(T::clone(base));
        }
        self.local.as_mut().expect("set above")
    }
}

impl<T: Storable> Drop for RefMutProxy<T> {
    fn drop(&mut self) {
        let local = self.local.take();
        // A writer whose thread panics did not mean its changes; one whose
        // update already found its borrow gone cannot publish them.
        let publish = local.filter(|_| !self.lost && !std::thread::panicking());
        #[cfg(feature = "apalis")]
        if let Some(staged) = &self.staged {
            let staged = staged.clone();
            self.core.end(|core| {
                if let Some(value) = publish {
                    staged.stage(
                        core.object().clone(),
                        core.claim(),
                        std::sync::Arc::new(value),
                    );
                }
            });
            return;
        }
        self.core.end(|core| {
            if let Some(value) = publish {
                core.object()
                    .publish_on_drop(core.claim(), std::sync::Arc::new(value));
            }
        });
    }
}

impl<T: Storable> fmt::Debug for RefMutProxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefMutProxy")
            .field("key", self.core.key())
            .field("store", &self.core.store().name())
            .field("modified", &self.local.is_some())
            .finish()
    }
}

/// Borrows the owner's object mutably. Refused with
/// [`Error::AlreadyBorrowed`](crate::Error::AlreadyBorrowed) while any other
/// borrow exists anywhere.
///
/// Counted store-side: while the [`RefMutProxy`] exists, no other borrow
/// of the object exists in any thread or process. Its changes are local
/// (the first `DerefMut` copies the value with `Clone`) until
/// [`update`](crate::update) publishes them, or — if there are any — its
/// drop does. This never waits: it succeeds or fails at once;
/// [`mut_borrow_async`](crate::mut_borrow_async) and
/// [`mut_borrow_timeout`](crate::mut_borrow_timeout) wait for the borrows
/// to end. Inside async code use `mut_borrow_async` on a file or Redis
/// store: this blocks the thread until the store answers.
///
/// # Errors
///
/// - [`Error::AlreadyBorrowed`](crate::Error::AlreadyBorrowed) (operation
///   `"mut_borrow"`, naming the readers or the writer that hold it) while
///   any [`RefProxy`](crate::RefProxy) or another `RefMutProxy` of the
///   object exists;
/// - [`Error::KeyNotFound`](crate::Error::KeyNotFound) if the object was
///   evicted;
/// - [`Error::Connector`](crate::Error::Connector) if the store cannot be
///   reached.
///
/// Nothing is held after an error.
///
/// ```
/// use borrowstore::{Error, Store, borrow, mut_borrow, update};
/// # fn main() -> Result<(), Error> {
/// let store = Store::memory("doc-mut-borrow");
/// let owner = store.owned_proxy(vec![1u64])?;
/// let readers = [borrow(&owner)?, borrow(&owner)?, borrow(&owner)?];
/// match mut_borrow(&owner) {
///     Err(e @ Error::AlreadyBorrowed { .. }) => {
///         assert!(e.to_string().contains("3 readers hold it"), "{e}")
///     }
///     other => panic!("expected a refusal, got {other:?}"),
/// }
/// drop(readers);
///
/// let mut w = mut_borrow(&owner)?;
/// w.push(2);                                             // a private copy
/// update(&mut w)?;                                       // published
/// drop(w);
/// assert_eq!(*borrow(&owner)?, vec![1, 2]);
/// # Ok(()) }
/// ```
#[track_caller]
pub fn mut_borrow<T: Storable>(owner: &OwnedProxy<T>) -> Result<RefMutProxy<T>> {
    if observe::watched() {
        return mut_borrow_watched(owner);
    }
    take_mut_borrow(owner)
}

/// [`mut_borrow`] in its span, counted.
#[track_caller]
#[cold]
#[inline(never)]
fn mut_borrow_watched<T: Storable>(owner: &OwnedProxy<T>) -> Result<RefMutProxy<T>> {
    let span = op_span!("mut_borrow", owner.obj.store, owner.obj.key);
    let r = {
        let _in = span.enter();
        take_mut_borrow(owner)
    };
    observe::finish(&span, || owner.obj.store.name(), "mut_borrow", &r);
    r
}

#[track_caller]
#[inline]
fn take_mut_borrow<T: Storable>(owner: &OwnedProxy<T>) -> Result<RefMutProxy<T>> {
    // The memory store's hot path, as `borrow`'s: one transition, nothing
    // read, and no wider return value on the way (it would cost a
    // store-forwarding stall).
    if owner.obj.has_entry() {
        let claim = owner.obj.acquire(ClaimKind::Writer)?;
        return Ok(RefMutProxy::from_core(BorrowCore::new(
            owner.obj.clone(),
            claim,
            None,
        )));
    }
    let (claim, value) = owner.obj.acquire_resolving::<T>(ClaimKind::Writer)?;
    Ok(RefMutProxy::from_core(BorrowCore::new(
        owner.obj.clone(),
        claim,
        value,
    )))
}
