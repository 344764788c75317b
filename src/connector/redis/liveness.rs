//! Leases on Redis: the liveness record of each store connection in the
//! namespace's process table, and the two threads that keep it — the
//! renewer and the reaper.
//!
//! A lease belongs to a store connection (one [`RedisConnector`]: a process
//! that opens the same store twice has two), not to a claim. Each connection
//! has a random process id, and every claim it takes names it: the claim
//! record the object script stores is that id (`state.lua` documents the
//! format). The process table, one hash `<ns>:{<ns>:procs}`, holds one
//! record per connection that holds claims: its deadline and lease, on the
//! server's clock.
//!
//! - **The renewer** sends one `beat` every third of the lease, however
//!   many claims the connection holds: it renews the connection's record
//!   (or removes it once the connection holds nothing), and the same
//!   script judges every record of the table — a record whose deadline
//!   passed is marked dead — and answers with the dead and the live ids.
//!   If the connection's own record was judged dead (it could not renew for
//!   a lease), its claims are lost: it forgets them, logs `lease lost`, and
//!   takes a fresh process id for the claims it takes from then on.
//! - **The reaper**, on a thread of its own so that a long pass never
//!   delays a renewal, sweeps the namespace: at once when a beat reports a
//!   newly dead process, and once a lease — one reaper of the namespace
//!   at a time (`turn`: a death is swept by another reaper only if the
//!   running pass does not know of it yet). It calls the object
//!   script's `reap` on every object with the dead ids — which releases
//!   their claims, and those of tickets past their deadline, as releases
//!   would — then removes the dead records (`forget`) once every object was
//!   swept. Each `reap` answers with the process ids its object's claims
//!   name; an id that has no record (a connection killed before its first
//!   beat, or whose record was lost) is given one (`adopt`) as if it had
//!   just renewed: a live connection renews it, a dead one lets it run out.
//!
//! Why the object script does not read the process table: on a cluster a
//! script may only touch the keys of one slot, and every object has a slot
//! of its own. So liveness is judged in the table's slot, by the beat, and
//! passed to the objects' slots by the reaper as a list of dead ids; the
//! `reap` call is idempotent (releasing what is gone is a no-op), so a lost
//! reply or two reapers at once do no harm. The cost: a dead process's
//! claims are reclaimed by the reap pass only, not by the next operation on
//! the object — within a lease and a sweep of its death.
//!
//! Deadlines are set and compared on the server's clock (`TIME` in the
//! script); a client sends its lease, never a time. The stall window: a
//! call that finds the table untouched for longer than half a record's
//! lease — the server was stopped, or every process was — first moves that
//! record's deadline a full lease ahead, so that after a stall every live
//! process gets to renew before anything is judged dead. A record gets one
//! window until it is renewed again: a short-leased dead process among
//! processes that renew seldom (to the table every gap looks like a stall)
//! is judged dead one lease late at most, never kept alive.
//!
//! The renewer and the reaper share the connection's ordered request
//! queue, where the reaper has one call at a time: a beat waits for one
//! object's `reap` at most, never for a pass.
//!
//! [`RedisConnector`]: super::RedisConnector

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use redis::Value as RValue;

use super::client::Inner;
use super::script::{items, text};
use crate::error::Result;
use crate::key::{ClaimId, Key};

/// How often a waiting thread looks whether its connector is gone.
const WATCH: Duration = Duration::from_millis(50);

/// What a beat answered.
struct Beat {
    /// `ok`, or `dead`: this connection's record was judged dead.
    status: String,
    /// When the latest of the dead was judged dead (server time, ms).
    latest: String,
    dead: Vec<String>,
    alive: Vec<String>,
}

/// What the renewer tells the reaper, and the stop flag of both.
#[derive(Default)]
struct Shared {
    stopped: bool,
    /// The dead ids of the last beat.
    dead: Vec<String>,
    /// Every id with a record at the last beat (dead or alive).
    known: HashSet<String>,
    /// When the latest of `dead` was judged dead.
    latest: String,
    /// A dead id appeared that no sweep has started with.
    unswept: bool,
    /// The dead ids the reaper has started a sweep with.
    swept: HashSet<String>,
}

struct Signal {
    shared: Mutex<Shared>,
    wake: Condvar,
}

impl Signal {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `until`, or until `ready` is true, or until the threads
    /// are stopped or the connector is gone (`false` then).
    fn wait(&self, target: &Weak<Inner>, until: Instant, ready: impl Fn(&Shared) -> bool) -> bool {
        let mut s = self.lock();
        loop {
            if s.stopped || target.strong_count() == 0 {
                return false;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || ready(&s) {
                return true;
            }
            s = self
                .wake
                .wait_timeout(s, left.min(WATCH))
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
    }

    fn stopped(&self) -> bool {
        self.lock().stopped
    }
}

/// The renewer and reaper threads of one connector, as it holds them:
/// [`stop`](Liveness::stop) ends both (each as soon as it is not waiting
/// for a reply). Without `stop`, they end within [`WATCH`] of the
/// connector being dropped.
pub(super) struct Liveness {
    signal: Arc<Signal>,
}

impl Liveness {
    /// Starts both threads for `target`, whose lease is `lease`.
    pub(super) fn start(target: Weak<Inner>, lease: Duration) -> Liveness {
        let signal = Arc::new(Signal {
            shared: Mutex::new(Shared::default()),
            wake: Condvar::new(),
        });
        let (s, t) = (signal.clone(), target.clone());
        let renewer = std::thread::Builder::new()
            .name("borrowstore-lease".into())
            .spawn(move || renew_loop(&t, &s, lease));
        let (s, t) = (signal.clone(), target);
        let reaper = std::thread::Builder::new()
            .name("borrowstore-reap".into())
            .spawn(move || reap_loop(&t, &s, lease));
        if let Err(e) = renewer.and(reaper) {
            tracing::error!(error = %e, "cannot start the lease threads");
        }
        Liveness { signal }
    }

    /// Tells both threads to end; does not wait for them.
    pub(super) fn stop(self) {
        self.signal.lock().stopped = true;
        self.signal.wake.notify_all();
    }
}

/// Beats every third of the lease.
fn renew_loop(target: &Weak<Inner>, signal: &Signal, lease: Duration) {
    let period = (lease / 3).max(Duration::from_millis(10));
    let mut registered = false;
    let mut next = Instant::now();
    while signal.wait(target, next, |_| false) {
        next = Instant::now() + period;
        let Some(inner) = target.upgrade() else {
            return;
        };
        let holds = inner.held.len() > 0;
        let mode = match (holds, registered) {
            (true, _) => "renew",
            (false, true) => "leave",
            (false, false) => "look",
        };
        match inner.beat(mode, registered) {
            Ok(beat) => {
                if beat.status == "dead" {
                    inner.declared_dead();
                    registered = false;
                } else {
                    registered = holds;
                }
                let mut s = signal.lock();
                if beat.dead.iter().any(|d| !s.swept.contains(d)) {
                    s.unswept = true;
                }
                s.known = beat.dead.iter().chain(&beat.alive).cloned().collect();
                s.dead = beat.dead;
                s.latest = beat.latest;
                drop(s);
                signal.wake.notify_all();
            }
            Err(e) => tracing::warn!(error = %e, "lease renewal failed; will retry"),
        }
    }
}

/// Sweeps the namespace when a process is found dead, and once a lease.
fn reap_loop(target: &Weak<Inner>, signal: &Signal, lease: Duration) {
    let mut next = Instant::now() + lease;
    while signal.wait(target, next, |s| s.unswept) {
        let (dead, known, death, latest) = {
            let mut s = signal.lock();
            let death = std::mem::take(&mut s.unswept);
            let dead = s.dead.clone();
            s.swept = dead.iter().cloned().collect();
            (dead, s.known.clone(), death, s.latest.clone())
        };
        let Some(inner) = target.upgrade() else {
            return;
        };
        // One reaper of the namespace sweeps at a time: the periodic pass
        // (for tickets past their deadline and claims of processes without
        // a record) once a lease, and a pass for a death unless another
        // reaper's running pass already knows of it. If the turn cannot be
        // asked for, sweep anyway.
        let known_at = if death { latest.as_str() } else { "0" };
        let args = vec![inner.holder(), inner.lease_ms(), known_at.to_owned()];
        let turn = inner
            .procs_call("turn", args, &[])
            .map_or(true, |t| t.status == "ok");
        let start = Instant::now();
        if turn && let Err(e) = sweep(&inner, signal, &dead, &known) {
            tracing::warn!(error = %e, "reap pass failed; will retry");
        }
        drop(inner);
        // A long pass is followed by as long a pause: sweeping takes at
        // most half of the store's time.
        next = Instant::now() + lease.max(start.elapsed());
    }
}

/// One reap pass over every object of the namespace.
fn sweep(inner: &Inner, signal: &Signal, dead: &[String], known: &HashSet<String>) -> Result<()> {
    let keys = inner.scan_keys()?;
    let mut seen = HashSet::new();
    let mut complete = true;
    for key in keys {
        if signal.stopped() {
            return Ok(());
        }
        match inner.reap_object(&key, dead) {
            Ok(pids) => seen.extend(pids),
            Err(e) => {
                tracing::debug!(%key, error = %e, "reap of one object failed");
                complete = false;
            }
        }
    }
    if complete && !dead.is_empty() {
        inner.procs_call("forget", Vec::new(), dead)?;
    }
    let unknown: Vec<String> = seen
        .into_iter()
        .filter(|p| !known.contains(p) && !dead.contains(p))
        .collect();
    if !unknown.is_empty() {
        tracing::debug!(
            processes = unknown.len(),
            "claims of processes without a record"
        );
        inner.procs_call("adopt", vec![inner.lease_ms()], &unknown)?;
    }
    Ok(())
}

impl Inner {
    /// The process table's key, five times (a script call takes five keys).
    fn procs_keys(&self) -> [String; 5] {
        let ns = &self.namespace;
        std::array::from_fn(|_| format!("{ns}:{{{ns}:procs}}"))
    }

    /// Calls `op` on the process table with `args`, then `ids`.
    fn procs_call(&self, op: &str, args: Vec<String>, ids: &[String]) -> Result<Beat> {
        let mut a = vec![op.as_bytes().to_vec()];
        a.extend(args.into_iter().map(String::into_bytes));
        a.extend(ids.iter().map(|i| i.as_bytes().to_vec()));
        let v = self.call_on(self.procs_keys(), a)?;
        self.beat_reply(v)
    }

    /// Renews (`renew`), removes (`leave`) or only reads (`look`) this
    /// connection's record, and judges every record of the table.
    fn beat(&self, mode: &str, registered: bool) -> Result<Beat> {
        let args = vec![
            self.holder(),
            self.lease_ms(),
            mode.to_owned(),
            if registered { "1" } else { "0" }.to_owned(),
        ];
        self.procs_call("beat", args, &[])
    }

    fn beat_reply(&self, v: RValue) -> Result<Beat> {
        let parts: Vec<String> = items(v).iter().filter_map(text).collect();
        let n_dead = parts.get(3).and_then(|n| n.parse::<usize>().ok());
        match (parts.first(), n_dead) {
            (Some(status), Some(n)) if parts.len() >= 4 + n => Ok(Beat {
                status: status.clone(),
                latest: parts[2].clone(),
                dead: parts[4..4 + n].to_vec(),
                alive: parts[4 + n..].to_vec(),
            }),
            _ => Err(self.error(format!("malformed process table reply: {parts:?}"))),
        }
    }

    /// Releases the claims of the `dead` processes on `key` (and those of
    /// its tickets past their deadline); the process ids its claims left
    /// name.
    fn reap_object(&self, key: &Key, dead: &[String]) -> Result<Vec<String>> {
        let mut a = vec![b"reap".to_vec()];
        a.extend(dead.iter().map(|d| d.as_bytes().to_vec()));
        let v = self.call(key, a)?;
        Ok(items(v).iter().filter_map(text).collect())
    }

    /// This connection's record was judged dead: its claims are reclaimed
    /// (or will be), so it forgets them, and names a fresh process id in
    /// the claims it takes from now on.
    fn declared_dead(&self) {
        *crate::sync::unmodeled::lock(&self.process) = ClaimId::random();
        for (key, claims) in self.held.snapshot() {
            for claim in claims {
                tracing::warn!(%key, ?claim, "lease lost: the claim was reclaimed");
            }
            self.held.forget_key(&key);
        }
    }
}
