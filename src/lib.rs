//! # borrowstore
//!
//! Objects in a store; proxies that obey Rust's ownership rules across tasks,
//! threads, processes and machines.
//!
//! A [`Store`] keeps objects and hands out handles to them. The rules —
//! many readers or one writer per object, exactly one owner, and an object
//! that is evicted exactly when its last owner and its last borrow are gone
//! — are checked **in the store**, not in the handles, so they hold between
//! threads and tasks and, with a shared store, between processes and
//! machines.
//!
//! # Handles
//!
//! - [`Proxy<T>`]: a lazy, plain reference. It owns nothing; it resolves its
//!   value on first use and keeps it; it is serializable (the store and the
//!   key, never the value). Made by [`Store::proxy`],
//!   [`Store::proxy_from_key`] and [`Store::ephemeral_proxy`] (evicted by
//!   its first resolve).
//! - [`OwnedProxy<T>`]: the one owner ([`Store::owned_proxy`],
//!   [`into_owned`]). Dropping it evicts the object, once its borrows have
//!   ended. Changes to it are local (copy-on-write) until [`update`]
//!   publishes them; [`clone`] makes an independent copy under a new key.
//! - [`RefProxy<T>`] and [`RefMutProxy<T>`]: shared and mutable borrows,
//!   made by [`borrow`] and [`mut_borrow`] from an owner. A `RefProxy`
//!   gives `&T` only, and every reader in a process shares one `Arc<T>`; a
//!   `RefMutProxy` changes a private copy, published by [`update`] or, if it
//!   was changed, by its drop. The borrow ends when the handle is dropped.
//! - [`OwnerTicket`] and [`BorrowTicket`]: an owner or a borrow in flight
//!   to another process, redeemable exactly once
//!   ([`OwnedProxy::into_ticket`], [`RefProxy::into_ticket`]). Owners and
//!   borrows themselves are not serializable: a copy would be a second
//!   owner.
//!
//! Helpers on handles are associated functions — `OwnedProxy::key(&o)`,
//! `RefProxy::shared(&r)` — so they never hide a method of `T`.
//!
//! ```
//! use borrowstore::{Store, Proxy, OwnedProxy, RefProxy, RefMutProxy, Error};
//! use borrowstore::{borrow, mut_borrow, clone, into_owned, update};
//! # fn main() -> Result<(), Error> {
//! let store = Store::memory("crate-doc");
//! let owner: OwnedProxy<Vec<u64>> = store.owned_proxy(vec![1, 2, 3])?;
//! let r1: RefProxy<Vec<u64>> = borrow(&owner)?;
//! let r2 = borrow(&owner)?;
//! assert!(matches!(mut_borrow(&owner), Err(Error::AlreadyBorrowed { .. })));
//! drop((r1, r2));
//! let mut w: RefMutProxy<Vec<u64>> = mut_borrow(&owner)?;
//! w.push(4);
//! update(&mut w)?;
//! drop(w);
//! assert_eq!(*borrow(&owner)?, vec![1, 2, 3, 4]);
//!
//! let copy = clone(&owner)?;                              // a new key, its own owner
//! assert_ne!(OwnedProxy::key(&copy), OwnedProxy::key(&owner));
//! let p: Proxy<String> = store.proxy("plain".to_owned())?; // no owner: persists until evicted
//! let adopted = into_owned(p)?;                           // now evicted with its owner
//! assert_eq!(*adopted, "plain");
//! # Ok(()) }
//! ```
//!
//! A stored type is [`Storable`]: `Clone + Serialize + DeserializeOwned +
//! Send + Sync + 'static`, usually `#[derive(Clone, Serialize, Deserialize)]`.
//!
//! # Stores
//!
//! A store is named, registered in this process by its name, and opened by
//! URL with [`Store::open`] (which documents every parameter), or built
//! with [`Store::builder`]:
//!
//! | URL | connector | shared by |
//! |---|---|---|
//! | `memory://name`, or [`Store::memory`]`("name")` | [`MemoryConnector`](connector::MemoryConnector): values kept as `Arc<T>`, never encoded; a borrow is one atomic operation | the threads and tasks of this process |
//! | `file:///abs/dir?lease_ms=N` | [`FileConnector`](connector::FileConnector): one ledger and versioned value files per object in a directory, under file locks | the processes of one host |
//! | `redis://[user:pass@]host:port/db?ns=NAME&lease_ms=N&timeout_ms=N` | `connector::RedisConnector` (feature `redis`, on by default): one Lua script per transition, one round trip | processes on many machines |
//! | `rediss://…&tls_ca=/path/ca.pem`, `redis+cluster://host1:port1,host2:port2?…`, `rediss+cluster://…` | the same over TLS (feature `redis-tls`, on by default), on a Redis Cluster, or both | processes on many machines |
//!
//! On the file and Redis stores every claim is **leased**: a process that
//! dies without dropping its handles loses its claims after the lease, as
//! if it had dropped them (see [`docs::semantics`], rule 7, for what is and
//! is not done yet). A connector of your own implements
//! [`Connector`](connector::Connector) and is checked by the conformance
//! suite of the `borrowstore-testkit` crate.
//!
//! ```
//! use borrowstore::{OwnedProxy, OwnerTicket, Store, borrow};
//! # fn main() -> Result<(), borrowstore::Error> {
//! let dir = std::env::temp_dir().join(format!("borrowstore-crate-doc-{}", std::process::id()));
//! let store = Store::open(&format!("file://{}", dir.display()))?;
//! let owner = store.owned_proxy(vec![1u64, 2, 3])?;
//! assert_eq!(borrow(&owner)?.len(), 3);                   // counted in the directory
//!
//! // Another process that opens the same URL can take the owner over:
//! let bytes = OwnedProxy::into_ticket(owner)?.to_bytes()?;
//! let owner = OwnerTicket::<Vec<u64>>::from_bytes(&bytes)?.redeem()?;
//! assert_eq!(*owner, vec![1, 2, 3]);
//! # let url = store.url().to_owned(); drop(owner); drop(store);
//! # Store::unregister(&url); std::fs::remove_dir_all(&dir).ok();
//! # Ok(()) }
//! ```
//!
//! ```no_run
//! # fn main() -> Result<(), borrowstore::Error> {
//! // Needs a Redis server on 127.0.0.1:6379.
//! let store = borrowstore::Store::open("redis://127.0.0.1:6379/0?ns=myapp")?;
//! let owner = store.owned_proxy(vec![1u64, 2, 3])?;
//! assert_eq!(borrowstore::borrow(&owner)?.len(), 3);
//! # Ok(()) }
//! ```
//!
//! # Tasks: `submit`
//!
//! [`submit`](fn@submit) runs an async task on an executor (tokio, a `futures` thread
//! pool, or your own [`Spawn`](submit::Spawn)); [`submit_blocking`] runs
//! blocking work on a pool (std threads, tokio's blocking pool, rayon with
//! the `rayon` feature). The borrows among the task's arguments end
//! store-side when the task completes, fails, panics or is cancelled —
//! before its [`Submitted`] handle resolves. A task submitted while a
//! liveness scope is open runs inside that scope. The [`submit`](mod@submit)
//! module says what cancelling does on each executor, and
//! [`submit::remote`] sends tasks to other processes.
//!
//! ```
//! use borrowstore::{Store, borrow, mut_borrow, submit};
//! # fn main() -> Result<(), borrowstore::Error> {
//! let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! let store = Store::memory("crate-doc-submit");
//! let owner = store.owned_proxy(vec![1u64, 2, 3])?;
//! let h = submit(runtime.handle(), borrow(&owner)?, |r| async move { r.iter().sum::<u64>() });
//! assert_eq!(runtime.block_on(h)?, 6);
//! assert!(mut_borrow(&owner).is_ok());                    // the task's borrow has ended
//! # Ok(()) }
//! ```
//!
//! # Scopes and lifetimes
//!
//! Besides its `OwnedProxy`, an object can be owned by **liveness scopes**
//! and **lifetimes**, counted store-side with the other owners: it is
//! evicted when the last of them lets go (and its last borrow has ended).
//!
//! - [`LivenessScope`] (Deephaven's liveness scopes): while a scope is
//!   [open](LivenessScope::open) on a thread, every object created there is
//!   managed by it; [`release`](LivenessScope::release) gives them all back;
//!   [`preserve`](LivenessScope::preserve) hands one to the enclosing scope
//!   (or, with none, leaves it without an owner). [`liveness_scope`] runs a
//!   closure in a one-shot scope. Scopes are peers: an object two scopes
//!   manage lives until both are released, in any order.
//! - Lifetimes (ProxyStore's): [`ContextLifetime`] ends when closed or
//!   dropped, [`LeaseLifetime`] when its lease runs out (extend or shorten
//!   it), [`StaticLifetime`] when the process closes it. Objects join one
//!   with [`Store::put_in`] / [`Store::proxy_in`] or later
//!   ([`Lifetime::add_proxy`]).
//!
//! ```
//! use std::time::Duration;
//! use borrowstore::{ContextLifetime, Error, LeaseLifetime, LivenessScope, Store, liveness_scope};
//! # fn main() -> Result<(), Error> {
//! let store = Store::memory("crate-doc-scopes");
//! let scope = LivenessScope::new();
//! let key = scope.open(|| store.put(&vec![0u8; 1024]))?; // managed by `scope`
//! scope.release()?;
//! assert!(!store.exists(&key)?);
//!
//! let kept = liveness_scope(|s| {
//!     let tmp = store.proxy(vec![1u64, 2, 3])?;          // evicted at the end
//!     let sum = store.proxy(tmp.iter().sum::<u64>())?;
//!     s.preserve(&sum)?;                                 // lives on, without an owner
//!     Ok::<_, Error>(sum)
//! })??;
//! assert_eq!(*kept, 6);
//!
//! let lt = ContextLifetime::new(&store);
//! let k = store.put_in(&lt, &"x".to_owned())?;
//! lt.close()?;                                           // evicts what only `lt` owned
//! assert!(!store.exists(&k)?);
//!
//! let lease = LeaseLifetime::new(&store, Duration::from_secs(60));
//! let k = store.put_in(&lease, &1u8)?;
//! lease.expire_in(Duration::from_millis(10))?;          // shortening takes effect too
//! while !lease.done() {
//!     std::thread::sleep(Duration::from_millis(5));
//! }
//! assert!(!store.exists(&k)?);
//! # Ok(()) }
//! ```
//!
//! # Errors
//!
//! Every failure is an [`Error`] (`#[non_exhaustive]`): refused borrows name
//! what holds the object, decoding as the wrong type is
//! [`Error::TypeMismatch`] naming the stored type, damaged bytes are
//! [`Error::Decode`], an unreachable store is [`Error::Connector`]. Bad input
//! never panics. `Deref` on a handle whose value cannot be read panics with
//! the key, the store and the cause; the handles' `resolve` functions return
//! the error instead.
//!
//! # Features
//!
//! - `redis` (default): the Redis connector, and the redis-rs client with
//!   its tokio I/O stack. Without it `redis://` URLs are
//!   [`Error::InvalidUrl`].
//! - `rayon`: [`submit_blocking`] on a rayon `ThreadPool`.
//! - `apalis`: `submit::apalis`, jobs for apalis 1.0 workers on the
//!   apalis-redis backend whose arguments carry borrows (shared or
//!   mutable) and owners, which end with the job's final outcome.
//!
//! # Further reading
//!
//! - [`docs::semantics`]: the ownership rules in full, one by one, and
//!   where the implementation does not meet them yet;
//! - [`docs::architecture`]: the layers, and how each connector works;
//! - [`docs::observability`]: what each store records of who holds what,
//!   and how to see it (inspection, `borrowstore memory`, spans, metrics);
//! - the module docs of [`submit`](mod@submit), [`connector`] and
//!   [`state`] (the state machine every connector applies).

#![warn(missing_docs)]
#![deny(unsafe_code)]

mod blob;
pub mod codec;
pub mod connector;
pub mod docs;
mod error;
mod key;
mod lifetime;
mod observe;
mod ownership;
mod proxy;
mod scope;
pub mod state;
mod store;
pub mod submit;
mod sync;
pub mod trust;

pub use blob::Blob;
pub use codec::Storable;
pub use error::{Borrows, Error, Result};
pub use key::{ClaimId, Key};
pub use lifetime::{
    ContextLifetime, LeaseLifetime, Lifetime, ObjectRef, StaticExitGuard, StaticLifetime,
};
pub use ownership::{
    BorrowTicket, OwnedProxy, OwnerTicket, RefMutProxy, RefProxy, Update, borrow, borrow_async,
    borrow_timeout, clone, clone_async, into_owned, into_owned_async, mut_borrow, mut_borrow_async,
    mut_borrow_timeout, update, update_async,
};
pub use proxy::Proxy;
pub use scope::{LivenessScope, ScopedFuture, liveness_scope};
pub use store::{ObjectInfo, Snapshot, Store, StoreBuilder, StoreConfig, Summary};
pub use submit::{Submitted, submit, submit_blocking};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
