//! Loom models for borrowstore. The models live in `tests/`; this library
//! holds what they share.
//!
//! Build and run them with `scripts/loom.sh`, which is
//!
//! ```text
//! RUSTFLAGS="--cfg borrowstore_loom" LOOM_MAX_PREEMPTIONS=2 \
//!     CARGO_TARGET_DIR=target-loom cargo test -p borrowstore-loom-tests --release
//! RUSTFLAGS="--cfg borrowstore_loom" LOOM_MAX_PREEMPTIONS=2 \
//!     CARGO_TARGET_DIR=target-loom cargo test -p borrowstore --lib --release
//! ```
//!
//! The second command runs the models that need what only the crate can do
//! (make claims by hand, call the connector): they are in the crate's
//! `src/sync/models.rs`.
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
//! | `tests/update.rs` | `update` on a `RefMutProxy` racing a borrow |
//! | `tests/waiting.rs` | a waiting borrow's registration racing the release that frees the object (`borrow_async` against a writer's drop, `mut_borrow_async` against two readers' drops, a waiter polled once and dropped during the release): never a lost wake-up (`loom::future::block_on` would deadlock), no claim and no place in line left behind |
//! | crate `src/sync/models.rs`: `update::owner_update_races_a_reader` | `update` on an owner racing a reader claim taken through the connector, with no handle |
//! | crate `src/sync/models.rs`: `state_cas::*` | `State::apply` applied through a loom `AtomicU64` compare-and-swap loop, on its own |
//! | `tests/scopes.rs` | `LivenessScope` holder counts: `manage` racing `release` (of the same scope, and of the object's last holder), `unmanage` racing `release`, a peer scope's release racing the owner's drop and the last borrow's release: store-side holders equal the scopes' references, every holder claim released exactly once, evicted exactly once and only when no owner, holder or borrow is left, store empty at the end |
//! | `tests/lifetimes.rs` | `ContextLifetime::close` racing `put_in` (the object is never left unowned) and racing the last borrow's release: evicted exactly once, store empty at the end |
//! | `tests/submit.rs` | `submit` / `submit_blocking` on a loom executor (a `loom::thread` per task, a join handle on a loom `Mutex`, driven with `loom::future::block_on`): once the handle resolves, the reader claim is released store-side (`readers() == 0`, a `mut_borrow` is granted) — when the task returns, leaks its borrow (`mem::forget`), panics, or is dropped by its executor before or after the cancel is reported — and released exactly once |
//!
//! Not modelled: `LeaseLifetime` expiry — it fires on a process-wide std
//! timer thread behind a std `Mutex` / `Condvar`, which loom cannot see; an
//! expiry ends the lease through the same `Core::end` as `close`, which
//! `tests/lifetimes.rs` covers — and `StaticLifetime` (process-wide, it
//! closes once per process, so it cannot be made fresh per iteration).
//!
//! # A bug the submit model found (fixed)
//!
//! `submit_reported_then_dropped` and `submit_blocking_dropped` failed on
//! the first version of the task guard: when an executor reports a task
//! cancelled *before* it drops the task, the handle's `end_borrows` and the
//! task's `Ender` raced on the borrow's `TaskGuard`, which moved `HELD` →
//! `ENDED` before the winner released; when the executor's drop won, the
//! handle saw `ENDED`, skipped the release, and resolved while the reader
//! claim was still held (`readers() == 1`). The guard now goes `HELD` →
//! `ENDING` → `ENDED` with the release in between, and every other ender
//! waits for `ENDED`. The two models are the regression tests.

#[cfg(borrowstore_loom)]
mod support;

#[cfg(borrowstore_loom)]
pub use support::*;
