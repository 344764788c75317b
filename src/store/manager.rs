//! The creation hook: who owns the objects this thread creates.
//!
//! A [`Manager`] is something that takes ownership of new objects — a
//! liveness scope while it is open, or a lifetime during `put_in` /
//! `proxy_in`. This layer knows nothing about either: it keeps a
//! thread-local stack of managers, and the store's creation functions
//! ([`Store::put`], [`Store::put_batch`], [`Store::proxy`],
//! [`Store::ephemeral_proxy`], [`Store::owned_proxy`] and
//! [`clone`](crate::clone)) ask the innermost one for a holder claim:
//!
//! - plain objects are created with that claim already in place
//!   (`Init::Claimed`, atomically: there is no moment at which the object
//!   exists unowned);
//! - owned objects are created with their owner claim, and the holder claim
//!   is acquired right after, before the owner is handed out.
//!
//! The manager then [adopts](Manager::adopt) the claim and gives it back
//! when it ends. With no manager on the stack, nothing changes: objects are
//! plain (or owned by their `OwnedProxy` alone) as before. There is no
//! base manager that would keep everything forever.
//!
//! Ephemeral proxies are managed too, unlike ProxyStore's (where lifetimes
//! and ephemeral proxies exclude each other): the first resolve still evicts
//! the object, and if nothing ever resolves it, its manager evicts it when it
//! ends instead of leaking it.

use std::cell::RefCell;

use crate::connector::Entry;
use crate::error::Result;
use crate::key::Key;
use crate::state::{Claim, Init};
use crate::store::Store;
use crate::sync::Arc;

/// Something that takes ownership of the objects created on this thread
/// while it is on the manager stack.
pub(crate) trait Manager: Send + Sync {
    /// The holder claim under which the new object `key` of `store` should
    /// be created, or `None` to leave it unmanaged.
    fn claim_for(&self, store: &Store, key: Key) -> Option<Claim>;

    /// Takes over `claim`, which is now held store-side on `key` of `store`.
    ///
    /// On `Err` the manager refused (for example a lifetime that has ended);
    /// it has then released `claim` itself, and the creation fails with that
    /// error.
    fn adopt(&self, store: &Store, key: Key, claim: Claim) -> Result<()>;
}

crate::sync::thread_local! {
    static STACK: RefCell<Vec<Arc<dyn Manager>>> = const { RefCell::new(Vec::new()) };
}

/// The address of a manager, for identity comparisons (never dereferenced).
pub(crate) fn addr(m: &Arc<dyn Manager>) -> *const () {
    Arc::as_ptr(m).cast::<()>()
}

/// Makes `m` the innermost manager of this thread until the guard drops.
pub(crate) fn push(m: Arc<dyn Manager>) -> StackGuard {
    let at = addr(&m);
    STACK.with(|s| s.borrow_mut().push(m));
    StackGuard { at }
}

/// Pops what [`push`] pushed, even when unwinding.
#[must_use = "the manager is popped when the guard drops"]
pub(crate) struct StackGuard {
    at: *const (),
}

impl Drop for StackGuard {
    fn drop(&mut self) {
        let _ = STACK.try_with(|s| {
            let mut s = s.borrow_mut();
            // Guards drop in reverse order of their pushes, so this is the
            // top; search anyway, so a misuse can never pop another manager.
            if let Some(i) = s.iter().rposition(|m| addr(m) == self.at) {
                s.remove(i);
            }
        });
    }
}

/// The innermost manager of this thread.
pub(crate) fn current() -> Option<Arc<dyn Manager>> {
    STACK
        .try_with(|s| s.borrow().last().cloned())
        .ok()
        .flatten()
}

/// Runs `f` on this thread's manager stack, innermost last.
pub(crate) fn with_stack<R>(f: impl FnOnce(&[Arc<dyn Manager>]) -> R) -> R {
    STACK.with(|s| f(&s.borrow()))
}

impl Store {
    /// The address of this store's shared state: equal for clones of one
    /// store, for identity comparisons.
    pub(crate) fn identity(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// Stores a new plain object, claimed by the innermost manager if there
    /// is one (the creation hook for `put`, `proxy`, `ephemeral_proxy`).
    pub(crate) fn insert_managed(
        &self,
        key: Key,
        value: crate::connector::Value,
    ) -> Result<Option<Arc<dyn Entry>>> {
        let managed = current().and_then(|m| m.claim_for(self, key).map(|c| (m, c)));
        match managed {
            None => self.insert(key, value, Init::Plain),
            Some((manager, claim)) => {
                let entry = self.insert(key, value, Init::Claimed(claim))?;
                manager.adopt(self, key, claim)?;
                Ok(entry)
            }
        }
    }

    /// [`insert_managed`](Store::insert_managed), without blocking the
    /// executor. The manager is the innermost one when the future is first
    /// polled (a scope's `open_async` future is the current scope while it
    /// polls).
    pub(crate) async fn insert_managed_async(
        &self,
        key: Key,
        value: crate::connector::Value,
    ) -> Result<Option<Arc<dyn Entry>>> {
        let managed = current().and_then(|m| m.claim_for(self, key).map(|c| (m, c)));
        match managed {
            None => self.insert_async(key, value, Init::Plain).await,
            Some((manager, claim)) => {
                let entry = self.insert_async(key, value, Init::Claimed(claim)).await?;
                manager.adopt(self, key, claim)?;
                Ok(entry)
            }
        }
    }

    /// [`manage_owned`](Store::manage_owned), with an `acquire` that does
    /// not block the executor.
    pub(crate) async fn manage_owned_async<F>(
        &self,
        key: Key,
        acquire: impl FnOnce(Claim) -> F,
    ) -> Result<()>
    where
        F: std::future::Future<Output = Result<()>>,
    {
        let Some(manager) = current() else {
            return Ok(());
        };
        let Some(claim) = manager.claim_for(self, key) else {
            return Ok(());
        };
        acquire(claim).await?;
        manager.adopt(self, key, claim)
    }

    /// Gives the new owned object `key` to the innermost manager too, if
    /// there is one: `acquire` takes the holder claim store-side (the
    /// creation hook for `owned_proxy` and `clone`). On `Err` the caller
    /// drops its owner, which evicts the object.
    pub(crate) fn manage_owned(
        &self,
        key: Key,
        acquire: impl FnOnce(Claim) -> Result<()>,
    ) -> Result<()> {
        let Some(manager) = current() else {
            return Ok(());
        };
        let Some(claim) = manager.claim_for(self, key) else {
            return Ok(());
        };
        acquire(claim)?;
        manager.adopt(self, key, claim)
    }
}

/// Whether a manager is on this thread's stack.
pub(crate) fn active() -> bool {
    STACK.try_with(|s| !s.borrow().is_empty()).unwrap_or(false)
}

/// A copy of a thread's manager stack, carried into a submitted task so
/// that the task runs inside the scopes open where it was submitted,
/// whichever thread runs it.
pub(crate) struct Carried(Vec<Arc<dyn Manager>>);

/// This thread's manager stack, to carry into a task.
pub(crate) fn carry() -> Carried {
    Carried(STACK.try_with(|s| s.borrow().clone()).unwrap_or_default())
}

impl Carried {
    /// Runs `f` with the carried stack as this thread's whole manager
    /// stack, then puts the thread's own stack back (also when `f`
    /// unwinds). What `f` pushes it pops again, so the carried stack is the
    /// same for the next call.
    ///
    /// The thread's own stack is set aside rather than added to: a task
    /// runs in the scopes open where it was submitted, and only in those,
    /// whatever happens to be open on the thread that polls it.
    pub(crate) fn enter<R>(&mut self, f: impl FnOnce() -> R) -> R {
        /// Swaps the thread's own stack back in, and the carried one out.
        struct Restore<'a> {
            carried: &'a mut Vec<Arc<dyn Manager>>,
            own: Vec<Arc<dyn Manager>>,
        }
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                let own = std::mem::take(&mut self.own);
                let _ = STACK.try_with(|s| {
                    *self.carried = std::mem::replace(&mut *s.borrow_mut(), own);
                });
            }
        }

        let carried = std::mem::take(&mut self.0);
        let own = STACK.with(|s| std::mem::replace(&mut *s.borrow_mut(), carried));
        let _restore = Restore {
            carried: &mut self.0,
            own,
        };
        f()
    }
}
