//! Liveness scopes: Deephaven's scope stack, with QueryScope's peer scopes,
//! counted store-side.
//!
//! A [`LivenessScope`] owns the objects it *manages*, by holding a holder
//! claim on each (one per reference). While a scope is **open** on a thread
//! ([`LivenessScope::open`], [`LivenessScope::open_async`]), every object
//! created on that thread — [`Store::put`](crate::Store::put),
//! [`put_batch`](crate::Store::put_batch), [`proxy`](crate::Store::proxy),
//! [`ephemeral_proxy`](crate::Store::ephemeral_proxy),
//! [`owned_proxy`](crate::Store::owned_proxy), [`clone`](crate::clone) —
//! is managed by the innermost open scope; others join with
//! [`manage`](LivenessScope::manage). [`release`](LivenessScope::release)
//! gives every reference back.
//!
//! An object's owners are its [`OwnedProxy`](crate::OwnedProxy), every scope
//! that manages it and every lifetime that holds it, in any process: it is
//! evicted when the last of them is gone and its last borrow has ended.
//! So scopes are *peers*: independent, released in any order, and an object
//! that two scopes manage lives until both let go. With no scope open,
//! nothing is managed implicitly.
//!
//! ```
//! use borrowstore::{LivenessScope, Proxy, Store, Error};
//! # fn main() -> Result<(), Error> {
//! let store = Store::memory("doc-scopes");
//! let outer = LivenessScope::new();
//! let scope = LivenessScope::new();
//! let kept = outer.open(|| {
//!     scope.open(|| -> Result<_, Error> {
//!         let tmp = store.proxy(vec![0u8; 1024])?;   // managed by `scope`
//!         let out = store.proxy(tmp.len())?;
//!         scope.preserve(&out)?;                     // handed to `outer`
//!         Ok(out)
//!     })
//! })?;
//! scope.release()?;                                  // `tmp` evicted; `out` lives on
//! assert_eq!(*kept, 1024);
//! outer.release()?;
//! assert!(!store.exists(Proxy::key(&kept))?);
//! # Ok(()) }
//! ```

mod liveness;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::{Error, Result};
use crate::lifetime::ObjectRef;
use crate::store::manager::{self, Manager};
use crate::sync::Arc;
use liveness::ScopeInner;

/// A liveness scope: an owner of the objects it manages, released all at
/// once. Cheap to clone (clones are the same scope), `Send` and `Sync`.
///
/// - **Open** it ([`open`](LivenessScope::open),
///   [`open_async`](LivenessScope::open_async)) to manage what the
///   enclosed code creates; open it again later to add more (reopening
///   before release).
/// - [`manage`](LivenessScope::manage) takes one more reference on an
///   existing object, [`unmanage`](LivenessScope::unmanage) gives one back.
/// - [`preserve`](LivenessScope::preserve) hands an object to the enclosing
///   open scope, so it outlives this one; with no enclosing scope, it hands
///   it on as an object without an owner.
/// - [`release`](LivenessScope::release) gives every reference back. The
///   scope can be used again afterwards; dropping its last clone releases
///   it too.
///
/// # Scopes and other threads and tasks
///
/// Which scopes are open is kept per thread (and, for
/// [`open_async`](LivenessScope::open_async), per future, during each of
/// its polls). A task started with [`submit`](crate::submit::submit) or
/// [`submit_blocking`](crate::submit::submit_blocking) while the scope is
/// open runs inside it, on any executor: `submit` carries the open scopes
/// into the task. A bare `tokio::spawn` or `std::thread::spawn` does not:
/// the new task or thread starts with no scope open, because the executor
/// cannot know about this thread-local stack, so what it creates is not
/// managed (open the scope in it, or wrap its future with `open_async`).
///
/// ```
/// use borrowstore::{LivenessScope, Proxy, Store};
/// # fn main() -> Result<(), borrowstore::Error> {
/// let store = Store::memory("doc-liveness-scope");
/// let scope = LivenessScope::new();
/// let a = scope.open(|| store.proxy(1u32))?;          // managed
/// let b = store.proxy(2u32)?;                          // not managed: no scope open
/// scope.release()?;
/// assert!(!store.exists(Proxy::key(&a))?);
/// assert!(store.exists(Proxy::key(&b))?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LivenessScope {
    inner: Arc<ScopeInner>,
}

impl Default for LivenessScope {
    fn default() -> Self {
        LivenessScope::new()
    }
}

impl LivenessScope {
    /// A new scope, managing nothing and not open.
    ///
    /// ```
    /// # use borrowstore::LivenessScope;
    /// let scope = LivenessScope::new();
    /// assert!(scope.is_empty() && !scope.is_open());
    /// ```
    #[track_caller]
    pub fn new() -> LivenessScope {
        LivenessScope {
            inner: Arc::new(ScopeInner::new()),
        }
    }

    /// Names the claims the scope takes from now on: their label in
    /// [`Store::inspect`](crate::Store::inspect) and `borrowstore memory`
    /// (by default, where the scope was made).
    ///
    /// ```
    /// # use borrowstore::{LivenessScope, OwnedProxy, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-scope-label");
    /// let scope = LivenessScope::new();
    /// scope.label("batch");
    /// let owner = store.owned_proxy(1u8)?;
    /// scope.manage(&owner)?;
    /// let info = store.inspect(OwnedProxy::key(&owner))?.expect("stored");
    /// assert!(info.claims.iter().any(|c| c.label.as_deref() == Some("batch")));
    /// # Ok(()) }
    /// ```
    pub fn label(&self, name: &'static str) {
        self.inner.name(name);
    }

    fn as_manager(&self) -> Arc<dyn Manager> {
        self.inner.clone()
    }

    fn addr(&self) -> *const () {
        Arc::as_ptr(&self.inner).cast::<()>()
    }

    /// Runs `f` with this scope open on the current thread: every object
    /// `f` creates on this thread is managed by this scope (the innermost
    /// open one). The scope is closed again when `f` returns or panics; it
    /// is not released.
    ///
    /// ```
    /// # use borrowstore::{LivenessScope, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-scope-open");
    /// let scope = LivenessScope::new();
    /// let key = scope.open(|| {
    ///     assert!(scope.is_open());
    ///     store.put(&"managed".to_owned())
    /// })?;
    /// assert!(!scope.is_open());
    /// assert_eq!(scope.references(&(&store, key)), 1);
    /// # Ok(()) }
    /// ```
    pub fn open<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = manager::push(self.as_manager());
        f()
    }

    /// Wraps `future` so that this scope is open on whichever thread polls
    /// it, for the duration of each poll: objects the future creates are
    /// managed by this scope across `.await`s, on any executor. The scope
    /// is not released when the future completes.
    ///
    /// ```
    /// # use borrowstore::{LivenessScope, Proxy, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-scope-open-async");
    /// let scope = LivenessScope::new();
    /// let p = futures::executor::block_on(scope.open_async(async {
    ///     futures::future::ready(()).await;
    ///     store.proxy(5u8)
    /// }))?;
    /// assert_eq!(scope.references(&p), 1);
    /// scope.release()?;
    /// assert!(!store.exists(Proxy::key(&p))?);
    /// # Ok(()) }
    /// ```
    pub fn open_async<F: Future>(&self, future: F) -> ScopedFuture<F> {
        ScopedFuture {
            scope: self.clone(),
            future: Box::pin(future),
        }
    }

    /// Whether this scope is open on the current thread.
    ///
    /// ```
    /// # use borrowstore::LivenessScope;
    /// let scope = LivenessScope::new();
    /// assert!(scope.open(|| scope.is_open()));
    /// ```
    pub fn is_open(&self) -> bool {
        let me = self.addr();
        manager::with_stack(|s| s.iter().any(|m| manager::addr(m) == me))
    }

    /// Takes one more reference on the object `handle` names: the scope
    /// becomes (one more time) one of its owners. A scope that manages an
    /// object twice holds two references.
    ///
    /// [`Error::KeyNotFound`] if the object is gone.
    ///
    /// ```
    /// # use borrowstore::{LivenessScope, Proxy, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-scope-manage");
    /// let p = store.proxy(1u8)?;                      // plain: no owner yet
    /// let scope = LivenessScope::new();
    /// scope.manage(&p)?;
    /// scope.release()?;                               // its only owner is gone
    /// assert!(!store.exists(Proxy::key(&p))?);
    /// # Ok(()) }
    /// ```
    pub fn manage<P: ObjectRef + ?Sized>(&self, handle: &P) -> Result<()> {
        self.inner.manage(P::store(handle), P::key(handle))
    }

    /// Gives back one reference on the object `handle` names; returns
    /// whether the scope held one (unmanaging what is not managed does
    /// nothing). If that was the object's last owner, it is evicted (once
    /// its borrows end). Never blocks on the network.
    ///
    /// ```
    /// # use borrowstore::{LivenessScope, Proxy, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-scope-unmanage");
    /// let scope = LivenessScope::new();
    /// let p = scope.open(|| store.proxy(1u8))?;
    /// scope.manage(&p)?;                              // two references
    /// assert!(scope.unmanage(&p));
    /// assert!(store.exists(Proxy::key(&p))?);
    /// assert!(scope.unmanage(&p));                    // the last one: evicted
    /// assert!(!store.exists(Proxy::key(&p))?);
    /// assert!(!scope.unmanage(&p));                   // no-op
    /// # Ok(()) }
    /// ```
    pub fn unmanage<P: ObjectRef + ?Sized>(&self, handle: &P) -> bool {
        self.inner.unmanage(P::store(handle), P::key(handle))
    }

    /// Hands the object `handle` names to the enclosing scope, so that it
    /// outlives this scope's release. This scope must be the innermost one
    /// open on this thread.
    ///
    /// - **An enclosing scope is open** (the next outer scope on this
    ///   thread): it takes a reference, then this scope gives one of its
    ///   own back (if it has one).
    /// - **No scope encloses this one** (it is the outermost, as in a
    ///   [`liveness_scope`] called at top level): the object is handed on
    ///   as an object without an owner, as Deephaven's base scope takes
    ///   it. This scope gives back *every* reference it holds on the object
    ///   (nothing takes them over, and one left behind would evict the
    ///   object at release), and:
    ///   - if the object has other owners — its [`OwnedProxy`](crate::OwnedProxy),
    ///     another scope that manages it, a lifetime that holds it, in any
    ///     process — they keep it by the usual rule: it is evicted when the
    ///     last of them lets go and its last borrow ends;
    ///   - if this scope was its only owner, it becomes what a plain
    ///     [`Store::put`](crate::Store::put) makes: an object without an
    ///     owner, which persists until evicted explicitly
    ///     ([`Store::evict`](crate::Store::evict), or an ephemeral resolve).
    ///     An owner it gets later owns it by the usual rule.
    ///
    ///   Which case applies is decided store-side, in one step, when this
    ///   scope's last reference goes.
    ///
    /// Errors: [`Error::NotInnermostScope`] when this scope is not the
    /// innermost scope open on this thread (nothing changed);
    /// [`Error::KeyNotFound`] when the object is gone.
    /// ([`Error::NoEnclosingScope`] is no longer returned.)
    ///
    /// In the outermost scope:
    ///
    /// ```
    /// # use borrowstore::{Error, LivenessScope, Proxy, Store, liveness_scope};
    /// # fn main() -> Result<(), Error> {
    /// let store = Store::memory("doc-scope-preserve-outermost");
    /// let out = liveness_scope(|s| {
    ///     let tmp = store.proxy(vec![1u64, 2, 3])?;   // evicted at the end
    ///     let out = store.proxy(tmp.iter().sum::<u64>())?;
    ///     s.preserve(&out)?;                          // no owner: lives on
    ///     Ok::<_, Error>(out)
    /// })??;
    /// assert_eq!(*out, 6);
    /// assert_eq!(store.keys()?, vec![*Proxy::key(&out)]);
    /// store.evict(Proxy::key(&out))?;                 // until evicted
    /// # Ok(()) }
    /// ```
    ///
    /// Into an enclosing scope:
    ///
    /// ```
    /// # use borrowstore::{Error, LivenessScope, Proxy, Store};
    /// # fn main() -> Result<(), Error> {
    /// let store = Store::memory("doc-scope-preserve");
    /// let (outer, inner) = (LivenessScope::new(), LivenessScope::new());
    /// let p = outer.open(|| {
    ///     inner.open(|| -> Result<_, Error> {
    ///         let p = store.proxy(1u8)?;
    ///         assert!(matches!(outer.preserve(&p), Err(Error::NotInnermostScope)));
    ///         inner.preserve(&p)?;
    ///         Ok(p)
    ///     })
    /// })?;
    /// assert_eq!((inner.references(&p), outer.references(&p)), (0, 1));
    /// inner.release()?;
    /// assert!(store.exists(Proxy::key(&p))?);
    /// # Ok(()) }
    /// ```
    pub fn preserve<P: ObjectRef + ?Sized>(&self, handle: &P) -> Result<()> {
        let (store, key) = (P::store(handle), P::key(handle));
        let me = self.addr();
        let outer = manager::with_stack(|s| match s {
            [.., top] if manager::addr(top) != me => Err(Error::NotInnermostScope),
            [] => Err(Error::NotInnermostScope),
            [.., outer, _] => Ok(Some(outer.clone())),
            [_] => Ok(None),
        })?;
        let Some(outer) = outer else {
            return self.inner.disown(store, key);
        };
        if let Some(claim) = outer.claim_for(store, key) {
            store
                .connector()
                .apply(&key, crate::state::Op::Acquire(claim))?;
            outer.adopt(store, key, claim)?;
        }
        self.inner.unmanage(store, key);
        Ok(())
    }

    /// Gives back every reference the scope holds, and waits until the
    /// stores have applied that: objects that nothing else owns are evicted
    /// (once their borrows end). Releasing is a loop over the scope's
    /// table, never recursive: any number of objects releases in constant
    /// stack. The scope is empty afterwards and may be used again.
    ///
    /// Fails only if a store cannot confirm the releases
    /// ([`Error::Connector`]); they stay queued.
    ///
    /// ```
    /// # use borrowstore::{LivenessScope, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-scope-release");
    /// let scope = LivenessScope::new();
    /// let keys = scope.open(|| store.put_batch(&[1u8, 2, 3]))?;
    /// scope.release()?;
    /// assert!(scope.is_empty());
    /// assert_eq!(store.exists_batch(&keys)?, vec![false; 3]);
    /// # Ok(()) }
    /// ```
    pub fn release(&self) -> Result<()> {
        self.inner.release(true)
    }

    /// How many references this scope holds on the object `handle` names.
    ///
    /// ```
    /// # use borrowstore::{LivenessScope, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-scope-references");
    /// let scope = LivenessScope::new();
    /// let owner = store.owned_proxy(1u8)?;
    /// assert_eq!(scope.references(&owner), 0);
    /// scope.manage(&owner)?;
    /// scope.manage(&owner)?;
    /// assert_eq!(scope.references(&owner), 2);
    /// # Ok(()) }
    /// ```
    pub fn references<P: ObjectRef + ?Sized>(&self, handle: &P) -> usize {
        self.inner.references(P::store(handle), P::key(handle))
    }

    /// Number of distinct objects the scope manages.
    ///
    /// ```
    /// # use borrowstore::{LivenessScope, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-scope-len");
    /// let scope = LivenessScope::new();
    /// scope.open(|| store.put_batch(&[1u8, 2]))?;
    /// assert_eq!(scope.len(), 2);
    /// # Ok(()) }
    /// ```
    pub fn len(&self) -> usize {
        self.inner.counts().0
    }

    /// Whether the scope manages nothing.
    ///
    /// ```
    /// # use borrowstore::LivenessScope;
    /// assert!(LivenessScope::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys of the objects the scope manages (in no particular order).
    ///
    /// ```
    /// # use borrowstore::{LivenessScope, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-scope-keys");
    /// let scope = LivenessScope::new();
    /// let k = scope.open(|| store.put(&1u8))?;
    /// assert_eq!(scope.keys(), vec![k]);
    /// # Ok(()) }
    /// ```
    pub fn keys(&self) -> Vec<crate::Key> {
        self.inner.keys()
    }

    /// Whether two handles are the same scope.
    ///
    /// ```
    /// # use borrowstore::LivenessScope;
    /// let a = LivenessScope::new();
    /// assert!(a.same_scope(&a.clone()) && !a.same_scope(&LivenessScope::new()));
    /// ```
    pub fn same_scope(&self, other: &LivenessScope) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl fmt::Debug for LivenessScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (objects, references) = self.inner.counts();
        f.debug_struct("LivenessScope")
            .field("objects", &objects)
            .field("references", &references)
            .finish()
    }
}

/// A future with a scope open during each of its polls; see
/// [`LivenessScope::open_async`].
///
/// ```
/// # use borrowstore::{LivenessScope, ScopedFuture, Store};
/// let scope = LivenessScope::new();
/// let fut: ScopedFuture<_> = scope.open_async(async { 1 + 1 });
/// assert_eq!(futures::executor::block_on(fut), 2);
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct ScopedFuture<F> {
    scope: LivenessScope,
    future: Pin<Box<F>>,
}

impl<F: Future> Future for ScopedFuture<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let _guard = manager::push(this.scope.as_manager());
        this.future.as_mut().poll(cx)
    }
}

impl<F> fmt::Debug for ScopedFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedFuture")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Runs `f` in a new scope, open for its duration, then releases the scope
/// — on return, on error, and on panic (the panic then goes on). Returns
/// what `f` returned, or the release's error.
///
/// Objects `f` creates are evicted at the end unless something else owns
/// them or they are [preserved](LivenessScope::preserve): into the
/// enclosing scope if one is open, else as objects without an owner, which
/// outlive the call (Deephaven's `with liveness_scope() as scope: …;
/// scope.preserve(t); return t`).
///
/// ```
/// use borrowstore::{Error, Store, liveness_scope};
/// # fn main() -> Result<(), Error> {
/// let store = Store::memory("doc-liveness-scope-fn");
/// let (tmp, total) = liveness_scope(|_s| -> Result<_, Error> {
///     let parts = store.proxy(vec![1u64, 2, 3])?;  // managed: evicted at the end
///     let total: u64 = parts.iter().sum();
///     Ok((*borrowstore::Proxy::key(&parts), total))
/// })??;
/// assert_eq!(total, 6);
/// assert!(!store.exists(&tmp)?);
/// # Ok(()) }
/// ```
pub fn liveness_scope<R>(f: impl FnOnce(&LivenessScope) -> R) -> Result<R> {
    /// Releases the scope if `f` unwinds (without waiting on the network);
    /// after a normal return the scope is already empty.
    struct OnUnwind<'a>(&'a LivenessScope);
    impl Drop for OnUnwind<'_> {
        fn drop(&mut self) {
            let _ = self.0.inner.release(false);
        }
    }

    let scope = LivenessScope::new();
    let _on_unwind = OnUnwind(&scope);
    let value = scope.open(|| f(&scope));
    scope.release()?;
    Ok(value)
}
