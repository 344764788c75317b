//! Ownership: [`OwnedProxy`], [`RefProxy`], [`RefMutProxy`], the free
//! functions that make and change them, and tickets that move them between
//! processes.

mod borrow_core;
mod object;
mod owned;
mod ref_mut;
mod ref_proxy;
mod task_guard;
mod ticket;

pub(crate) use borrow_core::Borrowed;
pub use owned::{OwnedProxy, clone, into_owned};
pub use ref_mut::{RefMutProxy, mut_borrow};
pub use ref_proxy::{RefProxy, borrow};
pub(crate) use task_guard::TaskClaim;
pub use ticket::{BorrowTicket, OwnerTicket};

use crate::codec::Storable;
use crate::error::Result;

mod sealed {
    pub trait Sealed {}
}

/// Handles whose local changes [`update`] can publish: [`OwnedProxy`] and
/// [`RefMutProxy`]. Sealed; a [`RefProxy`] is never mutable.
pub trait Update: sealed::Sealed {
    #[doc(hidden)]
    fn publish_changes(this: &mut Self) -> Result<()>;
}

impl<T: Storable> sealed::Sealed for OwnedProxy<T> {}
impl<T: Storable> sealed::Sealed for RefMutProxy<T> {}

impl<T: Storable> Update for OwnedProxy<T> {
    fn publish_changes(this: &mut Self) -> Result<()> {
        OwnedProxy::publish(this)
    }
}

impl<T: Storable> Update for RefMutProxy<T> {
    fn publish_changes(this: &mut Self) -> Result<()> {
        RefMutProxy::publish(this)
    }
}

/// Publishes local changes so every later resolve, in any process, sees
/// them.
///
/// - On a [`RefMutProxy`] it publishes under the borrow it holds.
/// - On an [`OwnedProxy`] it takes a transient mutable borrow, so it is
///   refused with [`Error::AlreadyBorrowed`](crate::Error::AlreadyBorrowed)
///   (operation `"update"`) while the object is borrowed — even when there
///   is nothing to publish.
///
/// On failure the local changes are kept.
///
/// With nothing to publish, `update` publishes nothing and (on an owner)
/// refreshes the owner's snapshot to the current stored value.
///
/// # Errors
///
/// - [`Error::AlreadyBorrowed`](crate::Error::AlreadyBorrowed) (operation
///   `"update"`): on an owner, while the object is borrowed;
/// - [`Error::Conflict`](crate::Error::Conflict): on an owner whose local
///   changes were made on a version that a mutable borrow has since
///   replaced (publishing would lose that change);
/// - [`Error::ClaimLost`](crate::Error::ClaimLost): on a mutable borrow
///   whose submitted task has ended;
/// - [`Error::Encode`](crate::Error::Encode),
///   [`Error::TooLarge`](crate::Error::TooLarge),
///   [`Error::Connector`](crate::Error::Connector) from storing the value.
///
/// `update(&mut ref_proxy)` does not compile: a shared borrow is never
/// mutable.
///
/// ```
/// use borrowstore::{Error, OwnedProxy, Store, borrow, mut_borrow, update};
/// # fn main() -> Result<(), Error> {
/// let store = Store::memory("doc-update");
/// let mut owner = store.owned_proxy(vec![1u64])?;
///
/// let mut w = mut_borrow(&owner)?;
/// w.push(2);
/// update(&mut w)?;                                       // under the writer's borrow
/// drop(w);
///
/// owner.push(3);                                         // the owner's local copy
/// let r = borrow(&owner)?;
/// assert!(matches!(update(&mut owner), Err(Error::AlreadyBorrowed { .. })));
/// drop(r);
/// update(&mut owner)?;
/// assert_eq!(*borrow(&owner)?, vec![1, 2, 3]);
///
/// owner.push(4);                                         // made on version 3 …
/// *mut_borrow(&owner)? = vec![0];                        // … which a writer replaces
/// assert!(matches!(update(&mut owner), Err(Error::Conflict { .. })));
/// assert!(OwnedProxy::is_modified(&owner));              // the changes are kept
/// # Ok(()) }
/// ```
pub fn update<P: Update>(handle: &mut P) -> Result<()> {
    P::publish_changes(handle).map_err(|e| e.refused_as("update"))
}
