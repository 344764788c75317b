//! Blocking I/O off the executor thread, and undoing what a dropped
//! future's request did.

use crate::error::{Error, Result};

/// Runs `f`, which blocks on I/O, where it blocks no executor: when the
/// future is first polled inside a tokio runtime, on tokio's blocking pool
/// ([`tokio::task::spawn_blocking`]); otherwise inline, in that first poll
/// (an executor that is not tokio's lends no thread of its own, so the work
/// runs on the thread that polls).
///
/// Nothing runs until the future is polled. Dropping the future after that
/// does not stop `f`: it finishes on the pool, and what it returns is
/// dropped (see [`Undo`] for results that hold a claim). A panic in `f` is
/// resumed in the caller.
pub(crate) async fn offload<T: Send + 'static>(
    store: String,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => match handle.spawn_blocking(f).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(Error::Connector {
                store,
                source: format!("the blocking task did not run: {e}").into(),
            }),
        },
        Err(_) => f(),
    }
}

/// What to do if the result of a request is dropped before its caller
/// takes it: give back the claim the request took. Runs on drop unless
/// [`disarm`](Undo::disarm)ed.
#[must_use = "an Undo runs when dropped"]
pub(crate) struct Undo(Option<Box<dyn FnOnce() + Send>>);

impl Undo {
    pub(crate) fn new(f: impl FnOnce() + Send + 'static) -> Undo {
        Undo(Some(Box::new(f)))
    }

    /// Nothing to undo.
    pub(crate) fn none() -> Undo {
        Undo(None)
    }

    /// The caller took the result: nothing to undo.
    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}
