//! Orchestration writes and idempotency lookups.
//!
//! Orchestrations are stored in batches (group commit): the domain's writer
//! opens one [`OrchestrationTx`] for every orchestration queued at that
//! moment, and each step below is one statement for the whole batch, so the
//! per-statement cost (on SQLite, a hand-off to the connection's thread; on
//! PostgreSQL, a round trip) is paid once per batch rather than once per
//! prompt. The transaction opens with the batch's projects locked (in id
//! order on PostgreSQL, so two batches never wait on each other in a cycle;
//! SQLite's write lock already serialises them), and nothing is visible
//! until `commit`.

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, SqlErr,
    sea_query::{Expr, OnConflict},
};

use super::{
    Backend, Store, WriteTx,
    entities::{conversation_turns, memories, orchestrations, projects},
    projects::memory,
};
use crate::{
    error::Result,
    model::{ConversationTurn, MemoryItem, MemoryType, TenantId},
};

/// An orchestration stored under a request id.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRequest {
    pub orchestration_id: String,
    pub project_id: String,
    /// Fingerprint of the request that stored it: a replay under the same
    /// request id must match it, or the id was reused for another request.
    pub request_hash: String,
    /// The response, as JSON of the domain type.
    pub response: String,
}

/// The orchestration row.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrchestration {
    pub tenant_id: TenantId,
    pub project_id: String,
    pub id: String,
    /// Idempotency key, if any.
    pub request_id: Option<String>,
    /// SHA-256 over project, prompt, image digests and budget (see [`StoredRequest::request_hash`]).
    pub request_hash: String,
    /// The response as JSON, kept only for replay: empty without a request id.
    pub response: String,
    /// Tool name ("workflow" or "clarification" for the other outcomes).
    pub tool: String,
    /// The decider that decided: `rules` or `openai` (`rules` after a fallback).
    pub backend: String,
    /// Memory could not be read.
    pub degraded: bool,
    /// Images attached.
    pub image_count: u32,
    /// Time to respond so far, in ms.
    pub response_ms: f64,
    /// Tokens of the enhanced prompt.
    pub prompt_tokens: u32,
    /// When it was stored, epoch ms.
    pub created_at: i64,
}

/// A conversation turn to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTurn {
    pub tenant_id: TenantId,
    pub project_id: String,
    /// The turn (its `orchestration_id` set).
    pub turn: ConversationTurn,
}

/// A memory item's state after the batch, as the domain computed it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryState {
    pub tenant_id: TenantId,
    /// The item: an existing item keeps its id and creation time.
    pub item: MemoryItem,
}

/// Whether the orchestration rows went in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Every row went in (also when there were none).
    Yes,
    /// Another orchestration of the tenant holds one of the request ids
    /// (written by another replica meanwhile); the transaction is spoiled
    /// and must be dropped.
    RequestIdTaken,
}

impl Store {
    /// The orchestration stored under `request_id` for the tenant, if any.
    pub async fn find_request(&self, tenant: &TenantId, request_id: &str) -> Result<Option<StoredRequest>> {
        let row = orchestrations::Entity::find()
            .filter(orchestrations::Column::TenantId.eq(tenant.as_str()))
            .filter(orchestrations::Column::RequestId.eq(request_id))
            .one(self.reader())
            .await?;
        Ok(row.map(stored_request))
    }

    /// Opens the write transaction of a batch of orchestrations with their
    /// projects locked and touched. A project that is not its tenant's is
    /// left out; [`OrchestrationTx::holds`] tells.
    ///
    /// Project ids are primary keys, so they are looked up by id and the
    /// tenant is checked here (SQLite has no row-value `IN` list).
    pub async fn begin_orchestrations(&self, wanted: &[(TenantId, String)], now: i64) -> Result<OrchestrationTx> {
        let txn = self.begin_write().await?;
        let ids: Vec<&str> = wanted.iter().map(|(_, p)| p.as_str()).collect();
        let mut query = projects::Entity::find()
            .select_only()
            .columns([projects::Column::Id, projects::Column::TenantId])
            .filter(projects::Column::Id.is_in(ids))
            .filter(projects::Column::DeletedAt.is_null())
            .order_by_asc(projects::Column::Id);
        if self.backend == Backend::Postgres {
            query = query.lock_exclusive();
        }
        let rows: Vec<(String, String)> = query.into_tuple().all(&txn).await?;
        let held: HashSet<(TenantId, String)> =
            rows.into_iter().map(|(id, tenant)| (TenantId(tenant), id)).filter(|pair| wanted.contains(pair)).collect();
        if !held.is_empty() {
            projects::Entity::update_many()
                .col_expr(projects::Column::UpdatedAt, Expr::value(now))
                .filter(projects::Column::Id.is_in(held.iter().map(|(_, p)| p.as_str())))
                .exec(&txn)
                .await?;
        }
        Ok(OrchestrationTx { txn, held })
    }
}

fn stored_request(r: orchestrations::Model) -> StoredRequest {
    StoredRequest {
        orchestration_id: r.id,
        project_id: r.project_id,
        request_hash: r.request_hash,
        response: r.response,
    }
}

/// The open write transaction of a batch of orchestrations. Dropping it
/// without [`OrchestrationTx::commit`] rolls everything back.
pub struct OrchestrationTx {
    txn: WriteTx,
    held: HashSet<(TenantId, String)>,
}

impl OrchestrationTx {
    /// The transaction, for writes of other kinds inside it (image intake).
    pub fn txn(&self) -> &WriteTx {
        &self.txn
    }

    /// Whether the project exists, is the tenant's, and is locked by this transaction.
    pub fn holds(&self, tenant: &TenantId, project_id: &str) -> bool {
        self.held.contains(&(tenant.clone(), project_id.to_owned()))
    }

    /// The orchestrations already stored under these (tenant, request id)
    /// pairs, seen from inside the locks.
    pub async fn find_requests(
        &self,
        wanted: &[(TenantId, String)],
    ) -> Result<HashMap<(TenantId, String), StoredRequest>> {
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        // Both columns, so the lookup uses the (tenant_id, request_id) unique index.
        let mut tenants: Vec<&str> = wanted.iter().map(|(t, _)| t.as_str()).collect();
        tenants.sort_unstable();
        tenants.dedup();
        let rows = orchestrations::Entity::find()
            .filter(orchestrations::Column::TenantId.is_in(tenants))
            .filter(orchestrations::Column::RequestId.is_in(wanted.iter().map(|(_, r)| r.as_str())))
            .all(&self.txn)
            .await?;
        let mut found = HashMap::new();
        for row in rows {
            let Some(request_id) = row.request_id.clone() else { continue };
            let key = (TenantId(row.tenant_id.clone()), request_id);
            if wanted.contains(&key) {
                found.insert(key, stored_request(row));
            }
        }
        Ok(found)
    }

    /// Stored memory items of these projects with any of these keys
    /// (a superset of what the batch touches; expired ones included: they are replaced).
    pub async fn memories(&self, project_ids: &[&str], keys: &[&str]) -> Result<Vec<MemoryItem>> {
        if project_ids.is_empty() || keys.is_empty() {
            return Ok(Vec::new());
        }
        // Every type named, so both databases look the keys up in the (project, type, key)
        // unique index instead of walking all of a project's items for them.
        let rows = memories::Entity::find()
            .filter(memories::Column::ProjectId.is_in(project_ids.iter().copied()))
            .filter(memories::Column::MemoryType.is_in(MemoryType::ALL.map(MemoryType::as_str)))
            .filter(memories::Column::Key.is_in(keys.iter().copied()))
            .all(&self.txn)
            .await?;
        rows.into_iter().map(memory).collect()
    }

    /// Writes the memory items' final states, one statement: existing rows
    /// (same project, type and key) are replaced but keep their id and
    /// creation time. Keys must be distinct.
    pub async fn put_memories(&self, states: &[MemoryState]) -> Result<()> {
        if states.is_empty() {
            return Ok(());
        }
        let rows = states.iter().map(|s| {
            let m = &s.item;
            memories::ActiveModel {
                id: Set(m.id.clone()),
                tenant_id: Set(s.tenant_id.0.clone()),
                project_id: Set(m.project_id.clone()),
                memory_type: Set(m.memory_type.as_str().to_owned()),
                key: Set(m.key.clone()),
                value: Set(m.value.clone()),
                confidence: Set(m.confidence),
                source: Set(m.source.as_str().to_owned()),
                source_prompt: Set(m.source_prompt.clone()),
                token_count: Set(i32::try_from(m.token_count).unwrap_or(i32::MAX)),
                occurrences: Set(i32::try_from(m.occurrences).unwrap_or(i32::MAX)),
                expires_at: Set(m.expires_at),
                created_at: Set(m.created_at),
                updated_at: Set(m.updated_at),
            }
        });
        let on_conflict =
            OnConflict::columns([memories::Column::ProjectId, memories::Column::MemoryType, memories::Column::Key])
                .update_columns([
                    memories::Column::Value,
                    memories::Column::Confidence,
                    memories::Column::Source,
                    memories::Column::SourcePrompt,
                    memories::Column::TokenCount,
                    memories::Column::Occurrences,
                    memories::Column::ExpiresAt,
                    memories::Column::UpdatedAt,
                ])
                .to_owned();
        memories::Entity::insert_many(rows).on_conflict(on_conflict).exec_without_returning(&self.txn).await?;
        Ok(())
    }

    /// Stores conversation turns, one statement.
    pub async fn insert_turns(&self, turns: &[NewTurn]) -> Result<()> {
        if turns.is_empty() {
            return Ok(());
        }
        let rows = turns.iter().map(|t| conversation_turns::ActiveModel {
            id: Set(t.turn.id.clone()),
            tenant_id: Set(t.tenant_id.0.clone()),
            project_id: Set(t.project_id.clone()),
            orchestration_id: Set(t.turn.orchestration_id.clone()),
            prompt: Set(t.turn.prompt.clone()),
            decision_summary: Set(t.turn.decision_summary.clone()),
            token_count: Set(i32::try_from(t.turn.token_count).unwrap_or(i32::MAX)),
            archived: Set(false),
            created_at: Set(t.turn.created_at),
        });
        conversation_turns::Entity::insert_many(rows).exec_without_returning(&self.txn).await?;
        Ok(())
    }

    /// Stores the orchestration rows, one statement; [`Inserted::RequestIdTaken`]
    /// when another writer got one of the request ids first.
    pub async fn insert_orchestrations(&self, rows: &[NewOrchestration]) -> Result<Inserted> {
        if rows.is_empty() {
            return Ok(Inserted::Yes);
        }
        let models = rows.iter().map(|row| orchestrations::ActiveModel {
            id: Set(row.id.clone()),
            tenant_id: Set(row.tenant_id.0.clone()),
            project_id: Set(row.project_id.clone()),
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
        });
        let with_request_ids = rows.iter().any(|r| r.request_id.is_some());
        match orchestrations::Entity::insert_many(models).exec_without_returning(&self.txn).await {
            Ok(_) => Ok(Inserted::Yes),
            Err(err) if with_request_ids && is_unique_violation(&err) => Ok(Inserted::RequestIdTaken),
            Err(err) => Err(err.into()),
        }
    }

    pub async fn commit(self) -> Result<()> {
        self.txn.commit().await
    }
}

fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}
