//! The brain decision: which tool runs next, on which scene, how invasive the
//! edit is, a multi-step workflow, or a clarification question.
//!
//! Backends implement [`Decider`]: `rules` (embedded, deterministic, the
//! default) and `openai` (any OpenAI-compatible chat-completions endpoint,
//! falling back to rules). A decider always produces a decision; fallbacks
//! are recorded in [`Decision::fallback_reason`].

use std::{collections::BTreeMap, sync::Arc};

use serde::{Deserialize, Serialize};

use crate::{
    config::{Config, DeciderKind},
    model::{MemoryItem, Scene},
};

pub mod openai;
pub mod preferences;
pub mod rules;

/// An action the backend can run on a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Tool {
    /// addScene
    AddScene,
    /// editScene
    EditScene,
    /// deleteScene
    DeleteScene,
    /// fixBrokenScene
    FixBrokenScene,
    /// changeDuration
    ChangeDuration,
    /// analyzeImage
    AnalyzeImage,
    /// createSceneFromImage
    CreateSceneFromImage,
    /// editSceneWithImage
    EditSceneWithImage,
}

impl Tool {
    /// Every tool.
    pub const ALL: [Tool; 8] = [
        Tool::AddScene,
        Tool::EditScene,
        Tool::DeleteScene,
        Tool::FixBrokenScene,
        Tool::ChangeDuration,
        Tool::AnalyzeImage,
        Tool::CreateSceneFromImage,
        Tool::EditSceneWithImage,
    ];

    /// The tool's name as backends and the eval set spell it (camelCase).
    pub fn as_str(self) -> &'static str {
        match self {
            Tool::AddScene => "addScene",
            Tool::EditScene => "editScene",
            Tool::DeleteScene => "deleteScene",
            Tool::FixBrokenScene => "fixBrokenScene",
            Tool::ChangeDuration => "changeDuration",
            Tool::AnalyzeImage => "analyzeImage",
            Tool::CreateSceneFromImage => "createSceneFromImage",
            Tool::EditSceneWithImage => "editSceneWithImage",
        }
    }

    /// Parses the camelCase name.
    pub fn parse(name: &str) -> Option<Tool> {
        Tool::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether the tool acts on an existing scene (and so needs a target).
    pub fn needs_target(self) -> bool {
        matches!(
            self,
            Tool::EditScene
                | Tool::DeleteScene
                | Tool::FixBrokenScene
                | Tool::ChangeDuration
                | Tool::EditSceneWithImage
        )
    }
}

/// How invasive an edit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EditComplexity {
    /// One property: a colour, a text, a font, a size, one timing.
    Surgical,
    /// The look or feel of the whole scene.
    Creative,
    /// Layout and composition.
    Structural,
}

impl EditComplexity {
    /// Lowercase name, as the eval set spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            EditComplexity::Surgical => "surgical",
            EditComplexity::Creative => "creative",
            EditComplexity::Structural => "structural",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "surgical" => Some(EditComplexity::Surgical),
            "creative" => Some(EditComplexity::Creative),
            "structural" => Some(EditComplexity::Structural),
            _ => None,
        }
    }
}

/// Arguments of a tool call.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ToolParams {
    /// New length in seconds, for changeDuration.
    pub duration_seconds: Option<f64>,
    /// Images the call works from.
    pub image_ids: Vec<String>,
    /// Attributes read from the prompt, e.g. color → "dark blue".
    pub attributes: BTreeMap<String, String>,
    /// Where a new scene goes (0-based), when the prompt says.
    pub insert_position: Option<u32>,
}

/// One tool to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The tool.
    pub tool: Tool,
    /// The scene it acts on.
    pub target_scene_id: Option<String>,
    /// How invasive, for edits.
    pub complexity: Option<EditComplexity>,
    /// Arguments.
    pub params: ToolParams,
    /// The part of the prompt this call carries out.
    pub instruction: String,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// Run one tool.
    Tool(ToolCall),
    /// Run several tools in order.
    Workflow(Vec<ToolCall>),
    /// Ask the user first.
    Clarification {
        /// The question to show.
        question: String,
        /// Scenes the request could have meant.
        candidate_scene_ids: Vec<String>,
    },
}

/// Which decider produced a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DecisionBackend {
    /// The embedded rules.
    Rules,
    /// An OpenAI-compatible model.
    Openai,
}

impl DecisionBackend {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionBackend::Rules => "rules",
            DecisionBackend::Openai => "openai",
        }
    }
}

/// A decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// What to do.
    pub outcome: Outcome,
    /// Why, in a sentence.
    pub reasoning: String,
    /// Who decided.
    pub backend: DecisionBackend,
    /// Why the configured backend did not decide, when it did not.
    pub fallback_reason: Option<String>,
    /// Confidence from 0 to 1.
    pub confidence: f64,
}

/// What a decider sees.
#[derive(Debug, Clone, Copy)]
pub struct DecisionInput<'a> {
    /// The user's prompt.
    pub prompt: &'a str,
    /// Current scenes in position order.
    pub scenes: &'a [Scene],
    /// Ids of images attached to this prompt.
    pub image_ids: &'a [String],
    /// User preferences, highest confidence first (may be empty when degraded).
    pub preferences: &'a [MemoryItem],
    /// The enhanced prompt (context + prompt), for model backends.
    pub enhanced_prompt: &'a str,
}

/// A decision backend.
#[async_trait::async_trait]
pub trait Decider: Send + Sync {
    /// Decides; never fails (model backends fall back to rules).
    async fn decide(&self, input: &DecisionInput<'_>) -> Decision;
}

/// The decider the configuration asks for: the rules (`decider = "rules"`,
/// the default), or the model falling back to the rules (`decider = "openai"`).
/// Fails only if the `openai` backend's HTTP client cannot be built.
pub fn decider_from_config(config: &Config) -> Result<Arc<dyn Decider>, crate::error::Error> {
    let rules: Arc<dyn Decider> = Arc::new(rules::RulesDecider);
    Ok(match config.orchestration.decider {
        DeciderKind::Rules => rules,
        DeciderKind::Openai => {
            let decider = openai::OpenAiDecider::from_config(config, rules)?;
            tracing::info!(
                base_url = %config.openai.base_url.redacted(),
                model = %config.openai.model,
                "decisions by an OpenAI-compatible model, falling back to the rules"
            );
            Arc::new(decider)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intro() -> Scene {
        crate::model::testing::scene("s1", "Intro", 0)
    }

    async fn decide(config: &Config) -> Decision {
        let scenes = [intro()];
        let input = DecisionInput {
            prompt: "make the intro 5 seconds",
            scenes: &scenes,
            image_ids: &[],
            preferences: &[],
            enhanced_prompt: "",
        };
        decider_from_config(config).expect("rules decider").decide(&input).await
    }

    #[tokio::test]
    async fn the_configured_decider_decides() {
        let rules = decide(&Config::default()).await;
        assert_eq!(rules.backend, DecisionBackend::Rules);
        assert_eq!(rules.fallback_reason, None);
        let Outcome::Tool(call) = &rules.outcome else { panic!("expected a tool call, got {:?}", rules.outcome) };
        assert_eq!((call.tool, call.target_scene_id.as_deref()), (Tool::ChangeDuration, Some("s1")));
        assert_eq!(call.params.duration_seconds, Some(5.0));
    }
}
