//! [`RefProxy<T>`]: a shared borrow.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use crate::codec::Storable;
use crate::error::Result;
use crate::key::Key;
use crate::ownership::object::{Object, deref_failed, resolved};
use crate::ownership::owned::OwnedProxy;
use crate::ownership::ticket::{BorrowTicket, TicketWire};
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
    pub fn shared(this: &Self) -> Result<&Arc<T>> {
        resolved(&this.obj, &this.value)
    }

    /// Moves this borrow out of this process: returns a serializable ticket
    /// that [`BorrowTicket::redeem`] turns back into the borrow, exactly once.
    /// Until then the ticket holds the borrow store-side.
    pub fn into_ticket(mut this: Self) -> Result<BorrowTicket<T>> {
        let wire = TicketWire::issue::<T>(&this.obj, this.claim)?;
        this.live = false;
        Ok(BorrowTicket::new(wire))
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
        if self.live {
            self.obj.release(self.claim);
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
    let (claim, value) = owner.obj.acquire_resolving::<T>(ClaimKind::Reader)?;
    Ok(RefProxy::with_value(owner.obj.clone(), claim, value))
}
