//! Admin keys: credentials for AdminService (RunRetention, PurgeTenant) that belong to no tenant,
//! so a tenant's key can never erase another tenant, and an admin key can read no tenant's data.
//! Stored like `api_keys`: only the SHA-256 of the key.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000003_admin_keys"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum AdminKeys {
    Table,
    Id,
    KeyHash,
    KeyPrefix,
    CreatedAt,
    RevokedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AdminKeys::Table)
                .col(ColumnDef::new(AdminKeys::Id).string_len(128).not_null().primary_key())
                .col(ColumnDef::new(AdminKeys::KeyHash).string_len(64).not_null().unique_key())
                .col(ColumnDef::new(AdminKeys::KeyPrefix).string_len(16).not_null())
                .col(ColumnDef::new(AdminKeys::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(AdminKeys::RevokedAt).big_integer().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(AdminKeys::Table).to_owned()).await
    }
}
