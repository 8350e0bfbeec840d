//! Maintenance: the retention policy, applied per tenant on request.

use crate::{
    config::Config,
    error::Result,
    model::{TenantId, now_ms},
    store::{RetentionPolicy, RetentionReport, Store},
    validate,
};

const HOUR_MS: i64 = 3_600_000;

/// Retention: what is kept, and the runs that delete the rest.
#[derive(Clone)]
pub struct Retention {
    store: Store,
    keep_turns: u32,
    event_hours: u64,
    job_hours: u64,
    idempotency_hours: u64,
}

impl Retention {
    /// Retention as configured.
    pub fn new(store: Store, config: &Config) -> Self {
        Self {
            store,
            keep_turns: config.retention_keep_turns,
            event_hours: config.retention_event_hours,
            job_hours: config.retention_job_hours,
            idempotency_hours: config.idempotency_window_hours,
        }
    }

    /// Applies the retention policy to one project (when `project_id` is not empty) or every project of the tenant.
    pub async fn run_retention(&self, tenant: &TenantId, project_id: &str, dry_run: bool) -> Result<RetentionReport> {
        let project_id = validate::optional_id("project_id", project_id)?;
        let now = now_ms();
        let hours_ago =
            |h: u64| now.saturating_sub(i64::try_from(h).unwrap_or(i64::MAX / HOUR_MS).saturating_mul(HOUR_MS));
        let policy = RetentionPolicy {
            keep_turns: self.keep_turns,
            events_before: hours_ago(self.event_hours),
            jobs_finished_before: hours_ago(self.job_hours),
            request_ids_before: hours_ago(self.idempotency_hours),
            now,
        };
        let report = self.store.run_retention(tenant, project_id.as_deref(), &policy, dry_run).await?;
        tracing::info!(
            dry_run,
            archived_turns = report.archived_turns,
            deleted_memories = report.deleted_memories,
            deleted_events = report.deleted_events,
            deleted_jobs = report.deleted_jobs,
            expired_request_ids = report.expired_request_ids,
            "retention run"
        );
        Ok(report)
    }
}
