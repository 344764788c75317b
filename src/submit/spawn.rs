//! Executors: the [`Spawn`] and [`SpawnBlocking`] traits, their
//! implementations, and [`ChannelJoin`] for executors without a join handle.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::oneshot;
use futures::future::{AbortHandle, Abortable};

use crate::error::{Error, Result};

/// An executor's handle on one spawned task: a future of the task's output,
/// or of why there is none ([`Error::TaskCancelled`],
/// [`Error::TaskPanicked`]).
///
/// What dropping it does is the executor's choice (tokio detaches the task;
/// [`ChannelJoin`] with [`ChannelJoin::abort_on_drop`] cancels it); document
/// it on your implementation.
pub trait TaskJoin<T>: Future<Output = Result<T>> + Send + Unpin {
    /// Asks the executor to cancel the task. The future still resolves, to
    /// [`Error::TaskCancelled`] if the task was cancelled before it finished.
    /// The default does nothing: the executor cannot cancel.
    ///
    /// ```
    /// use borrowstore::Error;
    /// use borrowstore::submit::{Spawn, TaskJoin};
    /// let pool = futures::executor::ThreadPool::new().unwrap();
    /// let join = Spawn::spawn(&pool, futures::future::pending::<()>());
    /// join.abort();
    /// assert!(matches!(futures::executor::block_on(join), Err(Error::TaskCancelled { .. })));
    /// ```
    fn abort(&self) {}
}

/// An executor of async tasks, for [`submit`](super::submit).
///
/// Implemented for tokio's [`Handle`](tokio::runtime::Handle) and
/// [`Runtime`](tokio::runtime::Runtime), and for
/// [`futures::executor::ThreadPool`]. For another executor, spawn the
/// future and return its join handle — or, if it has none, a
/// [`ChannelJoin`]:
///
/// ```
/// use std::future::Future;
/// use borrowstore::submit::{ChannelJoin, Spawn};
///
/// /// Runs every task on a thread of its own.
/// struct ThreadPerTask;
///
/// impl Spawn for ThreadPerTask {
///     type Join<T: Send + 'static> = ChannelJoin<T>;
///
///     fn spawn<F>(&self, task: F) -> ChannelJoin<F::Output>
///     where
///         F: Future + Send + 'static,
///         F::Output: Send + 'static,
///     {
///         let (tx, join) = ChannelJoin::pair();
///         std::thread::spawn(move || tx.send(futures::executor::block_on(task)));
///         join
///     }
/// }
///
/// let store = borrowstore::Store::memory("doc-spawn");
/// let owner = store.owned_proxy(vec![1u64, 2])?;
/// let h = borrowstore::submit::submit(&ThreadPerTask, borrowstore::borrow(&owner)?, |r| async move {
///     r.len()
/// });
/// assert_eq!(h.join()?, 2);
/// # Ok::<(), borrowstore::Error>(())
/// ```
///
/// `submit` catches the task's panics itself and ends its borrows when the
/// task's future is dropped, so an implementation only has to run the
/// future (or drop it) and report its output.
pub trait Spawn {
    /// The executor's handle on a task with output `T`.
    type Join<T: Send + 'static>: TaskJoin<T>;

    /// Starts running `task`.
    ///
    /// ```
    /// use borrowstore::submit::Spawn;
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let join = Spawn::spawn(runtime.handle(), async { 6 * 7 });
    /// assert_eq!(runtime.block_on(join).unwrap(), 42);
    /// ```
    fn spawn<F>(&self, task: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;
}

/// An executor of blocking work, for [`submit_blocking`](super::submit_blocking).
///
/// Implemented for tokio's [`Handle`](tokio::runtime::Handle) and
/// [`Runtime`](tokio::runtime::Runtime) (`spawn_blocking`), rayon's
/// `ThreadPool` (feature `rayon`), and [`StdThreads`] (a new thread per
/// task).
pub trait SpawnBlocking {
    /// The executor's handle on a task with output `T`.
    type Join<T: Send + 'static>: TaskJoin<T>;

    /// Starts running `task`.
    ///
    /// ```
    /// use borrowstore::submit::{SpawnBlocking, StdThreads};
    /// let join = StdThreads.spawn_blocking(|| std::thread::current().name().map(str::to_owned));
    /// let name = futures::executor::block_on(join).unwrap();
    /// assert_eq!(name.as_deref(), Some("borrowstore-task"));
    /// ```
    fn spawn_blocking<F, T>(&self, task: F) -> Self::Join<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static;
}

impl<S: Spawn + ?Sized> Spawn for &S {
    type Join<T: Send + 'static> = S::Join<T>;

    fn spawn<F>(&self, task: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        (**self).spawn(task)
    }
}

impl<S: SpawnBlocking + ?Sized> SpawnBlocking for &S {
    type Join<T: Send + 'static> = S::Join<T>;

    fn spawn_blocking<F, T>(&self, task: F) -> Self::Join<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        (**self).spawn_blocking(task)
    }
}

impl<S: Spawn + ?Sized> Spawn for std::sync::Arc<S> {
    type Join<T: Send + 'static> = S::Join<T>;

    fn spawn<F>(&self, task: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        (**self).spawn(task)
    }
}

impl<S: SpawnBlocking + ?Sized> SpawnBlocking for std::sync::Arc<S> {
    type Join<T: Send + 'static> = S::Join<T>;

    fn spawn_blocking<F, T>(&self, task: F) -> Self::Join<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        (**self).spawn_blocking(task)
    }
}

// ------------------------------------------------------------------ tokio

/// tokio's join handle as a [`TaskJoin`]. Dropping it detaches the task
/// (tokio's semantics); [`TaskJoin::abort`] cancels it.
#[derive(Debug)]
pub struct TokioJoin<T>(tokio::task::JoinHandle<T>);

impl<T> TokioJoin<T> {
    /// The tokio handle inside.
    ///
    /// ```
    /// use borrowstore::submit::Spawn;
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let handle: tokio::task::JoinHandle<u8> = Spawn::spawn(runtime.handle(), async { 1 }).into_inner();
    /// assert_eq!(runtime.block_on(handle).unwrap(), 1);
    /// ```
    pub fn into_inner(self) -> tokio::task::JoinHandle<T> {
        self.0
    }
}

impl<T: Send> Future for TokioJoin<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        Pin::new(&mut self.0).poll(cx).map(|r| {
            r.map_err(|e| {
                if e.is_panic() {
                    Error::TaskPanicked {
                        message: super::task::panic_message(&*e.into_panic()),
                    }
                } else {
                    Error::TaskCancelled {
                        reason: "the tokio task was aborted, or its runtime shut down".to_owned(),
                    }
                }
            })
        })
    }
}

impl<T: Send> TaskJoin<T> for TokioJoin<T> {
    fn abort(&self) {
        self.0.abort();
    }
}

/// `tokio::spawn` on this runtime. Dropping the handle detaches the task;
/// [`Submitted::abort`](super::Submitted::abort) cancels it at its next
/// `.await`; a runtime that shuts down drops it.
impl Spawn for tokio::runtime::Handle {
    type Join<T: Send + 'static> = TokioJoin<T>;

    fn spawn<F>(&self, task: F) -> TokioJoin<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        TokioJoin(tokio::runtime::Handle::spawn(self, task))
    }
}

/// As for [`Handle`](tokio::runtime::Handle).
impl Spawn for tokio::runtime::Runtime {
    type Join<T: Send + 'static> = TokioJoin<T>;

    fn spawn<F>(&self, task: F) -> TokioJoin<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        TokioJoin(tokio::runtime::Runtime::spawn(self, task))
    }
}

/// `spawn_blocking` on this runtime. Dropping the handle detaches the task;
/// [`Submitted::abort`](super::Submitted::abort) cancels it only if it has
/// not started (running blocking code cannot be interrupted); a runtime
/// that shuts down drops the tasks that have not started.
impl SpawnBlocking for tokio::runtime::Handle {
    type Join<T: Send + 'static> = TokioJoin<T>;

    fn spawn_blocking<F, T>(&self, task: F) -> TokioJoin<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        TokioJoin(tokio::runtime::Handle::spawn_blocking(self, task))
    }
}

/// As for [`Handle`](tokio::runtime::Handle).
impl SpawnBlocking for tokio::runtime::Runtime {
    type Join<T: Send + 'static> = TokioJoin<T>;

    fn spawn_blocking<F, T>(&self, task: F) -> TokioJoin<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        TokioJoin(tokio::runtime::Runtime::spawn_blocking(self, task))
    }
}

// ----------------------------------------------------- channel-based join

/// Sends a task's output to its [`ChannelJoin`].
#[derive(Debug)]
pub struct JoinSender<T>(oneshot::Sender<T>);

impl<T> JoinSender<T> {
    /// Reports the task's output. Dropping the sender instead reports
    /// [`Error::TaskCancelled`].
    ///
    /// ```
    /// use borrowstore::Error;
    /// use borrowstore::submit::ChannelJoin;
    /// let (tx, join) = ChannelJoin::pair();
    /// tx.send("done");
    /// assert_eq!(futures::executor::block_on(join).unwrap(), "done");
    ///
    /// let (tx, join) = ChannelJoin::<u8>::pair();
    /// drop(tx);                                          // the task never reported
    /// assert!(matches!(futures::executor::block_on(join), Err(Error::TaskCancelled { .. })));
    /// ```
    pub fn send(self, output: T) {
        let _ = self.0.send(output);
    }
}

/// A [`TaskJoin`] for executors without a join handle: the task sends its
/// output through a [`JoinSender`]; a task dropped without sending (a pool
/// that drops its queue, a thread that could not start) reads as
/// [`Error::TaskCancelled`].
#[derive(Debug)]
pub struct ChannelJoin<T> {
    rx: Option<oneshot::Receiver<T>>,
    failed: Option<Error>,
    abort: Option<AbortHandle>,
    abort_on_drop: bool,
}

impl<T> ChannelJoin<T> {
    /// A sender for the task, and the join handle that receives its output.
    ///
    /// ```
    /// use borrowstore::submit::ChannelJoin;
    /// let (tx, join) = ChannelJoin::pair();
    /// std::thread::spawn(move || tx.send(2 + 2));
    /// assert_eq!(futures::executor::block_on(join).unwrap(), 4);
    /// ```
    pub fn pair() -> (JoinSender<T>, ChannelJoin<T>) {
        let (tx, rx) = oneshot::channel();
        (
            JoinSender(tx),
            ChannelJoin {
                rx: Some(rx),
                failed: None,
                abort: None,
                abort_on_drop: false,
            },
        )
    }

    /// A handle on a task that could not be started: resolves to `error`.
    ///
    /// ```
    /// use borrowstore::Error;
    /// use borrowstore::submit::ChannelJoin;
    /// let join = ChannelJoin::<u8>::failed(Error::TaskCancelled { reason: "pool is full".into() });
    /// assert!(matches!(futures::executor::block_on(join), Err(Error::TaskCancelled { .. })));
    /// ```
    pub fn failed(error: Error) -> ChannelJoin<T> {
        ChannelJoin {
            rx: None,
            failed: Some(error),
            abort: None,
            abort_on_drop: false,
        }
    }

    /// Makes [`TaskJoin::abort`] use `handle` (from
    /// [`futures::future::abortable`] around the task).
    ///
    /// ```
    /// use borrowstore::Error;
    /// use borrowstore::submit::{ChannelJoin, TaskJoin};
    /// let (tx, join) = ChannelJoin::<()>::pair();
    /// let (task, handle) = futures::future::abortable(futures::future::pending::<()>());
    /// let join = join.with_abort(handle);
    /// std::thread::spawn(move || {
    ///     if let Ok(out) = futures::executor::block_on(task) {
    ///         tx.send(out);
    ///     }
    /// });
    /// join.abort();
    /// assert!(matches!(futures::executor::block_on(join), Err(Error::TaskCancelled { .. })));
    /// ```
    pub fn with_abort(mut self, handle: AbortHandle) -> Self {
        self.abort = Some(handle);
        self
    }

    /// Makes dropping this handle abort the task (see
    /// [`with_abort`](Self::with_abort)).
    ///
    /// ```
    /// use borrowstore::submit::ChannelJoin;
    /// let (_tx, join) = ChannelJoin::<()>::pair();
    /// let (task, handle) = futures::future::abortable(futures::future::pending::<()>());
    /// drop(join.with_abort(handle.clone()).abort_on_drop());
    /// assert!(handle.is_aborted());
    /// assert!(futures::executor::block_on(task).is_err()); // the task stops
    /// ```
    pub fn abort_on_drop(mut self) -> Self {
        self.abort_on_drop = true;
        self
    }
}

impl<T> Drop for ChannelJoin<T> {
    fn drop(&mut self) {
        if self.abort_on_drop
            && let Some(a) = &self.abort
        {
            a.abort();
        }
    }
}

impl<T: Send> Future for ChannelJoin<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = &mut *self;
        match &mut this.rx {
            Some(rx) => Pin::new(rx).poll(cx).map(|r| {
                this.rx = None;
                r.map_err(|_| Error::TaskCancelled {
                    reason: if this.abort.as_ref().is_some_and(AbortHandle::is_aborted) {
                        "the task was aborted".to_owned()
                    } else {
                        "the executor dropped the task before it finished".to_owned()
                    },
                })
            }),
            None => Poll::Ready(Err(this.failed.take().unwrap_or_else(|| {
                Error::TaskCancelled {
                    reason: "the task's handle was polled after it resolved".to_owned(),
                }
            }))),
        }
    }
}

impl<T: Send> TaskJoin<T> for ChannelJoin<T> {
    fn abort(&self) {
        if let Some(a) = &self.abort {
            a.abort();
        }
    }
}

// ------------------------------------------------- futures::ThreadPool

/// `spawn_ok` on the pool. Dropping the handle **cancels** the task (as
/// dropping the `RemoteHandle` of `spawn_with_handle` does), at its next
/// `.await`; so does [`Submitted::abort`](super::Submitted::abort). Dropping
/// the pool does not stop its tasks: every task keeps the pool alive until
/// it finishes.
impl Spawn for futures::executor::ThreadPool {
    type Join<T: Send + 'static> = ChannelJoin<T>;

    fn spawn<F>(&self, task: F) -> ChannelJoin<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, join) = ChannelJoin::pair();
        let (abort, registration) = AbortHandle::new_pair();
        let task = Abortable::new(task, registration);
        self.spawn_ok(async move {
            if let Ok(out) = task.await {
                tx.send(out);
            }
        });
        join.with_abort(abort).abort_on_drop()
    }
}

// ------------------------------------------------------------- std threads

/// Runs each blocking task on a new `std` thread.
///
/// Dropping the handle detaches the thread; a running thread cannot be
/// cancelled ([`Submitted::abort`](super::Submitted::abort) does nothing).
/// There is no runtime to shut down: threads still running when the process
/// exits simply stop, and on file and Redis stores their claims expire
/// with their leases. A thread that cannot be started resolves the handle
/// to the spawn error, with the task's borrows ended.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdThreads;

impl SpawnBlocking for StdThreads {
    type Join<T: Send + 'static> = ChannelJoin<T>;

    fn spawn_blocking<F, T>(&self, task: F) -> ChannelJoin<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, join) = ChannelJoin::pair();
        let spawned = std::thread::Builder::new()
            .name("borrowstore-task".to_owned())
            .spawn(move || tx.send(task()));
        match spawned {
            Ok(_) => join,
            Err(e) => ChannelJoin::failed(Error::TaskCancelled {
                reason: format!("cannot start a thread: {e}"),
            }),
        }
    }
}

// -------------------------------------------------------------------- rayon

/// `spawn` on the pool. Dropping the handle detaches the task; it cannot be
/// cancelled ([`Submitted::abort`](super::Submitted::abort) does nothing).
/// Dropping the pool lets the tasks already spawned run to the end first
/// (rayon keeps the pool's threads until they have).
#[cfg(feature = "rayon")]
impl SpawnBlocking for rayon::ThreadPool {
    type Join<T: Send + 'static> = ChannelJoin<T>;

    fn spawn_blocking<F, T>(&self, task: F) -> ChannelJoin<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, join) = ChannelJoin::pair();
        rayon::ThreadPool::spawn(self, move || tx.send(task()));
        join
    }
}
