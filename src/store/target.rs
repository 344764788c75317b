//! [`Target`]: where the operations on one object go — the connector's
//! [`Entry`] for it, if the connector has entries, else the connector's
//! keyed calls on its key. The one place that makes that choice.

use crate::connector::{Entry, Fetch, Value};
use crate::error::Result;
use crate::key::Key;
use crate::state::{Claim, Effect, Op};
use crate::store::Store;

/// One object's key and, where the connector has them, its entry: the
/// handles of an object keep both and lend them as a `Target` to reach its
/// store-side state. Through an entry an operation is the connector's keyed
/// operation without the lookup ([`Entry`]), so both paths behave alike.
#[derive(Clone, Copy)]
pub(crate) struct Target<'a> {
    key: &'a Key,
    entry: Option<&'a dyn Entry>,
}

impl<'a> Target<'a> {
    /// The object under `key`, reached through `entry` if there is one.
    #[inline]
    pub(crate) fn new(key: &'a Key, entry: Option<&'a dyn Entry>) -> Self {
        Target { key, entry }
    }

    /// The object under `key`, reached by the connector's keyed calls.
    #[inline]
    pub(crate) fn keyed(key: &'a Key) -> Self {
        Target { key, entry: None }
    }

    /// The object's key.
    #[inline]
    pub(crate) fn key(self) -> &'a Key {
        self.key
    }

    /// Applies `op` atomically; see [`Connector::apply`](crate::connector::Connector::apply).
    #[inline]
    pub(crate) fn apply(self, store: &Store, op: Op) -> Result<Effect> {
        match self.entry {
            Some(e) => e.apply(op),
            None => store.blocking().apply(self.key, op),
        }
    }

    /// Takes `claim`: [`apply`](Self::apply) of its acquire, through an
    /// entry's hot path where it is a borrow.
    #[inline]
    pub(crate) fn take(self, store: &Store, claim: &Claim) -> Result<Effect> {
        match self.entry {
            Some(e) if claim.kind.is_borrow() => e.take_borrow(claim),
            _ => self.apply(store, Op::Acquire(*claim)),
        }
    }

    /// [`apply`](Self::apply) without blocking the executor (an entry's
    /// state is in this process: applied at once).
    pub(crate) async fn apply_async(self, store: &Store, op: Op) -> Result<Effect> {
        match self.entry {
            Some(e) => e.apply(op),
            None => store.connector().apply_async(*self.key, op).await,
        }
    }

    /// A waiting borrow is about to try the object; see
    /// [`Connector::listen`](crate::connector::Connector::listen).
    #[inline]
    pub(crate) fn listen(self, store: &Store) {
        match self.entry {
            Some(e) => e.listen(),
            None => store.connector().listen(self.key),
        }
    }

    /// Gives `claim` back without blocking; see
    /// [`Connector::release`](crate::connector::Connector::release).
    #[inline]
    pub(crate) fn release(self, store: &Store, claim: Claim) {
        match self.entry {
            Some(e) if claim.kind.is_borrow() => e.give_back_borrow(&claim),
            Some(e) => e.release(claim),
            None => store.connector().release(self.key, claim),
        }
    }

    /// A version-checked read; see [`Connector::fetch`](crate::connector::Connector::fetch).
    #[inline]
    pub(crate) fn fetch(self, store: &Store, known_version: Option<u64>) -> Result<Fetch> {
        match self.entry {
            Some(e) => e.fetch(known_version),
            None => store.blocking().fetch(self.key, known_version),
        }
    }

    /// [`fetch`](Self::fetch) without blocking the executor.
    pub(crate) async fn fetch_async(
        self,
        store: &Store,
        known_version: Option<u64>,
    ) -> Result<Fetch> {
        match self.entry {
            Some(e) => e.fetch(known_version),
            None => {
                store
                    .connector()
                    .fetch_async(*self.key, known_version)
                    .await
            }
        }
    }

    /// Replaces the value on behalf of `writer`; returns the new version.
    /// See [`Connector::publish`](crate::connector::Connector::publish).
    #[inline]
    pub(crate) fn publish(self, store: &Store, writer: Claim, value: Value) -> Result<u64> {
        match self.entry {
            Some(e) => e.publish(writer, value),
            None => store.blocking().publish(self.key, writer, value),
        }
    }

    /// [`publish`](Self::publish) without blocking the executor.
    pub(crate) async fn publish_async(
        self,
        store: &Store,
        writer: Claim,
        value: Value,
    ) -> Result<u64> {
        match self.entry {
            Some(e) => e.publish(writer, value),
            None => {
                store
                    .connector()
                    .publish_async(*self.key, writer, value)
                    .await
            }
        }
    }

    /// Publishes without blocking on the network (queued with the
    /// releases where the connector queues them); `None` when queued. See
    /// [`Connector::queue_publish`](crate::connector::Connector::queue_publish).
    pub(crate) fn queue_publish(
        self,
        store: &Store,
        writer: Claim,
        value: Value,
    ) -> Result<Option<u64>> {
        match self.entry {
            Some(e) => e.queue_publish(writer, value),
            None => store.connector().queue_publish(self.key, writer, value),
        }
    }
}
