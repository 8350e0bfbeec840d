//! The initial schema: every table the service needs.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000001_initial"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Tenants {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiKeys {
    Table,
    Id,
    TenantId,
    KeyHash,
    KeyPrefix,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Projects {
    Table,
    Id,
    TenantId,
    Name,
    Description,
    EventCursor,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Scenes {
    Table,
    ProjectId,
    SceneId,
    TenantId,
    Name,
    Position,
    Summary,
    SummaryTokens,
    DurationSeconds,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Memories {
    Table,
    Id,
    TenantId,
    ProjectId,
    MemoryType,
    Key,
    Value,
    Confidence,
    Source,
    SourcePrompt,
    TokenCount,
    Occurrences,
    ExpiresAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ConversationTurns {
    Table,
    Id,
    TenantId,
    ProjectId,
    OrchestrationId,
    Prompt,
    DecisionSummary,
    TokenCount,
    Archived,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Orchestrations {
    Table,
    Id,
    TenantId,
    ProjectId,
    RequestId,
    RequestHash,
    Response,
    Tool,
    Backend,
    Degraded,
    ImageCount,
    ResponseMs,
    PromptTokens,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ImageAnalyses {
    Table,
    ProjectId,
    ImageId,
    TenantId,
    OrchestrationId,
    Status,
    SourceUrl,
    MimeType,
    ByteSize,
    ContentSha256,
    Facts,
    Analyzer,
    ProcessingMs,
    Error,
    Attempts,
    CreatedAt,
    CompletedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Jobs {
    Table,
    Id,
    TenantId,
    ProjectId,
    Kind,
    SubjectId,
    Payload,
    Status,
    Attempts,
    MaxAttempts,
    RunAfter,
    LeaseUntil,
    LeaseOwner,
    LastError,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Events {
    Table,
    Id,
    TenantId,
    ProjectId,
    Cursor,
    EventType,
    ImageId,
    OrchestrationId,
    Payload,
    CreatedAt,
}

fn text_id(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string_len(128).not_null().to_owned()
}

fn millis(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().not_null().to_owned()
}

fn millis_null(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().null().to_owned()
}

fn tenant_fk(table: impl IntoIden + Clone) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from_tbl(table)
        .from_col(Alias::new("tenant_id"))
        .to(Tenants::Table, Tenants::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn project_fk(table: impl IntoIden + Clone) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from_tbl(table)
        .from_col(Alias::new("project_id"))
        .to(Projects::Table, Projects::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Tenants::Table)
                .col(text_id(Tenants::Id).primary_key())
                .col(ColumnDef::new(Tenants::Name).string_len(200).not_null().unique_key())
                .col(millis(Tenants::CreatedAt))
                .to_owned(),
        )
        .await?;

        // Keys are stored as SHA-256 of the whole key: keys are 256-bit random
        // strings, so a fast hash is enough and lookups stay O(1).
        m.create_table(
            Table::create()
                .table(ApiKeys::Table)
                .col(text_id(ApiKeys::Id).primary_key())
                .col(text_id(ApiKeys::TenantId))
                .col(ColumnDef::new(ApiKeys::KeyHash).string_len(64).not_null().unique_key())
                .col(ColumnDef::new(ApiKeys::KeyPrefix).string_len(16).not_null())
                .col(millis(ApiKeys::CreatedAt))
                .col(millis_null(ApiKeys::RevokedAt))
                .foreign_key(&mut tenant_fk(ApiKeys::Table))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Projects::Table)
                .col(text_id(Projects::Id).primary_key())
                .col(text_id(Projects::TenantId))
                .col(ColumnDef::new(Projects::Name).string_len(200).not_null())
                .col(ColumnDef::new(Projects::Description).text().not_null())
                // Last event cursor handed out for this project. Incremented in
                // the transaction that writes the event, so the row lock orders
                // cursors by commit and a subscriber never skips one.
                .col(ColumnDef::new(Projects::EventCursor).big_integer().not_null().default(0))
                .col(millis(Projects::CreatedAt))
                .col(millis(Projects::UpdatedAt))
                .foreign_key(&mut tenant_fk(Projects::Table))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_projects_tenant")
                .table(Projects::Table)
                .col(Projects::TenantId)
                .col(Projects::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Scenes::Table)
                .col(text_id(Scenes::ProjectId))
                .col(text_id(Scenes::SceneId))
                .col(text_id(Scenes::TenantId))
                .col(ColumnDef::new(Scenes::Name).string_len(200).not_null())
                .col(ColumnDef::new(Scenes::Position).integer().not_null())
                .col(ColumnDef::new(Scenes::Summary).text().not_null())
                .col(ColumnDef::new(Scenes::SummaryTokens).integer().not_null())
                .col(ColumnDef::new(Scenes::DurationSeconds).double().null())
                .col(ColumnDef::new(Scenes::Status).string_len(16).not_null())
                .col(millis(Scenes::CreatedAt))
                .col(millis(Scenes::UpdatedAt))
                .primary_key(Index::create().col(Scenes::ProjectId).col(Scenes::SceneId))
                .foreign_key(&mut tenant_fk(Scenes::Table))
                .foreign_key(&mut project_fk(Scenes::Table))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_scenes_position")
                .table(Scenes::Table)
                .col(Scenes::ProjectId)
                .col(Scenes::Position)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Memories::Table)
                .col(text_id(Memories::Id).primary_key())
                .col(text_id(Memories::TenantId))
                .col(text_id(Memories::ProjectId))
                .col(ColumnDef::new(Memories::MemoryType).string_len(32).not_null())
                .col(ColumnDef::new(Memories::Key).string_len(200).not_null())
                .col(ColumnDef::new(Memories::Value).text().not_null())
                .col(ColumnDef::new(Memories::Confidence).double().not_null())
                .col(ColumnDef::new(Memories::Source).string_len(16).not_null())
                .col(ColumnDef::new(Memories::SourcePrompt).text().null())
                .col(ColumnDef::new(Memories::TokenCount).integer().not_null())
                .col(ColumnDef::new(Memories::Occurrences).integer().not_null().default(1))
                .col(millis_null(Memories::ExpiresAt))
                .col(millis(Memories::CreatedAt))
                .col(millis(Memories::UpdatedAt))
                .foreign_key(&mut tenant_fk(Memories::Table))
                .foreign_key(&mut project_fk(Memories::Table))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_memories_project_type_key")
                .table(Memories::Table)
                .col(Memories::ProjectId)
                .col(Memories::MemoryType)
                .col(Memories::Key)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("idx_memories_expiry").table(Memories::Table).col(Memories::ExpiresAt).to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ConversationTurns::Table)
                .col(text_id(ConversationTurns::Id).primary_key())
                .col(text_id(ConversationTurns::TenantId))
                .col(text_id(ConversationTurns::ProjectId))
                .col(ColumnDef::new(ConversationTurns::OrchestrationId).string_len(128).null())
                .col(ColumnDef::new(ConversationTurns::Prompt).text().not_null())
                .col(ColumnDef::new(ConversationTurns::DecisionSummary).text().not_null())
                .col(ColumnDef::new(ConversationTurns::TokenCount).integer().not_null())
                .col(ColumnDef::new(ConversationTurns::Archived).boolean().not_null().default(false))
                .col(millis(ConversationTurns::CreatedAt))
                .foreign_key(&mut tenant_fk(ConversationTurns::Table))
                .foreign_key(&mut project_fk(ConversationTurns::Table))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_turns_recent")
                .table(ConversationTurns::Table)
                .col(ConversationTurns::ProjectId)
                .col(ConversationTurns::Archived)
                .col(ConversationTurns::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Orchestrations::Table)
                .col(text_id(Orchestrations::Id).primary_key())
                .col(text_id(Orchestrations::TenantId))
                .col(text_id(Orchestrations::ProjectId))
                .col(ColumnDef::new(Orchestrations::RequestId).string_len(128).null())
                // Fingerprint of the request body, to refuse a request_id reused for a different request.
                .col(ColumnDef::new(Orchestrations::RequestHash).string_len(64).not_null())
                // The stored response (JSON of the domain type), returned verbatim on an idempotent retry.
                .col(ColumnDef::new(Orchestrations::Response).text().not_null())
                .col(ColumnDef::new(Orchestrations::Tool).string_len(32).not_null())
                .col(ColumnDef::new(Orchestrations::Backend).string_len(16).not_null())
                .col(ColumnDef::new(Orchestrations::Degraded).boolean().not_null())
                .col(ColumnDef::new(Orchestrations::ImageCount).integer().not_null())
                .col(ColumnDef::new(Orchestrations::ResponseMs).double().not_null())
                .col(ColumnDef::new(Orchestrations::PromptTokens).integer().not_null())
                .col(millis(Orchestrations::CreatedAt))
                .foreign_key(&mut tenant_fk(Orchestrations::Table))
                .foreign_key(&mut project_fk(Orchestrations::Table))
                .to_owned(),
        )
        .await?;
        // NULL request ids do not collide in either database, so only keyed requests are unique.
        m.create_index(
            Index::create()
                .name("uq_orchestrations_request")
                .table(Orchestrations::Table)
                .col(Orchestrations::TenantId)
                .col(Orchestrations::RequestId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_orchestrations_project")
                .table(Orchestrations::Table)
                .col(Orchestrations::ProjectId)
                .col(Orchestrations::CreatedAt)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ImageAnalyses::Table)
                .col(text_id(ImageAnalyses::ProjectId))
                .col(text_id(ImageAnalyses::ImageId))
                .col(text_id(ImageAnalyses::TenantId))
                .col(ColumnDef::new(ImageAnalyses::OrchestrationId).string_len(128).null())
                .col(ColumnDef::new(ImageAnalyses::Status).string_len(16).not_null())
                .col(ColumnDef::new(ImageAnalyses::SourceUrl).text().null())
                .col(ColumnDef::new(ImageAnalyses::MimeType).string_len(64).null())
                .col(ColumnDef::new(ImageAnalyses::ByteSize).big_integer().null())
                .col(ColumnDef::new(ImageAnalyses::ContentSha256).string_len(64).null())
                // ImageFacts as JSON, once analysed.
                .col(ColumnDef::new(ImageAnalyses::Facts).text().null())
                .col(ColumnDef::new(ImageAnalyses::Analyzer).string_len(64).null())
                .col(ColumnDef::new(ImageAnalyses::ProcessingMs).double().null())
                .col(ColumnDef::new(ImageAnalyses::Error).text().null())
                .col(ColumnDef::new(ImageAnalyses::Attempts).integer().not_null().default(0))
                .col(millis(ImageAnalyses::CreatedAt))
                .col(millis_null(ImageAnalyses::CompletedAt))
                .primary_key(Index::create().col(ImageAnalyses::ProjectId).col(ImageAnalyses::ImageId))
                .foreign_key(&mut tenant_fk(ImageAnalyses::Table))
                .foreign_key(&mut project_fk(ImageAnalyses::Table))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_image_analyses_orchestration")
                .table(ImageAnalyses::Table)
                .col(ImageAnalyses::OrchestrationId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Jobs::Table)
                .col(text_id(Jobs::Id).primary_key())
                .col(text_id(Jobs::TenantId))
                .col(text_id(Jobs::ProjectId))
                .col(ColumnDef::new(Jobs::Kind).string_len(32).not_null())
                .col(text_id(Jobs::SubjectId))
                // Inline image bytes (or other input) the job needs; cleared when the job finishes.
                .col(ColumnDef::new(Jobs::Payload).blob().null())
                .col(ColumnDef::new(Jobs::Status).string_len(16).not_null())
                .col(ColumnDef::new(Jobs::Attempts).integer().not_null().default(0))
                .col(ColumnDef::new(Jobs::MaxAttempts).integer().not_null())
                .col(millis(Jobs::RunAfter))
                .col(millis_null(Jobs::LeaseUntil))
                .col(ColumnDef::new(Jobs::LeaseOwner).string_len(128).null())
                .col(ColumnDef::new(Jobs::LastError).text().null())
                .col(millis(Jobs::CreatedAt))
                .col(millis(Jobs::UpdatedAt))
                .col(millis_null(Jobs::StartedAt))
                .col(millis_null(Jobs::FinishedAt))
                .foreign_key(&mut tenant_fk(Jobs::Table))
                .foreign_key(&mut project_fk(Jobs::Table))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("idx_jobs_claim").table(Jobs::Table).col(Jobs::Status).col(Jobs::RunAfter).to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Events::Table)
                .col(ColumnDef::new(Events::Id).big_integer().not_null().auto_increment().primary_key())
                .col(text_id(Events::TenantId))
                .col(text_id(Events::ProjectId))
                .col(ColumnDef::new(Events::Cursor).big_integer().not_null())
                .col(ColumnDef::new(Events::EventType).string_len(32).not_null())
                .col(ColumnDef::new(Events::ImageId).string_len(128).null())
                .col(ColumnDef::new(Events::OrchestrationId).string_len(128).null())
                .col(ColumnDef::new(Events::Payload).text().not_null())
                .col(millis(Events::CreatedAt))
                .foreign_key(&mut tenant_fk(Events::Table))
                .foreign_key(&mut project_fk(Events::Table))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_events_project_cursor")
                .table(Events::Table)
                .col(Events::ProjectId)
                .col(Events::Cursor)
                .unique()
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Children first, so foreign keys never dangle.
        for table in [
            Events::Table.into_iden(),
            Jobs::Table.into_iden(),
            ImageAnalyses::Table.into_iden(),
            Orchestrations::Table.into_iden(),
            ConversationTurns::Table.into_iden(),
            Memories::Table.into_iden(),
            Scenes::Table.into_iden(),
            Projects::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            Tenants::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
