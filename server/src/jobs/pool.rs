//! The worker pool: `job_workers` tasks that claim due jobs, keep their lease
//! alive while a handler runs, and record the outcome (success, retry with
//! backoff, or failure for good).
//!
//! Idle workers sleep until a local enqueue wakes them (an in-process
//! `Notify`; other replicas' enqueues arrive through the PostgreSQL listener)
//! or `job_poll_interval_ms` passes, which also picks up retries that came
//! due and leases that expired.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{JobQueue, backoff};
use crate::{
    error::{ErrorKind, Result},
    model::{Job, Millis, now_ms},
    perf::{JobOutcome, JobSample, Perf},
    store::WriteTx,
    telemetry::{Failure, background_failure},
};

/// A finished attempt whose result is committed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobDone {
    /// Orchestration the job belongs to, for the performance report.
    pub orchestration_id: Option<String>,
    /// Time the analysis itself took, in ms.
    pub analysis_ms: Option<f64>,
}

/// Why an attempt did not finish.
#[derive(Debug, Clone, PartialEq)]
pub struct JobFailure {
    /// What went wrong, as recorded in `last_error` and shown to clients when final.
    pub message: String,
    /// Retrying cannot help.
    pub permanent: bool,
    /// Another worker holds the job now (our lease expired and was reclaimed): write nothing.
    pub lease_lost: bool,
    /// Orchestration the job belongs to, for the performance report.
    pub orchestration_id: Option<String>,
    /// Fewer attempts than the job's own limit for this kind of failure (e.g. a source too slow to
    /// be worth another full-length try).
    pub attempt_limit: Option<u32>,
}

impl JobFailure {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
            lease_lost: false,
            orchestration_id: None,
            attempt_limit: None,
        }
    }

    /// Caps the job's attempts at `limit` for this failure.
    pub fn with_attempt_limit(mut self, limit: u32) -> Self {
        self.attempt_limit = Some(limit);
        self
    }

    /// Whether the job has no attempt left after this failure on attempt `attempts` of `max_attempts`.
    fn exhausts(&self, attempts: u32, max_attempts: u32) -> bool {
        attempts >= self.attempt_limit.map_or(max_attempts, |limit| limit.min(max_attempts))
    }

    /// A failure retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { permanent: true, ..Self::transient(message) }
    }

    /// The lease was lost: the attempt must not write anything.
    pub fn lease_lost() -> Self {
        Self { lease_lost: true, ..Self::transient("lease lost to another worker") }
    }

    /// Tags the failure with an orchestration.
    pub fn with_orchestration(mut self, orchestration_id: Option<String>) -> Self {
        self.orchestration_id = orchestration_id;
        self
    }
}

/// Runs jobs of one kind. Every write that finishes an attempt must be guarded
/// by the attempt's lease (the `store::*_job_in` functions do that) and happen
/// in one transaction with the attempt's results.
#[async_trait::async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// Called inside the claim transaction, e.g. to mark the subject as running.
    async fn claimed_in(&self, txn: &WriteTx, job: &Job) -> Result<()>;
    /// Runs one attempt and commits its result.
    async fn run(&self, job: Job) -> std::result::Result<JobDone, JobFailure>;
    /// Records a failed attempt that runs again at `run_after`.
    async fn retry(&self, job: &Job, error: &str, run_after: Millis) -> Result<()>;
    /// Records that the job failed for good; returns the orchestration its
    /// subject belongs to, if any (for the performance report).
    async fn fail(&self, job: &Job, error: &str) -> Result<Option<String>>;
    /// Called inside the transaction that hands an unfinished job back at shutdown.
    async fn released_in(&self, txn: &WriteTx, job: &Job) -> Result<()>;
}

/// Handlers by job kind.
pub type Handlers = HashMap<&'static str, Arc<dyn JobHandler>>;

struct Ctx {
    queue: JobQueue,
    handlers: Handlers,
    perf: Perf,
    replica: String,
    /// Stop claiming new jobs (SIGTERM).
    shutdown: CancellationToken,
    /// Abandon running jobs and hand them back (the grace period ran out).
    hard_stop: CancellationToken,
}

/// The running workers.
pub struct Workers {
    tasks: Vec<JoinHandle<()>>,
    hard_stop: CancellationToken,
}

impl Workers {
    /// Starts `count` workers. They stop claiming when `shutdown` is cancelled
    /// and finish the job in hand; [`Workers::stop`] bounds how long that may take.
    pub fn start(
        queue: JobQueue,
        handlers: Handlers,
        perf: Perf,
        replica: String,
        count: u32,
        shutdown: CancellationToken,
    ) -> Self {
        let hard_stop = CancellationToken::new();
        let ctx = Arc::new(Ctx { queue, handlers, perf, replica, shutdown, hard_stop: hard_stop.clone() });
        let tasks = (0..count).map(|i| tokio::spawn(worker(ctx.clone(), i))).collect();
        Self { tasks, hard_stop }
    }

    /// Waits up to `grace` for the workers to finish their jobs, then hands
    /// the unfinished ones back to the queue (released, not counted as an
    /// attempt) and waits for the workers to exit.
    pub async fn stop(self, grace: Duration) {
        let hard_stop = self.hard_stop.clone();
        let timer = tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            hard_stop.cancel();
        });
        for task in self.tasks {
            let _ = task.await;
        }
        timer.abort();
    }
}

async fn worker(ctx: Arc<Ctx>, index: u32) {
    let owner = format!("{}/w{index}", ctx.replica);
    let poll = ctx.queue.config().jobs.poll_interval;
    loop {
        if ctx.shutdown.is_cancelled() {
            return;
        }
        // Register for wake-ups before looking, so an enqueue between the
        // look and the wait is not missed.
        let notified = ctx.queue.notify().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match claim(&ctx, &owner).await {
            Ok(Some(job)) => {
                run_one(&ctx, job).await;
                continue;
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "cannot claim jobs; retrying"),
        }
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep(poll) => {}
            () = ctx.shutdown.cancelled() => return,
        }
    }
}

async fn claim(ctx: &Ctx, owner: &str) -> Result<Option<Job>> {
    let store = ctx.queue.store();
    let kinds: Vec<&str> = ctx.handlers.keys().copied().collect();
    if !store.has_due_job(&kinds).await? {
        return Ok(None);
    }
    let lease_ms = ctx.queue.config().jobs.lease.as_millis() as i64;
    let txn = store.begin_write().await?;
    let claimed = txn.claim_job(owner, lease_ms, &kinds, &ctx.queue.turn()).await?;
    // Only kinds with a handler are claimed.
    let Some((job, handler)) = claimed.and_then(|job| ctx.handlers.get(job.kind.as_str()).map(|h| (job, h))) else {
        txn.rollback().await?;
        return Ok(None);
    };
    handler.claimed_in(&txn, &job).await?;
    txn.commit().await?;
    ctx.queue.served(&job);
    Ok(Some(job))
}

async fn run_one(ctx: &Ctx, job: Job) {
    let span = tracing::info_span!("job", job_id = %job.id, kind = %job.kind, attempt = job.attempts);
    run_attempt(ctx, job).instrument(span).await;
}

async fn run_attempt(ctx: &Ctx, job: Job) {
    let Some(handler) = ctx.handlers.get(job.kind.as_str()).cloned() else { return };
    let started = Instant::now();
    let wait = Duration::from_millis(job.claimed_at.saturating_sub(job.due_at).max(0) as u64);
    let sample = |outcome, orchestration_id, analysis_ms| JobSample {
        tenant_id: job.tenant_id.0.clone(),
        project_id: job.project_id.clone(),
        orchestration_id,
        wait,
        run: started.elapsed(),
        analysis_ms,
        outcome,
    };

    if job.exhausted() {
        let message = format!(
            "gave up after {} attempts: the workers running it stopped without finishing{}",
            job.max_attempts,
            job.last_error.as_deref().map(|e| format!(" (last error: {e})")).unwrap_or_default()
        );
        background_failure(Failure::ImageAnalysis, ErrorKind::Unavailable, Some(&job.project_id), &message);
        let orchestration_id = handler.fail(&job, &message).await.unwrap_or_else(|err| {
            cannot_record(&job, "the job's failure", &err);
            None
        });
        ctx.perf.record_job(&sample(JobOutcome::Failed, orchestration_id, None));
        return;
    }

    // The handler runs in its own task, so a panic in it fails the attempt
    // instead of the worker, and a lost lease can abort it.
    let mut task = tokio::spawn(handler.clone().run_owned(job.clone()));
    let outcome = tokio::select! {
        joined = &mut task => match joined {
            Ok(result) => Some(result),
            Err(err) => Some(Err(JobFailure::transient(format!("the worker crashed: {err}")))),
        },
        () = keep_lease(ctx, &job) => {
            task.abort();
            tracing::warn!("lease lost to another worker; abandoning this attempt");
            None
        }
        () = ctx.hard_stop.cancelled() => {
            task.abort();
            let _ = task.await;
            release(ctx, handler.as_ref(), &job).await;
            None
        }
    };
    let Some(outcome) = outcome else { return };
    match outcome {
        Ok(done) => {
            tracing::debug!(run_ms = started.elapsed().as_millis() as u64, "job succeeded");
            ctx.perf.record_job(&sample(JobOutcome::Succeeded, done.orchestration_id, done.analysis_ms));
        }
        Err(failure) if failure.lease_lost => {
            tracing::warn!("lease lost to another worker; its result was not committed");
        }
        Err(failure) if failure.permanent || failure.exhausts(job.attempts, job.max_attempts) => {
            // A permanent failure is the input's fault; running out of attempts is the environment's.
            let class = if failure.permanent { ErrorKind::InvalidArgument } else { ErrorKind::Unavailable };
            tracing::info!(error = %failure.message, attempts = job.attempts, "job failed for good");
            background_failure(Failure::ImageAnalysis, class, Some(&job.project_id), &failure.message);
            let orchestration_id = handler.fail(&job, &failure.message).await.unwrap_or_else(|err| {
                cannot_record(&job, "the job's failure", &err);
                None
            });
            ctx.perf.record_job(&sample(JobOutcome::Failed, failure.orchestration_id.or(orchestration_id), None));
        }
        Err(failure) => {
            let delay = backoff(ctx.queue.config().jobs.backoff, job.attempts);
            let run_after = now_ms() + delay.as_millis() as i64;
            tracing::info!(error = %failure.message, retry_in_ms = delay.as_millis() as u64, "job attempt failed; will retry");
            if let Err(err) = handler.retry(&job, &failure.message, run_after).await {
                cannot_record(&job, "the retry", &err);
            }
            ctx.perf.record_job(&sample(JobOutcome::Retried, failure.orchestration_id, None));
        }
    }
}

/// A job's outcome could not be stored: the job is not lost (its lease
/// expires and it runs again), but its facts arrive later than they should.
fn cannot_record(job: &Job, what: &str, err: &crate::error::Error) {
    let detail = format!("cannot record {what}; the job runs again when its lease expires: {err}");
    background_failure(Failure::LateFacts, err.kind(), Some(&job.project_id), &detail);
}

/// Extends the lease every third of its length; returns when it was lost.
async fn keep_lease(ctx: &Ctx, job: &Job) {
    let lease = ctx.queue.config().jobs.lease;
    let every = (lease / 3).max(Duration::from_millis(1));
    loop {
        tokio::time::sleep(every).await;
        match ctx.queue.store().extend_job_lease(job, lease.as_millis() as i64).await {
            Ok(true) => {}
            Ok(false) => return,
            // The store may come back before the lease runs out; if it does
            // not, the guarded completion refuses to commit anyway.
            Err(err) => tracing::warn!(error = %err, "cannot extend the job lease"),
        }
    }
}

/// Hands an unfinished job back to the queue at shutdown, without counting the attempt.
async fn release(ctx: &Ctx, handler: &dyn JobHandler, job: &Job) {
    let store = ctx.queue.store();
    let result = async {
        let txn = store.begin_write().await?;
        let released = txn.release_job(job).await?;
        if released {
            handler.released_in(&txn, job).await?;
        }
        txn.commit().await?;
        Ok::<_, crate::error::Error>(released)
    }
    .await;
    match result {
        Ok(true) => tracing::info!("shutting down: job handed back to the queue"),
        Ok(false) => {}
        Err(err) => tracing::warn!(error = %err, "cannot hand the job back; it runs again when its lease expires"),
    }
}

/// Lets the pool move an `Arc<dyn JobHandler>` into a task.
trait RunOwned {
    fn run_owned(self, job: Job) -> futures::future::BoxFuture<'static, std::result::Result<JobDone, JobFailure>>;
}

impl RunOwned for Arc<dyn JobHandler> {
    fn run_owned(self, job: Job) -> futures::future::BoxFuture<'static, std::result::Result<JobDone, JobFailure>> {
        Box::pin(async move { self.run(job).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_limit_only_ever_shortens_the_jobs_own() {
        let slow = JobFailure::transient("too slow").with_attempt_limit(2);
        assert!(!slow.exhausts(1, 5));
        assert!(slow.exhausts(2, 5));
        assert!(JobFailure::transient("x").with_attempt_limit(9).exhausts(3, 3));
        assert!(!JobFailure::transient("x").exhausts(4, 5));
        assert!(JobFailure::transient("x").exhausts(5, 5));
    }
}
