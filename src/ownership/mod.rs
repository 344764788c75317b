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
mod waiting;

pub(crate) use borrow_core::Borrowed;
pub use owned::{OwnedProxy, clone, clone_async, into_owned, into_owned_async};
pub use ref_mut::{RefMutProxy, mut_borrow};
pub use ref_proxy::{RefProxy, borrow};
pub(crate) use task_guard::TaskClaim;
pub use ticket::{BorrowTicket, OwnerTicket};
pub use waiting::{borrow_async, borrow_timeout, mut_borrow_async, mut_borrow_timeout};

use futures::future::BoxFuture;

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

    #[doc(hidden)]
    fn publish_changes_async(this: &mut Self) -> BoxFuture<'_, Result<()>>;
}

impl<T: Storable> sealed::Sealed for OwnedProxy<T> {}
impl<T: Storable> sealed::Sealed for RefMutProxy<T> {}

impl<T: Storable> Update for OwnedProxy<T> {
    fn publish_changes(this: &mut Self) -> Result<()> {
        OwnedProxy::publish(this)
    }

    fn publish_changes_async(this: &mut Self) -> BoxFuture<'_, Result<()>> {
        Box::pin(OwnedProxy::publish_async(this))
    }
}

impl<T: Storable> Update for RefMutProxy<T> {
    fn publish_changes(this: &mut Self) -> Result<()> {
        RefMutProxy::publish(this)
    }

    fn publish_changes_async(this: &mut Self) -> BoxFuture<'_, Result<()>> {
        Box::pin(RefMutProxy::publish_async(this))
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
/// Inside async code use [`update_async`]: on a file or Redis store this
/// blocks the thread until the store answers.
pub fn update<P: Update>(handle: &mut P) -> Result<()> {
    P::publish_changes(handle).map_err(|e| e.refused_as("update"))
}

/// [`update`], without blocking the executor: on a file or Redis store the
/// publish is awaited (the file store writes on tokio's blocking pool). On
/// a memory store it completes in its first poll.
///
/// # Cancel safety
///
/// Dropping the future may leave the change published or not; unless it is
/// known to be published the local changes are kept. An owner's transient
/// mutable borrow is given back either way.
///
/// ```
/// use borrowstore::{Store, borrow, update_async};
/// # fn main() -> Result<(), borrowstore::Error> {
/// let store = Store::memory("doc-update-async");
/// let mut owner = store.owned_proxy(vec![1u64])?;
/// owner.push(2);
/// futures::executor::block_on(update_async(&mut owner))?;
/// assert_eq!(*borrow(&owner)?, vec![1, 2]);
/// # Ok(()) }
/// ```
pub async fn update_async<P: Update>(handle: &mut P) -> Result<()> {
    P::publish_changes_async(handle).await
}
