//! The submitting side of a remote task: [`RemoteCall`].

use std::marker::PhantomData;

use crate::error::Result;
use crate::store::Store;
use crate::submit::remote::portable::{Export, Import, Portable};
use crate::submit::remote::wire::{self, Reply};

/// The submitting side of a task that runs in another process.
///
/// [`RemoteCall::new`] keeps the borrows among the arguments and makes the
/// request bytes; send them to a worker, which answers with
/// [`serve`](fn@super::serve) (or [`serve_async`](super::serve_async)).
/// [`RemoteCall::finish`] reads the reply: it ends the borrows, waits until
/// their release is applied store-side, and only then returns the result.
/// If the worker dies or the reply never comes, call
/// [`RemoteCall::abandon`]: the borrows end at once (there is no lease to
/// wait out: the worker never held them), and owner tickets the worker did
/// not redeem are cancelled.
///
/// Dropping a `RemoteCall` ends its borrows too (without waiting for the
/// releases, and without cancelling unredeemed owner tickets, which then
/// expire with their lease).
#[must_use = "the borrows are kept until the call is finished or abandoned"]
pub struct RemoteCall<R> {
    request: Vec<u8>,
    export: Export,
    _result: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for RemoteCall<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteCall")
            .field("request_len", &self.request.len())
            .field("export", &self.export)
            .finish()
    }
}

impl<R> RemoteCall<R> {
    /// The bytes to send to the worker: views of the borrows (store, key,
    /// claim), never the values.
    ///
    /// ```
    /// use borrowstore::{Store, borrow};
    /// use borrowstore::submit::remote::RemoteCall;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-remote-request");
    /// let owner = store.owned_proxy(vec![0u8; 1 << 16])?;
    /// let call = RemoteCall::<usize>::new(borrow(&owner)?)?;
    /// assert!(call.request().len() < 300);               // not the 64 KiB value
    /// # call.abandon()?;
    /// # Ok(()) }
    /// ```
    pub fn request(&self) -> &[u8] {
        &self.request
    }
}

impl<R: Portable> RemoteCall<R> {
    /// Exports `args`: keeps the borrows here, and makes the request bytes.
    /// On failure everything exported so far is given back (borrows ended,
    /// owner tickets cancelled).
    ///
    /// # Errors
    ///
    /// [`Error::Encode`](crate::Error::Encode) if an argument cannot be
    /// serialized, and the store's errors from turning an owner argument
    /// into a ticket.
    ///
    /// ```
    /// use borrowstore::{OwnedProxy, Store, borrow};
    /// use borrowstore::submit::remote::RemoteCall;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-remote-new");
    /// let owner = store.owned_proxy(1u8)?;
    /// let call = RemoteCall::<u8>::new(borrow(&owner)?)?;
    /// assert_eq!(store.inspect(OwnedProxy::key(&owner))?.unwrap().readers, 1); // kept here
    /// # call.abandon()?;
    /// # Ok(()) }
    /// ```
    pub fn new<A: Portable>(args: A) -> Result<Self> {
        let mut export = Export::default();
        let request = args
            .export(&mut export)
            .and_then(wire::encode_request::<R, A::Wire>);
        match request {
            Ok(request) => Ok(RemoteCall {
                request,
                export,
                _result: PhantomData,
            }),
            Err(e) => {
                export.abandon();
                let _ = Store::flush_all(export.stores());
                Err(e)
            }
        }
    }

    /// Reads the worker's reply: ends the borrows, waits until their
    /// release is applied store-side, then returns the result (redeeming
    /// owners in it). [`Error::TaskPanicked`](crate::Error::TaskPanicked)
    /// if the task panicked,
    /// [`Error::TaskCancelled`](crate::Error::TaskCancelled) if the worker
    /// could not run it.
    ///
    /// ```
    /// use borrowstore::{Error, RefProxy, Store, borrow};
    /// use borrowstore::submit::remote::{RemoteCall, serve};
    /// # fn main() -> Result<(), Error> {
    /// let store = Store::memory("doc-remote-finish");
    /// let owner = store.owned_proxy(String::from("abc"))?;
    /// let call = RemoteCall::<usize>::new(borrow(&owner)?)?;
    /// // … in the worker …
    /// let reply = serve(call.request(), |s: RefProxy<String>| -> usize { panic!("{} is too short", *s) });
    /// match call.finish(&reply) {
    ///     Err(Error::TaskPanicked { message }) => assert!(message.contains("too short")),
    ///     other => panic!("{other:?}"),
    /// }
    /// assert_eq!(store.inspect(borrowstore::OwnedProxy::key(&owner))?.unwrap().readers, 0);
    /// # Ok(()) }
    /// ```
    pub fn finish(self, reply: &[u8]) -> Result<R> {
        let (reply, stores) = self.settle(reply);
        Store::flush_all(&stores)?;
        import_result::<R>(reply?)
    }

    /// [`finish`](Self::finish), waiting for the releases without blocking
    /// the executor.
    ///
    /// # Cancel safety
    ///
    /// The borrows end as soon as the future is first polled; dropping it
    /// afterwards only stops the wait for their release, and loses the
    /// result (an owner in it stays unredeemed until its lease runs out).
    ///
    /// ```
    /// use borrowstore::{RefProxy, Store, borrow};
    /// use borrowstore::submit::remote::{RemoteCall, serve};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-remote-finish-async");
    /// let owner = store.owned_proxy(vec![1u64, 2])?;
    /// let call = RemoteCall::<u64>::new(borrow(&owner)?)?;
    /// let reply = serve(call.request(), |v: RefProxy<Vec<u64>>| v.iter().sum::<u64>());
    /// assert_eq!(futures::executor::block_on(call.finish_async(&reply))?, 3);
    /// # Ok(()) }
    /// ```
    pub async fn finish_async(self, reply: &[u8]) -> Result<R> {
        let (reply, stores) = self.settle(reply);
        Store::flush_all_async(&stores).await?;
        import_result::<R>(reply?)
    }

    /// The worker is gone, or will never answer: ends the borrows, cancels
    /// the owner tickets it did not redeem, and waits until all of it is
    /// applied store-side.
    ///
    /// ```
    /// use borrowstore::{OwnedProxy, Store, borrow};
    /// use borrowstore::submit::remote::RemoteCall;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-remote-abandon");
    /// let owner = store.owned_proxy(1u8)?;
    /// let call = RemoteCall::<u8>::new(borrow(&owner)?)?;
    /// // … the worker died before it answered …
    /// call.abandon()?;
    /// assert_eq!(store.inspect(OwnedProxy::key(&owner))?.unwrap().readers, 0);
    /// # Ok(()) }
    /// ```
    pub fn abandon(mut self) -> Result<()> {
        self.export.abandon();
        Store::flush_all(self.export.stores())
    }

    /// Ends the borrows; on a failed reply, also cancels unredeemed owner
    /// tickets. Returns the reply's body and the stores to wait for.
    fn settle(mut self, reply: &[u8]) -> (Result<R::Wire>, Vec<Store>) {
        let body: Result<Reply<R>> = wire::decode_reply::<R>(reply);
        let result = match body {
            Ok(Ok(wire)) => {
                // The worker redeemed every owner ticket: none to cancel.
                self.export.settle();
                Ok(wire)
            }
            Ok(Err(failure)) => {
                self.export.abandon();
                Err(failure.into_error())
            }
            Err(e) => {
                self.export.abandon();
                Err(e)
            }
        };
        (result, self.export.take_stores())
    }
}

fn import_result<R: Portable>(wire: R::Wire) -> Result<R> {
    let mut import = Import::default();
    let result = R::import(wire, &mut import)?;
    // Borrows that came back in the result are views of claims the worker
    // side kept for the task: the task is over, so they are too.
    import.into_task().end_borrows();
    Ok(result)
}
