//! [`LeaseLifetime`]: ends when its lease expires.
//!
//! One shared timer thread serves every lease of the process. It sleeps
//! until the earliest armed deadline; a lease that was extended is re-armed
//! at its new expiry when its old deadline comes, and a lease that was
//! shortened is armed again at once, so both take effect. The thread is a
//! plain background thread: it never delays process exit.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, Result};
use crate::key::Key;
use crate::lifetime::{Core, sealed};
use crate::store::Store;

/// A lifetime that ends when its lease expires — ProxyStore's
/// `LeaseLifetime`, where shortening works too.
///
/// The lease runs from creation for a [`Duration`] ([`LeaseLifetime::new`])
/// or until a [`SystemTime`] ([`LeaseLifetime::until`]).
/// [`extend`](LeaseLifetime::extend) adds time;
/// [`set_expiry`](LeaseLifetime::set_expiry) moves the expiry to any time,
/// and an earlier expiry takes effect at that time.
/// [`close`](LeaseLifetime::close) ends it now.
///
/// Dropping the handle does not end the lease: its objects live until it
/// expires. The lease is timed in this process; if the process exits first,
/// objects in a memory store vanish with it, and on file and Redis stores
/// the lifetime's claims are leased by the connector like every claim, so
/// the objects are reclaimed within the connector's lease.
///
/// ```
/// use std::time::Duration;
/// use borrowstore::{LeaseLifetime, Lifetime, Store};
/// # fn main() -> Result<(), borrowstore::Error> {
/// let store = Store::memory("doc-lease-lifetime");
/// let lease = LeaseLifetime::new(&store, Duration::from_millis(50));
/// let k = store.put_in(&lease, &"x".to_owned())?;
/// lease.extend(Duration::from_millis(50))?;          // now about 100 ms
/// assert!(store.exists(&k)?);
/// while !lease.done() {
///     std::thread::sleep(Duration::from_millis(10));
/// }
/// assert!(!store.exists(&k)?);
/// # Ok(()) }
/// ```
pub struct LeaseLifetime {
    lease: Arc<Lease>,
}

struct Lease {
    store: Store,
    core: Core,
    times: Mutex<Times>,
}

struct Times {
    /// When the lease ends.
    expiry: Instant,
    /// The deadline of the timer entry that will act for this lease next
    /// (never later than `expiry`); entries at other deadlines are stale.
    armed: Instant,
}

impl LeaseLifetime {
    /// A lease of `duration` from now on `store` (its default store, for
    /// [`add_key`](LeaseLifetime::add_key)).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use borrowstore::{LeaseLifetime, Lifetime, Store};
    /// let lease = LeaseLifetime::new(&Store::memory("doc-lease-new"), Duration::from_secs(10));
    /// assert!(!lease.done());
    /// assert!(lease.remaining() > Duration::from_secs(9));
    /// ```
    #[track_caller]
    pub fn new(store: &Store, duration: Duration) -> LeaseLifetime {
        LeaseLifetime::starting(store, instant_after(duration))
    }

    /// A lease until `expiry` (wall-clock time); one in the past expires at
    /// once.
    ///
    /// ```
    /// # use std::time::{Duration, SystemTime};
    /// # use borrowstore::{LeaseLifetime, Lifetime, Store};
    /// let at = SystemTime::now() + Duration::from_secs(60);
    /// let lease = LeaseLifetime::until(&Store::memory("doc-lease-until"), at);
    /// assert!(lease.remaining() > Duration::from_secs(59));
    /// ```
    #[track_caller]
    pub fn until(store: &Store, expiry: SystemTime) -> LeaseLifetime {
        LeaseLifetime::starting(store, instant_of(expiry))
    }

    #[track_caller]
    fn starting(store: &Store, expiry: Instant) -> LeaseLifetime {
        let lease = Arc::new(Lease {
            store: store.clone(),
            core: Core::new(),
            times: Mutex::new(Times {
                expiry,
                armed: expiry,
            }),
        });
        timer().arm(expiry, lease.clone());
        LeaseLifetime { lease }
    }

    /// The lease's default store.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use borrowstore::{LeaseLifetime, Store};
    /// let store = Store::memory("doc-lease-store");
    /// assert!(LeaseLifetime::new(&store, Duration::from_secs(1)).store().same_store(&store));
    /// ```
    pub fn store(&self) -> &Store {
        &self.lease.store
    }

    /// Adds the object under `key` in the lease's store. See
    /// [`ContextLifetime::add_key`](crate::ContextLifetime::add_key).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use borrowstore::{LeaseLifetime, Lifetime, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-lease-add-key");
    /// let lease = LeaseLifetime::new(&store, Duration::from_secs(10));
    /// let key = store.put(&3u8)?;
    /// lease.add_key(key)?;
    /// lease.close()?;
    /// assert!(!store.exists(&key)?);
    /// # Ok(()) }
    /// ```
    pub fn add_key(&self, key: Key) -> Result<()> {
        self.lease.core.add(&self.lease.store, key)
    }

    /// Adds `by` to the lease. [`Error::LifetimeEnded`] once it has ended
    /// (closed, or past its expiry).
    ///
    /// An expiry too far ahead for [`Instant`] to hold (say
    /// `extend(Duration::MAX)`) saturates to about a century from now, as
    /// [`new`](LeaseLifetime::new) and [`expire_in`](LeaseLifetime::expire_in)
    /// do; extending never moves the expiry earlier.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use borrowstore::{LeaseLifetime, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let lease = LeaseLifetime::new(&Store::memory("doc-lease-extend"), Duration::from_secs(1));
    /// lease.extend(Duration::from_secs(10))?;
    /// assert!(lease.remaining() > Duration::from_secs(10));
    /// # Ok(()) }
    /// ```
    pub fn extend(&self, by: Duration) -> Result<()> {
        let mut t = self.lease.times();
        if self.lease.ended(&t) {
            drop(t);
            return self.lease.expired();
        }
        t.expiry = saturating_add(t.expiry, by);
        // The armed entry fires at the old expiry and re-arms at the new one.
        Ok(())
    }

    /// Moves the expiry to `expiry`, earlier or later. An earlier expiry
    /// takes effect at that time (one in the past: at once).
    /// [`Error::LifetimeEnded`] once the lease has ended.
    ///
    /// ```
    /// # use std::time::{Duration, SystemTime};
    /// # use borrowstore::{LeaseLifetime, Lifetime, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-lease-shorten");
    /// let lease = LeaseLifetime::new(&store, Duration::from_secs(3600));
    /// let k = store.put_in(&lease, &1u8)?;
    /// lease.set_expiry(SystemTime::now() + Duration::from_millis(20))?;
    /// while !lease.done() {
    ///     std::thread::sleep(Duration::from_millis(5));
    /// }
    /// assert!(!store.exists(&k)?);
    /// # Ok(()) }
    /// ```
    pub fn set_expiry(&self, expiry: SystemTime) -> Result<()> {
        self.set_expiry_instant(instant_of(expiry))
    }

    /// Moves the expiry to `duration` from now, earlier or later. See
    /// [`set_expiry`](LeaseLifetime::set_expiry).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use borrowstore::{LeaseLifetime, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let lease = LeaseLifetime::new(&Store::memory("doc-lease-expire-in"), Duration::from_secs(60));
    /// lease.expire_in(Duration::from_secs(5))?;
    /// assert!(lease.remaining() <= Duration::from_secs(5));
    /// # Ok(()) }
    /// ```
    pub fn expire_in(&self, duration: Duration) -> Result<()> {
        self.set_expiry_instant(instant_after(duration))
    }

    fn set_expiry_instant(&self, expiry: Instant) -> Result<()> {
        let mut t = self.lease.times();
        if self.lease.ended(&t) {
            drop(t);
            return self.lease.expired();
        }
        t.expiry = expiry;
        if expiry < t.armed {
            t.armed = expiry;
            drop(t);
            timer().arm(expiry, self.lease.clone());
        }
        Ok(())
    }

    /// When the lease expires (wall-clock time).
    ///
    /// ```
    /// # use std::time::{Duration, SystemTime};
    /// # use borrowstore::{LeaseLifetime, Store};
    /// let lease = LeaseLifetime::new(&Store::memory("doc-lease-expiry"), Duration::from_secs(60));
    /// assert!(lease.expiry() > SystemTime::now());
    /// ```
    pub fn expiry(&self) -> SystemTime {
        let expiry = self.lease.times().expiry;
        let now = Instant::now();
        if expiry >= now {
            SystemTime::now() + (expiry - now)
        } else {
            SystemTime::now() - (now - expiry)
        }
    }

    /// Time left until the lease expires (zero once it has).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use borrowstore::{LeaseLifetime, Store};
    /// let lease = LeaseLifetime::new(&Store::memory("doc-lease-remaining"), Duration::from_secs(60));
    /// assert!(lease.remaining() <= Duration::from_secs(60));
    /// ```
    pub fn remaining(&self) -> Duration {
        self.lease
            .times()
            .expiry
            .saturating_duration_since(Instant::now())
    }
}

impl Lease {
    fn times(&self) -> std::sync::MutexGuard<'_, Times> {
        crate::sync::unmodeled::lock(&self.times)
    }

    /// Whether the lease has ended: closed, or past its expiry (the timer
    /// may not have acted yet).
    fn ended(&self, t: &Times) -> bool {
        self.core.done() || t.expiry <= Instant::now()
    }

    /// Ends a lease found past its expiry (if the timer has not yet), and
    /// reports that it has ended.
    fn expired(&self) -> Result<()> {
        self.core.end(true)?;
        Err(Error::LifetimeEnded)
    }

    /// The timer's entry at `deadline` came due. Returns the deadline to
    /// re-arm at, if the lease was extended.
    fn on_deadline(&self, deadline: Instant) -> Option<Instant> {
        let mut t = self.times();
        if self.core.done() || deadline != t.armed {
            return None; // ended, or a stale entry
        }
        if t.expiry > Instant::now() {
            t.armed = t.expiry;
            return Some(t.expiry);
        }
        drop(t);
        if let Err(e) = self.core.end(true) {
            tracing::warn!(error = %e, "lease lifetime: releasing its objects failed");
        }
        None
    }
}

impl sealed::Sealed for LeaseLifetime {
    fn core(&self) -> &Core {
        &self.lease.core
    }
}

impl fmt::Debug for LeaseLifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseLifetime")
            .field("store", &self.lease.store.name())
            .field("done", &self.done())
            .field("remaining", &self.remaining())
            .field("claims", &self.lease.core.len())
            .finish()
    }
}

fn instant_after(d: Duration) -> Instant {
    let now = Instant::now();
    // Far enough to never come; `Instant` cannot hold arbitrary durations.
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// `at + d`, saturating like [`instant_after`] (and never earlier than `at`).
fn saturating_add(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .unwrap_or_else(|| at.max(instant_after(d)))
}

fn instant_of(t: SystemTime) -> Instant {
    match t.duration_since(SystemTime::now()) {
        Ok(ahead) => instant_after(ahead),
        Err(_) => Instant::now(),
    }
}

/// The process's lease timer: a heap of (deadline, lease) and one thread.
struct Timer {
    queue: Mutex<Queue>,
    wake: Condvar,
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    leases: std::collections::HashMap<u64, Arc<Lease>>,
    next: u64,
    started: bool,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<Timer> = OnceLock::new();
    TIMER.get_or_init(|| Timer {
        queue: Mutex::new(Queue::default()),
        wake: Condvar::new(),
    })
}

impl Timer {
    fn arm(&'static self, at: Instant, lease: Arc<Lease>) {
        let mut q = crate::sync::unmodeled::lock(&self.queue);
        let id = q.next;
        q.next += 1;
        q.heap.push(Reverse((at, id)));
        q.leases.insert(id, lease);
        if !q.started {
            let spawned = std::thread::Builder::new()
                .name("borrowstore-lease-lifetime".into())
                .spawn(move || self.run());
            match spawned {
                Ok(_) => q.started = true,
                Err(e) => tracing::error!(error = %e, "cannot start the lease lifetime timer"),
            }
        }
        drop(q);
        self.wake.notify_one();
    }

    fn run(&self) {
        let mut q = crate::sync::unmodeled::lock(&self.queue);
        loop {
            let now = Instant::now();
            match q.heap.peek().copied() {
                None => {
                    q = self
                        .wake
                        .wait(q)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                Some(Reverse((at, _))) if at > now => {
                    q = self
                        .wake
                        .wait_timeout(q, at - now)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
                Some(Reverse((at, id))) => {
                    q.heap.pop();
                    let Some(lease) = q.leases.remove(&id) else {
                        continue;
                    };
                    // Release outside the lock: it may wait on the network.
                    drop(q);
                    let again = lease.on_deadline(at);
                    q = crate::sync::unmodeled::lock(&self.queue);
                    if let Some(at) = again {
                        let id = q.next;
                        q.next += 1;
                        q.heap.push(Reverse((at, id)));
                        q.leases.insert(id, lease);
                    }
                }
            }
        }
    }
}
