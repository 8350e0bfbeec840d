//! Orchestrations: one per processed prompt, with the stored response for idempotent retries.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "orchestrations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub project_id: String,
    pub request_id: Option<String>,
    pub request_hash: String,
    /// JSON of the response while it can be replayed (under a request id); empty otherwise.
    #[sea_orm(column_type = "Text")]
    pub response: String,
    pub tool: String,
    pub backend: String,
    pub degraded: bool,
    pub image_count: i32,
    pub response_ms: f64,
    pub prompt_tokens: i32,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
