//! The store's one subscriber connection: it receives the object keys that
//! the release script publishes (`<namespace>:released`) and wakes this
//! process's waiting borrows of those objects.
//!
//! It runs on the connector's I/O thread from the first waiting borrow on.
//! A message can be lost (the connection drops, the server restarts): after
//! every (re)subscription it wakes every waiter, which tries again, and
//! waiters re-check on their own after a bounded delay besides.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::conn::Connect;
use crate::connector::Waiters;
use crate::key::Key;

/// The longest pause between two attempts to (re)subscribe.
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Subscribes to `channel` and announces every key received to `waiters`,
/// until the I/O thread stops; reconnects with a backoff when the
/// connection is lost (on a cluster, to the next node listed). Connecting
/// and subscribing give up after the operation timeout.
pub(super) async fn run(connect: Connect, channel: String, waiters: Arc<Waiters>) {
    let mut pause = Duration::from_millis(50);
    let mut attempt = 0;
    loop {
        let subscribed = connect.subscribe(&channel, attempt).await;
        attempt += 1;
        match subscribed {
            Ok(mut pubsub) => {
                pause = Duration::from_millis(50);
                // Whatever was published before now went unheard.
                waiters.notify_all();
                let mut messages = pubsub.on_message();
                while let Some(msg) = messages.next().await {
                    match msg.get_payload::<String>().map(|k| k.parse::<Key>()) {
                        Ok(Ok(key)) => waiters.notify(&key),
                        _ => tracing::debug!("ignored a malformed release message"),
                    }
                }
                tracing::debug!(%channel, "the subscriber connection closed; subscribing again");
            }
            Err(e) => tracing::debug!(%channel, error = %e, "cannot subscribe; will retry"),
        }
        waiters.notify_all();
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}
