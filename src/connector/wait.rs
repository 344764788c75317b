//! Waiting for a claim: the waiting borrows of this process, per object and
//! in arrival order, and the announcements of releases that wake them.
//!
//! A connector that can tell when claims are given back keeps a
//! [`Waiters`] and calls [`Waiters::notify`] for the object whenever that
//! may have freed it: the memory connector when a release meets a waiting
//! borrow, the file connector after each of this process's releases, the
//! Redis connector when its subscriber receives the message that the
//! release script publishes. What it cannot announce (another process's
//! release on a file store; a message lost with its connection) its
//! waiters find by re-checking after a bounded delay ([`Recheck`]).
//!

use std::collections::{HashMap, VecDeque};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::key::Key;
use crate::state::ClaimKind;
use crate::sync::{self, Arc, AtomicU64, Mutex, Ordering};

/// When a waiting borrow tries again without an announcement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recheck {
    /// Never: the connector announces every release that can free a waiter.
    Never,
    /// After `first`, then after twice as long each time nothing was
    /// announced, up to `max`: for releases the connector cannot announce.
    Backoff {
        /// The first delay.
        first: Duration,
        /// The longest delay.
        max: Duration,
    },
}

/// The waiting borrows of this process on the objects of one connector,
/// per object in arrival order, and where the connector announces that
/// claims were given back.
///
/// A connector that can tell when claims are given back keeps one and
/// calls [`Waiters::notify`] for the object whenever that may have freed
/// it; what it cannot announce, its waiters find by re-checking after a
/// bounded delay ([`Recheck`]).
///
/// # Order
///
/// The waiting borrows of one object queue in arrival order. A waiting
/// writer tries only when it is first in line; a waiting reader tries only
/// when no writer is ahead of it. So a reader that starts waiting after a
/// writer waits behind it even when it could borrow at once, and a writer
/// gets the object as soon as the borrows it waited for end: later waiting
/// readers of this process never pass it. (A plain `borrow` does not wait
/// and does not queue; readers of other processes do not see this queue.)
///
/// # No lost wake-up
///
/// A waiter records the object's announcement count (its epoch) *before*
/// it tries, and sleeps only while the count is unchanged: a release that
/// lands after the try announces, and bumps the count, so the waiter tries
/// again. The memory connector announces only releases that see its
/// waiting mark, which a waiter sets after recording the count and before
/// trying (one atomic word holds both the mark and the borrow state); the
/// loom model `loom-tests/tests/waiting.rs` checks that ordering.
///
/// ```
/// use std::time::Duration;
/// use borrowstore::Key;
/// use borrowstore::connector::{Recheck, Waiters};
///
/// // A connector that sees only its own process's releases re-checks for
/// // the others' now and then.
/// let waiters = Waiters::new(Recheck::Backoff {
///     first: Duration::from_millis(2),
///     max: Duration::from_millis(64),
/// });
/// // … after a release of a claim on `key` has been applied:
/// # let key = Key::random();
/// waiters.notify(&key);
/// assert!(!waiters.is_listening());
/// ```
pub struct Waiters {
    queues: Mutex<Queues>,
    /// Listeners of every key: `notify` skips the lock while there are none.
    listening: AtomicU64,
    recheck: Recheck,
}

#[derive(Default)]
struct Queues {
    keys: HashMap<Key, Queue>,
    next: u64,
}

/// One object's waiting borrows.
#[derive(Default)]
struct Queue {
    /// Bumped by every announcement.
    epoch: u64,
    line: VecDeque<Place>,
}

struct Place {
    id: u64,
    writer: bool,
    waker: Option<Waker>,
}

impl Queue {
    /// Whether the place at `i` may try: a writer first in line, a reader
    /// with no writer ahead of it.
    fn may_try(&self, i: usize) -> bool {
        if self.line[i].writer {
            i == 0
        } else {
            !self.line.iter().take(i).any(|p| p.writer)
        }
    }

    /// Takes the wakers of every place that may try.
    fn eligible_wakers(&mut self, out: &mut Vec<Waker>) {
        for (i, p) in self.line.iter_mut().enumerate() {
            if p.writer && i > 0 {
                break;
            }
            out.extend(p.waker.take());
            if p.writer {
                break;
            }
        }
    }
}

impl std::fmt::Debug for Waiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiters")
            .field("listening", &self.listening.load(Ordering::Relaxed))
            .field("recheck", &self.recheck)
            .finish()
    }
}

impl Waiters {
    /// An empty registry whose waiters re-check as `recheck` says.
    pub fn new(recheck: Recheck) -> Arc<Waiters> {
        Arc::new(Waiters {
            queues: Mutex::new(Queues::default()),
            listening: AtomicU64::new(0),
            recheck,
        })
    }

    /// When its waiters re-check without an announcement.
    pub fn recheck(&self) -> Recheck {
        self.recheck
    }

    /// Whether a borrow of this process waits, on any object.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst) != 0
    }

    /// Announces that claims on `key` may have been given back (or the
    /// object was evicted): wakes the waiters whose turn it is. Cheap when
    /// nobody waits; call it after the release is applied.
    pub fn notify(&self, key: &Key) {
        if !self.is_listening() {
            return;
        }
        let mut woken = Vec::new();
        {
            let mut qs = sync::lock(&self.queues);
            if let Some(q) = qs.keys.get_mut(key) {
                q.epoch = q.epoch.wrapping_add(1);
                q.eligible_wakers(&mut woken);
            }
        }
        woken.into_iter().for_each(Waker::wake);
    }

    /// Announces every object: after announcements may have been lost (a
    /// subscription that was down).
    pub fn notify_all(&self) {
        if !self.is_listening() {
            return;
        }
        let mut woken = Vec::new();
        {
            let mut qs = sync::lock(&self.queues);
            for q in qs.keys.values_mut() {
                q.epoch = q.epoch.wrapping_add(1);
                q.eligible_wakers(&mut woken);
            }
        }
        woken.into_iter().for_each(Waker::wake);
    }

    /// Queues a waiting borrow of `kind` on `key`, at the end of the line.
    pub(crate) fn listen(self: &Arc<Self>, key: Key, kind: ClaimKind) -> Listener {
        let id = {
            let mut qs = sync::lock(&self.queues);
            qs.next += 1;
            let id = qs.next;
            qs.keys.entry(key).or_default().line.push_back(Place {
                id,
                writer: kind == ClaimKind::Writer,
                waker: None,
            });
            self.listening.fetch_add(1, Ordering::SeqCst);
            id
        };
        Listener {
            waiters: self.clone(),
            key,
            id,
            seen: None,
            due: None,
            delay: Duration::ZERO,
            alarm: None,
        }
    }
}

/// One waiting borrow's place in its object's line. Dropping it leaves the
/// line (and lets the next ones try).
pub(crate) struct Listener {
    waiters: Arc<Waiters>,
    key: Key,
    id: u64,
    /// The epoch of the last try; `None` before the first.
    seen: Option<u64>,
    /// When to try again without an announcement, and the delay it was.
    due: Option<Instant>,
    delay: Duration,
    /// The re-check wake-up already asked of the timer.
    alarm: Option<(Instant, Waker)>,
}

impl Listener {
    /// Ready when this borrow should try (again): it is its turn, and it
    /// never tried, or an announcement came since its last try, or its
    /// re-check is due. Records the epoch of the try it allows, so an
    /// announcement made after this returns is never missed.
    pub(crate) fn poll_turn(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let now_due = self.due.is_some_and(|d| Instant::now() >= d);
        let mut qs = sync::lock(&self.waiters.queues);
        let Some(q) = qs.keys.get_mut(&self.key) else {
            return Poll::Ready(());
        };
        let Some(i) = q.line.iter().position(|p| p.id == self.id) else {
            return Poll::Ready(());
        };
        if q.may_try(i) && (self.seen != Some(q.epoch) || now_due) {
            self.seen = Some(q.epoch);
            drop(qs);
            if let Recheck::Backoff { first, max } = self.waiters.recheck {
                self.delay = match self.due {
                    None => first,
                    Some(_) if now_due => (self.delay * 2).min(max),
                    Some(_) => self.delay,
                };
                self.due = Some(Instant::now() + self.delay);
            }
            return Poll::Ready(());
        }
        q.line[i].waker = Some(cx.waker().clone());
        let may_try = q.may_try(i);
        drop(qs);
        if let (true, Some(due)) = (may_try, self.due) {
            let armed = self
                .alarm
                .as_ref()
                .is_some_and(|(at, w)| *at == due && w.will_wake(cx.waker()));
            if !armed {
                self.alarm = Some((due, cx.waker().clone()));
                super::timer::wake_at(due, cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let mut woken = Vec::new();
        {
            let mut qs = sync::lock(&self.waiters.queues);
            if let Some(q) = qs.keys.get_mut(&self.key) {
                if let Some(i) = q.line.iter().position(|p| p.id == self.id) {
                    let left = q.line.remove(i);
                    // Those behind a writer, or behind the first in line,
                    // may be able to try now.
                    if left.is_some_and(|p| p.writer) || i == 0 {
                        q.eligible_wakers(&mut woken);
                    }
                }
                if q.line.is_empty() {
                    qs.keys.remove(&self.key);
                }
            }
            self.waiters.listening.fetch_sub(1, Ordering::SeqCst);
        }
        woken.into_iter().for_each(Waker::wake);
    }
}
