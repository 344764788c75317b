//! The keeper: the one background thread of a store directory in this
//! process. Every [`TICK`] it renews this process's lease (its heartbeat,
//! once a quarter lease: one store, however many claims), looks for dead
//! processes (a record whose lock file it can lock) and repairs and
//! reclaims what they held at once, and releases the held claims of live
//! processes whose heartbeat is older than their lease (stopped ones).
//! Less often it expires tickets, finishes evictions a dead process left
//! half done, and sweeps files nothing names.

use std::collections::HashSet;
use std::fs;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use super::layout::{CREATING, FREE, PROC_FREE, phase_of, tag_of};
use super::reclaim::Reclaimed;
use super::shared::{Patience, Shared};
use crate::connector::lease::now_ms;
use crate::key::Key;

/// How often the keeper looks for dead processes.
pub(super) const TICK: Duration = Duration::from_millis(20);

/// A keeper thread as its directory holds it: [`stop`](Keeper::stop) ends
/// it at once; without it, the thread ends within a tick of the directory
/// being dropped.
pub(super) struct Keeper {
    stop: Arc<(Mutex<bool>, Condvar)>,
}

impl Keeper {
    /// Tells the thread to end (not waited for).
    pub(super) fn stop(&self) {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
    }
}

/// Starts the keeper of `shared`.
pub(super) fn spawn(shared: Weak<Shared>) -> Keeper {
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let stopped = stop.clone();
    let spawned = std::thread::Builder::new()
        .name("borrowstore-lease".into())
        .spawn(move || {
            let mut times = Times::default();
            loop {
                {
                    let (flag, wake) = &*stopped;
                    let done = flag.lock().unwrap_or_else(PoisonError::into_inner);
                    if *done {
                        return;
                    }
                    let (done, _) = wake
                        .wait_timeout(done, TICK)
                        .unwrap_or_else(PoisonError::into_inner);
                    if *done {
                        return;
                    }
                }
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                shared.tick(&mut times);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the file store's keeper thread");
    }
    Keeper { stop }
}

/// When the keeper does its less frequent work next (ms).
#[derive(Default)]
struct Times {
    beat: u64,
    expire: u64,
    sweep: u64,
}

impl Shared {
    fn tick(&self, times: &mut Times) {
        let now = now_ms();
        let lease = self.lease_ms.load(Ordering::Acquire).max(1);
        let table = self.table();
        let me = self.me();
        if let Some(i) = me
            && now >= times.beat
        {
            if table.beat(i, now) {
                tracing::warn!(
                    "this process did not renew its lease in time (was it stopped?): \
                     its claims were reclaimed"
                );
            }
            times.beat = now + (lease / 4).max(1);
        }
        for i in 0..self.layout.procs {
            if Some(i) == me {
                continue;
            }
            let (state, beat, _pid, their_lease) = table.record(i);
            if state == PROC_FREE {
                continue;
            }
            if let Some(_lock) = self.lock_if_dead(i) {
                let Ok(r) = self.register() else { continue };
                let out = table.repair_dead(i, r, &mut Patience::up_to(Duration::from_millis(10)));
                let complete = out.complete;
                self.finish(out);
                if complete {
                    self.remove_tmp_of(i);
                    table.free_record(i);
                }
            } else if now > beat.saturating_add(their_lease.max(1)) {
                let Ok(r) = self.register() else { continue };
                if table.revoke_record(i) {
                    tracing::warn!(
                        record = i,
                        "a process's lease ran out: its claims are reclaimed"
                    );
                }
                let out = table.revoke(i, r, &mut Patience::up_to(Duration::from_millis(10)));
                self.finish(out);
            }
        }
        if now >= times.expire {
            times.expire = now + (lease / 4).clamp(10, 1000);
            if let Ok(r) = self.register() {
                let out =
                    table.expire_tickets(now, r, &mut Patience::up_to(Duration::from_millis(10)));
                self.finish(out);
            }
            for o in table.unfinished_evictions() {
                self.finish_evict(o);
            }
        }
        if now >= times.sweep {
            times.sweep = now + lease.clamp(200, 30_000);
            self.sweep(lease);
        }
    }

    /// Finishes what a reclaim did: removes what it evicted, and the
    /// objects a dead process was creating or removing; announces the
    /// releases.
    pub(super) fn finish(&self, out: Reclaimed) {
        if !out.touched.is_empty() {
            let span = tracing::debug_span!(
                target: "borrowstore",
                "reclaim",
                dir = %self.root.display(),
                claims = out.touched.len(),
                outcome = "ok"
            );
            span.in_scope(|| {
                tracing::debug!(target: "borrowstore", "claims of a dead or stopped process released");
            });
        }
        self.remove_dropped(&out.dropped);
        let table = self.table();
        let touched: HashSet<u32> = out.touched.into_iter().collect();
        for o in touched {
            let key = table.key_version(o).map(|(k, _)| k);
            self.finish_evict(o);
            if let Ok(key) = key {
                self.announce(&key);
            }
        }
    }

    /// Removes files that nothing names: side files of slots that hold
    /// another object, values of no live object or of an old version, and
    /// temporary files older than ten leases (at least an hour).
    fn sweep(&self, lease_ms: u64) {
        let table = self.table();
        let objects = self.root.join("objects");
        let Ok(dir) = fs::read_dir(&objects) else {
            return;
        };
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(key) = name
                .strip_suffix(".ledger")
                .and_then(|k| k.parse::<Key>().ok())
            {
                let Some(place) = fs::read(entry.path())
                    .ok()
                    .and_then(|b| super::side::parse_side(&b))
                else {
                    continue;
                };
                // Kept while its slot holds its object, in any phase (being
                // created, live, evicted but not yet removed, being removed):
                // only the process that removes the object removes it then.
                let held = table.key_version(place.slot).is_ok_and(|(k, _)| k == key)
                    && table
                        .slot(place.slot, super::layout::S_GEN)
                        .is_ok_and(|g| g.load(Ordering::Acquire) == place.epoch)
                    && table
                        .slot(place.slot, super::layout::S_PHASE)
                        .is_ok_and(|p| phase_of(p.load(Ordering::Acquire)) != FREE);
                if !held {
                    let _ = fs::remove_file(entry.path());
                }
            } else if let Some((key, version)) = name.strip_suffix(".blob").and_then(|kv| {
                let (k, v) = kv.split_once('.')?;
                Some((k.parse::<Key>().ok()?, v.parse::<u64>().ok()?))
            }) {
                let place = fs::read(self.side_path(&key))
                    .ok()
                    .and_then(|b| super::side::parse_side(&b));
                let keep = match place {
                    // A side file is written before the first value: without
                    // one, the value is an orphan.
                    None => false,
                    Some(place) => match table.live(place.slot) {
                        Ok(Some((k, epoch, current))) if k == key && epoch == place.epoch => {
                            let writing =
                                table
                                    .slot(place.slot, super::layout::S_WORD)
                                    .is_ok_and(|w| {
                                        let w = w.load(Ordering::Acquire);
                                        super::layout::state_of(w).writer() || tag_of(w) != 0
                                    });
                            version == current || (version > current && writing)
                        }
                        // Being created (or a slot that another object
                        // holds now: its own sweep).
                        _ => table
                            .slot(place.slot, super::layout::S_PHASE)
                            .is_ok_and(|p| phase_of(p.load(Ordering::Acquire)) == CREATING),
                    },
                };
                if !keep {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        let stale = SystemTime::now()
            - Duration::from_secs(3600).max(Duration::from_millis(lease_ms.saturating_mul(10)));
        if let Ok(tmp) = fs::read_dir(self.root.join("tmp")) {
            for entry in tmp.flatten() {
                if entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < stale)
                {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }
}
