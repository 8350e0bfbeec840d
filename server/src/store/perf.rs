//! Figures the performance report needs from the database.

use sea_orm::{ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter};

use super::{Store, entities::jobs};
use crate::{error::Result, model::TenantId};

/// Background jobs now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct QueueCounts {
    /// Jobs waiting to run: queued (new, or waiting for a retry) or with an expired lease.
    pub depth: u64,
    /// Jobs a worker holds a live lease on.
    pub running: u64,
}

/// Stored job statuses of unfinished jobs (the job queue's `JobStatus` names).
const QUEUED: &str = "queued";
const RUNNING: &str = "running";

impl Store {
    /// Job queue depth and running jobs, of one tenant (and project) or of everyone.
    ///
    /// Running means a worker holds a live lease; a running job whose lease
    /// expired is waiting to be reclaimed, so it counts as waiting. Both
    /// counts use the status index (`idx_jobs_claim`), not a scan of finished jobs.
    pub async fn job_queue_counts(
        &self,
        tenant: Option<&TenantId>,
        project_id: Option<&str>,
        now_ms: i64,
    ) -> Result<QueueCounts> {
        let mut scope = Condition::all();
        if let Some(tenant) = tenant {
            scope = scope.add(jobs::Column::TenantId.eq(tenant.as_str()));
        }
        if let Some(project_id) = project_id {
            scope = scope.add(jobs::Column::ProjectId.eq(project_id));
        }
        let unfinished = jobs::Entity::find()
            .filter(scope.clone().add(jobs::Column::Status.is_in([QUEUED, RUNNING])))
            .count(self.reader())
            .await?;
        let running = jobs::Entity::find()
            .filter(scope.add(jobs::Column::Status.eq(RUNNING)).add(jobs::Column::LeaseUntil.gt(now_ms)))
            .count(self.reader())
            .await?;
        Ok(QueueCounts { depth: unfinished.saturating_sub(running), running })
    }
}
