//! [`Transport`]: how one request reaches the server. A blocking call
//! sends it on the caller's own thread, over a connection of the blocking
//! pool; an async call polled by a tokio runtime sends it on the caller's
//! task, over that runtime's multiplexed connection. Either way the queued
//! releases ride in front of it ([`Outbox`]), a broken connection is
//! replaced and the request sent again (every request is idempotent), and
//! the request fails at its own deadline however many are in flight.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use redis::{RedisError, RedisResult, Value as RValue};

use super::conn::{Conn, describe, request};
use super::outbox::{Batch, Outbox, Turn};
use super::pool::{Dial, Link, Links, Pool, Pooled, broken, timed_out, within_on};
use super::script::{Command, Scripting, reply};

/// Everything a request needs on its way, shared by the connector, the
/// detached requests and the I/O thread.
pub(super) struct Transport {
    pub(super) dial: Dial,
    pub(super) pool: Pool,
    pub(super) links: Links,
    pub(super) outbox: Arc<Outbox>,
    pub(super) scripting: Scripting,
    /// How long one operation may take.
    pub(super) timeout: Duration,
    /// A cluster's connection, used on the I/O thread only (`None` for one
    /// server).
    cluster: Option<tokio::sync::Mutex<Conn>>,
}

/// How much later than its deadline a blocking request may give up: its
/// socket's timeouts are set again only when they are off by more.
fn slack(timeout: Duration) -> Duration {
    timeout / 32
}

/// How many times a request is sent again after its connection broke.
const RESENDS: usize = 2;

/// What an async send found: this runtime cannot do I/O; the command,
/// unsent.
pub(super) struct NoIo(pub(super) Option<Command>);

type Flight = Pin<Box<dyn Future<Output = RedisResult<Option<RValue>>> + Send>>;

impl Transport {
    pub(super) fn new(dial: Dial, timeout: Duration) -> Self {
        let cluster = dial
            .is_cluster()
            .then(|| tokio::sync::Mutex::new(dial.connect().connection()));
        Transport {
            cluster,
            dial,
            pool: Pool::default(),
            links: Links::default(),
            outbox: Arc::default(),
            scripting: Scripting::default(),
            timeout,
        }
    }

    /// Sends the queued releases and then `command` (if any) on this
    /// thread, once it is `turn`'s turn; returns the reply to `command`.
    pub(super) fn send_blocking(
        &self,
        command: Option<&Command>,
        turn: Turn,
    ) -> RedisResult<Option<RValue>> {
        let deadline = Instant::now() + self.timeout;
        let batch = self
            .outbox
            .take_blocking(turn, deadline)
            .ok_or_else(timed_out)?;
        if batch.len() == 0 && command.is_none() {
            return Ok(None);
        }
        let commands: Vec<&Command> = batch.commands().chain(command).collect();
        let replies = self
            .exchange_blocking(&commands, deadline)
            .map_err(|e| self.named(e, command))?;
        answer(batch, replies, command.is_some())
    }

    fn exchange_blocking(
        &self,
        commands: &[&Command],
        deadline: Instant,
    ) -> RedisResult<Vec<RValue>> {
        let mut resends = 0;
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .ok_or_else(timed_out)?;
            let mut con = match self.pool.take() {
                Some(c) => c,
                // Its set-up exchanges (AUTH, SELECT) wait for one reply each.
                None => Pooled::new(self.dial.blocking(left / 2)?),
            };
            let sent = self.scripting.exchange(commands, |pipe, n| {
                self.send_within(&mut con, pipe, n, deadline)
            });
            match sent {
                Ok(replies) => {
                    self.pool.give_back(con);
                    return Ok(replies);
                }
                // The connection is dropped: it may be out of step.
                Err(e) if broken(&e) && resends < RESENDS => {
                    tracing::debug!(error = %e, "the connection broke; sending again on a new one");
                    resends += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `pipe` (`n` commands) on `con` and reads its `n` replies, each
    /// read bounded by what is left until `deadline` (redis-rs would wait
    /// the whole read timeout once per reply), give or take [`slack`].
    fn send_within(
        &self,
        con: &mut Pooled,
        pipe: &redis::Pipeline,
        n: usize,
        deadline: Instant,
    ) -> RedisResult<Vec<RValue>> {
        let left = || {
            deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .ok_or_else(timed_out)
        };
        let slack = slack(self.timeout);
        con.write_within(left()?, slack)?;
        con.read_within(left()?, slack)?;
        con.con.send_packed_command(&pipe.get_packed_pipeline())?;
        let mut replies = Vec::with_capacity(n);
        for i in 0..n {
            if i > 0 {
                con.read_within(left()?, slack)?;
            }
            replies.push(con.con.recv_response()?);
        }
        Ok(replies)
    }

    /// [`send_blocking`](Self::send_blocking) on the caller's task, over
    /// the multiplexed connection of the tokio runtime `rt` polling it.
    /// `Err(NoIo)` if that runtime has no I/O driver (nothing was taken
    /// or sent). If the future is dropped once the request is sent, the
    /// request is detached: its reply is awaited on `rt`, and the releases
    /// queued meanwhile wait for it.
    pub(super) async fn send_async(
        self: &Arc<Self>,
        rt: tokio::runtime::Handle,
        command: Option<Command>,
        turn: Turn,
    ) -> Result<RedisResult<Option<RValue>>, NoIo> {
        if self.cluster.is_some() {
            // A cluster's requests all go through the I/O thread.
            return Err(NoIo(command));
        }
        let deadline = Instant::now() + self.timeout;
        let link = match self.links.get(&self.dial, &rt, deadline).await {
            Ok(Some(link)) => link,
            Ok(None) => return Err(NoIo(command)),
            Err(e) => return Ok(Err(e)),
        };
        let on =
            (rt.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread).then(|| rt.id());
        let Some(batch) = self.outbox.take(turn, on, link.timer, deadline).await else {
            return Ok(Err(timed_out()));
        };
        if batch.len() == 0 && command.is_none() {
            return Ok(Ok(None));
        }
        let flight = Box::pin(self.clone().flight(Some(link), batch, command, deadline));
        Ok(Detachable {
            flight: Some(flight),
            outbox: self.outbox.clone(),
            rt,
        }
        .await)
    }

    /// [`send_async`](Self::send_async) on the I/O thread (its runtime
    /// `rt`): a cluster's requests too, over [`Conn`].
    pub(super) async fn send_on_io_thread(
        self: &Arc<Self>,
        rt: tokio::runtime::Handle,
        command: Option<Command>,
        turn: Turn,
    ) -> RedisResult<Option<RValue>> {
        if !self.is_cluster() {
            return match self.send_async(rt, command, turn).await {
                Ok(r) => r,
                Err(NoIo(_)) => Err(RedisError::from((
                    redis::ErrorKind::Client,
                    "the I/O thread's runtime cannot do I/O",
                ))),
            };
        }
        let deadline = Instant::now() + self.timeout;
        let Some(batch) = self.outbox.take(turn, Some(rt.id()), true, deadline).await else {
            return Err(timed_out());
        };
        if batch.len() == 0 && command.is_none() {
            return Ok(None);
        }
        self.clone().flight(None, batch, command, deadline).await
    }

    /// Whether the servers are a cluster: every request then goes through
    /// the I/O thread, over [`Conn`].
    pub(super) fn is_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    /// The keys matching `pattern` on every primary of the cluster (on the
    /// I/O thread); nothing on one server.
    pub(super) async fn scan_cluster(&self, pattern: &str) -> RedisResult<Vec<String>> {
        match &self.cluster {
            Some(c) => c.lock().await.scan(pattern).await,
            None => Ok(Vec::new()),
        }
    }

    /// The queued releases to send ahead of a request on another executor
    /// (the I/O thread), once it is `turn`'s turn; `None` at `deadline`.
    pub(super) async fn take(&self, turn: Turn, deadline: Instant) -> Option<Batch> {
        self.outbox.take(turn, None, false, deadline).await
    }

    /// Sends `batch` and then `command` over `link` (or the connection of
    /// the runtime polling this), and returns the reply to `command`.
    pub(super) async fn flight(
        self: Arc<Self>,
        link: Option<Link>,
        batch: Batch,
        command: Option<Command>,
        deadline: Instant,
    ) -> RedisResult<Option<RValue>> {
        let commands: Vec<&Command> = batch.commands().chain(command.as_ref()).collect();
        let replies = self
            .exchange_async(link, &commands, deadline)
            .await
            .map_err(|e| self.named(e, command.as_ref()))?;
        answer(batch, replies, command.is_some())
    }

    /// `e` naming the servers and the request `command` (or the queued
    /// releases), unless it names the servers already.
    fn named(&self, e: RedisError, command: Option<&Command>) -> RedisError {
        let node = self.dial.connect().name();
        if e.to_string().contains(&node) {
            return e;
        }
        let what = match command {
            Some(Command::Script { keys, args }) => format!(
                "running `{}` on {}",
                String::from_utf8_lossy(args.first().map(Vec::as_slice).unwrap_or_default()),
                keys[0]
            ),
            Some(Command::Plain(cmd)) => request(cmd),
            None => "sending the queued releases".to_owned(),
        };
        describe(e, &node, &what)
    }

    async fn exchange_async(
        &self,
        mut link: Option<Link>,
        commands: &[&Command],
        deadline: Instant,
    ) -> RedisResult<Vec<RValue>> {
        if let Some(cluster) = &self.cluster {
            // On the I/O thread (its runtime has a timer); the cluster
            // connection retries on another node by itself.
            return within_on(true, deadline, async {
                let mut c = cluster.lock().await;
                self.scripting.exchange_async(&mut *c, commands).await
            })
            .await;
        }
        let mut resends = 0;
        loop {
            let mut l = match link.take() {
                Some(l) => l,
                None => {
                    let rt = tokio::runtime::Handle::current();
                    self.links
                        .get(&self.dial, &rt, deadline)
                        .await?
                        .ok_or_else(timed_out)?
                }
            };
            let exchange = self.scripting.exchange_async(&mut l.con, commands);
            let sent = within_on(l.timer, deadline, exchange).await;
            match sent {
                Ok(replies) => return Ok(replies),
                Err(e) if broken(&e) && resends < RESENDS => {
                    tracing::debug!(error = %e, "the connection broke; sending again on a new one");
                    self.links.broken(&l);
                    resends += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The reply to the request after `batch` (the last of `replies`, if
/// `asked`), once the batch is marked applied.
fn answer(batch: Batch, mut replies: Vec<RValue>, asked: bool) -> RedisResult<Option<RValue>> {
    let answer = if asked { replies.pop() } else { None };
    batch.applied(&replies)?;
    answer.map(reply).transpose()
}

/// A request in flight on the caller's task; dropped before its reply, it
/// is finished on its runtime, counted as detached meanwhile.
struct Detachable {
    flight: Option<Flight>,
    outbox: Arc<Outbox>,
    rt: tokio::runtime::Handle,
}

impl Future for Detachable {
    type Output = RedisResult<Option<RValue>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(flight) = self.flight.as_mut() else {
            return Poll::Ready(Err(timed_out()));
        };
        match flight.as_mut().poll(cx) {
            Poll::Ready(r) => {
                self.flight = None;
                Poll::Ready(r)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Detachable {
    fn drop(&mut self) {
        if let Some(flight) = self.flight.take() {
            self.outbox.detach();
            let attached = Reattach(self.outbox.clone());
            self.rt.spawn(async move {
                let _attached = attached;
                let _ = flight.await;
            });
        }
    }
}

/// Ends one detached request's count when dropped.
pub(super) struct Reattach(pub(super) Arc<Outbox>);

impl Drop for Reattach {
    fn drop(&mut self) {
        self.0.reattach();
    }
}
