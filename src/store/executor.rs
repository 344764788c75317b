//! The blocking forms inside async code: the warning a blocking call on a
//! tokio worker thread earns, once per store, and the failures of work done
//! for `Drop` that the next flush reports.
//!
//! # Telling a worker thread from a blocking thread
//!
//! tokio has no public way to ask "is this thread a runtime worker?": a
//! worker and a `spawn_blocking` thread both have a runtime handle
//! (`Handle::try_current`) and a task id (`task::try_id`), and the check
//! tokio itself makes (whether the thread is inside the runtime's context)
//! is private — reachable only through calls that panic. What differs, and
//! is public, is the cooperative budget: a worker polls every task under a
//! budget (128 units), while tokio runs a `spawn_blocking` closure — and
//! code outside any task — unbudgeted. So the probe takes budget units
//! with [`tokio::task::coop::poll_proceed`] until one is refused, then puts
//! every unit back: refused within the probe's limit means a budgeted task,
//! that is an executor thread. It runs only inside a runtime, and only until
//! the store has warned. (A task wrapped in `coop::unconstrained` is not
//! detected; nothing is ever flagged wrongly.)

use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use super::Store;
use crate::connector::Connector;
use crate::error::{Error, Result};
use crate::sync::{Arc, unmodeled};

/// More than tokio's per-poll budget (128): the probe gives up after this
/// many units, and reports an unbudgeted thread.
const PROBE_LIMIT: usize = 256;

impl Store {
    /// The connector, for a blocking form: on a store that does I/O, warns
    /// (once per store) when called on a tokio worker thread.
    #[inline]
    pub(crate) fn blocking(&self) -> &Arc<dyn Connector> {
        let b = &self.inner.blocking;
        if b.does_io && !b.warned.load(Ordering::Relaxed) {
            self.check_thread();
        }
        self.connector()
    }

    #[cold]
    fn check_thread(&self) {
        let b = &self.inner.blocking;
        if on_executor_thread() && !b.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                store = %self.name(),
                "a blocking borrowstore call on a tokio worker thread holds the worker until the \
                 store answers; inside async code use the `_async` form (warned once per store)"
            );
        }
    }

    /// Keeps `e`, a failure of work done for `Drop` (a dropped writer's
    /// publish), for the next [`flush`](Store::flush); logs it.
    pub(crate) fn defer_error(&self, e: Error) {
        tracing::error!(store = %self.name(), error = %e, "publishing a dropped RefMutProxy failed; the next flush reports it");
        let b = &self.inner.blocking;
        unmodeled::lock(&b.deferred).push(e);
        b.any_deferred.store(true, Ordering::Release);
    }

    /// The failures kept by [`defer_error`](Store::defer_error) since the
    /// last call, as one error.
    pub(crate) fn take_deferred(&self) -> Result<()> {
        let b = &self.inner.blocking;
        if !b.any_deferred.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut kept = std::mem::take(&mut *unmodeled::lock(&b.deferred));
        b.any_deferred.store(false, Ordering::Release);
        match kept.len() {
            0 => Ok(()),
            1 => Err(kept.remove(0)),
            n => Err(Error::Connector {
                store: self.name().to_owned(),
                source: format!(
                    "{n} dropped RefMutProxy publishes failed: {}",
                    kept.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                )
                .into(),
            }),
        }
    }
}

/// Whether this thread is polling a budgeted tokio task: a runtime's worker
/// (or a current-thread runtime's `block_on`), not a `spawn_blocking`
/// thread. See the module docs.
pub(crate) fn on_executor_thread() -> bool {
    if tokio::runtime::Handle::try_current().is_err() {
        return false;
    }
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let mut taken = Vec::new();
    let mut budgeted = false;
    for _ in 0..PROBE_LIMIT {
        match tokio::task::coop::poll_proceed(&mut cx) {
            Poll::Ready(unit) => taken.push(unit),
            Poll::Pending => {
                budgeted = true;
                break;
            }
        }
    }
    // Each unit restores the budget it found: the first one taken last.
    while let Some(unit) = taken.pop() {
        drop(unit);
    }
    budgeted
}
