//! The connector's shared half, [`Inner`]: what the connector and its lease
//! thread hold. It sends requests to the I/O thread, waits for their
//! replies, and turns replies into results.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::Value as RValue;
use tokio::sync::{mpsc, oneshot};

use super::io::{Refused, Reply, ReplyTo, Request};
use super::script::{args, int, items, kind_code, release_args, text, token};
use crate::connector::lease::Held;
use crate::connector::offload::Undo;
use crate::connector::{Fetch, Sleep, Stored, Value, Waiters};
use crate::error::{Borrows, Error, Result};
use crate::key::{ClaimId, Key};
use crate::state::{Claim, Effect, Init, Op, Refusal};

/// The state shared by a [`RedisConnector`](super::RedisConnector) and its
/// lease thread.
pub(super) struct Inner {
    pub(super) name: String,
    pub(super) namespace: String,
    pub(super) lease: Duration,
    pub(super) timeout: Duration,
    pub(super) queue: mpsc::UnboundedSender<Request>,
    pub(super) held: Held,
    /// This process's waiting borrows, woken by the subscriber.
    pub(super) waiters: Arc<Waiters>,
    /// Whether the subscriber was asked for.
    pub(super) subscribed: AtomicBool,
    /// Queued publishes the server refused since the last flush.
    pub(super) refused: Refused,
    /// The id of this store connection in the process table: the holder
    /// its claims name. Replaced by a fresh one if the table judges it
    /// dead (its claims are reclaimed; later claims must not be).
    pub(super) process: Mutex<ClaimId>,
}

pub(super) fn connector_error(
    store: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::Connector {
        store: store.to_owned(),
        source: Box::new(e),
    }
}

impl Inner {
    pub(super) fn keys(&self, key: &Key) -> [String; 5] {
        let ns = &self.namespace;
        ["s", "r", "h", "t", "x"].map(|p| format!("{ns}:{{{key}}}:{p}"))
    }

    pub(super) fn error(&self, reason: impl Into<String>) -> Error {
        Error::Connector {
            store: self.name.clone(),
            source: reason.into().into(),
        }
    }

    /// The claim record of a claim this connection takes: its process id
    /// (see `state.lua`).
    pub(super) fn holder(&self) -> String {
        crate::sync::unmodeled::lock(&self.process).to_string()
    }

    /// The lease in milliseconds, as the script takes it.
    pub(super) fn lease_ms(&self) -> String {
        self.lease.as_millis().max(1).to_string()
    }

    pub(super) fn enqueue(&self, req: Request) -> Result<()> {
        self.queue
            .send(req)
            .map_err(|_| self.error("the connector's I/O thread has stopped"))
    }

    /// How long a caller waits for a reply: the I/O task always answers
    /// within the connection and response timeouts; this is a safety net.
    pub(super) fn patience(&self) -> Duration {
        self.timeout * 3 + Duration::from_millis(200)
    }

    pub(super) fn reply(&self, r: Option<Reply>) -> Result<RValue> {
        match r {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(connector_error(&self.name, e)),
            None => Err(self.error(format!("no reply within {:?}", self.patience()))),
        }
    }

    /// Runs the script on `key` and waits for the reply.
    pub(super) fn call(&self, key: &Key, args: Vec<Vec<u8>>) -> Result<RValue> {
        self.call_on(self.keys(key), args)
    }

    /// Runs the script on `keys` and waits for the reply.
    pub(super) fn call_on(&self, keys: [String; 5], args: Vec<Vec<u8>>) -> Result<RValue> {
        let (tx, rx) = std_mpsc::sync_channel(1);
        self.enqueue(Request::Script {
            keys,
            args,
            reply: ReplyTo::Thread(tx),
        })?;
        self.reply(rx.recv_timeout(self.patience()).ok())
    }

    /// Runs the script on `key` without blocking: the reply is awaited.
    /// Dropping the future leaves the request queued; it is still applied.
    pub(super) async fn call_async(&self, key: &Key, args: Vec<Vec<u8>>) -> Result<RValue> {
        let (tx, rx) = oneshot::channel();
        self.enqueue(Request::Script {
            keys: self.keys(key),
            args,
            reply: ReplyTo::Task(tx),
        })?;
        self.answer(rx).await
    }

    /// The reply on `rx`, or no reply after [`patience`](Self::patience).
    pub(super) async fn answer(&self, rx: oneshot::Receiver<Reply>) -> Result<RValue> {
        let late = Sleep::until(Instant::now() + self.patience());
        match futures::future::select(rx, late).await {
            futures::future::Either::Left((r, _)) => self.reply(r.ok()),
            futures::future::Either::Right(_) => self.reply(None),
        }
    }

    /// What gives `claim` back if the future of the request taking it is
    /// dropped before its reply: a release queued behind the request.
    pub(super) fn undo(self: &Arc<Self>, key: &Key, claim: Claim) -> Undo {
        let (inner, key) = (self.clone(), *key);
        Undo::new(move || inner.queue_release(&key, claim))
    }

    /// Starts the subscriber (once): from then on the releases of every
    /// process wake this process's waiters.
    pub(super) fn subscribe(&self) {
        if !self.subscribed.load(Ordering::Acquire) && !self.subscribed.swap(true, Ordering::AcqRel)
        {
            let req = Request::Subscribe {
                channel: format!("{}:released", self.namespace),
                waiters: self.waiters.clone(),
            };
            if self.enqueue(req).is_err() {
                tracing::warn!("cannot subscribe: the I/O thread has stopped");
            }
        }
    }

    /// The queued publishes refused since the last call, as one error.
    pub(super) fn take_refused(&self) -> Result<()> {
        let refused = std::mem::take(&mut *crate::sync::unmodeled::lock(&self.refused));
        if refused.is_empty() {
            Ok(())
        } else {
            Err(self.error(refused.join("; ")))
        }
    }

    pub(super) fn queue_release(&self, key: &Key, claim: Claim) {
        self.held.remove(key, &claim);
        // A waiter of this process may be waiting for it: no lingering.
        let reply = if self.waiters.is_listening() {
            ReplyTo::Soon
        } else {
            ReplyTo::Nobody
        };
        let req = Request::Script {
            keys: self.keys(key),
            args: release_args(claim),
            reply,
        };
        if self.enqueue(req).is_err() {
            tracing::warn!(%key, "release dropped: the I/O thread has stopped; the lease will expire");
        }
    }

    pub(super) fn status(&self, key: &Key, v: &RValue) -> Result<String> {
        text(v).ok_or_else(|| self.error(format!("unexpected reply for {key}: {v:?}")))
    }

    /// The error for the script's refusal `status` of operation `op` (its
    /// [`Op::name`]). Refusals because of borrows carry the borrows the
    /// script saw: `borrowed:<readers>:<writer 0/1>`.
    pub(super) fn refusal(&self, key: &Key, status: &str, op: &'static str) -> Error {
        let (code, counts) = status.split_once(':').unwrap_or((status, ""));
        let borrows = || {
            let (readers, writer) = counts.split_once(':')?;
            Some(Borrows {
                readers: readers.parse().ok()?,
                writer: match writer {
                    "0" => false,
                    "1" => true,
                    _ => return None,
                },
            })
        };
        let r = match (code, borrows()) {
            ("gone" | "missing", _) => Refusal::Gone,
            ("borrowed", Some(b)) => Refusal::Borrowed(b),
            ("mutably_borrowed", Some(b)) => Refusal::MutablyBorrowed(b),
            ("owned", _) => Refusal::Owned,
            ("not_held" | "lost", _) => Refusal::NotHeld,
            _ => return self.error(format!("unexpected reply for {key}: {status}")),
        };
        r.into_error(op, *key, &self.name)
    }

    pub(super) fn apply_args(&self, op: Op) -> Vec<Vec<u8>> {
        match op {
            Op::Acquire(c) => args([
                b"acquire",
                kind_code(c.kind).as_bytes(),
                c.id.to_string().as_bytes(),
                self.holder().as_bytes(),
            ]),
            Op::Release(c) => release_args(c),
            Op::Disown(c) => args([
                b"disown",
                kind_code(c.kind).as_bytes(),
                c.id.to_string().as_bytes(),
            ]),
            Op::Evict => args([b"evict"]),
        }
    }

    pub(super) fn apply_result(&self, key: &Key, op: Op, v: &RValue) -> Result<Effect> {
        let status = self.status(key, v)?;
        let effect = match status.as_str() {
            "ok" => Effect::None,
            "evicted" => Effect::Evict,
            other => return Err(self.refusal(key, other, op.name())),
        };
        match op {
            Op::Acquire(c) => self.held.add(*key, c),
            Op::Release(c) | Op::Disown(c) => self.held.remove(key, &c),
            Op::Evict => self.held.forget_key(key),
        }
        if effect == Effect::Evict {
            self.held.forget_key(key);
        }
        Ok(effect)
    }

    pub(super) fn fetch_result(&self, key: &Key, v: RValue) -> Result<Fetch> {
        let mut it = items(v).into_iter();
        let status = it.next().as_ref().and_then(text).unwrap_or_default();
        match status.as_str() {
            "missing" => Ok(Fetch::Missing),
            "unchanged" => Ok(Fetch::Unchanged),
            "changed" | "ok" => {
                let version = int(it.next().as_ref());
                match (version, it.next()) {
                    (Some(version), Some(RValue::BulkString(b))) => Ok(Fetch::Changed(Stored {
                        value: Value::Bytes(Bytes::from(b)),
                        version,
                    })),
                    _ => Err(self.error(format!("malformed reply for {key}"))),
                }
            }
            // `take` (an ephemeral resolve's eviction) refused
            s if s.starts_with("borrowed:") => Err(self.refusal(key, s, Op::Evict.name())),
            other => Err(self.error(format!("unexpected reply for {key}: {other}"))),
        }
    }

    pub(super) fn fetch_args(known: Option<u64>) -> Vec<Vec<u8>> {
        let known = known.map(|v| v.to_string()).unwrap_or_default();
        args([b"fetch", known.as_bytes()])
    }

    pub(super) fn put_args(&self, value: Value, init: Init) -> Result<Vec<Vec<u8>>> {
        let blob = value.into_bytes()?;
        let (kind, id) = match init {
            Init::Plain => ("", String::new()),
            Init::Claimed(c) => (kind_code(c.kind), c.id.to_string()),
        };
        Ok(vec![
            b"put".to_vec(),
            blob.to_vec(),
            token().into_bytes(),
            kind.as_bytes().to_vec(),
            id.into_bytes(),
            self.holder().into_bytes(),
        ])
    }
}

impl Inner {
    pub(super) fn scan_keys(&self) -> Result<Vec<Key>> {
        let (tx, rx) = std_mpsc::sync_channel(1);
        self.enqueue(self.scan_request(ReplyTo::Thread(tx)))?;
        let v = self.reply(rx.recv_timeout(self.patience()).ok())?;
        Ok(self.scanned(v))
    }

    pub(super) async fn scan_keys_async(&self) -> Result<Vec<Key>> {
        let (tx, rx) = oneshot::channel();
        self.enqueue(self.scan_request(ReplyTo::Task(tx)))?;
        let v = self.answer(rx).await?;
        Ok(self.scanned(v))
    }

    fn scan_request(&self, reply: ReplyTo) -> Request {
        Request::Scan {
            pattern: format!("{}:{{*}}:s", self.namespace),
            reply,
        }
    }

    fn scanned(&self, v: RValue) -> Vec<Key> {
        let prefix = format!("{}:{{", self.namespace);
        items(v)
            .iter()
            .filter_map(text)
            .filter_map(|k| {
                k.strip_prefix(&prefix)?
                    .strip_suffix("}:s")?
                    .parse::<Key>()
                    .ok()
            })
            .collect()
    }
}
