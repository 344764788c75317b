//! # The ownership rules, in full
//!
//! These rules are checked **store-side**: every connector applies the
//! transitions of [`state::State::apply`](crate::state::State::apply)
//! atomically, so they hold between tasks, threads and — with a shared
//! connector — processes and machines.
//!
//! | # | rule | what you see |
//! |---|---|---|
//! | 1 | Many readers or one writer. | [`borrow`](crate::borrow) fails with [`Error::AlreadyMutablyBorrowed`](crate::Error::AlreadyMutablyBorrowed) while a writer exists; [`mut_borrow`](crate::mut_borrow) fails with [`Error::AlreadyBorrowed`](crate::Error::AlreadyBorrowed) while any reader or writer exists. |
//! | 2 | One model of ownership. | An object's owners are its [`OwnedProxy`](crate::OwnedProxy) and its holders (scopes and lifetimes). It is evicted exactly when it has had an owner, has none left, and has no borrow. Objects stored without an owner ([`Store::put`](crate::Store::put), [`Store::proxy`](crate::Store::proxy)) persist until evicted explicitly or by an ephemeral resolve. |
//! | 3 | References are always valid. | Dropping the owner while borrows exist defers eviction to the end of the last borrow. `Drop` never panics and never blocks on the network. [`Store::evict`](crate::Store::evict) refuses while the object is borrowed. |
//! | 4 | Immutable borrows are immutable. | [`RefProxy`](crate::RefProxy) gives `&T` only; readers in one process share one `Arc<T>`. [`RefMutProxy`](crate::RefMutProxy) changes a private copy, published by [`update`](crate::update) or, if changed, on drop. An owner may change a local copy; `update(&mut owner)` publishes it and is refused while borrowed. |
//! | 5 | Borrows have ids. | Every claim carries a [`ClaimId`](crate::ClaimId); connectors that can retry keep a [`Ledger`](crate::state::Ledger), where releasing an id twice releases it once. |
//! | 6 | Moves across processes are explicit and exactly-once. | [`OwnedProxy::into_ticket`](crate::OwnedProxy::into_ticket) and [`RefProxy::into_ticket`](crate::RefProxy::into_ticket) return serializable tickets with a 128-bit random id; redeeming the same ticket twice is [`Error::TicketRedeemed`](crate::Error::TicketRedeemed). Owners and borrows are not `Serialize`. |
//! | 8 | Ordered, non-blocking release. | Releases never block; [`Store::flush`](crate::Store::flush) waits until every release this process queued is applied. (Immediate for the memory store.) |
//! | 9 | Bad input gets a clear error. | Missing key, wrong type, damaged blob, malformed proxy or ticket bytes, invalid key, invalid URL, oversized value: each an [`Error`](crate::Error) variant, never a panic, and nothing stored is lost. A failed file-store operation names the store, the operation and the path. |
//! | 11 | Scopes. | An open [`LivenessScope`](crate::LivenessScope) manages what is created on its thread; [`preserve`](crate::LivenessScope::preserve) hands an object to the enclosing scope. With no enclosing scope it hands it on as an object without an owner: the scope gives back all its references on it, and the owners the object still has (its `OwnedProxy`, another scope, a lifetime) keep it by rule 2 — it is evicted when the last of them lets go and its last borrow ends; if the scope was its only owner, it becomes plain, as if stored by [`Store::put`](crate::Store::put), and persists until evicted. Decided store-side in one transition ([`Op::Disown`](crate::state::Op::Disown)). |
//!
//! Rule 7 (leases that reclaim the claims of a dead process) applies to
//! multi-process connectors.
//!
//! ## What a transition does
//!
//! Each handle is one claim, and [`Store::inspect`](crate::Store::inspect)
//! shows what the store-side state counts:
//!
//! ```
//! use borrowstore::{Error, OwnedProxy, Store, borrow, mut_borrow};
//! # fn main() -> Result<(), Error> {
//! let store = Store::memory("doc-semantics");
//! let owner = store.owned_proxy(vec![1u64])?;
//! let key = *OwnedProxy::key(&owner);
//! let reader = borrow(&owner)?;
//! assert!(matches!(mut_borrow(&owner), Err(Error::AlreadyBorrowed { .. })));
//! drop(owner); // still borrowed: eviction deferred
//! let info = store.inspect(&key)?.expect("still stored");
//! assert_eq!((info.owners, info.readers), (0, 1));
//! drop(reader); // the last claim is gone
//! assert!(store.inspect(&key)?.is_none());
//! # Ok(()) }
//! ```
//!
//! The transitions themselves, as a table, are in the [`state`](crate::state)
//! module docs.
//!
//! ## Copy-on-write, and what readers see
//!
//! Stored values are immutable: a change always replaces the value and bumps
//! its version. The first `DerefMut` of a [`RefMutProxy`](crate::RefMutProxy)
//! or an [`OwnedProxy`](crate::OwnedProxy) copies the value with `Clone`
//! (every [`Storable`](crate::Storable) type is `Clone`) and changes the
//! copy; publishing replaces the stored value with it. A reader resolves
//! once and keeps its snapshot; while it holds its borrow no writer can
//! exist, so the snapshot is the current value for as long as the borrow
//! lives. A plain [`Proxy`](crate::Proxy) resolves once and keeps its value
//! even if the object changes later — make a new proxy, or borrow, to see
//! new versions.
//!
//! ## Leaks
//!
//! `mem::forget` on a handle leaks its claim: the object stays owned or
//! borrowed. That is never undefined behaviour; see `SAFETY.md`.
