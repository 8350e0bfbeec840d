//! DeleteProject's tombstone: `projects.deleted_at` is set in one short transaction, after
//! which the project is NOT_FOUND to every call; its rows are then removed in bounded chunks
//! (so the writer is never held for long) and the project row last. A server that stops
//! halfway finishes the job on its next start (`Projects::finish_deletions`).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000002_project_deletion"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Projects {
    Table,
    DeletedAt,
}

const INDEX: &str = "idx_projects_deleted";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Projects::Table)
                .add_column(ColumnDef::new(Projects::DeletedAt).big_integer().null())
                .to_owned(),
        )
        .await?;
        // Finding unfinished deletions at start reads this index, not every project.
        m.create_index(Index::create().name(INDEX).table(Projects::Table).col(Projects::DeletedAt).to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name(INDEX).table(Projects::Table).to_owned()).await?;
        m.alter_table(Table::alter().table(Projects::Table).drop_column(Projects::DeletedAt).to_owned()).await
    }
}
