//! [`RedisConnector`] and its [`Connector`] impl.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;

use super::client::{Inner, connector_error};
use super::conn::Connect;
use super::io;
use super::liveness::Liveness;
use super::options::RedisOptions;
use super::pool::Dial;
use super::send::Transport;
use crate::connector::lease::Held;
use crate::connector::{Connector, Entry, Fetch, Inspect, Recheck, Stored, Value, Waiters};
use crate::error::{Error, Result};
use crate::key::{ClaimId, Key};
use crate::state::{Claim, ClaimKind, Effect, Init, Op};

/// How this process's waiters re-check when no message came: a message
/// can be lost with its connection, and a dead process's claims expire
/// without one until an operation (or the reap pass) notices.
const RECHECK: Recheck = Recheck::Backoff {
    first: Duration::from_millis(100),
    max: Duration::from_secs(1),
};

/// Keeps objects in Redis, shared by every process on every machine that
/// reaches the server
/// (`redis://host:port/db?ns=NAME&lease_ms=N&timeout_ms=N`), a Redis Cluster
/// (`redis+cluster://host1:port1,host2:port2?…`), either over TLS
/// (`rediss://`, `rediss+cluster://`, with `tls_ca=/path` for a private
/// authority).
///
/// Every state transition is one Lua script — one round trip — that applies
/// the rules of [`State::apply`](crate::state::State::apply) atomically and is idempotent (by claim id,
/// or by a token for puts, publishes, takes and redeems), so a script that
/// the reconnecting client retries after a lost reply does nothing twice.
/// Keys are `<namespace>:{<object key>}:<part>`: the hash tag puts all of an
/// object's keys in one cluster slot, so on a cluster every script runs on
/// one node. Nothing ever runs `FLUSHDB` or touches keys outside the
/// namespace. On a cluster the store's keys are scanned on every primary,
/// and a failover is ridden out by retrying on the new primary within the
/// timeout (a retried script does nothing twice).
///
/// A blocking operation sends its request on the calling thread, over a
/// small pool of connections; an `_async` operation polled by a tokio
/// runtime sends it on the polling task, over that runtime's multiplexed
/// connection (outside tokio, or on a runtime built without an I/O driver,
/// the connector's own I/O thread serves it), so the connector works from
/// plain threads, from inside any runtime, and from `Drop`. Tokio cannot
/// be asked whether a runtime has an I/O driver: the first async call on
/// a runtime finds out by making its connection under `catch_unwind`, and
/// on one without, the panic hook prints tokio's message once. The script is
/// loaded as a function library (`FUNCTION LOAD`) and called with `FCALL`
/// where the server has functions (Redis 7 and later), and by `EVALSHA`
/// otherwise; it is loaded again when a restarted server has lost it.
///
/// That is one server, plain or over TLS. A cluster's requests, blocking
/// and async, are all served by the I/O thread over one cluster connection
/// (its pipelines split by hash tag, the script loaded on every primary).
///
/// Releases are queued without waiting and ride at the front of the next
/// request's pipeline (or go out alone from the I/O thread after a
/// millisecond); this process's releases land before its later requests,
/// and [`Connector::flush`] waits for them. Every operation fails with
/// [`Error::Connector`] within its own timeout (`timeout_ms`) when the
/// server is unreachable or stalled, however many are in flight; a request
/// whose connection broke (the server closed it, for example after a value
/// over its `proto-max-bulk-len`) is sent again on a new connection, since
/// every script is idempotent.
///
/// An async request that takes a claim and is dropped before its reply
/// queues the claim's release, which waits until the request's reply has
/// come. A `RefMutProxy` dropped with changes queues its publish ahead of
/// its release; a publish the server refuses is reported by the next flush.
///
/// Waiting borrows are woken by the releases of every process: the release
/// script publishes the object's key on `<namespace>:released`, and one
/// subscriber connection per store (started by the first waiting borrow)
/// wakes the waiters of that key in this process. Waiters re-check after
/// 100 ms, then twice as long each time up to 1 s, for messages that never
/// come (a lost connection, the lease of a dead process running out).
///
/// # Leases
///
/// A lease belongs to the connector (one store connection; a process that
/// opens the same store twice has two leases), not to a claim. Every claim
/// it takes names its random process id; its one record in the namespace's
/// process table (`<namespace>:{<namespace>:procs}`) is renewed every third
/// of `lease_ms` by a background thread — one round trip however many
/// claims it holds — and removed once it holds none. Every deadline is set
/// and compared on the server's clock (`TIME` in the script): a client's
/// clock plays no part. A record not renewed for a lease is judged dead,
/// and a reap pass of the namespace (made by the same thread between its
/// renewals, one object at a time, so it never delays one) releases the
/// dead process's claims on every object, as if its handles had been
/// dropped. After a server stall
/// longer than half a lease, every record is first given a full lease, so
/// live processes renew before anything is judged. A connector that is
/// judged dead itself (cut off for a lease) forgets its claims, logs
/// `lease lost`, and names a fresh process id from then on. A ticket in
/// flight belongs to no process: its claim is released a lease after it was
/// made unless it is redeemed; once redeemed it leaves no record (a
/// redeem retried after a lost reply is recognised for a minute).
pub struct RedisConnector {
    pub(super) inner: Arc<Inner>,
    liveness: Option<Liveness>,
}

impl Drop for RedisConnector {
    /// Ends the lease thread now, and queues the removal of this
    /// connection's process record behind its releases (the I/O thread
    /// ends once its queue is applied): a closed store leaves no thread
    /// behind, and nothing in the process table.
    fn drop(&mut self) {
        if let Some(l) = self.liveness.take() {
            l.stop();
        }
        self.inner.queue_leave();
    }
}

impl RedisConnector {
    /// A connector for the store named `name`; connects on first use.
    pub fn new(name: impl Into<String>, options: RedisOptions) -> Result<Self> {
        let name = name.into();
        let connect = Connect::new(&options).map_err(|reason| Error::InvalidUrl {
            url: options.url.clone(),
            reason,
        })?;
        let dial = Dial::new(connect).map_err(|e| Error::InvalidUrl {
            url: options.url.clone(),
            reason: e.to_string(),
        })?;
        let transport = Arc::new(Transport::new(dial, options.timeout));
        let io = io::start(transport.clone()).map_err(|e| connector_error(&name, e))?;
        let inner = Arc::new(Inner {
            name,
            namespace: options.namespace,
            lease: options.lease,
            timeout: options.timeout,
            transport,
            io,
            held: Held::default(),
            waiters: Waiters::new(RECHECK),
            subscribed: AtomicBool::new(false),
            process: Mutex::new(ClaimId::random()),
            note_head: {
                let (pid, host) = crate::connector::this_process();
                format!("{pid}|{host}|")
            },
        });
        let liveness = Some(Liveness::start(Arc::downgrade(&inner), options.lease));
        Ok(RedisConnector { inner, liveness })
    }

    /// The lease length.
    pub fn lease(&self) -> Duration {
        self.inner.lease
    }

    /// Number of claims this process holds and renews.
    pub fn held_claims(&self) -> usize {
        self.inner.held.len()
    }
}

impl Connector for RedisConnector {
    fn put(&self, key: &Key, value: Value, init: Init) -> Result<Option<Arc<dyn Entry>>> {
        self.run(self.put_call(key, value, init)?)?;
        Ok(self.put_done(key, init))
    }

    fn get(&self, key: &Key) -> Result<Option<Stored>> {
        match self.fetch(key, None)? {
            Fetch::Changed(s) => Ok(Some(s)),
            _ => Ok(None),
        }
    }

    fn fetch(&self, key: &Key, known_version: Option<u64>) -> Result<Fetch> {
        self.run(Self::fetch_call(key, known_version))
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        Ok(self.run(Self::inspect_call(key))?.is_some())
    }

    fn evict(&self, key: &Key) -> Result<bool> {
        evicted(self.apply(key, Op::Evict))
    }

    fn take(&self, key: &Key) -> Result<Option<Stored>> {
        self.run(Self::take_call(key))
    }

    fn publish(&self, key: &Key, writer: Claim, value: Value) -> Result<u64> {
        self.run(Self::publish_call(key, writer, value)?)
    }

    fn queue_publish(&self, key: &Key, writer: Claim, value: Value) -> Result<Option<u64>> {
        self.inner
            .queue_publish(key, Self::publish_args(key, writer, value)?)?;
        Ok(None)
    }

    fn apply(&self, key: &Key, op: Op) -> Result<Effect> {
        let v = self.run(self.apply_call(key, op))?;
        self.inner.apply_result(key, op, &v)
    }

    fn acquire_fetch(
        &self,
        key: &Key,
        claim: Claim,
        known_version: Option<u64>,
    ) -> Result<Option<Fetch>> {
        let parts = self.run(self.acquire_fetch_call(key, claim, known_version))?;
        self.acquire_fetch_done(key, claim, parts)
    }

    fn release(&self, key: &Key, claim: Claim) {
        self.inner.queue_release(key, claim);
    }

    fn waiters(&self) -> Option<&Arc<Waiters>> {
        Some(&self.inner.waiters)
    }

    fn listen(&self, key: &Key) {
        let _ = key;
        self.inner.subscribe();
    }

    fn issue_ticket(&self, key: &Key, ticket: ClaimId, claim: Claim) -> Result<()> {
        let status = self.run(self.issue_call(key, ticket, claim))?;
        self.issue_done(key, claim, &status)
    }

    fn redeem_ticket(&self, key: &Key, ticket: ClaimId, kind: ClaimKind) -> Result<Claim> {
        let parts = self.run(self.redeem_call(key, ticket, kind))?;
        self.redeem_done(key, ticket, kind, &parts)
    }

    fn cancel_ticket(&self, key: &Key, ticket: ClaimId, kind: ClaimKind) -> Result<()> {
        let status = self.run(self.cancel_call(key, ticket, kind))?;
        self.cancel_done(key, ticket, &status)
    }

    fn inspect(&self, key: &Key) -> Result<Option<Inspect>> {
        self.run(Self::peek_call(key))
    }

    fn keys(&self) -> Result<Vec<Key>> {
        self.inner.scan_keys()
    }

    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    fn put_async(
        &self,
        key: Key,
        value: Value,
        init: Init,
    ) -> BoxFuture<'_, Result<Option<Arc<dyn Entry>>>> {
        Box::pin(async move {
            let claim = match init {
                Init::Claimed(c) => Some(c),
                Init::Plain => None,
            };
            self.run_claiming(self.put_call(&key, value, init)?, claim)
                .await?;
            Ok(self.put_done(&key, init))
        })
    }

    fn fetch_async(&self, key: Key, known_version: Option<u64>) -> BoxFuture<'_, Result<Fetch>> {
        Box::pin(self.run_async(Self::fetch_call(&key, known_version)))
    }

    fn exists_async(&self, key: Key) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move { Ok(self.run_async(Self::inspect_call(&key)).await?.is_some()) })
    }

    fn evict_async(&self, key: Key) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move { evicted(self.apply_async(key, Op::Evict).await) })
    }

    fn take_async(&self, key: Key) -> BoxFuture<'_, Result<Option<Stored>>> {
        Box::pin(self.run_async(Self::take_call(&key)))
    }

    fn publish_async(&self, key: Key, writer: Claim, value: Value) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            self.run_async(Self::publish_call(&key, writer, value)?)
                .await
        })
    }

    fn apply_async(&self, key: Key, op: Op) -> BoxFuture<'_, Result<Effect>> {
        Box::pin(async move {
            let claim = match op {
                Op::Acquire(c) => Some(c),
                _ => None,
            };
            let v = self.run_claiming(self.apply_call(&key, op), claim).await?;
            self.inner.apply_result(&key, op, &v)
        })
    }

    fn acquire_fetch_async(
        &self,
        key: Key,
        claim: Claim,
        known_version: Option<u64>,
    ) -> BoxFuture<'_, Result<Option<Fetch>>> {
        Box::pin(async move {
            let call = self.acquire_fetch_call(&key, claim, known_version);
            let parts = self.run_claiming(call, Some(claim)).await?;
            self.acquire_fetch_done(&key, claim, parts)
        })
    }

    fn issue_ticket_for_async(
        &self,
        key: Key,
        ticket: ClaimId,
        claim: Claim,
        lease: Duration,
    ) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let ms = super::client::millis(lease);
            let status = self
                .run_async(self.issue_call_for(&key, ticket, claim, &ms))
                .await?;
            self.issue_done(&key, claim, &status)
        })
    }

    fn renews_tickets(&self) -> bool {
        true
    }

    fn renew_ticket_async(
        &self,
        key: Key,
        ticket: ClaimId,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Option<u64>>> {
        Box::pin(async move {
            let ms = super::client::millis(lease);
            let status = self.run_async(self.renew_call(&key, ticket, &ms)).await?;
            self.renew_done(&key, ticket, &status).map(Some)
        })
    }

    fn issue_ticket_async(
        &self,
        key: Key,
        ticket: ClaimId,
        claim: Claim,
    ) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let status = self.run_async(self.issue_call(&key, ticket, claim)).await?;
            self.issue_done(&key, claim, &status)
        })
    }

    fn redeem_ticket_async(
        &self,
        key: Key,
        ticket: ClaimId,
        kind: ClaimKind,
    ) -> BoxFuture<'_, Result<Claim>> {
        Box::pin(async move {
            let parts = self.run_async(self.redeem_call(&key, ticket, kind)).await?;
            self.redeem_done(&key, ticket, kind, &parts)
        })
    }

    fn cancel_ticket_async(
        &self,
        key: Key,
        ticket: ClaimId,
        kind: ClaimKind,
    ) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let status = self.run_async(self.cancel_call(&key, ticket, kind)).await?;
            self.cancel_done(&key, ticket, &status)
        })
    }

    fn cancel_tickets_async(
        &self,
        key: Key,
        tickets: Vec<(ClaimId, ClaimKind)>,
    ) -> BoxFuture<'_, Result<Vec<Result<()>>>> {
        Box::pin(async move {
            if tickets.is_empty() {
                return Ok(Vec::new());
            }
            let statuses = self.run_async(self.cancels_call(&key, &tickets)).await?;
            if statuses.len() != tickets.len() {
                return Err(self.inner.error(format!(
                    "unexpected reply for {key}: {} statuses for {} tickets",
                    statuses.len(),
                    tickets.len()
                )));
            }
            Ok(tickets
                .iter()
                .zip(&statuses)
                .map(|((ticket, _), status)| self.cancel_done(&key, *ticket, status))
                .collect())
        })
    }

    fn inspect_async(&self, key: Key) -> BoxFuture<'_, Result<Option<Inspect>>> {
        Box::pin(self.run_async(Self::peek_call(&key)))
    }

    fn keys_async(&self) -> BoxFuture<'_, Result<Vec<Key>>> {
        Box::pin(self.inner.scan_keys_async())
    }

    fn flush_async(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.inner.flush_async())
    }
}

/// `evict`'s answer from the outcome of an `Op::Evict`.
fn evicted(r: Result<Effect>) -> Result<bool> {
    match r {
        Ok(_) => Ok(true),
        Err(Error::KeyNotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}
