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
//! | 9 | Bad input gets a clear error. | Missing key, wrong type, damaged blob, malformed proxy or ticket bytes, invalid key, invalid URL, oversized value: each an [`Error`](crate::Error) variant, never a panic, and nothing stored is lost. |
//!
//! Rule 7 (leases that reclaim the claims of a dead process) applies to
//! multi-process connectors.
//!
//! ## What a transition does
//!
//! ```
//! use borrowstore::state::{Claim, ClaimKind, Effect, Init, Op, Refusal, State};
//!
//! let owner = Claim::new(ClaimKind::Owner);
//! let reader = Claim::new(ClaimKind::Reader);
//! let s = State::new(Init::Claimed(owner));
//! let (s, _) = s.apply(Op::Acquire(reader)).unwrap();
//! assert_eq!(s.apply(Op::Acquire(Claim::new(ClaimKind::Writer))), Err(Refusal::Borrowed));
//! let (s, effect) = s.apply(Op::Release(owner)).unwrap();
//! assert_eq!(effect, Effect::None); // still borrowed: eviction deferred
//! let (s, effect) = s.apply(Op::Release(reader)).unwrap();
//! assert_eq!(effect, Effect::Evict); // the last claim is gone
//! assert!(s.gone());
//! ```
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
