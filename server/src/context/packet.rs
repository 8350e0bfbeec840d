//! The context packet: what brain remembers about a project, assembled for
//! one prompt, and its prepared form with every line rendered and counted.

use serde::{Deserialize, Serialize};

use super::{build::PacketLimits, render, tokens};
use crate::model::{ConversationTurn, ImageFacts, MemoryItem, MemoryType, Millis, Scene};

/// A scene with what brain remembers about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneContext {
    /// The scene.
    pub scene: Scene,
    /// Scene-relationship memory items keyed by this scene's id.
    pub relationships: Vec<MemoryItem>,
}

/// One analysed image's facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageFactsSummary {
    /// The image.
    pub image_id: String,
    /// Its facts.
    pub facts: ImageFacts,
}

/// The project memory assembled for a prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextPacket {
    /// The project.
    pub project_id: String,
    /// User preferences, highest confidence first (ties: most recently updated first).
    pub preferences: Vec<MemoryItem>,
    /// Scenes in position order, with their relationships.
    pub scenes: Vec<SceneContext>,
    /// Latest image facts, newest first.
    pub image_facts: Vec<ImageFactsSummary>,
    /// Last conversation turns, oldest first.
    pub recent_turns: Vec<ConversationTurn>,
    /// Images accepted but not analysed yet, oldest first.
    pub pending_image_ids: Vec<String>,
    /// When the packet was assembled from the store.
    pub built_at: Millis,
}

impl ContextPacket {
    /// A packet with nothing in it (a new project, or memory that could not be read).
    pub fn empty(project_id: &str, built_at: Millis) -> Self {
        Self {
            project_id: project_id.to_owned(),
            preferences: Vec::new(),
            scenes: Vec::new(),
            image_facts: Vec::new(),
            recent_turns: Vec::new(),
            pending_image_ids: Vec::new(),
            built_at,
        }
    }

    /// The scenes alone, in position order.
    pub fn scene_list(&self) -> Vec<Scene> {
        self.scenes.iter().map(|s| s.scene.clone()).collect()
    }

    /// The packet after an orchestration's write: its memory items replace
    /// those with the same key (or join), its turn is appended and the oldest
    /// turns beyond `limits.recent_turns` leave, the lowest ranked preferences
    /// beyond `limits.preferences` too. Orders stay as the store reads them,
    /// so the result equals a fresh build of the same state.
    ///
    /// None when only the store can say: a packet holding as many preferences
    /// as the limit may have left lower ranked ones out, so when a write lowers
    /// the rank of a preference it holds, the one that now belongs in its place
    /// may be one this packet never read.
    pub fn after_write(
        &self,
        memories: &[MemoryItem],
        turn: &ConversationTurn,
        limits: PacketLimits,
        built_at: Millis,
    ) -> Option<ContextPacket> {
        let preference_limit = limits.preferences as usize;
        let maybe_truncated = self.preferences.len() >= preference_limit;
        let mut next = self.clone();
        for item in memories {
            match item.memory_type {
                MemoryType::UserPreference => {
                    let lowered = next
                        .preferences
                        .iter()
                        .find(|m| m.key == item.key)
                        .is_some_and(|held| rank_order(item, held) == std::cmp::Ordering::Greater);
                    if maybe_truncated && lowered {
                        return None;
                    }
                    upsert(&mut next.preferences, item);
                }
                MemoryType::SceneRelationship => {
                    if let Some(scene) = next.scenes.iter_mut().find(|s| s.scene.scene_id == item.key) {
                        upsert(&mut scene.relationships, item);
                    }
                }
                MemoryType::ConversationContext => {}
            }
        }
        sort_preferences(&mut next.preferences);
        next.preferences.truncate(preference_limit);
        next.recent_turns.push(turn.clone());
        sort_turns(&mut next.recent_turns);
        let excess = next.recent_turns.len().saturating_sub(limits.recent_turns as usize);
        next.recent_turns.drain(..excess);
        next.built_at = built_at;
        Some(next)
    }
}

fn upsert(items: &mut Vec<MemoryItem>, item: &MemoryItem) {
    match items.iter_mut().find(|m| m.key == item.key) {
        Some(existing) => *existing = item.clone(),
        None => items.push(item.clone()),
    }
}

/// Highest confidence first, then most recently updated, then by id.
pub fn sort_preferences(items: &mut [MemoryItem]) {
    items.sort_by(rank_order);
}

/// The order of [`sort_preferences`] (and of the store's ranked read): Less ranks higher.
fn rank_order(a: &MemoryItem, b: &MemoryItem) -> std::cmp::Ordering {
    b.confidence.total_cmp(&a.confidence).then(b.updated_at.cmp(&a.updated_at)).then_with(|| a.id.cmp(&b.id))
}

/// Oldest first.
pub fn sort_turns(turns: &mut [ConversationTurn]) {
    turns.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
}

/// A rendered line and its o200k_base token count.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The text, ending in '\n'.
    pub text: String,
    /// Its tokens.
    pub tokens: u32,
}

impl Line {
    /// A line whose count was stored when its item was written.
    fn stored(text: String, tokens: u32) -> Self {
        Self { text, tokens }
    }

    /// A line counted now (glue that is not stored: scene headings, image facts, pending images).
    fn counted(text: String) -> Self {
        let tokens = tokens::count(&text);
        Self { text, tokens }
    }
}

/// A scene's lines.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneLines {
    /// The heading (name, position, id); never dropped.
    pub heading: Line,
    /// The summary, when the scene has one.
    pub summary: Option<Line>,
    /// Its relationship items.
    pub relationships: Vec<Line>,
}

/// A packet with every line rendered and counted once, so a context build
/// only sums counts and tokenizes the prompt. This is what the context cache
/// holds.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedPacket {
    /// The packet.
    pub packet: ContextPacket,
    /// One line per preference, parallel to `packet.preferences`.
    pub preferences: Vec<Line>,
    /// Per scene, parallel to `packet.scenes`.
    pub scenes: Vec<SceneLines>,
    /// One line per image, parallel to `packet.image_facts`.
    pub image_facts: Vec<Line>,
    /// Two lines per turn (one entry), parallel to `packet.recent_turns`.
    pub turns: Vec<Line>,
    /// One line per pending image.
    pub pending_images: Vec<Line>,
}

impl PreparedPacket {
    /// Renders every line; stored counts are used for memory items, scene
    /// summaries and turns, the rest is counted here.
    pub fn prepare(packet: ContextPacket) -> Self {
        Self::prepare_with(packet, Line::counted)
    }

    /// Like [`PreparedPacket::prepare`] for a packet derived from `previous`
    /// (the packet after a write): a glue line with the same text as one of
    /// `previous` keeps its count instead of being tokenized again.
    pub fn prepare_from(packet: ContextPacket, previous: &PreparedPacket) -> Self {
        let known: Vec<&Line> = previous
            .scenes
            .iter()
            .map(|s| &s.heading)
            .chain(&previous.image_facts)
            .chain(&previous.pending_images)
            .collect();
        Self::prepare_with(packet, |text| match known.iter().find(|l| l.text == text) {
            Some(line) => Line { text, tokens: line.tokens },
            None => Line::counted(text),
        })
    }

    fn prepare_with(packet: ContextPacket, glue: impl Fn(String) -> Line) -> Self {
        let preferences =
            packet.preferences.iter().map(|m| Line::stored(render::memory_item_line(m), m.token_count)).collect();
        let scenes = packet
            .scenes
            .iter()
            .map(|s| SceneLines {
                heading: glue(render::scene_heading_line(&s.scene)),
                summary: Some(render::scene_summary_line(&s.scene.summary))
                    .filter(|l| !l.is_empty())
                    .map(|l| Line::stored(l, s.scene.summary_tokens)),
                relationships: s
                    .relationships
                    .iter()
                    .map(|m| Line::stored(render::memory_item_line(m), m.token_count))
                    .collect(),
            })
            .collect();
        let image_facts =
            packet.image_facts.iter().map(|i| glue(render::image_facts_line(&i.image_id, &i.facts))).collect();
        let turns = packet
            .recent_turns
            .iter()
            .map(|t| Line::stored(render::turn_lines(&t.prompt, &t.decision_summary), t.token_count))
            .collect();
        let pending_images = packet.pending_image_ids.iter().map(|id| glue(render::pending_image_line(id))).collect();
        Self { packet, preferences, scenes, image_facts, turns, pending_images }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        context::build::{PacketLimits, assemble},
        model::MemorySource,
        store::ContextRows,
    };

    fn item(id: &str, memory_type: MemoryType, key: &str, value: &str, confidence: f64, at: Millis) -> MemoryItem {
        MemoryItem {
            id: id.into(),
            project_id: "p".into(),
            memory_type,
            key: key.into(),
            value: value.into(),
            confidence,
            source: MemorySource::Prompt,
            source_prompt: None,
            token_count: tokens::count(&render::memory_line(key, value, confidence)),
            occurrences: 1,
            expires_at: None,
            created_at: at,
            updated_at: at,
        }
    }

    fn turn(id: &str, at: Millis) -> ConversationTurn {
        ConversationTurn {
            id: id.into(),
            orchestration_id: None,
            prompt: format!("prompt {id}"),
            decision_summary: "addScene".into(),
            token_count: tokens::count(&render::turn_lines(&format!("prompt {id}"), "addScene")),
            created_at: at,
        }
    }

    fn scene(id: &str, position: u32) -> Scene {
        crate::model::testing::scene(id, id, position)
    }

    #[test]
    fn a_packet_after_a_write_equals_a_fresh_build() {
        let rows =
            |preferences: Vec<MemoryItem>, relationships: Vec<MemoryItem>, turns: Vec<ConversationTurn>| ContextRows {
                preferences,
                relationships,
                scenes: vec![scene("a", 0), scene("b", 1)],
                image_facts: Vec::new(),
                turns,
                pending_image_ids: vec!["img".into()],
            };
        let pace = item("m1", MemoryType::UserPreference, "pace", "fast", 0.6, 1);
        let style = item("m2", MemoryType::UserPreference, "style", "minimal", 0.6, 2);
        let rel_a = item("r1", MemoryType::SceneRelationship, "a", "editScene", 0.5, 1);
        let turns: Vec<ConversationTurn> = (0..3).map(|i| turn(&format!("t{i}"), i)).collect();
        let before = assemble("p", rows(vec![pace.clone(), style.clone()], vec![rel_a.clone()], turns.clone()), 5);

        // The write raises pace above style, adds a relationship for b, and a fourth turn with recent_turns = 3.
        let pace2 = MemoryItem { confidence: 0.72, occurrences: 2, updated_at: 10, ..pace.clone() };
        let rel_b = item("r2", MemoryType::SceneRelationship, "b", "deleteScene", 0.9, 10);
        let ghost = item("r3", MemoryType::SceneRelationship, "gone", "editScene", 0.9, 10);
        let context = item("c1", MemoryType::ConversationContext, "latest", "user asked", 1.0, 10);
        let new_turn = turn("t3", 10);
        let limits = PacketLimits { recent_turns: 3, preferences: 10 };
        let after = before
            .after_write(&[pace2.clone(), rel_b.clone(), ghost, context], &new_turn, limits, 5)
            .expect("in place");

        let mut all_turns = turns[1..].to_vec();
        all_turns.push(new_turn);
        all_turns.reverse(); // the store's order does not matter
        let fresh = assemble("p", rows(vec![style, pace2], vec![rel_b, rel_a], all_turns), 5);
        assert_eq!(after, fresh);
        let prepared_before = PreparedPacket::prepare(before.clone());
        assert_eq!(PreparedPacket::prepare(after.clone()), PreparedPacket::prepare(fresh.clone()));
        assert_eq!(PreparedPacket::prepare_from(after, &prepared_before), PreparedPacket::prepare(fresh));
    }

    #[test]
    fn a_packet_at_its_preference_limit_keeps_the_top_ranked_or_asks_the_store() {
        let limits = PacketLimits { recent_turns: 3, preferences: 2 };
        let rows = |preferences: Vec<MemoryItem>| ContextRows {
            preferences,
            relationships: Vec::new(),
            scenes: Vec::new(),
            image_facts: Vec::new(),
            turns: Vec::new(),
            pending_image_ids: Vec::new(),
        };
        // The store holds three preferences (the third at confidence 0.3); the packet read the top two.
        let high = item("m1", MemoryType::UserPreference, "pace", "fast", 0.9, 1);
        let mid = item("m2", MemoryType::UserPreference, "style", "minimal", 0.6, 2);
        let before = assemble("p", rows(vec![high.clone(), mid.clone()]), 5);
        let new_turn = turn("t0", 10);

        // A new preference ranked above the others pushes the lowest held one out, as a fresh read would.
        let top = item("m4", MemoryType::UserPreference, "font", "serif", 0.95, 10);
        let after = before.after_write(std::slice::from_ref(&top), &new_turn, limits, 5).expect("in place");
        let fresh = assemble("p", rows(vec![top, high.clone()]), 5);
        assert_eq!(after.preferences, fresh.preferences);

        // Raising a held preference needs nothing the packet lacks.
        let mid_up = MemoryItem { confidence: 0.95, updated_at: 10, ..mid.clone() };
        let after = before.after_write(std::slice::from_ref(&mid_up), &new_turn, limits, 5).expect("in place");
        assert_eq!(after.preferences, vec![mid_up, high.clone()]);

        // Lowering one below the unread third cannot be done in place: the store decides.
        let mid_down = MemoryItem { confidence: 0.1, updated_at: 10, ..mid.clone() };
        assert_eq!(before.after_write(std::slice::from_ref(&mid_down), &new_turn, limits, 5), None);

        // Below the limit the packet holds everything, so lowering is done in place.
        let roomy = PacketLimits { recent_turns: 3, preferences: 3 };
        let after = before.after_write(std::slice::from_ref(&mid_down), &new_turn, roomy, 5).expect("in place");
        assert_eq!(after.preferences, vec![high, mid_down]);
    }
}
