//! The worker's side of a remote task: [`serve`] and [`serve_async`].

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;

use crate::error::Error;
use crate::store::Store;
use crate::submit::remote::portable::{Export, Import, Portable};
use crate::submit::remote::wire::{self, Failure};
use crate::submit::task::{TaskState, panic_message};

/// The worker's side: runs the task `f` on the arguments in `request` and
/// returns the reply bytes for [`RemoteCall::finish`](super::RemoteCall::finish).
///
/// Views of the submitter's borrows are valid while `f` runs and invalid
/// after ([`Error::ClaimLost`]); owners in the arguments are redeemed, owners
/// in the result are sent back as tickets. A panic in `f` is caught and
/// reported. Queued releases this process made for the task are applied
/// before the reply is returned.
///
/// Never fails: whatever goes wrong is in the reply.
pub fn serve<A, R, F>(request: &[u8], f: F) -> Vec<u8>
where
    A: Portable,
    R: Portable,
    F: FnOnce(A) -> R,
{
    let (args, task) = match import_args::<A, R>(request) {
        Ok(x) => x,
        Err(reply) => return reply,
    };
    let out = std::panic::catch_unwind(AssertUnwindSafe(move || f(args)));
    let reply = reply_of::<R>(out, &task);
    let _ = task.flush_blocking();
    reply
}

/// [`serve`] for an async task.
///
/// # Cancel safety
///
/// Not cancel safe in the sense of losing nothing: dropping the future
/// drops the task, ends the views (the submitter's borrows stay with the
/// submitter, which ends them when it learns the worker gave up) and
/// drops owners redeemed for it (evicting their objects) — the same as a
/// task that is cancelled in-process.
pub async fn serve_async<A, R, F, Fut>(request: &[u8], f: F) -> Vec<u8>
where
    A: Portable,
    R: Portable,
    F: FnOnce(A) -> Fut,
    Fut: Future<Output = R>,
{
    let (args, task) = match import_args::<A, R>(request) {
        Ok(x) => x,
        Err(reply) => return reply,
    };
    let guard = EndOnDrop(&task);
    let out = AssertUnwindSafe(async move { f(args).await })
        .catch_unwind()
        .await;
    let reply = reply_of::<R>(out, &task);
    drop(guard);
    let _ = task.flush().await;
    reply
}

struct EndOnDrop<'a>(&'a TaskState);

impl Drop for EndOnDrop<'_> {
    fn drop(&mut self) {
        self.0.end_borrows();
    }
}

fn failed_reply<R: Portable>(failure: Failure) -> Vec<u8> {
    wire::encode_reply::<R>(Err(failure)).unwrap_or_default()
}

/// Rebuilds the arguments; on failure, the reply that says so.
fn import_args<A: Portable, R: Portable>(
    request: &[u8],
) -> std::result::Result<(A, TaskState), Vec<u8>> {
    let fail = |e: Error| failed_reply::<R>(Failure::Failed(e.to_string()));
    let wire = wire::decode_request::<A, R>(request).map_err(fail)?;
    let mut import = Import::default();
    match A::import(wire, &mut import) {
        Ok(args) => Ok((args, import.into_task())),
        Err(e) => {
            import.into_task().end_borrows();
            Err(fail(e))
        }
    }
}

/// The reply for the task's outcome; ends the task's views.
fn reply_of<R: Portable>(out: std::thread::Result<R>, task: &TaskState) -> Vec<u8> {
    let body = match out {
        Ok(result) => {
            // Export before the views end: a view in the result publishes
            // (mutable) or names its claim while it still holds.
            let mut export = Export::default();
            let wire = result.export(&mut export);
            task.end_borrows();
            let _ = Store::flush_all(export.stores());
            drop(export);
            match wire {
                Ok(w) => Ok(w),
                Err(e) => Err(Failure::Failed(format!("cannot send the result: {e}"))),
            }
        }
        Err(p) => {
            task.end_borrows();
            Err(Failure::Panicked(panic_message(&*p)))
        }
    };
    wire::encode_reply::<R>(body).unwrap_or_else(|e| {
        failed_reply::<R>(Failure::Failed(format!("cannot encode the result: {e}")))
    })
}
