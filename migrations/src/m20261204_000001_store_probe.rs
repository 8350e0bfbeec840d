//! `store_probe`: one row the health probe rewrites while the store refuses
//! writes (a full disk answers reads), to learn when writes commit again.
//! It belongs to no tenant: it holds no customer data, only padding.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000001_store_probe"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum StoreProbe {
    Table,
    Id,
    WrittenAt,
    Padding,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(StoreProbe::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(StoreProbe::Id).integer().not_null().primary_key())
                    .col(ColumnDef::new(StoreProbe::WrittenAt).big_integer().not_null())
                    .col(ColumnDef::new(StoreProbe::Padding).binary().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(StoreProbe::Table).to_owned()).await
    }
}
