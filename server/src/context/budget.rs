//! The enhanced prompt and its token budget.
//!
//! [`fit`] renders a [`PreparedPacket`] into headed sections followed by the
//! user's prompt and keeps it inside the budget. Counts come from the
//! prepared lines (stored at write time or counted when the packet was
//! assembled); only the prompt is tokenized per build. Because every context
//! line is additive under o200k_base (see `render`), the report's
//! `total_after` is exactly what o200k_base counts for the returned text.
//!
//! When the packet does not fit, items go in this order, each recorded in
//! the report: the oldest conversation turns, the oldest image facts, the
//! lowest-confidence preferences, scene details (relationship items, then
//! the summary; least recently updated scene first; the scene's heading with
//! its name stays), and only then the middle of the user's prompt (its head
//! and tail stay, around a marker line). Section headings go with the last
//! item of their section. If scene names, pending images and a minimal head
//! and tail of the prompt still do not fit, the budget is refused as too
//! small rather than exceeded.

use std::{borrow::Cow, sync::OnceLock};

use serde::{Deserialize, Serialize};

use super::{
    packet::{ContextPacket, Line, PreparedPacket},
    render, tokens,
};
use crate::{
    config::MODEL_WINDOW_TOKENS,
    error::{Error, Reason, Result},
};

/// Smallest budget accepted: enough for the frame, a few scene names and a
/// cut prompt's head and tail.
pub const MIN_TOKEN_BUDGET: u32 = 256;

/// Tokens of the prompt kept at the least (head and tail together) when its middle is cut.
const MIN_PROMPT_KEEP: usize = 16;

/// A section of the enhanced prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Section {
    /// User preferences.
    Preferences,
    /// Scenes and their relationships.
    Scenes,
    /// Image facts.
    ImageFacts,
    /// Recent conversation turns.
    Conversation,
    /// Images still being analysed.
    PendingImages,
    /// The user's prompt.
    Prompt,
    /// Headings.
    Frame,
}

impl Section {
    /// Every section, in report order.
    pub const ALL: [Section; 7] = [
        Section::Preferences,
        Section::Scenes,
        Section::ImageFacts,
        Section::Conversation,
        Section::PendingImages,
        Section::Prompt,
        Section::Frame,
    ];
}

/// What the budget did to an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DropAction {
    /// Left out.
    Dropped,
    /// Its summary was left out; its name stayed.
    SummaryRemoved,
    /// Its middle was cut; head and tail stayed.
    MiddleCut,
}

/// One section's share of the enhanced prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionTokens {
    /// The section.
    pub section: Section,
    /// Tokens before the budget.
    pub tokens_before: u32,
    /// Tokens in the enhanced prompt.
    pub tokens_after: u32,
    /// Items before the budget.
    pub items_before: u32,
    /// Items in the enhanced prompt.
    pub items_after: u32,
}

/// One item the budget removed or shortened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedItem {
    /// Section it was in.
    pub section: Section,
    /// Memory, turn, scene or image id, or "prompt".
    pub item_id: String,
    /// What was done.
    pub action: DropAction,
    /// Tokens saved.
    pub tokens: u32,
}

/// Token accounting of an enhanced prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenReport {
    /// The budget applied.
    pub budget: u32,
    /// Tokens of the whole packet and prompt, before anything was dropped.
    pub total_before: u32,
    /// Tokens of the enhanced prompt; exactly o200k_base's count of it.
    pub total_after: u32,
    /// Per section, in [`Section::ALL`] order.
    pub sections: Vec<SectionTokens>,
    /// What was removed or shortened, in order.
    pub dropped: Vec<DroppedItem>,
    /// Anything dropped or cut.
    pub truncated: bool,
    /// The prompt's middle was cut.
    pub prompt_truncated: bool,
    /// `total_after` is above 90% of the budget.
    pub budget_warning: bool,
    /// "o200k_base".
    pub encoding: String,
}

/// Which items made it into the enhanced prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// The first this many preferences (highest confidence first).
    pub preferences: usize,
    /// Per scene: whether the summary stayed.
    pub scene_summaries: Vec<bool>,
    /// Per scene: the first this many relationship items stayed.
    pub scene_relationships: Vec<usize>,
    /// The first this many image facts (newest first).
    pub image_facts: usize,
    /// Turns from this index on (oldest first, so older ones went).
    pub turns_from: usize,
}

/// The enhanced prompt within its budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    /// Headed sections followed by the user's prompt.
    pub enhanced_prompt: String,
    /// Token accounting for it.
    pub report: TokenReport,
    /// What stayed.
    pub kept: Kept,
}

/// The budget a request asked for: 0 means the configured default; the rest
/// must lie within [`MIN_TOKEN_BUDGET`]..=128,000.
pub fn resolve_budget(requested: u32, default: u32) -> Result<u32> {
    let budget = if requested == 0 { default } else { requested };
    if !(MIN_TOKEN_BUDGET..=MODEL_WINDOW_TOKENS).contains(&budget) {
        return Err(Error::new(
            Reason::TokenBudgetOutOfRange,
            format!(
                "token_budget {budget} is outside {MIN_TOKEN_BUDGET}..={MODEL_WINDOW_TOKENS} \
                 (at most GPT-4o's window; 0 means the server default)"
            ),
        )
        .with_field("token_budget")
        .with_limit(MODEL_WINDOW_TOKENS));
    }
    Ok(budget)
}

/// Token counts of the constant headings, counted once per process.
struct Headings {
    context: u32,
    preferences: u32,
    scenes: u32,
    image_facts: u32,
    conversation: u32,
    pending: u32,
    prompt: u32,
}

fn headings() -> &'static Headings {
    static HEADINGS: OnceLock<Headings> = OnceLock::new();
    HEADINGS.get_or_init(|| Headings {
        context: tokens::count(render::CONTEXT_HEADING),
        preferences: tokens::count(render::PREFERENCES_HEADING),
        scenes: tokens::count(render::SCENES_HEADING),
        image_facts: tokens::count(render::IMAGE_FACTS_HEADING),
        conversation: tokens::count(render::CONVERSATION_HEADING),
        pending: tokens::count(render::PENDING_IMAGES_HEADING),
        prompt: tokens::count(render::PROMPT_HEADING),
    })
}

/// Running sums while items are dropped.
struct Tally {
    preferences: (u32, usize),
    scenes: u32,
    scene_count: usize,
    relationships: usize,
    image_facts: (u32, usize),
    turns: (u32, usize),
    pending: (u32, usize),
    /// Heading plus prompt (or its cut form), counted together.
    prompt_section: u32,
    has_prompt: bool,
}

impl Tally {
    fn frame(&self) -> u32 {
        let h = headings();
        let mut frame = 0;
        let any_context =
            self.preferences.1 + self.scene_count + self.image_facts.1 + self.turns.1 + self.pending.1 > 0;
        if any_context {
            frame += h.context;
        }
        for (present, tokens) in [
            (self.preferences.1 > 0, h.preferences),
            (self.scene_count > 0, h.scenes),
            (self.image_facts.1 > 0, h.image_facts),
            (self.turns.1 > 0, h.conversation),
            (self.pending.1 > 0, h.pending),
            (self.has_prompt, h.prompt),
        ] {
            if present {
                frame += tokens;
            }
        }
        frame
    }

    /// Prompt tokens without its heading.
    fn prompt(&self) -> u32 {
        if self.has_prompt { self.prompt_section.saturating_sub(headings().prompt) } else { 0 }
    }

    fn total(&self) -> u32 {
        self.frame()
            + self.preferences.0
            + self.scenes
            + self.image_facts.0
            + self.turns.0
            + self.pending.0
            + self.prompt()
    }

    fn sections(&self) -> [(Section, u32, u32); 7] {
        [
            (Section::Preferences, self.preferences.0, self.preferences.1 as u32),
            (Section::Scenes, self.scenes, (self.scene_count + self.relationships) as u32),
            (Section::ImageFacts, self.image_facts.0, self.image_facts.1 as u32),
            (Section::Conversation, self.turns.0, self.turns.1 as u32),
            (Section::PendingImages, self.pending.0, self.pending.1 as u32),
            (Section::Prompt, self.prompt(), u32::from(self.has_prompt)),
            (Section::Frame, self.frame(), 0),
        ]
    }
}

fn sum(lines: &[Line]) -> u32 {
    lines.iter().map(|l| l.tokens).sum()
}

/// Renders `prepared` and `prompt` (empty renders the context alone) within `budget` tokens.
pub fn fit(prepared: &PreparedPacket, prompt: &str, budget: u32) -> Result<Fitted> {
    let tally = Tally::of(prepared, prompt);
    let before = tally.sections();
    let total_before = tally.total();
    let mut trim = Trim { prepared, budget, tally, kept: Kept::everything(prepared), dropped: Vec::new() };
    trim.oldest_turns();
    trim.oldest_image_facts();
    trim.weakest_preferences();
    trim.scene_details();
    let prompt_body = trim.prompt_middle(prompt)?;
    let Trim { tally, kept, dropped, .. } = trim;
    if tally.total() > budget {
        return Err(too_small(budget, tally.total()));
    }
    let enhanced_prompt = render_fitted(prepared, &kept, &tally, &prompt_body);
    let report = report(budget, &before, total_before, &tally, dropped, matches!(prompt_body, Cow::Owned(_)));
    Ok(Fitted { enhanced_prompt, report, kept })
}

impl Tally {
    /// Everything in the packet plus the prompt, before the budget.
    fn of(prepared: &PreparedPacket, prompt: &str) -> Tally {
        let has_prompt = !prompt.is_empty();
        Tally {
            preferences: (sum(&prepared.preferences), prepared.preferences.len()),
            scenes: prepared
                .scenes
                .iter()
                .map(|s| s.heading.tokens + s.summary.as_ref().map_or(0, |l| l.tokens) + sum(&s.relationships))
                .sum(),
            scene_count: prepared.scenes.len(),
            relationships: prepared.scenes.iter().map(|s| s.relationships.len()).sum(),
            image_facts: (sum(&prepared.image_facts), prepared.image_facts.len()),
            turns: (sum(&prepared.turns), prepared.turns.len()),
            pending: (sum(&prepared.pending_images), prepared.pending_images.len()),
            prompt_section: if has_prompt { tokens::count(&format!("{}{prompt}", render::PROMPT_HEADING)) } else { 0 },
            has_prompt,
        }
    }
}

impl Kept {
    /// Every item of the packet.
    fn everything(prepared: &PreparedPacket) -> Kept {
        Kept {
            preferences: prepared.preferences.len(),
            scene_summaries: prepared.scenes.iter().map(|s| s.summary.is_some()).collect(),
            scene_relationships: prepared.scenes.iter().map(|s| s.relationships.len()).collect(),
            image_facts: prepared.image_facts.len(),
            turns_from: 0,
        }
    }
}

/// The packet being cut down to the budget, one kind of item at a time (in
/// the order the module documentation gives); each step stops as soon as the
/// total fits.
struct Trim<'a> {
    prepared: &'a PreparedPacket,
    budget: u32,
    tally: Tally,
    kept: Kept,
    dropped: Vec<DroppedItem>,
}

impl Trim<'_> {
    fn over(&self) -> bool {
        self.tally.total() > self.budget
    }

    fn oldest_turns(&mut self) {
        let (prepared, packet) = (self.prepared, &self.prepared.packet);
        while self.over() && self.kept.turns_from < prepared.turns.len() {
            let i = self.kept.turns_from;
            self.kept.turns_from += 1;
            let id = &packet.recent_turns[i].id;
            drop_line(&mut self.tally.turns, &mut self.dropped, Section::Conversation, id, prepared.turns[i].tokens);
        }
    }

    /// The list is newest first.
    fn oldest_image_facts(&mut self) {
        let (prepared, packet) = (self.prepared, &self.prepared.packet);
        while self.over() && self.kept.image_facts > 0 {
            self.kept.image_facts -= 1;
            let (i, tally) = (self.kept.image_facts, &mut self.tally.image_facts);
            let id = &packet.image_facts[i].image_id;
            drop_line(tally, &mut self.dropped, Section::ImageFacts, id, prepared.image_facts[i].tokens);
        }
    }

    /// The list is highest confidence first.
    fn weakest_preferences(&mut self) {
        let (prepared, packet) = (self.prepared, &self.prepared.packet);
        while self.over() && self.kept.preferences > 0 {
            self.kept.preferences -= 1;
            let (i, tally) = (self.kept.preferences, &mut self.tally.preferences);
            let id = &packet.preferences[i].id;
            drop_line(tally, &mut self.dropped, Section::Preferences, id, prepared.preferences[i].tokens);
        }
    }

    /// Relationship items, then the summary, least recently updated scene
    /// first; names stay.
    fn scene_details(&mut self) {
        if !self.over() {
            return;
        }
        let (prepared, packet) = (self.prepared, &self.prepared.packet);
        let mut order: Vec<usize> = (0..prepared.scenes.len()).collect();
        order.sort_by_key(|&i| (packet.scenes[i].scene.updated_at, std::cmp::Reverse(i)));
        for i in order {
            let lines = &prepared.scenes[i];
            while self.kept.scene_relationships[i] > 0 {
                if !self.over() {
                    return;
                }
                self.kept.scene_relationships[i] -= 1;
                let r = self.kept.scene_relationships[i];
                let tokens = lines.relationships[r].tokens;
                self.tally.scenes -= tokens;
                self.tally.relationships -= 1;
                let id = &packet.scenes[i].relationships[r].id;
                record(&mut self.dropped, Section::Scenes, id, DropAction::Dropped, tokens);
            }
            if !self.over() {
                return;
            }
            if let Some(summary) = &lines.summary {
                self.kept.scene_summaries[i] = false;
                self.tally.scenes -= summary.tokens;
                let id = &packet.scenes[i].scene.scene_id;
                record(&mut self.dropped, Section::Scenes, id, DropAction::SummaryRemoved, summary.tokens);
            }
        }
    }

    /// The prompt, with its middle cut if everything else is gone and it
    /// still does not fit; an error if even its head and tail do not.
    fn prompt_middle<'p>(&mut self, prompt: &'p str) -> Result<Cow<'p, str>> {
        if !self.over() || !self.tally.has_prompt {
            return Ok(Cow::Borrowed(prompt));
        }
        let rest = self.tally.total() - self.tally.prompt() - headings().prompt;
        let room = self.budget.saturating_sub(rest);
        let before_tokens = self.tally.prompt();
        let Some((body, section_tokens)) = cut_middle(prompt, room) else {
            return Err(too_small(self.budget, rest + headings().prompt + MIN_PROMPT_KEEP as u32));
        };
        self.tally.prompt_section = section_tokens;
        let saved = before_tokens.saturating_sub(self.tally.prompt());
        record(&mut self.dropped, Section::Prompt, "prompt", DropAction::MiddleCut, saved);
        Ok(Cow::Owned(body))
    }
}

/// Takes one dropped line of `tokens` off a section's (tokens, items) and records it.
fn drop_line(tally: &mut (u32, usize), dropped: &mut Vec<DroppedItem>, section: Section, id: &str, tokens: u32) {
    *tally = (tally.0 - tokens, tally.1 - 1);
    record(dropped, section, id, DropAction::Dropped, tokens);
}

/// The token report of a fitted prompt, from the tallies before and after.
fn report(
    budget: u32,
    before: &[(Section, u32, u32); 7],
    total_before: u32,
    tally: &Tally,
    dropped: Vec<DroppedItem>,
    prompt_truncated: bool,
) -> TokenReport {
    let after = tally.sections();
    let total_after = tally.total();
    let sections = before
        .iter()
        .zip(after.iter())
        .map(|(b, a)| SectionTokens {
            section: b.0,
            tokens_before: b.1,
            tokens_after: a.1,
            items_before: b.2,
            items_after: a.2,
        })
        .collect();
    TokenReport {
        budget,
        total_before,
        total_after,
        sections,
        truncated: !dropped.is_empty(),
        dropped,
        prompt_truncated,
        budget_warning: u64::from(total_after) * 10 > u64::from(budget) * 9,
        encoding: tokens::ENCODING.to_owned(),
    }
}

fn record(dropped: &mut Vec<DroppedItem>, section: Section, item_id: &str, action: DropAction, tokens: u32) {
    dropped.push(DroppedItem { section, item_id: item_id.to_owned(), action, tokens });
}

fn too_small(budget: u32, needed: u32) -> Error {
    Error::new(
        Reason::TokenBudgetOutOfRange,
        format!(
            "token_budget {budget} cannot hold this project's scene names, pending images and the head and tail \
             of the prompt; it needs at least {needed}"
        ),
    )
    .with_field("token_budget")
}

fn render_fitted(prepared: &PreparedPacket, kept: &Kept, tally: &Tally, prompt: &str) -> String {
    let turns = &prepared.turns[kept.turns_from..];
    let preferences = &prepared.preferences[..kept.preferences];
    let image_facts = &prepared.image_facts[..kept.image_facts];
    let bytes = |lines: &[Line]| lines.iter().map(|l| l.text.len()).sum::<usize>();
    let scene_bytes: usize = prepared
        .scenes
        .iter()
        .map(|s| s.heading.text.len() + s.summary.as_ref().map_or(0, |l| l.text.len()) + bytes(&s.relationships))
        .sum();
    let mut out = String::with_capacity(
        256 + bytes(turns)
            + bytes(preferences)
            + bytes(image_facts)
            + scene_bytes
            + bytes(&prepared.pending_images)
            + prompt.len(),
    );
    let push_all = |out: &mut String, lines: &[Line]| lines.iter().for_each(|l| out.push_str(&l.text));
    let any_context =
        tally.preferences.1 + tally.scene_count + tally.image_facts.1 + tally.turns.1 + tally.pending.1 > 0;
    if any_context {
        out.push_str(render::CONTEXT_HEADING);
    }
    if !preferences.is_empty() {
        out.push_str(render::PREFERENCES_HEADING);
        push_all(&mut out, preferences);
    }
    if !prepared.scenes.is_empty() {
        out.push_str(render::SCENES_HEADING);
        for (i, scene) in prepared.scenes.iter().enumerate() {
            out.push_str(&scene.heading.text);
            if kept.scene_summaries[i]
                && let Some(summary) = &scene.summary
            {
                out.push_str(&summary.text);
            }
            push_all(&mut out, &scene.relationships[..kept.scene_relationships[i]]);
        }
    }
    if !image_facts.is_empty() {
        out.push_str(render::IMAGE_FACTS_HEADING);
        push_all(&mut out, image_facts);
    }
    if !turns.is_empty() {
        out.push_str(render::CONVERSATION_HEADING);
        push_all(&mut out, turns);
    }
    if !prepared.pending_images.is_empty() {
        out.push_str(render::PENDING_IMAGES_HEADING);
        push_all(&mut out, &prepared.pending_images);
    }
    if tally.has_prompt {
        out.push_str(render::PROMPT_HEADING);
        out.push_str(prompt);
    }
    out
}

/// Cuts the middle out of `prompt` so that the prompt heading plus the cut
/// prompt take at most `room` tokens: the head and tail stay (split evenly by
/// tokens, at character boundaries) around a marker line. Returns the cut
/// prompt and the tokens of heading plus cut prompt, or None when not even
/// [`MIN_PROMPT_KEEP`] tokens of it would fit.
fn cut_middle(prompt: &str, room: u32) -> Option<(String, u32)> {
    let ids = tokens::encode(prompt);
    let n = ids.len();
    let heading = headings().prompt;
    let marker = |removed: usize| {
        format!("\n[... {removed} tokens cut from the middle of the prompt to fit the token budget ...]\n")
    };
    let marker_tokens = tokens::count(&marker(n)) as usize;
    let mut keep = (room as usize).saturating_sub(heading as usize + marker_tokens).min(n.saturating_sub(1));
    loop {
        if keep < MIN_PROMPT_KEEP {
            return None;
        }
        let tail_len = keep / 2;
        let head = valid_prefix(tokens::decode_bytes(&ids[..keep - tail_len]));
        let tail = valid_suffix(tokens::decode_bytes(&ids[n - tail_len..]));
        let body = format!("{head}{}{tail}", marker(n - keep));
        let section = tokens::count(&format!("{}{body}", render::PROMPT_HEADING));
        if section <= room {
            return Some((body, section));
        }
        keep = keep.saturating_sub((section - room) as usize);
    }
}

/// The longest valid UTF-8 prefix of `bytes` (a token slice may end inside a character).
fn valid_prefix(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).unwrap_or_default()
        }
    }
}

/// `bytes` without the partial character a token slice may start with.
fn valid_suffix(bytes: Vec<u8>) -> String {
    let start = bytes.iter().position(|b| (b & 0b1100_0000) != 0b1000_0000).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// The packet as the enhanced prompt carries it: dropped preferences, image
/// facts, turns and relationship items are left out; scenes all stay, with
/// their stored summaries (the report says whose summary the prompt left out).
pub fn kept_packet(prepared: &PreparedPacket, kept: &Kept) -> ContextPacket {
    let p = &prepared.packet;
    ContextPacket {
        project_id: p.project_id.clone(),
        preferences: p.preferences[..kept.preferences].to_vec(),
        scenes: p
            .scenes
            .iter()
            .enumerate()
            .map(|(i, s)| super::packet::SceneContext {
                scene: s.scene.clone(),
                relationships: s.relationships[..kept.scene_relationships[i]].to_vec(),
            })
            .collect(),
        image_facts: p.image_facts[..kept.image_facts].to_vec(),
        recent_turns: p.recent_turns[kept.turns_from..].to_vec(),
        pending_image_ids: p.pending_image_ids.clone(),
        built_at: p.built_at,
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;
    use crate::{
        context::{
            packet::{ImageFactsSummary, SceneContext},
            render::tests::{nasty_text, random_facts},
        },
        model::{ConversationTurn, MemoryItem, MemorySource, MemoryType, Scene},
    };

    fn memory(id: &str, memory_type: MemoryType, key: &str, value: &str, confidence: f64) -> MemoryItem {
        MemoryItem {
            id: id.into(),
            project_id: "p".into(),
            memory_type,
            key: key.into(),
            value: value.into(),
            confidence,
            source: MemorySource::Api,
            source_prompt: None,
            token_count: tokens::count(&render::memory_line(key, value, confidence)),
            occurrences: 1,
            expires_at: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn scene(id: &str, position: u32, name: &str, summary: &str, updated_at: i64) -> Scene {
        Scene {
            summary: summary.into(),
            summary_tokens: tokens::count(&render::scene_summary_line(summary)),
            duration_seconds: Some(4.5),
            updated_at,
            ..crate::model::testing::scene(id, name, position)
        }
    }

    fn turn(id: &str, prompt: &str, summary: &str) -> ConversationTurn {
        ConversationTurn {
            id: id.into(),
            orchestration_id: None,
            prompt: prompt.into(),
            decision_summary: summary.into(),
            token_count: tokens::count(&render::turn_lines(prompt, summary)),
            created_at: 0,
        }
    }

    fn random_packet(rng: &mut StdRng) -> ContextPacket {
        let mut packet = ContextPacket::empty("p", 0);
        for i in 0..rng.random_range(0..8) {
            let conf = rng.random_range(0.0..=1.0);
            packet.preferences.push(memory(
                &format!("m{i}"),
                MemoryType::UserPreference,
                &nasty_text(rng, 3).replace(['\n', '\r'], "k"),
                &format!("v{}", nasty_text(rng, 30)),
                conf,
            ));
        }
        for i in 0..rng.random_range(0..6) {
            let s = scene(&format!("s{i}"), i, &format!("n{}", nasty_text(rng, 4)), &nasty_text(rng, 30), i64::from(i));
            let relationships = if rng.random_bool(0.5) {
                vec![memory(&format!("r{i}"), MemoryType::SceneRelationship, &s.scene_id, &nasty_text(rng, 10), 0.7)]
            } else {
                Vec::new()
            };
            packet.scenes.push(SceneContext { scene: s, relationships });
        }
        for i in 0..rng.random_range(0..4) {
            packet.image_facts.push(ImageFactsSummary { image_id: format!("img{i}"), facts: random_facts(rng) });
        }
        for i in 0..rng.random_range(0..10) {
            packet.recent_turns.push(turn(&format!("t{i}"), &nasty_text(rng, 40), &nasty_text(rng, 6)));
        }
        for i in 0..rng.random_range(0..3) {
            packet.pending_image_ids.push(format!("pending-{i}"));
        }
        packet
    }

    fn check_report(fitted: &Fitted) {
        let r = &fitted.report;
        assert_eq!(r.total_after, tokens::count(&fitted.enhanced_prompt), "{:?}", fitted.enhanced_prompt);
        assert_eq!(r.sections.iter().map(|s| s.tokens_after).sum::<u32>(), r.total_after);
        assert_eq!(r.sections.iter().map(|s| s.tokens_before).sum::<u32>(), r.total_before);
        assert!(r.total_after <= r.budget);
        assert_eq!(r.truncated, !r.dropped.is_empty());
    }

    #[test]
    fn totals_equal_o200k_for_random_packets_and_prompts() {
        let mut rng = StdRng::seed_from_u64(42);
        for round in 0..400 {
            let prepared = PreparedPacket::prepare(random_packet(&mut rng));
            let prompt = if rng.random_bool(0.1) { String::new() } else { nasty_text(&mut rng, 200) };
            // Count the whole thing once to choose budgets that force every kind of drop.
            let full = fit(&prepared, &prompt, MODEL_WINDOW_TOKENS).expect("fits the window");
            check_report(&full);
            assert_eq!(full.report.total_before, full.report.total_after, "round {round}");
            for budget in [full.report.total_after, full.report.total_after / 2, full.report.total_after / 5, 256] {
                let budget = budget.clamp(MIN_TOKEN_BUDGET, MODEL_WINDOW_TOKENS);
                if let Ok(fitted) = fit(&prepared, &prompt, budget) {
                    check_report(&fitted);
                    assert_eq!(fitted.report.total_before, full.report.total_before);
                }
            }
        }
    }

    #[test]
    fn drops_in_the_documented_order() {
        let mut packet = ContextPacket::empty("p", 0);
        let long = "word ".repeat(60);
        packet.preferences = vec![
            memory("high", MemoryType::UserPreference, "style", &long, 0.9),
            memory("low", MemoryType::UserPreference, "pace", &long, 0.3),
        ];
        packet.scenes = vec![
            SceneContext {
                scene: scene("s1", 0, "Intro", &long, 2),
                relationships: vec![memory("rel1", MemoryType::SceneRelationship, "s1", "edited", 1.0)],
            },
            SceneContext { scene: scene("s2", 1, "Outro", &long, 1), relationships: vec![] },
        ];
        packet.image_facts = vec![
            ImageFactsSummary { image_id: "new".into(), facts: random_facts(&mut StdRng::seed_from_u64(1)) },
            ImageFactsSummary { image_id: "old".into(), facts: random_facts(&mut StdRng::seed_from_u64(2)) },
        ];
        packet.recent_turns = vec![turn("t-old", &long, "addScene"), turn("t-new", &long, "editScene")];
        let prepared = PreparedPacket::prepare(packet);
        let prompt = format!("start{} end", " filler".repeat(400));
        let fitted = fit(&prepared, &prompt, 300).expect("fits once cut");
        check_report(&fitted);
        let order: Vec<(&str, DropAction)> =
            fitted.report.dropped.iter().map(|d| (d.item_id.as_str(), d.action)).collect();
        assert_eq!(
            order,
            vec![
                ("t-old", DropAction::Dropped),
                ("t-new", DropAction::Dropped),
                ("old", DropAction::Dropped),
                ("new", DropAction::Dropped),
                ("low", DropAction::Dropped),
                ("high", DropAction::Dropped),
                ("s2", DropAction::SummaryRemoved),
                ("rel1", DropAction::Dropped),
                ("s1", DropAction::SummaryRemoved),
                ("prompt", DropAction::MiddleCut),
            ]
        );
        assert!(fitted.report.prompt_truncated);
        assert!(fitted.enhanced_prompt.contains("- Scene 1 \"Intro\""), "names stay");
        assert!(fitted.enhanced_prompt.contains("tokens cut from the middle of the prompt"));
        assert!(fitted.enhanced_prompt.contains("# User prompt\nstart filler"), "head stays");
        assert!(fitted.enhanced_prompt.ends_with("filler end"), "tail stays");
        let kept = kept_packet(&prepared, &fitted.kept);
        assert!(kept.preferences.is_empty() && kept.recent_turns.is_empty() && kept.image_facts.is_empty());
        assert_eq!(kept.scenes.len(), 2);
    }

    #[test]
    fn stops_dropping_as_soon_as_it_fits() {
        let mut packet = ContextPacket::empty("p", 0);
        packet.recent_turns = (0..10).map(|i| turn(&format!("t{i}"), &"talk ".repeat(100), "editScene")).collect();
        packet.preferences = vec![memory("m", MemoryType::UserPreference, "style", "minimal", 0.5)];
        let prepared = PreparedPacket::prepare(packet);
        let full = fit(&prepared, "make it pop", MODEL_WINDOW_TOKENS).expect("fits");
        let budget = full.report.total_after - 150;
        let fitted = fit(&prepared, "make it pop", budget).expect("fits");
        check_report(&fitted);
        assert_eq!(fitted.report.dropped.len(), 2, "two ~100-token turns free 150 tokens");
        assert_eq!(fitted.report.dropped[0].item_id, "t0");
        assert_eq!(fitted.report.dropped[1].item_id, "t1");
        assert_eq!(fitted.kept.preferences, 1);
        assert!(fitted.report.budget_warning, "{} of {budget}", fitted.report.total_after);
    }

    #[test]
    fn a_budget_too_small_for_the_irreducible_parts_is_refused() {
        let mut packet = ContextPacket::empty("p", 0);
        packet.scenes = (0..40)
            .map(|i| SceneContext {
                scene: scene(&format!("scene-{i}"), i, "A long scene name", "", 0),
                relationships: vec![],
            })
            .collect();
        let prepared = PreparedPacket::prepare(packet);
        let err = fit(&prepared, "hello", 256).expect_err("40 scene names need more than 256 tokens");
        assert_eq!(err.reason(), Reason::TokenBudgetOutOfRange);
        assert_eq!(err.field(), Some("token_budget"));
    }

    #[test]
    fn budgets_resolve_and_are_bounded() {
        assert_eq!(resolve_budget(0, 120_000), Ok(120_000));
        assert_eq!(resolve_budget(1_000, 120_000), Ok(1_000));
        assert_eq!(resolve_budget(128_000, 120_000), Ok(128_000));
        for bad in [128_001, 200_000, 1, MIN_TOKEN_BUDGET - 1] {
            let err = resolve_budget(bad, 120_000).expect_err("out of range");
            assert_eq!(err.reason(), Reason::TokenBudgetOutOfRange);
        }
    }

    #[test]
    fn middle_cut_keeps_multibyte_text_valid() {
        let prompt = "日本語のテキスト👍🏽".repeat(300);
        let (body, section) = cut_middle(&prompt, 300).expect("cut");
        assert!(section <= 300);
        assert_eq!(section, tokens::count(&format!("{}{body}", render::PROMPT_HEADING)));
        assert!(body.starts_with("日本語"));
        assert!(body.ends_with("👍🏽"));
    }
}
