//! Assembles a context packet from the store.

use std::collections::HashMap;

use super::packet::{ContextPacket, ImageFactsSummary, PreparedPacket, SceneContext, sort_preferences, sort_turns};
use crate::{
    error::Result,
    model::{Millis, TenantId, now_ms},
    store::{ContextLimits, ContextRows, Store},
};

/// Analysed images in a packet: the most recently completed ones.
pub const MAX_IMAGE_FACTS: u32 = 10;
/// Pending images listed in a packet.
pub const MAX_PENDING_IMAGES: u32 = 50;

/// How much of a project's memory a packet holds (the configured part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketLimits {
    /// The last conversation turns.
    pub recent_turns: u32,
    /// The highest ranked user preferences.
    pub preferences: u32,
}

/// Reads the project's memory and prepares the packet (every line rendered
/// and counted). PROJECT_NOT_FOUND when the project is not the tenant's.
pub async fn from_store(
    store: &Store,
    tenant: &TenantId,
    project_id: &str,
    limits: PacketLimits,
) -> Result<PreparedPacket> {
    let limits = ContextLimits {
        preferences: limits.preferences,
        turns: limits.recent_turns,
        image_facts: MAX_IMAGE_FACTS,
        pending_images: MAX_PENDING_IMAGES,
    };
    let rows = store.context_rows(tenant, project_id, limits).await?;
    Ok(PreparedPacket::prepare(assemble(project_id, rows, now_ms())))
}

/// Puts the rows in packet order: relationship items go under the scene
/// their key names (items about scenes that no longer exist are left out).
pub fn assemble(project_id: &str, mut rows: ContextRows, built_at: Millis) -> ContextPacket {
    // Sorted here rather than trusted from SQL, whose collation may order ties
    // differently per database: a packet updated in place after a write must
    // equal a fresh build of the same state.
    sort_preferences(&mut rows.preferences);
    sort_turns(&mut rows.turns);
    let mut relationships: HashMap<String, Vec<_>> = HashMap::new();
    for item in rows.relationships {
        relationships.entry(item.key.clone()).or_default().push(item);
    }
    ContextPacket {
        project_id: project_id.to_owned(),
        preferences: rows.preferences,
        scenes: rows
            .scenes
            .into_iter()
            .map(|scene| {
                let relationships = relationships.remove(&scene.scene_id).unwrap_or_default();
                SceneContext { scene, relationships }
            })
            .collect(),
        image_facts: rows
            .image_facts
            .into_iter()
            .map(|(image_id, facts)| ImageFactsSummary { image_id, facts })
            .collect(),
        recent_turns: rows.turns,
        pending_image_ids: rows.pending_image_ids,
        built_at,
    }
}

/// When the first memory item in the packet expires, if any: a cached packet is stale from then on.
pub fn first_expiry(packet: &ContextPacket) -> Option<Millis> {
    packet
        .preferences
        .iter()
        .chain(packet.scenes.iter().flat_map(|s| s.relationships.iter()))
        .filter_map(|m| m.expires_at)
        .min()
}
