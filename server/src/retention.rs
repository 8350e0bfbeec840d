//! Maintenance: the retention policy, applied per tenant on request and, every
//! `retention_interval_ms`, to every tenant by itself.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::{
    config::RetentionSettings,
    error::Result,
    model::{TenantId, now_ms},
    perf::{Perf, RetentionRun, prom},
    store::{RetentionPolicy, RetentionReport, Store},
    validate,
};

/// Retention: what is kept, and the runs that delete the rest.
#[derive(Clone)]
pub struct Retention {
    store: Store,
    perf: Perf,
    settings: RetentionSettings,
}

impl Retention {
    /// Retention as configured; scheduled runs are reported to `perf` (the dashboard).
    pub fn new(store: Store, settings: RetentionSettings, perf: Perf) -> Self {
        Self { store, perf, settings }
    }

    /// Applies the retention policy to one project (when `project_id` is not empty) or every project of the tenant.
    pub async fn run_retention(&self, tenant: &TenantId, project_id: &str, dry_run: bool) -> Result<RetentionReport> {
        let project_id = validate::optional_id("project_id", project_id)?;
        let report = self.store.run_retention(tenant, project_id.as_deref(), &self.policy(), dry_run).await?;
        tracing::info!(
            dry_run,
            archived_turns = report.archived_turns,
            deleted_memories = report.deleted_memories,
            deleted_events = report.deleted_events,
            deleted_jobs = report.deleted_jobs,
            expired_request_ids = report.expired_request_ids,
            deleted_image_analyses = report.deleted_image_analyses,
            deleted_low_confidence_memories = report.deleted_low_confidence_memories,
            "retention run"
        );
        Ok(report)
    }

    /// Runs retention for every tenant every `retention_interval_ms` until `shutdown`; `None` when
    /// the interval is 0 (scheduled runs off). The first run waits one interval, so that a fleet
    /// restarting together does not start with a burst of deletes.
    pub fn spawn_scheduled(&self, shutdown: CancellationToken) -> Option<tokio::task::JoinHandle<()>> {
        if self.settings.interval.is_zero() {
            tracing::info!("scheduled retention is off (retention_interval_ms = 0)");
            return None;
        }
        let retention = self.clone();
        Some(tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(retention.settings.interval) => {}
                }
                retention.run_scheduled(&shutdown).await;
            }
        }))
    }

    /// One scheduled run over every tenant, if this replica gets the lock. A tenant whose run
    /// fails is logged and skipped; the others still run.
    async fn run_scheduled(&self, shutdown: &CancellationToken) {
        let started = Instant::now();
        let lock = match self.store.try_lock_retention().await {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                tracing::debug!("scheduled retention skipped: another replica is running it");
                return;
            }
            Err(err) => {
                tracing::warn!(error = %err, "scheduled retention skipped: cannot take its lock");
                prom::retention_failure("lock");
                return;
            }
        };
        let tenants = match self.store.tenant_ids().await {
            Ok(tenants) => tenants,
            Err(err) => {
                tracing::warn!(error = %err, "scheduled retention skipped: cannot list tenants");
                prom::retention_failure("tenants");
                lock.release().await;
                return;
            }
        };
        let policy = self.policy();
        let mut total = RetentionReport::default();
        let mut failed = 0usize;
        for tenant in &tenants {
            if shutdown.is_cancelled() {
                break;
            }
            match self.store.run_retention(tenant, None, &policy, false).await {
                Ok(report) => total.add(&report),
                Err(err) => {
                    failed += 1;
                    tracing::warn!(error = %err, tenant = %tenant, "scheduled retention failed for a tenant");
                    prom::retention_failure("tenant");
                }
            }
        }
        lock.release().await;
        let removed = [
            ("turns", total.archived_turns),
            ("memories", total.deleted_memories),
            ("events", total.deleted_events),
            ("jobs", total.deleted_jobs),
            ("request_ids", total.expired_request_ids),
            ("image_analyses", total.deleted_image_analyses),
            ("low_confidence_memories", total.deleted_low_confidence_memories),
        ];
        self.perf.record_retention_run(RetentionRun {
            finished_at_ms: now_ms(),
            elapsed_ms: started.elapsed().as_millis() as u64,
            tenants: tenants.len() as u64,
            failed_tenants: failed as u64,
            removed: removed.iter().map(|(kind, n)| ((*kind).to_owned(), *n)).collect(),
        });
        prom::retention_run(&removed);
        tracing::info!(
            tenants = tenants.len(),
            failed_tenants = failed,
            archived_turns = total.archived_turns,
            deleted_memories = total.deleted_memories,
            deleted_events = total.deleted_events,
            deleted_jobs = total.deleted_jobs,
            expired_request_ids = total.expired_request_ids,
            deleted_image_analyses = total.deleted_image_analyses,
            deleted_low_confidence_memories = total.deleted_low_confidence_memories,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "scheduled retention run"
        );
    }

    /// The cut-offs of a run starting now.
    fn policy(&self) -> RetentionPolicy {
        let now = now_ms();
        let ago = |age: Duration| now.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
        let s = &self.settings;
        RetentionPolicy {
            keep_turns: s.keep_turns,
            events_before: ago(s.event_age),
            jobs_finished_before: ago(s.job_age),
            request_ids_before: ago(s.idempotency_window),
            now,
            images_before: ago(s.image_age),
            active_since: ago(s.active_project_window),
            turns_before: ago(s.archive_turn_age),
            inactive_before: ago(s.inactive_project_age),
            min_confidence: s.min_confidence,
        }
    }
}
