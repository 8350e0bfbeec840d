//! Projects, scenes and memory items: validation, token counting at write
//! time, and invalidation of whatever caches a project's context.

mod transfer;

use std::{sync::Arc, time::Duration};

use crate::{
    changes::ProjectChanges,
    context::{render, tokens},
    error::{Error, Reason, Result},
    model::{
        MemoryItem, MemoryPut, MemorySelector, NewProject, Page, Project, ProjectDeletion, ProjectUpdate, Scene,
        SceneUpsert, TenantId, TenantPurge,
    },
    pagination::PageRequest,
    store::{DELETE_CHUNK_ROWS, Store},
    validate,
};

/// Longest accepted memory lifetime: 3650 days, in ms. A longer ttl is refused with this limit in
/// the message and the ErrorInfo, not clamped: a client asking for more most likely means "never
/// expires", which is an unset ttl, and storing another expiry than asked for would be a silent
/// surprise.
const MAX_TTL_MS: i64 = 10 * 365 * 24 * 3600 * 1000;
/// Longest accepted scene duration, in seconds.
const MAX_SCENE_SECONDS: f64 = 3_600.0;
/// First and longest pause before removing a deleted project's rows again after the store failed.
const DELETE_RETRY_FIRST: Duration = Duration::from_secs(1);
const DELETE_RETRY_MAX: Duration = Duration::from_secs(60);

/// The project domain service.
#[derive(Clone)]
pub struct Projects {
    store: Store,
    changes: Arc<ProjectChanges>,
}

impl Projects {
    /// A service over `store` that announces each committed write on `changes`.
    pub fn new(store: Store, changes: Arc<ProjectChanges>) -> Self {
        Self { store, changes }
    }

    /// Creates a project.
    pub async fn create(&self, tenant: &TenantId, name: &str, description: &str) -> Result<Project> {
        let new = NewProject {
            name: validate::name("name", name, validate::MAX_NAME_CHARS)?,
            description: validate::text("description", description, validate::MAX_DESCRIPTION_CHARS)?,
        };
        self.store.create_project(tenant, &new).await
    }

    /// One project.
    pub async fn get(&self, tenant: &TenantId, project_id: &str) -> Result<Project> {
        let project_id = validate::id("project_id", project_id)?;
        self.store.get_project(tenant, &project_id).await
    }

    /// Changes a project's name or description, validated as in [`Self::create`]. The context
    /// packet shows neither (context/render.rs), so no cached packet is dropped: announcing the
    /// change would only make every replica rebuild an identical packet.
    pub async fn update(&self, tenant: &TenantId, mut update: ProjectUpdate) -> Result<Project> {
        update.project_id = validate::id("project_id", &update.project_id)?;
        if let Some(name) = &update.name {
            update.name = Some(validate::name("name", name, validate::MAX_NAME_CHARS)?);
        }
        if let Some(description) = &update.description {
            update.description = Some(validate::text("description", description, validate::MAX_DESCRIPTION_CHARS)?);
        }
        self.store.update_project(tenant, &update).await
    }

    /// Deletes a project and everything that belongs to it; returns what was removed.
    ///
    /// The project is NOT_FOUND to every call once its tombstone commits (and
    /// its streams end, its caches are dropped, on every replica); its rows then
    /// go in chunks of [`DELETE_CHUNK_ROWS`] so the writer is never held for long.
    /// The removal runs in a task of its own: a caller that hangs up, or a store
    /// that fails halfway, does not leave rows behind. While the store is
    /// unavailable the task keeps retrying (the caller gets the first error);
    /// a restarted server finishes any deletion left over ([`Self::finish_deletions`]).
    pub async fn delete(&self, tenant: &TenantId, project_id: &str) -> Result<ProjectDeletion> {
        let project_id = validate::id("project_id", project_id)?;
        self.store.mark_project_deleted(tenant, &project_id).await?;
        self.changes.deleted(&project_id);
        self.spawn_removal(project_id)
            .await
            .map_err(|_| Error::internal("the project deletion task ended without an outcome"))?
    }

    /// Removes a tombstoned project's rows in a task of its own, so a caller that
    /// hangs up does not stop it; retries while the store is unavailable. The
    /// receiver gets the first attempt's outcome.
    pub(crate) fn spawn_removal(&self, project_id: String) -> tokio::sync::oneshot::Receiver<Result<ProjectDeletion>> {
        let (first_outcome, outcome) = tokio::sync::oneshot::channel();
        let this = self.clone();
        tokio::spawn(async move {
            let mut first_outcome = Some(first_outcome);
            let mut pause = DELETE_RETRY_FIRST;
            loop {
                let result = this.remove_rows(&project_id).await;
                let failed = result.as_ref().err().map(|e| (e.reason(), e.to_string()));
                if let Some(tx) = first_outcome.take() {
                    let _ = tx.send(result);
                }
                match failed {
                    None => return,
                    Some((Reason::StoreUnavailable, error)) => {
                        tracing::warn!(project_id = %project_id, error = %error, retry_in_ms = pause.as_millis() as u64,
                            "removing a deleted project's rows failed; retrying");
                    }
                    Some((_, error)) => {
                        // Not the store being away: retrying would fail the same way. The
                        // tombstone stays, and the next start tries again.
                        tracing::error!(project_id = %project_id, error = %error,
                            "removing a deleted project's rows failed; the next start retries");
                        return;
                    }
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(DELETE_RETRY_MAX);
            }
        });
        outcome
    }

    /// The tenant with this name; TENANT_NOT_FOUND if there is none.
    pub async fn tenant_named(&self, name: &str) -> Result<TenantId> {
        let name = validate::name("tenant", name, validate::MAX_NAME_CHARS)?;
        self.store.tenant_named(&name).await
    }

    /// Erases a tenant: its API keys first (so it adds nothing meanwhile), then
    /// each of its projects as [`Self::delete`] removes one, then the tenant
    /// itself. A purge that stopped halfway can be run again: it carries on.
    pub async fn purge_tenant(&self, name: &str) -> Result<TenantPurge> {
        let tenant = self.tenant_named(name).await?;
        let api_keys = self.store.delete_tenant_keys(&tenant).await?;
        let project_ids = self.store.tenant_project_ids(&tenant).await?;
        let mut deleted = ProjectDeletion::default();
        for project_id in &project_ids {
            match self.store.mark_project_deleted(&tenant, project_id).await {
                Ok(()) => {}
                // Already being deleted (by DeleteProject, or by an earlier purge).
                Err(err) if err.reason() == Reason::ProjectNotFound => {}
                Err(err) => return Err(err),
            }
            self.changes.deleted(project_id);
            deleted.add(&self.remove_rows(project_id).await?);
        }
        self.store.remove_tenant(&tenant).await?;
        tracing::info!(tenant_id = %tenant, projects = project_ids.len(), api_keys, rows = deleted.total(), "purged a tenant");
        Ok(TenantPurge { tenant, projects: project_ids.len() as u64, api_keys, deleted })
    }

    /// Removes the rows of projects whose deletion did not finish (the server
    /// stopped halfway); returns how many projects it finished.
    pub async fn finish_deletions(&self) -> Result<usize> {
        let ids = self.store.unfinished_deletions().await?;
        for project_id in &ids {
            let removed = self.remove_rows(project_id).await?;
            tracing::info!(project_id = %project_id, rows = removed.total(), "finished deleting a project");
        }
        Ok(ids.len())
    }

    /// A tombstoned project's rows, chunk by chunk, then its row.
    async fn remove_rows(&self, project_id: &str) -> Result<ProjectDeletion> {
        let mut removed = ProjectDeletion::default();
        loop {
            let started = std::time::Instant::now();
            let chunk = self.store.delete_project_chunk(project_id, DELETE_CHUNK_ROWS).await?;
            if chunk.total() == 0 {
                break;
            }
            removed.add(&chunk);
            // A pause as long as the chunk took: the deletion gets at most half of the writer
            // (and of a core), and writers queued behind the chunk go first.
            tokio::time::sleep(started.elapsed()).await;
        }
        self.store.remove_deleted_project(project_id).await?;
        // A stream that opened between the tombstone and now ends too.
        self.changes.deleted(project_id);
        Ok(removed)
    }

    /// A page of projects.
    pub async fn list(&self, tenant: &TenantId, page_size: i32, page_token: &str) -> Result<Page<Project>> {
        let page = PageRequest::parse(page_size, page_token, &format!("projects:{tenant}"))?;
        self.store.list_projects(tenant, &page).await
    }

    /// Creates or replaces a scene; counts its summary's tokens once, here.
    pub async fn upsert_scene(&self, tenant: &TenantId, mut up: SceneUpsert) -> Result<(Scene, bool)> {
        up.project_id = validate::id("project_id", &up.project_id)?;
        up.scene_id = match up.scene_id.as_deref() {
            Some(id) => validate::optional_id("scene_id", id)?,
            None => None,
        };
        up.name = validate::name("name", &up.name, validate::MAX_NAME_CHARS)?;
        up.summary = validate::text("summary", &up.summary, validate::MAX_TEXT_CHARS)?;
        check_scene_duration("duration_seconds", up.duration_seconds)?;
        let summary_tokens = tokens::count(&render::scene_summary_line(&up.summary));
        let result = self.store.upsert_scene(tenant, &up, summary_tokens).await?;
        self.changes.changed(&up.project_id);
        Ok(result)
    }

    /// Deletes a scene.
    pub async fn delete_scene(&self, tenant: &TenantId, project_id: &str, scene_id: &str) -> Result<()> {
        let project_id = validate::id("project_id", project_id)?;
        let scene_id = validate::id("scene_id", scene_id)?;
        self.store.delete_scene(tenant, &project_id, &scene_id).await?;
        self.changes.changed(&project_id);
        Ok(())
    }

    /// A page of scenes in position order.
    pub async fn list_scenes(
        &self,
        tenant: &TenantId,
        project_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Scene>> {
        let project_id = validate::id("project_id", project_id)?;
        let page = PageRequest::parse(page_size, page_token, &format!("scenes:{project_id}"))?;
        self.store.list_scenes(tenant, &project_id, &page).await
    }

    /// Writes a memory item; counts its line's tokens once, here.
    pub async fn put_memory(&self, tenant: &TenantId, mut put: MemoryPut) -> Result<(MemoryItem, bool)> {
        put.project_id = validate::id("project_id", &put.project_id)?;
        put.key = validate::name("key", &put.key, validate::MAX_NAME_CHARS)?;
        put.value = validate::text("value", &put.value, validate::MAX_TEXT_CHARS)?;
        if put.value.trim().is_empty() {
            return Err(Error::missing("value"));
        }
        check_confidence("confidence", put.confidence)?;
        if let Some(ttl) = put.ttl_ms
            && !(1..=MAX_TTL_MS).contains(&ttl)
        {
            return Err(Error::invalid(
                "ttl",
                format!("ttl must be from 1 ms to {} days ({} s)", MAX_TTL_MS / 86_400_000, MAX_TTL_MS / 1000),
            )
            .with_limit(format!("{}s", MAX_TTL_MS / 1000)));
        }
        let token_count = tokens::count(&render::memory_line(&put.key, &put.value, put.confidence));
        let result = self.store.put_memory(tenant, &put, token_count).await?;
        self.changes.changed(&put.project_id);
        Ok(result)
    }

    /// Deletes a memory item.
    pub async fn delete_memory(&self, tenant: &TenantId, project_id: &str, selector: MemorySelector) -> Result<()> {
        let project_id = validate::id("project_id", project_id)?;
        let selector = match selector {
            MemorySelector::Id(id) => MemorySelector::Id(validate::id("memory_id", &id)?),
            MemorySelector::Key(t, key) => {
                MemorySelector::Key(t, validate::name("memory_key.key", &key, validate::MAX_NAME_CHARS)?)
            }
        };
        self.store.delete_memory(tenant, &project_id, &selector).await?;
        self.changes.changed(&project_id);
        Ok(())
    }

    /// A page of memory items.
    pub async fn list_memories(
        &self,
        tenant: &TenantId,
        project_id: &str,
        memory_type: Option<crate::model::MemoryType>,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<MemoryItem>> {
        let project_id = validate::id("project_id", project_id)?;
        let scope = format!("memories:{project_id}:{}", memory_type.map_or("all", |t| t.as_str()));
        let page = PageRequest::parse(page_size, page_token, &scope)?;
        self.store.list_memories(tenant, &project_id, memory_type, &page).await
    }
}

/// A scene's length, if known: more than 0 and at most [`MAX_SCENE_SECONDS`].
fn check_scene_duration(field: &str, seconds: Option<f64>) -> Result<()> {
    match seconds {
        Some(d) if !(d.is_finite() && d > 0.0 && d <= MAX_SCENE_SECONDS) => {
            Err(Error::invalid(field, format!("{field} must be greater than 0 and at most {MAX_SCENE_SECONDS}")))
        }
        _ => Ok(()),
    }
}

/// A memory item's confidence: from 0 to 1.
fn check_confidence(field: &str, confidence: f64) -> Result<()> {
    if confidence.is_finite() && (0.0..=1.0).contains(&confidence) {
        Ok(())
    } else {
        Err(Error::invalid(field, format!("{field} must be between 0 and 1")))
    }
}
