//! Image analyses, keyed by (project_id, image_id); `facts` is JSON once ready.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "image_analyses")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub project_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub image_id: String,
    pub tenant_id: String,
    pub orchestration_id: Option<String>,
    pub status: String,
    #[sea_orm(column_type = "Text")]
    pub source_url: Option<String>,
    pub mime_type: Option<String>,
    pub byte_size: Option<i64>,
    pub content_sha256: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub facts: Option<String>,
    pub analyzer: Option<String>,
    pub processing_ms: Option<f64>,
    #[sea_orm(column_type = "Text")]
    pub error: Option<String>,
    pub attempts: i32,
    pub created_at: i64,
    pub completed_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
