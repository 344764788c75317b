//! [`RefProxy<T>`]: a shared borrow.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use crate::codec::Storable;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::ownership::object::{Object, deref_failed, resolved};
use crate::ownership::owned::OwnedProxy;
use crate::ownership::ticket::{BorrowTicket, TicketWire};
use crate::state::{Claim, ClaimKind};
use crate::store::Store;
use crate::sync::{AtomicU64, Ordering};

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
    /// Set while the borrow belongs to a submitted task (`None` otherwise,
    /// so ordinary borrows pay one branch).
    guard: Option<Arc<TaskGuard>>,
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
            guard: None,
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
    ///
    /// [`Error::ClaimLost`] once the task this borrow was submitted to has
    /// ended (a borrow leaked out of a task is never read stale).
    pub fn shared(this: &Self) -> Result<&Arc<T>> {
        let value = resolved(&this.obj, &this.value)?;
        if let Some(g) = &this.guard
            && g.is_ended()
        {
            return Err(Error::ClaimLost { key: this.obj.key });
        }
        Ok(value)
    }

    /// Moves this borrow out of this process: returns a serializable ticket
    /// that [`BorrowTicket::redeem`] turns back into the borrow, exactly once.
    /// Until then the ticket holds the borrow store-side.
    ///
    /// A borrow that a submitted task turns into a ticket leaves the task:
    /// the ticket keeps it after the task ends. [`Error::ClaimLost`] if the
    /// task has already ended it.
    pub fn into_ticket(mut this: Self) -> Result<BorrowTicket<T>> {
        let guard = this.guard.take();
        if let Some(g) = &guard
            && !g.enter()
        {
            this.live = false;
            return Err(Error::ClaimLost { key: this.obj.key });
        }
        let issued = TicketWire::issue::<T>(&this.obj, this.claim);
        match (issued, &guard) {
            (Ok(wire), g) => {
                if let Some(g) = g {
                    g.leave(true);
                }
                this.live = false;
                Ok(BorrowTicket::new(wire))
            }
            (Err(e), Some(g)) => {
                // Still the task's: its drop or the task's end releases it.
                g.leave(false);
                this.guard = guard;
                Err(e)
            }
            (Err(e), None) => Err(e),
        }
    }

    /// The claim this borrow holds.
    pub(crate) fn claim_of(this: &Self) -> Claim {
        this.claim
    }

    /// Ties this borrow to a submitted task (see [`TaskGuard`]); returns the
    /// task's record of it, or `None` if a task already ended it.
    pub(crate) fn enlist(this: &mut Self) -> Option<TaskClaim> {
        TaskClaim::enlist(&this.obj, this.claim, &mut this.guard)
    }

    /// A view of a claim that another process holds (a borrow sent to a
    /// task in this process): reads like a borrow, never releases, and is
    /// invalid once the returned record is ended.
    pub(crate) fn view(store: Store, key: Key, claim: Claim) -> Result<(Self, TaskClaim)> {
        let obj = Object::attach(store, key)?;
        let guard = TaskGuard::new(false);
        let record = TaskClaim {
            obj: obj.clone(),
            claim,
            guard: guard.clone(),
        };
        let mut view = RefProxy::from_parts(obj, claim);
        view.guard = Some(guard);
        Ok((view, record))
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
        match &self.guard {
            None => {
                if self.live {
                    self.obj.release(self.claim);
                }
            }
            Some(g) => {
                if self.live && g.enter() {
                    if g.owns_claim() {
                        self.obj.release(self.claim);
                    }
                    g.leave(true);
                }
            }
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
    // The memory store's hot path: one transition on the slot, nothing read.
    // (Kept apart from the combined path below, whose wider return value
    // costs a store-forwarding stall on this path.)
    if owner.obj.has_entry() {
        let claim = owner.obj.acquire(ClaimKind::Reader)?;
        return Ok(RefProxy::with_value(owner.obj.clone(), claim, None));
    }
    let (claim, value) = owner.obj.acquire_resolving::<T>(ClaimKind::Reader)?;
    Ok(RefProxy::with_value(owner.obj.clone(), claim, value))
}

// ------------------------------------------------------------ task guards

const HELD: u64 = 0;
const BUSY: u64 = 1;
const ENDED: u64 = 2;
/// A task-side ender is releasing the claim; `ENDED` once it has.
const ENDING: u64 = 3;

/// Ties a borrow to the task that `submit` moved it into.
///
/// Whichever comes first ends the claim, exactly once: the handle's own
/// drop, or the end of the task ([`TaskClaim::end`]). From then on the
/// handle refuses to resolve or publish ([`Error::ClaimLost`]), so a borrow
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
}

impl TaskGuard {
    pub(crate) fn new(owns_claim: bool) -> Arc<TaskGuard> {
        Arc::new(TaskGuard {
            state: AtomicU64::new(HELD),
            owns_claim,
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

    /// The task's side: ends the claim unless it has ended, calling
    /// `release` if it owns the claim. Returns only once the claim has
    /// ended *and* its release was made, by whoever ended it: this call,
    /// the handle (`BUSY`), or another ender (`ENDING`) — so a task's
    /// handle that ends its borrows never resolves ahead of a release that
    /// the executor's drop of the task is still making.
    fn end(&self, release: impl FnOnce()) {
        loop {
            match self.state.compare_exchange_weak(
                HELD,
                ENDING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if self.owns_claim {
                        release();
                    }
                    self.state.store(ENDED, Ordering::Release);
                    return;
                }
                Err(ENDED) => return,
                Err(_) => {
                    #[cfg(not(borrowstore_loom))]
                    std::thread::yield_now();
                    #[cfg(borrowstore_loom)]
                    loom::thread::yield_now();
                }
            }
        }
    }
}

/// A submitted task's record of one borrow it holds: ends it when the task
/// ends, unless the handle ended it first.
pub(crate) struct TaskClaim {
    obj: Arc<Object>,
    claim: Claim,
    guard: Arc<TaskGuard>,
}

impl TaskClaim {
    /// Installs a guard in `slot` (or joins the one there: a borrow moved
    /// on into a nested task); `None` if the claim has ended.
    pub(crate) fn enlist(
        obj: &Arc<Object>,
        claim: Claim,
        slot: &mut Option<Arc<TaskGuard>>,
    ) -> Option<TaskClaim> {
        let guard = match slot {
            Some(g) if g.is_ended() => return None,
            Some(g) => g.clone(),
            None => {
                let g = TaskGuard::new(true);
                *slot = Some(g.clone());
                g
            }
        };
        Some(TaskClaim {
            obj: obj.clone(),
            claim,
            guard,
        })
    }

    /// Ends the claim: releases it (never blocking on the network) unless
    /// it has ended already; the handle, wherever it is, is invalid after.
    pub(crate) fn end(&self) {
        self.guard.end(|| self.obj.release(self.claim));
    }

    /// Whether the claim has ended.
    pub(crate) fn is_ended(&self) -> bool {
        self.guard.is_ended()
    }

    pub(crate) fn store(&self) -> &Store {
        &self.obj.store
    }

    pub(crate) fn key(&self) -> &Key {
        &self.obj.key
    }

    pub(crate) fn claim(&self) -> Claim {
        self.claim
    }
}
