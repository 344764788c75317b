//! Executor wrappers that end a task's borrows when it completes.
//!
//! [`submit`] runs an async task on an executor, [`submit_blocking`] runs
//! blocking work on a thread pool. Either takes the task's arguments
//! ([`TaskArgs`]: borrows, owners, proxies, plain values, and containers of
//! them) and returns a [`Submitted`] handle. The borrows among the
//! arguments are tied to the task: they end **store-side** when the task
//! completes, returns an error, panics or is cancelled — and before the
//! handle resolves.
//!
//! ```
//! use borrowstore::{Store, borrow, mut_borrow};
//! use borrowstore::submit::{StdThreads, submit, submit_blocking};
//! # fn main() -> Result<(), borrowstore::Error> {
//! let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
//! let store = Store::memory("doc-submit");
//! let owner = store.owned_proxy(vec![1u64, 2, 3])?;
//!
//! let r = borrow(&owner)?;
//! let h = submit(runtime.handle(), r, |r| async move { r.iter().sum::<u64>() });
//! let total = runtime.block_on(h)?;
//! assert_eq!(total, 6);
//! assert!(mut_borrow(&owner).is_ok()); // the task's borrow has ended
//!
//! let (a, b) = (store.owned_proxy(vec![1u8])?, store.owned_proxy(vec![2u8, 3])?);
//! let n = submit_blocking(&StdThreads, (borrow(&a)?, borrow(&b)?), |(a, b)| a.len() + b.len()).join()?;
//! assert_eq!(n, 3);
//! # Ok(()) }
//! ```
//!
//! # How borrows end
//!
//! Every borrow found in the arguments gets a guard shared with the task.
//! Whichever comes first ends the claim, exactly once: the borrow's own drop
//! inside the task, or the end of the task. When the task's future (or
//! closure) finishes — normally, with an error, or by a panic, which
//! `submit` catches — it ends every borrow that is still held and waits for
//! the stores' queued releases ([`Store::flush_async`](crate::Store::flush_async)); only then does it
//! report its output. When the executor drops the task instead (abort,
//! runtime shutdown, a task that never started), the task's drop ends the
//! borrows, and the handle waits for the releases before it resolves to
//! [`Error::TaskCancelled`].
//!
//! A borrow that escapes the task — `mem::forget`, moved into a global,
//! returned as part of the output — is ended all the same: its claim is
//! released, and the handle refuses to be read from then on
//! ([`Error::ClaimLost`] from `RefProxy::resolve`; `Deref` panics with that
//! message). It is never read stale and never released twice. An escaped
//! mutable borrow's unpublished changes are discarded, and it refuses to
//! publish after the task (another writer may hold the object by then).
//!
//! An [`OwnedProxy`](crate::OwnedProxy) moves into the task with its
//! arguments, and one returned by the task moves back to the submitter
//! through the handle, exactly once: it is an ordinary Rust value.
//!
//! Panics become [`Error::TaskPanicked`] with the panic's message; the
//! panic does not unwind into the caller.
//!
//! # Scopes
//!
//! A task submitted while a [`LivenessScope`](crate::LivenessScope) is open
//! on the submitting thread (or in the submitting task, through
//! [`open_async`](crate::LivenessScope::open_async)) runs inside that
//! scope: `submit` takes the scopes open at the call along, and makes them
//! current around every poll of the task's future ([`submit`]) or around
//! the closure ([`submit_blocking`]), on whichever thread runs it. Objects
//! the task creates are managed by the innermost of them, exactly as if it
//! had run inside [`LivenessScope::open`](crate::LivenessScope::open); the
//! task can [`preserve`](crate::LivenessScope::preserve) into the enclosing
//! ones, and a task it submits in turn carries them on. The task runs in
//! those scopes only: a scope that happens to be open on the thread that
//! polls it (a current-thread runtime driven from inside `scope.open`) is
//! set aside meanwhile, and a task submitted where no scope is open manages
//! nothing.
//!
//! ```
//! use borrowstore::{LivenessScope, Proxy, Store};
//! use borrowstore::submit::{Plain, submit};
//! # fn main() -> Result<(), borrowstore::Error> {
//! let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
//! let store = Store::memory("doc-submit-scope");
//! let scope = LivenessScope::new();
//! let h = scope.open(|| {
//!     submit(runtime.handle(), Plain(store.clone()), |s| async move { s.proxy(vec![0u8; 64]) })
//! });
//! let tmp = runtime.block_on(h)??;       // made on a worker thread, managed by `scope`
//! scope.release()?;
//! assert!(!store.exists(Proxy::key(&tmp))?);
//! # Ok(()) }
//! ```
//!
//! Work started with the executor's own spawn — a bare `tokio::spawn`,
//! `std::thread::spawn`, `rayon::spawn` — is not in the scope: the scope
//! stack belongs to a thread (or, with `open_async`, to one future), the
//! executor knows nothing of it, and only `submit` knows to carry it. What
//! such work creates is unmanaged (plain objects persist until evicted)
//! unless the work opens a scope itself (`scope.open_async(fut)` before
//! spawning `fut`, or `scope.open(..)` in the thread).
//!
//! # Executors and what cancelling does
//!
//! | executor | trait | dropping the [`Submitted`] handle | [`Submitted::abort`] | executor shut down |
//! |---|---|---|---|---|
//! | tokio [`Handle`](tokio::runtime::Handle) / [`Runtime`](tokio::runtime::Runtime) | [`Spawn`] | detaches: the task runs on, and ends its borrows when it finishes | cancels at the task's next `.await` | the runtime drops the task: borrows ended, handle resolves to [`Error::TaskCancelled`] |
//! | tokio, `spawn_blocking` | [`SpawnBlocking`] | detaches | cancels only a task that has not started | tasks not started are dropped (as above); running ones finish |
//! | [`futures::executor::ThreadPool`] | [`Spawn`] | **cancels** at the task's next `.await` (like `RemoteHandle`) | cancels at the next `.await` | dropping the pool stops nothing: each task keeps it alive until it finishes |
//! | rayon `ThreadPool` (feature `rayon`) | [`SpawnBlocking`] | detaches | not possible (does nothing) | dropping the pool lets spawned tasks finish first |
//! | [`StdThreads`] | [`SpawnBlocking`] | detaches | not possible (does nothing) | no runtime; a thread that cannot start resolves to [`Error::TaskCancelled`] |
//!
//! A detached task still ends its borrows when it finishes; nobody waits
//! for their releases, which are applied in order as always.
//!
//! Other executors implement [`Spawn`] or [`SpawnBlocking`] in a few lines
//! (see [`Spawn`]'s example, and [`ChannelJoin`] for executors without a
//! join handle).
//!
//! # Tasks in other processes
//!
//! [`remote`] sends a task's arguments to another process as serializable
//! views: the submitting side keeps the borrows until the task's reply
//! arrives (or its worker is known to be gone), then ends them and waits
//! for their release before it hands the result back.

#[cfg(feature = "apalis")]
pub mod apalis;
mod args;
mod few;
mod lists;
pub mod remote;
mod run;
mod spawn;
mod task;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;

pub use args::{ArgsVisitor, BorrowInfo, Plain, TaskArgs, task_borrows};
pub use spawn::{ChannelJoin, JoinSender, Spawn, SpawnBlocking, StdThreads, TaskJoin, TokioJoin};

use crate::error::{Error, Result};
use crate::store::manager;
use run::Run;
use task::{Ender, TaskState, settle};

/// Runs the async task `f(args)` on `spawner`; the borrows in `args` end
/// store-side when the task ends, before the returned handle resolves.
///
/// `.await` the handle (or [`Submitted::join`] it from synchronous code) for
/// the task's output; [`Error::TaskPanicked`] if it panicked,
/// [`Error::TaskCancelled`] if it was cancelled. What dropping the handle
/// does depends on the executor: see the [module docs](self).
///
/// ```
/// use borrowstore::{Store, borrow};
/// use borrowstore::submit::submit;
/// # fn main() -> Result<(), borrowstore::Error> {
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let store = Store::memory("doc-submit-fn");
/// let owner = store.owned_proxy(String::from("hello"))?;
/// let h = submit(runtime.handle(), borrow(&owner)?, |s| async move { s.len() });
/// assert_eq!(runtime.block_on(h)?, 5);
/// let info = store.inspect(borrowstore::OwnedProxy::key(&owner))?.unwrap();
/// assert_eq!(info.readers, 0);
/// # Ok(()) }
/// ```
pub fn submit<S, A, F, Fut>(
    spawner: &S,
    mut args: A,
    f: F,
) -> Submitted<Fut::Output, S::Join<Result<Fut::Output>>>
where
    S: Spawn + ?Sized,
    A: TaskArgs,
    F: FnOnce(A) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let task = TaskState::enlist(&mut args);
    let ender = Ender(task.clone());
    let join = spawner.spawn(Run::new(f, args, manager::carry(), ender));
    Submitted::new(join, task)
}

/// Runs the blocking work `f(args)` on `pool`; the borrows in `args` end
/// store-side when it returns or panics, before the returned handle
/// resolves.
///
/// [`Submitted::join`] waits for the output, blocking the thread; or
/// `.await` the handle. See the [module docs](self) for each pool's cancel
/// semantics.
///
/// ```
/// use borrowstore::{Store, borrow};
/// use borrowstore::submit::{StdThreads, submit_blocking};
/// # fn main() -> Result<(), borrowstore::Error> {
/// let store = Store::memory("doc-submit-blocking");
/// let (a, b) = (store.owned_proxy(vec![1u8])?, store.owned_proxy(vec![2u8, 3])?);
/// let n = submit_blocking(&StdThreads, (borrow(&a)?, borrow(&b)?), |(a, b)| a.len() + b.len())
///     .join()?;
/// assert_eq!(n, 3);
/// # Ok(()) }
/// ```
pub fn submit_blocking<S, A, F, T>(pool: &S, mut args: A, f: F) -> Submitted<T, S::Join<Result<T>>>
where
    S: SpawnBlocking + ?Sized,
    A: TaskArgs,
    F: FnOnce(A) -> T + Send + 'static,
    T: Send + 'static,
{
    let task = TaskState::enlist(&mut args);
    let ender = Ender(task.clone());
    let mut scopes = manager::carry();
    let join = pool.spawn_blocking(move || {
        let ender = ender;
        let out = scopes.enter(|| std::panic::catch_unwind(AssertUnwindSafe(move || f(args))));
        let state = &ender.0;
        let flushed = if state.is_empty() {
            Ok(())
        } else {
            state.end_borrows();
            state.flush_blocking()
        };
        settle(out, flushed)
    });
    Submitted::new(join, task)
}

/// The handle on a submitted task: a future of its output.
///
/// It resolves only after the task's borrows have ended store-side (their
/// queued releases applied), whatever the outcome:
///
/// - `Ok(output)` when the task returned;
/// - [`Error::TaskPanicked`] when it panicked;
/// - [`Error::TaskCancelled`] when it was aborted, dropped by its executor
///   (a runtime shutting down) or never started;
/// - the store's error if waiting for the releases failed.
///
/// # Cancel safety
///
/// Dropping the handle never leaves a borrow held: the task ends its
/// borrows when it finishes or is dropped. Whether dropping the handle
/// cancels the task is the executor's choice — tokio, rayon and
/// [`StdThreads`] detach it, [`futures::executor::ThreadPool`] cancels it;
/// see the [module docs](self). A handle dropped after the task has
/// finished loses only the output.
#[must_use = "a submitted task's output is only reported through its handle"]
pub struct Submitted<T, J> {
    join: J,
    task: TaskState,
    stage: Stage<T>,
}

enum Stage<T> {
    /// Waiting for the executor.
    Joining,
    /// The executor dropped the task: waiting for the releases.
    Ending {
        result: Option<Result<T>>,
        flush: BoxFuture<'static, Result<()>>,
    },
    Done,
}

// `T` is never pinned: it only passes through.
impl<T, J: Unpin> Unpin for Submitted<T, J> {}

impl<T, J> std::fmt::Debug for Submitted<T, J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stage = match self.stage {
            Stage::Joining => "running",
            Stage::Ending { .. } => "ending",
            Stage::Done => "done",
        };
        f.debug_struct("Submitted")
            .field("stage", &stage)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static, J: TaskJoin<Result<T>>> Submitted<T, J> {
    fn new(join: J, task: TaskState) -> Self {
        Submitted {
            join,
            task,
            stage: Stage::Joining,
        }
    }

    /// Asks the executor to cancel the task (what that can do depends on the
    /// executor: see the [module docs](self)). The handle still resolves —
    /// to [`Error::TaskCancelled`] if the task was stopped before it
    /// finished — after its borrows have ended.
    ///
    /// ```
    /// use std::time::Duration;
    /// use borrowstore::{Error, Store, borrow, mut_borrow};
    /// use borrowstore::submit::submit;
    /// # fn main() -> Result<(), Error> {
    /// let runtime = tokio::runtime::Builder::new_multi_thread()
    ///     .worker_threads(1)
    ///     .enable_time()
    ///     .build()
    ///     .unwrap();
    /// let store = Store::memory("doc-submitted-abort");
    /// let owner = store.owned_proxy(1u8)?;
    /// let h = submit(runtime.handle(), borrow(&owner)?, |r| async move {
    ///     tokio::time::sleep(Duration::from_secs(3600)).await;  // cancelled here
    ///     *r
    /// });
    /// h.abort();
    /// assert!(matches!(runtime.block_on(h), Err(Error::TaskCancelled { .. })));
    /// assert!(mut_borrow(&owner).is_ok());               // its borrow has ended
    /// # Ok(()) }
    /// ```
    pub fn abort(&self) {
        self.join.abort();
    }

    /// Waits for the output, blocking this thread. Do not call it from an
    /// async task (`.await` the handle there).
    ///
    /// # Errors
    ///
    /// [`Error::TaskPanicked`] (with the panic's message) if the task
    /// panicked, [`Error::TaskCancelled`] if it was cancelled, and the
    /// store's error if waiting for its releases failed. The task's borrows
    /// have ended in every case.
    ///
    /// ```
    /// use borrowstore::{Error, Store, borrow, mut_borrow};
    /// use borrowstore::submit::{StdThreads, submit_blocking};
    /// # fn main() -> Result<(), Error> {
    /// let store = Store::memory("doc-submitted-join");
    /// let owner = store.owned_proxy(vec![1u64, 2])?;
    /// let n = submit_blocking(&StdThreads, borrow(&owner)?, |r| r.len()).join()?;
    /// assert_eq!(n, 2);
    ///
    /// let failed = submit_blocking(&StdThreads, borrow(&owner)?, |r| {
    ///     assert!(r.is_empty(), "the vector is not empty");
    /// })
    /// .join();
    /// assert!(matches!(failed, Err(Error::TaskPanicked { ref message }) if message.contains("not empty")));
    /// assert!(mut_borrow(&owner).is_ok());               // the panicking task's borrow ended
    /// # Ok(()) }
    /// ```
    pub fn join(self) -> Result<T> {
        futures::executor::block_on(self)
    }
}

impl<T: Send + 'static, J: TaskJoin<Result<T>>> Future for Submitted<T, J> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = &mut *self;
        loop {
            match &mut this.stage {
                Stage::Joining => {
                    let joined = match Pin::new(&mut this.join).poll(cx) {
                        Poll::Ready(j) => j,
                        Poll::Pending => return Poll::Pending,
                    };
                    match joined {
                        // The task ended its borrows and waited for the
                        // releases before it returned.
                        Ok(result) => {
                            this.stage = Stage::Done;
                            return Poll::Ready(result);
                        }
                        // It did not return: whatever dropped it ended its
                        // borrows (again here, for executors that report
                        // before they drop); wait for the releases.
                        Err(e) => {
                            this.task.end_borrows();
                            let task = this.task.clone();
                            this.stage = Stage::Ending {
                                result: Some(Err(e)),
                                flush: Box::pin(async move { task.flush().await }),
                            };
                        }
                    }
                }
                Stage::Ending { result, flush } => {
                    let flushed = match flush.as_mut().poll(cx) {
                        Poll::Ready(f) => f,
                        Poll::Pending => return Poll::Pending,
                    };
                    let result = result.take().unwrap_or_else(|| {
                        Err(Error::TaskCancelled {
                            reason: "lost".to_owned(),
                        })
                    });
                    this.stage = Stage::Done;
                    debug_assert!(this.task.all_ended());
                    return Poll::Ready(match flushed {
                        Ok(()) => result,
                        Err(e) => Err(e),
                    });
                }
                Stage::Done => {
                    return Poll::Ready(Err(Error::TaskCancelled {
                        reason: "the handle was polled after it resolved".to_owned(),
                    }));
                }
            }
        }
    }
}
