//! Ownership: [`OwnedProxy`], [`RefProxy`], [`RefMutProxy`], the free
//! functions that make and change them, and tickets that move them between
//! processes.

mod borrow_core;
mod create;
mod object;
mod owned;
mod ref_mut;
mod ref_proxy;
#[cfg(feature = "apalis")]
mod staged;
mod task_guard;
mod ticket;
mod waiting;

pub(crate) use borrow_core::Borrowed;
pub use owned::{OwnedProxy, clone, clone_async, into_owned, into_owned_async};
pub use ref_mut::{RefMutProxy, mut_borrow};
pub use ref_proxy::{RefProxy, borrow};
#[cfg(feature = "apalis")]
pub(crate) use staged::Staged;
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
