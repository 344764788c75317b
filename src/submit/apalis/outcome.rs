//! Whether apalis-redis has recorded a job's final outcome, and ending a
//! job's claims only once it has ([`end_when_recorded`]).
//!
//! A worker's layer learns a job's outcome before apalis-redis does: the
//! worker sends its results to the queue later, in batches. A worker killed
//! in between never sends them, and the queue delivers the job again. So
//! the job's borrows must outlive the attempt until the queue has recorded
//! its outcome, or that next delivery would find them ended.

use std::fmt;
use std::time::Duration;

use apalis_core::task::task_id::TaskId;
use apalis_redis::{ConnectionLike, RedisStorage};

use super::claims::{JobClaim, renew_claims};
use super::end_claims;
use crate::error::{Error, Result};

/// How often, at most, a waiter asks the queue whether a job's outcome is
/// recorded ([`JobHandle::wait`](super::JobHandle::wait), and a worker
/// about to end a finished job's borrows): they ask after 2 ms first, and
/// double the pause after each miss up to this. apalis-redis publishes nothing that every
/// deployment receives, so waiting polls, as apalis's own `wait_for` does.
pub const JOB_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The first pause of a poll for an outcome, doubled after each miss up to
/// [`JOB_POLL_INTERVAL`].
pub(super) const FIRST_POLL: Duration = Duration::from_millis(2);

/// How long a worker waits for the queue to record the outcome of a job
/// that has finished before it stops renewing the job's borrows; they then
/// end with their lease.
pub const RECORD_WAIT_LIMIT: Duration = Duration::from_secs(10 * 60);

/// The sets in which apalis-redis records a queue's final outcomes.
#[derive(Clone)]
pub(super) struct Outcomes<Conn> {
    conn: Conn,
    pub(super) queue: String,
    done: String,
    dead: String,
}

impl<Conn> Outcomes<Conn>
where
    Conn: ConnectionLike + Send + Sync + Clone + 'static,
{
    pub(super) fn of<A>(storage: &RedisStorage<A, Conn>) -> Self {
        let config = storage.get_config();
        Outcomes {
            conn: storage.clone().get_connection().clone(),
            queue: config.queue.as_ref().to_string(),
            done: config.done_jobs_set(),
            dead: config.dead_jobs_set(),
        }
    }

    /// Whether the queue holds a final outcome of job `id` (done, or dead):
    /// apalis-redis adds a job to one of these sets in the script that
    /// records its outcome. (The outcome record alone says `Running` again
    /// once a retry has started.)
    pub(super) async fn is_recorded(&self, id: &TaskId) -> Result<bool> {
        let id = id.to_string();
        let (done, dead): (bool, bool) = redis::pipe()
            .sismember(&self.done, &id)
            .sismember(&self.dead, &id)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.unreadable(&id, e))?;
        Ok(done || dead)
    }

    /// [`Error::Connector`] naming the queue, for job `id`.
    pub(super) fn unreadable(&self, id: &str, e: impl fmt::Display) -> Error {
        Error::Connector {
            store: self.queue.clone(),
            source: Box::new(Unreadable {
                id: id.to_string(),
                reason: e.to_string(),
            }),
        }
    }
}

/// Ends the claims of job `id`, which has reached its final outcome, once
/// the queue has recorded it, renewing them meanwhile. If the queue has
/// not recorded it within [`RECORD_WAIT_LIMIT`], the claims are left to
/// their lease.
pub(super) async fn end_when_recorded<Conn>(
    outcomes: Outcomes<Conn>,
    id: TaskId,
    claims: Vec<JobClaim>,
    lease: Duration,
) where
    Conn: ConnectionLike + Send + Sync + Clone + 'static,
{
    let mut waited = Duration::ZERO;
    let mut since_renewal = Duration::ZERO;
    // The worker sends the outcome soon after the attempt (with its batch):
    // ask often at first, then every JOB_POLL_INTERVAL.
    let mut delay = FIRST_POLL;
    loop {
        match outcomes.is_recorded(&id).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => tracing::debug!(job = %id, error = %e, "asking for a job's outcome failed"),
        }
        if waited >= RECORD_WAIT_LIMIT {
            tracing::warn!(job = %id, queue = %outcomes.queue, "the queue did not record the job's outcome; its borrows end with their lease");
            return;
        }
        tokio::time::sleep(delay).await;
        waited += delay;
        since_renewal += delay;
        delay = (delay * 2).min(JOB_POLL_INTERVAL);
        if since_renewal >= lease / 3 {
            since_renewal = Duration::ZERO;
            if renew_claims(&claims, lease).await.is_err() {
                return; // ended already (by the submitter's handle)
            }
        }
    }
    end_claims(&claims).await;
}

/// The queue's record of a job could not be read.
#[derive(Debug)]
struct Unreadable {
    id: String,
    reason: String,
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "reading the outcome of job {} failed: {}",
            self.id, self.reason
        )
    }
}

impl std::error::Error for Unreadable {}
