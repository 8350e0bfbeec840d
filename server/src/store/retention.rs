//! Retention: archive old conversation turns (beyond the kept window, or
//! older than the archive age), delete expired memory items, old events and
//! finished jobs, old image analyses of inactive projects and low-confidence
//! memory of long-inactive projects, and forget old idempotency keys.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement, TransactionTrait, sea_query::Expr,
};

use super::{
    Backend, Store, WriteTx,
    entities::{conversation_turns, events, image_analyses, jobs, memories, orchestrations, projects, tenants},
    projects::project_row,
};
use crate::{error::Result, model::TenantId};

/// Key of the PostgreSQL advisory lock held by the replica running scheduled retention: the
/// migration lock's key plus one.
const RETENTION_LOCK_KEY: i64 = 0x6272_6169_6e01;

/// Held by the one replica running scheduled retention; [`RetentionLock::release`] (or dropping
/// it) lets another replica take the next run. On PostgreSQL it is an open transaction holding a
/// transaction-level advisory lock, so a replica that dies mid-run releases it with its connection.
pub struct RetentionLock(Option<DatabaseTransaction>);

impl RetentionLock {
    /// Lets another replica run retention.
    pub async fn release(self) {
        if let Some(txn) = self.0
            && let Err(err) = txn.rollback().await
        {
            tracing::debug!(error = %err, "releasing the retention lock failed; the connection ends it");
        }
    }
}

/// What retention may remove, as cut-off times and counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetentionPolicy {
    /// Newest unarchived conversation turns kept per project.
    pub keep_turns: u32,
    /// Events created before this time (ms) are deleted.
    pub events_before: i64,
    /// Jobs finished before this time (ms) are deleted.
    pub jobs_finished_before: i64,
    /// Idempotency keys of orchestrations created before this time (ms) are forgotten.
    pub request_ids_before: i64,
    /// Memory items that expired at or before this time (ms) are deleted.
    pub now: i64,
    /// Finished image analyses created before this time (ms) are deleted...
    pub images_before: i64,
    /// ...unless their project changed at or after this time (ms).
    pub active_since: i64,
    /// Conversation turns created before this time (ms) are archived.
    pub turns_before: i64,
    /// In projects unchanged since this time (ms)...
    pub inactive_before: i64,
    /// ...memory items with a confidence below this are deleted.
    pub min_confidence: f64,
}

/// What a retention run changed (or would change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionReport {
    /// Conversation turns archived.
    pub archived_turns: u64,
    /// Expired memory items deleted.
    pub deleted_memories: u64,
    /// Old events deleted.
    pub deleted_events: u64,
    /// Finished jobs deleted.
    pub deleted_jobs: u64,
    /// Idempotency keys forgotten.
    pub expired_request_ids: u64,
    /// Old finished image analyses of inactive projects deleted.
    pub deleted_image_analyses: u64,
    /// Low-confidence memory items of long-inactive projects deleted.
    pub deleted_low_confidence_memories: u64,
}

impl RetentionReport {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &RetentionReport) {
        self.archived_turns += other.archived_turns;
        self.deleted_memories += other.deleted_memories;
        self.deleted_events += other.deleted_events;
        self.deleted_jobs += other.deleted_jobs;
        self.expired_request_ids += other.expired_request_ids;
        self.deleted_image_analyses += other.deleted_image_analyses;
        self.deleted_low_confidence_memories += other.deleted_low_confidence_memories;
    }
}

impl Store {
    /// The scheduled-retention lock if no other replica holds it. SQLite has a single process,
    /// so there the lock is always free.
    pub async fn try_lock_retention(&self) -> Result<Option<RetentionLock>> {
        if self.backend() != Backend::Postgres {
            return Ok(Some(RetentionLock(None)));
        }
        let txn = self.reader().begin().await?;
        let statement = Statement::from_string(
            txn.get_database_backend(),
            format!("SELECT pg_try_advisory_xact_lock({RETENTION_LOCK_KEY}) AS locked"),
        );
        let locked = match txn.query_one_raw(statement).await? {
            Some(row) => row.try_get::<bool>("", "locked")?,
            None => false,
        };
        if locked {
            Ok(Some(RetentionLock(Some(txn))))
        } else {
            txn.rollback().await?;
            Ok(None)
        }
    }

    /// Every tenant (the implicit one included), for runs that cover them all.
    pub async fn tenant_ids(&self) -> Result<Vec<TenantId>> {
        let ids: Vec<String> =
            tenants::Entity::find().select_only().column(tenants::Column::Id).into_tuple().all(self.reader()).await?;
        Ok(ids.into_iter().map(TenantId).collect())
    }

    /// Applies `policy` to one project or to every project of the tenant, in
    /// one transaction; with `dry_run` it only counts and rolls back.
    pub async fn run_retention(
        &self,
        tenant: &TenantId,
        project_id: Option<&str>,
        policy: &RetentionPolicy,
        dry_run: bool,
    ) -> Result<RetentionReport> {
        let txn = self.begin_write().await?;
        // (id, last change) of each project in scope.
        let project_rows: Vec<(String, i64)> = match project_id {
            Some(id) => {
                let row = project_row(&txn, tenant, id).await?;
                vec![(row.id, row.updated_at)]
            }
            None => {
                projects::Entity::find()
                    .filter(projects::Column::TenantId.eq(tenant.as_str()))
                    .filter(projects::Column::DeletedAt.is_null())
                    .select_only()
                    .columns([projects::Column::Id, projects::Column::UpdatedAt])
                    .into_tuple()
                    .all(&txn)
                    .await?
            }
        };
        let mut report = RetentionReport::default();
        for (project, updated_at) in &project_rows {
            report.archived_turns +=
                archive_turns_in(&txn, project, policy.keep_turns, policy.turns_before, dry_run).await?;
            if *updated_at < policy.active_since {
                let old_finished = || {
                    Condition::all()
                        .add(image_analyses::Column::ProjectId.eq(project.as_str()))
                        .add(image_analyses::Column::Status.is_in(["ready", "failed"]))
                        .add(image_analyses::Column::CreatedAt.lt(policy.images_before))
                };
                report.deleted_image_analyses += apply(
                    &txn,
                    dry_run,
                    image_analyses::Entity::find().filter(old_finished()),
                    image_analyses::Entity::delete_many().filter(old_finished()),
                )
                .await?;
            }
            if *updated_at < policy.inactive_before {
                let unsure = || {
                    Condition::all()
                        .add(memories::Column::ProjectId.eq(project.as_str()))
                        .add(memories::Column::Confidence.lt(policy.min_confidence))
                };
                report.deleted_low_confidence_memories += apply(
                    &txn,
                    dry_run,
                    memories::Entity::find().filter(unsure()),
                    memories::Entity::delete_many().filter(unsure()),
                )
                .await?;
            }
            report.deleted_memories += apply(
                &txn,
                dry_run,
                memories::Entity::find()
                    .filter(memories::Column::ProjectId.eq(project.as_str()))
                    .filter(memories::Column::ExpiresAt.lte(policy.now)),
                memories::Entity::delete_many()
                    .filter(memories::Column::ProjectId.eq(project.as_str()))
                    .filter(memories::Column::ExpiresAt.lte(policy.now)),
            )
            .await?;
            report.deleted_events += apply(
                &txn,
                dry_run,
                events::Entity::find()
                    .filter(events::Column::ProjectId.eq(project.as_str()))
                    .filter(events::Column::CreatedAt.lt(policy.events_before)),
                events::Entity::delete_many()
                    .filter(events::Column::ProjectId.eq(project.as_str()))
                    .filter(events::Column::CreatedAt.lt(policy.events_before)),
            )
            .await?;
            let finished = jobs::Column::Status.is_in(["succeeded", "failed"]);
            report.deleted_jobs += apply(
                &txn,
                dry_run,
                jobs::Entity::find()
                    .filter(jobs::Column::ProjectId.eq(project.as_str()))
                    .filter(finished.clone())
                    .filter(jobs::Column::FinishedAt.lt(policy.jobs_finished_before)),
                jobs::Entity::delete_many()
                    .filter(jobs::Column::ProjectId.eq(project.as_str()))
                    .filter(finished)
                    .filter(jobs::Column::FinishedAt.lt(policy.jobs_finished_before)),
            )
            .await?;
            let old_keys = || {
                Condition::all()
                    .add(orchestrations::Column::ProjectId.eq(project.as_str()))
                    .add(orchestrations::Column::RequestId.is_not_null())
                    .add(orchestrations::Column::CreatedAt.lt(policy.request_ids_before))
            };
            let count = orchestrations::Entity::find().filter(old_keys()).count(&txn).await?;
            if !dry_run && count > 0 {
                orchestrations::Entity::update_many()
                    .col_expr(orchestrations::Column::RequestId, Expr::value(Option::<String>::None))
                    // The stored response only served replays under the key.
                    .col_expr(orchestrations::Column::Response, Expr::value(""))
                    .filter(old_keys())
                    .exec(&txn)
                    .await?;
            }
            report.expired_request_ids += count;
        }
        if dry_run {
            txn.rollback().await?;
        } else {
            txn.commit().await?;
        }
        Ok(report)
    }
}

/// Counts what `select` matches and, unless `dry_run`, runs `delete`.
async fn apply<E: EntityTrait>(
    txn: &WriteTx,
    dry_run: bool,
    select: sea_orm::Select<E>,
    delete: sea_orm::DeleteMany<E>,
) -> Result<u64>
where
    E::Model: Sync,
{
    if dry_run { Ok(select.count(txn).await?) } else { Ok(delete.exec(txn).await?.rows_affected) }
}

/// Archives a project's unarchived turns older than the newest `keep` (all of them when `keep` is
/// 0) or created before `before` (ms), in one statement, so a turn both old and beyond the
/// window counts once (a dry run too).
async fn archive_turns_in(
    txn: &impl ConnectionTrait,
    project_id: &str,
    keep: u32,
    before: i64,
    dry_run: bool,
) -> Result<u64> {
    let live = Condition::all()
        .add(conversation_turns::Column::ProjectId.eq(project_id))
        .add(conversation_turns::Column::Archived.eq(false));
    let mut archive = live.clone();
    if keep > 0 {
        // Turn ids are UUIDv7, so id order is creation order.
        let oldest_kept: Option<String> = conversation_turns::Entity::find()
            .filter(live.clone())
            .order_by_desc(conversation_turns::Column::Id)
            .offset(u64::from(keep) - 1)
            .select_only()
            .column(conversation_turns::Column::Id)
            .into_tuple()
            .one(txn)
            .await?;
        let mut old = Condition::any().add(conversation_turns::Column::CreatedAt.lt(before));
        if let Some(oldest_kept) = oldest_kept {
            old = old.add(conversation_turns::Column::Id.lt(oldest_kept));
        }
        archive = archive.add(old);
    }
    if dry_run {
        return Ok(conversation_turns::Entity::find().filter(archive).count(txn).await?);
    }
    let result = conversation_turns::Entity::update_many()
        .col_expr(conversation_turns::Column::Archived, Expr::value(true))
        .filter(archive)
        .exec(txn)
        .await?;
    Ok(result.rows_affected)
}
