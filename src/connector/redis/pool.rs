//! The connector's connections: [`Dial`], the one place a connection is
//! made from the store's options; the small pool of blocking connections
//! that blocking calls use on their own thread; and one multiplexed
//! connection per tokio runtime for the async calls polled on it, driven by
//! that runtime (no hand-off to another thread).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError, RedisResult};

use super::conn::Connect;
use crate::connector::Sleep;
use crate::sync::unmodeled;

/// A blocking connection.
pub(super) type Blocking = redis::Connection;
/// An async connection (a handle; clones share it).
pub(super) type Multiplexed = MultiplexedConnection;

/// Idle blocking connections kept for the next caller.
const MAX_IDLE: usize = 16;
/// Tokio runtimes whose connection is kept (the oldest goes first).
const MAX_RUNTIMES: usize = 16;

/// Makes the connector's connections, from its options.
pub(super) struct Dial {
    /// One server's client (plain or TLS); `None` for a cluster.
    client: Option<redis::Client>,
    connect: Connect,
}

impl Dial {
    /// The connections `connect` names. For one server they skip
    /// `CLIENT SETINFO` (one round trip less per connection, and no reply
    /// to wait for on a stopped server); a cluster is reached through
    /// [`Connect`]'s cluster connection only, on the I/O thread.
    pub(super) fn new(connect: Connect) -> RedisResult<Self> {
        let client = match connect.single() {
            Some(client) => {
                let info = client.get_connection_info().clone();
                let redis = info.redis_settings().clone().set_skip_set_lib_name();
                Some(redis::Client::open(info.set_redis_settings(redis))?)
            }
            None => None,
        };
        Ok(Dial { client, connect })
    }

    /// What connects to the servers, for the subscriber connection and a
    /// cluster's connection.
    pub(super) fn connect(&self) -> &Connect {
        &self.connect
    }

    /// Whether the servers are a cluster (reached over the I/O thread).
    pub(super) fn is_cluster(&self) -> bool {
        self.client.is_none()
    }

    fn client(&self) -> RedisResult<&redis::Client> {
        self.client.as_ref().ok_or_else(|| {
            RedisError::from((
                redis::ErrorKind::Client,
                "a cluster has no single-server connections",
            ))
        })
    }

    /// A blocking connection, made (and set up) within `timeout`.
    pub(super) fn blocking(&self, timeout: Duration) -> RedisResult<Blocking> {
        self.client()?.get_connection_with_timeout(timeout)
    }

    /// A multiplexed connection whose driver runs on the current tokio
    /// runtime. It has no timeouts of its own: every caller bounds its
    /// request (and this call) by its own deadline.
    pub(super) async fn multiplexed(&self) -> RedisResult<Multiplexed> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(None)
            .set_response_timeout(None);
        self.client()?
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }
}

/// A blocking connection and the socket timeouts it has.
pub(super) struct Pooled {
    pub(super) con: Blocking,
    read: Option<Duration>,
    write: Option<Duration>,
}

impl Pooled {
    pub(super) fn new(con: Blocking) -> Self {
        Pooled {
            con,
            read: None,
            write: None,
        }
    }

    /// Makes the socket's reads give up after `left`, or at most `slack`
    /// later: the timeout is set (a system call) only when the one it has
    /// is shorter than `left`, or longer by more than `slack`.
    pub(super) fn read_within(&mut self, left: Duration, slack: Duration) -> RedisResult<()> {
        if let Some(d) = bound(self.read, left, slack) {
            self.con.set_read_timeout(Some(d))?;
            self.read = Some(d);
        }
        Ok(())
    }

    /// [`read_within`](Self::read_within) for writes.
    pub(super) fn write_within(&mut self, left: Duration, slack: Duration) -> RedisResult<()> {
        if let Some(d) = bound(self.write, left, slack) {
            self.con.set_write_timeout(Some(d))?;
            self.write = Some(d);
        }
        Ok(())
    }
}

/// The timeout to set for `left` when the socket has `current`, if any.
fn bound(current: Option<Duration>, left: Duration, slack: Duration) -> Option<Duration> {
    match current {
        Some(c) if c >= left && c - left <= slack => None,
        _ => Some(left + slack / 2),
    }
}

/// The idle blocking connections.
#[derive(Default)]
pub(super) struct Pool {
    idle: Mutex<Vec<Pooled>>,
}

impl Pool {
    /// An idle connection, if one is left.
    pub(super) fn take(&self) -> Option<Pooled> {
        unmodeled::lock(&self.idle).pop()
    }

    /// Keeps `con` for the next caller.
    pub(super) fn give_back(&self, con: Pooled) {
        let mut idle = unmodeled::lock(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push(con);
        }
    }
}

/// What a runtime has: its connection, or no I/O driver (its async calls
/// then go through the connector's I/O thread).
#[derive(Clone)]
enum Slot {
    /// Its number, its connection, whether the runtime has a timer.
    Ready(u64, Multiplexed, bool),
    NoIo,
}

/// One multiplexed connection per tokio runtime.
#[derive(Default)]
pub(super) struct Links {
    slots: Mutex<Vec<(tokio::runtime::Id, Slot)>>,
    made: AtomicU64,
}

/// A runtime's connection, and its number (to forget it once broken).
pub(super) struct Link {
    pub(super) id: tokio::runtime::Id,
    pub(super) generation: u64,
    pub(super) con: Multiplexed,
    /// The runtime has a timer (`enable_time`): deadlines use it.
    pub(super) timer: bool,
}

impl Links {
    /// The connection of the current runtime `rt`, made if needed before
    /// `deadline`; `Ok(None)` if the runtime cannot do I/O (it was built
    /// without `enable_io`).
    pub(super) async fn get(
        &self,
        dial: &Dial,
        rt: &tokio::runtime::Handle,
        deadline: Instant,
    ) -> RedisResult<Option<Link>> {
        let id = rt.id();
        let found = unmodeled::lock(&self.slots)
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, s)| s.clone());
        match found {
            Some(Slot::Ready(generation, con, timer)) => {
                return Ok(Some(Link {
                    id,
                    generation,
                    con,
                    timer,
                }));
            }
            Some(Slot::NoIo) => return Ok(None),
            None => {}
        }
        let timer = timer_enabled();
        let made = match io_enabled(dial, timer, deadline).await {
            Some(made) => made,
            None => {
                self.insert(id, Slot::NoIo);
                return Ok(None);
            }
        }?;
        let generation = self.made.fetch_add(1, Ordering::Relaxed);
        self.insert(id, Slot::Ready(generation, made.clone(), timer));
        Ok(Some(Link {
            id,
            generation,
            con: made,
            timer,
        }))
    }

    fn insert(&self, id: tokio::runtime::Id, slot: Slot) {
        let mut slots = unmodeled::lock(&self.slots);
        slots.retain(|(i, _)| *i != id);
        if slots.len() >= MAX_RUNTIMES {
            slots.remove(0);
        }
        slots.push((id, slot));
    }

    /// Forgets `link`'s connection (broken): the next call makes a new one.
    pub(super) fn broken(&self, link: &Link) {
        unmodeled::lock(&self.slots).retain(|(i, s)| {
            !(*i == link.id && matches!(s, Slot::Ready(g, ..) if *g == link.generation))
        });
    }
}

/// Makes the current runtime's connection before `deadline`; `None` if the
/// runtime has no I/O driver. Tokio offers no way to ask, and registering a
/// socket without one panics: the first connection of each runtime is made
/// under `catch_unwind` (the panic message is printed once for such a
/// runtime). Where panics abort, only runtimes known to have a driver
/// would be safe, so async calls there always use the I/O thread.
async fn io_enabled(
    dial: &Dial,
    timer: bool,
    deadline: Instant,
) -> Option<RedisResult<Multiplexed>> {
    use futures::FutureExt;
    if cfg!(panic = "abort") {
        return None;
    }
    let connect =
        std::panic::AssertUnwindSafe(within_on(timer, deadline, dial.multiplexed())).catch_unwind();
    match connect.await {
        Ok(r) => Some(r),
        Err(_) => {
            tracing::debug!(
                "this tokio runtime has no I/O driver: its async calls use the I/O thread"
            );
            None
        }
    }
}

/// Whether the current runtime has a timer (`enable_time`); asked the same
/// way as [`io_enabled`]. Without one, deadlines use the crate's own timer
/// thread (which keeps each deadline until it passes).
fn timer_enabled() -> bool {
    std::panic::catch_unwind(|| drop(tokio::time::sleep(Duration::ZERO))).is_ok()
}

/// `f`, or a timeout error at `deadline`, on the current runtime's timer
/// if it has one (`timer`), on the crate's own otherwise (a process-wide
/// thread, started at its first use).
pub(super) async fn within_on<T>(
    timer: bool,
    deadline: Instant,
    f: impl std::future::Future<Output = RedisResult<T>>,
) -> RedisResult<T> {
    if timer {
        match tokio::time::timeout_at(deadline.into(), f).await {
            Ok(r) => r,
            Err(_) => Err(timed_out()),
        }
    } else {
        within(deadline, f).await
    }
}

/// Waits until `deadline` on the current runtime's timer (`timer`) or on
/// the crate's own.
pub(super) async fn until(timer: bool, deadline: Instant) {
    if timer {
        tokio::time::sleep_until(deadline.into()).await
    } else {
        Sleep::until(deadline).await
    }
}

/// `f`, or a timeout error at `deadline`.
pub(super) async fn within<T>(
    deadline: Instant,
    f: impl std::future::Future<Output = RedisResult<T>>,
) -> RedisResult<T> {
    let f = std::pin::pin!(f);
    match futures::future::select(f, Sleep::until(deadline)).await {
        futures::future::Either::Left((r, _)) => r,
        futures::future::Either::Right(_) => Err(timed_out()),
    }
}

/// The error of a request that ran out of time.
pub(super) fn timed_out() -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "no reply within the operation's timeout",
    ))
}

/// Whether a request that failed with `e` may be sent again on a new
/// connection: the connection broke (not a timeout, not a server reply).
pub(super) fn broken(e: &RedisError) -> bool {
    !e.is_timeout() && (e.is_connection_dropped() || e.is_io_error() || e.is_unrecoverable_error())
}
