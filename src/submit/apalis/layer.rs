//! [`JobBorrowsLayer`]: the worker side of a job with borrows — it opens
//! each delivery's [`Job`], renews the job's claims while the job runs and
//! ends them once the job's final outcome is recorded.

use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll};

use apalis_core::error::{AbortError, BoxDynError};
use apalis_core::task::Task;

use super::outcome::{Outcomes, end_when_recorded};
use super::*;
use crate::submit::task::panic_message;

/// The `tower` layer that opens [`Job`]s for an apalis worker and ends
/// their borrows with the job's final outcome, once the worker's queue has
/// recorded it. See the [module docs](super); add it first.
pub struct JobBorrowsLayer<Conn = apalis_redis::ConnectionManager> {
    outcomes: Outcomes<Conn>,
    max_attempts: Option<usize>,
}

impl<Conn> JobBorrowsLayer<Conn>
where
    Conn: ConnectionLike + Send + Sync + Clone + 'static,
{
    /// The layer for a worker of `storage`'s queue (the queue on which the
    /// layer sees the jobs' outcomes recorded).
    ///
    /// ```
    /// use apalis_redis::RedisStorage;
    /// use borrowstore::RefProxy;
    /// use borrowstore::submit::apalis::{Job, JobBorrowsLayer};
    /// fn layer(storage: &RedisStorage<Job<RefProxy<Vec<u64>>>>) -> JobBorrowsLayer {
    ///     JobBorrowsLayer::new(storage)
    /// }
    /// ```
    pub fn new<A>(storage: &RedisStorage<A, Conn>) -> Self {
        JobBorrowsLayer {
            outcomes: Outcomes::of(storage),
            max_attempts: None,
        }
    }

    /// Gives a job at most `n` attempts (fewer than apalis-redis's
    /// [`APALIS_REDIS_ATTEMPTS`]): the `n`th attempt's failure is final. The
    /// layer marks it killed (an [`AbortError`] around the job's error), so
    /// apalis-redis moves the job to its dead set instead of scheduling it
    /// again, and ends the job's borrows. `0` and `1` both mean no retry.
    ///
    /// ```
    /// use apalis_redis::RedisStorage;
    /// use borrowstore::RefProxy;
    /// use borrowstore::submit::apalis::{Job, JobBorrowsLayer};
    /// fn layer(storage: &RedisStorage<Job<RefProxy<Vec<u64>>>>) -> JobBorrowsLayer {
    ///     JobBorrowsLayer::new(storage).max_attempts(3)
    /// }
    /// ```
    pub fn max_attempts(mut self, n: usize) -> Self {
        self.max_attempts = Some(n);
        self
    }
}

impl<Conn: Clone> Clone for JobBorrowsLayer<Conn> {
    fn clone(&self) -> Self {
        JobBorrowsLayer {
            outcomes: self.outcomes.clone(),
            max_attempts: self.max_attempts,
        }
    }
}

impl<Conn> fmt::Debug for JobBorrowsLayer<Conn> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobBorrowsLayer")
            .field("queue", &self.outcomes.queue)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

impl<S, Conn: Clone> tower_layer::Layer<S> for JobBorrowsLayer<Conn> {
    type Service = JobBorrows<S, Conn>;

    fn layer(&self, inner: S) -> JobBorrows<S, Conn> {
        JobBorrows {
            inner,
            outcomes: self.outcomes.clone(),
            max_attempts: self.max_attempts,
        }
    }
}

/// The service [`JobBorrowsLayer`] makes.
pub struct JobBorrows<S, Conn = apalis_redis::ConnectionManager> {
    inner: S,
    outcomes: Outcomes<Conn>,
    max_attempts: Option<usize>,
}

impl<S: Clone, Conn: Clone> Clone for JobBorrows<S, Conn> {
    fn clone(&self) -> Self {
        JobBorrows {
            inner: self.inner.clone(),
            outcomes: self.outcomes.clone(),
            max_attempts: self.max_attempts,
        }
    }
}

impl<S: fmt::Debug, Conn> fmt::Debug for JobBorrows<S, Conn> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobBorrows")
            .field("inner", &self.inner)
            .field("queue", &self.outcomes.queue)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

impl<S, A, Conn> tower_service::Service<Task<Job<A>>> for JobBorrows<S, Conn>
where
    S: tower_service::Service<Task<Job<A>>>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Into<BoxDynError> + Send + 'static,
    A: Portable + Send + 'static,
    Conn: ConnectionLike + Send + Sync + Clone + 'static,
{
    type Response = S::Response;
    type Error = BoxDynError;
    type Future = BoxFuture<'static, std::result::Result<S::Response, BoxDynError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), BoxDynError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut task: Task<Job<A>>) -> Self::Future {
        let ctx = task.ctx().clone();
        let opened = task.args.open();
        let max_attempts = self.max_attempts;
        let outcomes = self.outcomes.clone();
        // The job is called now (a `Service` is called in `call`), and run
        // below only once its borrows are known to hold.
        let fut = self.inner.call(task);
        async move {
            let Opened {
                claims,
                lease,
                views,
                staged,
            } = match opened {
                Ok(opened) => opened,
                Err((claims, e)) => {
                    // Nothing can run this job: it is killed, and its
                    // borrows end now.
                    drop(fut);
                    return kill(&ctx, &claims, e).await;
                }
            };
            let mut vouches = match renew_claims(&claims, lease).await {
                Ok(v) => v,
                Err(e) => {
                    // A borrow of the job has ended (its lease ran out while
                    // no worker held it, or an earlier delivery reached the
                    // final outcome): the job cannot run as it was submitted.
                    drop(fut);
                    views.end_borrows();
                    return kill(&ctx, &claims, e).await;
                }
            };
            let out = {
                let attempt = AssertUnwindSafe(fut).catch_unwind();
                // Owns the vouches of the renewals: they end with it, when
                // the attempt does (at the end of this block).
                let claims = &claims;
                let renewing = async move {
                    loop {
                        tokio::time::sleep(lease / 3).await;
                        // The old vouches go first: a failed renewal vouches
                        // for nothing.
                        drop(std::mem::take(&mut vouches));
                        match renew_claims(claims, lease).await {
                            Ok(v) => vouches = v,
                            Err(e) => {
                                tracing::warn!(error = %e, "a running job's borrow has ended");
                            }
                        }
                    }
                };
                futures::pin_mut!(attempt, renewing);
                match futures::future::select(attempt, renewing).await {
                    futures::future::Either::Left((out, _)) => out,
                    futures::future::Either::Right(((), attempt)) => attempt.await,
                }
            };
            // This attempt's views are invalid from here on (they never
            // release: the claims are the job's).
            views.end_borrows();
            let _ = views.flush().await;
            if matches!(out, Ok(Err(_)))
                && !matches!(
                    ctx.status(),
                    Status::Failed | Status::Pending | Status::Killed
                )
            {
                // An error that did not pass apalis's lifecycle: a layer
                // inside this one (a time-out) dropped the attempt. It is a
                // failure, retried like one.
                ctx.raw_status().store(Status::Failed);
            }
            let last_allowed = max_attempts.is_some_and(|n| ctx.attempt() >= n);
            let mut res: std::result::Result<S::Response, BoxDynError> = match out {
                Ok(Err(e))
                    if last_allowed && matches!(ctx.status(), Status::Failed | Status::Pending) =>
                {
                    // The last attempt this layer allows.
                    ctx.raw_status().store(Status::Killed);
                    Err(Box::new(AbortError::new(e)))
                }
                Ok(r) => r.map_err(Into::into),
                Err(p) => {
                    ctx.raw_status().store(Status::Killed);
                    Err(Box::new(AbortError::new(Error::TaskPanicked {
                        message: panic_message(&*p),
                    })))
                }
            };
            if res.is_ok() && matches!(ctx.status(), Status::Done) {
                // Succeeded: its writers' changes are published now, before
                // the outcome is recorded.
                if let Err(e) = publish_staged(&staged).await {
                    res = Err(
                        if e.means_borrow_gone()
                            || last_allowed
                            || is_final(&Status::Failed, ctx.attempt())
                        {
                            // Nothing can publish them any more.
                            ctx.raw_status().store(Status::Killed);
                            Box::new(AbortError::new(e))
                        } else {
                            ctx.raw_status().store(Status::Failed);
                            Box::new(e)
                        },
                    );
                }
            }
            // Failed, panicked, killed, or a publish failed: the attempt's
            // changes are dropped; a retry starts from the published value.
            staged.iter().for_each(Staged::discard);
            if is_final(&ctx.status(), ctx.attempt()) {
                // The queue records the outcome after this returns (the
                // worker sends it later, in a batch): the borrows end once
                // it has. A worker killed before that leaves them to the
                // job's next delivery, which the queue makes.
                match ctx.task_id() {
                    Some(id) => {
                        end_when_recorded(&outcomes, id, claims, lease);
                    }
                    None => end_claims(&claims).await,
                }
            }
            res
        }
        .boxed()
    }
}

/// Publishes the staged changes of a job's writers, in argument order; the
/// first failure stops it (the changes not yet published are dropped).
async fn publish_staged(staged: &[Staged]) -> Result<()> {
    for s in staged {
        s.publish().await?;
    }
    Ok(())
}

/// Kills a job that cannot run as it was submitted (`e` says why): its
/// status is `Killed`, so the queue does not retry it, and its borrows end
/// now.
async fn kill<R>(
    ctx: &apalis_core::task::ExecutionContext,
    claims: &[JobClaim],
    e: Error,
) -> std::result::Result<R, BoxDynError> {
    ctx.raw_status().store(Status::Killed);
    end_claims(claims).await;
    Err(Box::new(AbortError::new(e)))
}
