//! ExportProject and ImportProject in the store.
//!
//! An export reads one snapshot: a read transaction (REPEATABLE READ on
//! PostgreSQL; on SQLite a read transaction sees the database as of its first
//! read), paged by key so no page sorts the whole project.
//!
//! An import writes a hidden project: its row is inserted with a tombstone
//! (`deleted_at`), so every lookup treats it as absent while its records go in,
//! in transactions of at most a few hundred rows; [`Store::finish_import`]
//! clears the tombstone in one statement. An import that fails is removed as a
//! deleted project is, and one cut off by a crash is finished off by the next
//! start's `unfinished_deletions`.

use std::collections::HashSet;

use sea_orm::{
    AccessMode, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, IsolationLevel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};

use super::{
    Backend, Store,
    context::turn,
    entities::{conversation_turns, image_analyses, memories, projects, scenes},
    images::analysis,
    projects::{memory, project, project_row, scene},
};
use crate::{
    error::{Error, Result},
    model::{
        EXPORT_FORMAT_VERSION, ExportHeader, ExportedTurn, ImageAnalysis, MemoryItem, Millis, Project, RecordCounts,
        Scene, TenantId, new_id, now_ms,
    },
};

/// One project as of the moment [`Store::export_snapshot`] opened it.
pub struct ExportSnapshot {
    txn: DatabaseTransaction,
    project_id: String,
}

/// What one import transaction writes.
#[derive(Debug, Default)]
pub struct ImportRows {
    pub scenes: Vec<Scene>,
    pub memories: Vec<MemoryItem>,
    pub turns: Vec<ExportedTurn>,
    pub images: Vec<ImageAnalysis>,
}

impl ImportRows {
    /// Rows of every kind together.
    pub fn len(&self) -> usize {
        self.scenes.len() + self.memories.len() + self.turns.len() + self.images.len()
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Kinds whose ids are unique across the whole store, not per project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobalId {
    Memory,
    Turn,
}

impl Store {
    /// Opens a snapshot of the tenant's project and reads its header;
    /// PROJECT_NOT_FOUND unless the project is the tenant's.
    pub async fn export_snapshot(&self, tenant: &TenantId, project_id: &str) -> Result<(ExportSnapshot, ExportHeader)> {
        let txn = match self.backend() {
            Backend::Postgres => {
                self.reader()
                    .begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly))
                    .await?
            }
            Backend::Sqlite => self.reader().begin().await?,
        };
        let row = project_row(&txn, tenant, project_id).await?;
        let counts = RecordCounts {
            scenes: scenes::Entity::find().filter(scenes::Column::ProjectId.eq(project_id)).count(&txn).await?,
            memory_items: memories::Entity::find()
                .filter(memories::Column::ProjectId.eq(project_id))
                .count(&txn)
                .await?,
            conversation_turns: conversation_turns::Entity::find()
                .filter(conversation_turns::Column::ProjectId.eq(project_id))
                .count(&txn)
                .await?,
            image_analyses: image_analyses::Entity::find()
                .filter(image_analyses::Column::ProjectId.eq(project_id))
                .count(&txn)
                .await?,
        };
        let header = ExportHeader {
            format_version: EXPORT_FORMAT_VERSION,
            project_id: row.id,
            name: row.name,
            description: row.description,
            created_at: row.created_at,
            updated_at: row.updated_at,
            counts,
        };
        Ok((ExportSnapshot { txn, project_id: project_id.to_owned() }, header))
    }

    /// Creates the project an import fills, hidden until [`Store::finish_import`]; its id.
    pub async fn begin_import(&self, tenant: &TenantId, header: &ExportHeader) -> Result<String> {
        let txn = self.begin_write().await?;
        let id = new_id();
        projects::ActiveModel {
            id: Set(id.clone()),
            tenant_id: Set(tenant.0.clone()),
            name: Set(header.name.clone()),
            description: Set(header.description.clone()),
            event_cursor: Set(0),
            created_at: Set(header.created_at),
            updated_at: Set(header.updated_at),
            deleted_at: Set(Some(now_ms())),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(id)
    }

    /// Which of `ids` this store already holds.
    pub async fn taken_ids(&self, kind: GlobalId, ids: &[String]) -> Result<HashSet<String>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let found: Vec<String> = match kind {
            GlobalId::Memory => ids_in::<memories::Entity>(self.reader(), memories::Column::Id, ids).await?,
            GlobalId::Turn => {
                ids_in::<conversation_turns::Entity>(self.reader(), conversation_turns::Column::Id, ids).await?
            }
        };
        Ok(found.into_iter().collect())
    }

    /// Writes one batch of an import's rows, in one transaction.
    pub async fn import_rows(&self, tenant: &TenantId, project_id: &str, rows: &ImportRows) -> Result<()> {
        let txn = self.begin_write().await?;
        let (tenant_id, project) = (|| Set(tenant.0.clone()), || Set(project_id.to_owned()));
        if !rows.scenes.is_empty() {
            let models = rows.scenes.iter().map(|s| scenes::ActiveModel {
                project_id: project(),
                scene_id: Set(s.scene_id.clone()),
                tenant_id: tenant_id(),
                name: Set(s.name.clone()),
                position: Set(s.position as i32),
                summary: Set(s.summary.clone()),
                summary_tokens: Set(s.summary_tokens as i32),
                duration_seconds: Set(s.duration_seconds),
                status: Set(s.status.as_str().to_owned()),
                created_at: Set(s.created_at),
                updated_at: Set(s.updated_at),
            });
            scenes::Entity::insert_many(models).exec_without_returning(&txn).await?;
        }
        if !rows.memories.is_empty() {
            let models = rows.memories.iter().map(|m| memories::ActiveModel {
                id: Set(m.id.clone()),
                tenant_id: tenant_id(),
                project_id: project(),
                memory_type: Set(m.memory_type.as_str().to_owned()),
                key: Set(m.key.clone()),
                value: Set(m.value.clone()),
                confidence: Set(m.confidence),
                source: Set(m.source.as_str().to_owned()),
                source_prompt: Set(m.source_prompt.clone()),
                token_count: Set(m.token_count as i32),
                occurrences: Set(m.occurrences as i32),
                expires_at: Set(m.expires_at),
                created_at: Set(m.created_at),
                updated_at: Set(m.updated_at),
            });
            memories::Entity::insert_many(models).exec_without_returning(&txn).await?;
        }
        if !rows.turns.is_empty() {
            let models = rows.turns.iter().map(|t| conversation_turns::ActiveModel {
                id: Set(t.turn.id.clone()),
                tenant_id: tenant_id(),
                project_id: project(),
                orchestration_id: Set(t.turn.orchestration_id.clone()),
                prompt: Set(t.turn.prompt.clone()),
                decision_summary: Set(t.turn.decision_summary.clone()),
                token_count: Set(t.turn.token_count as i32),
                archived: Set(t.archived),
                created_at: Set(t.turn.created_at),
            });
            conversation_turns::Entity::insert_many(models).exec_without_returning(&txn).await?;
        }
        if !rows.images.is_empty() {
            let mut models = Vec::with_capacity(rows.images.len());
            for a in &rows.images {
                let facts = match &a.facts {
                    Some(facts) => Some(serde_json::to_string(facts).map_err(Error::internal)?),
                    None => None,
                };
                models.push(image_analyses::ActiveModel {
                    project_id: project(),
                    image_id: Set(a.image_id.clone()),
                    tenant_id: tenant_id(),
                    orchestration_id: Set(a.orchestration_id.clone()),
                    status: Set(a.status.as_str().to_owned()),
                    source_url: Set(a.source_url.clone()),
                    mime_type: Set(a.mime_type.clone()),
                    byte_size: Set(a.byte_size.map(|b| i64::try_from(b).unwrap_or(i64::MAX))),
                    content_sha256: Set(a.content_sha256.clone()),
                    facts: Set(facts),
                    analyzer: Set(a.facts.as_ref().map(|f| f.analyzer.clone())),
                    processing_ms: Set(a.facts.as_ref().map(|f| f.processing_ms)),
                    error: Set(a.error.clone()),
                    attempts: Set(i32::try_from(a.attempts).unwrap_or(i32::MAX)),
                    created_at: Set(a.created_at),
                    completed_at: Set(a.completed_at),
                });
            }
            image_analyses::Entity::insert_many(models).exec_without_returning(&txn).await?;
        }
        txn.commit().await
    }

    /// Makes an imported project visible; the project as stored. INTERNAL if
    /// its hidden row is gone (another replica's start removed it as an
    /// unfinished deletion): the import then failed and left nothing.
    pub async fn finish_import(&self, tenant: &TenantId, project_id: &str) -> Result<Project> {
        let txn = self.begin_write().await?;
        let shown = projects::Entity::update_many()
            .col_expr(projects::Column::DeletedAt, Expr::value(Option::<Millis>::None))
            .filter(projects::Column::Id.eq(project_id))
            .filter(projects::Column::TenantId.eq(tenant.as_str()))
            .filter(projects::Column::DeletedAt.is_not_null())
            .exec(&txn)
            .await?;
        if shown.rows_affected != 1 {
            return Err(Error::internal(format!(
                "the imported project {project_id} was removed before it was complete"
            )));
        }
        let row = project_row(&txn, tenant, project_id).await?;
        txn.commit().await?;
        Ok(project(row))
    }
}

impl ExportSnapshot {
    /// Up to `limit` scenes after position `after`, in position order.
    pub async fn scenes(&self, after: Option<u32>, limit: u64) -> Result<Vec<Scene>> {
        let mut query = scenes::Entity::find().filter(scenes::Column::ProjectId.eq(&self.project_id));
        if let Some(after) = after {
            query = query.filter(scenes::Column::Position.gt(after as i32));
        }
        let rows = query.order_by_asc(scenes::Column::Position).limit(limit).all(&self.txn).await?;
        rows.into_iter().map(scene).collect()
    }

    /// Up to `limit` memory items after `after` (type, id), in type and id order: the
    /// (project_id, memory_type, id) index serves each page without sorting.
    pub async fn memories(&self, after: Option<(String, String)>, limit: u64) -> Result<Vec<MemoryItem>> {
        use memories::Column::{Id, MemoryType, ProjectId};
        let mut query = memories::Entity::find().filter(ProjectId.eq(&self.project_id));
        if let Some((memory_type, id)) = after {
            let key = Expr::tuple([Expr::col(MemoryType), Expr::col(Id)]);
            query = query.filter(key.gt(Expr::tuple([Expr::value(memory_type), Expr::value(id)])));
        }
        let rows = query.order_by_asc(MemoryType).order_by_asc(Id).limit(limit).all(&self.txn).await?;
        rows.into_iter().map(memory).collect()
    }

    /// Up to `limit` archived (or unarchived) turns after id `after`, oldest first: the
    /// (project_id, archived, id) index serves each page without sorting.
    pub async fn turns(&self, archived: bool, after: Option<String>, limit: u64) -> Result<Vec<ExportedTurn>> {
        let mut query = conversation_turns::Entity::find()
            .filter(conversation_turns::Column::ProjectId.eq(&self.project_id))
            .filter(conversation_turns::Column::Archived.eq(archived));
        if let Some(after) = after {
            query = query.filter(conversation_turns::Column::Id.gt(after));
        }
        let rows = query.order_by_asc(conversation_turns::Column::Id).limit(limit).all(&self.txn).await?;
        Ok(rows.into_iter().map(|row| ExportedTurn { turn: turn(row), archived }).collect())
    }

    /// Up to `limit` image analyses after image id `after`, in image id order (the primary key).
    pub async fn images(&self, after: Option<String>, limit: u64) -> Result<Vec<ImageAnalysis>> {
        let mut query = image_analyses::Entity::find().filter(image_analyses::Column::ProjectId.eq(&self.project_id));
        if let Some(after) = after {
            query = query.filter(image_analyses::Column::ImageId.gt(after));
        }
        let rows = query.order_by_asc(image_analyses::Column::ImageId).limit(limit).all(&self.txn).await?;
        rows.into_iter().map(analysis).collect()
    }
}

/// Which of `ids` table `E` holds in its `id` column.
async fn ids_in<E: EntityTrait>(db: &impl ConnectionTrait, id: E::Column, ids: &[String]) -> Result<Vec<String>> {
    Ok(E::find().select_only().column(id).filter(id.is_in(ids.iter().cloned())).into_tuple().all(db).await?)
}
