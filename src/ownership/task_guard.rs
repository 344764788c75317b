//! Task guards: how a borrow moved into a submitted task is ended exactly
//! once, by its handle or by the task.

use std::sync::Arc;

use crate::key::Key;
use crate::ownership::object::Object;
use crate::state::Claim;
use crate::store::Store;
use crate::sync::{self, AtomicU64, Ordering};

const HELD: u64 = 0;
const BUSY: u64 = 1;
const ENDED: u64 = 2;
/// A task-side ender is releasing the claim; `ENDED` once it has.
const ENDING: u64 = 3;

/// Ties a borrow to the task that `submit` moved it into.
///
/// Whichever comes first ends the claim, exactly once: the handle's own
/// drop, or the end of the task ([`TaskClaim::end`]). From then on the
/// handle refuses to resolve or publish ([`Error::ClaimLost`](crate::Error::ClaimLost)), so a borrow
/// leaked out of a task (`mem::forget`, a global) is never read stale and
/// never released twice.
///
/// States: `HELD` → `ENDING` → `ENDED`, or `HELD` → `BUSY` → `HELD` /
/// `ENDED`. The handle's side (drop, publish) goes through `BUSY` while it
/// uses the claim, the task's side through `ENDING` while it releases it;
/// the task's side waits for either to pass, so a release made by the
/// handle, or by another ender (the executor dropping the task while the
/// task's handle ends it too), is always queued before the task's end
/// reports.
pub(crate) struct TaskGuard {
    state: AtomicU64,
    /// Whether ending the claim releases it (false for a view of a claim
    /// another process holds).
    owns_claim: bool,
    obj: Arc<Object>,
    claim: Claim,
}

impl TaskGuard {
    fn new(obj: &Arc<Object>, claim: Claim, owns_claim: bool) -> Arc<TaskGuard> {
        Arc::new(TaskGuard {
            state: AtomicU64::new(HELD),
            owns_claim,
            obj: obj.clone(),
            claim,
        })
    }

    /// Whether the claim has ended.
    pub(crate) fn is_ended(&self) -> bool {
        matches!(self.state.load(Ordering::Acquire), ENDED | ENDING)
    }

    /// Whether ending the claim releases it.
    pub(crate) fn owns_claim(&self) -> bool {
        self.owns_claim
    }

    /// The handle's side: marks the claim in use; false once it has ended.
    /// Only the handle's owner calls this (through `&mut`), so `BUSY` is
    /// never contended.
    pub(crate) fn enter(&self) -> bool {
        self.state
            .compare_exchange(HELD, BUSY, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Leaves `BUSY`: ends the claim, or gives it back to `HELD`.
    pub(crate) fn leave(&self, ended: bool) {
        self.state
            .store(if ended { ENDED } else { HELD }, Ordering::Release);
    }

    /// The task's side: ends the claim unless it has ended, releasing it
    /// if it owns the claim. Returns only once the claim has
    /// ended *and* its release was made, by whoever ended it: this call,
    /// the handle (`BUSY`), or another ender (`ENDING`) — so a task's
    /// handle that ends its borrows never resolves ahead of a release that
    /// the executor's drop of the task is still making.
    fn end(&self) {
        loop {
            match self.state.compare_exchange_weak(
                HELD,
                ENDING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if self.owns_claim {
                        self.obj.release(self.claim);
                    }
                    self.state.store(ENDED, Ordering::Release);
                    return;
                }
                Err(ENDED) => return,
                Err(_) => sync::yield_now(),
            }
        }
    }
}

/// A submitted task's record of one borrow it holds: ends it when the task
/// ends, unless the handle ended it first. It is the borrow's guard itself
/// (the guard knows the object and the claim), so recording a borrow costs
/// the one allocation of its guard, and copying the record none.
#[derive(Clone)]
pub(crate) struct TaskClaim(Arc<TaskGuard>);

impl TaskClaim {
    /// Installs a guard in `slot` (or joins the one there: a borrow moved
    /// on into a nested task); `None` if the claim has ended.
    pub(crate) fn enlist(
        obj: &Arc<Object>,
        claim: Claim,
        slot: &mut Option<Arc<TaskGuard>>,
    ) -> Option<TaskClaim> {
        match slot {
            Some(g) if g.is_ended() => None,
            Some(g) => Some(TaskClaim(g.clone())),
            None => {
                let g = TaskGuard::new(obj, claim, true);
                *slot = Some(g.clone());
                Some(TaskClaim(g))
            }
        }
    }

    /// The record of a claim that another process holds, and the guard of
    /// the view that uses it here: ending the record invalidates the view,
    /// and never releases the claim.
    pub(crate) fn of_view(obj: &Arc<Object>, claim: Claim) -> (Arc<TaskGuard>, TaskClaim) {
        let guard = TaskGuard::new(obj, claim, false);
        (guard.clone(), TaskClaim(guard))
    }

    /// Ends the claim: releases it (never blocking on the network) unless
    /// it has ended already; the handle, wherever it is, is invalid after.
    pub(crate) fn end(&self) {
        self.0.end();
    }

    /// Whether the claim has ended.
    pub(crate) fn is_ended(&self) -> bool {
        self.0.is_ended()
    }

    pub(crate) fn store(&self) -> &Store {
        &self.0.obj.store
    }

    pub(crate) fn key(&self) -> &Key {
        &self.0.obj.key
    }

    pub(crate) fn claim(&self) -> Claim {
        self.0.claim
    }
}
