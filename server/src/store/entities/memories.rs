//! Memory items, unique per (project_id, memory_type, key).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "memories")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub project_id: String,
    pub memory_type: String,
    pub key: String,
    #[sea_orm(column_type = "Text")]
    pub value: String,
    pub confidence: f64,
    pub source: String,
    #[sea_orm(column_type = "Text")]
    pub source_prompt: Option<String>,
    pub token_count: i32,
    pub occurrences: i32,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
