//! What a shared and a mutable borrow have in common: the claim, the value
//! it resolved, the task guard, and giving the claim back.

use std::sync::{Arc, OnceLock};

use crate::codec::Storable;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::ownership::object::{Object, deref_failed, resolved, resolved_async};
use crate::ownership::task_guard::{TaskClaim, TaskGuard};
use crate::state::{Claim, ClaimKind, Note};
use crate::store::Store;

/// The inside of a [`RefProxy`](crate::RefProxy) or a
/// [`RefMutProxy`](crate::RefMutProxy): one claim on one object.
///
/// Dropping it gives the claim back (see [`BorrowCore::end`]); the writer
/// ends it first, with its publish.
pub(crate) struct BorrowCore<T> {
    obj: Arc<Object>,
    claim: Claim,
    /// The stored value, resolved on first use.
    value: OnceLock<Arc<T>>,
    /// False once the claim has ended here, or left with a ticket.
    live: bool,
    /// Set while the borrow belongs to a submitted task (`None` otherwise,
    /// so ordinary borrows pay one branch).
    guard: Option<Arc<TaskGuard>>,
}

impl<T> BorrowCore<T> {
    /// A borrow holding `claim`, with the value if it was read with it.
    pub(crate) fn new(obj: Arc<Object>, claim: Claim, value: Option<Arc<T>>) -> Self {
        BorrowCore {
            obj,
            claim,
            value: value.map_or_else(OnceLock::new, OnceLock::from),
            live: true,
            guard: None,
        }
    }

    /// A view of `claim`, which another process holds (a borrow sent to a
    /// task in this process): it reads (and, for a writer, publishes) under
    /// that claim, never releases it, and is invalid once the returned
    /// record is ended.
    pub(crate) fn view(store: Store, key: Key, claim: Claim) -> Result<(Self, TaskClaim)> {
        let obj = Object::attach(store, key)?;
        let (guard, record) = TaskClaim::of_view(&obj, claim);
        let mut core = BorrowCore::new(obj, claim, None);
        core.guard = Some(guard);
        Ok((core, record))
    }

    pub(crate) fn object(&self) -> &Arc<Object> {
        &self.obj
    }

    pub(crate) fn key(&self) -> &Key {
        &self.obj.key
    }

    pub(crate) fn store(&self) -> &Store {
        &self.obj.store
    }

    /// The claim this borrow holds.
    pub(crate) fn claim(&self) -> Claim {
        self.claim
    }

    /// [`Error::ClaimLost`] once the task this borrow was submitted to has
    /// ended it.
    pub(crate) fn check_guard(&self) -> Result<()> {
        match &self.guard {
            Some(g) if g.is_ended() => Err(self.claim_lost()),
            _ => Ok(()),
        }
    }

    pub(crate) fn claim_lost(&self) -> Error {
        Error::ClaimLost { key: self.obj.key }
    }

    /// The `Deref` contract: panics naming the key, the store and the
    /// cause.
    pub(crate) fn deref_failed(&self, what: &str, e: &Error) -> ! {
        deref_failed(&self.obj, what, e)
    }

    /// Ties this borrow to a submitted task (see [`TaskGuard`]); returns the
    /// task's record of it, or `None` if a task already ended it.
    pub(crate) fn enlist(&mut self) -> Option<TaskClaim> {
        TaskClaim::enlist(&self.obj, self.claim, &mut self.guard)
    }

    /// Runs `f` while the claim is surely held: no task can end it
    /// meanwhile. [`Error::ClaimLost`] if a task has ended it.
    pub(crate) fn while_held<R>(&mut self, f: impl FnOnce(&mut Self) -> Result<R>) -> Result<R> {
        let held = self.hold()?;
        let r = f(self);
        drop(held);
        r
    }

    /// Marks the claim in use until the returned guard drops (across
    /// awaits: a dropped future leaves the claim as it was), so no task can
    /// end it meanwhile. [`Error::ClaimLost`] if a task has ended it.
    pub(crate) fn hold(&self) -> Result<Held> {
        match &self.guard {
            None => Ok(Held(None)),
            Some(g) if g.enter() => Ok(Held(Some(g.clone()))),
            Some(_) => Err(self.claim_lost()),
        }
    }

    /// Hands the claim over to whatever `f` makes of it (a ticket): from
    /// then on this borrow neither holds nor releases it. A borrow that
    /// belongs to a submitted task leaves the task. [`Error::ClaimLost`] if
    /// the task has already ended it; if `f` fails the borrow keeps the
    /// claim (and, if it has one, its task).
    pub(crate) fn hand_over<R>(
        &mut self,
        f: impl FnOnce(&Object, Claim) -> Result<R>,
    ) -> Result<R> {
        let guard = self.guard.take();
        if let Some(g) = &guard
            && !g.enter()
        {
            self.live = false;
            return Err(self.claim_lost());
        }
        match (f(&self.obj, self.claim), guard) {
            (Ok(r), g) => {
                if let Some(g) = g {
                    g.leave(true);
                }
                self.live = false;
                Ok(r)
            }
            (Err(e), Some(g)) => {
                // Still the task's: its drop or the task's end releases it.
                g.leave(false);
                self.guard = Some(g);
                Err(e)
            }
            (Err(e), None) => Err(e),
        }
    }

    /// [`hand_over`](Self::hand_over), for an `f` that awaits. If the
    /// future is dropped while `f` runs, the borrow keeps the claim (and,
    /// if it has one, its task) — `f` may have handed it over meanwhile.
    pub(crate) async fn hand_over_async<R, F>(
        &mut self,
        f: impl FnOnce(Arc<Object>, Claim) -> F,
    ) -> Result<R>
    where
        F: std::future::Future<Output = Result<R>>,
    {
        let mut held = match self.hold() {
            Ok(h) => h,
            Err(e) => {
                self.live = false;
                return Err(e);
            }
        };
        let r = f(self.obj.clone(), self.claim).await?;
        if let Some(g) = held.0.take() {
            g.leave(true);
        }
        self.guard = None;
        self.live = false;
        Ok(r)
    }

    /// Ends the claim from the handle's side, once: unless a task ended it
    /// first, runs `last` (the writer's publish) while it is still held,
    /// then releases it — if it is this process's to release (a view's is
    /// not).
    pub(crate) fn end(&mut self, last: impl FnOnce(&mut Self)) {
        if !self.live {
            return;
        }
        self.live = false;
        match self.guard.take() {
            None => {
                last(self);
                self.obj.release(self.claim);
            }
            Some(g) => {
                // A task's end released it otherwise: using it now could
                // overwrite another writer.
                if g.enter() {
                    last(self);
                    if g.owns_claim() {
                        self.obj.release(self.claim);
                    }
                    g.leave(true);
                }
            }
        }
    }
}

impl<T: Storable> BorrowCore<T> {
    /// A borrow holding a new claim of `kind`, taken without blocking the
    /// executor, with its value resolved (a value that cannot be decoded is
    /// left for the first resolve to report). Dropping the future leaves no
    /// claim behind: the claim is owned by the borrow from the poll that
    /// takes it.
    pub(crate) async fn acquire_async(
        obj: &Arc<Object>,
        kind: ClaimKind,
        note: Note,
    ) -> Result<Self> {
        let (claim, value) = obj.acquire_resolving_async::<T>(kind, note).await?;
        let core = BorrowCore::new(obj.clone(), claim, value);
        if !obj.has_entry() {
            let _ = core.resolved_async().await;
        }
        Ok(core)
    }

    /// The stored value as of this borrow's first resolve.
    pub(crate) fn resolved(&self) -> Result<&Arc<T>> {
        resolved(&self.obj, &self.value)
    }

    /// [`resolved`](Self::resolved), without blocking the executor.
    pub(crate) async fn resolved_async(&self) -> Result<&Arc<T>> {
        resolved_async(&self.obj, &self.value).await
    }

    /// Takes `value` as the stored one (after this borrow published it).
    pub(crate) fn set_resolved(&mut self, value: Arc<T>) {
        self.value = OnceLock::from(value);
    }

    /// A new shared borrow of the same object, with a reader claim of its
    /// own (released by its own drop), sharing the value this one resolved.
    /// [`Error::ClaimLost`] if a task has ended this borrow's claim, before
    /// or while the new claim was taken (then it is given back).
    #[track_caller]
    pub(crate) fn reborrow(&self) -> Result<BorrowCore<T>> {
        self.check_guard()?;
        let claim = match self.obj.acquire(ClaimKind::Reader) {
            Ok(c) => c,
            Err(e) => return Err(self.check_guard().map_or_else(|lost| lost, |()| e)),
        };
        if let Err(lost) = self.check_guard() {
            self.obj.release(claim);
            return Err(lost);
        }
        Ok(BorrowCore::new(
            self.obj.clone(),
            claim,
            self.value.get().cloned(),
        ))
    }
}

/// The claim of a borrow marked in use (see [`BorrowCore::hold`]); gives
/// it back to its task when dropped.
pub(crate) struct Held(Option<Arc<TaskGuard>>);

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(g) = self.0.take() {
            g.leave(false);
        }
    }
}

impl<T> Drop for BorrowCore<T> {
    fn drop(&mut self) {
        self.end(|_| {});
    }
}

/// The two borrow handles, to the code that moves them into tasks and
/// processes.
pub(crate) trait Borrowed: Sized {
    /// The borrowed value's type.
    type Value: Storable;
    /// The kind of claim the handle holds.
    const KIND: ClaimKind;

    fn core(&self) -> &BorrowCore<Self::Value>;

    fn core_mut(&mut self) -> &mut BorrowCore<Self::Value>;

    fn from_core(core: BorrowCore<Self::Value>) -> Self;

    /// A handle that views `claim`, which another process holds; see
    /// [`BorrowCore::view`].
    fn view(store: Store, key: Key, claim: Claim) -> Result<(Self, TaskClaim)> {
        let (core, record) = BorrowCore::view(store, key, claim)?;
        Ok((Self::from_core(core), record))
    }

    /// Makes this handle's publishes go to the returned slot instead of the
    /// store (a writer an apalis job receives); `None` for a reader, which
    /// never publishes.
    #[cfg(feature = "apalis")]
    fn stage_changes(&mut self) -> Option<crate::ownership::staged::Staged> {
        None
    }
}
