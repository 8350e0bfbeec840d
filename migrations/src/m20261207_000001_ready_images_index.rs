//! The context packet's latest analysed images: `status = 'ready'` ordered by completion.
//! On (project_id, completed_at, ...) alone that read walks every failed analysis newer than
//! the tenth ready one (all of them when few are ready: 5,000 rows in the history benchmark);
//! with the status in the index it reads ten entries.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000001_ready_images_index"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum ImageAnalyses {
    Table,
    ProjectId,
    Status,
    CompletedAt,
    CreatedAt,
    ImageId,
}

const NAME: &str = "idx_image_analyses_status_completed";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name(NAME)
                .table(ImageAnalyses::Table)
                .col(ImageAnalyses::ProjectId)
                .col(ImageAnalyses::Status)
                .col(ImageAnalyses::CompletedAt)
                .col(ImageAnalyses::CreatedAt)
                .col(ImageAnalyses::ImageId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name(NAME).table(ImageAnalyses::Table).to_owned()).await
    }
}
