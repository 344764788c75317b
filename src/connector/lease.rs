//! Leases: the claims this process holds on a shared store, and the
//! background thread that renews them claim by claim.
//!
//! Every claim a process takes on the file store carries a deadline.
//! While the claim's handle lives, the renewer pushes the deadline forward
//! every third of the lease; when the process dies, nobody does, and the
//! store reclaims the claim as if its handle had been dropped. (The Redis
//! connector keeps [`Held`] too, but leases per process: see its
//! `liveness` module.)

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::key::Key;
use crate::state::{Claim, Deadline};

/// The default lease: how long a dead process's claims survive it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// Milliseconds since the Unix epoch: the lease clock of one host.
pub(crate) fn now_ms() -> Deadline {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The claims this process holds, by key.
#[derive(Default)]
pub(crate) struct Held {
    claims: Mutex<HashMap<Key, HashSet<Claim>>>,
}

impl Held {
    pub(crate) fn add(&self, key: Key, claim: Claim) {
        crate::sync::unmodeled::lock(&self.claims)
            .entry(key)
            .or_default()
            .insert(claim);
    }

    pub(crate) fn remove(&self, key: &Key, claim: &Claim) {
        let mut map = crate::sync::unmodeled::lock(&self.claims);
        if let Some(set) = map.get_mut(key) {
            set.remove(claim);
            if set.is_empty() {
                map.remove(key);
            }
        }
    }

    pub(crate) fn forget_key(&self, key: &Key) {
        crate::sync::unmodeled::lock(&self.claims).remove(key);
    }

    pub(crate) fn snapshot(&self) -> Vec<(Key, Vec<Claim>)> {
        crate::sync::unmodeled::lock(&self.claims)
            .iter()
            .map(|(k, s)| (*k, s.iter().copied().collect()))
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        crate::sync::unmodeled::lock(&self.claims)
            .values()
            .map(HashSet::len)
            .sum()
    }
}

/// What the renewer needs from its connector.
pub(crate) trait Renew: Send + Sync + 'static {
    /// Renews `claims` on `key`; returns the claims that were no longer held.
    fn renew(&self, key: &Key, claims: &[Claim]) -> Vec<Claim>;
    /// Reclaims expired claims everywhere in the store.
    fn reap(&self);
    /// The claims this process holds.
    fn held(&self) -> &Held;
}

/// How often a sleeping renewer looks whether its connector is gone.
const WATCH: Duration = Duration::from_millis(50);

/// A renewer thread, as its connector holds it: [`stop`](Renewer::stop)
/// ends it at once. Dropped without `stop`, the thread runs on until it
/// sees its connector gone (within [`WATCH`]).
pub(crate) struct Renewer {
    stop: Arc<(Mutex<bool>, Condvar)>,
}

impl Renewer {
    /// Tells the thread to end: it does as soon as it is not renewing (it
    /// is not waited for, so a lock another process holds cannot block the
    /// caller).
    pub(crate) fn stop(self) {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
    }
}

/// Starts the renewer thread for `target`. It stops when told
/// ([`Renewer::stop`]), or by itself within [`WATCH`] of the connector
/// being dropped (it never waits out the rest of its period), and never
/// keeps the process alive.
pub(crate) fn spawn_renewer<R: Renew>(target: Weak<R>, lease: Duration) -> Renewer {
    let period = (lease / 3).max(Duration::from_millis(10));
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let stopped = stop.clone();
    let spawned = std::thread::Builder::new()
        .name("borrowstore-lease".into())
        .spawn(move || {
            let (flag, wake) = &*stopped;
            let mut ticks: u64 = 0;
            loop {
                let until = Instant::now() + period;
                let mut done = flag.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    let left = until.saturating_duration_since(Instant::now());
                    if *done || target.strong_count() == 0 {
                        return;
                    }
                    if left.is_zero() {
                        break;
                    }
                    done = wake
                        .wait_timeout(done, left.min(WATCH))
                        .map_or_else(|e| e.into_inner().0, |(g, _)| g);
                }
                drop(done);
                let Some(target) = target.upgrade() else {
                    return;
                };
                for (key, claims) in target.held().snapshot() {
                    for lost in target.renew(&key, &claims) {
                        tracing::warn!(%key, claim = ?lost, "lease lost: the claim was reclaimed");
                        target.held().remove(&key, &lost);
                    }
                }
                ticks += 1;
                if ticks.is_multiple_of(3) {
                    target.reap();
                }
                drop::<Arc<R>>(target);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the lease renewer thread");
    }
    Renewer { stop }
}
