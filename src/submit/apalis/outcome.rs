//! Whether apalis-redis has recorded a job's final outcome, and ending a
//! job's claims only once it has ([`end_when_recorded`]).
//!
//! A worker's layer learns a job's outcome before apalis-redis does: the
//! worker sends its results to the queue later, in batches. A worker killed
//! in between never sends them, and the queue delivers the job again. So
//! the job's borrows must outlive the attempt until the queue has recorded
//! its outcome, or that next delivery would find them ended.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// The finished jobs of this layer whose outcome the queue has not
    /// recorded yet, watched by one task (see [`end_when_recorded`]).
    finished: Arc<Mutex<Finished>>,
}

/// Finished jobs waiting for their outcome to be recorded.
#[derive(Default)]
struct Finished {
    jobs: Vec<FinishedJob>,
    /// Whether a task is watching them.
    watched: bool,
}

struct FinishedJob {
    id: String,
    claims: Vec<JobClaim>,
    lease: Duration,
    since: Instant,
    renewed: Instant,
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
            finished: Arc::default(),
        }
    }

    /// Whether the queue holds a final outcome of job `id` (done, or dead):
    /// apalis-redis adds a job to one of these sets in the script that
    /// records its outcome. (The outcome record alone says `Running` again
    /// once a retry has started.)
    pub(super) async fn is_recorded(&self, id: &TaskId) -> Result<bool> {
        let id = id.to_string();
        let found = self.recorded(std::slice::from_ref(&id)).await;
        Ok(found.map_err(|e| self.unreadable(&id, e))?[0])
    }

    /// [`is_recorded`](Self::is_recorded) for each of `ids`, in one round
    /// trip: two `SMISMEMBER`s (Redis 6.2 and later), else a pipeline of
    /// `SISMEMBER`s.
    async fn recorded(&self, ids: &[String]) -> redis::RedisResult<Vec<bool>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.smismember(&self.done, ids).smismember(&self.dead, ids);
        match pipe.query_async::<(Vec<bool>, Vec<bool>)>(&mut conn).await {
            Ok((done, dead)) if done.len() == ids.len() && dead.len() == ids.len() => {
                return Ok(done.iter().zip(&dead).map(|(a, b)| *a || *b).collect());
            }
            Ok(_) => {}
            Err(e)
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) => {}
            Err(e) => return Err(e),
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.sismember(&self.done, id).sismember(&self.dead, id);
        }
        let found: Vec<bool> = pipe.query_async(&mut conn).await?;
        Ok(found.chunks(2).map(|p| p.iter().any(|&b| b)).collect())
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
///
/// One task per layer watches all its finished jobs: it asks the queue
/// about every one of them in one pipeline, after 2 ms first, and then
/// doubling the pause up to [`JOB_POLL_INTERVAL`] while no job is
/// recorded.
pub(super) fn end_when_recorded<Conn>(
    outcomes: &Outcomes<Conn>,
    id: &TaskId,
    claims: Vec<JobClaim>,
    lease: Duration,
) where
    Conn: ConnectionLike + Send + Sync + Clone + 'static,
{
    if claims.is_empty() {
        return;
    }
    let now = Instant::now();
    let mut finished = lock(&outcomes.finished);
    finished.jobs.push(FinishedJob {
        id: id.to_string(),
        claims,
        lease,
        since: now,
        renewed: now,
    });
    if !finished.watched {
        finished.watched = true;
        tokio::spawn(watch(outcomes.clone()));
    }
}

fn lock(m: &Mutex<Finished>) -> std::sync::MutexGuard<'_, Finished> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The task that ends finished jobs' claims once their outcomes are
/// recorded; it ends when no finished job is left.
async fn watch<Conn>(outcomes: Outcomes<Conn>)
where
    Conn: ConnectionLike + Send + Sync + Clone + 'static,
{
    let mut delay = FIRST_POLL;
    loop {
        tokio::time::sleep(delay).await;
        let ids: Vec<String> = {
            let mut finished = lock(&outcomes.finished);
            if finished.jobs.is_empty() {
                finished.watched = false;
                return;
            }
            finished.jobs.iter().map(|j| j.id.clone()).collect()
        };
        let recorded = match outcomes.recorded(&ids).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(queue = %outcomes.queue, error = %e, "asking for jobs' outcomes failed");
                vec![false; ids.len()]
            }
        };
        let now = Instant::now();
        let (mut over, mut renew, mut given_up) = (Vec::new(), Vec::new(), Vec::new());
        {
            let mut finished = lock(&outcomes.finished);
            let jobs = std::mem::take(&mut finished.jobs);
            for mut job in jobs {
                let seen = ids
                    .iter()
                    .position(|i| *i == job.id)
                    .is_some_and(|p| recorded[p]);
                if seen {
                    over.push(job);
                } else if now.duration_since(job.since) >= RECORD_WAIT_LIMIT {
                    given_up.push(job);
                } else {
                    if now.duration_since(job.renewed) >= job.lease / 3 {
                        job.renewed = now;
                        renew.push((job.claims.clone(), job.lease));
                    }
                    finished.jobs.push(job);
                }
            }
        }
        for job in &given_up {
            tracing::warn!(job = %job.id, queue = %outcomes.queue, "the queue did not record the job's outcome; its borrows end with their lease");
        }
        delay = if over.is_empty() {
            (delay * 2).min(JOB_POLL_INTERVAL)
        } else {
            FIRST_POLL
        };
        // The claims of every job found over, ended together (one request
        // per object).
        let ends = end_claims(over.iter().flat_map(|job| &job.claims));
        let renewals = renew.iter().map(|(claims, lease)| async move {
            // A claim gone already was ended by the submitter's handle.
            let _ = renew_claims(claims, *lease).await;
        });
        futures::future::join(ends, futures::future::join_all(renewals)).await;
    }
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
