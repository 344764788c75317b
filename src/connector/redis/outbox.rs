//! The release outbox: the releases (and the publishes of dropped writers)
//! that nobody waits for, oldest first, and the rule that keeps them in
//! order with everything else this process sends.
//!
//! Whoever sends a request next takes the whole outbox into the front of
//! its pipeline (one round trip for both). Only one batch is in flight at a
//! time, and a request waits while one is: a release queued before a
//! request is applied before it, whichever thread, task or connection
//! carries either. A batch whose pipeline fails goes back to the front of
//! the outbox (every script is idempotent). An async request whose future
//! was dropped while in flight is *detached*: its reply is still awaited,
//! and until it comes no release is taken (the release a dropped claiming
//! request queues must land after the request). Nothing here is held
//! across I/O, so queueing never blocks.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use redis::Value as RValue;

use super::pool::until;
use super::script::{Command, text};
use crate::key::Key;
use crate::sync::unmodeled;

/// A queued request nobody waits for: a release, or a dropped writer's
/// publish (with its object's key).
pub(super) struct Queued {
    pub(super) command: Command,
    pub(super) publish: Option<Key>,
}

#[derive(Default)]
struct State {
    pending: VecDeque<Queued>,
    /// A batch is in flight.
    sending: bool,
    /// The current-thread runtime whose task carries the batch in flight.
    sending_on: Option<tokio::runtime::Id>,
    /// Requests in flight whose callers are gone.
    detached: usize,
    /// The background sender was told about the pending releases (and
    /// watches the outbox until it stays idle).
    kicked: bool,
    /// Releases queued so far.
    pushed: u64,
    /// When the oldest pending release was queued.
    oldest: Option<Instant>,
}

/// The outbox of one connector.
#[derive(Default)]
pub(super) struct Outbox {
    state: Mutex<State>,
    /// Blocking callers waiting for their turn, and how many there are.
    turn: Condvar,
    blocked: AtomicUsize,
    /// Async callers waiting for their turn.
    changed: tokio::sync::Notify,
    /// Queued publishes the server refused since the last flush.
    refused: Mutex<Vec<String>>,
}

/// What a caller waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Turn {
    /// To send a request: no batch in flight.
    Request,
    /// To flush: nothing in flight, detached requests included.
    Flush,
    /// The background sender's: as [`Request`](Turn::Request), but it
    /// takes the releases only once the oldest has waited this long for a
    /// request to carry it (a caller takes them sooner, without waiting
    /// for another thread).
    Stale(std::time::Duration),
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, State> {
        unmodeled::lock(&self.state)
    }

    /// Queues `q`; true if the background sender must be told.
    pub(super) fn push(&self, q: Queued) -> bool {
        let mut st = self.lock();
        if st.pending.is_empty() {
            st.oldest = Some(Instant::now());
        }
        st.pending.push_back(q);
        st.pushed += 1;
        !std::mem::replace(&mut st.kicked, true)
    }

    /// Whether the background sender keeps watching: while releases are
    /// queued, and for `rounds` more calls after the last was queued (a
    /// steady stream of releases then costs its callers no wake-up of the
    /// sender's thread). `seen` and `quiet` are the sender's: the count of
    /// releases it last saw and the calls since one was queued. When it
    /// stops, the next [`push`](Self::push) tells it again.
    pub(super) fn watch(&self, seen: &mut u64, quiet: &mut u32, rounds: u32) -> bool {
        let mut st = self.lock();
        if !st.pending.is_empty() || st.pushed != *seen {
            *seen = st.pushed;
            *quiet = 0;
            return true;
        }
        *quiet += 1;
        if *quiet < rounds {
            return true;
        }
        st.kicked = false;
        false
    }

    /// `on`: the current-thread runtime whose task takes the batch.
    fn try_take(
        self: &Arc<Self>,
        st: &mut State,
        turn: Turn,
        on: Option<tokio::runtime::Id>,
    ) -> Option<Batch> {
        if st.sending || (turn == Turn::Flush && st.detached > 0) {
            return None;
        }
        if st.pending.is_empty() {
            return Some(Batch::empty());
        }
        if let (Turn::Stale(age), Some(oldest)) = (turn, st.oldest)
            && oldest.elapsed() < age
        {
            return Some(Batch::empty());
        }
        if st.detached > 0 {
            return None;
        }
        st.sending = true;
        st.sending_on = on;
        Some(Batch {
            items: st.pending.drain(..).collect(),
            oldest: st.oldest.take(),
            outbox: Some(self.clone()),
        })
    }

    /// The queued releases to send ahead of a request (or a flush), once it
    /// is this caller's turn; `None` at `deadline`.
    ///
    /// A blocking request made inside a current-thread runtime (which logs
    /// a warning) does not wait for a batch that a task of that runtime
    /// carries: the task cannot progress while its thread is blocked. Such
    /// a request may overtake the releases of that batch.
    pub(super) fn take_blocking(self: &Arc<Self>, turn: Turn, deadline: Instant) -> Option<Batch> {
        let mut st = self.lock();
        loop {
            if let Some(b) = self.try_take(&mut st, turn, None) {
                return Some(b);
            }
            if turn == Turn::Request
                && st.sending
                && st.sending_on.is_some()
                && st.sending_on == tokio::runtime::Handle::try_current().ok().map(|h| h.id())
            {
                return Some(Batch::empty());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.blocked.fetch_add(1, Ordering::Relaxed);
            st = self
                .turn
                .wait_timeout(st, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
            self.blocked.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// [`take_blocking`](Self::take_blocking) for async callers; `on`: the
    /// current-thread runtime polling the caller, if it is one; `timer`:
    /// whether the runtime polling it has a timer to wait on.
    pub(super) async fn take(
        self: &Arc<Self>,
        turn: Turn,
        on: Option<tokio::runtime::Id>,
        timer: bool,
        deadline: Instant,
    ) -> Option<Batch> {
        loop {
            let notified = self.changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if let Some(b) = self.try_take(&mut self.lock(), turn, on) {
                return Some(b);
            }
            if Instant::now() >= deadline {
                return None;
            }
            let late = std::pin::pin!(until(timer, deadline));
            futures::future::select(notified, late).await;
        }
    }

    /// Tells the waiting callers the outbox changed (called after the
    /// change, with the lock released: a caller counted in `blocked` was
    /// counted under the lock, before the change).
    fn wake(&self) {
        if self.blocked.load(Ordering::Relaxed) > 0 {
            self.turn.notify_all();
        }
        self.changed.notify_waiters();
    }

    /// A request in flight lost its caller.
    pub(super) fn detach(&self) {
        self.lock().detached += 1;
    }

    /// A detached request got its reply (or gave up).
    pub(super) fn reattach(&self) {
        let mut st = self.lock();
        st.detached -= 1;
        drop(st);
        self.wake();
    }

    /// The queued publishes refused since the last call.
    pub(super) fn take_refused(&self) -> Vec<String> {
        std::mem::take(&mut *unmodeled::lock(&self.refused))
    }
}

/// Releases taken from the outbox to ride in front of one request. Dropped
/// without [`applied`](Batch::applied), they go back to the front of the
/// outbox.
pub(super) struct Batch {
    items: Vec<Queued>,
    /// When the oldest of them was queued.
    oldest: Option<Instant>,
    outbox: Option<Arc<Outbox>>,
}

impl Batch {
    fn empty() -> Batch {
        Batch {
            items: Vec::new(),
            oldest: None,
            outbox: None,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    pub(super) fn commands(&self) -> impl Iterator<Item = &Command> {
        self.items.iter().map(|q| &q.command)
    }

    /// The batch was applied, with `replies` (one per item): notes the
    /// publishes the script refused. A reply that is a server error fails
    /// the whole batch (kept for the next request), and is returned.
    pub(super) fn applied(mut self, replies: &[RValue]) -> redis::RedisResult<()> {
        if let Some(RValue::ServerError(e)) =
            replies.iter().find(|r| matches!(r, RValue::ServerError(_)))
        {
            tracing::warn!(error = ?e, "a queued release failed; will retry");
            return Err(e.clone().into());
        }
        let Some(outbox) = self.outbox.take() else {
            return Ok(());
        };
        if self.items.len() > 1 {
            tracing::trace!(releases = self.items.len(), "releases applied");
        }
        for (q, reply) in self.items.iter().zip(replies) {
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
                unmodeled::lock(&outbox.refused).push(msg);
            }
        }
        self.items.clear();
        outbox.lock().sending = false;
        outbox.wake();
        Ok(())
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(outbox) = self.outbox.take() {
            if !self.items.is_empty() {
                tracing::warn!(
                    releases = self.items.len(),
                    "queued releases failed; will retry"
                );
            }
            let mut st = outbox.lock();
            for q in self.items.drain(..).rev() {
                st.pending.push_front(q);
            }
            st.oldest = match (st.oldest, self.oldest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            st.sending = false;
            drop(st);
            outbox.wake();
        }
    }
}
