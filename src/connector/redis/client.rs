//! The connector's shared half, [`Inner`]: what the connector and its lease
//! thread hold. It runs script calls (blocking on the caller's thread,
//! async on the caller's task, through [`Transport`]), queues releases, and
//! turns replies into results.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::Value as RValue;
use tokio::sync::{mpsc, oneshot};

use super::io::Request;
use super::outbox::{Queued, Turn};
use super::pool::timed_out;
use super::script::{Command, args, int, items, kind_code, release_args, text, token};
use super::send::{NoIo, Reattach, Transport};
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
    /// Connections, the release outbox, the script.
    pub(super) transport: Arc<Transport>,
    /// The I/O thread's queue.
    pub(super) io: mpsc::UnboundedSender<Request>,
    pub(super) held: Held,
    /// This process's waiting borrows, woken by the subscriber.
    pub(super) waiters: Arc<Waiters>,
    /// Whether the subscriber was asked for.
    pub(super) subscribed: AtomicBool,
    /// The id of this store connection in the process table: the holder
    /// its claims name. Replaced by a fresh one if the table judges it
    /// dead (its claims are reclaimed; later claims must not be).
    pub(super) process: Mutex<ClaimId>,
    /// The head of every claim note this connection writes (see
    /// `state.lua`): `<os pid>|<host>|`, read once (a connection does not
    /// outlive its process; the pid is a system call).
    pub(super) note_head: String,
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

/// A duration as the script takes it: whole milliseconds, at least one.
pub(super) fn millis(d: Duration) -> String {
    d.as_millis().max(1).to_string()
}

impl Inner {
    pub(super) fn keys(&self, key: &Key) -> [String; 5] {
        let mut base = String::with_capacity(self.namespace.len() + 40);
        base.push_str(&self.namespace);
        base.push_str(":{");
        base.push_str(&key.to_string());
        base.push_str("}:");
        ["s", "r", "h", "t", "x"].map(|p| {
            let mut k = String::with_capacity(base.len() + 1);
            k.push_str(&base);
            k.push_str(p);
            k
        })
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
        millis(self.lease)
    }

    fn enqueue(&self, req: Request) -> Result<()> {
        self.io
            .send(req)
            .map_err(|_| self.error("the connector's I/O thread has stopped"))
    }

    fn failed(&self, e: redis::RedisError) -> Error {
        connector_error(&self.name, e)
    }

    /// Sends the queued releases and then `command` (if any), blocking the
    /// thread: the reply to `command`.
    fn send(&self, command: Option<&Command>, turn: Turn) -> Result<Option<RValue>> {
        if self.transport.is_cluster() {
            // Served by the I/O thread; this thread waits for its reply.
            return futures::executor::block_on(self.through_io_thread(command.cloned(), turn));
        }
        self.transport
            .send_blocking(command, turn)
            .map_err(|e| self.failed(e))
    }

    /// [`send`](Self::send) without blocking: on the caller's task when a
    /// tokio runtime polls it, through the I/O thread otherwise.
    async fn send_async(
        self: &Arc<Self>,
        command: Option<Command>,
        turn: Turn,
    ) -> Result<Option<RValue>> {
        let command = match tokio::runtime::Handle::try_current() {
            Ok(rt) => match self.transport.send_async(rt, command, turn).await {
                Ok(r) => return r.map_err(|e| self.failed(e)),
                Err(NoIo(command)) => command,
            },
            Err(_) => command,
        };
        self.through_io_thread(command, turn).await
    }

    /// An async request served by the I/O thread; it counts as detached
    /// while in flight, so the releases queued meanwhile land after it.
    async fn through_io_thread(
        &self,
        command: Option<Command>,
        turn: Turn,
    ) -> Result<Option<RValue>> {
        let deadline = Instant::now() + self.timeout;
        let t = &self.transport;
        let batch = t
            .take(turn, deadline)
            .await
            .ok_or_else(|| self.failed(timed_out()))?;
        if batch.len() == 0 && command.is_none() {
            return Ok(None);
        }
        let (tx, rx) = oneshot::channel();
        t.outbox.detach();
        let attached = Reattach(t.outbox.clone());
        let flight = t.clone().flight(None, batch, command, deadline);
        self.enqueue(Request::Run(Box::pin(async move {
            let _attached = attached;
            let _ = tx.send(flight.await);
        })))?;
        let late = Sleep::until(deadline + Duration::from_millis(100));
        match futures::future::select(rx, late).await {
            futures::future::Either::Left((Ok(r), _)) => r.map_err(|e| self.failed(e)),
            _ => Err(self.failed(timed_out())),
        }
    }

    /// Runs the script on `key` and waits for the reply.
    pub(super) fn call(&self, key: &Key, args: Vec<Vec<u8>>) -> Result<RValue> {
        self.call_on(self.keys(key), args)
    }

    /// Runs the script on `keys` and waits for the reply.
    pub(super) fn call_on(&self, keys: [String; 5], args: Vec<Vec<u8>>) -> Result<RValue> {
        let command = Command::Script { keys, args };
        Ok(self
            .send(Some(&command), Turn::Request)?
            .unwrap_or(RValue::Nil))
    }

    /// Runs the script on `key` without blocking: the reply is awaited.
    /// Dropping the future once the request is sent leaves it in flight;
    /// it is still applied, before any release queued after it.
    pub(super) async fn call_async(
        self: &Arc<Self>,
        key: &Key,
        args: Vec<Vec<u8>>,
    ) -> Result<RValue> {
        let command = Command::Script {
            keys: self.keys(key),
            args,
        };
        Ok(self
            .send_async(Some(command), Turn::Request)
            .await?
            .unwrap_or(RValue::Nil))
    }

    /// Waits until every release (and publish) queued before it is
    /// applied, then reports the queued publishes the server refused.
    pub(super) fn flush(&self) -> Result<()> {
        let sent = self.send(None, Turn::Flush);
        let refused = self.take_refused();
        sent?;
        refused
    }

    /// [`flush`](Self::flush) without blocking.
    pub(super) async fn flush_async(self: &Arc<Self>) -> Result<()> {
        let sent = self.send_async(None, Turn::Flush).await;
        let refused = self.take_refused();
        sent?;
        refused
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
        let refused = self.transport.outbox.take_refused();
        if refused.is_empty() {
            Ok(())
        } else {
            Err(self.error(refused.join("; ")))
        }
    }

    /// Queues `q` for the next request (or the I/O thread) to send.
    fn queue(&self, q: Queued) -> Result<()> {
        // A waiter of this process may be waiting for it: no lingering.
        let soon = self.waiters.is_listening();
        if self.transport.outbox.push(q) || soon {
            self.enqueue(Request::Kick { soon })?;
        }
        Ok(())
    }

    /// Queues a script call on `keys` that nobody waits for, like a
    /// release (it rides the next request, or goes out alone).
    pub(super) fn queue_script(&self, keys: [String; 5], args: Vec<Vec<u8>>) -> Result<()> {
        self.queue(Queued {
            command: Command::Script { keys, args },
            publish: None,
        })
    }

    pub(super) fn queue_release(&self, key: &Key, claim: Claim) {
        self.held.remove(key, &claim);
        let q = Queued {
            command: Command::Script {
                keys: self.keys(key),
                args: release_args(claim),
            },
            publish: None,
        };
        if self.queue(q).is_err() {
            tracing::warn!(%key, "release not sent: the I/O thread has stopped; it rides the next request");
        }
    }

    /// Queues a dropped writer's publish (`args`) of `key`, ahead of its
    /// release; a refusal is kept for the next flush.
    pub(super) fn queue_publish(&self, key: &Key, args: Vec<Vec<u8>>) -> Result<()> {
        self.queue(Queued {
            command: Command::Script {
                keys: self.keys(key),
                args,
            },
            publish: Some(*key),
        })
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
    fn scan_command(&self, cursor: u64) -> Command {
        let mut c = redis::cmd("SCAN");
        c.arg(cursor)
            .arg("MATCH")
            .arg(format!("{}:{{*}}:s", self.namespace))
            .arg("COUNT")
            .arg(1000);
        Command::Plain(c)
    }

    pub(super) fn scan_keys(&self) -> Result<Vec<Key>> {
        if self.transport.is_cluster() {
            return futures::executor::block_on(self.scan_cluster());
        }
        let (mut cursor, mut out) = (0, Vec::new());
        loop {
            let v = self.send(Some(&self.scan_command(cursor)), Turn::Request)?;
            cursor = self.scanned(v, &mut out)?;
            if cursor == 0 {
                return Ok(out);
            }
        }
    }

    pub(super) async fn scan_keys_async(self: &Arc<Self>) -> Result<Vec<Key>> {
        if self.transport.is_cluster() {
            return self.scan_cluster().await;
        }
        let (mut cursor, mut out) = (0, Vec::new());
        loop {
            let v = self
                .send_async(Some(self.scan_command(cursor)), Turn::Request)
                .await?;
            cursor = self.scanned(v, &mut out)?;
            if cursor == 0 {
                return Ok(out);
            }
        }
    }

    /// The store's keys on every primary of a cluster, after the queued
    /// releases, on the I/O thread.
    async fn scan_cluster(&self) -> Result<Vec<Key>> {
        self.through_io_thread(None, Turn::Request).await?;
        let pattern = format!("{}:{{*}}:s", self.namespace);
        let (t, (tx, rx)) = (self.transport.clone(), oneshot::channel());
        self.enqueue(Request::Run(Box::pin(async move {
            let _ = tx.send(t.scan_cluster(&pattern).await);
        })))?;
        let keys = rx
            .await
            .map_err(|_| self.error("the connector's I/O thread has stopped"))?
            .map_err(|e| self.failed(e))?;
        let reply = RValue::Array(vec![
            RValue::Int(0),
            RValue::Array(
                keys.into_iter()
                    .map(|k| RValue::BulkString(k.into_bytes()))
                    .collect(),
            ),
        ]);
        let mut out = Vec::new();
        self.scanned(Some(reply), &mut out)?;
        Ok(out)
    }

    /// Adds the object keys of one `SCAN` reply to `out`; the next cursor.
    fn scanned(&self, v: Option<RValue>, out: &mut Vec<Key>) -> Result<u64> {
        let mut parts = items(v.unwrap_or(RValue::Nil)).into_iter();
        let cursor =
            int(parts.next().as_ref()).ok_or_else(|| self.error("malformed SCAN reply"))?;
        let prefix = format!("{}:{{", self.namespace);
        out.extend(
            items(parts.next().unwrap_or(RValue::Nil))
                .iter()
                .filter_map(text)
                .filter_map(|k| {
                    k.strip_prefix(&prefix)?
                        .strip_suffix("}:s")?
                        .parse::<Key>()
                        .ok()
                }),
        );
        Ok(cursor)
    }
}
