//! The connector's I/O thread: one current-thread tokio runtime for what
//! no caller carries. It sends the queued releases when no request comes
//! along to take them (after [`LINGER`], at once while a borrow of this
//! process waits, and every [`RETRY`] while the server is down), runs the
//! store's one subscriber connection once a borrow waits, and serves the
//! async calls polled outside any tokio runtime (or on one without an I/O
//! driver). Once the connector is gone it applies what is left, and ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::mpsc;

use super::outbox::Turn;
use super::send::Transport;
use super::subscribe;
use crate::connector::Waiters;

/// How long a queued release may wait for a request to ride along with.
const LINGER: Duration = Duration::from_millis(1);
/// How often releases that failed (server down) are sent again while idle.
const RETRY: Duration = Duration::from_millis(500);
/// For how many [`LINGER`]s without a new release the sender keeps
/// looking before it waits to be told again.
const WATCH: u32 = 20;

/// One request to the I/O thread.
pub(super) enum Request {
    /// Releases were queued; `soon`: a borrow of this process may be
    /// waiting for them, so no lingering.
    Kick { soon: bool },
    /// Starts the subscriber that announces releases on `channel` to
    /// `waiters` (once per connector).
    Subscribe {
        channel: String,
        waiters: Arc<Waiters>,
    },
    /// An async call of a caller outside any tokio runtime.
    Run(BoxFuture<'static, ()>),
}

/// Starts the I/O thread; returns the queue that feeds it.
pub(super) fn start(transport: Arc<Transport>) -> std::io::Result<mpsc::UnboundedSender<Request>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("borrowstore-redis".into())
        .spawn(move || runtime.block_on(io_loop(transport, rx)))?;
    Ok(tx)
}

async fn io_loop(transport: Arc<Transport>, mut rx: mpsc::UnboundedReceiver<Request>) {
    let (kick, kicked) = mpsc::unbounded_channel();
    tokio::spawn(sender(transport.clone(), kicked));
    let mut subscribed = false;
    while let Some(req) = rx.recv().await {
        match req {
            Request::Kick { soon } => {
                let _ = kick.send(soon);
            }
            Request::Subscribe { channel, waiters } => {
                if !subscribed {
                    subscribed = true;
                    let connect = transport.dial.connect().clone();
                    tokio::spawn(subscribe::run(connect, channel, waiters));
                }
            }
            Request::Run(job) => {
                tokio::spawn(job);
            }
        }
    }
    // The connector is gone: apply what is left, then stop.
    let rt = tokio::runtime::Handle::current();
    if let Err(e) = transport.send_on_io_thread(rt, None, Turn::Flush).await {
        tracing::warn!(error = %e, "queued releases lost with the connector; their leases will expire");
    }
}

/// Sends the queued releases nobody took: after [`LINGER`] (or at once when
/// `soon`), again every [`RETRY`] while they fail, and keeps looking every
/// [`LINGER`] until none was queued for [`WATCH`] of them.
async fn sender(transport: Arc<Transport>, mut kicked: mpsc::UnboundedReceiver<bool>) {
    let (mut seen, mut quiet) = (0, 0);
    while let Some(mut soon) = kicked.recv().await {
        loop {
            if !soon {
                let mut linger = std::pin::pin!(tokio::time::sleep(LINGER));
                // A waiting borrow's release cuts the lingering short.
                loop {
                    let next = std::pin::pin!(kicked.recv());
                    match futures::future::select(linger.as_mut(), next).await {
                        futures::future::Either::Left(_) => break,
                        futures::future::Either::Right((Some(true), _)) => {
                            soon = true;
                            break;
                        }
                        futures::future::Either::Right((Some(false), _)) => {}
                        futures::future::Either::Right((None, _)) => return,
                    }
                }
            }
            let rt = tokio::runtime::Handle::current();
            let turn = if soon {
                Turn::Request
            } else {
                Turn::Stale(LINGER)
            };
            let failed = transport.send_on_io_thread(rt, None, turn).await.is_err();
            if !transport.outbox.watch(&mut seen, &mut quiet, WATCH) {
                break;
            }
            if failed {
                let retry = Instant::now() + RETRY;
                tokio::time::sleep_until(retry.into()).await;
            }
            soon = false;
        }
    }
}
