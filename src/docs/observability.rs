//! # Seeing who holds what
//!
//! Rule 12 of [`docs::semantics`](crate::docs::semantics), in full: what
//! each store records of its objects and claims, how claims are labelled,
//! what inspection, the `borrowstore` command, the spans and the metrics
//! show.
//!
//! [`Store::inspect`](crate::Store::inspect) returns an
//! [`ObjectInfo`](crate::ObjectInfo): the version and counts (owners,
//! holders, readers, whether a writer, whether plain), the value's type
//! name, size, creation time and name, and one
//! [`ClaimInfo`](crate::connector::ClaimInfo) per claim — kind (`owner`,
//! `holder`, `reader`, `writer`, or `ticket` while it is in flight), process
//! id and host of its holder, label, when it was taken and its lease
//! deadline. [`Store::snapshot`](crate::Store::snapshot) returns every
//! object's, as a [`Snapshot`](crate::Snapshot) with a summary; both
//! serialize and print as tables.
//!
//! Labels: [`Store::owned_proxy_named`](crate::Store::owned_proxy_named)
//! names an object (and its owner claim);
//! [`LivenessScope::label`](crate::LivenessScope::label) and
//! [`Lifetime::label`](crate::Lifetime::label) name the claims of a scope
//! or a lifetime; any other claim is labelled with the call site that took
//! it (`#[track_caller]`: `src/main.rs:12:13`; the waiting and async forms
//! too, which note their caller before they return their future). Each
//! store records them where it keeps its state: the memory store in each
//! slot and, for borrows, in a per-thread journal written without a lock or
//! an allocation (what it costs a borrow is measured in `BENCHMARKS.md`);
//! the file store in its side files (written once at creation) and its
//! table: a claim's time and label number in a word of its entry (one
//! atomic store), pid and lease in its holder's record, the labels' text
//! in the holder's label file, written once per label
//! (`src/connector/file/labels.rs`); Redis in a notes hash beside the state
//! hash (a reader's note in its claim record instead, so a borrow and its
//! drop write one hash), written by the script call that takes the claim
//! (`state.lua`).
//! A ticket redeemed in another process shows the redeemer's process and
//! keeps the label it was taken with.
//!
//! Inspection only reads: on Redis a claim whose lease ran out (its
//! process was killed) is listed, deadline past, until a reap pass or
//! `borrowstore reap URL` reclaims it; on the file store the survivors
//! reclaim a killed process's claims at once, a stopped one's at its lease.
//!
//! The `borrowstore` command (the `cli` feature) prints it: `borrowstore
//! memory URL`, `borrowstore inspect URL KEY` (see its `--help`), and
//! `borrowstore reap URL` (the one that changes state).
//!
//! Every store operation runs in a `tracing` span at `debug` (target
//! `borrowstore`; `put`, `get`, `evict`, `borrow`, `mut_borrow`, `release`,
//! `publish`, `redeem`, and `reclaim` where the file store releases the
//! claims of a dead or stopped process) with the store's name, the key and the outcome; a resolve served
//! by the cache is a `trace` event. The crate never installs a subscriber;
//! its background threads are named (`borrowstore-lease`,
//! `borrowstore-redis`, `borrowstore-timer`, `borrowstore-clock`,
//! `borrowstore-task`). With the `metrics` feature it counts operations and
//! refusals, keeps gauges of live objects and claims and a histogram of
//! Redis round trips through the `metrics` facade (`borrowstore_*`; the
//! program installs the recorder).
//!
//! On Redis a claim's lease deadline is its ticket's while it is in
//! flight, else its process's record deadline in the namespace's process
//! table (read by inspection where it is in the same slot; before a
//! process first renews, a lease from when it took the claim).
//!
//! **Not yet:** Redis reclaims inside its scripts, so its reclaims have no
//! `reclaim` span (the lease thread logs a lost lease); `borrowstore reap`
//! on Redis releases expired tickets only — a dead process's claims are
//! released by the stores' own reap passes, which judge the process
//! table; on a Redis cluster inspection cannot read the process table (it
//! is in another slot), so process claims show the lease from their note;
//! the gauges count what this process did (its puts and evictions, the
//! claims it took), not the whole store.
//!
