//! The connector's I/O thread: one current-thread tokio runtime running the
//! redis-rs client, fed by an ordered queue of requests. Queued releases
//! (and the publishes of dropped writers) ride in the pipeline of the next
//! request, and are sent again while the server is down. The thread also
//! runs the store's one subscriber connection, once a borrow waits.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::Value as RValue;
use tokio::sync::{mpsc, oneshot};

use super::conn::{Conn, Connect};
use super::script::{invocation, script, text};
use super::subscribe;
use crate::connector::Waiters;
use crate::key::Key;

/// What the server answered to one request.
pub(super) type Reply = redis::RedisResult<RValue>;

/// Who waits for a request's reply.
pub(super) enum ReplyTo {
    /// A blocking caller waiting with a timeout.
    Thread(std_mpsc::SyncSender<Reply>),
    /// An async caller.
    Task(oneshot::Sender<Reply>),
    /// A queued release: nobody waits.
    Nobody,
    /// A queued release that a waiting borrow of this process may be
    /// waiting for: sent at once instead of lingering for company.
    Soon,
}

impl ReplyTo {
    pub(super) fn send(self, r: Reply) {
        match self {
            ReplyTo::Thread(tx) => {
                let _ = tx.try_send(r);
            }
            ReplyTo::Task(tx) => {
                let _ = tx.send(r);
            }
            ReplyTo::Nobody | ReplyTo::Soon => {}
        }
    }
}

/// One request to the I/O thread, applied in the order it was queued.
pub(super) enum Request {
    /// One call of the script on one object's five keys.
    Script {
        keys: [String; 5],
        args: Vec<Vec<u8>>,
        reply: ReplyTo,
    },
    /// A publish nobody waits for (a dropped writer's), queued like a
    /// release; if the script refuses it, the refusal is kept for the next
    /// flush.
    Publish {
        keys: [String; 5],
        args: Vec<Vec<u8>>,
        key: Key,
    },
    /// The keys that match `pattern`, after the queued releases.
    Scan { pattern: String, reply: ReplyTo },
    /// Sends the releases queued before it; answered with the outcome.
    Flush { reply: ReplyTo },
    /// Starts the subscriber that announces releases on `channel` to
    /// `waiters` (once per connector).
    Subscribe {
        channel: String,
        waiters: Arc<Waiters>,
    },
}

/// Queued publishes the server refused since the last flush, as messages.
pub(super) type Refused = Arc<Mutex<Vec<String>>>;

/// Starts the I/O thread, over the connections `connect` makes; returns
/// the queue that feeds it.
pub(super) fn start(
    connect: Connect,
    refused: Refused,
) -> std::io::Result<mpsc::UnboundedSender<Request>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("borrowstore-redis".into())
        .spawn(move || runtime.block_on(io_loop(connect, rx, refused)))?;
    Ok(tx)
}

type Call = ([String; 5], Vec<Vec<u8>>);

/// A queued request nobody waits for: a release, or a dropped writer's
/// publish (with its object's key).
struct Queued {
    call: Call,
    publish: Option<Key>,
}

/// How long a queued release may wait for a request to ride along with.
const LINGER: Duration = Duration::from_millis(1);
/// How often releases that failed (server down) are sent again while idle.
const RETRY: Duration = Duration::from_millis(500);

/// The connector's I/O task. Requests are applied in arrival order, so this
/// process's releases always land before its later requests. A release is
/// not sent alone at once: it waits up to [`LINGER`] and goes out in the
/// same pipeline as the next request (one round trip for both), or alone
/// when nothing follows — except while a borrow of this process waits
/// ([`ReplyTo::Soon`]), when it goes out at once. Releases that fail (the
/// server is down) are kept and sent again — before any later request, and
/// every [`RETRY`] while idle — since they are idempotent by claim id.
async fn io_loop(servers: Connect, mut rx: mpsc::UnboundedReceiver<Request>, refused: Refused) {
    let mut conn: Option<Conn> = None;
    // Releases (and publishes) not yet applied, oldest first.
    let mut outbox: Vec<Queued> = Vec::new();
    let mut subscribed = false;
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
                    if let Some(c) = connect(&mut conn, &servers) {
                        failing = pipeline(c, &mut outbox, None, &refused).await.is_err();
                    }
                    continue;
                }
            },
        };
        let Some(req) = req else {
            // The connector is gone: apply what is left, then stop.
            if let Some(c) = connect(&mut conn, &servers) {
                let _ = pipeline(c, &mut outbox, None, &refused).await;
            }
            return;
        };
        let (call, reply) = match req {
            Request::Script {
                keys,
                args,
                reply: ReplyTo::Nobody,
            } => {
                outbox.push(Queued {
                    call: (keys, args),
                    publish: None,
                });
                continue;
            }
            Request::Script {
                keys,
                args,
                reply: ReplyTo::Soon,
            } => {
                outbox.push(Queued {
                    call: (keys, args),
                    publish: None,
                });
                if !failing && let Some(c) = connect(&mut conn, &servers) {
                    failing = pipeline(c, &mut outbox, None, &refused).await.is_err();
                }
                continue;
            }
            Request::Publish { keys, args, key } => {
                outbox.push(Queued {
                    call: (keys, args),
                    publish: Some(key),
                });
                continue;
            }
            Request::Subscribe { channel, waiters } => {
                if !subscribed {
                    subscribed = true;
                    tokio::spawn(subscribe::run(servers.clone(), channel, waiters));
                }
                continue;
            }
            Request::Script { keys, args, reply } => (Some((keys, args)), reply),
            Request::Scan { pattern, reply } => {
                let r = match connect(&mut conn, &servers) {
                    Some(c) => match pipeline(c, &mut outbox, None, &refused).await {
                        Ok(_) => c.scan(&pattern).await.map(|keys| {
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
        let r = match connect(&mut conn, &servers) {
            Some(c) => pipeline(c, &mut outbox, call.as_ref(), &refused).await,
            None => Err(no_manager()),
        };
        failing = !outbox.is_empty();
        reply.send(r.map(|v| v.unwrap_or(RValue::Okay)));
    }
}

fn no_manager() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Client, "cannot create the connection"))
}

fn connect<'a>(conn: &'a mut Option<Conn>, servers: &Connect) -> Option<&'a mut Conn> {
    Some(conn.get_or_insert_with(|| servers.connection()))
}

/// Sends the queued releases and then `call` (if any) as one pipeline, and
/// returns the reply to `call`. On success the outbox is empty, and every
/// queued publish the script refused is added to `refused`. On failure the
/// queue stays in the outbox and the error is returned. A NOSCRIPT reply (a
/// restarted server) loads the script and sends everything again: every
/// script is idempotent (a publish by its token).
async fn pipeline(
    c: &mut Conn,
    outbox: &mut Vec<Queued>,
    call: Option<&Call>,
    refused: &Refused,
) -> redis::RedisResult<Option<RValue>> {
    if outbox.is_empty() {
        return match call {
            Some((keys, args)) => invocation(keys, args).invoke_async(c).await.map(Some),
            None => Ok(None),
        };
    }
    let mut pipe = redis::pipe();
    for (keys, args) in outbox.iter().map(|q| &q.call).chain(call) {
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
            let answer = call.and_then(|_| replies.pop());
            for (q, reply) in outbox.iter().zip(&replies) {
                if let Some(key) = q.publish
                    && text(reply).and_then(|t| t.parse::<u64>().ok()).is_none()
                {
                    let why = match text(reply).as_deref() {
                        Some("lost") | Some("gone") => {
                            "its mutable borrow was no longer held".to_owned()
                        }
                        other => format!("unexpected reply {other:?}"),
                    };
                    let msg = format!(
                        "the changes of a dropped RefMutProxy of {key} were not published: {why}"
                    );
                    tracing::error!(%key, "{msg}");
                    crate::sync::unmodeled::lock(refused).push(msg);
                }
            }
            outbox.clear();
            Ok(answer)
        }
        Err(e) => {
            tracing::warn!(error = %e, releases = outbox.len(), "queued releases failed; will retry");
            Err(e)
        }
    }
}
