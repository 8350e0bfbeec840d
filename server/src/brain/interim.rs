//! TEMPORARY stand-ins until `brain::rules` and `brain::preferences` land on
//! main: a minimal keyword decider and preference extractor with the same
//! signatures, so orchestration can be wired and tested end to end. Delete
//! this file when the real modules are merged.

use super::{Decider, Decision, DecisionBackend, DecisionInput, EditComplexity, Outcome, Tool, ToolCall, ToolParams};
use crate::model::SceneStatus;

/// The interim decider.
pub struct InterimDecider;

#[async_trait::async_trait]
impl Decider for InterimDecider {
    async fn decide(&self, input: &DecisionInput<'_>) -> Decision {
        decide(input)
    }
}

/// Keyword rules: the tool from verbs, the target from a scene name or
/// "scene N" in the prompt (or the only scene).
pub fn decide(input: &DecisionInput<'_>) -> Decision {
    let prompt = input.prompt.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| prompt.contains(w));
    let tool = if !input.image_ids.is_empty() && has(&["from this image", "based on this image"]) {
        Tool::CreateSceneFromImage
    } else if has(&["add ", "create ", "new scene", "insert "]) {
        Tool::AddScene
    } else if has(&["delete", "remove "]) {
        Tool::DeleteScene
    } else if has(&["fix", "broken"]) {
        Tool::FixBrokenScene
    } else if has(&["seconds", "duration", "longer", "shorter"]) {
        Tool::ChangeDuration
    } else {
        Tool::EditScene
    };
    let by_name = input.scenes.iter().find(|s| !s.name.is_empty() && prompt.contains(&s.name.to_lowercase()));
    let by_number = input.scenes.iter().find(|s| prompt.contains(&format!("scene {}", s.position + 1)));
    let broken = input.scenes.iter().find(|s| s.status == SceneStatus::Broken && tool == Tool::FixBrokenScene);
    let only = (input.scenes.len() == 1).then(|| &input.scenes[0]);
    let target = by_name.or(by_number).or(broken).or(only);
    let base = Decision {
        outcome: Outcome::Clarification { question: String::new(), candidate_scene_ids: Vec::new() },
        reasoning: String::new(),
        backend: DecisionBackend::Rules,
        fallback_reason: None,
        confidence: 0.5,
    };
    if tool.needs_target() && target.is_none() {
        return Decision {
            outcome: Outcome::Clarification {
                question: "Which scene do you mean?".into(),
                candidate_scene_ids: input.scenes.iter().map(|s| s.scene_id.clone()).collect(),
            },
            reasoning: format!("interim rules: {} needs a scene and none was named", tool.as_str()),
            ..base
        };
    }
    let complexity = (tool == Tool::EditScene).then_some(EditComplexity::Surgical);
    let call = ToolCall {
        tool,
        target_scene_id: if tool.needs_target() { target.map(|s| s.scene_id.clone()) } else { None },
        complexity,
        params: ToolParams { image_ids: input.image_ids.to_vec(), ..ToolParams::default() },
        instruction: input.prompt.to_owned(),
    };
    Decision { outcome: Outcome::Tool(call), reasoning: format!("interim rules chose {}", tool.as_str()), ..base }
}

/// Interim preference extraction, with the signatures of `brain::preferences`.
pub mod preferences {
    /// A preference read from a prompt.
    #[derive(Debug, Clone, PartialEq)]
    pub struct ExtractedPreference {
        /// E.g. "pace".
        pub key: String,
        /// E.g. "fast".
        pub value: String,
        /// How sure the extraction is.
        pub confidence: f64,
    }

    /// Pace and a few styles, by keyword.
    pub fn extract(prompt: &str) -> Vec<ExtractedPreference> {
        let prompt = prompt.to_lowercase();
        let mut out = Vec::new();
        let mut push = |key: &str, value: &str| {
            out.push(ExtractedPreference { key: key.into(), value: value.into(), confidence: 0.6 })
        };
        if prompt.contains("pace") || prompt.contains("tempo") {
            if prompt.contains("fast") || prompt.contains("quick") {
                push("pace", "fast");
            } else if prompt.contains("slow") || prompt.contains("calm") {
                push("pace", "slow");
            }
        }
        for style in ["minimal", "playful", "corporate", "elegant"] {
            if prompt.contains(style) {
                push("style", style);
                break;
            }
        }
        out
    }

    /// Repeating a value raises its confidence; a different value replaces it.
    pub fn merge(existing: Option<(&str, f64, u32)>, new: &ExtractedPreference) -> (String, f64) {
        match existing {
            Some((value, confidence, _)) if value == new.value => {
                (new.value.clone(), (confidence + (1.0 - confidence) * 0.3).min(0.99))
            }
            _ => (new.value.clone(), new.confidence),
        }
    }
}
