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
//! | [`OwnedProxy<T>`] | an [`OwnerTicket`] ([`OwnerWire::Ticket`]) | the owner, redeemed |
//! | [`Proxy<T>`] | the proxy | the proxy |
//! | [`Plain<T>`], numbers, `bool`, `char`, `String` | the value (serde) | the value |
//! | `()`, tuples of up to 12, `Vec`, `Option`, `Box`, arrays | their elements | their elements |
//!
//! Views only make sense on stores that both processes reach (file and
//! Redis stores); a memory store is per process.
//!
//! [`OwnedProxy`]: crate::OwnedProxy
//! [`OwnedProxy<T>`]: crate::OwnedProxy
//! [`OwnerTicket`]: crate::OwnerTicket
//! [`RefProxy<T>`]: crate::RefProxy
//! [`RefMutProxy<T>`]: crate::RefMutProxy
//! [`Proxy<T>`]: crate::Proxy
//! [`Plain<T>`]: crate::submit::Plain
//! [`Error::ClaimLost`]: crate::Error::ClaimLost

// How values cross (`portable`), the bytes of requests and replies
// (`wire`), the submitting side (`call`) and the worker's side (`serve`).
mod call;
mod portable;
mod serve;
mod wire;

pub use call::RemoteCall;
pub use portable::{ClaimView, Export, Import, OwnerWire, Portable};
pub use serve::{serve, serve_async};
