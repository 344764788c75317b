//! The script calls of [`RedisConnector`]'s operations: for each, its
//! arguments and how its reply is read, shared by the blocking and the
//! async form; and running a call either way.

use std::sync::Arc;

use redis::Value as RValue;

use super::client::Inner;
use super::connector::RedisConnector;
use super::script::{args, int, items, kind_code, kind_from, text, token};
use crate::connector::offload::Undo;
use crate::connector::{Entry, Fetch, Inspect, ObjectMeta, Stored, Value};
use crate::error::{Error, Result};
use crate::key::{ClaimId, Key};
use crate::observe::Timer;
use crate::state::{Claim, ClaimKind, Init, Op, State};

/// The note of a claim this process takes now, as the script records it
/// (see `state.lua`): `<pid>|<host>|<taken ms>|<lease ms>|<label>`; for a
/// redeem, the label is left to the script (the claim keeps the one it was
/// taken with).
fn note_arg(inner: &Inner, label: Option<String>) -> Vec<u8> {
    use std::fmt::Write;
    let label = label.unwrap_or_default();
    let mut note = String::with_capacity(inner.note_head.len() + 32 + label.len());
    note.push_str(&inner.note_head);
    let now = crate::connector::lease::now_ms();
    let lease = inner.lease.as_millis().max(1);
    let _ = write!(note, "{now}|{lease}|{label}");
    note.into_bytes()
}

/// The operation a call's metrics name (its first argument); nothing is
/// copied without the `metrics` feature.
fn op_name(args: &[Vec<u8>]) -> Vec<u8> {
    if cfg!(feature = "metrics") {
        args.first().cloned().unwrap_or_default()
    } else {
        Vec::new()
    }
}

/// One script call on one object and what to make of its reply: the same
/// for the blocking and the async form of each operation.
pub(super) struct Call<T> {
    key: Key,
    args: Vec<Vec<u8>>,
    read: fn(&Inner, &Key, RValue) -> Result<T>,
}

impl RedisConnector {
    /// Runs `call` and waits for its reply, blocking the thread.
    pub(super) fn run<T>(&self, call: Call<T>) -> Result<T> {
        let timer = Timer::start();
        let op = op_name(&call.args);
        let v = self.inner.call(&call.key, call.args);
        timer.stop(&self.inner.name, &op);
        (call.read)(&self.inner, &call.key, v?)
    }

    /// Runs `call` and awaits its reply. Dropping the future leaves the
    /// request queued: it is still applied.
    pub(super) async fn run_async<T>(&self, call: Call<T>) -> Result<T> {
        let timer = Timer::start();
        let op = op_name(&call.args);
        let v = self.inner.call_async(&call.key, call.args).await;
        timer.stop(&self.inner.name, &op);
        (call.read)(&self.inner, &call.key, v?)
    }

    /// [`run_async`](Self::run_async) of a request that takes `claim`: if
    /// the future is dropped before the reply is read, the claim's release
    /// is queued behind the request.
    pub(super) async fn run_claiming<T>(&self, call: Call<T>, claim: Option<Claim>) -> Result<T> {
        let undo = match claim {
            Some(c) => self.inner.undo(&call.key, c),
            None => Undo::none(),
        };
        let r = self.run_async(call).await;
        undo.disarm();
        r
    }

    pub(super) fn put_call(&self, key: &Key, value: Value, init: Init) -> Result<Call<()>> {
        pub(super) fn read(inner: &Inner, key: &Key, v: RValue) -> Result<()> {
            match inner.status(key, &v)?.as_str() {
                "ok" => Ok(()),
                "exists" => Err(inner.error(format!("key {key} already exists"))),
                other => Err(inner.error(format!("unexpected reply for {key}: {other}"))),
            }
        }
        let label = match init {
            Init::Claimed(c) if c.kind == ClaimKind::Owner => c.note().name(),
            _ => None,
        };
        let object = ObjectMeta::of_value(&value, label);
        let mut args = self.inner.put_args(value, init)?;
        args.push(match init {
            Init::Claimed(c) => note_arg(&self.inner, c.note().label()),
            Init::Plain => Vec::new(),
        });
        args.push(
            format!(
                "{}|{}|{}|{}",
                object.type_name.unwrap_or_default(),
                object.size.unwrap_or(0),
                object.created_ms.unwrap_or(0),
                object.label.unwrap_or_default()
            )
            .into_bytes(),
        );
        Ok(Call {
            key: *key,
            args,
            read,
        })
    }

    pub(super) fn put_done(&self, key: &Key, init: Init) -> Option<Arc<dyn Entry>> {
        if let Init::Claimed(c) = init {
            self.inner.held.add(*key, c);
        }
        None
    }

    pub(super) fn fetch_call(key: &Key, known_version: Option<u64>) -> Call<Fetch> {
        Call {
            key: *key,
            args: Inner::fetch_args(known_version),
            read: |inner, key, v| inner.fetch_result(key, v),
        }
    }

    pub(super) fn take_call(key: &Key) -> Call<Option<Stored>> {
        Call {
            key: *key,
            args: args([b"take", token().as_bytes()]),
            read: |inner, key, v| match inner.fetch_result(key, v)? {
                Fetch::Changed(s) => {
                    inner.held.forget_key(key);
                    Ok(Some(s))
                }
                _ => Ok(None),
            },
        }
    }

    pub(super) fn publish_args(key: &Key, writer: Claim, value: Value) -> Result<Vec<Vec<u8>>> {
        if writer.kind != ClaimKind::Writer {
            return Err(Error::ClaimLost { key: *key });
        }
        let blob = value.into_bytes()?;
        Ok(vec![
            b"publish".to_vec(),
            writer.id.to_string().into_bytes(),
            blob.to_vec(),
            token().into_bytes(),
        ])
    }

    pub(super) fn publish_call(key: &Key, writer: Claim, value: Value) -> Result<Call<u64>> {
        Ok(Call {
            key: *key,
            args: Self::publish_args(key, writer, value)?,
            read: |inner, key, v| {
                let status = inner.status(key, &v)?;
                status
                    .parse::<u64>()
                    .map_err(|_| inner.refusal(key, &status, "publish"))
            },
        })
    }

    /// A transition; its reply is read by [`Inner::apply_result`], which
    /// needs the op, so the read is done by the caller.
    pub(super) fn apply_call(&self, key: &Key, op: Op) -> Call<RValue> {
        let mut args = self.inner.apply_args(op);
        if let Op::Acquire(c) = op {
            args.push(note_arg(&self.inner, c.note().label()));
        }
        Call {
            key: *key,
            args,
            read: |_, _, v| Ok(v),
        }
    }

    pub(super) fn acquire_fetch_call(
        &self,
        key: &Key,
        claim: Claim,
        known: Option<u64>,
    ) -> Call<Vec<RValue>> {
        let known = known.map(|v| v.to_string()).unwrap_or_default();
        Call {
            key: *key,
            args: args([
                b"acquire_fetch",
                kind_code(claim.kind).as_bytes(),
                claim.id.to_string().as_bytes(),
                self.inner.holder().as_bytes(),
                known.as_bytes(),
                &note_arg(&self.inner, claim.note().label()),
            ]),
            read: |_, _, v| Ok(items(v)),
        }
    }

    pub(super) fn acquire_fetch_done(
        &self,
        key: &Key,
        claim: Claim,
        mut parts: Vec<RValue>,
    ) -> Result<Option<Fetch>> {
        let inner = &self.inner;
        let status = parts.first().and_then(text).unwrap_or_default();
        if status != "ok" {
            return Err(inner.refusal(key, &status, Op::Acquire(claim).name()));
        }
        inner.held.add(*key, claim);
        parts.remove(0);
        inner.fetch_result(key, RValue::Array(parts)).map(Some)
    }

    /// Turns `claim` into `ticket`: store-side the claim leaves this
    /// process and is released a lease from now unless redeemed.
    pub(super) fn issue_call(&self, key: &Key, ticket: ClaimId, claim: Claim) -> Call<String> {
        self.issue_call_for(key, ticket, claim, &self.inner.lease_ms())
    }

    /// [`issue_call`](Self::issue_call) for a ticket that lasts `lease_ms`.
    pub(super) fn issue_call_for(
        &self,
        key: &Key,
        ticket: ClaimId,
        claim: Claim,
        lease_ms: &str,
    ) -> Call<String> {
        Call {
            key: *key,
            args: args([
                b"issue",
                ticket.to_string().as_bytes(),
                kind_code(claim.kind).as_bytes(),
                claim.id.to_string().as_bytes(),
                lease_ms.as_bytes(),
            ]),
            read: |inner, key, v| inner.status(key, &v),
        }
    }

    /// Moves a ticket's deadline to `lease_ms` from now.
    pub(super) fn renew_call(&self, key: &Key, ticket: ClaimId, lease_ms: &str) -> Call<String> {
        Call {
            key: *key,
            args: args([b"renew", ticket.to_string().as_bytes(), lease_ms.as_bytes()]),
            read: |inner, key, v| inner.status(key, &v),
        }
    }

    /// Cancels a ticket in flight: its claim is released in the same call.
    pub(super) fn cancel_call(&self, key: &Key, ticket: ClaimId, kind: ClaimKind) -> Call<String> {
        Call {
            key: *key,
            args: args([
                b"cancel",
                ticket.to_string().as_bytes(),
                token().as_bytes(),
                kind_code(kind).as_bytes(),
            ]),
            read: |inner, key, v| inner.status(key, &v),
        }
    }

    /// Cancels several tickets in flight of one object in one call.
    pub(super) fn cancels_call(
        &self,
        key: &Key,
        tickets: &[(ClaimId, ClaimKind)],
    ) -> Call<Vec<String>> {
        let mut parts = vec![b"cancels".to_vec()];
        for (ticket, kind) in tickets {
            parts.push(ticket.to_string().into_bytes());
            parts.push(token().into_bytes());
            parts.push(kind_code(*kind).as_bytes().to_vec());
        }
        Call {
            key: *key,
            args: parts,
            read: |inner, key, v| items(v).iter().map(|s| inner.status(key, s)).collect(),
        }
    }

    pub(super) fn cancel_done(&self, key: &Key, ticket: ClaimId, status: &str) -> Result<()> {
        if status == "evicted" {
            // The release evicted the object (an owner ticket's).
            self.inner.held.forget_key(key);
            return Ok(());
        }
        self.ticket_done(key, ticket, status, "cancel_ticket")
    }

    /// The reply of a renew: the object's version while the ticket's claim
    /// is held.
    pub(super) fn renew_done(&self, key: &Key, ticket: ClaimId, status: &str) -> Result<u64> {
        if let Some(v) = status.strip_prefix("ok:") {
            return v
                .parse()
                .map_err(|_| self.inner.refusal(key, status, "renew_ticket"));
        }
        self.ticket_done(key, ticket, status, "renew_ticket")
            .and_then(|()| Err(self.inner.refusal(key, status, "renew_ticket")))
    }

    /// The reply of a call on a ticket in flight: `ok`, or `redeemed` when
    /// it is not in flight any more.
    fn ticket_done(
        &self,
        key: &Key,
        ticket: ClaimId,
        status: &str,
        op: &'static str,
    ) -> Result<()> {
        match status {
            "ok" => Ok(()),
            "redeemed" => Err(Error::TicketRedeemed {
                ticket: ticket.to_string(),
            }),
            other => Err(self.inner.refusal(key, other, op)),
        }
    }

    pub(super) fn issue_done(&self, key: &Key, claim: Claim, status: &str) -> Result<()> {
        match status {
            "ok" => {
                self.inner.held.remove(key, &claim);
                Ok(())
            }
            other => Err(self.inner.refusal(key, other, "into_ticket")),
        }
    }

    pub(super) fn redeem_call(
        &self,
        key: &Key,
        ticket: ClaimId,
        kind: ClaimKind,
    ) -> Call<Vec<RValue>> {
        Call {
            key: *key,
            args: args([
                b"redeem",
                ticket.to_string().as_bytes(),
                token().as_bytes(),
                self.inner.holder().as_bytes(),
                kind_code(kind).as_bytes(),
                &note_arg(&self.inner, None),
            ]),
            read: |_, _, v| Ok(items(v)),
        }
    }

    pub(super) fn redeem_done(
        &self,
        key: &Key,
        ticket: ClaimId,
        kind: ClaimKind,
        parts: &[RValue],
    ) -> Result<Claim> {
        let inner = &self.inner;
        let redeemed = || Error::TicketRedeemed {
            ticket: ticket.to_string(),
        };
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
                        let claim = Claim::rebuilt(kind, ClaimId::from_u128(id));
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

    /// What inspection reports: the claims and their notes as they are
    /// (expired ones are listed, not released).
    pub(super) fn peek_call(key: &Key) -> Call<Option<Inspect>> {
        Call {
            key: *key,
            args: args([b"peek"]),
            read: |inner, key, v| {
                let parts = items(v);
                match parts.first().and_then(text).as_deref() {
                    Some("missing") => Ok(None),
                    Some("ok") => super::notes::inspect_reply(&parts)
                        .map(Some)
                        .ok_or_else(|| inner.error(format!("malformed inspect reply for {key}"))),
                    _ => Err(inner.error(format!("malformed inspect reply for {key}"))),
                }
            },
        }
    }

    /// The object's counts, after releasing its expired claims (what
    /// `exists` asks).
    pub(super) fn inspect_call(key: &Key) -> Call<Option<Inspect>> {
        Call {
            key: *key,
            args: args([b"inspect"]),
            read: |inner, key, v| {
                let parts = items(v);
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
                Ok(Some(Inspect::new(state, n(1))))
            },
        }
    }
}
