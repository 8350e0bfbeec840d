//! Durable background jobs, claimed with a lease.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub project_id: String,
    pub kind: String,
    pub subject_id: String,
    #[sea_orm(column_type = "Blob")]
    pub payload: Option<Vec<u8>>,
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_after: i64,
    pub lease_until: Option<i64>,
    pub lease_owner: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
