//! Reads that assemble a context packet: preferences, scenes and their
//! relationships, the latest image facts, the last conversation turns and
//! the images still being analysed. The queries run concurrently on the
//! read pool.

use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{
    Store,
    entities::{conversation_turns, image_analyses, memories, scenes},
    projects::{memory, project_row, scene},
};
use crate::{
    error::{Error, Result},
    model::{ConversationTurn, ImageFacts, ImageStatus, MemoryItem, MemoryType, Scene, TenantId, now_ms},
};

/// What a context packet is assembled from.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextRows {
    /// User preferences, highest confidence first, then most recently updated; at most
    /// [`ContextLimits::preferences`].
    pub preferences: Vec<MemoryItem>,
    /// Scene-relationship items, in key order.
    pub relationships: Vec<MemoryItem>,
    /// Scenes in position order.
    pub scenes: Vec<Scene>,
    /// Analysed images, most recently completed first.
    pub image_facts: Vec<(String, ImageFacts)>,
    /// The last unarchived turns, oldest first.
    pub turns: Vec<ConversationTurn>,
    /// Images waiting for or in analysis, oldest first.
    pub pending_image_ids: Vec<String>,
}

/// How much of each kind a context read returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextLimits {
    /// User preferences, the highest ranked.
    pub preferences: u32,
    /// Conversation turns.
    pub turns: u32,
    /// Analysed images.
    pub image_facts: u32,
    /// Pending images.
    pub pending_images: u32,
}

impl Store {
    /// Everything a context packet for `project_id` needs; PROJECT_NOT_FOUND
    /// when the project is not the tenant's.
    pub async fn context_rows(
        &self,
        tenant: &TenantId,
        project_id: &str,
        limits: ContextLimits,
    ) -> Result<ContextRows> {
        let db = self.reader();
        let now = now_ms();
        let memories_of = |memory_type: MemoryType| {
            memories::Entity::find()
                .filter(memories::Column::TenantId.eq(tenant.as_str()))
                .filter(memories::Column::ProjectId.eq(project_id))
                .filter(memories::Column::MemoryType.eq(memory_type.as_str()))
                .filter(
                    Condition::any()
                        .add(memories::Column::ExpiresAt.is_null())
                        .add(memories::Column::ExpiresAt.gt(now)),
                )
        };
        let preferences = memories_of(MemoryType::UserPreference)
            .order_by_desc(memories::Column::Confidence)
            .order_by_desc(memories::Column::UpdatedAt)
            .order_by_asc(memories::Column::Id)
            .limit(u64::from(limits.preferences))
            .all(db);
        let relationships = memories_of(MemoryType::SceneRelationship).order_by_asc(memories::Column::Key).all(db);
        let scene_rows = scenes::Entity::find()
            .filter(scenes::Column::TenantId.eq(tenant.as_str()))
            .filter(scenes::Column::ProjectId.eq(project_id))
            .order_by_asc(scenes::Column::Position)
            .order_by_asc(scenes::Column::SceneId)
            .all(db);
        let images = image_analyses::Entity::find()
            .filter(image_analyses::Column::TenantId.eq(tenant.as_str()))
            .filter(image_analyses::Column::ProjectId.eq(project_id))
            .filter(image_analyses::Column::Status.eq(ImageStatus::Ready.as_str()))
            .filter(image_analyses::Column::Facts.is_not_null())
            // (project_id, status, completed_at, created_at, image_id) is indexed: ten entries read
            // however many analyses failed; created_at only breaks ties.
            .order_by_desc(image_analyses::Column::CompletedAt)
            .order_by_desc(image_analyses::Column::CreatedAt)
            .order_by_desc(image_analyses::Column::ImageId)
            .limit(u64::from(limits.image_facts))
            .all(db);
        let turns = conversation_turns::Entity::find()
            .filter(conversation_turns::Column::TenantId.eq(tenant.as_str()))
            .filter(conversation_turns::Column::ProjectId.eq(project_id))
            .filter(conversation_turns::Column::Archived.eq(false))
            // Turn ids are UUIDv7: id order is creation order, and (project_id, archived, id) is indexed.
            .order_by_desc(conversation_turns::Column::Id)
            .limit(u64::from(limits.turns))
            .all(db);
        let pending = image_analyses::Entity::find()
            .select_only()
            .column(image_analyses::Column::ImageId)
            .filter(image_analyses::Column::TenantId.eq(tenant.as_str()))
            .filter(image_analyses::Column::ProjectId.eq(project_id))
            // An open analysis has no completion time: the (project_id, completed_at, created_at)
            // index lists exactly the open ones, in acceptance order.
            .filter(image_analyses::Column::CompletedAt.is_null())
            .filter(
                image_analyses::Column::Status.is_in([ImageStatus::Pending.as_str(), ImageStatus::Running.as_str()]),
            )
            .order_by_asc(image_analyses::Column::CreatedAt)
            .order_by_asc(image_analyses::Column::ImageId)
            .limit(u64::from(limits.pending_images))
            .into_tuple::<String>()
            .all(db);
        let (project, preferences, relationships, scene_rows, images, turns, pending) = futures::try_join!(
            async { project_row(db, tenant, project_id).await },
            async { Ok::<_, Error>(preferences.await?) },
            async { Ok::<_, Error>(relationships.await?) },
            async { Ok::<_, Error>(scene_rows.await?) },
            async { Ok::<_, Error>(images.await?) },
            async { Ok::<_, Error>(turns.await?) },
            async { Ok::<_, Error>(pending.await?) },
        )?;
        let _ = project;
        let image_facts = images
            .into_iter()
            .filter_map(|row| {
                let facts = row.facts.as_deref()?;
                match serde_json::from_str::<ImageFacts>(facts) {
                    Ok(f) => Some((row.image_id, f)),
                    Err(err) => {
                        tracing::warn!(image_id = %row.image_id, error = %err, "stored image facts do not parse; left out of the context");
                        None
                    }
                }
            })
            .collect();
        let mut turns = turns.into_iter().map(turn).collect::<Vec<_>>();
        turns.reverse();
        Ok(ContextRows {
            preferences: preferences.into_iter().map(memory).collect::<Result<_>>()?,
            relationships: relationships.into_iter().map(memory).collect::<Result<_>>()?,
            scenes: scene_rows.into_iter().map(scene).collect::<Result<_>>()?,
            image_facts,
            turns,
            pending_image_ids: pending,
        })
    }
}

pub(crate) fn turn(row: conversation_turns::Model) -> ConversationTurn {
    ConversationTurn {
        id: row.id,
        orchestration_id: row.orchestration_id,
        prompt: row.prompt,
        decision_summary: row.decision_summary,
        token_count: row.token_count.max(0) as u32,
        created_at: row.created_at,
    }
}
