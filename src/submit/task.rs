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
pub(crate) struct TaskState {
    claims: Few<TaskClaim>,
    stores: Few<Store>,
}

impl TaskState {
    /// Ties the borrows in `args` to a new task.
    pub(crate) fn enlist<A: TaskArgs>(args: &mut A) -> Arc<TaskState> {
        let mut v = ArgsVisitor::enlisting();
        args.visit(&mut v);
        let (claims, stores) = v.into_parts();
        Arc::new(TaskState { claims, stores })
    }

    pub(crate) fn from_parts(claims: Vec<TaskClaim>, stores: Vec<Store>) -> TaskState {
        TaskState {
            claims: claims.into(),
            stores: stores.into(),
        }
    }

    /// Ends every borrow that is still held: releases it (queued on network
    /// stores) and invalidates its handle, wherever it is. Exactly once per
    /// borrow, whoever else ends it.
    pub(crate) fn end_borrows(&self) {
        for c in self.claims.as_slice() {
            c.end();
        }
    }

    /// Whether every borrow has ended.
    pub(crate) fn all_ended(&self) -> bool {
        self.claims.as_slice().iter().all(TaskClaim::is_ended)
    }

    /// Waits, blocking the thread, until every store's queued releases
    /// are applied. Tries every store; reports the first failure.
    pub(crate) fn flush_blocking(&self) -> Result<()> {
        Store::flush_all(self.stores.as_slice())
    }

    /// [`flush_blocking`](Self::flush_blocking) without blocking the
    /// executor.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future stops the wait, not the releases.
    pub(crate) async fn flush(&self) -> Result<()> {
        Store::flush_all_async(self.stores.as_slice()).await
    }

    /// Whether there is nothing to end or wait for.
    pub(crate) fn is_empty(&self) -> bool {
        self.claims.as_slice().is_empty() && self.stores.as_slice().is_empty()
    }
}

/// Moves into the task with its arguments: ends the task's borrows when the
/// task is dropped without finishing (cancelled, its executor shut down, or
/// never started).
pub(crate) struct Ender(pub(crate) Arc<TaskState>);

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
