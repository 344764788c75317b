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
pub fn update<P: Update>(handle: &mut P) -> Result<()> {
    P::publish_changes(handle).map_err(|e| e.refused_as("update"))
}
