//! Where objects live: the [`Connector`] trait and its implementations, for
//! connector authors.
//!
//! Users of a [`Store`](crate::Store) never call a connector: they open a
//! store by URL ([`Store::open`](crate::Store::open)) or hand one a
//! connector of their own ([`StoreBuilder::connector`](crate::StoreBuilder::connector)),
//! and look at what it holds through [`Store::inspect`](crate::Store::inspect)
//! and [`Store::keys`](crate::Store::keys). This module is what a connector
//! author implements, and the connectors that come with the crate.
//!
//! A connector does two things, both keyed by [`Key`]:
//!
//! - blob operations: put, get (with a version check), exists, evict, take,
//!   publish, and batch forms;
//! - atomic state operations: [`Connector::apply`] applies one
//!   [`Op`] of the [state machine](crate::state) to the
//!   object's store-side state, and tickets move a claim between processes.
//!
//! A connector may also hand out an [`Entry`]: a handle on one object's state
//! that proxies keep, so that a borrow reaches the state without a lookup.
//!
//! # How claims reach a connector
//!
//! A [`Claim`] is made only inside this crate: a handle (an owner, a borrow,
//! a scope or a lifetime) takes a fresh one and its store passes it to the
//! connector, in an [`Op`], an [`Init`], a publish or a ticket. A connector
//! can read a claim ([`Claim::kind`], [`Claim::id`]), keep it, and hand it
//! back (from [`Connector::redeem_ticket`]), but cannot make one, so no code
//! outside the crate acts under a claim it was not given. Rebuilding a claim
//! from a stored kind and id, as the file and Redis connectors do for a
//! ticket issued by another process, is for the crate's own connectors
//! only: a connector from outside hands back the claims it was given.
//!
//! Implementations: [`MemoryConnector`] (in-process; the default),
//! [`FileConnector`] (a directory shared by the processes of one host) and
//! [`RedisConnector`] (a Redis server shared by several machines; the
//! default-on `redis` feature).

// Without the `redis` feature the link above has nothing to point at.
#![cfg_attr(not(feature = "redis"), allow(rustdoc::broken_intra_doc_links))]

pub(crate) mod file;
pub(crate) mod lease;
mod memory;
mod meta;
pub(crate) mod offload;
#[cfg(feature = "redis")]
mod redis;
mod timer;
mod value;
mod wait;
pub(crate) mod wire;

use std::sync::Arc;

use futures::future::BoxFuture;

pub use file::FileConnector;
pub use lease::DEFAULT_LEASE;
pub use memory::MemoryConnector;
pub use meta::{ClaimInfo, ClaimRole, Inspect, ObjectMeta, this_process};
#[cfg(feature = "redis")]
pub use redis::{DEFAULT_TIMEOUT, RedisConnector, RedisOptions};
#[cfg(feature = "redis")]
pub(crate) use timer::Sleep;
pub use value::{Fetch, LocalValue, Stored, Value};
pub use wait::{Recheck, Waiters};

use crate::error::{Error, Result};
use crate::key::{ClaimId, Key};
use crate::state::{Claim, ClaimKind, Effect, Init, Op, Refusal};

/// A handle on one object's store-side state, kept by the proxies of that
/// object. Operations through an entry are the same as the connector's keyed
/// operations on the entry's key, without the lookup.
pub trait Entry: Send + Sync {
    /// Applies `op` atomically; see [`Connector::apply`].
    fn apply(&self, op: Op) -> Result<Effect>;
    /// Gives a claim back without blocking; see [`Connector::release`].
    fn release(&self, claim: Claim);
    /// A version-checked read; see [`Connector::fetch`].
    fn fetch(&self, known_version: Option<u64>) -> Result<Fetch>;
    /// Replaces the value; see [`Connector::publish`].
    fn publish(&self, writer: Claim, value: Value) -> Result<u64>;

    /// A waiting borrow of this process is about to try this object; see
    /// [`Connector::listen`]. Default: nothing.
    fn listen(&self) {}

    /// Whether the store records the claims taken through this entry in
    /// this process's claim journal, which the memory connector's
    /// [`inspect`](Connector::inspect) reads. Only the memory connector's
    /// entries are. Default: no.
    #[doc(hidden)]
    fn journaled(&self) -> bool {
        false
    }

    /// A borrow's acquire (`claim` a reader or the writer): the hot path of
    /// [`apply`](Entry::apply), given the claim by reference so that a
    /// connector reads only what its fast path needs. Default: `apply`.
    #[doc(hidden)]
    #[inline]
    fn take_borrow(&self, claim: &Claim) -> Result<Effect> {
        self.apply(Op::Acquire(*claim))
    }

    /// A borrow's release, as [`take_borrow`](Entry::take_borrow) is its
    /// acquire. Default: [`release`](Entry::release).
    #[doc(hidden)]
    #[inline]
    fn give_back_borrow(&self, claim: &Claim) {
        self.release(*claim);
    }

    /// Replaces the value without blocking on the network; see
    /// [`Connector::queue_publish`]. Default: [`publish`](Entry::publish).
    fn queue_publish(&self, writer: Claim, value: Value) -> Result<Option<u64>> {
        self.publish(writer, value).map(Some)
    }
}

/// A place where objects and their ownership state live.
///
/// Every state operation must be atomic with respect to every other
/// operation on the same key, in every process that shares the store, and
/// must apply exactly the transitions of [`State::apply`](crate::state::State::apply). The conformance
/// suite of the `borrowstore-testkit` crate (`testkit/` in the repository)
/// checks an implementation against these rules, in one line:
/// `borrowstore_testkit::conformance_suite!(my_fixture());`.
///
/// # Async forms
///
/// Every operation that can touch the disk or the network has an `_async`
/// form, which the store's async API calls. Each defaults to calling the
/// blocking form in its first poll, which is right for state in this
/// process; a connector that does I/O overrides them so that they never
/// block the thread that polls them. They take the key by value. Each says
/// what dropping its future before it completes leaves behind (`# Cancel
/// safety`): in short, reads leave nothing, and a claim the operation was
/// taking is given back.
///
/// # Waiting borrows
///
/// [`waiters`](Connector::waiters) is where the connector announces that
/// claims were given back, to the waiting borrows of this process
/// (`borrow_async`, `mut_borrow_timeout`, …); [`listen`](Connector::listen)
/// tells it that one is about to try an object. A connector without
/// waiters leaves its store to re-check with a bounded backoff.
pub trait Connector: Send + Sync + 'static {
    /// Whether this connector keeps [`Value::Local`] values as they are (in
    /// this process). When it does not, the store encodes values before
    /// handing them over, and checks its size limit. Default: no.
    fn keeps_local_values(&self) -> bool {
        false
    }

    /// Whether its operations can block on the disk or the network. The
    /// store then warns once when a blocking form is called on a tokio
    /// worker thread, and offloads what it does around the connector.
    /// Default: yes.
    fn does_io(&self) -> bool {
        true
    }

    /// Where this connector announces releases to the waiting borrows of
    /// this process: it calls [`Waiters::notify`] for an object whenever a
    /// release may have freed it, and the waiters re-check as
    /// [`Waiters::recheck`] says for what it cannot announce. Default:
    /// `None` — nothing is announced, and the store's waiters re-check with
    /// a bounded backoff.
    fn waiters(&self) -> Option<&Arc<Waiters>> {
        None
    }

    /// A waiting borrow of this process is about to try `key` (after
    /// recording what was announced so far): the connector must announce
    /// the next release on `key` that can free it. Never blocks. Default:
    /// nothing (a connector that announces every release).
    fn listen(&self, key: &Key) {
        let _ = key;
    }

    /// Stores a new object under `key`, with its initial state. Fails if the
    /// key exists. Returns an [`Entry`] if the connector has them.
    fn put(&self, key: &Key, value: Value, init: Init) -> Result<Option<Arc<dyn Entry>>>;

    /// The value and version under `key`.
    fn get(&self, key: &Key) -> Result<Option<Stored>>;

    /// A version-checked read: moves no value when `known_version` is current.
    fn fetch(&self, key: &Key, known_version: Option<u64>) -> Result<Fetch>;

    /// Whether `key` exists.
    fn exists(&self, key: &Key) -> Result<bool>;

    /// Evicts `key` now; `Ok(false)` if it did not exist; refused with
    /// [`Error::AlreadyBorrowed`] (operation `"evict"`) while the object is
    /// borrowed.
    fn evict(&self, key: &Key) -> Result<bool>;

    /// Evicts `key` and returns its value, atomically (ephemeral resolve).
    fn take(&self, key: &Key) -> Result<Option<Stored>>;

    /// Replaces the value of `key` on behalf of `writer`, which must hold the
    /// object's mutable borrow (or [`Error::ClaimLost`]). Returns the new version.
    fn publish(&self, key: &Key, writer: Claim, value: Value) -> Result<u64>;

    /// Applies one state transition atomically. Refusals become errors
    /// ([`Refusal::into_error`], naming [`Op::name`]):
    /// [`Error::AlreadyBorrowed`], [`Error::AlreadyMutablyBorrowed`],
    /// [`Error::AlreadyOwned`], [`Error::KeyNotFound`].
    fn apply(&self, key: &Key, op: Op) -> Result<Effect>;

    /// Acquires `claim` and, in the same step where the connector can, reads
    /// the value unless `known_version` is current — so a borrow and its
    /// resolve cost one round trip. Connectors that cannot combine them
    /// return `None` for the read (the default).
    fn acquire_fetch(
        &self,
        key: &Key,
        claim: Claim,
        known_version: Option<u64>,
    ) -> Result<Option<Fetch>> {
        let _ = known_version;
        self.apply(key, Op::Acquire(claim)).map(|_| None)
    }

    /// Replaces the value of `key` on behalf of `writer` without blocking on
    /// the network: connectors that queue releases queue the publish too,
    /// ordered with them, so a release of `writer` queued after it is
    /// applied after it; a queued publish that fails is logged and reported
    /// by the next [`flush`](Connector::flush). Returns the new version when
    /// the value was published at once, `None` when it was queued, and
    /// `Err` for a failure known at once. Default:
    /// [`publish`](Connector::publish). (A `RefMutProxy` dropped with
    /// changes publishes through this.)
    fn queue_publish(&self, key: &Key, writer: Claim, value: Value) -> Result<Option<u64>> {
        self.publish(key, writer, value).map(Some)
    }

    /// Gives a claim back. Never blocks on the network and never fails
    /// visibly: network connectors queue the release, apply queued releases
    /// in order, and [`flush`](Connector::flush) waits for them.
    fn release(&self, key: &Key, claim: Claim) {
        if let Err(e) = self.apply(key, Op::Release(claim)) {
            tracing::warn!(%key, error = %e, "release failed");
        }
    }

    /// The entry for `key`, if this connector has entries and the key exists.
    fn entry(&self, key: &Key) -> Result<Option<Arc<dyn Entry>>> {
        let _ = key;
        Ok(None)
    }

    /// Records that `claim` on `key` is in flight under ticket id `ticket`.
    fn issue_ticket(&self, key: &Key, ticket: ClaimId, claim: Claim) -> Result<()>;

    /// Redeems a ticket for `key` that carries a claim of `kind`, exactly
    /// once: the first call returns its claim, every later call
    /// [`Error::TicketRedeemed`]. A ticket of another kind is refused with
    /// [`Error::Malformed`] and left redeemable: damaged bytes never consume
    /// a ticket. Tickets go with their object: once it is evicted, its
    /// tickets are gone too.
    fn redeem_ticket(&self, key: &Key, ticket: ClaimId, kind: ClaimKind) -> Result<Claim>;

    /// Cancels an unredeemed ticket of `kind` and releases its claim.
    fn cancel_ticket(&self, key: &Key, ticket: ClaimId, kind: ClaimKind) -> Result<()>;

    /// The state and version of `key`; `None` if there is no object under
    /// it. Backs [`Store::inspect`](crate::Store::inspect).
    fn inspect(&self, key: &Key) -> Result<Option<Inspect>>;

    /// Every key in the store. Backs [`Store::keys`](crate::Store::keys).
    fn keys(&self) -> Result<Vec<Key>>;

    /// Whether releases can be pending after [`release`](Connector::release)
    /// returns (they are queued). When not, [`flush`](Connector::flush) has
    /// nothing to wait for and the store skips it. Default: yes.
    fn queues_releases(&self) -> bool {
        true
    }

    /// Waits until every release (and publish) queued by this process has
    /// been applied; reports a queued publish that failed since the last
    /// flush.
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Stores several new plain objects.
    fn put_batch(&self, items: Vec<(Key, Value)>) -> Result<()> {
        for (k, v) in items {
            self.put(&k, v, Init::Plain)?;
        }
        Ok(())
    }

    /// Reads several objects.
    fn get_batch(&self, keys: &[Key]) -> Result<Vec<Option<Stored>>> {
        keys.iter().map(|k| self.get(k)).collect()
    }

    /// Checks several keys.
    fn exists_batch(&self, keys: &[Key]) -> Result<Vec<bool>> {
        keys.iter().map(|k| self.exists(k)).collect()
    }

    /// Evicts several keys.
    fn evict_batch(&self, keys: &[Key]) -> Result<Vec<bool>> {
        keys.iter().map(|k| self.evict(k)).collect()
    }

    /// [`put`](Connector::put), without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the object stored or not; a claim it
    /// was put with ([`Init::Claimed`]) is given back either way, so an
    /// object put with an owner is then evicted.
    fn put_async(
        &self,
        key: Key,
        value: Value,
        init: Init,
    ) -> BoxFuture<'_, Result<Option<Arc<dyn Entry>>>> {
        Box::pin(async move { self.put(&key, value, init) })
    }

    /// [`fetch`](Connector::fetch), without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    fn fetch_async(&self, key: Key, known_version: Option<u64>) -> BoxFuture<'_, Result<Fetch>> {
        Box::pin(async move { self.fetch(&key, known_version) })
    }

    /// [`exists`](Connector::exists), without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    fn exists_async(&self, key: Key) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move { self.exists(&key) })
    }

    /// [`evict`](Connector::evict), without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the object evicted or not.
    fn evict_async(&self, key: Key) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move { self.evict(&key) })
    }

    /// [`take`](Connector::take), without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the object evicted, and its value
    /// then lost: an ephemeral object is read once.
    fn take_async(&self, key: Key) -> BoxFuture<'_, Result<Option<Stored>>> {
        Box::pin(async move { self.take(&key) })
    }

    /// [`publish`](Connector::publish), without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the value published or not (never
    /// half); the writer keeps its claim either way.
    fn publish_async(&self, key: Key, writer: Claim, value: Value) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move { self.publish(&key, writer, value) })
    }

    /// [`apply`](Connector::apply), without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes gives back the claim of an
    /// [`Op::Acquire`] if it was taken; another op may or may not have been
    /// applied.
    fn apply_async(&self, key: Key, op: Op) -> BoxFuture<'_, Result<Effect>> {
        Box::pin(async move { self.apply(&key, op) })
    }

    /// [`acquire_fetch`](Connector::acquire_fetch), without blocking the
    /// executor.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes gives `claim` back if it was
    /// taken: it leaves no claim behind.
    fn acquire_fetch_async(
        &self,
        key: Key,
        claim: Claim,
        known_version: Option<u64>,
    ) -> BoxFuture<'_, Result<Option<Fetch>>> {
        Box::pin(async move { self.acquire_fetch(&key, claim, known_version) })
    }

    /// [`issue_ticket`](Connector::issue_ticket), without blocking the
    /// executor.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the ticket issued: it then holds the
    /// claim until it is redeemed, cancelled, or its lease runs out.
    fn issue_ticket_async(
        &self,
        key: Key,
        ticket: ClaimId,
        claim: Claim,
    ) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.issue_ticket(&key, ticket, claim) })
    }

    /// [`issue_ticket_async`](Connector::issue_ticket_async) for a ticket
    /// whose deadline is `lease` from now rather than the store's lease (a
    /// job's borrows). Default: the store's lease (stores whose tickets
    /// have no deadline).
    fn issue_ticket_for_async(
        &self,
        key: Key,
        ticket: ClaimId,
        claim: Claim,
        lease: std::time::Duration,
    ) -> BoxFuture<'_, Result<()>> {
        let _ = lease;
        self.issue_ticket_async(key, ticket, claim)
    }

    /// Whether [`renew_ticket_async`](Connector::renew_ticket_async) moves a
    /// ticket's deadline and
    /// [`issue_ticket_for_async`](Connector::issue_ticket_for_async) honours
    /// its lease (the Redis store): what a job's borrows need. Default:
    /// false.
    fn renews_tickets(&self) -> bool {
        false
    }

    /// Moves the deadline of the unredeemed ticket `ticket` to `lease` from
    /// now (the store's clock); [`Error::TicketRedeemed`] if it is not in
    /// flight any more. Returns the object's version as the renewal found
    /// it, with the ticket's claim held, where the store tells it. Default:
    /// nothing to move (stores whose tickets have no deadline), no version.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the deadline moved or not.
    fn renew_ticket_async(
        &self,
        key: Key,
        ticket: ClaimId,
        lease: std::time::Duration,
    ) -> BoxFuture<'_, Result<Option<u64>>> {
        let _ = (key, ticket, lease);
        Box::pin(async { Ok(None) })
    }

    /// [`redeem_ticket`](Connector::redeem_ticket), without blocking the
    /// executor.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the ticket redeemed with nobody
    /// holding its claim; on stores with leases the claim then ends with
    /// its lease, as a dead process's would.
    fn redeem_ticket_async(
        &self,
        key: Key,
        ticket: ClaimId,
        kind: ClaimKind,
    ) -> BoxFuture<'_, Result<Claim>> {
        Box::pin(async move { self.redeem_ticket(&key, ticket, kind) })
    }

    /// [`cancel_ticket`](Connector::cancel_ticket), without blocking the
    /// executor.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the ticket cancelled or not.
    fn cancel_ticket_async(
        &self,
        key: Key,
        ticket: ClaimId,
        kind: ClaimKind,
    ) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.cancel_ticket(&key, ticket, kind) })
    }

    /// [`cancel_ticket_async`](Connector::cancel_ticket_async) for each of
    /// several tickets in flight of the object `key`, in one request where
    /// the store can (the Redis store); the outcome of each, in order.
    /// `Err` if the request as a whole failed. Default: one after the
    /// other.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave any of the tickets cancelled or not.
    fn cancel_tickets_async(
        &self,
        key: Key,
        tickets: Vec<(ClaimId, ClaimKind)>,
    ) -> BoxFuture<'_, Result<Vec<Result<()>>>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(tickets.len());
            for (ticket, kind) in tickets {
                out.push(self.cancel_ticket_async(key, ticket, kind).await);
            }
            Ok(out)
        })
    }

    /// [`inspect`](Connector::inspect), without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    fn inspect_async(&self, key: Key) -> BoxFuture<'_, Result<Option<Inspect>>> {
        Box::pin(async move { self.inspect(&key) })
    }

    /// [`keys`](Connector::keys), without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    fn keys_async(&self) -> BoxFuture<'_, Result<Vec<Key>>> {
        Box::pin(async move { self.keys() })
    }

    /// [`flush`](Connector::flush), without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Implementations must be cancel safe: dropping the future ends the
    /// wait only, and the queued releases are still applied, in order. The
    /// default is: it does all its work (a blocking `flush`) in its first
    /// poll.
    fn flush_async(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.flush() })
    }
}

/// The error for a ticket redeemed as the wrong kind of claim.
pub(crate) fn wrong_ticket_kind(found: ClaimKind, asked: ClaimKind) -> Error {
    Error::malformed(
        "ticket",
        format_args!("it carries a {found:?} claim, not a {asked:?} claim; it was not consumed"),
    )
}

impl Refusal {
    /// The error a user sees for this refusal of operation `op` on `key` in
    /// store `store`. `op` names the operation in the error: give
    /// [`Op::name`] of the refused op.
    ///
    /// ```
    /// use borrowstore::state::Refusal;
    /// use borrowstore::{Borrows, Error, Key};
    /// let held = Borrows { readers: 2, writer: false };
    /// let e = Refusal::Borrowed(held).into_error("evict", Key::from_u128(1), "demo");
    /// assert!(matches!(e, Error::AlreadyBorrowed { op: "evict", borrows, .. } if borrows == held));
    /// assert!(e.to_string().ends_with(": 2 readers hold it"));
    /// ```
    pub fn into_error(self, op: &'static str, key: Key, store: &str) -> Error {
        match self {
            Refusal::Gone => Error::KeyNotFound {
                key,
                store: store.to_owned(),
            },
            Refusal::Borrowed(borrows) => Error::AlreadyBorrowed { key, op, borrows },
            Refusal::MutablyBorrowed(borrows) => Error::AlreadyMutablyBorrowed { key, op, borrows },
            Refusal::Owned => Error::AlreadyOwned { key },
            Refusal::NotHeld => Error::ClaimLost { key },
            Refusal::Overflow => Error::Connector {
                store: store.to_owned(),
                source: format!("claim counter of object {key} would overflow").into(),
            },
        }
    }
}
