//! [`RefProxy<T>`]: a shared borrow.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::codec::Storable;
use crate::error::Result;
use crate::key::Key;
use crate::observe::{self, op_span};
use crate::ownership::borrow_core::{BorrowCore, Borrowed};
use crate::ownership::owned::OwnedProxy;
use crate::state::ClaimKind;
use crate::store::Store;

/// A shared borrow of an owned object: `&T` only, never `&mut T`.
///
/// While any `RefProxy` of an object exists — in any thread or process —
/// the object cannot be mutably borrowed, updated or evicted, and its owner's
/// drop defers eviction until the last borrow ends. The borrow ends when the
/// `RefProxy` is dropped.
///
/// All readers of an object in one process share one decoded value.
/// Borrowing costs one atomic transition store-side; the value is resolved
/// on first use.
///
/// ```
/// use borrowstore::{Store, borrow, Error, mut_borrow};
/// # fn main() -> Result<(), Error> {
/// let store = Store::memory("doc-ref");
/// let owner = store.owned_proxy(String::from("hello"))?;
/// let a = borrow(&owner)?;
/// let b = borrow(&owner)?;
/// assert_eq!(a.len() + b.len(), 10);
/// assert!(matches!(mut_borrow(&owner), Err(Error::AlreadyBorrowed { .. })));
/// # Ok(()) }
/// ```
#[clippy::has_significant_drop]
#[must_use = "dropping a RefProxy ends the borrow at once"]
pub struct RefProxy<T> {
    core: BorrowCore<T>,
}

impl<T: Storable> RefProxy<T> {
    /// The object's key. An associated function (`RefProxy::key(&r)`), so
    /// it never hides a method of `T`.
    ///
    /// ```
    /// use borrowstore::{OwnedProxy, RefProxy, Store, borrow};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-ref-key");
    /// let owner = store.owned_proxy(1u8)?;
    /// let r = borrow(&owner)?;
    /// assert_eq!(RefProxy::key(&r), OwnedProxy::key(&owner));
    /// # Ok(()) }
    /// ```
    pub fn key(this: &Self) -> &Key {
        this.core.key()
    }

    /// The object's store.
    ///
    /// ```
    /// use borrowstore::{RefProxy, Store, borrow};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-ref-store");
    /// let owner = store.owned_proxy(1u8)?;
    /// assert!(RefProxy::store(&borrow(&owner)?).same_store(&store));
    /// # Ok(()) }
    /// ```
    pub fn store(this: &Self) -> &Store {
        this.core.store()
    }

    /// A new shared borrow of the same object, from a shared borrow: its
    /// own reader claim, with its own id, ended by its own drop — dropping
    /// the original does not end it, nor the other way round. It shares the
    /// value the original resolved.
    ///
    /// This is how a task that holds a borrow hands borrows to its
    /// sub-tasks: `RefProxy` is not `Clone` (a copy would end the claim
    /// twice) and [`borrow`] takes an owner, but a reborrow is an ordinary
    /// `RefProxy`, so it can be a [`submit`](crate::submit::submit)
    /// argument, and ends with the task it is given to.
    ///
    /// An associated function, not a method, so that it never hides a
    /// method of `T`: call it as `RefProxy::reborrow(&r)`.
    ///
    /// # Errors
    ///
    /// - [`Error::ClaimLost`](crate::Error::ClaimLost) if the original
    ///   belonged to a submitted task that has ended (a borrow that escaped
    ///   its task is never the source of a new claim);
    /// - [`Error::KeyNotFound`](crate::Error::KeyNotFound) if the object is
    ///   gone, and the store's error ([`Error::Connector`](crate::Error::Connector), …)
    ///   if the store cannot be reached; nothing is held then.
    ///
    /// ```
    /// use borrowstore::{Error, RefProxy, Store, borrow, mut_borrow};
    /// use borrowstore::submit::{StdThreads, submit_blocking};
    /// # fn main() -> Result<(), Error> {
    /// let store = Store::memory("doc-reborrow");
    /// let owner = store.owned_proxy(vec![1u64, 2, 3])?;
    /// let r = borrow(&owner)?;
    /// let total = submit_blocking(&StdThreads, r, |r| {
    ///     // Each sub-task gets a borrow of its own, ended when it ends.
    ///     let halves = [RefProxy::reborrow(&r)?, RefProxy::reborrow(&r)?];
    ///     let h = submit_blocking(&StdThreads, halves, |[a, b]| a[0] + b[2]);
    ///     h.join()
    /// })
    /// .join()??;
    /// assert_eq!(total, 4);
    /// assert!(mut_borrow(&owner).is_ok()); // every borrow has ended
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn reborrow(this: &Self) -> Result<RefProxy<T>> {
        this.core.reborrow().map(|core| RefProxy { core })
    }

    /// The value, resolving it if needed. `Deref` is this, panicking on the
    /// error.
    ///
    /// A borrow made by [`borrow_async`](crate::borrow_async) on a file or
    /// Redis store, or by [`borrow`] there, comes with its value (one round
    /// trip for both); otherwise, inside async code, resolve with
    /// [`RefProxy::resolve_async`], since this blocks until the store
    /// answers.
    ///
    /// # Errors
    ///
    /// [`Error::ClaimLost`](crate::Error::ClaimLost) once the task this
    /// borrow was submitted to has ended; [`Error::TypeMismatch`](crate::Error::TypeMismatch),
    /// [`Error::Decode`](crate::Error::Decode) or
    /// [`Error::Connector`](crate::Error::Connector) from reading the value
    /// (the borrow keeps the object from being evicted, so it is there).
    ///
    /// ```
    /// use borrowstore::{RefProxy, Store, borrow};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-ref-resolve");
    /// let owner = store.owned_proxy(String::from("text"))?;
    /// let r = borrow(&owner)?;
    /// assert_eq!(RefProxy::resolve(&r)?, "text");
    /// # Ok(()) }
    /// ```
    pub fn resolve(this: &Self) -> Result<&T> {
        RefProxy::shared(this).map(|a| &**a)
    }

    /// [`RefProxy::resolve`], without blocking the executor. On a memory
    /// store it completes in its first poll.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads; the borrow is unchanged.
    ///
    /// ```
    /// use borrowstore::{RefProxy, Store, borrow_async};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-ref-resolve-async");
    /// let owner = store.owned_proxy(vec![1u64, 2])?;
    /// futures::executor::block_on(async {
    ///     let r = borrow_async(&owner).await?;
    ///     assert_eq!(RefProxy::resolve_async(&r).await?, &vec![1, 2]);
    ///     Ok(())
    /// })
    /// # }
    /// ```
    pub async fn resolve_async(this: &Self) -> Result<&T> {
        RefProxy::shared_async(this).await.map(|a| &**a)
    }

    /// [`RefProxy::shared`], without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    pub async fn shared_async(this: &Self) -> Result<&Arc<T>> {
        let value = this.core.resolved_async().await?;
        this.core.check_guard()?;
        Ok(value)
    }

    /// The shared value, resolving it if needed. The `Arc` may outlive the
    /// borrow; it is a snapshot, and stays immutable.
    ///
    /// [`Error::ClaimLost`](crate::Error::ClaimLost) once the task this
    /// borrow was submitted to has ended (a borrow leaked out of a task is
    /// never read stale).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use borrowstore::{RefProxy, Store, borrow};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-ref-shared");
    /// let owner = store.owned_proxy(vec![0u8; 1024])?;
    /// let (a, b) = (borrow(&owner)?, borrow(&owner)?);
    /// assert!(Arc::ptr_eq(RefProxy::shared(&a)?, RefProxy::shared(&b)?)); // one value
    /// let kept: Arc<Vec<u8>> = RefProxy::shared(&a)?.clone();
    /// drop((a, b));                                      // the borrows end …
    /// assert_eq!(kept.len(), 1024);                      // … the snapshot stays
    /// # Ok(()) }
    /// ```
    pub fn shared(this: &Self) -> Result<&Arc<T>> {
        let value = this.core.resolved()?;
        this.core.check_guard()?;
        Ok(value)
    }
}

impl<T: Storable> Borrowed for RefProxy<T> {
    type Value = T;
    const KIND: ClaimKind = ClaimKind::Reader;

    fn core(&self) -> &BorrowCore<T> {
        &self.core
    }

    fn core_mut(&mut self) -> &mut BorrowCore<T> {
        &mut self.core
    }

    fn from_core(core: BorrowCore<T>) -> Self {
        RefProxy { core }
    }
}

impl<T: Storable> Deref for RefProxy<T> {
    type Target = T;

    fn deref(&self) -> &T {
        RefProxy::resolve(self).unwrap_or_else(|e| self.core.deref_failed("borrow", &e))
    }
}

impl<T> fmt::Debug for RefProxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefProxy")
            .field("key", self.core.key())
            .field("store", &self.core.store().name())
            .finish()
    }
}

/// Borrows the owner's object immutably. Refused with
/// [`Error::AlreadyMutablyBorrowed`](crate::Error::AlreadyMutablyBorrowed)
/// while a mutable borrow exists anywhere.
///
/// The borrow is counted store-side, so it holds between threads, tasks
/// and (with a shared store) processes. Any number of readers may exist at
/// once; while one does, the object cannot be mutably borrowed, updated or
/// evicted, and dropping its owner defers the eviction to the end of the
/// last borrow. This never waits: it succeeds or fails at once;
/// [`borrow_async`](crate::borrow_async) and
/// [`borrow_timeout`](crate::borrow_timeout) wait for the writer to go.
/// Inside async code use `borrow_async` on a file or Redis store: this
/// blocks the thread until the store answers.
///
/// `borrow` takes an owner. To take a new shared borrow from a shared
/// borrow, use [`RefProxy::reborrow`]; `borrow(&ref_proxy)` does not
/// compile.
///
/// # Errors
///
/// - [`Error::AlreadyMutablyBorrowed`](crate::Error::AlreadyMutablyBorrowed)
///   (naming the writer that holds it) while a [`RefMutProxy`](crate::RefMutProxy)
///   of the object exists;
/// - [`Error::KeyNotFound`](crate::Error::KeyNotFound) if the object was
///   evicted ([`Store::evict`](crate::Store::evict));
/// - [`Error::Connector`](crate::Error::Connector) if the store cannot be
///   reached.
///
/// Nothing is held after an error.
///
/// ```
/// use borrowstore::{Error, OwnedProxy, RefProxy, Store, borrow, mut_borrow};
/// # fn main() -> Result<(), Error> {
/// let store = Store::memory("doc-borrow");
/// let owner = store.owned_proxy(vec![1u64, 2, 3])?;
/// let r1: RefProxy<Vec<u64>> = borrow(&owner)?;
/// let r2 = borrow(&owner)?;                              // many readers
/// assert_eq!(r1.iter().sum::<u64>() + r2[0], 7);
/// assert_eq!(store.inspect(OwnedProxy::key(&owner))?.unwrap().readers, 2);
/// drop((r1, r2));
///
/// let w = mut_borrow(&owner)?;                           // … or one writer
/// match borrow(&owner) {
///     Err(e @ Error::AlreadyMutablyBorrowed { .. }) => {
///         assert!(e.to_string().contains("a writer holds it"), "{e}")
///     }
///     other => panic!("expected a refusal, got {other:?}"),
/// }
/// drop(w);
/// assert!(borrow(&owner).is_ok());
/// # Ok(()) }
/// ```
#[track_caller]
pub fn borrow<T: Storable>(owner: &OwnedProxy<T>) -> Result<RefProxy<T>> {
    if observe::watched() {
        return borrow_watched(owner);
    }
    take_borrow(owner)
}

/// [`borrow`] in its span, counted.
#[track_caller]
#[cold]
#[inline(never)]
fn borrow_watched<T: Storable>(owner: &OwnedProxy<T>) -> Result<RefProxy<T>> {
    let span = op_span!("borrow", owner.obj.store, owner.obj.key);
    let r = {
        let _in = span.enter();
        take_borrow(owner)
    };
    observe::finish(&span, || owner.obj.store.name(), "borrow", &r);
    r
}

#[track_caller]
#[inline]
fn take_borrow<T: Storable>(owner: &OwnedProxy<T>) -> Result<RefProxy<T>> {
    // The memory store's hot path: one transition on the slot, nothing read.
    // (Kept apart from the combined path below, whose wider return value
    // costs a store-forwarding stall on this path.)
    if owner.obj.has_entry() {
        let claim = owner.obj.acquire(ClaimKind::Reader)?;
        return Ok(RefProxy {
            core: BorrowCore::new(owner.obj.clone(), claim, None),
        });
    }
    let (claim, value) = owner.obj.acquire_resolving::<T>(ClaimKind::Reader)?;
    Ok(RefProxy {
        core: BorrowCore::new(owner.obj.clone(), claim, value),
    })
}
