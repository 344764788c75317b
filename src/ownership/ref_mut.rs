//! [`RefMutProxy<T>`]: the mutable borrow.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, OnceLock};

use crate::codec::{self, Storable};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::ownership::object::{Object, deref_failed, publish_local, resolved};
use crate::ownership::owned::OwnedProxy;
use crate::ownership::task_guard::{TaskClaim, TaskGuard};
use crate::state::{Claim, ClaimKind};
use crate::store::Store;

/// The mutable borrow of an owned object.
///
/// While it exists no other borrow of the object exists anywhere. Changes
/// made through `DerefMut` are local until published: by
/// [`update`](crate::update), or — if the value was changed — when the
/// `RefMutProxy` is dropped. Other readers see the new version on their next
/// resolve.
///
/// Prefer `update`: it reports errors, while a publish on drop can only log
/// them (`Drop` never panics).
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
    obj: Arc<Object>,
    claim: Claim,
    base: OnceLock<Arc<T>>,
    local: Option<T>,
    /// Set while the borrow belongs to a submitted task (see `RefProxy`).
    guard: Option<Arc<TaskGuard>>,
}

impl<T: Storable> RefMutProxy<T> {
    /// The object's key.
    pub fn key(this: &Self) -> &Key {
        &this.obj.key
    }

    /// The object's store.
    pub fn store(this: &Self) -> &Store {
        &this.obj.store
    }

    /// The value as this borrow sees it (with its unpublished changes).
    ///
    /// [`Error::ClaimLost`] once the task this borrow was submitted to has
    /// ended.
    pub fn resolve(this: &Self) -> Result<&T> {
        RefMutProxy::check_guard(this)?;
        match &this.local {
            Some(v) => Ok(v),
            None => resolved(&this.obj, &this.base).map(|a| &**a),
        }
    }

    fn check_guard(this: &Self) -> Result<()> {
        match &this.guard {
            Some(g) if g.is_ended() => Err(Error::ClaimLost { key: this.obj.key }),
            _ => Ok(()),
        }
    }

    /// Whether there are unpublished changes.
    pub fn is_modified(this: &Self) -> bool {
        this.local.is_some()
    }

    /// Drops unpublished changes.
    pub fn discard_changes(this: &mut Self) {
        this.local = None;
    }

    pub(crate) fn publish(this: &mut Self) -> Result<()> {
        let Some(g) = this.guard.clone() else {
            return RefMutProxy::publish_held(this);
        };
        if !g.enter() {
            return Err(Error::ClaimLost { key: this.obj.key });
        }
        let r = RefMutProxy::publish_held(this);
        g.leave(false);
        r
    }

    /// Publishes; the caller knows the claim is held.
    fn publish_held(this: &mut Self) -> Result<()> {
        if let Some(published) = publish_local(&this.obj, this.claim, &mut this.local)? {
            this.base = OnceLock::from(published.value);
        }
        Ok(())
    }

    /// The claim this borrow holds.
    pub(crate) fn claim_of(this: &Self) -> Claim {
        this.claim
    }

    /// Ties this borrow to a submitted task; see `RefProxy::enlist`.
    pub(crate) fn enlist(this: &mut Self) -> Option<TaskClaim> {
        TaskClaim::enlist(&this.obj, this.claim, &mut this.guard)
    }

    /// A view of a mutable borrow that another process holds: reads and
    /// publishes under that claim, never releases it, and is invalid once
    /// the returned record is ended.
    pub(crate) fn view(store: Store, key: Key, claim: Claim) -> Result<(Self, TaskClaim)> {
        let obj = crate::ownership::object::Object::attach(store, key)?;
        let guard = TaskGuard::new(false);
        let mut slot = Some(guard);
        let record = TaskClaim::enlist(&obj, claim, &mut slot).ok_or(Error::ClaimLost { key })?;
        Ok((
            RefMutProxy {
                obj,
                claim,
                base: OnceLock::new(),
                local: None,
                guard: slot,
            },
            record,
        ))
    }
}

impl<T: Storable> Deref for RefMutProxy<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match RefMutProxy::resolve(self) {
            Ok(v) => v,
            Err(e) => deref_failed(&self.obj, "mutable borrow", &e),
        }
    }
}

impl<T: Storable> DerefMut for RefMutProxy<T> {
    /// The first mutable access copies the stored value; readers in other
    /// places keep the old one until it is published.
    ///
    /// # Panics
    ///
    /// If the value cannot be resolved or copied.
    fn deref_mut(&mut self) -> &mut T {
        if let Err(e) = RefMutProxy::check_guard(self) {
            deref_failed(&self.obj, "mutable borrow", &e)
        }
        if self.local.is_none() {
            let base = match resolved(&self.obj, &self.base) {
                Ok(v) => v,
                Err(e) => deref_failed(&self.obj, "mutable borrow", &e),
            };
            let copy = codec::deep_copy(&**base)
                .unwrap_or_else(|e| deref_failed(&self.obj, "mutable borrow", &e));
            self.local = Some(copy);
        }
        self.local.as_mut().expect("set above")
    }
}

impl<T: Storable> Drop for RefMutProxy<T> {
    fn drop(&mut self) {
        let guard = self.guard.take();
        let (held, owned) = match &guard {
            None => (true, true),
            Some(g) => (g.enter(), g.owns_claim()),
        };
        if !held {
            // A submitted task's end released it: publishing now could
            // overwrite another writer.
            return;
        }
        if self.local.is_some()
            && let Err(e) = RefMutProxy::publish_held(self)
        {
            tracing::error!(key = %self.obj.key, error = %e, "publishing a dropped RefMutProxy failed");
        }
        if owned {
            self.obj.release(self.claim);
        }
        if let Some(g) = guard {
            g.leave(true);
        }
    }
}

impl<T: Storable> fmt::Debug for RefMutProxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefMutProxy")
            .field("key", &self.obj.key)
            .field("store", &self.obj.store.name())
            .field("modified", &self.local.is_some())
            .finish()
    }
}

/// Borrows the owner's object mutably. Refused with
/// [`Error::AlreadyBorrowed`](crate::Error::AlreadyBorrowed) while any other
/// borrow exists anywhere.
pub fn mut_borrow<T: Storable>(owner: &OwnedProxy<T>) -> Result<RefMutProxy<T>> {
    let (claim, value) = owner.obj.acquire_resolving::<T>(ClaimKind::Writer)?;
    let base = OnceLock::new();
    if let Some(v) = value {
        let _ = base.set(v);
    }
    Ok(RefMutProxy {
        obj: owner.obj.clone(),
        claim,
        base,
        local: None,
        guard: None,
    })
}
