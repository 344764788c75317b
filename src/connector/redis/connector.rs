//! [`RedisConnector`] and its [`Connector`] impl.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use redis::Value as RValue;
use tokio::sync::oneshot;

use super::client::{Inner, connector_error};
use super::io::{self, ReplyTo, Request};
use super::options::RedisOptions;
use super::script::{args, int, items, kind_code, kind_from, text, token};
use crate::connector::lease::{self, Held};
use crate::connector::{Connector, Entry, Fetch, Inspect, Stored, Value};
use crate::error::{Error, Result};
use crate::key::{ClaimId, Key};
use crate::state::{Claim, ClaimKind, Effect, Init, Op, State};

/// Keeps objects in Redis, shared by every process on every machine that
/// reaches the server
/// (`redis://host:port/db?ns=NAME&lease_ms=N&timeout_ms=N`).
///
/// Every state transition is one Lua script — one round trip — that applies
/// the rules of [`State::apply`] atomically and is idempotent (by claim id,
/// or by a token for puts, publishes, takes and redeems), so a script that
/// the reconnecting client retries after a lost reply does nothing twice.
/// Keys are `<namespace>:{<object key>}:<part>`: the hash tag puts all of an
/// object's keys in one cluster slot. Nothing ever runs `FLUSHDB` or touches
/// keys outside the namespace.
///
/// The client runs on the connector's own I/O thread, so the connector works
/// from plain threads, from inside any tokio runtime, and from `Drop`.
/// Requests are applied in the order this process makes them; releases are
/// queued without waiting (consecutive ones go out as one pipeline), and
/// [`Connector::flush`] waits for them. Every operation fails with
/// [`Error::Connector`] within its timeout when the server is unreachable.
pub struct RedisConnector {
    inner: Arc<Inner>,
    renewer: Option<lease::Renewer>,
}

impl Drop for RedisConnector {
    /// Ends the lease renewer now (the I/O thread ends once its queue is
    /// applied): a closed store leaves no thread behind.
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.stop();
        }
    }
}

impl RedisConnector {
    /// A connector for the store named `name`; connects on first use.
    pub fn new(name: impl Into<String>, options: RedisOptions) -> Result<Self> {
        let name = name.into();
        let client = redis::Client::open(options.url.as_str()).map_err(|e| Error::InvalidUrl {
            url: options.url.clone(),
            reason: e.to_string(),
        })?;
        let tx = io::start(client, options.timeout).map_err(|e| connector_error(&name, e))?;
        let inner = Arc::new(Inner {
            name,
            namespace: options.namespace,
            lease: options.lease,
            timeout: options.timeout,
            queue: tx,
            held: Held::default(),
        });
        let renewer = Some(lease::spawn_renewer(Arc::downgrade(&inner), options.lease));
        Ok(RedisConnector { inner, renewer })
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
        let inner = &self.inner;
        let v = inner.call(key, inner.put_args(value, init)?)?;
        inner.put_result(key, init, &v)
    }

    fn get(&self, key: &Key) -> Result<Option<Stored>> {
        match self.fetch(key, None)? {
            Fetch::Changed(s) => Ok(Some(s)),
            _ => Ok(None),
        }
    }

    fn fetch(&self, key: &Key, known_version: Option<u64>) -> Result<Fetch> {
        let v = self.inner.call(key, Inner::fetch_args(known_version))?;
        self.inner.fetch_result(key, v)
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        Ok(self.inspect(key)?.is_some())
    }

    fn evict(&self, key: &Key) -> Result<bool> {
        match self.apply(key, Op::Evict) {
            Ok(_) => Ok(true),
            Err(Error::KeyNotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn take(&self, key: &Key) -> Result<Option<Stored>> {
        let inner = &self.inner;
        let v = inner.call(key, args([b"take", token().as_bytes()]))?;
        match inner.fetch_result(key, v)? {
            Fetch::Changed(s) => {
                inner.held.forget_key(key);
                Ok(Some(s))
            }
            _ => Ok(None),
        }
    }

    fn publish(&self, key: &Key, writer: Claim, value: Value) -> Result<u64> {
        let inner = &self.inner;
        if writer.kind != ClaimKind::Writer {
            return Err(Error::ClaimLost { key: *key });
        }
        let blob = value.into_bytes()?;
        let a = vec![
            b"publish".to_vec(),
            writer.id.to_string().into_bytes(),
            blob.to_vec(),
            token().into_bytes(),
        ];
        let v = inner.call(key, a)?;
        let status = inner.status(key, &v)?;
        status
            .parse::<u64>()
            .map_err(|_| inner.refusal(key, &status, "publish"))
    }

    fn apply(&self, key: &Key, op: Op) -> Result<Effect> {
        let v = self.inner.call(key, self.inner.apply_args(op))?;
        self.inner.apply_result(key, op, &v)
    }

    fn acquire_fetch(
        &self,
        key: &Key,
        claim: Claim,
        known_version: Option<u64>,
    ) -> Result<Option<Fetch>> {
        let inner = &self.inner;
        let known = known_version.map(|v| v.to_string()).unwrap_or_default();
        let a = args([
            b"acquire_fetch",
            kind_code(claim.kind).as_bytes(),
            claim.id.to_string().as_bytes(),
            inner.deadline().as_bytes(),
            known.as_bytes(),
        ]);
        let mut parts = items(inner.call(key, a)?);
        let status = parts.first().and_then(text).unwrap_or_default();
        if status != "ok" {
            return Err(inner.refusal(key, &status, Op::Acquire(claim).name()));
        }
        inner.held.add(*key, claim);
        parts.remove(0);
        inner.fetch_result(key, RValue::Array(parts)).map(Some)
    }

    fn release(&self, key: &Key, claim: Claim) {
        self.inner.queue_release(key, claim);
    }

    fn issue_ticket(&self, key: &Key, ticket: ClaimId, claim: Claim) -> Result<()> {
        let inner = &self.inner;
        let a = args([
            b"issue",
            ticket.to_string().as_bytes(),
            kind_code(claim.kind).as_bytes(),
            claim.id.to_string().as_bytes(),
        ]);
        match inner.status(key, &inner.call(key, a)?)?.as_str() {
            "ok" => {
                inner.held.remove(key, &claim);
                Ok(())
            }
            other => Err(inner.refusal(key, other, "into_ticket")),
        }
    }

    fn redeem_ticket(&self, key: &Key, ticket: ClaimId, kind: ClaimKind) -> Result<Claim> {
        let inner = &self.inner;
        let a = args([
            b"redeem",
            ticket.to_string().as_bytes(),
            token().as_bytes(),
            inner.deadline().as_bytes(),
            kind_code(kind).as_bytes(),
        ]);
        let v = inner.call(key, a)?;
        let redeemed = || Error::TicketRedeemed {
            ticket: ticket.to_string(),
        };
        let parts = items(v);
        let status = parts.first().and_then(text).unwrap_or_default();
        match status.as_str() {
            "ok" => {
                let kind = parts.get(1).and_then(text).and_then(|k| kind_from(&k));
                let id = parts
                    .get(2)
                    .and_then(text)
                    .and_then(|i| crate::key::parse_hex128(&i));
                match (kind, id) {
                    (Some(kind), Some(id)) => {
                        let claim = Claim {
                            kind,
                            id: ClaimId::from_u128(id),
                        };
                        inner.held.add(*key, claim);
                        Ok(claim)
                    }
                    _ => Err(inner.error(format!("malformed redeem reply for {key}"))),
                }
            }
            "wrong_kind" => {
                let found = parts
                    .get(1)
                    .and_then(text)
                    .and_then(|k| kind_from(&k))
                    .unwrap_or(kind);
                Err(crate::connector::wrong_ticket_kind(found, kind))
            }
            "redeemed" | "gone" | "missing" => Err(redeemed()),
            other => Err(inner.error(format!("unexpected reply for {key}: {other}"))),
        }
    }

    fn cancel_ticket(&self, key: &Key, ticket: ClaimId, kind: ClaimKind) -> Result<()> {
        let claim = self.redeem_ticket(key, ticket, kind)?;
        self.apply(key, Op::Release(claim)).map(|_| ())
    }

    fn inspect(&self, key: &Key) -> Result<Option<Inspect>> {
        let inner = &self.inner;
        let parts = items(inner.call(key, args([b"inspect"]))?);
        match parts.first().and_then(text).as_deref() {
            Some("missing") => return Ok(None),
            Some("ok") => {}
            _ => return Err(inner.error(format!("malformed inspect reply for {key}"))),
        }
        let n = |i: usize| int(parts.get(i)).unwrap_or(0);
        let state = State::from_parts(
            u32::try_from(n(4)).unwrap_or(u32::MAX),
            n(3) == 1,
            n(2) == 1,
            u32::try_from(n(5)).unwrap_or(u32::MAX),
            n(6) == 1,
            false,
        );
        Ok(Some(Inspect {
            state,
            version: n(1),
        }))
    }

    fn keys(&self) -> Result<Vec<Key>> {
        self.inner.scan_keys()
    }

    fn flush(&self) -> Result<()> {
        // The queue is ordered: a reply to a request sent now means every
        // release queued before it has been applied.
        self.inner
            .call(&Key::from_u128(0), args([b"reap"]))
            .map(|_| ())
    }

    fn flush_async(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            self.inner.enqueue(Request::Flush {
                reply: ReplyTo::Task(tx),
            })?;
            self.inner.reply(rx.await.ok()).map(|_| ())
        })
    }
}
