//! The Redis connector: several machines.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value as RValue};
use tokio::sync::{mpsc, oneshot};

use crate::connector::lease::{self, Held, Renew};
use crate::connector::{Connector, Entry, Fetch, Inspect, Stored, Value};
use crate::error::{Error, Result};
use crate::key::{ClaimId, Key};
use crate::state::{Claim, ClaimKind, Effect, Init, Op, Refusal, State};

/// The default time one operation may take before it fails with
/// [`Error::Connector`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

fn script() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(include_str!("state.lua")))
}

/// Settings of a [`RedisConnector`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisOptions {
    /// The redis-rs connection URL (`redis://[user:pass@]host:port/db`).
    pub url: String,
    /// Prefix of every key this store writes; nothing outside it is touched.
    pub namespace: String,
    /// How long the claims of a dead process survive it.
    pub lease: Duration,
    /// How long one operation may take (connect and reply).
    pub timeout: Duration,
}

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

struct Inner {
    name: String,
    namespace: String,
    lease: Duration,
    timeout: Duration,
    queue: mpsc::UnboundedSender<Request>,
    held: Held,
}

type Reply = redis::RedisResult<RValue>;

enum ReplyTo {
    /// A blocking caller waiting with a timeout.
    Thread(std_mpsc::SyncSender<Reply>),
    /// An async caller.
    Task(oneshot::Sender<Reply>),
    /// A queued release: nobody waits.
    Nobody,
}

impl ReplyTo {
    fn send(self, r: Reply) {
        match self {
            ReplyTo::Thread(tx) => {
                let _ = tx.try_send(r);
            }
            ReplyTo::Task(tx) => {
                let _ = tx.send(r);
            }
            ReplyTo::Nobody => {}
        }
    }
}

enum Request {
    Script {
        keys: [String; 5],
        args: Vec<Vec<u8>>,
        reply: ReplyTo,
    },
    Scan {
        pattern: String,
        reply: ReplyTo,
    },
    Flush {
        reply: ReplyTo,
    },
}

impl RedisConnector {
    /// A connector for the store named `name`; connects on first use.
    pub fn new(name: impl Into<String>, options: RedisOptions) -> Result<Self> {
        let name = name.into();
        let client = redis::Client::open(options.url.as_str()).map_err(|e| Error::InvalidUrl {
            url: options.url.clone(),
            reason: e.to_string(),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(Some(options.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(100));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| connector_error(&name, e))?;
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("borrowstore-redis".into())
            .spawn(move || runtime.block_on(io_loop(client, config, rx)))
            .map_err(|e| connector_error(&name, e))?;
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

fn connector_error(store: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Connector {
        store: store.to_owned(),
        source: Box::new(e),
    }
}

fn invocation(keys: &[String; 5], args: &[Vec<u8>]) -> redis::ScriptInvocation<'static> {
    let mut inv = script().prepare_invoke();
    for k in keys {
        inv.key(k.as_str());
    }
    for a in args {
        inv.arg(a.as_slice());
    }
    inv
}

type Call = ([String; 5], Vec<Vec<u8>>);

/// How long a queued release may wait for a request to ride along with.
const LINGER: Duration = Duration::from_millis(1);
/// How often releases that failed (server down) are sent again while idle.
const RETRY: Duration = Duration::from_millis(500);

/// The connector's I/O task. Requests are applied in arrival order, so this
/// process's releases always land before its later requests. A release is
/// not sent alone at once: it waits up to [`LINGER`] and goes out in the
/// same pipeline as the next request (one round trip for both), or alone
/// when nothing follows. Releases that fail (the server is down) are kept
/// and sent again — before any later request, and every [`RETRY`] while
/// idle — since they are idempotent by claim id.
async fn io_loop(
    client: redis::Client,
    config: ConnectionManagerConfig,
    mut rx: mpsc::UnboundedReceiver<Request>,
) {
    let mut conn: Option<ConnectionManager> = None;
    // Releases not yet applied, oldest first.
    let mut outbox: Vec<Call> = Vec::new();
    let mut failing = false;
    loop {
        let wait = if outbox.is_empty() {
            None
        } else if failing {
            Some(RETRY)
        } else {
            Some(LINGER)
        };
        let req = match wait {
            None => rx.recv().await,
            Some(d) => match tokio::time::timeout(d, rx.recv()).await {
                Ok(r) => r,
                Err(_) => {
                    // Nothing came along: send the releases alone.
                    if let Some(c) = connect(&mut conn, &client, &config) {
                        failing = pipeline(c, &mut outbox, None).await.is_err();
                    }
                    continue;
                }
            },
        };
        let Some(req) = req else {
            // The connector is gone: apply what is left, then stop.
            if let Some(c) = connect(&mut conn, &client, &config) {
                let _ = pipeline(c, &mut outbox, None).await;
            }
            return;
        };
        let (call, reply) = match req {
            Request::Script {
                keys,
                args,
                reply: ReplyTo::Nobody,
            } => {
                outbox.push((keys, args));
                continue;
            }
            Request::Script { keys, args, reply } => (Some((keys, args)), reply),
            Request::Scan { pattern, reply } => {
                let r = match connect(&mut conn, &client, &config) {
                    Some(c) => match pipeline(c, &mut outbox, None).await {
                        Ok(_) => scan(c, &pattern).await.map(|keys| {
                            RValue::Array(
                                keys.into_iter()
                                    .map(|k| RValue::BulkString(k.into_bytes()))
                                    .collect(),
                            )
                        }),
                        Err(e) => Err(e),
                    },
                    None => Err(no_manager()),
                };
                failing = r.is_err() && !outbox.is_empty();
                reply.send(r);
                continue;
            }
            Request::Flush { reply } => (None, reply),
        };
        let r = match connect(&mut conn, &client, &config) {
            Some(c) => pipeline(c, &mut outbox, call.as_ref()).await,
            None => Err(no_manager()),
        };
        failing = !outbox.is_empty();
        reply.send(r.map(|v| v.unwrap_or(RValue::Okay)));
    }
}

fn no_manager() -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Client,
        "cannot create the connection manager",
    ))
}

fn connect<'a>(
    conn: &'a mut Option<ConnectionManager>,
    client: &redis::Client,
    config: &ConnectionManagerConfig,
) -> Option<&'a mut ConnectionManager> {
    if conn.is_none() {
        match ConnectionManager::new_lazy_with_config(client.clone(), config.clone()) {
            Ok(c) => *conn = Some(c),
            Err(e) => tracing::warn!(error = %e, "cannot create the redis connection manager"),
        }
    }
    conn.as_mut()
}

/// Sends the queued releases and then `call` (if any) as one pipeline, and
/// returns the reply to `call`. On success the outbox is empty. On failure
/// the releases stay in the outbox and the error is returned. A NOSCRIPT
/// reply (a restarted server) loads the script and sends everything again:
/// every script is idempotent.
async fn pipeline(
    c: &mut ConnectionManager,
    outbox: &mut Vec<Call>,
    call: Option<&Call>,
) -> redis::RedisResult<Option<RValue>> {
    if outbox.is_empty() {
        return match call {
            Some((keys, args)) => invocation(keys, args).invoke_async(c).await.map(Some),
            None => Ok(None),
        };
    }
    let mut pipe = redis::pipe();
    for (keys, args) in outbox.iter().chain(call) {
        pipe.invoke_script(&invocation(keys, args));
    }
    let sent: redis::RedisResult<Vec<RValue>> = match pipe.query_async(c).await {
        Ok(v) => Ok(v),
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            script().load_async(c).await?;
            pipe.query_async(c).await
        }
        Err(e) => Err(e),
    };
    match sent {
        Ok(mut replies) => {
            if outbox.len() > 1 || call.is_none() {
                tracing::trace!(releases = outbox.len(), "releases applied");
            }
            outbox.clear();
            Ok(call.and_then(|_| replies.pop()))
        }
        Err(e) => {
            tracing::warn!(error = %e, releases = outbox.len(), "queued releases failed; will retry");
            Err(e)
        }
    }
}

async fn scan(c: &mut ConnectionManager, pattern: &str) -> redis::RedisResult<Vec<String>> {
    let mut cursor: u64 = 0;
    let mut out = Vec::new();
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(c)
            .await?;
        out.extend(keys);
        if next == 0 {
            return Ok(out);
        }
        cursor = next;
    }
}

fn kind_code(kind: ClaimKind) -> &'static str {
    match kind {
        ClaimKind::Owner => "o",
        ClaimKind::Writer => "w",
        ClaimKind::Reader => "r",
        ClaimKind::Holder => "h",
    }
}

fn kind_from(code: &str) -> Option<ClaimKind> {
    Some(match code {
        "o" => ClaimKind::Owner,
        "w" => ClaimKind::Writer,
        "r" => ClaimKind::Reader,
        "h" => ClaimKind::Holder,
        _ => return None,
    })
}

fn text(v: &RValue) -> Option<String> {
    match v {
        RValue::BulkString(b) => String::from_utf8(b.clone()).ok(),
        RValue::SimpleString(s) => Some(s.clone()),
        RValue::Okay => Some("OK".into()),
        RValue::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn int(v: Option<&RValue>) -> Option<u64> {
    v.and_then(text).and_then(|s| s.parse().ok())
}

fn items(v: RValue) -> Vec<RValue> {
    match v {
        RValue::Array(a) => a,
        other => vec![other],
    }
}

fn args<const N: usize>(parts: [&[u8]; N]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.to_vec()).collect()
}

fn token() -> String {
    ClaimId::random().to_string()
}

impl Inner {
    fn keys(&self, key: &Key) -> [String; 5] {
        let ns = &self.namespace;
        ["s", "r", "h", "t", "x"].map(|p| format!("{ns}:{{{key}}}:{p}"))
    }

    fn error(&self, reason: impl Into<String>) -> Error {
        Error::Connector {
            store: self.name.clone(),
            source: reason.into().into(),
        }
    }

    fn deadline(&self) -> String {
        lease::now_ms()
            .saturating_add(self.lease.as_millis() as u64)
            .to_string()
    }

    fn enqueue(&self, req: Request) -> Result<()> {
        self.queue
            .send(req)
            .map_err(|_| self.error("the connector's I/O thread has stopped"))
    }

    /// How long a caller waits for a reply: the I/O task always answers
    /// within the connection and response timeouts; this is a safety net.
    fn patience(&self) -> Duration {
        self.timeout * 3 + Duration::from_millis(200)
    }

    fn reply(&self, r: Option<Reply>) -> Result<RValue> {
        match r {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(connector_error(&self.name, e)),
            None => Err(self.error(format!("no reply within {:?}", self.patience()))),
        }
    }

    /// Runs the script on `key` and waits for the reply.
    fn call(&self, key: &Key, args: Vec<Vec<u8>>) -> Result<RValue> {
        let (tx, rx) = std_mpsc::sync_channel(1);
        self.enqueue(Request::Script {
            keys: self.keys(key),
            args,
            reply: ReplyTo::Thread(tx),
        })?;
        self.reply(rx.recv_timeout(self.patience()).ok())
    }

    fn queue_release(&self, key: &Key, claim: Claim) {
        self.held.remove(key, &claim);
        let req = Request::Script {
            keys: self.keys(key),
            args: release_args(claim),
            reply: ReplyTo::Nobody,
        };
        if self.enqueue(req).is_err() {
            tracing::warn!(%key, "release dropped: the I/O thread has stopped; the lease will expire");
        }
    }

    fn status(&self, key: &Key, v: &RValue) -> Result<String> {
        text(v).ok_or_else(|| self.error(format!("unexpected reply for {key}: {v:?}")))
    }

    fn refusal(&self, key: &Key, status: &str) -> Error {
        let r = match status {
            "gone" | "missing" => Refusal::Gone,
            "borrowed" => Refusal::Borrowed,
            "mutably_borrowed" => Refusal::MutablyBorrowed,
            "owned" => Refusal::Owned,
            "not_held" | "lost" => Refusal::NotHeld,
            other => return self.error(format!("unexpected reply for {key}: {other}")),
        };
        r.into_error(*key, &self.name)
    }

    fn apply_args(&self, op: Op) -> Vec<Vec<u8>> {
        match op {
            Op::Acquire(c) => args([
                b"acquire",
                kind_code(c.kind).as_bytes(),
                c.id.to_string().as_bytes(),
                self.deadline().as_bytes(),
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

    fn apply_result(&self, key: &Key, op: Op, v: &RValue) -> Result<Effect> {
        let status = self.status(key, v)?;
        let effect = match status.as_str() {
            "ok" => Effect::None,
            "evicted" => Effect::Evict,
            other => return Err(self.refusal(key, other)),
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

    fn fetch_result(&self, key: &Key, v: RValue) -> Result<Fetch> {
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
            "borrowed" => Err(self.refusal(key, "borrowed")),
            other => Err(self.error(format!("unexpected reply for {key}: {other}"))),
        }
    }

    fn fetch_args(known: Option<u64>) -> Vec<Vec<u8>> {
        let known = known.map(|v| v.to_string()).unwrap_or_default();
        args([b"fetch", known.as_bytes()])
    }

    fn put_args(&self, value: Value, init: Init) -> Result<Vec<Vec<u8>>> {
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
            self.deadline().into_bytes(),
        ])
    }

    fn put_result(&self, key: &Key, init: Init, v: &RValue) -> Result<Option<Arc<dyn Entry>>> {
        match self.status(key, v)?.as_str() {
            "ok" => {
                if let Init::Claimed(c) = init {
                    self.held.add(*key, c);
                }
                Ok(None)
            }
            "exists" => Err(self.error(format!("key {key} already exists"))),
            other => Err(self.error(format!("unexpected reply for {key}: {other}"))),
        }
    }
}

fn release_args(c: Claim) -> Vec<Vec<u8>> {
    args([
        b"release",
        kind_code(c.kind).as_bytes(),
        c.id.to_string().as_bytes(),
    ])
}

impl Renew for Inner {
    fn renew(&self, key: &Key, claims: &[Claim]) -> Vec<Claim> {
        let mut a = vec![b"renew".to_vec(), self.deadline().into_bytes()];
        for c in claims {
            a.push(kind_code(c.kind).as_bytes().to_vec());
            a.push(c.id.to_string().into_bytes());
        }
        match self.call(key, a) {
            Ok(v) if text(&v).as_deref() == Some("gone") => claims.to_vec(),
            Ok(v) => {
                let lost = items(v);
                lost.chunks(2)
                    .filter_map(|p| {
                        let kind = kind_from(&text(p.first()?)?)?;
                        let id = crate::key::parse_hex128(&text(p.get(1)?)?)?;
                        Some(Claim {
                            kind,
                            id: ClaimId::from_u128(id),
                        })
                    })
                    .collect()
            }
            Err(e) => {
                tracing::warn!(%key, error = %e, "lease renewal failed; will retry");
                Vec::new()
            }
        }
    }

    fn reap(&self) {
        for key in self.scan_keys().unwrap_or_default() {
            let _ = self.call(&key, args([b"reap"]));
        }
    }

    fn held(&self) -> &Held {
        &self.held
    }
}

impl Inner {
    fn scan_keys(&self) -> Result<Vec<Key>> {
        let (tx, rx) = std_mpsc::sync_channel(1);
        self.enqueue(Request::Scan {
            pattern: format!("{}:{{*}}:s", self.namespace),
            reply: ReplyTo::Thread(tx),
        })?;
        let v = self.reply(rx.recv_timeout(self.patience()).ok())?;
        let prefix = format!("{}:{{", self.namespace);
        Ok(items(v)
            .iter()
            .filter_map(text)
            .filter_map(|k| {
                k.strip_prefix(&prefix)?
                    .strip_suffix("}:s")?
                    .parse::<Key>()
                    .ok()
            })
            .collect())
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
            .map_err(|_| inner.refusal(key, &status))
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
            return Err(inner.refusal(key, &status));
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
            other => Err(inner.refusal(key, other)),
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
