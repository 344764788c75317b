//! [`JobHandle`]: what [`submit_job`](super::submit_job) returns — the
//! job's id, and its final outcome once the job's borrows have ended.

use std::fmt;

use apalis_core::backend::{FetchById, TaskResult, WaitForCompletion};
use apalis_core::task::task_id::TaskId;
use apalis_redis::{ConnectionLike, RedisStorage};
use serde::de::DeserializeOwned;

use super::claims::JobClaim;
use super::outcome::{FIRST_POLL, JOB_POLL_INTERVAL, Outcomes};
use super::{Job, JobWire, end_claims};
use crate::error::Result;
use crate::submit::remote::Portable;

/// A job that [`submit_job`](super::submit_job) pushed: its id, and a way
/// to wait for its final outcome.
///
/// The job does not depend on this handle: dropping it (or never waiting,
/// or exiting) leaves the job and its borrows as they are — they end with
/// the job's final outcome. [`wait`](JobHandle::wait) returns that
/// outcome once the job's borrows have ended store-side: the worker's
/// layer ends them once apalis has recorded the outcome, and the handle
/// ends them itself before it returns, so as not to wait for the worker.
///
/// ```no_run
/// use apalis_redis::{Config, RedisStorage};
/// use borrowstore::submit::apalis::{Job, JobHandle, submit_job};
/// use borrowstore::{RefProxy, Store, borrow};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Store::open("redis://127.0.0.1:6379/0?ns=jobs")?;
/// let owner = store.owned_proxy(vec![1u64, 2, 3])?;
/// let conn = apalis_redis::connect("redis://127.0.0.1:6379/0").await?;
/// let mut storage: RedisStorage<Job<RefProxy<Vec<u64>>>> =
///     RedisStorage::new(conn).with_config(Config::default().queue("sums"));
///
/// let mut job = submit_job(&mut storage, borrow(&owner)?).await?;
/// let outcome = job.wait::<u64>().await?;        // the job function's result
/// assert_eq!(outcome.result, Ok(6));
/// // The job's borrow has ended: the owner can write again.
/// drop(borrowstore::mut_borrow_async(&owner).await?);
/// # Ok(()) }
/// ```
pub struct JobHandle<A: Portable, Conn = apalis_redis::ConnectionManager>
where
    Conn: ConnectionLike + Send + Sync + Clone + 'static,
{
    storage: RedisStorage<Job<A>, Conn>,
    outcomes: Outcomes<Conn>,
    id: TaskId,
    /// The job's claims; `None` until read from the queue, for a handle
    /// made from an id.
    claims: Option<Vec<JobClaim>>,
}

impl<A, Conn> JobHandle<A, Conn>
where
    A: Portable + Send + Sync + Unpin + 'static,
    A::Wire: Send + Sync + Unpin + 'static,
    Conn: ConnectionLike + Send + Sync + Clone + 'static,
{
    pub(super) fn new(
        storage: RedisStorage<Job<A>, Conn>,
        id: TaskId,
        claims: Option<Vec<JobClaim>>,
    ) -> Self {
        JobHandle {
            outcomes: Outcomes::of(&storage),
            storage,
            id,
            claims,
        }
    }

    /// A handle of the job `id` on `storage`'s queue, which another process
    /// may have submitted: it reads the job's outcome, and ends its borrows,
    /// as the submitter's handle does (it reads them from the job on the
    /// queue).
    ///
    /// ```
    /// use apalis_core::task::task_id::TaskId;
    /// use apalis_redis::RedisStorage;
    /// use borrowstore::RefProxy;
    /// use borrowstore::submit::apalis::{Job, JobHandle};
    /// fn handle(storage: &RedisStorage<Job<RefProxy<Vec<u64>>>>, id: &str) -> Option<JobHandle<RefProxy<Vec<u64>>>> {
    ///     let id: TaskId = id.parse().ok()?;
    ///     Some(JobHandle::from_id(storage.clone(), id))
    /// }
    /// ```
    pub fn from_id(storage: RedisStorage<Job<A>, Conn>, id: TaskId) -> Self {
        JobHandle::new(storage, id, None)
    }

    /// The job's task id on its queue.
    pub fn id(&self) -> &TaskId {
        &self.id
    }

    /// The name of the job's queue.
    pub fn queue(&self) -> &str {
        self.storage.get_config().queue.as_ref()
    }

    /// The job's final outcome if it has one, read once from the queue:
    /// done, or dead (killed, or failed on its last attempt); `None` while
    /// it waits, runs, or has a retry pending. `R` is the job function's
    /// result type. Before it returns an outcome, it ends what is left of
    /// the job's borrows (nothing, on a worker with the layer).
    ///
    /// # Errors
    ///
    /// [`Error::Connector`](crate::Error::Connector) (naming the queue) if the queue cannot be read,
    /// or its record of the job is not an outcome of type `R`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it reads, and ending borrows that are over already
    /// is idempotent.
    pub async fn check<R>(&mut self) -> Result<Option<TaskResult<R>>>
    where
        R: DeserializeOwned + Send + 'static,
    {
        if !self.outcomes.is_recorded(&self.id).await? {
            return Ok(None);
        }
        let found = WaitForCompletion::<R>::check_status(&mut self.storage, [self.id.clone()])
            .await
            .map_err(|e| self.unreadable(e))?;
        let Some(outcome) = found.into_iter().find(|r| r.task_id == self.id) else {
            return Err(self.unreadable("the queue holds no record of its outcome"));
        };
        if self.claims.is_none() {
            self.claims = Some(self.read_claims().await?);
        }
        end_claims(self.claims.as_deref().unwrap_or_default()).await;
        Ok(Some(outcome))
    }

    /// The job's claims, read from the job on the queue (none if the queue
    /// no longer holds it).
    async fn read_claims(&mut self) -> Result<Vec<JobClaim>> {
        let task = FetchById::fetch_by_id(&mut self.storage, &self.id)
            .await
            .map_err(|e| self.unreadable(e))?;
        let Some(task) = task else {
            return Ok(Vec::new());
        };
        let job: JobWire<serde::de::IgnoredAny> =
            serde_json::from_slice(&task.args).map_err(|e| self.unreadable(e))?;
        Ok(job.claims)
    }

    /// Waits for the job's final outcome (see [`check`](JobHandle::check)),
    /// asking the queue at most every [`JOB_POLL_INTERVAL`]. It waits as long as the
    /// job takes, retries included: bound it with `tokio::time::timeout`.
    ///
    /// # Errors
    ///
    /// As [`check`](JobHandle::check).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future changes nothing of the job, and
    /// the handle can wait again.
    pub async fn wait<R>(&mut self) -> Result<TaskResult<R>>
    where
        R: DeserializeOwned + Send + 'static,
    {
        let mut delay = FIRST_POLL;
        loop {
            if let Some(outcome) = self.check::<R>().await? {
                return Ok(outcome);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(JOB_POLL_INTERVAL);
        }
    }

    fn unreadable(&self, e: impl fmt::Display) -> crate::Error {
        self.outcomes.unreadable(&self.id.to_string(), e)
    }
}

impl<A: Portable, Conn> fmt::Debug for JobHandle<A, Conn>
where
    Conn: ConnectionLike + Send + Sync + Clone + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle")
            .field("id", &self.id.to_string())
            .field("queue", &self.storage.get_config().queue.as_ref())
            .field("claims", &self.claims.as_ref().map(Vec::len))
            .finish()
    }
}
