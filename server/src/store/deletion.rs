//! DeleteProject in the store: a tombstone, then the project's rows in bounded
//! chunks, then the project row.
//!
//! The tombstone (`projects.deleted_at`) commits in one short transaction; from
//! then on every lookup of the project (`project_row`, `lock_project`, the
//! orchestration batch) treats it as absent, so no call adds rows to it. The
//! rows go in transactions of at most [`DELETE_CHUNK_ROWS`] rows, so a project
//! with 100,000 turns never holds the single SQLite writer (or a PostgreSQL
//! row lock) for long, and other projects' writes run between chunks. The
//! project row goes last; its foreign keys cascade over anything left.

use sea_orm::{
    ColumnTrait, EntityTrait, Iterable, QueryFilter, QuerySelect,
    sea_query::{Expr, Query},
};

use super::{
    Store, WriteTx,
    entities::{conversation_turns, events, image_analyses, jobs, memories, orchestrations, projects, scenes},
};
use crate::{
    error::Result,
    model::{ProjectDeletion, TenantId, now_ms},
};

/// Rows removed per write transaction: about 10 ms of SQLite writer time for
/// turns with long prompts on this project's reference machine
/// (docs/PERFORMANCE.md "Deleting a project").
pub const DELETE_CHUNK_ROWS: u64 = 500;

/// What follows a project id on the events channel when the project was deleted
/// (instead of a cursor): every replica ends the project's streams and drops its caches.
pub const DELETED_NOTICE: &str = "deleted";

impl Store {
    /// Marks the tenant's project deleted: PROJECT_NOT_FOUND to every call from
    /// the commit on (and on PostgreSQL, every replica hears of it at commit).
    /// PROJECT_NOT_FOUND if it is not the tenant's or already deleted.
    pub async fn mark_project_deleted(&self, tenant: &TenantId, project_id: &str) -> Result<()> {
        let txn = self.begin_write().await?;
        txn.lock_project(tenant, project_id).await?;
        projects::Entity::update_many()
            .col_expr(projects::Column::DeletedAt, Expr::value(now_ms()))
            .filter(projects::Column::Id.eq(project_id))
            .exec(&txn)
            .await?;
        txn.notify_events(&format!("{project_id}:{DELETED_NOTICE}")).await?;
        txn.commit().await
    }

    /// Removes up to `limit` rows of a deleted project in one transaction,
    /// table by table (struct fields are evaluated in the order written); all
    /// counts are zero once nothing is left.
    pub async fn delete_project_chunk(&self, project_id: &str, limit: u64) -> Result<ProjectDeletion> {
        let txn = self.begin_write().await?;
        let mut left = limit;
        let id = project_id;
        use conversation_turns as turns;
        let done = ProjectDeletion {
            events: delete_chunk::<events::Entity>(&txn, events::Column::ProjectId, events::Column::Id, id, &mut left)
                .await?,
            jobs: delete_chunk::<jobs::Entity>(&txn, jobs::Column::ProjectId, jobs::Column::Id, id, &mut left).await?,
            image_analyses: delete_chunk::<image_analyses::Entity>(
                &txn,
                image_analyses::Column::ProjectId,
                image_analyses::Column::ImageId,
                id,
                &mut left,
            )
            .await?,
            orchestrations: delete_chunk::<orchestrations::Entity>(
                &txn,
                orchestrations::Column::ProjectId,
                orchestrations::Column::Id,
                id,
                &mut left,
            )
            .await?,
            conversation_turns: delete_chunk::<turns::Entity>(
                &txn,
                turns::Column::ProjectId,
                turns::Column::Id,
                id,
                &mut left,
            )
            .await?,
            memory_items: delete_chunk::<memories::Entity>(
                &txn,
                memories::Column::ProjectId,
                memories::Column::Id,
                id,
                &mut left,
            )
            .await?,
            scenes: delete_chunk::<scenes::Entity>(
                &txn,
                scenes::Column::ProjectId,
                scenes::Column::SceneId,
                id,
                &mut left,
            )
            .await?,
        };
        txn.commit().await?;
        Ok(done)
    }

    /// Removes a deleted project's row (its foreign keys cascade over anything
    /// [`Store::delete_project_chunk`] left). A project that is not marked
    /// deleted is left alone.
    pub async fn remove_deleted_project(&self, project_id: &str) -> Result<()> {
        let txn = self.begin_write().await?;
        projects::Entity::delete_many()
            .filter(projects::Column::Id.eq(project_id))
            .filter(projects::Column::DeletedAt.is_not_null())
            .exec(&txn)
            .await?;
        txn.commit().await
    }

    /// Projects marked deleted whose rows are not all removed yet (a server
    /// stopped halfway through a DeleteProject).
    pub async fn unfinished_deletions(&self) -> Result<Vec<String>> {
        let ids = projects::Entity::find()
            .select_only()
            .column(projects::Column::Id)
            // A range, not IS NOT NULL: SQLite's planner reads idx_projects_deleted only for a range.
            .filter(projects::Column::DeletedAt.gt(0))
            .into_tuple()
            .all(self.reader())
            .await?;
        Ok(ids)
    }
}

/// Up to `left` rows (and counts them off `left`):
/// `DELETE FROM t WHERE key IN (SELECT key FROM t WHERE project_id = $1 LIMIT n)`: both backends,
/// the inner select on the index every per-project table leads with `project_id`, the delete by key.
async fn delete_chunk<E: EntityTrait>(
    txn: &WriteTx,
    project: E::Column,
    key: E::Column,
    project_id: &str,
    left: &mut u64,
) -> Result<u64> {
    if *left == 0 {
        return Ok(0);
    }
    let limit = *left;
    let keys = Query::select().column(key).from(E::default()).and_where(project.eq(project_id)).limit(limit).to_owned();
    let mut delete = E::delete_many().filter(key.in_subquery(keys));
    if E::PrimaryKey::iter().count() > 1 {
        // (project_id, key) is the primary key: both columns make each lookup a key lookup.
        delete = delete.filter(project.eq(project_id));
    }
    // With a one-column key, the outer filter stays off: SQLite would otherwise walk every
    // remaining row of the project on the project_id index, testing each against the list
    // (about 9 ms per chunk at 100,000 turns, whatever the chunk size).
    let result = delete.exec(txn).await?;
    *left = left.saturating_sub(result.rows_affected);
    Ok(result.rows_affected)
}
