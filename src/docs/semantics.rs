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
//! | 4 | Immutable borrows are immutable. | [`RefProxy`](crate::RefProxy) gives `&T` only; readers in one process share one `Arc<T>`. [`RefMutProxy`](crate::RefMutProxy) changes a private copy, published by [`update`](crate::update) or, if changed and dropped normally, on drop — without blocking `Drop`: queued ahead of its own release where releases are queued, a failure reported by the next [`Store::flush`](crate::Store::flush). Dropped while its thread panics it publishes nothing; [`RefMutProxy::discard`](crate::RefMutProxy::discard) drops it without publishing. An owner may change a local copy; `update(&mut owner)` publishes it and is refused while borrowed. |
//! | 5 | Borrows have ids. | Every claim carries a [`ClaimId`](crate::ClaimId); connectors that can retry keep a [`Ledger`](crate::state::Ledger), where releasing an id twice releases it once. |
//! | 6 | Moves across processes are explicit and exactly-once. | [`OwnedProxy::into_ticket`](crate::OwnedProxy::into_ticket) and [`RefProxy::into_ticket`](crate::RefProxy::into_ticket) return serializable tickets with a 128-bit random id; redeeming the same ticket twice is [`Error::TicketRedeemed`](crate::Error::TicketRedeemed). Owners and borrows are not `Serialize`. |
//! | 8 | Ordered, non-blocking release. | Releases never block; [`Store::flush`](crate::Store::flush) waits until every release this process queued is applied (immediate for the memory store), and reports a dropped writer's publish that failed. |
//! | 9 | Bad input gets a clear error. | Missing key, wrong type, damaged blob, malformed proxy or ticket bytes, invalid key, invalid URL, oversized value: each an [`Error`](crate::Error) variant, never a panic, and nothing stored is lost. A failed file-store operation names the store, the operation and the path. |
//! | 10 | Waiting, never polling. | [`borrow_async`](crate::borrow_async) / [`mut_borrow_async`](crate::mut_borrow_async) wait instead of failing, and are woken by the release that frees them; [`borrow_timeout`](crate::borrow_timeout) / [`mut_borrow_timeout`](crate::mut_borrow_timeout) fail with [`Error::Timeout`](crate::Error::Timeout). A waiting writer is not starved by this process's waiting readers. Every operation that can touch the disk or the network has an `_async` form that never blocks the thread polling it; each documents its cancel safety. See "Waiting, and async code" below. |
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
//! ## Waiting, and async code
//!
//! **Who wakes a waiter.** A waiting borrow tries, and when the object is
//! borrowed it sleeps until a release is announced to its store's
//! [`Waiters`](crate::connector::Waiters), then tries again:
//!
//! | store | announced | not announced: re-checked after |
//! |---|---|---|
//! | memory | every release, in process: a release that finds the slot's waiting mark (one bit of the state word) announces itself | — (nothing is missed) |
//! | file | the releases this process makes, and the expired claims it reclaims | 2 ms, doubling up to 64 ms (other processes' releases) |
//! | Redis | every process's releases and reclaims: the release script `PUBLISH`es the key; one subscriber connection per store wakes the waiters of that key | 100 ms, doubling up to 1 s (a lost message; a dead process's lease running out) |
//!
//! A waiter records what was announced before it tries, so a release that
//! lands after its try is never missed (the loom model
//! `loom-tests/tests/waiting.rs` checks this for the memory store). A
//! waiter whose holder died gets in once the holder's lease runs out (plus
//! one re-check). Refusals that waiting cannot fix — the object is gone
//! ([`Error::KeyNotFound`](crate::Error::KeyNotFound)), the store cannot be
//! reached — end the wait at once.
//!
//! **Writers are not starved.** The waiting borrows of one object in one
//! process wait in one line, in arrival order. A waiting writer tries only
//! when it is first in line; a waiting reader only when no writer is ahead
//! of it. So once a `mut_borrow_async` waits, every `borrow_async` of this
//! process that starts later waits behind it — even when it could borrow at
//! once — and the writer gets the object as soon as the borrows held when
//! its turn came are released: zero later readers of this process pass it.
//! What this does not cover: a plain [`borrow`](crate::borrow) never waits
//! and never queues (it succeeds whenever no writer holds the object), and
//! readers of *other* processes do not see this process's line — on a file
//! or Redis store, a writer in one process competes with another process's
//! readers, and overlapping readers there can keep it waiting.
//!
//! **Cancel safety.** Dropping a waiting future leaves no claim behind and
//! gives up its place in line: the claim is taken, and the handle that
//! gives it back is made, in the same poll; where the request that takes a
//! claim is in flight when its future is dropped, the claim is given back
//! after it (a release queued behind the request on Redis; undone when the
//! blocking file request finishes). Each `_async` function documents what
//! dropping it leaves (`# Cancel safety`).
//!
//! **Not blocking the executor.** The `_async` forms of a Redis store hand
//! their request to the connector's I/O thread and await the reply; those
//! of a file store run the file I/O on tokio's blocking pool
//! (`spawn_blocking`) when polled inside a tokio runtime, and inline
//! otherwise; those of a memory store complete in their first poll.
//! Encoding and decoding values stays on the calling thread. The blocking
//! forms stay, for blocking contexts; called on a tokio worker thread of a
//! file or Redis store, they log a `tracing` warning, once per store.
//!
//! ```
//! use std::time::Duration;
//! use borrowstore::{Error, Store, borrow_async, mut_borrow, mut_borrow_timeout};
//! # fn main() -> Result<(), Error> {
//! let store = Store::memory("doc-semantics-wait");
//! let owner = store.owned_proxy(vec![1u64])?;
//! let writer = mut_borrow(&owner)?;
//! // A thread gives up after its timeout, and holds nothing.
//! let again = mut_borrow_timeout(&owner, Duration::from_millis(5));
//! assert!(matches!(again, Err(Error::Timeout { .. })));
//! drop(writer);
//! // A task waits, and is woken by the release.
//! let r = futures::executor::block_on(borrow_async(&owner))?;
//! assert_eq!(r.len(), 1);
//! # Ok(()) }
//! ```
//!
//! ## Leaks
//!
//! `mem::forget` on a handle leaks its claim: the object stays owned or
//! borrowed. That is never undefined behaviour; see `SAFETY.md`.
