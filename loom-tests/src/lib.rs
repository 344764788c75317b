//! Loom models for borrowstore. The models live in `tests/`; this library
//! holds what they share.
//!
//! Build and run them with `scripts/loom.sh`, which is
//!
//! ```text
//! RUSTFLAGS="--cfg borrowstore_loom" LOOM_MAX_PREEMPTIONS=2 \
//!     CARGO_TARGET_DIR=target-loom cargo test -p borrowstore-loom-tests --release
//! ```
//!
//! Under `--cfg borrowstore_loom` the crate's `sync` module swaps in loom's
//! atomics and locks, so every model below runs the real code of the memory
//! connector, the store and the proxies, reached through the public API.
//! Without the cfg this crate and its tests compile to nothing.
//!
//! | file | what it checks |
//! |---|---|
//! | `tests/borrow_rules.rs` | many readers or one writer; refusals carry the right error |
//! | `tests/eviction.rs` | owner drop racing the last release, explicit evict racing borrows: evicted exactly once, never while borrowed, store empty at the end |
//! | `tests/tickets.rs` | a ticket redeemed from two threads (two processes): exactly one winner, the other gets `Error::TicketRedeemed`; redeem racing cancel |
//! | `tests/update.rs` | `update` (on an owner and on a `RefMutProxy`) racing a borrow |
//! | `tests/state_cas.rs` | `State::apply` applied through a loom `AtomicU64` compare-and-swap loop, on its own |
//!
//! Not modelled yet (these features landed after the models above):
//!
//! TODO(scopes): `LivenessScope` / peer-scope holder counts — `manage`,
//! `unmanage` and `release` racing an owner drop and a borrow's release:
//! evicted exactly once, when the last holder and the last borrow are gone.
//!
//! TODO(submit): `submit` / `submit_blocking` release ordering — the task's
//! borrows are released store-side before its handle resolves, also when the
//! task fails, panics or is cancelled (`loom::future::block_on`, the
//! "futures" feature of loom is already enabled).
//!
//! TODO(lifetimes): `ContextLifetime::close` / `LeaseLifetime` expiry racing
//! a borrow's release and `put_in`.

#[cfg(borrowstore_loom)]
mod support;

#[cfg(borrowstore_loom)]
pub use support::*;
