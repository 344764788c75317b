//! # The ownership rules, in full
//!
//! These rules are checked **store-side**: every connector applies the
//! transitions of [`state::State::apply`](crate::state::State::apply)
//! atomically, so they hold between tasks, threads and — with a shared
//! connector — processes and machines.
//!
//! The twelve rules below are the normative ones of the design. Under each:
//! what you see when you use the crate, and — under **Not yet** — where
//! the implementation does not meet the rule today. Code should rely on
//! what is described, not on the rule where the two differ.
//!
//! | # | rule | holds today |
//! |---|---|---|
//! | 1 | [Many readers or one writer](#1-many-readers-or-one-writer) | yes |
//! | 2 | [One model of ownership](#2-one-model-of-ownership) | yes |
//! | 3 | [References are always valid](#3-references-are-always-valid) | yes |
//! | 4 | [Immutable borrows are immutable](#4-immutable-borrows-are-immutable) | yes |
//! | 5 | [Borrows have ids](#5-borrows-have-ids) | yes |
//! | 6 | [Moves across processes are explicit and exactly-once](#6-moves-across-processes-are-explicit-and-exactly-once) | yes |
//! | 7 | [Leases](#7-leases) | yes (the file store sees a death at once) |
//! | 8 | [Ordered, non-blocking release](#8-ordered-non-blocking-release) | yes (the file store's release is a few atomic operations, inline) |
//! | 9 | [Bad input gets a clear error](#9-bad-input-gets-a-clear-error) | yes |
//! | 10 | [Waiting, never polling](#10-waiting-never-polling) | yes; other processes' releases on the file store are seen by a bounded re-check |
//! | 11 | [Scopes](#11-scopes) | yes |
//! | 12 | [Observable](#12-observable) | yes (Redis reclaims are not traced: they happen in its script) |
//!
//! ## 1. Many readers or one writer
//!
//! *Decided store-side. `borrow` fails with `Error::AlreadyMutablyBorrowed`
//! while a writer exists; `mut_borrow` fails with `Error::AlreadyBorrowed`
//! while any reader or writer exists.*
//!
//! [`borrow`](crate::borrow) and [`mut_borrow`](crate::mut_borrow) are one
//! atomic transition on the object's state: a compare-and-swap on the
//! memory store and on the file store's shared table, one script on Redis. A refusal names what holds the object
//! ([`Borrows`](crate::Borrows): `cannot mut_borrow object …: 3 readers
//! hold it`), and after a refusal nothing is held.
//!
//! ```
//! use borrowstore::{Error, Store, borrow, mut_borrow};
//! # fn main() -> Result<(), Error> {
//! let store = Store::memory("doc-rule-1");
//! let owner = store.owned_proxy(1u8)?;
//! let r = borrow(&owner)?;
//! let refused = mut_borrow(&owner).unwrap_err();
//! assert!(refused.to_string().ends_with("1 reader holds it"), "{refused}");
//! drop(r);
//! let w = mut_borrow(&owner)?;
//! assert!(matches!(borrow(&owner), Err(Error::AlreadyMutablyBorrowed { .. })));
//! # drop(w); Ok(()) }
//! ```
//!
//! `borrow` and `mut_borrow` never wait; the waiting forms
//! ([`borrow_async`](crate::borrow_async), [`mut_borrow_async`](crate::mut_borrow_async),
//! [`borrow_timeout`](crate::borrow_timeout), [`mut_borrow_timeout`](crate::mut_borrow_timeout))
//! are those of rule 10.
//!
//! ## 2. One model of ownership
//!
//! *An object's owners are its `OwnedProxy`, every scope that manages it,
//! every lifetime that holds it. It is evicted exactly when it has had an
//! owner, has none left, and has no borrow. Objects put without any owner
//! persist until evicted explicitly or by an ephemeral resolve.*
//!
//! Store-side there is one owner claim (the [`OwnedProxy`](crate::OwnedProxy),
//! or an [`OwnerTicket`](crate::OwnerTicket) in flight) and any number of
//! *holder* claims (one per reference of a [`LivenessScope`](crate::LivenessScope),
//! one per lifetime), counted together, in every process.
//! [`ObjectInfo::plain`](crate::ObjectInfo::plain) says whether an object
//! never had an owner: such objects ([`Store::put`](crate::Store::put),
//! [`Store::proxy`](crate::Store::proxy)) persist until
//! [`Store::evict`](crate::Store::evict) or the resolve of an
//! [ephemeral proxy](crate::Store::ephemeral_proxy). Giving one an owner
//! later ([`into_owned`](crate::into_owned), `scope.manage`, a lifetime's
//! `add_key`) makes it an owned object from then on.
//!
//! ```
//! use borrowstore::{ContextLifetime, Lifetime, LivenessScope, OwnedProxy, Store};
//! # fn main() -> Result<(), borrowstore::Error> {
//! let store = Store::memory("doc-rule-2");
//! let owner = store.owned_proxy(1u8)?;
//! let key = *OwnedProxy::key(&owner);
//! let (scope, lt) = (LivenessScope::new(), ContextLifetime::new(&store));
//! scope.manage(&owner)?;
//! lt.add_proxy(&owner)?;
//! assert_eq!(store.inspect(&key)?.unwrap().owners, 3);
//! drop(owner);
//! scope.release()?;
//! assert!(store.exists(&key)?);                          // the lifetime still owns it
//! lt.close()?;
//! assert!(!store.exists(&key)?);                         // the last owner is gone
//! # Ok(()) }
//! ```
//!
//! ## 3. References are always valid
//!
//! *Dropping an `OwnedProxy` (or releasing a scope, closing a lifetime)
//! while borrows exist defers eviction to the end of the last borrow. `Drop`
//! never panics and never blocks on the network. Explicit `store.evict(key)`
//! refuses while the object is borrowed.*
//!
//! All of this holds: the last release of any kind evicts, and
//! [`Store::evict`](crate::Store::evict) is refused with
//! [`Error::AlreadyBorrowed`](crate::Error::AlreadyBorrowed) while a borrow
//! exists. No `Drop` of the crate panics; on Redis the releases of owners,
//! borrows, scopes and lifetimes are queued, not sent from `Drop` (rule 8).
//! (`Deref` on a handle whose value cannot be read does panic, with the key,
//! the store and the cause; the `resolve` functions return the error.)
//!
//! A [`RefMutProxy`](crate::RefMutProxy) dropped with unpublished changes
//! queues its publish ahead of its release on Redis (rule 4); nothing in a
//! `Drop` waits for the network.
//!
//! On the file store a release is applied inside the `Drop` that makes it:
//! a few atomic operations on the shared table, with no lock and no I/O (a
//! dropped writer's publish writes its value file). It waits only if
//! another process is at that moment inside a transition of the same
//! object — three stores long — and was stopped there: at most two
//! seconds, then the release is logged as failed and the claim stays this
//! process's, reclaimed when it ends.
//!
//! ## 4. Immutable borrows are immutable
//!
//! *`RefProxy<T>` gives `&T` only; decoded values are shared as `Arc<T>`.
//! Mutation goes through `RefMutProxy<T>` (`DerefMut`), published by
//! `update()` or, if it was changed, when it is dropped; other processes see
//! the new version on their next resolve. `OwnedProxy<T>` may be changed
//! locally (copy-on-write); `update(&mut owner)` publishes and fails with
//! `Error::AlreadyBorrowed` while borrowed. A `RefMutProxy` dropped normally
//! with unpublished changes publishes them through the store's ordered
//! queue, ahead of its own release, without blocking `Drop`; a failure is
//! returned by the next `flush()`. Dropped while its thread panics, it
//! discards them. `RefMutProxy::discard` drops without publishing.*
//!
//! [`RefProxy`](crate::RefProxy) implements `Deref` only, and
//! `update(&mut ref_proxy)` does not compile. Every reader of an object in
//! one process shares one `Arc<T>` (decoded once per version on the file
//! and Redis stores; never encoded on the memory store). The first
//! `DerefMut` of a [`RefMutProxy`](crate::RefMutProxy) or an owner copies
//! the value with `Clone` (see "Copy-on-write" below);
//! [`update`](crate::update) publishes, and is refused on an owner while
//! the object is borrowed.
//!
//! A `RefMutProxy` dropped normally with unpublished changes publishes
//! them without blocking `Drop` (on Redis queued with the store's ordered
//! releases, ahead of its own release); a failure is logged and returned
//! by the next [`Store::flush`](crate::Store::flush) /
//! [`flush_async`](crate::Store::flush_async). Dropped while its thread
//! panics it publishes nothing: the object keeps its last published
//! version. [`RefMutProxy::discard`](crate::RefMutProxy::discard) drops it
//! without publishing. Prefer [`update`](crate::update), which returns its
//! error and keeps the changes on failure.
//!
//! ## 5. Borrows have ids
//!
//! *Release by id is idempotent, so a retried script after a reconnect
//! cannot release twice.*
//!
//! Every claim — owner, reader, writer, holder — carries a
//! [`ClaimId`](crate::ClaimId). The file store keeps each claim's id in its
//! entry of the shared table, and a release moves that entry from held to
//! released by compare-and-swap, so releasing an id twice releases it
//! once; the Redis scripts key readers and holders by id and
//! check the owner's and writer's id, and are idempotent by id (or by a
//! token, for puts, publishes, takes and redeems), so a request whose
//! connection broke is sent again on a new one, and queued releases are
//! resent until the server takes them. The memory store counts
//! readers and holders in one atomic word without ids: it never retries,
//! and each handle gives its claim back exactly once.
//!
//! ## 6. Moves across processes are explicit and exactly-once
//!
//! *`OwnedProxy::into_ticket(self)` / `RefProxy::into_ticket(self)` return
//! a serializable ticket (128-bit random id); redeeming it in another
//! process yields the handle; redeeming the same bytes twice is
//! `Error::TicketRedeemed`. A never-redeemed ticket expires with its
//! lease.*
//!
//! [`OwnedProxy::into_ticket`](crate::OwnedProxy::into_ticket) and
//! [`RefProxy::into_ticket`](crate::RefProxy::into_ticket) hand the claim to
//! the ticket store-side; [`OwnerTicket::redeem`](crate::OwnerTicket::redeem)
//! and [`BorrowTicket::redeem`](crate::BorrowTicket::redeem) take it,
//! exactly once; a second redeem, or a redeem after
//! [`cancel`](crate::OwnerTicket::cancel), is
//! [`Error::TicketRedeemed`](crate::Error::TicketRedeemed). Bytes read as
//! the wrong type or kind of ticket are refused without consuming
//! anything. Owners and borrows are not `Serialize` (a compile error, not
//! a second owner); a [`Proxy`](crate::Proxy) is, and owns nothing.
//!
//! On the file and Redis stores the issuing process stops renewing a
//! ticket's claim, so a ticket that is never redeemed expires with the
//! lease (rule 7) — and one that travels longer than the lease expires on
//! the way. A memory store's ticket never expires (there are no leases in
//! one process): cancel a ticket you will not redeem, or its claim stays
//! held for the life of the process. (A memory store's ticket or proxy
//! that reaches another process is refused there with
//! [`Error::LocalStore`](crate::Error::LocalStore).) A ticket or proxy
//! reaches its store only if the receiving process has that store
//! registered, or allows its URL ([`trust`](crate::trust)).
//!
//! ```
//! use borrowstore::{Error, OwnedProxy, OwnerTicket, Store};
//! # fn main() -> Result<(), Error> {
//! let store = Store::memory("doc-rule-6");
//! let bytes = OwnedProxy::into_ticket(store.owned_proxy(1u8)?)?.to_bytes()?;
//! let owner = OwnerTicket::<u8>::from_bytes(&bytes)?.redeem()?;
//! let again = OwnerTicket::<u8>::from_bytes(&bytes)?.redeem();
//! assert!(matches!(again, Err(Error::TicketRedeemed { .. })));
//! # drop(owner); Ok(()) }
//! ```
//!
//! ## 7. Leases
//!
//! *(File and Redis connectors.) A lease belongs to a process, not to a
//! claim: each process renews one liveness record in the background (cost
//! independent of how many claims it holds), and its claims name it. When a
//! process dies, its record expires (default 30 s, configurable; on the
//! file store the death is seen at once through the process's lock file)
//! and its claims are reclaimed as if the handles had been dropped — no
//! leaked object, no object stuck borrowed forever, and never a claim of a
//! live process. Deadlines are set and compared on the store's clock (Redis
//! `TIME`), never a client's; a stalled server gives live processes a
//! renewal window before anything is reaped.*
//!
//! What is done: every claim a process holds on a file or Redis store —
//! owners, borrows, scope and lifetime holders, tickets in flight — is
//! leased, for `lease_ms` after its last renewal (default 30 000 ms; the
//! `lease_ms` parameter of [`Store::open`](crate::Store::open)'s `file://`
//! and `redis://` URLs). A process that dies — even by `SIGKILL` — renews
//! nothing, and once its lease runs out its claims are reclaimed as if its
//! handles had been dropped. Nothing is leaked and nothing stays borrowed.
//! The memory store has no leases: its claims die with the process that
//! holds them.
//!
//! - **File store:** the lease belongs to the process. Each process that
//!   uses a directory registers a record in its shared table and holds an
//!   exclusive lock on that record's lock file (`procs/<n>.lock`) for its
//!   life. The kernel drops the lock when the process dies, however it
//!   dies, so the others see the death within a tick (20 ms) and reclaim
//!   exactly what it held — its owners, borrows, holders, and the
//!   transitions it was in the middle of — without waiting for its lease
//!   (a waiting borrow of the reclaiming process is woken; others
//!   re-check). A live process renews one heartbeat in its record every
//!   quarter lease, whatever the number of its claims (10,000 borrows keep
//!   a 300 ms lease for ten leases while others create and evict); one
//!   that lives but does not run (stopped with `SIGSTOP`) loses its held
//!   claims once its heartbeat is older than its lease, and when it runs
//!   again its releases of them are no-ops and its writers are refused. A
//!   ticket in flight is leased on its own, from when it was made: it
//!   outlives its issuer (a process may send a ticket and exit).
//! - **Redis:** the lease belongs to the store connection (one per
//!   [`Store::open`](crate::Store::open) of a process), as the rule says.
//!   Its claims name its process id, and its one record in the namespace's
//!   process table is renewed every third of the lease — one round trip
//!   however many claims it holds (6,000 owners and 6,000 borrows of one
//!   process keep their lease of 1 s under the reap of 8,000 other
//!   objects). Every deadline is set and compared with the server's `TIME`
//!   inside the script; a client's clock plays no part (a process whose
//!   clock runs 5 s behind keeps its borrow). A record not renewed for a
//!   lease is judged dead, and a reap pass releases the dead process's
//!   claims on every object — made one object at a time between renewals,
//!   so that a long pass never delays a renewal. The renewal window: a call that finds the
//!   process table untouched for longer than half a lease (the server was
//!   stopped) first gives every record a full lease, so that live
//!   processes renew before anything is judged (a 10 s `SIGSTOP` of the
//!   server with an 8 s lease evicts nothing a live process owns). A
//!   process that cannot renew for longer than the lease while the server
//!   runs (cut off from it, or stopped) is judged dead: its renewer logs
//!   `lease lost`, a writer whose claim was reclaimed is refused when it
//!   publishes ([`Error::ClaimLost`](crate::Error::ClaimLost)), a reader
//!   keeps the snapshot it resolved, and the claims it takes from then on
//!   name a fresh process id.
//!
//! **Not yet:**
//!
//! - **File store: a process's record is revoked, not its lock.** When a
//!   stopped process's lease runs out, its held claims are reclaimed; a
//!   claim it acquires in the instant it resumes, before its heartbeat
//!   lands, can be reclaimed with them.
//! - **On Redis a dead process's claims wait for the reap pass.** The
//!   object script cannot read the process table (on a cluster it is in
//!   another slot), so a dead process's claims are released by the
//!   reaper's sweep of the namespace — started as soon as a renewal finds
//!   the process dead, within a third of a lease — not by the next
//!   operation on the object; a sweep takes one round trip per object.
//! - **On Redis a ticket in flight has no renewal window.** A ticket
//!   belongs to no process until it is redeemed; its claim is released a
//!   lease after the ticket was made, on the server's clock, and a server
//!   stall longer than that lets it run out.
//!
//! ([`LeaseLifetime`](crate::LeaseLifetime) is something else: a lifetime
//! timed in its own process, whose holder claims are leased like every
//! other claim.)
//!
//! ## 8. Ordered, non-blocking release
//!
//! *Network releases are queued per store and applied in order by the
//! connector's own I/O task; `store.flush()` waits for them; `submit` waits
//! for them before it reports completion.*
//!
//! On Redis a release is queued without waiting (never sent from `Drop`),
//! and goes out at the front of the pipeline of the next request of any
//! thread or task of this process (or alone, from the connector's I/O
//! thread, after a millisecond). One batch of releases is in flight at a
//! time and later requests wait for it, so this process's releases land
//! before its later requests, whichever connection carries them; an async
//! request dropped in flight holds back later releases until its reply
//! comes. Releases that fail (the server is down) stay queued and are sent
//! again.
//! [`Store::flush`](crate::Store::flush) (and
//! [`flush_async`](crate::Store::flush_async)) waits until every queued
//! release has been applied; [`submit`](fn@crate::submit) and
//! [`submit_blocking`](crate::submit_blocking) wait for the releases of
//! the task's borrows before its handle resolves, and
//! [`LivenessScope::release`](crate::LivenessScope::release) and the
//! lifetimes' `close` wait for theirs. On the memory store a release is one
//! atomic operation and `flush` returns at once.
//!
//! The file store does not queue: each release is applied inside the call
//! that makes it (a `Drop`), as a few atomic operations on the shared
//! table, with no lock and no I/O; it waits (at most two seconds) only for
//! another process stopped inside a transition of the same object. `flush`
//! returns at once there, since nothing is pending.
//!
//! ## 9. Bad input gets a clear error
//!
//! *`Error` is `#[non_exhaustive]` (thiserror); never a panic and never lost
//! data: missing key, wrong type, damaged blob, malformed proxy or ticket
//! bytes, unreachable store, invalid key (path traversal in the file
//! store), oversized value.*
//!
//! Each is an [`Error`](crate::Error) variant:
//! [`KeyNotFound`](crate::Error::KeyNotFound),
//! [`TypeMismatch`](crate::Error::TypeMismatch) (naming the stored type),
//! [`Decode`](crate::Error::Decode), [`Malformed`](crate::Error::Malformed),
//! [`Connector`](crate::Error::Connector) (within the store's timeout on
//! Redis — each operation within its own, however many are in flight — and
//! after a transparent retry on a new connection when the old one broke;
//! naming the operation and the path on the file store),
//! [`InvalidKey`](crate::Error::InvalidKey) (keys are 128-bit numbers, so a
//! key text can never name a path), [`InvalidUrl`](crate::Error::InvalidUrl),
//! [`TooLarge`](crate::Error::TooLarge); proxy and ticket bytes that name
//! a store this process does not trust are [`Untrusted`](crate::Error::Untrusted)
//! (see [`trust`](crate::trust)), and those of another process's memory
//! store [`LocalStore`](crate::Error::LocalStore). A failed operation leaves the
//! store as it was; a failed [`update`](crate::update) keeps the local
//! changes; a dropped writer's failed publish is reported by the next
//! `flush` (rule 4).
//!
//! ```
//! use borrowstore::{Error, Key, Proxy, Store};
//! # fn main() -> Result<(), Error> {
//! let store = Store::memory("doc-rule-9");
//! let key = store.put(&vec![1u64])?;
//! assert!(matches!(store.get::<String>(&key), Err(Error::TypeMismatch { .. })));
//! assert!(matches!("../etc/passwd".parse::<Key>(), Err(Error::InvalidKey { .. })));
//! assert!(matches!(Proxy::<u8>::from_bytes(&[0xff; 3]), Err(Error::Malformed { .. })));
//! assert!(matches!(Store::open("memory://"), Err(Error::InvalidUrl { .. })));
//! # Ok(()) }
//! ```
//!
//! ## 10. Waiting, never polling
//!
//! *`borrow_async` / `mut_borrow_async` wait for the borrow to become
//! possible and are woken by the release that frees it; `borrow_timeout` /
//! `mut_borrow_timeout` for threads fail with `Error::Timeout`. A waiting
//! writer is not starved by arriving readers. Every operation that can
//! touch the network or the disk has an `_async` form that never blocks an
//! executor thread; each documents its cancel safety.*
//!
//! All of this holds; "Waiting, and async code" below says who wakes a
//! waiter on each store, how writers are kept from starving, and what
//! dropping a pending future leaves.
//!
//! **Not yet:** on the file store the releases of *other* processes are
//! not announced: a waiter sees them by re-checking (2 ms, doubling up to
//! 64 ms), and readers of other processes do not queue behind this
//! process's waiting writer.
//!
//! ## 11. Scopes
//!
//! *`preserve` hands the object to the enclosing scope; with no enclosing
//! scope it hands it on as an object without an owner (it lives until
//! evicted, or until the owners it still has let it go), as Deephaven's
//! base scope does. A task `submit`ted while a scope is open runs inside
//! that scope.*
//!
//! An open [`LivenessScope`](crate::LivenessScope) manages what is created
//! on its thread (or, with [`open_async`](crate::LivenessScope::open_async),
//! in its future); [`preserve`](crate::LivenessScope::preserve) hands an
//! object to the enclosing scope. With no enclosing scope it hands it on as
//! an object without an owner: the scope gives back all its references on
//! it, and the owners the object still has (its `OwnedProxy`, another
//! scope, a lifetime) keep it by rule 2 — it is evicted when the last of
//! them lets go and its last borrow ends; if the scope was its only owner,
//! it becomes plain, as if stored by [`Store::put`](crate::Store::put), and
//! persists until evicted. Decided store-side in one transition
//! ([`Op::Disown`](crate::state::Op::Disown)).
//!
//! [`submit`](fn@crate::submit) and [`submit_blocking`](crate::submit_blocking)
//! carry the scopes open where they are called into the task, on whichever
//! thread runs it. A bare `tokio::spawn` or `std::thread::spawn` does not:
//! the scope stack belongs to a thread, and the executor knows nothing of
//! it (see the [`submit`](mod@crate::submit) module docs).
//!
//! ```
//! use borrowstore::{Error, Proxy, Store, liveness_scope};
//! # fn main() -> Result<(), Error> {
//! let store = Store::memory("doc-rule-11");
//! let out = liveness_scope(|s| {
//!     let tmp = store.proxy(vec![1u64, 2, 3])?;
//!     let out = store.proxy(tmp.len())?;
//!     s.preserve(&out)?;                                 // no enclosing scope: plain
//!     Ok::<_, Error>(out)
//! })??;
//! assert_eq!(store.keys()?, vec![*Proxy::key(&out)]);    // `tmp` is gone
//! assert!(store.inspect(Proxy::key(&out))?.unwrap().plain);
//! # Ok(()) }
//! ```
//!
//! ## 12. Observable
//!
//! *Every object records its type name, size and creation time; every
//! claim its kind, holder process id and host, since, lease deadline and an
//! optional label (the call site by default). `Store::snapshot()` /
//! `Store::inspect(&key)` return them; the `borrowstore memory URL` command
//! prints them for a file or Redis store; every store operation has a
//! `tracing` span at `debug`; a `metrics` feature counts operations through
//! the `metrics` facade.*
//!
//! What each store records and where, the labels, the `borrowstore`
//! command, the spans, the metrics, and what is not there yet: in
//! [`docs::observability`](crate::docs::observability).
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
//! | Redis | every process's releases and reclaims: the release script `PUBLISH`es the key (on a Redis Cluster the message reaches every node); one subscriber connection per store (on a cluster, to one of the nodes listed, the next one after a lost connection) wakes the waiters of that key | 100 ms, doubling up to 1 s (a lost message; a dead process's lease running out) |
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
//! **Not blocking the executor.** The `_async` forms of a Redis store send
//! their request on the polling task, over a connection of the tokio
//! runtime polling it (outside tokio, or on a runtime without an I/O
//! driver, the connector's I/O thread sends it), and await the reply; those
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
//! borrowed. That is never undefined behaviour; see `SAFETY.md`. In a memory
//! store the claim stays for the life of the process; on a file or Redis
//! store this process keeps renewing it, and it expires with the lease once
//! the process exits (rule 7).
