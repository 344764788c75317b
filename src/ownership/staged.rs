//! [`Staged`]: a mutable borrow's change held back until the job it was
//! sent to has succeeded (feature `apalis`).
//!
//! A job's attempt may fail, panic or time out, and then be retried: what
//! it changed must not be published before the job's outcome says it
//! succeeded. A [`RefMutProxy`](crate::RefMutProxy) that a job's function
//! receives therefore "publishes" (`update`, or its drop with changes) into
//! a `Staged` slot, and reads its own change from then on; the worker's
//! layer publishes what the slot holds once the attempt has succeeded, and
//! drops it otherwise.

use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;

use crate::codec::Storable;
use crate::error::Result;
use crate::ownership::object::Object;
use crate::state::Claim;

/// Publishes a staged value under its writer claim.
type Publish = Box<dyn FnOnce() -> BoxFuture<'static, Result<()>> + Send>;

/// The latest change of one mutable borrow, not yet published. Clones
/// share the slot: the borrow stages, the layer publishes or discards.
#[derive(Clone, Default)]
pub(crate) struct Staged(Arc<Mutex<Option<Publish>>>);

impl Staged {
    fn slot(&self) -> MutexGuard<'_, Option<Publish>> {
        // A panic while the slot is locked cannot leave it half-written.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds `value` back as the change of the writer `claim` of `obj`,
    /// replacing the one staged before.
    pub(crate) fn stage<T: Storable>(&self, obj: Arc<Object>, claim: Claim, value: Arc<T>) {
        let publish: Publish = Box::new(move || {
            Box::pin(async move { obj.publish_async(claim, value).await.map(drop) })
        });
        *self.slot() = Some(publish);
    }

    /// Whether a change is staged.
    pub(crate) fn is_staged(&self) -> bool {
        self.slot().is_some()
    }

    /// Publishes the staged change, if any, and empties the slot. A change
    /// whose publish fails is dropped: the attempt that made it is over.
    pub(crate) async fn publish(&self) -> Result<()> {
        let publish = self.slot().take();
        match publish {
            Some(p) => p().await,
            None => Ok(()),
        }
    }

    /// Drops the staged change: the object keeps its published version.
    pub(crate) fn discard(&self) {
        self.slot().take();
    }
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged")
            .field("staged", &self.is_staged())
            .finish()
    }
}
