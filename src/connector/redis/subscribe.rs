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

use crate::connector::Waiters;
use crate::key::Key;

/// The longest pause between two attempts to (re)subscribe.
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Subscribes to `channel` and announces every key received to `waiters`,
/// until the I/O thread stops; reconnects with a backoff when the
/// connection is lost. Connecting and subscribing give up after `timeout`.
pub(super) async fn run(
    client: redis::Client,
    channel: String,
    waiters: Arc<Waiters>,
    timeout: Duration,
) {
    let mut pause = Duration::from_millis(50);
    loop {
        let subscribed = tokio::time::timeout(timeout, async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(channel.as_str()).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        match subscribed {
            Ok(Ok(mut pubsub)) => {
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
            Ok(Err(e)) => tracing::debug!(%channel, error = %e, "cannot subscribe; will retry"),
            Err(_) => tracing::debug!(%channel, "subscribing timed out; will retry"),
        }
        waiters.notify_all();
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}
