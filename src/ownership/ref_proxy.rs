//! [`RefProxy<T>`]: a shared borrow.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use crate::codec::Storable;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::ownership::object::{Object, deref_failed, resolved};
use crate::ownership::owned::OwnedProxy;
use crate::ownership::task_guard::{TaskClaim, TaskGuard};
use crate::state::{Claim, ClaimKind};
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
    obj: Arc<Object>,
    claim: Claim,
    value: OnceLock<Arc<T>>,
    live: bool,
    /// Set while the borrow belongs to a submitted task (`None` otherwise,
    /// so ordinary borrows pay one branch).
    guard: Option<Arc<TaskGuard>>,
}

impl<T: Storable> RefProxy<T> {
    pub(crate) fn from_parts(obj: Arc<Object>, claim: Claim) -> Self {
        Self::with_value(obj, claim, None)
    }

    fn with_value(obj: Arc<Object>, claim: Claim, value: Option<Arc<T>>) -> Self {
        let cell = OnceLock::new();
        if let Some(v) = value {
            let _ = cell.set(v);
        }
        RefProxy {
            obj,
            claim,
            value: cell,
            live: true,
            guard: None,
        }
    }

    /// The object's key.
    pub fn key(this: &Self) -> &Key {
        &this.obj.key
    }

    /// The object's store.
    pub fn store(this: &Self) -> &Store {
        &this.obj.store
    }

    /// The value, resolving it if needed.
    pub fn resolve(this: &Self) -> Result<&T> {
        RefProxy::shared(this).map(|a| &**a)
    }

    /// The shared value, resolving it if needed. The `Arc` may outlive the
    /// borrow; it is a snapshot, and stays immutable.
    ///
    /// [`Error::ClaimLost`] once the task this borrow was submitted to has
    /// ended (a borrow leaked out of a task is never read stale).
    pub fn shared(this: &Self) -> Result<&Arc<T>> {
        let value = resolved(&this.obj, &this.value)?;
        if let Some(g) = &this.guard
            && g.is_ended()
        {
            return Err(Error::ClaimLost { key: this.obj.key });
        }
        Ok(value)
    }

    /// Hands the claim over to whatever `f` makes of it (a ticket): from
    /// then on this borrow neither holds nor releases it. A borrow that
    /// belongs to a submitted task leaves the task. [`Error::ClaimLost`] if
    /// the task has already ended it; if `f` fails the borrow keeps the
    /// claim (and, if it has one, its task).
    pub(super) fn hand_over<R>(
        this: &mut Self,
        f: impl FnOnce(&Object, Claim) -> Result<R>,
    ) -> Result<R> {
        let guard = this.guard.take();
        if let Some(g) = &guard
            && !g.enter()
        {
            this.live = false;
            return Err(Error::ClaimLost { key: this.obj.key });
        }
        match (f(&this.obj, this.claim), guard) {
            (Ok(r), g) => {
                if let Some(g) = g {
                    g.leave(true);
                }
                this.live = false;
                Ok(r)
            }
            (Err(e), Some(g)) => {
                // Still the task's: its drop or the task's end releases it.
                g.leave(false);
                this.guard = Some(g);
                Err(e)
            }
            (Err(e), None) => Err(e),
        }
    }

    /// The claim this borrow holds.
    pub(crate) fn claim_of(this: &Self) -> Claim {
        this.claim
    }

    /// Ties this borrow to a submitted task (see [`TaskGuard`]); returns the
    /// task's record of it, or `None` if a task already ended it.
    pub(crate) fn enlist(this: &mut Self) -> Option<TaskClaim> {
        TaskClaim::enlist(&this.obj, this.claim, &mut this.guard)
    }

    /// A view of a claim that another process holds (a borrow sent to a
    /// task in this process): reads like a borrow, never releases, and is
    /// invalid once the returned record is ended.
    pub(crate) fn view(store: Store, key: Key, claim: Claim) -> Result<(Self, TaskClaim)> {
        let obj = Object::attach(store, key)?;
        let (guard, record) = TaskClaim::of_view(&obj, claim);
        let mut view = RefProxy::from_parts(obj, claim);
        view.guard = Some(guard);
        Ok((view, record))
    }
}

impl<T: Storable> Deref for RefProxy<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match RefProxy::resolve(self) {
            Ok(v) => v,
            Err(e) => deref_failed(&self.obj, "borrow", &e),
        }
    }
}

impl<T> Drop for RefProxy<T> {
    fn drop(&mut self) {
        match &self.guard {
            None => {
                if self.live {
                    self.obj.release(self.claim);
                }
            }
            Some(g) => {
                if self.live && g.enter() {
                    if g.owns_claim() {
                        self.obj.release(self.claim);
                    }
                    g.leave(true);
                }
            }
        }
    }
}

impl<T> fmt::Debug for RefProxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefProxy")
            .field("key", &self.obj.key)
            .field("store", &self.obj.store.name())
            .finish()
    }
}

/// Borrows the owner's object immutably. Refused with
/// [`Error::AlreadyMutablyBorrowed`](crate::Error::AlreadyMutablyBorrowed)
/// while a mutable borrow exists anywhere.
pub fn borrow<T: Storable>(owner: &OwnedProxy<T>) -> Result<RefProxy<T>> {
    // The memory store's hot path: one transition on the slot, nothing read.
    // (Kept apart from the combined path below, whose wider return value
    // costs a store-forwarding stall on this path.)
    if owner.obj.has_entry() {
        let claim = owner.obj.acquire(ClaimKind::Reader)?;
        return Ok(RefProxy::with_value(owner.obj.clone(), claim, None));
    }
    let (claim, value) = owner.obj.acquire_resolving::<T>(ClaimKind::Reader)?;
    Ok(RefProxy::with_value(owner.obj.clone(), claim, value))
}
