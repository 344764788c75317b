//! # borrowstore
//!
//! Objects in a store; proxies that obey Rust's ownership rules across tasks,
//! threads, processes and machines.
//!
//! A [`Store`] keeps objects — in this process ([`Store::memory`]) or, with
//! other connectors, where several processes can reach them — and hands out
//! handles:
//!
//! - [`Proxy<T>`]: a lazy, plain reference; serializable (never carries the value).
//! - [`OwnedProxy<T>`]: the one owner; dropping it evicts the object.
//! - [`RefProxy<T>`] / [`RefMutProxy<T>`]: shared and mutable borrows, made by
//!   [`borrow`] and [`mut_borrow`]. Many readers or one writer, checked
//!   **store-side**, so the rule holds between processes too.
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
//! # Ok(()) }
//! ```
//!
//! The rules in full are in [`docs::semantics`]; the layers in
//! [`docs::architecture`].

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod codec;
pub mod connector;
pub mod docs;
mod error;
mod key;
mod lifetime;
mod ownership;
mod proxy;
mod scope;
pub mod state;
mod store;
pub mod submit;
mod sync;
pub mod trust;

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
pub use store::{ObjectInfo, Store, StoreBuilder, StoreConfig};
pub use submit::{Submitted, submit, submit_blocking};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
