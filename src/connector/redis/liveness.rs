//! Leases on Redis: the liveness record of each store connection in the
//! namespace's process table, and the lease thread that renews it and
//! reaps the claims of dead processes.
//!
//! A lease belongs to a store connection (one [`RedisConnector`]: a process
//! that opens the same store twice has two), not to a claim. Each connection
//! has a random process id, and every claim it takes names it: the claim
//! record the object script stores is that id (`state.lua` documents the
//! format). The process table, one hash `<ns>:{<ns>:procs}`, holds one
//! record per connection that holds claims: its deadline and lease, on the
//! server's clock.
//!
//! - **Renewal:** the thread sends one `beat` every third of the lease, however
//!   many claims the connection holds: it renews the connection's record
//!   (or removes it once the connection holds nothing), and the same
//!   script judges every record of the table — a record whose deadline
//!   passed is marked dead — and answers with the dead and the live ids.
//!   If the connection's own record was judged dead (it could not renew for
//!   a lease), its claims are lost: it forgets them, logs `lease lost`, and
//!   takes a fresh process id for the claims it takes from then on. (A
//!   claim it takes after waking up from a freeze but before that beat
//!   still names the dead id, and is lost too.)
//! - **Reaping:** between beats, the same thread sweeps the namespace —
//!   one object at a time, beating whenever a beat is due, so that a long
//!   pass never delays a renewal: at once when a beat reports a newly dead
//!   process, and once a lease (a long pass is followed by as long a
//!   pause). One reaper of the namespace sweeps at a time (`turn`: a death
//!   is swept by another reaper only if the running pass does not know of
//!   it yet). It calls the object
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
//! A beat thus waits for one object's `reap` at most, never for a pass (on
//! the connection's ordered request queue too: the pass has one call in it
//! at a time).
//!
//! [`RedisConnector`]: super::RedisConnector

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use redis::Value as RValue;

use super::client::Inner;
use super::io::{ReplyTo, Request};
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

/// The stop flag of the lease thread, and what wakes it.
struct Signal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Signal {
    /// Waits until `until`, or until the thread is stopped or the
    /// connector is gone (`false` then).
    fn wait(&self, target: &Weak<Inner>, until: Instant) -> bool {
        let mut stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if *stopped || target.strong_count() == 0 {
                return false;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            stopped = self
                .wake
                .wait_timeout(stopped, left.min(WATCH))
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
    }

    fn stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The lease thread of one connector, as it holds it:
/// [`stop`](Liveness::stop) ends it as soon as it is not waiting for a
/// reply. Without `stop`, it ends within [`WATCH`] of the connector being
/// dropped.
pub(super) struct Liveness {
    signal: Arc<Signal>,
}

impl Liveness {
    /// Starts the lease thread for `target`, whose lease is `lease`.
    pub(super) fn start(target: Weak<Inner>, lease: Duration) -> Liveness {
        let signal = Arc::new(Signal {
            stopped: Mutex::new(false),
            wake: Condvar::new(),
        });
        let s = signal.clone();
        let spawned = std::thread::Builder::new()
            .name("borrowstore-lease".into())
            .spawn(move || Lease::new(lease).run(&target, &s));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the lease thread");
        }
        Liveness { signal }
    }

    /// Tells the thread to end; does not wait for it.
    pub(super) fn stop(self) {
        *self
            .signal
            .stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.signal.wake.notify_all();
    }
}

/// A reap pass under way: the objects left to sweep, and what it found.
struct Pass {
    keys: Vec<Key>,
    dead: Vec<String>,
    known: HashSet<String>,
    /// Process ids named by the claims swept.
    seen: HashSet<String>,
    /// Every object answered.
    complete: bool,
    started: Instant,
}

/// What the lease thread keeps between its steps.
struct Lease {
    lease: Duration,
    period: Duration,
    /// Whether this connection has had a record since it last left.
    registered: bool,
    next_beat: Instant,
    next_pass: Instant,
    /// The dead ids of the last beat, when the latest of them was judged
    /// dead, and every id with a record then.
    dead: Vec<String>,
    latest: String,
    known: HashSet<String>,
    /// A beat reported a dead id that no pass has started with.
    unswept: bool,
    swept: HashSet<String>,
    pass: Option<Pass>,
}

impl Lease {
    fn new(lease: Duration) -> Lease {
        let period = (lease / 3).max(Duration::from_millis(10));
        let now = Instant::now();
        Lease {
            lease,
            period,
            registered: false,
            // Nothing is held yet: the first beat can wait a period (the
            // connector connects on first use, not when it is made).
            next_beat: now + period,
            next_pass: now + lease,
            dead: Vec::new(),
            latest: String::new(),
            known: HashSet::new(),
            unswept: false,
            swept: HashSet::new(),
            pass: None,
        }
    }

    /// Beats when a beat is due; in between, sweeps object by object, so
    /// that a beat waits for one object's `reap` at most, never for a pass.
    fn run(mut self, target: &Weak<Inner>, signal: &Signal) {
        loop {
            let busy = self.pass.is_some() || self.unswept;
            let until = if busy {
                Instant::now()
            } else {
                self.next_beat.min(self.next_pass)
            };
            if !signal.wait(target, until) {
                return;
            }
            let Some(inner) = target.upgrade() else {
                return;
            };
            if Instant::now() >= self.next_beat {
                self.beat(&inner);
            } else if self.pass.is_some() {
                self.step(&inner, signal);
            } else if self.unswept || Instant::now() >= self.next_pass {
                self.start_pass(&inner);
            }
        }
    }

    fn beat(&mut self, inner: &Inner) {
        self.next_beat = Instant::now() + self.period;
        let holds = inner.held.len() > 0;
        let mode = match (holds, self.registered) {
            (true, _) => "renew",
            (false, true) => "leave",
            (false, false) => "look",
        };
        match inner.beat(mode, self.registered) {
            Ok(beat) => {
                if beat.status == "dead" {
                    inner.declared_dead();
                    self.registered = false;
                } else {
                    self.registered = holds;
                }
                if beat.dead.iter().any(|d| !self.swept.contains(d)) {
                    self.unswept = true;
                }
                self.known = beat.dead.iter().chain(&beat.alive).cloned().collect();
                self.dead = beat.dead;
                self.latest = beat.latest;
            }
            Err(e) => tracing::warn!(error = %e, "lease renewal failed; will retry"),
        }
    }

    /// Starts a pass, if it is this connection's turn: one reaper of the
    /// namespace sweeps at a time — the periodic pass (for tickets past
    /// their deadline and claims of processes without a record) once a
    /// lease, and a pass for a death unless another reaper's running pass
    /// already knows of it. If the turn cannot be asked for, it sweeps.
    fn start_pass(&mut self, inner: &Inner) {
        let death = std::mem::take(&mut self.unswept);
        self.swept = self.dead.iter().cloned().collect();
        self.next_pass = Instant::now() + self.lease;
        let known_at = if death { self.latest.as_str() } else { "0" };
        let args = vec![inner.holder(), inner.lease_ms(), known_at.to_owned()];
        let turn = inner
            .procs_call("turn", args, &[])
            .map_or(true, |t| t.status == "ok");
        if !turn {
            return;
        }
        match inner.scan_keys() {
            Ok(keys) => {
                self.pass = Some(Pass {
                    keys,
                    dead: self.dead.clone(),
                    known: self.known.clone(),
                    seen: HashSet::new(),
                    complete: true,
                    started: Instant::now(),
                })
            }
            Err(e) => tracing::warn!(error = %e, "reap pass failed; will retry"),
        }
    }

    /// Sweeps objects of the pass until a beat is due, then (once every
    /// object is swept) ends it.
    fn step(&mut self, inner: &Inner, signal: &Signal) {
        let Some(pass) = self.pass.as_mut() else {
            return;
        };
        while Instant::now() < self.next_beat && !signal.stopped() {
            let Some(key) = pass.keys.pop() else {
                break;
            };
            match inner.reap_object(&key, &pass.dead) {
                Ok(pids) => pass.seen.extend(pids),
                Err(e) => {
                    tracing::debug!(%key, error = %e, "reap of one object failed");
                    pass.complete = false;
                }
            }
        }
        if !pass.keys.is_empty() {
            return;
        }
        let pass = self.pass.take().expect("a pass");
        if let Err(e) = finish(inner, &pass) {
            tracing::warn!(error = %e, "reap pass failed; will retry");
        }
        // A long pass is followed by as long a pause: sweeping takes at
        // most half of the store's time.
        self.next_pass = Instant::now() + self.lease.max(pass.started.elapsed());
    }
}

/// The end of a pass: the dead processes are forgotten once every object
/// was swept, and the processes named by claims without a record are
/// adopted.
fn finish(inner: &Inner, pass: &Pass) -> Result<()> {
    if pass.complete && !pass.dead.is_empty() {
        inner.procs_call("forget", Vec::new(), &pass.dead)?;
    }
    let unknown: Vec<String> = pass
        .seen
        .iter()
        .filter(|p| !pass.known.contains(*p) && !pass.dead.contains(*p))
        .cloned()
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

    /// Queues the removal of this connection's record, without waiting:
    /// the connector is going away (its releases are queued before it).
    pub(super) fn queue_leave(&self) {
        let args = [
            b"beat".as_slice(),
            self.holder().as_bytes(),
            self.lease_ms().as_bytes(),
            b"leave",
            b"0",
        ]
        .map(<[u8]>::to_vec)
        .to_vec();
        let req = Request::Script {
            keys: self.procs_keys(),
            args,
            reply: ReplyTo::Nobody,
        };
        if self.enqueue(req).is_err() {
            tracing::debug!("the process record is left to run out: the I/O thread has stopped");
        }
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
