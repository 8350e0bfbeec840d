//! Orchestration writes and idempotency lookups.
//!
//! An orchestration is stored in one transaction that the domain drives
//! through [`OrchestrationTx`]: it opens with the project row locked, so
//! writers to one project queue (PostgreSQL `FOR UPDATE`; SQLite's write
//! lock already serialises them), and nothing is visible until `commit`.

use sea_orm::{
    ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Set, SqlErr,
    sea_query::{Expr, OnConflict},
};

use super::{
    Backend, Store,
    entities::{conversation_turns, memories, orchestrations, projects},
    projects::memory,
};
use crate::{
    error::{Error, Reason, Result},
    model::{ConversationTurn, MemoryItem, MemoryPut, MemoryType, TenantId, new_id, now_ms},
};

/// An orchestration stored under a request id.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRequest {
    /// The orchestration.
    pub orchestration_id: String,
    /// Project it ran on.
    pub project_id: String,
    /// Fingerprint of the request that stored it.
    pub request_hash: String,
    /// The response, as JSON of the domain type.
    pub response: String,
}

/// A conversation turn to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTurn {
    /// What the user asked.
    pub prompt: String,
    /// What brain decided, in one line.
    pub decision_summary: String,
    /// Tokens of the turn's lines.
    pub token_count: u32,
}

/// The orchestration row.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrchestration {
    /// Id.
    pub id: String,
    /// Idempotency key, if any.
    pub request_id: Option<String>,
    /// Fingerprint of the request.
    pub request_hash: String,
    /// The response as JSON.
    pub response: String,
    /// Tool name ("workflow" or "clarification" for the other outcomes).
    pub tool: String,
    /// Decider name.
    pub backend: String,
    /// Memory could not be read.
    pub degraded: bool,
    /// Images attached.
    pub image_count: u32,
    /// Time to respond so far, in ms.
    pub response_ms: f64,
    /// Tokens of the enhanced prompt.
    pub prompt_tokens: u32,
    /// When it was stored.
    pub created_at: i64,
}

/// Whether an orchestration row went in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Stored.
    Yes,
    /// Another orchestration of the tenant holds the request id; the
    /// transaction is spoiled and must be dropped.
    RequestIdTaken,
}

impl Store {
    /// The orchestration stored under `request_id` for the tenant, if any.
    pub async fn find_request(&self, tenant: &TenantId, request_id: &str) -> Result<Option<StoredRequest>> {
        find_request_in(self.reader(), tenant, request_id).await
    }

    /// Opens the write transaction of an orchestration with the project row
    /// locked; PROJECT_NOT_FOUND when the project is not the tenant's.
    ///
    /// One statement both locks and touches the project: an UPDATE takes the
    /// row lock on PostgreSQL (SQLite's write lock is already held), and no
    /// matching row means the project is not the tenant's.
    pub async fn begin_orchestration(&self, tenant: &TenantId, project_id: &str) -> Result<OrchestrationTx> {
        let txn = self.begin_write().await?;
        let touched = projects::Entity::update_many()
            .col_expr(projects::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(projects::Column::Id.eq(project_id))
            .filter(projects::Column::TenantId.eq(tenant.as_str()))
            .exec(&txn)
            .await?;
        if touched.rows_affected == 0 {
            return Err(
                Error::new(Reason::ProjectNotFound, format!("project {project_id} not found")).with_field("project_id")
            );
        }
        Ok(OrchestrationTx { txn, backend: self.backend, tenant: tenant.clone(), project_id: project_id.to_owned() })
    }
}

async fn find_request_in(
    conn: &impl sea_orm::ConnectionTrait,
    tenant: &TenantId,
    request_id: &str,
) -> Result<Option<StoredRequest>> {
    let row = orchestrations::Entity::find()
        .filter(orchestrations::Column::TenantId.eq(tenant.as_str()))
        .filter(orchestrations::Column::RequestId.eq(request_id))
        .one(conn)
        .await?;
    Ok(row.map(|r| StoredRequest {
        orchestration_id: r.id,
        project_id: r.project_id,
        request_hash: r.request_hash,
        response: r.response,
    }))
}

/// The open write transaction of one orchestration. Dropping it without
/// [`OrchestrationTx::commit`] rolls everything back.
pub struct OrchestrationTx {
    txn: DatabaseTransaction,
    #[allow(dead_code)] // for image intake, which may lock differently per backend
    backend: Backend,
    tenant: TenantId,
    project_id: String,
}

/// A memory item to write in an orchestration.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryWrite {
    /// The item.
    pub put: MemoryPut,
    /// Tokens of its rendered line.
    pub token_count: u32,
    /// The occurrence count to store; None counts it as PutMemory does.
    pub occurrences: Option<u32>,
}

impl OrchestrationTx {
    /// The transaction, for other store modules that write inside it (image intake).
    pub(crate) fn txn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// The orchestration already stored under `request_id`, seen from inside the lock.
    pub async fn find_request(&self, request_id: &str) -> Result<Option<StoredRequest>> {
        find_request_in(&self.txn, &self.tenant, request_id).await
    }

    /// The project's stored user preferences with these keys (expired ones included: they are replaced).
    pub async fn preferences(&self, keys: &[String]) -> Result<Vec<MemoryItem>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let rows = memories::Entity::find()
            .filter(memories::Column::ProjectId.eq(self.project_id.as_str()))
            .filter(memories::Column::MemoryType.eq(MemoryType::UserPreference.as_str()))
            .filter(memories::Column::Key.is_in(keys.iter().map(String::as_str)))
            .all(&self.txn)
            .await?;
        rows.into_iter().map(memory).collect()
    }

    /// Creates or replaces memory items of this project; ids and creation
    /// times of existing items stay. Keys must be distinct. An item's
    /// occurrence count is either given (the caller merged it with the
    /// stored item under the project lock) or, as with PutMemory, counted
    /// here: the same value again is one more, a different value starts
    /// over at one. One statement per kind of count.
    pub async fn upsert_memories(&self, writes: &[MemoryWrite], now: i64) -> Result<Vec<MemoryItem>> {
        let (given, counted): (Vec<&MemoryWrite>, Vec<&MemoryWrite>) =
            writes.iter().partition(|w| w.occurrences.is_some());
        let mut out = Vec::with_capacity(writes.len());
        for (batch, count_here) in [(given, false), (counted, true)] {
            if batch.is_empty() {
                continue;
            }
            let rows = batch.iter().map(|w| self.memory_row(w, now));
            let occurrences = if count_here {
                Expr::cust(
                    r#"CASE WHEN "memories"."value" = "excluded"."value" THEN "memories"."occurrences" + 1 ELSE 1 END"#,
                )
            } else {
                Expr::cust(r#""excluded"."occurrences""#)
            };
            let on_conflict =
                OnConflict::columns([memories::Column::ProjectId, memories::Column::MemoryType, memories::Column::Key])
                    .update_columns([
                        memories::Column::Value,
                        memories::Column::Confidence,
                        memories::Column::Source,
                        memories::Column::SourcePrompt,
                        memories::Column::TokenCount,
                        memories::Column::ExpiresAt,
                        memories::Column::UpdatedAt,
                    ])
                    .value(memories::Column::Occurrences, occurrences)
                    .to_owned();
            let rows =
                memories::Entity::insert_many(rows).on_conflict(on_conflict).exec_with_returning(&self.txn).await?;
            for row in rows {
                out.push(memory(row)?);
            }
        }
        Ok(out)
    }

    fn memory_row(&self, write: &MemoryWrite, now: i64) -> memories::ActiveModel {
        let put = &write.put;
        debug_assert_eq!(put.project_id, self.project_id);
        memories::ActiveModel {
            id: Set(new_id()),
            tenant_id: Set(self.tenant.0.clone()),
            project_id: Set(self.project_id.clone()),
            memory_type: Set(put.memory_type.as_str().to_owned()),
            key: Set(put.key.clone()),
            value: Set(put.value.clone()),
            confidence: Set(put.confidence),
            source: Set(put.source.as_str().to_owned()),
            source_prompt: Set(put.source_prompt.clone()),
            token_count: Set(i32::try_from(write.token_count).unwrap_or(i32::MAX)),
            occurrences: Set(i32::try_from(write.occurrences.unwrap_or(1)).unwrap_or(i32::MAX)),
            expires_at: Set(put.ttl_ms.map(|ttl| now.saturating_add(ttl))),
            created_at: Set(now),
            updated_at: Set(now),
        }
    }

    /// Stores a conversation turn.
    pub async fn insert_turn(
        &self,
        orchestration_id: &str,
        turn: &NewTurn,
        id: String,
        now: i64,
    ) -> Result<ConversationTurn> {
        let token_count = i32::try_from(turn.token_count).unwrap_or(i32::MAX);
        conversation_turns::Entity::insert(conversation_turns::ActiveModel {
            id: Set(id.clone()),
            tenant_id: Set(self.tenant.0.clone()),
            project_id: Set(self.project_id.clone()),
            orchestration_id: Set(Some(orchestration_id.to_owned())),
            prompt: Set(turn.prompt.clone()),
            decision_summary: Set(turn.decision_summary.clone()),
            token_count: Set(token_count),
            archived: Set(false),
            created_at: Set(now),
        })
        .exec_without_returning(&self.txn)
        .await?;
        Ok(ConversationTurn {
            id,
            orchestration_id: Some(orchestration_id.to_owned()),
            prompt: turn.prompt.clone(),
            decision_summary: turn.decision_summary.clone(),
            token_count: token_count.max(0) as u32,
            created_at: now,
        })
    }

    /// Stores the orchestration row; [`Inserted::RequestIdTaken`] when a
    /// concurrent orchestration got the request id first.
    pub async fn insert_orchestration(&self, row: &NewOrchestration) -> Result<Inserted> {
        let result = orchestrations::Entity::insert(orchestrations::ActiveModel {
            id: Set(row.id.clone()),
            tenant_id: Set(self.tenant.0.clone()),
            project_id: Set(self.project_id.clone()),
            request_id: Set(row.request_id.clone()),
            request_hash: Set(row.request_hash.clone()),
            response: Set(row.response.clone()),
            tool: Set(row.tool.clone()),
            backend: Set(row.backend.clone()),
            degraded: Set(row.degraded),
            image_count: Set(i32::try_from(row.image_count).unwrap_or(i32::MAX)),
            response_ms: Set(row.response_ms),
            prompt_tokens: Set(i32::try_from(row.prompt_tokens).unwrap_or(i32::MAX)),
            created_at: Set(row.created_at),
        })
        .exec_without_returning(&self.txn)
        .await;
        match result {
            Ok(_) => Ok(Inserted::Yes),
            Err(err) if row.request_id.is_some() && is_unique_violation(&err) => Ok(Inserted::RequestIdTaken),
            Err(err) => Err(err.into()),
        }
    }

    /// Commits (the project was marked changed when the transaction began).
    pub async fn commit(self) -> Result<()> {
        self.txn.commit().await.map_err(Error::from)
    }
}

fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}
