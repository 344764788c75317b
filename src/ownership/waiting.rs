//! Waiting borrows: [`borrow_async`], [`mut_borrow_async`] and, for
//! threads, [`borrow_timeout`], [`mut_borrow_timeout`].
//!
//! A waiting borrow tries; refused because the object is borrowed, it
//! takes its place in this process's line of waiters for the object and
//! sleeps until a release is announced (see
//! [`Waiters`](crate::connector::Waiters)): by the memory store in
//! process, by the file store for this process's releases, by a Redis
//! message for every process's — with a bounded re-check for what cannot be
//! announced. Refusals that waiting cannot fix (the object is gone, the
//! store cannot be reached) end the wait at once.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::codec::Storable;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::observe::{self, op_span};
use crate::ownership::borrow_core::{BorrowCore, Borrowed};
use crate::ownership::object::Object;
use crate::ownership::owned::OwnedProxy;
use crate::ownership::ref_mut::RefMutProxy;
use crate::ownership::ref_proxy::RefProxy;
use crate::state::{ClaimKind, Note};

/// Borrows the owner's object immutably, waiting while a writer holds it.
///
/// Resolves to the borrow once no writer holds the object (in any
/// process), and is woken by the release that lets it in, never by
/// polling. While a [`mut_borrow_async`] of this process waits for the
/// object, a `borrow_async` that starts later waits behind it even if it
/// could borrow now, so a waiting writer is never starved by this
/// process's readers (a plain [`borrow`](crate::borrow) does not wait and
/// does not queue; readers of other processes are not in this process's
/// line). Fails at once on what waiting cannot fix:
/// [`Error::KeyNotFound`], a store that cannot be reached.
///
/// On a file or Redis store the borrow comes with its value (one round
/// trip for both), and no call blocks the thread that polls it.
///
/// # Cancel safety
///
/// Cancel safe: dropping the future leaves no claim behind and gives up its
/// place in line. The claim is taken and the `RefProxy` that gives it back
/// is made in the same poll; where the request that takes it is in flight
/// when the future is dropped, its release is queued behind it.
///
/// ```
/// use std::time::Duration;
/// use borrowstore::{Store, borrow_async, mut_borrow};
/// # fn main() -> Result<(), borrowstore::Error> {
/// let store = Store::memory("doc-borrow-async");
/// let owner = std::sync::Arc::new(store.owned_proxy(vec![1u64])?);
/// let writer = mut_borrow(&owner)?;
/// let o = owner.clone();
/// let reader = std::thread::spawn(move || {
///     futures::executor::block_on(async { borrow_async(&o).await.map(|r| r.len()) })
/// });
/// std::thread::sleep(Duration::from_millis(20)); // the reader waits …
/// drop(writer); // … until the writer is gone
/// assert_eq!(reader.join().unwrap()?, 1);
/// # Ok(()) }
/// ```
#[track_caller]
pub fn borrow_async<T: Storable>(
    owner: &OwnedProxy<T>,
) -> impl Future<Output = Result<RefProxy<T>>> + Send + '_ {
    let span = op_span!("borrow", owner.obj.store, owner.obj.key);
    waiting(&owner.obj, span, "borrow", Note::here())
}

/// Borrows the owner's object mutably, waiting while any borrow exists.
///
/// Resolves to the borrow once no other borrow exists (in any process), and
/// is woken by the release that lets it in, never by polling. It waits in
/// line with this process's other waiting borrows of the object: when its
/// turn comes it gets the object as soon as the borrows held then are
/// released, and the `borrow_async` calls that start meanwhile wait behind
/// it. Fails at once on what waiting cannot fix ([`Error::KeyNotFound`], a
/// store that cannot be reached).
///
/// # Cancel safety
///
/// Cancel safe: dropping the future leaves no claim behind and gives up its
/// place in line (as [`borrow_async`]).
///
/// ```
/// use borrowstore::{Store, borrow, mut_borrow_async, update_async};
/// # fn main() -> Result<(), borrowstore::Error> {
/// let store = Store::memory("doc-mut-borrow-async");
/// let owner = store.owned_proxy(vec![1u64])?;
/// futures::executor::block_on(async {
///     let mut w = mut_borrow_async(&owner).await?;
///     w.push(2);
///     update_async(&mut w).await
/// })?;
/// assert_eq!(*borrow(&owner)?, vec![1, 2]);
/// # Ok(()) }
/// ```
#[track_caller]
pub fn mut_borrow_async<T: Storable>(
    owner: &OwnedProxy<T>,
) -> impl Future<Output = Result<RefMutProxy<T>>> + Send + '_ {
    let span = op_span!("mut_borrow", owner.obj.store, owner.obj.key);
    waiting(&owner.obj, span, "mut_borrow", Note::here())
}

/// [`borrow_async`] for threads: waits, blocking the thread, at most
/// `timeout` for the writer to go; then fails with [`Error::Timeout`].
/// Woken by the release that lets it in, as `borrow_async` is, and in the
/// same line. A timeout leaves no claim behind.
///
/// Inside async code use `borrow_async`: this blocks the thread.
///
/// ```
/// use std::time::Duration;
/// use borrowstore::{Error, Store, borrow_timeout, mut_borrow};
/// # fn main() -> Result<(), Error> {
/// let store = Store::memory("doc-borrow-timeout");
/// let owner = store.owned_proxy(5u32)?;
/// let w = mut_borrow(&owner)?;
/// let waited = borrow_timeout(&owner, Duration::from_millis(10));
/// assert!(matches!(waited, Err(Error::Timeout { .. })));
/// drop(w);
/// assert_eq!(*borrow_timeout(&owner, Duration::from_millis(10))?, 5);
/// # Ok(()) }
/// ```
#[track_caller]
pub fn borrow_timeout<T: Storable>(
    owner: &OwnedProxy<T>,
    timeout: Duration,
) -> Result<RefProxy<T>> {
    let span = op_span!("borrow", owner.obj.store, owner.obj.key);
    waiting_blocking(&owner.obj, span, "borrow", Note::here(), timeout)
}

/// [`mut_borrow_async`] for threads: waits, blocking the thread, at most
/// `timeout` for every other borrow to end; then fails with
/// [`Error::Timeout`]. A timeout leaves no claim behind.
///
/// Inside async code use `mut_borrow_async`: this blocks the thread.
#[track_caller]
pub fn mut_borrow_timeout<T: Storable>(
    owner: &OwnedProxy<T>,
    timeout: Duration,
) -> Result<RefMutProxy<T>> {
    let span = op_span!("mut_borrow", owner.obj.store, owner.obj.key);
    waiting_blocking(&owner.obj, span, "mut_borrow", Note::here(), timeout)
}

/// The waiting borrow `B` (a [`RefProxy`] or a [`RefMutProxy`]) of `obj`,
/// in the span of its operation `op`, its claim labelled `note`: the body
/// of [`borrow_async`] and [`mut_borrow_async`].
async fn waiting<B: Borrowed>(
    obj: &Arc<Object>,
    span: tracing::Span,
    op: &'static str,
    note: Note,
) -> Result<B> {
    let r = wait_for::<B::Value>(obj, B::KIND, false, note)
        .instrument(span.clone())
        .await
        .map(B::from_core);
    observe::finish(&span, || obj.store.name(), op, &r);
    r
}

/// [`waiting`], blocking the thread for at most `timeout`: the body of
/// [`borrow_timeout`] and [`mut_borrow_timeout`].
fn waiting_blocking<B: Borrowed>(
    obj: &Arc<Object>,
    span: tracing::Span,
    op: &'static str,
    note: Note,
    timeout: Duration,
) -> Result<B> {
    let r = span.in_scope(|| {
        let waiting = wait_for::<B::Value>(obj, B::KIND, true, note);
        block_until(waiting, &obj.key, timeout).map(B::from_core)
    });
    observe::finish(&span, || obj.store.name(), op, &r);
    r
}

/// Whether a refusal is one that a release can lift.
fn busy(e: &Error) -> bool {
    matches!(
        e,
        Error::AlreadyBorrowed { .. } | Error::AlreadyMutablyBorrowed { .. }
    )
}

/// One try: a borrow holding a new claim of `kind`, labelled `note`.
/// `blocking`: the blocking form (for the `_timeout` functions), else the
/// async one.
async fn attempt<T: Storable>(
    obj: &Arc<Object>,
    kind: ClaimKind,
    blocking: bool,
    note: Note,
) -> Result<BorrowCore<T>> {
    if obj.has_entry() {
        // In this process: one transition, nothing read.
        let claim = obj.acquire_noted(kind, note)?;
        return Ok(BorrowCore::new(obj.clone(), claim, None));
    }
    if blocking {
        let (claim, value) = obj.acquire_resolving_noted::<T>(kind, note)?;
        return Ok(BorrowCore::new(obj.clone(), claim, value));
    }
    BorrowCore::acquire_async(obj, kind, note).await
}

/// Tries until a borrow of `kind` is granted, waiting in line between
/// tries (see the module docs). Its claim is labelled `note`: the waiting
/// call's site.
async fn wait_for<T: Storable>(
    obj: &Arc<Object>,
    kind: ClaimKind,
    blocking: bool,
    note: Note,
) -> Result<BorrowCore<T>> {
    let waiters = obj.store.waiters().clone();
    // Nobody of this process waits: there is no line to respect.
    if !waiters.is_listening() {
        match attempt(obj, kind, blocking, note).await {
            Err(e) if busy(&e) => {}
            done => return done,
        }
    }
    let mut listener = waiters.listen(obj.key, kind);
    loop {
        // Its turn, and something was released since the last try (or a
        // re-check is due); what was announced so far is recorded first …
        std::future::poll_fn(|cx| listener.poll_turn(cx)).await;
        // … then the store is told a waiter is about to try, then it tries:
        // a release after this point is announced, and wakes it again.
        obj.listen();
        match attempt(obj, kind, blocking, note).await {
            Err(e) if busy(&e) => {}
            // Granted or failed: leaving the line lets the next one try.
            done => return done,
        }
    }
}

/// Wakes a thread parked in [`block_until`].
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `fut` on this thread until it completes or `timeout` passes
/// ([`Error::Timeout`]; the future is dropped, which leaves no claim).
fn block_until<R>(fut: impl Future<Output = Result<R>>, key: &Key, timeout: Duration) -> Result<R> {
    let deadline = Instant::now().checked_add(timeout);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
            return r;
        }
        match deadline {
            None => std::thread::park(),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Err(Error::Timeout {
                        key: *key,
                        waited: timeout,
                    });
                }
                std::thread::park_timeout(d - now);
            }
        }
    }
}
