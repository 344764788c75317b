//! Jobs for [apalis] workers whose arguments carry borrows: the borrows end
//! with the job, on whichever machine it finishes (feature `apalis`).
//!
//! [`submit_job`] pushes a [`Job`] onto an apalis-redis queue. Its
//! arguments cross as [`submit::remote`](super::remote) arguments do —
//! a [`RefProxy`](crate::RefProxy) as a view of its claim, an owner as a
//! view of its owner claim (see [Owners](#owners)) — but the claims
//! do not stay with the submitter: each one is handed over to a ticket that
//! belongs to the job, so a submitter that does not wait, or exits, ends
//! nothing. A worker built with [`JobBorrowsLayer`] reads through views of
//! those claims and ends them when the job reaches its final outcome: when
//! it succeeds, when it is killed (an [`AbortError`], a panic), or when
//! apalis-redis gives up retrying it. A failed attempt that apalis-redis
//! will retry keeps them: the next attempt, on any worker, reads under the
//! same claims. [`submit_job`] returns a [`JobHandle`] that waits for the
//! final outcome; dropping it leaves the job as it is.
//!
//! The layer ends the claims once the queue has recorded the outcome, not
//! as soon as the attempt returns: an apalis worker sends its outcomes to
//! the queue later, in batches, and one that dies in between never sends
//! them. The queue then delivers the job again — a succeeded job runs a
//! second time, as apalis-redis runs any job whose worker died — and that
//! run reads under the same claims. (One task per layer asks the queue's
//! done and dead sets about all its finished jobs in one pipeline, at
//! most every [`JOB_POLL_INTERVAL`], renewing their claims meanwhile; the
//! submitter's [`JobHandle::wait`] ends them itself as soon as it sees the
//! outcome.)
//!
//! ```no_run
//! use apalis_core::error::BoxDynError;
//! use apalis_core::worker::builder::WorkerBuilder;
//! use apalis_redis::{Config, RedisStorage};
//! use borrowstore::submit::apalis::{Job, JobBorrowsLayer, submit_job};
//! use borrowstore::{RefProxy, Store, borrow};
//! # async fn run() -> Result<(), BoxDynError> {
//! let store = Store::open("redis://127.0.0.1:6379/0?ns=jobs")?;
//! let owner = store.owned_proxy(vec![1u64, 2, 3])?;
//! let conn = apalis_redis::connect("redis://127.0.0.1:6379/0").await?;
//! let mut storage: RedisStorage<Job<RefProxy<Vec<u64>>>> =
//!     RedisStorage::new(conn).with_config(Config::default().queue("sums"));
//!
//! // The producer: fire and forget; the job holds the borrow from now on.
//! submit_job(&mut storage, borrow(&owner)?).await?;
//!
//! // A worker (any process that trusts the store): the layer opens the job
//! // and ends its borrow with the job.
//! async fn sum(job: Job<RefProxy<Vec<u64>>>) -> Result<u64, BoxDynError> {
//!     let v = job.into_args()?;
//!     Ok(v.iter().sum())
//! }
//! let layer = JobBorrowsLayer::new(&storage);
//! WorkerBuilder::new("worker-1")
//!     .backend(storage)
//!     .layer(layer)
//!     .build(sum)
//!     .run()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Add [`JobBorrowsLayer`] before any other layer (outermost), so that
//! in-process retries, time-outs and panic catching run inside it and it
//! sees each delivery's outcome once.
//!
//! What apalis-redis 1.0 decides, and this module follows: a job whose
//! attempt ends `Done` or `Killed` is final; one that ends `Failed` (or
//! asks to be retried) is scheduled again while its attempt count is below
//! [`APALIS_REDIS_ATTEMPTS`] (a constant of apalis-redis's
//! `handle_results.lua`, which ignores the job's `max_attempts`).
//!
//! On a Redis Cluster name the queue with [`cluster_queue`] (apalis-redis
//! needs a hash tag, and a particular one) and give `RedisStorage` a
//! cluster connection (`redis::cluster::ClusterClient`).
//!
//! A job's borrows last [`DEFAULT_JOB_LEASE`] (or the lease given to
//! [`submit_job_for`]) whenever no worker renews them — queued, between
//! attempts, after its worker died — and a worker running the job renews
//! them every third of that lease. A job whose borrows have ended that way
//! is killed when it is next delivered, without running.
//!
//! The renewal at the start of an attempt also returns the object's
//! version. While the attempt runs (and for at most half a lease after a
//! renewal), a shared borrow's read of a value this worker process has
//! cached at that version takes no round trip: no writer can publish while
//! the job's borrow holds the object. Reads of any other version go to the
//! store as always.
//!
//! # Owners
//!
//! An [`OwnedProxy`](crate::OwnedProxy) among a job's arguments moves its
//! object into the job: the owner claim goes to a ticket of the job, like
//! a borrow's, and the object is evicted when the job reaches its final
//! outcome (succeeded, killed, or out of attempts) — not while a retry is
//! pending. Each attempt's function gets an `OwnedProxy` that reads the
//! object and may borrow it, but dropping it evicts nothing, and it cannot
//! leave the job ([`OwnedProxy::into_ticket`](crate::OwnedProxy::into_ticket)
//! is refused with [`Error::ClaimLost`]). An
//! object that must outlive the job is lent to it (a `RefProxy`), not
//! moved. Unlike a mutable borrow's, an owner's `update` publishes at once
//! (borrows the function takes of it read the new value), so a retry sees
//! what an earlier attempt published: a job whose retries must start from
//! the original takes a `RefMutProxy`.
//!
//! # Mutable borrows
//!
//! A [`RefMutProxy`](crate::RefMutProxy) among a job's arguments hands the
//! job the object's one writer claim. Its changes made before
//! `submit_job` are published as it is handed over, so every attempt starts
//! from what the submitter saw. What an attempt changes is published only
//! if the attempt succeeds: the function's `update` / `update_async`, and
//! the drop of a changed `RefMutProxy`, hold the change back (the function
//! reads it; nobody else does), and the layer publishes the latest one
//! when the attempt is done, before the job's borrows end and before
//! apalis records the outcome. An attempt that fails, panics or times out
//! publishes nothing: a retry starts from the published value again.
//!
//! If that publish fails, the attempt is recorded as failed (and retried)
//! or, when no retry can help (its borrow is gone, or it was the last
//! attempt), killed. Known limits: a job with several mutable borrows
//! publishes them one after another, so a failure after the first leaves
//! the first published; and a publish whose reply was lost (the
//! connection broke after the server applied it) is retried as a failure,
//! so the retry starts from the published change.
//!
//! # Time-outs
//!
//! A `tower` time-out (`tower::timeout::TimeoutLayer`) added after
//! [`JobBorrowsLayer`] drops an attempt before apalis has recorded its
//! outcome; the layer records it as failed, so apalis-redis retries it
//! under the same borrows (or, on its last attempt, it is dead and they
//! end).
//!
//! Not supported (refused with [`Error::Malformed`]): borrows or owners of
//! a store that is not a Redis store (the others do not renew tickets).
//!
//! [apalis]: https://docs.rs/apalis
//! [`AbortError`]: apalis_core::error::AbortError
//! [`Error::Malformed`]: crate::Error::Malformed
//! [`Error::ClaimLost`]: crate::Error::ClaimLost

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apalis_core::backend::TaskSink;
use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::status::Status;
use apalis_core::task::task_id::TaskId;
use apalis_redis::{ConnectionLike, RedisStorage};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::key::Key;
use crate::ownership::Staged;
use crate::store::{Store, StoreConfig};
use crate::submit::remote::{Export, Import, Portable};
use crate::submit::task::TaskState;

pub(crate) mod claims;
mod handle;
mod layer;
mod outcome;

use claims::{JobClaim, renew_claims};
pub use handle::JobHandle;
pub use layer::{JobBorrows, JobBorrowsLayer};
pub use outcome::{JOB_POLL_INTERVAL, RECORD_WAIT_LIMIT};

/// The number of attempts after which apalis-redis 1.0 stops retrying a
/// failed job and moves it to its dead set (`lua/handle_results.lua`
/// compares the attempt with this constant, not with the job's
/// `max_attempts`).
pub const APALIS_REDIS_ATTEMPTS: usize = 25;

/// Whether apalis-redis records an attempt that ended with `status`, its
/// `attempt`th, as the job's final outcome (done or dead) rather than
/// scheduling it again.
///
/// ```
/// use apalis_core::task::status::Status;
/// use borrowstore::submit::apalis::is_final;
/// assert!(is_final(&Status::Done, 1));
/// assert!(is_final(&Status::Killed, 1));
/// assert!(!is_final(&Status::Failed, 1));                 // retried
/// assert!(is_final(&Status::Failed, 25));                 // its last attempt
/// ```
pub fn is_final(status: &Status, attempt: usize) -> bool {
    match status {
        Status::Failed | Status::Pending => attempt >= APALIS_REDIS_ATTEMPTS,
        _ => true,
    }
}

/// How long a job's borrows last without a worker renewing them, unless
/// given to [`submit_job_for`]: longer than apalis-redis's default
/// orphan timeout (5 min) plus its retry backoff, so that a job that waits
/// in the queue, or for a dead worker's job to be re-queued, keeps them.
pub const DEFAULT_JOB_LEASE: Duration = Duration::from_secs(15 * 60);

/// The key that apalis-redis 1.0 writes when a worker registers, besides
/// the keys of its queue (`lua/register_worker.lua`).
pub const APALIS_QUEUES_KEY: &str = "core:apalis:queues:list";

/// A queue name for apalis-redis 1.0 on a Redis Cluster.
///
/// apalis-redis derives every key of a queue from its name
/// (`<queue>:active`, `<queue>:meta:<id>`, …, with no hash tag of its
/// own) and its scripts touch several of them at once, so on a cluster the
/// name needs a hash tag. Its worker registration also writes
/// [`APALIS_QUEUES_KEY`], a fixed key the script is not given: that key
/// must be in the queue's slot too, or registration fails ("Script
/// attempted to access a non local key"). The name returned here is tagged
/// with that key, which puts both in one slot. (So every apalis queue of a
/// cluster lives on one node: a limit of apalis-redis 1.0.) A single
/// server takes these names as well.
///
/// ```
/// use borrowstore::submit::apalis::cluster_queue;
/// assert_eq!(cluster_queue("sums"), "{core:apalis:queues:list}:sums");
/// ```
pub fn cluster_queue(name: &str) -> String {
    format!("{{{APALIS_QUEUES_KEY}}}:{name}")
}

/// What a job carries on the queue: the arguments' wire form and the
/// claims the job holds.
#[derive(Clone, Serialize, Deserialize)]
struct JobWire<W> {
    args: W,
    claims: Vec<JobClaim>,
    /// How long the claims last without being renewed, in ms.
    lease_ms: u64,
}

/// An apalis job whose arguments `A` may carry borrows: the argument type
/// of the queue (`RedisStorage<Job<A>>`) and of the job function.
///
/// On the queue it is the arguments' wire form (views of borrows, never
/// the values) and the job's claims. [`JobBorrowsLayer`] opens it for each
/// attempt; the job function then takes the arguments with
/// [`into_args`](Job::into_args).
pub struct Job<A: Portable> {
    state: JobState<A>,
}

enum JobState<A: Portable> {
    Wire(JobWire<A::Wire>),
    /// Opened by the layer for one attempt (shared by clones of the task,
    /// which an in-process retry makes).
    Open(Arc<Mutex<Option<A>>>),
}

impl<A: Portable> Job<A> {
    /// The arguments, with views of the job's borrows that are valid for
    /// this attempt.
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] if the worker has no [`JobBorrowsLayer`] (the
    /// job was never opened), or if the arguments were taken already.
    pub fn into_args(self) -> Result<A> {
        match self.state {
            JobState::Open(slot) => slot
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .ok_or_else(|| Error::malformed("job", "its arguments were taken already")),
            JobState::Wire(_) => Err(Error::malformed(
                "job",
                "it was not opened: add JobBorrowsLayer to the worker",
            )),
        }
    }

    /// Opens the job for an attempt: imports the arguments. The job's
    /// claims alone, with the error, if the arguments cannot be imported.
    fn open(&mut self) -> std::result::Result<Opened, (Vec<JobClaim>, Error)> {
        let wire = match std::mem::replace(&mut self.state, JobState::Open(Arc::default())) {
            JobState::Wire(w) => w,
            JobState::Open(_) => {
                return Err((
                    Vec::new(),
                    Error::malformed("job", "it was opened twice: JobBorrowsLayer is stacked"),
                ));
            }
        };
        let mut import = Import::for_job();
        match A::import(wire.args, &mut import) {
            Ok(args) => {
                self.state = JobState::Open(Arc::new(Mutex::new(Some(args))));
                Ok(Opened {
                    claims: wire.claims,
                    lease: Duration::from_millis(wire.lease_ms.max(1)),
                    staged: import.take_staged(),
                    views: import.into_task(),
                })
            }
            Err(e) => {
                import.into_task().end_borrows();
                Err((wire.claims, e))
            }
        }
    }
}

/// A job opened for one attempt.
struct Opened {
    /// The job's claims.
    claims: Vec<JobClaim>,
    /// How long they last without being renewed.
    lease: Duration,
    /// The attempt's views of them.
    views: TaskState,
    /// The changes of its mutable borrows, published if it succeeds.
    staged: Vec<Staged>,
}

impl<A: Portable> Clone for Job<A>
where
    A::Wire: Clone,
{
    fn clone(&self) -> Self {
        let state = match &self.state {
            JobState::Wire(w) => JobState::Wire(w.clone()),
            JobState::Open(slot) => JobState::Open(slot.clone()),
        };
        Job { state }
    }
}

impl<A: Portable> fmt::Debug for Job<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            JobState::Wire(w) => f
                .debug_struct("Job")
                .field("claims", &w.claims.len())
                .finish_non_exhaustive(),
            JobState::Open(_) => f.debug_struct("Job").field("open", &true).finish(),
        }
    }
}

impl<A: Portable> Serialize for Job<A> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match &self.state {
            JobState::Wire(w) => w.serialize(s),
            JobState::Open(_) => Err(serde::ser::Error::custom(
                "an opened job cannot be serialized again",
            )),
        }
    }
}

impl<'de, A: Portable> Deserialize<'de> for Job<A>
where
    A::Wire: DeserializeOwned,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        JobWire::<A::Wire>::deserialize(d).map(|w| Job {
            state: JobState::Wire(w),
        })
    }
}

/// Pushes a job with arguments `args` onto `storage`'s queue and returns
/// its [`JobHandle`] (its task id, and its outcome to wait for). The borrows among the arguments are handed over to the
/// job: from then on they end with the job's final outcome (see the
/// [module docs](self)), whether or not this process is still there, or
/// [`DEFAULT_JOB_LEASE`] after the last time a worker renewed them.
///
/// # Errors
///
/// [`Error::Malformed`] for a borrow or owner of a memory or file store
/// (a job cannot carry them), the store's errors from handing a borrow
/// over (or publishing a `RefMutProxy`'s changes first), and [`Error::Connector`] (naming the queue) if the push
/// fails. On any error the borrows handed over so far end before it is
/// returned, and owners among the arguments are dropped as moved values
/// are, which evicts their objects.
///
/// # Cancel safety
///
/// Dropping the future before it completes ends the borrows not yet handed
/// over; borrows already handed over stay with their tickets until their
/// lease runs out.
pub async fn submit_job<A, Conn>(
    storage: &mut RedisStorage<Job<A>, Conn>,
    args: A,
) -> Result<JobHandle<A, Conn>>
where
    A: Portable + Send + Sync + Unpin + 'static,
    A::Wire: Send + Sync + Unpin + 'static,
    Conn: ConnectionLike + Send + Sync + Clone + Unpin + 'static,
{
    submit_job_for(storage, args, DEFAULT_JOB_LEASE).await
}

/// [`submit_job`] with borrows that last `lease` (instead of
/// [`DEFAULT_JOB_LEASE`]) whenever no worker renews them: while the job
/// waits in the queue, between attempts, and after a worker running it
/// died. A worker renews them every third of `lease` while it runs the
/// job.
///
/// # Errors
///
/// As [`submit_job`].
pub async fn submit_job_for<A, Conn>(
    storage: &mut RedisStorage<Job<A>, Conn>,
    args: A,
    lease: Duration,
) -> Result<JobHandle<A, Conn>>
where
    A: Portable + Send + Sync + Unpin + 'static,
    A::Wire: Send + Sync + Unpin + 'static,
    Conn: ConnectionLike + Send + Sync + Clone + Unpin + 'static,
{
    let lease = lease.max(Duration::from_millis(1));
    let mut export = Export::for_job();
    let wire = args.export(&mut export);
    let hand_overs = export.take_hand_overs();
    let wire = match wire {
        Ok(w) => w,
        Err(e) => {
            drop(hand_overs);
            return Err(e);
        }
    };
    let mut claims = Vec::with_capacity(hand_overs.len());
    let mut failed = None;
    for h in hand_overs {
        if failed.is_some() {
            continue; // dropped: its borrow ends
        }
        match h.run(lease).await {
            Ok(c) => claims.push(c),
            Err(e) => failed = Some(e),
        }
    }
    if let Some(e) = failed {
        end_claims(&claims).await;
        return Err(e);
    }
    let id = TaskId::from_ulid(ulid::Ulid::generate());
    let job = Job {
        state: JobState::Wire(JobWire {
            args: wire,
            claims: claims.clone(),
            lease_ms: u64::try_from(lease.as_millis()).unwrap_or(u64::MAX),
        }),
    };
    let task = TaskBuilder::new(job).task_id(id.clone()).build();
    match storage.push_task(task).await {
        Ok(()) => Ok(JobHandle::new(storage.clone(), id, Some(claims))),
        Err(e) => {
            end_claims(&claims).await;
            Err(Error::Connector {
                store: storage.get_config().queue.to_string(),
                source: Box::new(PushFailed(e.to_string())),
            })
        }
    }
}

/// A push that apalis refused.
#[derive(Debug)]
struct PushFailed(String);

impl fmt::Display for PushFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pushing the job failed: {}", self.0)
    }
}

impl std::error::Error for PushFailed {}

/// Ends every claim of a job (or of several) and waits until the releases
/// are applied: one request per object, whose tickets it cancels together.
/// A failure is logged: the claim then ends with its lease.
async fn end_claims<'a>(claims: impl IntoIterator<Item = &'a JobClaim>) {
    // The claims per object (a few objects: a linear search).
    let mut objects: Vec<(&StoreConfig, Key, Vec<&JobClaim>)> = Vec::new();
    for c in claims {
        match objects
            .iter_mut()
            .find(|(store, key, _)| **store == c.store && *key == c.key)
        {
            Some((_, _, of)) => of.push(c),
            None => objects.push((&c.store, c.key, vec![c])),
        }
    }
    let ends = objects.iter().map(|(config, key, of)| async move {
        let ended = async {
            let store = Store::from_config(config)?;
            let tickets = of.iter().map(|c| (c.ticket, c.kind)).collect();
            let each = store.connector().cancel_tickets_async(*key, tickets).await?;
            Ok::<_, Error>((store, each))
        };
        match ended.await {
            Ok((store, each)) => {
                for (c, r) in of.iter().zip(each) {
                    match r {
                        // Gone already: an earlier delivery ended it, its
                        // lease ran out, or the object is gone.
                        Ok(()) | Err(Error::TicketRedeemed { .. } | Error::KeyNotFound { .. }) => {}
                        Err(e) => {
                            tracing::warn!(key = %c.key, error = %e, "ending a job's borrow failed; it ends with its lease");
                        }
                    }
                }
                Some(store)
            }
            Err(e) => {
                tracing::warn!(key = %key, error = %e, "ending a job's borrows failed; they end with their lease");
                None
            }
        }
    });
    let mut stores: Vec<Store> = Vec::new();
    for s in futures::future::join_all(ends).await.into_iter().flatten() {
        if !stores.iter().any(|x| x.same_store(&s)) {
            stores.push(s);
        }
    }
    if let Err(e) = Store::flush_all_async(&stores).await {
        tracing::warn!(error = %e, "waiting for the release of a job's borrows failed");
    }
}
