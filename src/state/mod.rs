//! The per-object ownership state machine: pure, synchronous, and the only
//! place where the rules live.
//!
//! An object's store-side state is a [`State`]: how many shared borrows it
//! has, whether it has a mutable borrow, whether an owner proxy exists, how
//! many holders (scopes and lifetimes) own it, whether it ever had an owner,
//! and whether it is gone. [`State::apply`] maps a state and an [`Op`] to the
//! next state and an [`Effect`], or refuses with a [`Refusal`]:
//!
//! | op | refused when | effect |
//! |---|---|---|
//! | acquire reader | gone; mutably borrowed | — |
//! | acquire writer | gone; borrowed at all | — |
//! | acquire owner | gone; an owner proxy exists | marks "had an owner" |
//! | acquire holder | gone | marks "had an owner" |
//! | release any | a claim of that kind is not held | evicts when it had an owner and none, and no borrow, is left |
//! | disown any | as release | as release, except that giving back the last owner or holder makes the object plain again (never evicts) |
//! | evict | gone; borrowed at all | evicts |
//!
//! Every connector applies exactly these transitions atomically: the memory
//! connector packs a `State` into one `AtomicU64` and applies `apply` in a
//! compare-and-swap loop; connectors that must survive retries and crashes
//! keep a [`Ledger`], which adds claim ids (so releases are idempotent) and
//! delegates every decision to `State::apply`.
//!
//! Eviction is an effect, not a request: the transition that returns
//! [`Effect::Evict`] also sets the "gone" bit, so exactly one caller ever
//! sees it and no claim can be acquired afterwards.
//!
//! The module has two parts: the packed state machine ([`State`], [`Op`],
//! [`Effect`], [`Refusal`], [`Init`], [`Claim`], [`ClaimKind`]) and the
//! [`Ledger`] that keeps ids, leases and tickets on top of it ([`Deadline`],
//! [`NEVER`], [`Redeem`]); every item is at `borrowstore::state::*`.

// `ledger` builds on `machine`; `machine` uses nothing else in the module.
pub(crate) mod journal;
mod ledger;
mod machine;
mod note;
#[cfg(test)]
mod tests;

pub use ledger::{Deadline, Ledger, NEVER, Redeem};
pub use machine::{Claim, ClaimKind, Effect, Init, Op, Refusal, State};
pub use note::Note;
