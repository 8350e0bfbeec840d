//! The job queue's queries. Every write that ends an attempt is guarded by
//! the attempt's lease (owner and attempt number, status running), so only
//! the worker that currently holds a job can finish it.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, LockBehavior, LockType},
};

use super::{Backend, Store, WriteTx, entities::jobs};
use crate::{
    error::Result,
    model::{ClaimTurn, Job, JobStatus, NewJob, TenantId, new_id, now_ms},
};

/// PostgreSQL channel that tells every replica's workers new jobs were committed.
pub const JOBS_CHANNEL: &str = "brain_jobs";

impl WriteTx {
    /// Writes a queued job inside the caller's transaction; returns its id.
    pub async fn enqueue_job(&self, job: &NewJob) -> Result<String> {
        let now = now_ms();
        let id = new_id();
        jobs::Entity::insert(jobs::ActiveModel {
            id: Set(id.clone()),
            tenant_id: Set(job.tenant_id.0.clone()),
            project_id: Set(job.project_id.clone()),
            kind: Set(job.kind.to_owned()),
            subject_id: Set(job.subject_id.clone()),
            payload: Set(job.payload.clone()),
            status: Set(JobStatus::Queued.as_str().to_owned()),
            attempts: Set(0),
            max_attempts: Set(job.max_attempts.min(i32::MAX as u32) as i32),
            run_after: Set(now),
            lease_until: Set(None),
            lease_owner: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            started_at: Set(None),
            finished_at: Set(None),
        })
        .exec_without_returning(self)
        .await?;
        notify_jobs_in(self, self.backend()).await?;
        Ok(id)
    }

    /// Claims a due job: first one whose lease expired (its worker died), else
    /// a queued one that is due, taken fairly ([`ClaimTurn`]): the next tenant
    /// after the one served last, then that tenant's next project, then the
    /// project's oldest job. Counts the attempt and leases the job to `owner`
    /// for `lease_ms`. PostgreSQL skips rows other claimers hold; SQLite's
    /// write lock makes the whole claim exclusive. Every step reads an index
    /// in its order (`idx_jobs_lease`, `idx_jobs_fair`, `idx_jobs_due`).
    pub async fn claim_job(&self, owner: &str, lease_ms: i64, kinds: &[&str], turn: &ClaimTurn) -> Result<Option<Job>> {
        let now = now_ms();
        let Some(row) = self.claimable(now, kinds, turn).await? else { return Ok(None) };
        let attempts = row.attempts.saturating_add(1);
        let lease_owner = format!("{owner}#{attempts}");
        jobs::Entity::update_many()
            .col_expr(jobs::Column::Status, Expr::value(JobStatus::Running.as_str()))
            .col_expr(jobs::Column::Attempts, Expr::value(attempts))
            .col_expr(jobs::Column::LeaseOwner, Expr::value(lease_owner.as_str()))
            .col_expr(jobs::Column::LeaseUntil, Expr::value(now.saturating_add(lease_ms)))
            .col_expr(jobs::Column::StartedAt, Expr::value(now))
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
            .filter(jobs::Column::Id.eq(row.id.as_str()))
            .exec(self)
            .await?;
        // A reclaimed job became due when its previous lease ran out.
        let due_at = if row.status == JobStatus::Running.as_str() {
            row.lease_until.unwrap_or(row.run_after)
        } else {
            row.run_after
        };
        Ok(Some(Job {
            id: row.id,
            tenant_id: TenantId(row.tenant_id),
            project_id: row.project_id,
            kind: row.kind,
            subject_id: row.subject_id,
            payload: row.payload,
            attempts: attempts.max(0) as u32,
            max_attempts: row.max_attempts.max(0) as u32,
            due_at,
            created_at: row.created_at,
            last_error: row.last_error,
            lease_owner,
            claimed_at: now,
        }))
    }

    /// Finishes the attempt: succeeded, or failed for good with `error`. The
    /// payload is dropped either way. False when the lease was lost, in which case
    /// the caller must roll back.
    pub async fn finish_job(&self, job: &Job, succeeded: bool, error: Option<&str>) -> Result<bool> {
        let now = now_ms();
        let status = if succeeded { JobStatus::Succeeded } else { JobStatus::Failed };
        let mut update = jobs::Entity::update_many()
            .col_expr(jobs::Column::Status, Expr::value(status.as_str()))
            .col_expr(jobs::Column::Payload, Expr::value(Option::<Vec<u8>>::None))
            .col_expr(jobs::Column::LeaseUntil, Expr::value(Option::<i64>::None))
            .col_expr(jobs::Column::FinishedAt, Expr::value(now))
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now));
        if let Some(error) = error {
            update = update.col_expr(jobs::Column::LastError, Expr::value(error));
        }
        Ok(update.filter(held(job)).exec(self).await?.rows_affected == 1)
    }

    /// Puts the job back in the queue until `run_after`, recording `error`. False when the lease was lost.
    pub async fn retry_job(&self, job: &Job, error: &str, run_after: i64) -> Result<bool> {
        let now = now_ms();
        let result = jobs::Entity::update_many()
            .col_expr(jobs::Column::Status, Expr::value(JobStatus::Queued.as_str()))
            .col_expr(jobs::Column::RunAfter, Expr::value(run_after))
            .col_expr(jobs::Column::LeaseUntil, Expr::value(Option::<i64>::None))
            .col_expr(jobs::Column::LeaseOwner, Expr::value(Option::<String>::None))
            .col_expr(jobs::Column::LastError, Expr::value(error))
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
            .filter(held(job))
            .exec(self)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Hands the job back, due now, without counting this attempt (the server is
    /// stopping; the job did nothing wrong). False when the lease was lost.
    pub async fn release_job(&self, job: &Job) -> Result<bool> {
        let now = now_ms();
        let result = jobs::Entity::update_many()
            .col_expr(jobs::Column::Status, Expr::value(JobStatus::Queued.as_str()))
            .col_expr(jobs::Column::Attempts, Expr::value(job.attempts.saturating_sub(1) as i32))
            .col_expr(jobs::Column::RunAfter, Expr::value(now))
            .col_expr(jobs::Column::LeaseUntil, Expr::value(Option::<i64>::None))
            .col_expr(jobs::Column::LeaseOwner, Expr::value(Option::<String>::None))
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
            .filter(held(job))
            .exec(self)
            .await?;
        Ok(result.rows_affected == 1)
    }
}

/// Wakes other replicas' workers when the transaction commits (PostgreSQL only).
async fn notify_jobs_in(txn: &WriteTx, backend: Backend) -> Result<()> {
    if backend == Backend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_notify('{JOBS_CHANNEL}', '')")).await?;
    }
    Ok(())
}

impl Store {
    /// Whether any job is due, by a plain read: idle workers ask this before
    /// taking the write lock, so polling does not hold up writers (SQLite has one).
    pub async fn has_due_job(&self, kinds: &[&str]) -> Result<bool> {
        let found: Option<String> = jobs::Entity::find()
            .select_only()
            .column(jobs::Column::Id)
            .filter(due(now_ms(), kinds))
            .limit(1)
            .into_tuple()
            .one(self.reader())
            .await?;
        Ok(found.is_some())
    }
}

impl WriteTx {
    async fn claimable(&self, now: i64, kinds: &[&str], turn: &ClaimTurn) -> Result<Option<jobs::Model>> {
        let of_kinds = || jobs::Column::Kind.is_in(kinds.iter().copied());
        let expired = jobs::Entity::find()
            .filter(jobs::Column::Status.eq(JobStatus::Running.as_str()))
            .filter(jobs::Column::LeaseUntil.lt(now))
            .filter(of_kinds())
            .order_by_asc(jobs::Column::LeaseUntil)
            .order_by_asc(jobs::Column::Id);
        if let Some(row) = self.first_unlocked(expired).await? {
            return Ok(Some(row));
        }
        // `run_after + 0`: the due check is a filter on idx_jobs_fair's rows, so SQLite's
        // planner walks that index in tenant/project order instead of sorting the rows
        // it would find through idx_jobs_due.
        let queued = || {
            jobs::Entity::find()
                .filter(jobs::Column::Status.eq(JobStatus::Queued.as_str()))
                .filter(sea_orm::ExprTrait::lte(sea_orm::ExprTrait::add(Expr::col(jobs::Column::RunAfter), 0), now))
                .filter(of_kinds())
        };
        if let Some(tenant) = self.next_tenant(queued, turn.after_tenant.as_deref()).await? {
            let of_tenant = || queued().filter(jobs::Column::TenantId.eq(tenant.as_str()));
            let in_project_order = |query: sea_orm::Select<jobs::Entity>| {
                query
                    .order_by_asc(jobs::Column::ProjectId)
                    .order_by_asc(jobs::Column::RunAfter)
                    .order_by_asc(jobs::Column::Id)
            };
            if let Some(after) = turn.after_project.get(&tenant) {
                let next = in_project_order(of_tenant().filter(jobs::Column::ProjectId.gt(after.as_str())));
                if let Some(row) = self.first_unlocked(next).await? {
                    return Ok(Some(row));
                }
            }
            if let Some(row) = self.first_unlocked(in_project_order(of_tenant())).await? {
                return Ok(Some(row));
            }
        }
        // Another replica holds the chosen tenant's due jobs: take the oldest due one.
        let oldest = jobs::Entity::find()
            .filter(jobs::Column::Status.eq(JobStatus::Queued.as_str()))
            .filter(jobs::Column::RunAfter.lte(now))
            .filter(of_kinds())
            .order_by_asc(jobs::Column::RunAfter)
            .order_by_asc(jobs::Column::Id);
        self.first_unlocked(oldest).await
    }

    /// The first tenant after `after` (in id order, wrapping around) with a due job.
    async fn next_tenant(
        &self,
        queued: impl Fn() -> sea_orm::Select<jobs::Entity>,
        after: Option<&str>,
    ) -> Result<Option<String>> {
        let first_tenant = |query: sea_orm::Select<jobs::Entity>| {
            query.select_only().column(jobs::Column::TenantId).order_by_asc(jobs::Column::TenantId).limit(1)
        };
        if let Some(after) = after {
            let next: Option<String> =
                first_tenant(queued().filter(jobs::Column::TenantId.gt(after))).into_tuple().one(self).await?;
            if next.is_some() {
                return Ok(next);
            }
        }
        Ok(first_tenant(queued()).into_tuple().one(self).await?)
    }

    /// The query's first row, skipping rows other claimers hold on PostgreSQL.
    async fn first_unlocked(&self, query: sea_orm::Select<jobs::Entity>) -> Result<Option<jobs::Model>> {
        let mut query = query.limit(1);
        if self.backend() == Backend::Postgres {
            query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        Ok(query.one(self).await?)
    }
}

/// Jobs of these kinds a worker may claim at `now`. Kinds the worker has no
/// handler for are left alone (for a replica that knows them, e.g. a newer
/// version during a rolling deploy).
fn due(now: i64, kinds: &[&str]) -> Condition {
    let due = Condition::any()
        .add(
            Condition::all()
                .add(jobs::Column::Status.eq(JobStatus::Queued.as_str()))
                .add(jobs::Column::RunAfter.lte(now)),
        )
        .add(
            Condition::all()
                .add(jobs::Column::Status.eq(JobStatus::Running.as_str()))
                .add(jobs::Column::LeaseUntil.lt(now)),
        );
    Condition::all().add(jobs::Column::Kind.is_in(kinds.iter().copied())).add(due)
}

/// Rows of `job` still held by this attempt.
fn held(job: &Job) -> Condition {
    Condition::all()
        .add(jobs::Column::Id.eq(job.id.as_str()))
        .add(jobs::Column::Status.eq(JobStatus::Running.as_str()))
        .add(jobs::Column::LeaseOwner.eq(job.lease_owner.as_str()))
}

impl Store {
    /// Extends the attempt's lease to `lease_ms` from now; false when another worker holds the job.
    pub async fn extend_job_lease(&self, job: &Job, lease_ms: i64) -> Result<bool> {
        let now = now_ms();
        let result = jobs::Entity::update_many()
            .col_expr(jobs::Column::LeaseUntil, Expr::value(now.saturating_add(lease_ms)))
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
            .filter(held(job))
            .exec(&self.write)
            .await?;
        Ok(result.rows_affected == 1)
    }
}
