//! Scenes, keyed by (project_id, scene_id).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "scenes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub project_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub scene_id: String,
    pub tenant_id: String,
    pub name: String,
    pub position: i32,
    #[sea_orm(column_type = "Text")]
    pub summary: String,
    pub summary_tokens: i32,
    pub duration_seconds: Option<f64>,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
