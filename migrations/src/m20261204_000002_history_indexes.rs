//! Indexes that keep every query's filter and order on an index at any
//! history size (tests/tests/query_plans.rs checks each statement's plan):
//!
//! - scenes in order: (project_id, position, scene_id) replaces (project_id, position);
//! - memories listed by id, and ranked for the context packet;
//! - image analyses listed by acceptance, and by completion (an open analysis has no
//!   completion time, so "completed_at IS NULL" is the pending list);
//! - jobs due by run_after, round-robin by tenant then project, expired leases by
//!   lease_until, and a project's jobs (retention, the foreign key from projects).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000002_history_indexes"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Scenes {
    Table,
    ProjectId,
    Position,
    SceneId,
}

#[derive(DeriveIden, Clone, Copy)]
enum Memories {
    Table,
    ProjectId,
    MemoryType,
    Id,
    Confidence,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ImageAnalyses {
    Table,
    ProjectId,
    ImageId,
    CreatedAt,
    CompletedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Jobs {
    Table,
    TenantId,
    ProjectId,
    Status,
    RunAfter,
    LeaseUntil,
    FinishedAt,
    Id,
}

fn index(name: &str, table: impl IntoIden) -> IndexCreateStatement {
    Index::create().name(name).table(table).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_scenes_position").table(Scenes::Table).to_owned()).await?;
        m.drop_index(Index::drop().name("idx_jobs_claim").table(Jobs::Table).to_owned()).await?;
        let indexes = [
            index("idx_scenes_order", Scenes::Table)
                .col(Scenes::ProjectId)
                .col(Scenes::Position)
                .col(Scenes::SceneId)
                .to_owned(),
            index("idx_memories_by_id", Memories::Table)
                .col(Memories::ProjectId)
                .col(Memories::MemoryType)
                .col(Memories::Id)
                .to_owned(),
            index("idx_memories_rank", Memories::Table)
                .col(Memories::ProjectId)
                .col(Memories::MemoryType)
                .col((Memories::Confidence, IndexOrder::Desc))
                .col((Memories::UpdatedAt, IndexOrder::Desc))
                .col(Memories::Id)
                .to_owned(),
            index("idx_image_analyses_created", ImageAnalyses::Table)
                .col(ImageAnalyses::ProjectId)
                .col(ImageAnalyses::CreatedAt)
                .col(ImageAnalyses::ImageId)
                .to_owned(),
            index("idx_image_analyses_completed", ImageAnalyses::Table)
                .col(ImageAnalyses::ProjectId)
                .col(ImageAnalyses::CompletedAt)
                .col(ImageAnalyses::CreatedAt)
                .col(ImageAnalyses::ImageId)
                .to_owned(),
            index("idx_jobs_due", Jobs::Table).col(Jobs::Status).col(Jobs::RunAfter).col(Jobs::Id).to_owned(),
            // Fair claiming: the next tenant with a due job, then its next project.
            index("idx_jobs_fair", Jobs::Table)
                .col(Jobs::Status)
                .col(Jobs::TenantId)
                .col(Jobs::ProjectId)
                .col(Jobs::RunAfter)
                .col(Jobs::Id)
                .to_owned(),
            index("idx_jobs_lease", Jobs::Table).col(Jobs::Status).col(Jobs::LeaseUntil).col(Jobs::Id).to_owned(),
            index("idx_jobs_project", Jobs::Table)
                .col(Jobs::ProjectId)
                .col(Jobs::Status)
                .col(Jobs::FinishedAt)
                .to_owned(),
        ];
        for statement in indexes {
            m.create_index(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            ("idx_scenes_order", Scenes::Table.into_iden()),
            ("idx_memories_by_id", Memories::Table.into_iden()),
            ("idx_memories_rank", Memories::Table.into_iden()),
            ("idx_image_analyses_created", ImageAnalyses::Table.into_iden()),
            ("idx_image_analyses_completed", ImageAnalyses::Table.into_iden()),
            ("idx_jobs_due", Jobs::Table.into_iden()),
            ("idx_jobs_fair", Jobs::Table.into_iden()),
            ("idx_jobs_lease", Jobs::Table.into_iden()),
            ("idx_jobs_project", Jobs::Table.into_iden()),
        ] {
            m.drop_index(Index::drop().name(name).table(table).to_owned()).await?;
        }
        m.create_index(
            index("idx_scenes_position", Scenes::Table).col(Scenes::ProjectId).col(Scenes::Position).to_owned(),
        )
        .await?;
        m.create_index(index("idx_jobs_claim", Jobs::Table).col(Jobs::Status).col(Jobs::RunAfter).to_owned()).await
    }
}
