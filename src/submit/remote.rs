//! Tasks in other processes: arguments that cross as serializable views,
//! while the submitting side keeps the borrows.
//!
//! A process pool runs a task somewhere the submitter's handles cannot go.
//! ProxyStore pickles the arguments there and never ends their borrows.
//! Here the submitting process keeps every borrow for the length of the
//! task and sends a *view* of it instead: the store, the key and the claim.
//! The worker reads (and, for a mutable borrow, publishes) under the
//! submitter's claim, and its view is invalidated when the task ends. When
//! the reply arrives — or the worker is known to be gone — the submitter
//! ends the borrows and waits for their release before it hands the result
//! over: the borrow count is back at zero as soon as the result returns,
//! and a dead worker holds nothing (no lease to wait out).
//!
//! Owners move: an [`OwnedProxy`] argument crosses as an
//! [`OwnerTicket`] that the worker redeems, and an owner in the result
//! crosses back the same way — exactly once.
//!
//! The transport is yours (pipes, sockets, a queue); this module makes and
//! reads the bytes:
//!
//! ```
//! use borrowstore::{Store, borrow};
//! use borrowstore::submit::remote::{RemoteCall, serve};
//! # fn main() -> Result<(), borrowstore::Error> {
//! let store = Store::memory("doc-remote");
//! let owner = store.owned_proxy(vec![1u64, 2, 3])?;
//! let key = *borrowstore::OwnedProxy::key(&owner);
//!
//! // The submitting side.
//! let call = RemoteCall::<u64>::new(borrow(&owner)?)?;
//! let request: Vec<u8> = call.request().to_vec();
//!
//! // … in the worker process (here: the same one, for the example) …
//! let reply = serve(&request, |v: borrowstore::RefProxy<Vec<u64>>| v.iter().sum::<u64>());
//!
//! // Back on the submitting side: the borrow ends before the result returns.
//! let total = call.finish(&reply)?;
//! assert_eq!(total, 6);
//! assert_eq!(store.inspect(&key)?.unwrap().readers, 0);
//! # Ok(()) }
//! ```
//!
//! Handles that cross:
//!
//! | argument | crosses as | in the worker |
//! |---|---|---|
//! | [`RefProxy<T>`] | a view of the submitter's shared borrow | a `RefProxy<T>` that never releases and reads [`Error::ClaimLost`] after the task |
//! | [`RefMutProxy<T>`] | a view of the submitter's mutable borrow (its local changes are published first) | a `RefMutProxy<T>` that publishes under the submitter's claim until the task ends |
//! | [`OwnedProxy<T>`] | an [`OwnerTicket`] | the owner, redeemed |
//! | [`Proxy<T>`] | the proxy | the proxy |
//! | [`Plain<T>`], numbers, `bool`, `char`, `String` | the value (serde) | the value |
//! | `()`, tuples of up to 12, `Vec`, `Option`, `Box`, arrays | their elements | their elements |
//!
//! Views only make sense on stores that both processes reach (file and
//! Redis stores); a memory store is per process.

use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{self, Storable};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::ownership::{OwnedProxy, OwnerTicket, RefMutProxy, RefProxy, TaskClaim};
use crate::proxy::Proxy;
use crate::state::{Claim, ClaimKind};
use crate::store::{Store, StoreConfig};
use crate::submit::args::Plain;
use crate::submit::task::{TaskState, panic_message};

/// A value that can cross into a task in another process, or back out of
/// it: arguments and results of remote tasks. See the [module docs](self)
/// for what each handle crosses as.
pub trait Portable: Sized {
    /// The serializable form.
    type Wire: Serialize + DeserializeOwned;

    /// The sending side: the wire form. What must stay in this process for
    /// the length of the task (the borrows) goes into `out`.
    fn export(self, out: &mut Export) -> Result<Self::Wire>;

    /// The receiving side: the value again. Views of borrows are recorded
    /// in `into`, which ends them with the task.
    fn import(wire: Self::Wire, into: &mut Import) -> Result<Self>;
}

/// What the sending side keeps while a task runs in another process.
#[derive(Default)]
pub struct Export {
    kept: Vec<Box<dyn Send>>,
    stores: Vec<Store>,
    /// Cancels an owner ticket the other side may never redeem.
    tickets: Vec<Box<dyn FnOnce() + Send>>,
}

impl std::fmt::Debug for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export")
            .field("kept", &self.kept.len())
            .field("stores", &self.stores)
            .field("tickets", &self.tickets.len())
            .finish()
    }
}

impl Export {
    /// Keeps `handle` in this process until the task has ended.
    pub fn keep<H: Send + 'static>(&mut self, handle: H) {
        self.kept.push(Box::new(handle));
    }

    /// Adds a store whose queued releases are waited for when the task ends.
    pub fn store(&mut self, store: &Store) {
        push_store(&mut self.stores, store);
    }

    /// Ends what was kept, and cancels the owner tickets nobody redeemed.
    fn abandon(&mut self) {
        self.kept.clear();
        for cancel in self.tickets.drain(..) {
            cancel();
        }
    }
}

/// What the receiving side records while it rebuilds a task's arguments or
/// result.
#[derive(Default)]
pub struct Import {
    views: Vec<TaskClaim>,
    stores: Vec<Store>,
}

impl std::fmt::Debug for Import {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Import")
            .field("views", &self.views.len())
            .field("stores", &self.stores)
            .finish()
    }
}

impl Import {
    /// Adds a store whose queued releases are waited for when the task ends.
    pub fn store(&mut self, store: &Store) {
        push_store(&mut self.stores, store);
    }

    fn into_task(self) -> TaskState {
        TaskState::from_parts(self.views, self.stores)
    }
}

fn push_store(stores: &mut Vec<Store>, store: &Store) {
    if !stores.iter().any(|s| s.same_store(store)) {
        stores.push(store.clone());
    }
}

/// A borrow in flight: the claim the sending side keeps, and where.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClaimView {
    store: StoreConfig,
    key: Key,
    #[serde(deserialize_with = "crate::connector::wire::deserialize_claim")]
    claim: Claim,
    fingerprint: u64,
}

impl ClaimView {
    fn new<T>(store: &Store, key: Key, claim: Claim) -> ClaimView {
        ClaimView {
            store: store.config().clone(),
            key,
            claim,
            fingerprint: codec::fingerprint::<T>(),
        }
    }

    fn open<T>(&self, kind: ClaimKind) -> Result<Store> {
        if self.fingerprint != codec::fingerprint::<T>() {
            return Err(Error::TypeMismatch {
                expected: std::any::type_name::<T>(),
                found: format!("a borrow of type fingerprint {:016x}", self.fingerprint),
            });
        }
        if self.claim.kind != kind {
            return Err(Error::malformed(
                "task arguments",
                format_args!(
                    "a {:?} borrow cannot be read as a {kind:?} borrow",
                    self.claim.kind
                ),
            ));
        }
        Store::from_config(&self.store)
    }
}

impl<T: Storable> Portable for RefProxy<T> {
    type Wire = ClaimView;

    fn export(self, out: &mut Export) -> Result<ClaimView> {
        let view = ClaimView::new::<T>(
            RefProxy::store(&self),
            *RefProxy::key(&self),
            RefProxy::claim_of(&self),
        );
        out.store(RefProxy::store(&self));
        out.keep(self);
        Ok(view)
    }

    fn import(wire: ClaimView, into: &mut Import) -> Result<Self> {
        let store = wire.open::<T>(ClaimKind::Reader)?;
        let (view, record) = RefProxy::view(store.clone(), wire.key, wire.claim)?;
        into.views.push(record);
        into.store(&store);
        Ok(view)
    }
}

impl<T: Storable> Portable for RefMutProxy<T> {
    type Wire = ClaimView;

    fn export(mut self, out: &mut Export) -> Result<ClaimView> {
        // The other side starts from what this borrow shows.
        RefMutProxy::publish(&mut self)?;
        let view = ClaimView::new::<T>(
            RefMutProxy::store(&self),
            *RefMutProxy::key(&self),
            RefMutProxy::claim_of(&self),
        );
        out.store(RefMutProxy::store(&self));
        out.keep(self);
        Ok(view)
    }

    fn import(wire: ClaimView, into: &mut Import) -> Result<Self> {
        let store = wire.open::<T>(ClaimKind::Writer)?;
        let (view, record) = RefMutProxy::view(store.clone(), wire.key, wire.claim)?;
        into.views.push(record);
        into.store(&store);
        Ok(view)
    }
}

impl<T: Storable> Portable for OwnedProxy<T> {
    type Wire = OwnerTicket<T>;

    fn export(self, out: &mut Export) -> Result<OwnerTicket<T>> {
        let ticket = OwnedProxy::into_ticket(self)?;
        let bytes = ticket.to_bytes()?;
        out.tickets.push(Box::new(move || {
            if let Ok(t) = OwnerTicket::<T>::from_bytes(&bytes) {
                match t.cancel() {
                    Ok(()) | Err(Error::TicketRedeemed { .. } | Error::KeyNotFound { .. }) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cancelling an unredeemed owner ticket failed")
                    }
                }
            }
        }));
        Ok(ticket)
    }

    fn import(wire: OwnerTicket<T>, into: &mut Import) -> Result<Self> {
        let owner = wire.redeem()?;
        into.store(OwnedProxy::store(&owner));
        Ok(owner)
    }
}

impl<T: Storable> Portable for Proxy<T> {
    type Wire = Proxy<T>;

    fn export(self, _: &mut Export) -> Result<Proxy<T>> {
        Ok(self)
    }

    fn import(wire: Proxy<T>, _: &mut Import) -> Result<Self> {
        Ok(wire)
    }
}

impl<T: Serialize + DeserializeOwned> Portable for Plain<T> {
    type Wire = T;

    fn export(self, _: &mut Export) -> Result<T> {
        Ok(self.0)
    }

    fn import(wire: T, _: &mut Import) -> Result<Self> {
        Ok(Plain(wire))
    }
}

macro_rules! plain_portable {
    ($($t:ty),*) => {$(
        impl Portable for $t {
            type Wire = $t;

            fn export(self, _: &mut Export) -> Result<$t> {
                Ok(self)
            }

            fn import(wire: $t, _: &mut Import) -> Result<Self> {
                Ok(wire)
            }
        }
    )*};
}

super::args::with_plain_types!(plain_portable);

impl<A: Portable> Portable for Option<A> {
    type Wire = Option<A::Wire>;

    fn export(self, out: &mut Export) -> Result<Self::Wire> {
        self.map(|a| a.export(out)).transpose()
    }

    fn import(wire: Self::Wire, into: &mut Import) -> Result<Self> {
        wire.map(|w| A::import(w, into)).transpose()
    }
}

impl<A: Portable> Portable for Vec<A> {
    type Wire = Vec<A::Wire>;

    fn export(self, out: &mut Export) -> Result<Self::Wire> {
        self.into_iter().map(|a| a.export(out)).collect()
    }

    fn import(wire: Self::Wire, into: &mut Import) -> Result<Self> {
        wire.into_iter().map(|w| A::import(w, into)).collect()
    }
}

impl<A: Portable> Portable for Box<A> {
    type Wire = A::Wire;

    fn export(self, out: &mut Export) -> Result<Self::Wire> {
        (*self).export(out)
    }

    fn import(wire: Self::Wire, into: &mut Import) -> Result<Self> {
        A::import(wire, into).map(Box::new)
    }
}

impl<A: Portable, const N: usize> Portable for [A; N] {
    type Wire = Vec<A::Wire>;

    fn export(self, out: &mut Export) -> Result<Self::Wire> {
        self.into_iter().map(|a| a.export(out)).collect()
    }

    fn import(wire: Self::Wire, into: &mut Import) -> Result<Self> {
        if wire.len() != N {
            return Err(Error::malformed(
                "task arguments",
                format_args!("expected an array of {N}, found {}", wire.len()),
            ));
        }
        let items = wire
            .into_iter()
            .map(|w| A::import(w, into))
            .collect::<Result<Vec<A>>>()?;
        items
            .try_into()
            .map_err(|_| Error::malformed("task arguments", "array length"))
    }
}

macro_rules! tuple_portable {
    ($($name:ident)+) => {
        impl<$($name: Portable),+> Portable for ($($name,)+) {
            type Wire = ($($name::Wire,)+);

            #[allow(non_snake_case)]
            fn export(self, out: &mut Export) -> Result<Self::Wire> {
                let ($($name,)+) = self;
                Ok(($($name.export(out)?,)+))
            }

            #[allow(non_snake_case)]
            fn import(wire: Self::Wire, into: &mut Import) -> Result<Self> {
                let ($($name,)+) = wire;
                Ok(($($name::import($name, into)?,)+))
            }
        }
    };
}

tuple_portable!(A);
tuple_portable!(A B);
tuple_portable!(A B C);
tuple_portable!(A B C D);
tuple_portable!(A B C D E);
tuple_portable!(A B C D E F);
tuple_portable!(A B C D E F G);
tuple_portable!(A B C D E F G H);
tuple_portable!(A B C D E F G H I);
tuple_portable!(A B C D E F G H I J);
tuple_portable!(A B C D E F G H I J K);
tuple_portable!(A B C D E F G H I J K L);

// ------------------------------------------------------------ the wire

const REQUEST_MAGIC: [u8; 4] = *b"BSrq";
const REPLY_MAGIC: [u8; 4] = *b"BSrp";

/// Why a remote task has no result.
#[derive(Serialize, Deserialize)]
enum Failure {
    /// The task panicked.
    Panicked(String),
    /// The worker could not run it (its arguments could not be rebuilt,
    /// or its result could not be sent).
    Failed(String),
}

#[derive(Serialize, Deserialize)]
struct Envelope<W> {
    magic: [u8; 4],
    /// Fingerprint of the wire type: both sides must agree on the types.
    fingerprint: u64,
    body: W,
}

fn encode<W: Serialize>(magic: [u8; 4], body: W) -> Result<Vec<u8>> {
    postcard::to_allocvec(&Envelope {
        magic,
        fingerprint: codec::fingerprint::<W>(),
        body,
    })
    .map_err(Error::encode)
}

fn decode<W: DeserializeOwned>(magic: [u8; 4], what: &'static str, bytes: &[u8]) -> Result<W> {
    let e: Envelope<W> = postcard::from_bytes(bytes).map_err(|e| Error::malformed(what, e))?;
    if e.magic != magic {
        return Err(Error::malformed(what, "wrong magic bytes"));
    }
    if e.fingerprint != codec::fingerprint::<W>() {
        return Err(Error::TypeMismatch {
            expected: std::any::type_name::<W>(),
            found: format!("a {what} of type fingerprint {:016x}", e.fingerprint),
        });
    }
    Ok(e.body)
}

/// The submitting side of a task that runs in another process.
///
/// [`RemoteCall::new`] keeps the borrows among the arguments and makes the
/// request bytes; send them to a worker, which answers with [`serve`] (or
/// [`serve_async`]). [`RemoteCall::finish`] reads the reply: it ends the
/// borrows, waits until their release is applied store-side, and only then
/// returns the result. If the worker dies or the reply never comes, call
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
    /// The bytes to send to the worker.
    pub fn request(&self) -> &[u8] {
        &self.request
    }
}

impl<R: Portable> RemoteCall<R> {
    /// Exports `args`: keeps the borrows here, and makes the request bytes.
    /// On failure everything exported so far is given back (borrows ended,
    /// owner tickets cancelled).
    pub fn new<A: Portable>(args: A) -> Result<Self> {
        let mut export = Export::default();
        let request = args
            .export(&mut export)
            .and_then(|wire| encode(REQUEST_MAGIC, (codec::fingerprint::<R::Wire>(), wire)));
        match request {
            Ok(request) => Ok(RemoteCall {
                request,
                export,
                _result: PhantomData,
            }),
            Err(e) => {
                export.abandon();
                let _ = flush_all(&export.stores);
                Err(e)
            }
        }
    }

    /// Reads the worker's reply: ends the borrows, waits until their
    /// release is applied store-side, then returns the result (redeeming
    /// owners in it). [`Error::TaskPanicked`] if the task panicked,
    /// [`Error::TaskCancelled`] if the worker could not run it.
    pub fn finish(self, reply: &[u8]) -> Result<R> {
        let (reply, stores) = self.settle(reply);
        flush_all(&stores)?;
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
    pub async fn finish_async(self, reply: &[u8]) -> Result<R> {
        let (reply, stores) = self.settle(reply);
        flush_all_async(&stores).await?;
        import_result::<R>(reply?)
    }

    /// The worker is gone, or will never answer: ends the borrows, cancels
    /// the owner tickets it did not redeem, and waits until all of it is
    /// applied store-side.
    pub fn abandon(mut self) -> Result<()> {
        self.export.abandon();
        flush_all(&self.export.stores)
    }

    /// Ends the borrows; on a failed reply, also cancels unredeemed owner
    /// tickets. Returns the reply's body and the stores to wait for.
    fn settle(mut self, reply: &[u8]) -> (Result<R::Wire>, Vec<Store>) {
        let body =
            decode::<std::result::Result<R::Wire, Failure>>(REPLY_MAGIC, "task reply", reply);
        let result = match body {
            Ok(Ok(wire)) => {
                // The worker redeemed every owner ticket: none to cancel.
                self.export.tickets.clear();
                self.export.kept.clear();
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
        (result, std::mem::take(&mut self.export.stores))
    }
}

impl Failure {
    fn into_error(self) -> Error {
        match self {
            Failure::Panicked(message) => Error::TaskPanicked { message },
            Failure::Failed(reason) => Error::TaskCancelled {
                reason: format!("the worker could not run the task: {reason}"),
            },
        }
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

fn flush_all(stores: &[Store]) -> Result<()> {
    let mut first = Ok(());
    for s in stores {
        if let Err(e) = s.flush()
            && first.is_ok()
        {
            first = Err(e);
        }
    }
    first
}

async fn flush_all_async(stores: &[Store]) -> Result<()> {
    let mut first = Ok(());
    for s in stores {
        if let Err(e) = s.flush_async().await
            && first.is_ok()
        {
            first = Err(e);
        }
    }
    first
}

/// The worker's side: runs the task `f` on the arguments in `request` and
/// returns the reply bytes for [`RemoteCall::finish`].
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
    encode::<std::result::Result<R::Wire, Failure>>(REPLY_MAGIC, Err(failure)).unwrap_or_default()
}

/// Rebuilds the arguments; on failure, the reply that says so.
fn import_args<A: Portable, R: Portable>(
    request: &[u8],
) -> std::result::Result<(A, TaskState), Vec<u8>> {
    let fail = |e: Error| failed_reply::<R>(Failure::Failed(e.to_string()));
    let (result_fp, wire) =
        decode::<(u64, A::Wire)>(REQUEST_MAGIC, "task request", request).map_err(fail)?;
    if result_fp != codec::fingerprint::<R::Wire>() {
        return Err(fail(Error::TypeMismatch {
            expected: std::any::type_name::<R>(),
            found: format!("a request for a result of type fingerprint {result_fp:016x}"),
        }));
    }
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
            let _ = flush_all(&export.stores);
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
    encode::<std::result::Result<R::Wire, Failure>>(REPLY_MAGIC, body).unwrap_or_else(|e| {
        failed_reply::<R>(Failure::Failed(format!("cannot encode the result: {e}")))
    })
}
