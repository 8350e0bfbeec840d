//! What an orchestration remembers: the one-line summary of a decision (the
//! conversation turn and the `conversation_context` item), what was last
//! asked of each target scene (`scene_relationship` items, keyed by scene
//! id), and the preferences read from the prompt.

use crate::{
    context::render,
    decide::{Decision, Outcome, ToolCall},
    model::Scene,
    validate::MAX_TEXT_CHARS,
};

/// Key of the `conversation_context` item that holds the latest interaction.
pub const LATEST_CONTEXT_KEY: &str = "latest";

/// Characters of the prompt quoted in memory values.
const QUOTED_PROMPT_CHARS: usize = 400;

/// A decision in one line, e.g. `editScene on scene s1 (surgical)`.
pub fn decision_summary(decision: &Decision) -> String {
    let summary = match &decision.outcome {
        Outcome::Tool(call) => call_summary(call),
        Outcome::Workflow(steps) => {
            format!("workflow: {}", steps.iter().map(call_summary).collect::<Vec<_>>().join("; "))
        }
        Outcome::Clarification { question, .. } => format!("asked: {}", render::one_line(question)),
    };
    clip(&summary, MAX_TEXT_CHARS)
}

fn call_summary(call: &ToolCall) -> String {
    let mut out = call.tool.as_str().to_owned();
    if let Some(target) = &call.target_scene_id {
        out.push_str(&format!(" on scene {target}"));
    }
    if let Some(c) = call.complexity {
        out.push_str(&format!(" ({})", c.as_str()));
    }
    if let Some(d) = call.params.duration_seconds {
        out.push_str(&format!(" to {d}s"));
    }
    if let Some(p) = call.params.insert_position {
        out.push_str(&format!(" at position {p}"));
    }
    out
}

/// The `scene_relationship` values to write: for each step that acts on an
/// existing scene of the project, what was asked of it. A scene named by
/// several steps keeps the last one.
pub fn relationships(decision: &Decision, prompt: &str, scenes: &[Scene]) -> Vec<(String, String)> {
    let calls: Vec<&ToolCall> = match &decision.outcome {
        Outcome::Tool(call) => vec![call],
        Outcome::Workflow(steps) => steps.iter().collect(),
        Outcome::Clarification { .. } => Vec::new(),
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for call in calls {
        let Some(target) = call.target_scene_id.as_deref() else { continue };
        if !scenes.iter().any(|s| s.scene_id == target) {
            continue;
        }
        let instruction = if call.instruction.trim().is_empty() { prompt } else { &call.instruction };
        let mut value = call.tool.as_str().to_owned();
        if let Some(c) = call.complexity {
            value.push_str(&format!(" ({})", c.as_str()));
        }
        value.push_str(&format!(" requested: \"{}\"", clip(&render::one_line(instruction), QUOTED_PROMPT_CHARS)));
        out.retain(|(id, _)| id != target);
        out.push((target.to_owned(), value));
    }
    out
}

/// The `conversation_context` value: what the user asked and what brain decided.
pub fn conversation_context(prompt: &str, summary: &str) -> String {
    clip(
        &format!("user asked: \"{}\"; brain decided: {summary}", clip(&render::one_line(prompt), QUOTED_PROMPT_CHARS)),
        MAX_TEXT_CHARS,
    )
}

/// At most `max` characters, with an ellipsis when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{DecisionBackend, EditComplexity, Tool, ToolParams};

    fn call(tool: Tool, target: Option<&str>) -> ToolCall {
        ToolCall {
            tool,
            target_scene_id: target.map(str::to_owned),
            complexity: (tool == Tool::EditScene).then_some(EditComplexity::Surgical),
            params: ToolParams::default(),
            instruction: format!("do {}", tool.as_str()),
        }
    }

    fn decision(outcome: Outcome) -> Decision {
        Decision {
            outcome,
            reasoning: String::new(),
            backend: DecisionBackend::Rules,
            fallback_reason: None,
            confidence: 0.8,
        }
    }

    fn scene(id: &str) -> Scene {
        crate::model::testing::scene(id, id, 0)
    }

    #[test]
    fn summaries_are_one_line() {
        let d = decision(Outcome::Workflow(vec![call(Tool::AddScene, None), call(Tool::EditScene, Some("s2"))]));
        assert_eq!(decision_summary(&d), "workflow: addScene; editScene on scene s2 (surgical)");
        let d = decision(Outcome::Clarification { question: "Which\nscene?".into(), candidate_scene_ids: vec![] });
        assert_eq!(decision_summary(&d), "asked: Which scene?");
    }

    #[test]
    fn relationships_only_for_existing_targets() {
        let d = decision(Outcome::Workflow(vec![
            call(Tool::EditScene, Some("s1")),
            call(Tool::DeleteScene, Some("ghost")),
            call(Tool::ChangeDuration, Some("s1")),
        ]));
        let rels = relationships(&d, "prompt", &[scene("s1")]);
        assert_eq!(rels, vec![("s1".to_owned(), "changeDuration requested: \"do changeDuration\"".to_owned())]);
    }

    #[test]
    fn clip_counts_characters() {
        assert_eq!(clip("héllo", 10), "héllo");
        assert_eq!(clip("héllo", 3), "hé…");
    }
}
