//! Projects, scenes and memory items.
//!
//! Every query is scoped by tenant: a project of another tenant is simply not
//! found. Functions ending in `_in` take an open transaction so domain code can
//! compose several writes into one commit.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::Expr,
};

use super::{
    Backend, Store, WriteTx,
    entities::{memories, projects, scenes},
};
use crate::{
    error::{Error, Reason, Result},
    model::{
        MemoryItem, MemoryPut, MemorySelector, MemorySource, MemoryType, NewProject, Page, Project, ProjectUpdate,
        Scene, SceneStatus, SceneUpsert, TenantId, new_id, now_ms,
    },
    pagination::{PageRequest, split_key},
};

impl Store {
    /// Creates a project.
    pub async fn create_project(&self, tenant: &TenantId, new: &NewProject) -> Result<Project> {
        let now = now_ms();
        let txn = self.begin_write().await?;
        let row = projects::ActiveModel {
            id: Set(new_id()),
            tenant_id: Set(tenant.0.clone()),
            name: Set(new.name.clone()),
            description: Set(new.description.clone()),
            event_cursor: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            deleted_at: Set(None),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(project(row))
    }

    /// Changes the fields `update` names; PROJECT_NOT_FOUND unless the project is the tenant's.
    pub async fn update_project(&self, tenant: &TenantId, update: &ProjectUpdate) -> Result<Project> {
        let txn = self.begin_write().await?;
        let mut row: projects::ActiveModel = txn.lock_project(tenant, &update.project_id).await?.into();
        if let Some(name) = &update.name {
            row.name = Set(name.clone());
        }
        if let Some(description) = &update.description {
            row.description = Set(description.clone());
        }
        row.updated_at = Set(now_ms());
        let row = row.update(&txn).await?;
        txn.commit().await?;
        Ok(project(row))
    }

    /// One project of the tenant.
    pub async fn get_project(&self, tenant: &TenantId, project_id: &str) -> Result<Project> {
        project_row(self.reader(), tenant, project_id).await.map(project)
    }

    /// A page of the tenant's projects, oldest first.
    pub async fn list_projects(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Project>> {
        let mut query = projects::Entity::find()
            .filter(projects::Column::TenantId.eq(tenant.as_str()))
            .filter(projects::Column::DeletedAt.is_null())
            .order_by_asc(projects::Column::Id)
            .limit(page.fetch_limit());
        if let Some(after) = &page.after {
            query = query.filter(projects::Column::Id.gt(after.as_str()));
        }
        let rows = query.all(self.reader()).await?;
        Ok(page.finish(rows.into_iter().map(project).collect(), |p| p.id.clone()))
    }

    /// Creates or replaces a scene and keeps positions dense (0..n-1).
    pub async fn upsert_scene(
        &self,
        tenant: &TenantId,
        up: &SceneUpsert,
        summary_tokens: u32,
    ) -> Result<(Scene, bool)> {
        let txn = self.begin_write().await?;
        txn.lock_project(tenant, &up.project_id).await?;
        let now = now_ms();
        let mut order = scenes_in_order(&txn, &up.project_id).await?;
        let existing = order.iter().position(|s| Some(&s.scene_id) == up.scene_id.as_ref());
        let (created, created_at, old_position) = match existing {
            Some(i) => {
                let old = order.remove(i);
                (false, old.created_at, Some(i))
            }
            None => (true, now, None),
        };
        let target = up.position.map(|p| p as usize).or(old_position).unwrap_or(order.len()).min(order.len());
        let scene_id = up.scene_id.clone().unwrap_or_else(new_id);
        let row = scenes::Model {
            project_id: up.project_id.clone(),
            scene_id: scene_id.clone(),
            tenant_id: tenant.0.clone(),
            name: up.name.clone(),
            position: target as i32,
            summary: up.summary.clone(),
            summary_tokens: summary_tokens as i32,
            duration_seconds: up.duration_seconds,
            status: up.status.as_str().to_owned(),
            created_at,
            updated_at: now,
        };
        order.insert(target, row.clone());
        renumber_in(&txn, &order, &scene_id).await?;
        let active = scenes::ActiveModel {
            project_id: Set(row.project_id.clone()),
            scene_id: Set(row.scene_id.clone()),
            tenant_id: Set(row.tenant_id.clone()),
            name: Set(row.name.clone()),
            position: Set(row.position),
            summary: Set(row.summary.clone()),
            summary_tokens: Set(row.summary_tokens),
            duration_seconds: Set(row.duration_seconds),
            status: Set(row.status.clone()),
            created_at: Set(row.created_at),
            updated_at: Set(row.updated_at),
        };
        if created {
            active.insert(&txn).await?;
        } else {
            active.update(&txn).await?;
        }
        txn.touch_project(&up.project_id, now).await?;
        txn.commit().await?;
        Ok((scene(row)?, created))
    }

    /// Deletes a scene and closes the gap in positions.
    pub async fn delete_scene(&self, tenant: &TenantId, project_id: &str, scene_id: &str) -> Result<()> {
        let txn = self.begin_write().await?;
        txn.lock_project(tenant, project_id).await?;
        let mut order = scenes_in_order(&txn, project_id).await?;
        let Some(i) = order.iter().position(|s| s.scene_id == scene_id) else {
            return Err(scene_not_found(scene_id));
        };
        order.remove(i);
        scenes::Entity::delete_many()
            .filter(scenes::Column::ProjectId.eq(project_id))
            .filter(scenes::Column::SceneId.eq(scene_id))
            .exec(&txn)
            .await?;
        renumber_in(&txn, &order, "").await?;
        txn.touch_project(project_id, now_ms()).await?;
        txn.commit().await?;
        Ok(())
    }

    /// A page of a project's scenes, in position order.
    pub async fn list_scenes(&self, tenant: &TenantId, project_id: &str, page: &PageRequest) -> Result<Page<Scene>> {
        project_row(self.reader(), tenant, project_id).await?;
        let mut query = scenes::Entity::find()
            .filter(scenes::Column::ProjectId.eq(project_id))
            .order_by_asc(scenes::Column::Position)
            .order_by_asc(scenes::Column::SceneId)
            .limit(page.fetch_limit());
        if let Some(after) = &page.after {
            let (position, scene_id) = split_key(after)?;
            let position: i32 = position.parse().map_err(|_| bad_token())?;
            query = query.filter(Condition::any().add(scenes::Column::Position.gt(position)).add(
                Condition::all().add(scenes::Column::Position.eq(position)).add(scenes::Column::SceneId.gt(scene_id)),
            ));
        }
        let rows = query.all(self.reader()).await?;
        let items = rows.into_iter().map(scene).collect::<Result<Vec<_>>>()?;
        Ok(page.finish(items, |s| format!("{}|{}", s.position, s.scene_id)))
    }

    /// Every scene of a project in position order (for context building).
    pub async fn all_scenes(&self, tenant: &TenantId, project_id: &str) -> Result<Vec<Scene>> {
        let rows = scenes::Entity::find()
            .filter(scenes::Column::TenantId.eq(tenant.as_str()))
            .filter(scenes::Column::ProjectId.eq(project_id))
            .order_by_asc(scenes::Column::Position)
            .order_by_asc(scenes::Column::SceneId)
            .all(self.reader())
            .await?;
        rows.into_iter().map(scene).collect()
    }

    /// Creates or replaces the memory item with the same type and key.
    pub async fn put_memory(&self, tenant: &TenantId, put: &MemoryPut, token_count: u32) -> Result<(MemoryItem, bool)> {
        let txn = self.begin_write().await?;
        txn.lock_project(tenant, &put.project_id).await?;
        let result = txn.put_memory(tenant, put, token_count, now_ms()).await?;
        txn.touch_project(&put.project_id, now_ms()).await?;
        txn.commit().await?;
        Ok(result)
    }

    /// Deletes one memory item.
    pub async fn delete_memory(&self, tenant: &TenantId, project_id: &str, selector: &MemorySelector) -> Result<()> {
        let txn = self.begin_write().await?;
        txn.lock_project(tenant, project_id).await?;
        let mut delete = memories::Entity::delete_many()
            .filter(memories::Column::TenantId.eq(tenant.as_str()))
            .filter(memories::Column::ProjectId.eq(project_id));
        delete = match selector {
            MemorySelector::Id(id) => delete.filter(memories::Column::Id.eq(id.as_str())),
            MemorySelector::Key(t, key) => delete
                .filter(memories::Column::MemoryType.eq(t.as_str()))
                .filter(memories::Column::Key.eq(key.as_str())),
        };
        if delete.exec(&txn).await?.rows_affected == 0 {
            return Err(Error::new(Reason::MemoryNotFound, "no such memory item in this project"));
        }
        txn.touch_project(project_id, now_ms()).await?;
        txn.commit().await?;
        Ok(())
    }

    /// A page of a project's unexpired memory items, oldest first, optionally of one type.
    pub async fn list_memories(
        &self,
        tenant: &TenantId,
        project_id: &str,
        memory_type: Option<MemoryType>,
        page: &PageRequest,
    ) -> Result<Page<MemoryItem>> {
        project_row(self.reader(), tenant, project_id).await?;
        let mut query = memories::Entity::find()
            .filter(memories::Column::ProjectId.eq(project_id))
            .filter(unexpired(now_ms()))
            .order_by_asc(memories::Column::Id)
            .limit(page.fetch_limit());
        if let Some(t) = memory_type {
            query = query.filter(memories::Column::MemoryType.eq(t.as_str()));
        }
        if let Some(after) = &page.after {
            query = query.filter(memories::Column::Id.gt(after.as_str()));
        }
        let rows = query.all(self.reader()).await?;
        let items = rows.into_iter().map(memory).collect::<Result<Vec<_>>>()?;
        Ok(page.finish(items, |m| m.id.clone()))
    }

    /// Every unexpired memory item of a project (for context building).
    pub async fn all_memories(&self, tenant: &TenantId, project_id: &str) -> Result<Vec<MemoryItem>> {
        let rows = memories::Entity::find()
            .filter(memories::Column::TenantId.eq(tenant.as_str()))
            .filter(memories::Column::ProjectId.eq(project_id))
            .filter(unexpired(now_ms()))
            .order_by_asc(memories::Column::Id)
            .all(self.reader())
            .await?;
        rows.into_iter().map(memory).collect()
    }
}

/// The project row if it belongs to the tenant and is not being deleted; PROJECT_NOT_FOUND otherwise.
pub(crate) async fn project_row(
    conn: &impl ConnectionTrait,
    tenant: &TenantId,
    project_id: &str,
) -> Result<projects::Model> {
    projects::Entity::find_by_id(project_id.to_owned())
        .filter(projects::Column::TenantId.eq(tenant.as_str()))
        .filter(projects::Column::DeletedAt.is_null())
        .one(conn)
        .await?
        .ok_or_else(|| Error::project_not_found(project_id))
}

impl WriteTx {
    /// The project's latest event cursor, seen from inside the transaction;
    /// NOT_FOUND unless the project is the tenant's.
    pub async fn event_cursor(&self, tenant: &TenantId, project_id: &str) -> Result<u64> {
        Ok(project_row(self, tenant, project_id).await?.event_cursor.max(0) as u64)
    }

    /// Checks the project belongs to the tenant and, on PostgreSQL, locks its row
    /// so concurrent writers to one project (scene reorders, event cursors) queue
    /// instead of interleaving. SQLite's write lock already serialises them.
    pub async fn lock_project(&self, tenant: &TenantId, project_id: &str) -> Result<projects::Model> {
        let mut query = projects::Entity::find_by_id(project_id.to_owned())
            .filter(projects::Column::TenantId.eq(tenant.as_str()))
            .filter(projects::Column::DeletedAt.is_null());
        if self.backend() == Backend::Postgres {
            query = query.lock_exclusive();
        }
        query.one(self).await?.ok_or_else(|| Error::project_not_found(project_id))
    }

    /// Marks the project as changed.
    pub async fn touch_project(&self, project_id: &str, now: i64) -> Result<()> {
        projects::Entity::update_many()
            .col_expr(projects::Column::UpdatedAt, Expr::value(now))
            .filter(projects::Column::Id.eq(project_id))
            .exec(self)
            .await?;
        Ok(())
    }

    /// Inserts or replaces a memory item inside a transaction. Repeating the same
    /// value counts another occurrence; a different value starts over at one.
    pub async fn put_memory(
        &self,
        tenant: &TenantId,
        put: &MemoryPut,
        token_count: u32,
        now: i64,
    ) -> Result<(MemoryItem, bool)> {
        let existing = memories::Entity::find()
            .filter(memories::Column::ProjectId.eq(put.project_id.as_str()))
            .filter(memories::Column::MemoryType.eq(put.memory_type.as_str()))
            .filter(memories::Column::Key.eq(put.key.as_str()))
            .one(self)
            .await?;
        let expires_at = put.ttl_ms.map(|ttl| now.saturating_add(ttl));
        let (row, created) = match existing {
            Some(old) => {
                let occurrences = if old.value == put.value { old.occurrences.saturating_add(1) } else { 1 };
                let mut active: memories::ActiveModel = old.into();
                active.value = Set(put.value.clone());
                active.confidence = Set(put.confidence);
                active.source = Set(put.source.as_str().to_owned());
                active.source_prompt = Set(put.source_prompt.clone());
                active.token_count = Set(token_count as i32);
                active.occurrences = Set(occurrences);
                active.expires_at = Set(expires_at);
                active.updated_at = Set(now);
                (active.update(self).await?, false)
            }
            None => {
                let row = memories::ActiveModel {
                    id: Set(new_id()),
                    tenant_id: Set(tenant.0.clone()),
                    project_id: Set(put.project_id.clone()),
                    memory_type: Set(put.memory_type.as_str().to_owned()),
                    key: Set(put.key.clone()),
                    value: Set(put.value.clone()),
                    confidence: Set(put.confidence),
                    source: Set(put.source.as_str().to_owned()),
                    source_prompt: Set(put.source_prompt.clone()),
                    token_count: Set(token_count as i32),
                    occurrences: Set(1),
                    expires_at: Set(expires_at),
                    created_at: Set(now),
                    updated_at: Set(now),
                }
                .insert(self)
                .await?;
                (row, true)
            }
        };
        Ok((memory(row)?, created))
    }
}

fn unexpired(now: i64) -> Condition {
    Condition::any().add(memories::Column::ExpiresAt.is_null()).add(memories::Column::ExpiresAt.gt(now))
}

async fn scenes_in_order(txn: &WriteTx, project_id: &str) -> Result<Vec<scenes::Model>> {
    Ok(scenes::Entity::find()
        .filter(scenes::Column::ProjectId.eq(project_id))
        .order_by_asc(scenes::Column::Position)
        .order_by_asc(scenes::Column::SceneId)
        .all(txn)
        .await?)
}

/// Writes position i to the i-th scene wherever it changed (skipping `skip`, which the caller writes itself).
async fn renumber_in(txn: &WriteTx, order: &[scenes::Model], skip: &str) -> Result<()> {
    for (i, s) in order.iter().enumerate() {
        if s.position != i as i32 && s.scene_id != skip {
            scenes::Entity::update_many()
                .col_expr(scenes::Column::Position, Expr::value(i as i32))
                .filter(scenes::Column::ProjectId.eq(s.project_id.as_str()))
                .filter(scenes::Column::SceneId.eq(s.scene_id.as_str()))
                .exec(txn)
                .await?;
        }
    }
    Ok(())
}

pub(crate) fn project(row: projects::Model) -> Project {
    Project {
        id: row.id,
        tenant_id: TenantId(row.tenant_id),
        name: row.name,
        description: row.description,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

pub(crate) fn scene(row: scenes::Model) -> Result<Scene> {
    Ok(Scene {
        status: SceneStatus::parse(&row.status)
            .ok_or_else(|| Error::internal(format!("scene {} has unknown status {}", row.scene_id, row.status)))?,
        project_id: row.project_id,
        scene_id: row.scene_id,
        name: row.name,
        position: row.position.max(0) as u32,
        summary: row.summary,
        summary_tokens: row.summary_tokens.max(0) as u32,
        duration_seconds: row.duration_seconds,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

pub(crate) fn memory(row: memories::Model) -> Result<MemoryItem> {
    Ok(MemoryItem {
        memory_type: MemoryType::parse(&row.memory_type)
            .ok_or_else(|| Error::internal(format!("memory {} has unknown type {}", row.id, row.memory_type)))?,
        source: MemorySource::parse(&row.source)
            .ok_or_else(|| Error::internal(format!("memory {} has unknown source {}", row.id, row.source)))?,
        id: row.id,
        project_id: row.project_id,
        key: row.key,
        value: row.value,
        confidence: row.confidence,
        source_prompt: row.source_prompt,
        token_count: row.token_count.max(0) as u32,
        occurrences: row.occurrences.max(0) as u32,
        expires_at: row.expires_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn scene_not_found(scene_id: &str) -> Error {
    Error::new(Reason::SceneNotFound, format!("scene {scene_id} not found in this project")).with_field("scene_id")
}

fn bad_token() -> Error {
    Error::new(Reason::InvalidPageToken, "page_token is malformed").with_field("page_token")
}
