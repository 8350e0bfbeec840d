//! Image analyses: one row per accepted image, keyed (project_id, image_id).

use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, SqlErr, sea_query::Expr,
};

use super::{
    Store, WriteTx,
    entities::{image_analyses, memories},
    projects::{memory, project_row},
};
use crate::{
    error::{Error, Reason, Result},
    model::{ImageAnalysis, ImageFacts, ImageStatus, MemoryItem, MemoryType, Millis, NewImage, Page, TenantId, now_ms},
    pagination::{PageRequest, split_key},
};

impl WriteTx {
    /// Writes PENDING analyses for accepted images inside the caller's
    /// transaction. Fails with IMAGE_ID_TAKEN, writing nothing the caller keeps,
    /// when an id is already used in the project.
    pub async fn insert_images(
        &self,
        tenant: &TenantId,
        project_id: &str,
        orchestration_id: Option<&str>,
        images: &[NewImage],
    ) -> Result<Vec<ImageAnalysis>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = images.iter().map(|i| i.image_id.as_str()).collect();
        let taken: Vec<String> = image_analyses::Entity::find()
            .select_only()
            .column(image_analyses::Column::ImageId)
            .filter(image_analyses::Column::ProjectId.eq(project_id))
            .filter(image_analyses::Column::ImageId.is_in(ids))
            .into_tuple()
            .all(self)
            .await?;
        if let Some(i) = images.iter().position(|image| taken.contains(&image.image_id)) {
            return Err(id_taken(&images[i].image_id).with_field(format!("images[{i}].image_id")));
        }
        let now = now_ms();
        let rows = images.iter().map(|image| image_analyses::ActiveModel {
            project_id: Set(project_id.to_owned()),
            image_id: Set(image.image_id.clone()),
            tenant_id: Set(tenant.0.clone()),
            orchestration_id: Set(orchestration_id.map(str::to_owned)),
            status: Set(ImageStatus::Pending.as_str().to_owned()),
            source_url: Set(image.source_url.clone()),
            mime_type: Set(image.mime_type.clone()),
            byte_size: Set(image.byte_size.map(|b| b as i64)),
            content_sha256: Set(image.content_sha256.clone()),
            facts: Set(None),
            analyzer: Set(None),
            processing_ms: Set(None),
            error: Set(None),
            attempts: Set(0),
            created_at: Set(now),
            completed_at: Set(None),
        });
        if let Err(err) = image_analyses::Entity::insert_many(rows).exec_without_returning(self).await {
            // Another request took the id between our check and our insert.
            if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
                let message = "an image_id of this request was taken by a concurrent request; choose other ids";
                return Err(Error::new(Reason::ImageIdTaken, message).with_field("images"));
            }
            return Err(err.into());
        }
        Ok(images
            .iter()
            .map(|image| ImageAnalysis {
                image_id: image.image_id.clone(),
                project_id: project_id.to_owned(),
                tenant_id: tenant.clone(),
                orchestration_id: orchestration_id.map(str::to_owned),
                status: ImageStatus::Pending,
                facts: None,
                error: None,
                attempts: 0,
                source_url: image.source_url.clone(),
                mime_type: image.mime_type.clone(),
                byte_size: image.byte_size,
                content_sha256: image.content_sha256.clone(),
                created_at: now,
                completed_at: None,
            })
            .collect())
    }

    /// One analysis, read inside a transaction.
    pub async fn image(&self, project_id: &str, image_id: &str) -> Result<ImageAnalysis> {
        image_analyses::Entity::find_by_id((project_id.to_owned(), image_id.to_owned()))
            .one(self)
            .await?
            .ok_or_else(|| image_not_found(image_id))
            .and_then(analysis)
    }

    /// Sets the status and attempt count of an unfinished analysis (running, or pending again before a retry).
    pub async fn set_image_progress(
        &self,
        project_id: &str,
        image_id: &str,
        status: ImageStatus,
        attempts: u32,
    ) -> Result<()> {
        image_analyses::Entity::update_many()
            .col_expr(image_analyses::Column::Status, Expr::value(status.as_str()))
            .col_expr(image_analyses::Column::Attempts, Expr::value(attempts as i32))
            .filter(image_analyses::Column::ProjectId.eq(project_id))
            .filter(image_analyses::Column::ImageId.eq(image_id))
            .filter(
                image_analyses::Column::Status.is_in([ImageStatus::Pending.as_str(), ImageStatus::Running.as_str()]),
            )
            .exec(self)
            .await?;
        Ok(())
    }

    /// Marks the analysis READY with its facts.
    pub async fn set_image_ready(&self, project_id: &str, image_id: &str, ready: &ImageReady<'_>) -> Result<()> {
        let facts = serde_json::to_string(ready.facts).map_err(Error::internal)?;
        let mut update = image_analyses::Entity::update_many()
            .col_expr(image_analyses::Column::Status, Expr::value(ImageStatus::Ready.as_str()))
            .col_expr(image_analyses::Column::Facts, Expr::value(facts))
            .col_expr(image_analyses::Column::Analyzer, Expr::value(ready.facts.analyzer.as_str()))
            .col_expr(image_analyses::Column::ProcessingMs, Expr::value(ready.facts.processing_ms))
            .col_expr(image_analyses::Column::ContentSha256, Expr::value(ready.facts.content_sha256.as_str()))
            .col_expr(image_analyses::Column::ByteSize, Expr::value(ready.byte_size as i64))
            .col_expr(image_analyses::Column::Error, Expr::value(Option::<String>::None))
            .col_expr(image_analyses::Column::Attempts, Expr::value(ready.attempts as i32))
            .col_expr(image_analyses::Column::CompletedAt, Expr::value(ready.completed_at));
        if let Some(mime) = ready.mime_type {
            update = update.col_expr(image_analyses::Column::MimeType, Expr::value(mime));
        }
        update
            .filter(image_analyses::Column::ProjectId.eq(project_id))
            .filter(image_analyses::Column::ImageId.eq(image_id))
            .exec(self)
            .await?;
        Ok(())
    }

    /// Marks the analysis FAILED for good with a reason.
    pub async fn set_image_failed(
        &self,
        project_id: &str,
        image_id: &str,
        error: &str,
        attempts: u32,
        completed_at: Millis,
    ) -> Result<()> {
        image_analyses::Entity::update_many()
            .col_expr(image_analyses::Column::Status, Expr::value(ImageStatus::Failed.as_str()))
            .col_expr(image_analyses::Column::Error, Expr::value(error))
            .col_expr(image_analyses::Column::Attempts, Expr::value(attempts as i32))
            .col_expr(image_analyses::Column::CompletedAt, Expr::value(completed_at))
            .filter(image_analyses::Column::ProjectId.eq(project_id))
            .filter(image_analyses::Column::ImageId.eq(image_id))
            .exec(self)
            .await?;
        Ok(())
    }

    /// The memory item with this type and key, if any (expired or not).
    pub async fn memory_by_key(
        &self,
        project_id: &str,
        memory_type: MemoryType,
        key: &str,
    ) -> Result<Option<MemoryItem>> {
        memories::Entity::find()
            .filter(memories::Column::ProjectId.eq(project_id))
            .filter(memories::Column::MemoryType.eq(memory_type.as_str()))
            .filter(memories::Column::Key.eq(key))
            .one(self)
            .await?
            .map(memory)
            .transpose()
    }
}

fn id_taken(image_id: &str) -> Error {
    Error::new(Reason::ImageIdTaken, format!("image_id {image_id} is already used in this project"))
}

/// What a successful analysis stores.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageReady<'a> {
    pub facts: &'a ImageFacts,
    pub mime_type: Option<&'a str>,
    pub byte_size: u64,
    pub attempts: u32,
    pub completed_at: Millis,
}

impl Store {
    /// One analysis of the tenant's project: PROJECT_NOT_FOUND or IMAGE_NOT_FOUND when missing.
    pub async fn get_image(&self, tenant: &TenantId, project_id: &str, image_id: &str) -> Result<ImageAnalysis> {
        let row = image_analyses::Entity::find_by_id((project_id.to_owned(), image_id.to_owned()))
            .filter(image_analyses::Column::TenantId.eq(tenant.as_str()))
            .one(self.reader())
            .await?;
        match row {
            Some(row) => analysis(row),
            None => {
                project_row(self.reader(), tenant, project_id).await?;
                Err(image_not_found(image_id))
            }
        }
    }

    /// A page of the project's analyses, oldest first.
    pub async fn list_images(
        &self,
        tenant: &TenantId,
        project_id: &str,
        page: &PageRequest,
    ) -> Result<Page<ImageAnalysis>> {
        project_row(self.reader(), tenant, project_id).await?;
        let mut query = image_analyses::Entity::find()
            .filter(image_analyses::Column::ProjectId.eq(project_id))
            .order_by_asc(image_analyses::Column::CreatedAt)
            .order_by_asc(image_analyses::Column::ImageId)
            .limit(page.fetch_limit());
        if let Some(after) = &page.after {
            let (created, image_id) = split_key(after)?;
            let created: i64 = created.parse().map_err(|_| {
                Error::new(Reason::InvalidPageToken, "page_token is malformed").with_field("page_token")
            })?;
            query = query.filter(
                Condition::any().add(image_analyses::Column::CreatedAt.gt(created)).add(
                    Condition::all()
                        .add(image_analyses::Column::CreatedAt.eq(created))
                        .add(image_analyses::Column::ImageId.gt(image_id)),
                ),
            );
        }
        let rows = query.all(self.reader()).await?;
        let items = rows.into_iter().map(analysis).collect::<Result<Vec<_>>>()?;
        Ok(page.finish(items, |a| format!("{}|{}", a.created_at, a.image_id)))
    }
}

fn image_not_found(image_id: &str) -> Error {
    Error::new(Reason::ImageNotFound, format!("image {image_id} not found in this project")).with_field("image_id")
}

pub(crate) fn analysis(row: image_analyses::Model) -> Result<ImageAnalysis> {
    let status = ImageStatus::parse(&row.status)
        .ok_or_else(|| Error::internal(format!("image {} has unknown status {}", row.image_id, row.status)))?;
    let facts = match &row.facts {
        Some(json) => Some(
            serde_json::from_str::<ImageFacts>(json)
                .map_err(|e| Error::internal(format!("image {} has unreadable facts: {e}", row.image_id)))?,
        ),
        None => None,
    };
    Ok(ImageAnalysis {
        image_id: row.image_id,
        project_id: row.project_id,
        tenant_id: TenantId(row.tenant_id),
        orchestration_id: row.orchestration_id,
        status,
        facts,
        error: row.error,
        attempts: row.attempts.max(0) as u32,
        source_url: row.source_url,
        mime_type: row.mime_type,
        byte_size: row.byte_size.map(|b| b.max(0) as u64),
        content_sha256: row.content_sha256,
        created_at: row.created_at,
        completed_at: row.completed_at,
    })
}
