//! The event outbox: per-project cursors in commit order.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub tenant_id: String,
    pub project_id: String,
    pub cursor: i64,
    pub event_type: String,
    pub image_id: Option<String>,
    pub orchestration_id: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
