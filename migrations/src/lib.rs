//! brain's database schema as sea-orm-migration steps, one file per change.
//!
//! Conventions, so SQLite and PostgreSQL behave alike:
//! - ids are text (UUIDv7 unless a client chose them), compared as strings;
//! - times are BIGINT milliseconds since the Unix epoch (`*_at` columns);
//! - every row carries `tenant_id`, so every query can scope by tenant without a join.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_initial;
mod m20261204_000001_store_probe;
mod m20261204_000002_history_indexes;
mod m20261207_000001_ready_images_index;
mod m20261207_000002_project_deletion;
mod m20261207_000003_admin_keys;

/// Runs brain's migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_initial::Migration),
            Box::new(m20261204_000001_store_probe::Migration),
            Box::new(m20261204_000002_history_indexes::Migration),
            Box::new(m20261207_000001_ready_images_index::Migration),
            Box::new(m20261207_000002_project_deletion::Migration),
            Box::new(m20261207_000003_admin_keys::Migration),
        ]
    }
}
