//! A submitted task's borrows and stores, and ending them.

use std::any::Any;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ownership::TaskClaim;
use crate::store::Store;
use crate::submit::args::{ArgsVisitor, TaskArgs};
use crate::submit::few::Few;

/// What a task holds: the borrows tied to it, and the stores whose queued
/// releases its handle waits for.
///
/// The task and its handle each keep a copy. The common shapes cost no
/// allocation of their own: no borrow and no store, one store without a
/// borrow (an owner moved in), and one borrow whose store is the only one
/// (the borrow's guard is the whole record).
#[derive(Clone)]
pub(crate) enum TaskState {
    Empty,
    Store(Store),
    One(TaskClaim),
    Many(Arc<Parts>),
}

pub(crate) struct Parts {
    claims: Few<TaskClaim>,
    stores: Few<Store>,
}

impl TaskState {
    /// Ties the borrows in `args` to a new task.
    pub(crate) fn enlist<A: TaskArgs>(args: &mut A) -> TaskState {
        let mut v = ArgsVisitor::enlisting();
        args.visit(&mut v);
        let (claims, stores) = v.into_parts();
        TaskState::of(claims, stores)
    }

    pub(crate) fn from_parts(claims: Vec<TaskClaim>, stores: Vec<Store>) -> TaskState {
        TaskState::of(claims.into(), stores.into())
    }

    fn of(claims: Few<TaskClaim>, stores: Few<Store>) -> TaskState {
        match (claims, stores) {
            (Few::Zero, Few::Zero) => TaskState::Empty,
            (Few::Zero, Few::One(s)) => TaskState::Store(s),
            (Few::One(c), Few::One(s)) if c.store().same_store(&s) => TaskState::One(c),
            (claims, stores) => TaskState::Many(Arc::new(Parts { claims, stores })),
        }
    }

    fn claims(&self) -> &[TaskClaim] {
        match self {
            TaskState::Empty | TaskState::Store(_) => &[],
            TaskState::One(c) => std::slice::from_ref(c),
            TaskState::Many(p) => p.claims.as_slice(),
        }
    }

    fn stores(&self) -> &[Store] {
        match self {
            TaskState::Empty => &[],
            TaskState::Store(s) => std::slice::from_ref(s),
            TaskState::One(c) => std::slice::from_ref(c.store()),
            TaskState::Many(p) => p.stores.as_slice(),
        }
    }

    /// Ends every borrow that is still held: releases it (queued on network
    /// stores) and invalidates its handle, wherever it is. Exactly once per
    /// borrow, whoever else ends it.
    pub(crate) fn end_borrows(&self) {
        for c in self.claims() {
            c.end();
        }
    }

    /// Whether every borrow has ended.
    pub(crate) fn all_ended(&self) -> bool {
        self.claims().iter().all(TaskClaim::is_ended)
    }

    /// Waits, blocking the thread, until every store's queued releases
    /// are applied. Tries every store; reports the first failure.
    pub(crate) fn flush_blocking(&self) -> Result<()> {
        Store::flush_all(self.stores())
    }

    /// [`flush_blocking`](Self::flush_blocking) without blocking the
    /// executor.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future stops the wait, not the releases.
    pub(crate) async fn flush(&self) -> Result<()> {
        Store::flush_all_async(self.stores()).await
    }

    /// [`flush`](Self::flush) when it has nothing to wait for (no store
    /// queues releases): the stores' kept failures. `None` if some store
    /// queues releases.
    pub(crate) fn flushed_now(&self) -> Option<Result<()>> {
        let stores = self.stores();
        if stores.iter().any(|s| s.connector().queues_releases()) {
            return None;
        }
        let mut first = Ok(());
        for s in stores {
            if let Err(e) = s.take_deferred()
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        Some(first)
    }

    /// Whether there is nothing to end or wait for.
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, TaskState::Empty)
    }
}

/// Moves into the task with its arguments: ends the task's borrows when the
/// task is dropped without finishing (cancelled, its executor shut down, or
/// never started).
pub(crate) struct Ender(pub(crate) TaskState);

impl Drop for Ender {
    fn drop(&mut self) {
        self.0.end_borrows();
    }
}

/// The task's result once its borrows have ended and their releases are
/// applied: its output, or why there is none.
pub(crate) fn settle<T>(out: std::thread::Result<T>, flushed: Result<()>) -> Result<T> {
    match (out, flushed) {
        (Ok(v), Ok(())) => Ok(v),
        (Err(p), Ok(())) => Err(Error::TaskPanicked {
            message: panic_message(&*p),
        }),
        (out, Err(e)) => {
            if let Err(p) = out {
                tracing::error!(panic = %panic_message(&*p), "a submitted task panicked, and waiting for its releases failed");
            }
            Err(e)
        }
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic whose payload is not text".to_owned()
    }
}
