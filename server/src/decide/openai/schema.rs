//! The decision's wire shape: the strict JSON schema sent as
//! `response_format`, parsing of the chat-completions response, and
//! validation of the model's decision against the contract and the context.
//!
//! Three layers, three outcomes:
//! - the body is not a chat completion, has no content, was cut off, is a
//!   refusal, or the content is not JSON → [`Reject::Malformed`];
//! - the content is JSON but not the schema (missing or unknown keys, wrong
//!   types, a tool or complexity that does not exist) → [`Reject::Schema`];
//! - it is the schema but breaks the contract or the context (a target scene
//!   that is not in the project, a tool without its required target, an
//!   image that was not attached, a workflow of one hundred steps, ...) →
//!   [`Reject::Contract`].
//!
//! Strict structured output makes the first two rare on OpenAI itself; other
//! compatible servers may only approximate the schema, so everything is
//! checked regardless. Missing nullable keys and empty arrays are read as
//! null / empty, for servers that drop them.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::decide::rules::MAX_WORKFLOW_STEPS;
use crate::decide::{DecisionInput, EditComplexity, Outcome, Tool, ToolCall, ToolParams};
use crate::text::strip_fence;

/// Name of the schema in `response_format`.
pub const SCHEMA_NAME: &str = "brain_decision";
/// Longest scene UpsertScene accepts, so the longest duration a decision may ask for.
pub const MAX_DURATION_SECONDS: f64 = 3_600.0;
/// Bounds on the model's free text (in characters), so a runaway answer cannot flood storage.
pub const MAX_REASONING_CHARS: usize = 1_000;
/// Longest instruction of one step.
pub const MAX_INSTRUCTION_CHARS: usize = 2_000;
/// Longest clarification question.
pub const MAX_QUESTION_CHARS: usize = 1_000;
/// Most attributes on one step.
pub const MAX_ATTRIBUTES: usize = 24;
/// Longest attribute key.
pub const MAX_ATTRIBUTE_KEY_CHARS: usize = 64;
/// Longest attribute value.
pub const MAX_ATTRIBUTE_VALUE_CHARS: usize = 500;
/// Attribute keys that describe a relative length change when `duration_seconds` cannot be worked out.
pub const RELATIVE_DURATION_KEYS: [&str; 3] = ["direction", "duration_change_seconds", "duration_factor"];

/// The `response_format` of every request: strict JSON schema output.
pub fn response_format() -> Value {
    json!({
        "type": "json_schema",
        "json_schema": {"name": SCHEMA_NAME, "strict": true, "schema": decision_schema()}
    })
}

/// The decision's JSON schema, in the subset strict structured output accepts:
/// every key required, nullable values typed `[T, "null"]`, no additional keys.
pub fn decision_schema() -> Value {
    let tools: Vec<&str> = Tool::ALL.iter().map(|t| t.as_str()).collect();
    let step = json!({
        "type": "object",
        "additionalProperties": false,
        "required": [
            "tool", "target_scene_id", "complexity", "duration_seconds", "insert_position",
            "image_ids", "attributes", "instruction"
        ],
        "properties": {
            "tool": {"type": "string", "enum": tools},
            "target_scene_id": {
                "type": ["string", "null"],
                "description": "Id from the scene list of the scene the tool acts on; null for addScene, createSceneFromImage and analyzeImage."
            },
            "complexity": {
                "type": ["string", "null"],
                "enum": ["surgical", "creative", "structural", null],
                "description": "For editScene and editSceneWithImage only."
            },
            "duration_seconds": {
                "type": ["number", "null"],
                "description": "New length in seconds (changeDuration), or the length of a new scene."
            },
            "insert_position": {
                "type": ["integer", "null"],
                "description": "0-based index a new scene goes to; null appends."
            },
            "image_ids": {"type": "array", "items": {"type": "string"}},
            "attributes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["key", "value"],
                    "properties": {"key": {"type": "string"}, "value": {"type": "string"}}
                }
            },
            "instruction": {"type": "string"}
        }
    });
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["kind", "steps", "question", "candidate_scene_ids", "reasoning", "confidence"],
        "properties": {
            "kind": {"type": "string", "enum": ["tool", "workflow", "clarification"]},
            "steps": {"type": "array", "items": step},
            "question": {"type": ["string", "null"]},
            "candidate_scene_ids": {"type": "array", "items": {"type": "string"}},
            "reasoning": {"type": "string"},
            "confidence": {"type": "number"}
        }
    })
}

/// Why the model's answer was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// Not a usable chat completion, or the content is not JSON.
    Malformed(String),
    /// JSON, but not the schema.
    Schema(String),
    /// The schema, but against the contract or the context.
    Contract(String),
}

/// A validated decision, before the backend fields are added.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDecision {
    /// What to do.
    pub outcome: Outcome,
    /// The model's one-sentence reason.
    pub reasoning: String,
    /// The model's confidence.
    pub confidence: f64,
}

/// Token usage reported by the server, when it reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Completion tokens.
    #[serde(default)]
    pub completion_tokens: u64,
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChatMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChatMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

/// The assistant message's content of a chat-completions response body.
pub fn message_content(body: &[u8]) -> Result<(String, Option<Usage>), Reject> {
    let response: ChatResponse = serde_json::from_slice(body)
        .map_err(|_| Reject::Malformed("the body is not a chat-completions response".into()))?;
    let usage = response.usage;
    let choice =
        response.choices.into_iter().next().ok_or_else(|| Reject::Malformed("the response has no choices".into()))?;
    if choice.message.refusal.as_deref().is_some_and(|r| !r.trim().is_empty()) {
        return Err(Reject::Malformed("the model refused".into()));
    }
    match choice.finish_reason.as_deref() {
        Some("length") => return Err(Reject::Malformed("the answer was cut off at the token limit".into())),
        Some("content_filter") => return Err(Reject::Malformed("the answer was withheld by a content filter".into())),
        _ => {}
    }
    match choice.message.content {
        Some(content) if !content.trim().is_empty() => Ok((content, usage)),
        _ => Err(Reject::Malformed("the message has no content".into())),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDecision {
    kind: String,
    #[serde(default)]
    steps: Vec<RawStep>,
    #[serde(default)]
    question: Option<String>,
    #[serde(default)]
    candidate_scene_ids: Vec<String>,
    reasoning: String,
    confidence: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    tool: String,
    #[serde(default)]
    target_scene_id: Option<String>,
    #[serde(default)]
    complexity: Option<String>,
    #[serde(default)]
    duration_seconds: Option<f64>,
    #[serde(default)]
    insert_position: Option<i64>,
    #[serde(default)]
    image_ids: Vec<String>,
    #[serde(default)]
    attributes: Vec<RawAttribute>,
    instruction: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttribute {
    key: String,
    value: String,
}

/// Parses the message content and validates it against the contract and the input.
pub fn parse_decision(content: &str, input: &DecisionInput<'_>) -> Result<ModelDecision, Reject> {
    let value: Value = serde_json::from_str(strip_fence(content))
        .map_err(|e| Reject::Malformed(format!("the content is not JSON ({})", bounded(&e.to_string(), 80))))?;
    let raw: RawDecision = serde_json::from_value(value).map_err(|e| Reject::Schema(bounded(&e.to_string(), 160)))?;
    validate(raw, input)
}

fn validate(raw: RawDecision, input: &DecisionInput<'_>) -> Result<ModelDecision, Reject> {
    if !raw.confidence.is_finite() || !(0.0..=1.0).contains(&raw.confidence) {
        return Err(Reject::Contract(format!("confidence {} is not between 0 and 1", raw.confidence)));
    }
    let reasoning = clean_text("reasoning", &raw.reasoning, MAX_REASONING_CHARS)?;
    let question = raw.question.as_deref().map(str::trim).filter(|q| !q.is_empty());

    let outcome = match raw.kind.as_str() {
        "tool" | "workflow" => {
            if question.is_some() || !raw.candidate_scene_ids.is_empty() {
                return Err(Reject::Contract(format!("a {} decision has a clarification question", raw.kind)));
            }
            let max = if raw.kind == "tool" { 1 } else { MAX_WORKFLOW_STEPS };
            if raw.steps.is_empty() || raw.steps.len() > max {
                return Err(Reject::Contract(format!(
                    "a {} decision has {} steps (1{} expected)",
                    raw.kind,
                    raw.steps.len(),
                    if max > 1 { format!(" to {max}") } else { String::new() }
                )));
            }
            let mut calls = Vec::with_capacity(raw.steps.len());
            let mut added = 0u32;
            for (k, step) in raw.steps.into_iter().enumerate() {
                let call = validate_step(step, input, added).map_err(|e| match e {
                    Reject::Contract(why) if k > 0 || max > 1 => Reject::Contract(format!("step {}: {why}", k + 1)),
                    other => other,
                })?;
                if matches!(call.tool, Tool::AddScene | Tool::CreateSceneFromImage) {
                    added += 1;
                }
                calls.push(call);
            }
            // A one-step workflow is a tool call.
            if calls.len() == 1 { Outcome::Tool(calls.remove(0)) } else { Outcome::Workflow(calls) }
        }
        "clarification" => {
            if !raw.steps.is_empty() {
                return Err(Reject::Contract("a clarification has steps".into()));
            }
            let question = question.ok_or_else(|| Reject::Contract("a clarification without a question".into()))?;
            let question = clean_text("question", question, MAX_QUESTION_CHARS)?;
            let mut seen = HashSet::new();
            for id in &raw.candidate_scene_ids {
                scene_exists(input, id)?;
                if !seen.insert(id.as_str()) {
                    return Err(Reject::Contract(format!("candidate scene {} is listed twice", shown(id))));
                }
            }
            Outcome::Clarification { question, candidate_scene_ids: raw.candidate_scene_ids }
        }
        other => return Err(Reject::Schema(format!("unknown kind {}", shown(other)))),
    };
    Ok(ModelDecision { outcome, reasoning, confidence: raw.confidence })
}

/// One tool call; `added` is how many scenes earlier steps create (a later insert may go after them).
fn validate_step(step: RawStep, input: &DecisionInput<'_>, added: u32) -> Result<ToolCall, Reject> {
    let tool = Tool::parse(&step.tool).ok_or_else(|| Reject::Schema(format!("unknown tool {}", shown(&step.tool))))?;
    let name = tool.as_str();
    let complexity = match step.complexity.as_deref() {
        None => None,
        Some(c) => {
            Some(EditComplexity::parse(c).ok_or_else(|| Reject::Schema(format!("unknown complexity {}", shown(c))))?)
        }
    };

    let target = step.target_scene_id.filter(|t| !t.is_empty());
    match (&target, tool.needs_target()) {
        (Some(id), true) => scene_exists(input, id)?,
        (None, true) => return Err(Reject::Contract(format!("{name} needs a target scene"))),
        (Some(_), false) => return Err(Reject::Contract(format!("{name} takes no target scene"))),
        (None, false) => {}
    }

    let is_edit = matches!(tool, Tool::EditScene | Tool::EditSceneWithImage);
    match (complexity, is_edit) {
        (None, true) => return Err(Reject::Contract(format!("{name} needs a complexity"))),
        (Some(_), false) => return Err(Reject::Contract(format!("{name} takes no complexity"))),
        _ => {}
    }

    let creates = matches!(tool, Tool::AddScene | Tool::CreateSceneFromImage);
    if let Some(d) = step.duration_seconds {
        if !(creates || tool == Tool::ChangeDuration) {
            return Err(Reject::Contract(format!("{name} takes no duration")));
        }
        if !(d.is_finite() && d > 0.0 && d <= MAX_DURATION_SECONDS) {
            return Err(Reject::Contract(format!(
                "duration {d} s is not greater than 0 and at most {MAX_DURATION_SECONDS}"
            )));
        }
    }

    let insert_position = match step.insert_position {
        None => None,
        Some(_) if !creates => return Err(Reject::Contract(format!("{name} takes no insert position"))),
        Some(p) => {
            let last = input.scenes.len() as i64 + i64::from(added);
            if !(0..=last).contains(&p) {
                return Err(Reject::Contract(format!("insert position {p} is outside 0..={last}")));
            }
            u32::try_from(p).ok()
        }
    };

    let mut seen = HashSet::new();
    for id in &step.image_ids {
        if !input.image_ids.iter().any(|i| i == id) {
            return Err(Reject::Contract(format!("image {} is not attached", shown(id))));
        }
        if !seen.insert(id.as_str()) {
            return Err(Reject::Contract(format!("image {} is listed twice", shown(id))));
        }
    }
    let image_tool = matches!(tool, Tool::AnalyzeImage | Tool::CreateSceneFromImage | Tool::EditSceneWithImage);
    if image_tool && step.image_ids.is_empty() {
        return Err(Reject::Contract(format!("{name} needs attached images")));
    }

    if step.attributes.len() > MAX_ATTRIBUTES {
        return Err(Reject::Contract(format!("{} attributes (at most {MAX_ATTRIBUTES})", step.attributes.len())));
    }
    let mut attributes = BTreeMap::new();
    for RawAttribute { key, value } in step.attributes {
        let key = clean_text("attribute key", &key, MAX_ATTRIBUTE_KEY_CHARS)?.to_lowercase();
        if key.is_empty() {
            return Err(Reject::Contract("an attribute without a key".into()));
        }
        let value = clean_text("attribute value", &value, MAX_ATTRIBUTE_VALUE_CHARS)?;
        if attributes.insert(key.clone(), value).is_some() {
            return Err(Reject::Contract(format!("attribute {} is given twice", shown(&key))));
        }
    }
    if tool == Tool::ChangeDuration
        && step.duration_seconds.is_none()
        && !RELATIVE_DURATION_KEYS.iter().any(|k| attributes.contains_key(*k))
    {
        return Err(Reject::Contract("changeDuration needs duration_seconds or a relative change".into()));
    }

    let mut instruction = clean_text("instruction", &step.instruction, MAX_INSTRUCTION_CHARS)?;
    if instruction.is_empty() {
        instruction = bounded(input.prompt.trim(), MAX_INSTRUCTION_CHARS);
    }

    Ok(ToolCall {
        tool,
        target_scene_id: target,
        complexity,
        params: ToolParams {
            duration_seconds: step.duration_seconds,
            image_ids: step.image_ids,
            attributes,
            insert_position,
        },
        instruction,
    })
}

fn scene_exists(input: &DecisionInput<'_>, id: &str) -> Result<(), Reject> {
    if input.scenes.iter().any(|s| s.scene_id == id) {
        Ok(())
    } else {
        Err(Reject::Contract(format!("scene {} is not in the project", shown(id))))
    }
}

/// Trimmed, control characters as spaces, at most `max` characters.
fn clean_text(what: &str, text: &str, max: usize) -> Result<String, Reject> {
    let cleaned: String = text.trim().chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if cleaned.chars().count() > max {
        return Err(Reject::Contract(format!("{what} is longer than {max} characters")));
    }
    Ok(cleaned)
}

/// A model-chosen value for a reason string: quoted and short.
fn shown(value: &str) -> String {
    let short = bounded(value, 60);
    serde_json::to_string(&short).unwrap_or(short)
}

/// At most `max` characters.
fn bounded(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Scene, testing::scene};

    fn scenes() -> Vec<Scene> {
        vec![scene("s1", "Intro", 0), scene("s2", "Demo", 1), scene("s3", "Outro", 2)]
    }

    fn step(tool: &str) -> Value {
        json!({
            "tool": tool, "target_scene_id": null, "complexity": null, "duration_seconds": null,
            "insert_position": null, "image_ids": [], "attributes": [], "instruction": "do it"
        })
    }

    fn with(mut v: Value, key: &str, value: Value) -> Value {
        v[key] = value;
        v
    }

    fn decision(kind: &str, steps: Vec<Value>) -> Value {
        json!({"kind": kind, "steps": steps, "question": null, "candidate_scene_ids": [], "reasoning": "because", "confidence": 0.8})
    }

    fn run(v: &Value, images: &[&str]) -> Result<ModelDecision, Reject> {
        let scenes = scenes();
        let image_ids: Vec<String> = images.iter().map(|s| s.to_string()).collect();
        let input = DecisionInput {
            prompt: "the prompt",
            scenes: &scenes,
            image_ids: &image_ids,
            preferences: &[],
            enhanced_prompt: "",
        };
        parse_decision(&v.to_string(), &input)
    }

    fn contract(v: &Value, images: &[&str]) -> String {
        match run(v, images) {
            Err(Reject::Contract(why)) => why,
            other => panic!("expected a contract rejection of {v}, got {other:?}"),
        }
    }

    #[test]
    fn a_good_tool_call_becomes_the_outcome() {
        let s = with(with(step("editScene"), "target_scene_id", json!("s2")), "complexity", json!("surgical"));
        let s = with(s, "attributes", json!([{"key": "Color", "value": " dark blue "}]));
        let d = run(&decision("tool", vec![s]), &[]).unwrap();
        let Outcome::Tool(call) = d.outcome else { panic!("{:?}", d.outcome) };
        assert_eq!(call.tool, Tool::EditScene);
        assert_eq!(call.target_scene_id.as_deref(), Some("s2"));
        assert_eq!(call.complexity, Some(EditComplexity::Surgical));
        assert_eq!(call.params.attributes.get("color").map(String::as_str), Some("dark blue"));
        assert_eq!(call.instruction, "do it");
        assert_eq!((d.reasoning.as_str(), d.confidence), ("because", 0.8));
    }

    #[test]
    fn workflows_and_clarifications() {
        let add = with(step("addScene"), "insert_position", json!(3));
        let dur = with(with(step("changeDuration"), "target_scene_id", json!("s1")), "duration_seconds", json!(4));
        // The second add may go after the first one (position 4 in a 3-scene project).
        let add2 = with(step("createSceneFromImage"), "insert_position", json!(4));
        let add2 = with(add2, "image_ids", json!(["i1"]));
        let d = run(&decision("workflow", vec![add, dur, add2]), &["i1"]).unwrap();
        let Outcome::Workflow(calls) = d.outcome else { panic!() };
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[1].params.duration_seconds, Some(4.0));
        assert_eq!(calls[2].params.insert_position, Some(4));

        let mut q = decision("clarification", vec![]);
        q["question"] = json!("Which scene?");
        q["candidate_scene_ids"] = json!(["s1", "s3"]);
        let d = run(&q, &[]).unwrap();
        assert_eq!(
            d.outcome,
            Outcome::Clarification {
                question: "Which scene?".into(),
                candidate_scene_ids: vec!["s1".into(), "s3".into()]
            }
        );

        // A one-step workflow is a tool call; a fenced answer is read.
        let d = run(&decision("workflow", vec![step("addScene")]), &[]).unwrap();
        assert!(matches!(d.outcome, Outcome::Tool(_)));
        let scenes = scenes();
        let input =
            DecisionInput { prompt: "p", scenes: &scenes, image_ids: &[], preferences: &[], enhanced_prompt: "" };
        let fenced = format!("```json\n{}\n```", decision("tool", vec![step("addScene")]));
        assert!(parse_decision(&fenced, &input).is_ok());
    }

    #[test]
    fn missing_nullable_keys_read_as_null() {
        let v = json!({"kind": "tool", "steps": [{"tool": "addScene", "instruction": "x"}], "reasoning": "r", "confidence": 0.5});
        assert!(run(&v, &[]).is_ok());
    }

    #[test]
    fn the_context_is_enforced() {
        let edit = |target: &str| {
            with(with(step("editScene"), "target_scene_id", json!(target)), "complexity", json!("creative"))
        };
        assert_eq!(contract(&decision("tool", vec![edit("s9")]), &[]), "scene \"s9\" is not in the project");
        assert_eq!(contract(&decision("tool", vec![step("deleteScene")]), &[]), "deleteScene needs a target scene");
        let add = with(step("addScene"), "target_scene_id", json!("s1"));
        assert_eq!(contract(&decision("tool", vec![add]), &[]), "addScene takes no target scene");
        let edit_plain = with(step("editScene"), "target_scene_id", json!("s1"));
        assert_eq!(contract(&decision("tool", vec![edit_plain]), &[]), "editScene needs a complexity");
        let fix = with(with(step("fixBrokenScene"), "target_scene_id", json!("s1")), "complexity", json!("surgical"));
        assert_eq!(contract(&decision("tool", vec![fix]), &[]), "fixBrokenScene takes no complexity");
        assert_eq!(contract(&decision("tool", vec![step("analyzeImage")]), &[]), "analyzeImage needs attached images");
        let analyze = with(step("analyzeImage"), "image_ids", json!(["i2"]));
        assert_eq!(contract(&decision("tool", vec![analyze]), &["i1"]), "image \"i2\" is not attached");
        let dur = with(step("changeDuration"), "target_scene_id", json!("s1"));
        assert_eq!(
            contract(&decision("tool", vec![dur.clone()]), &[]),
            "changeDuration needs duration_seconds or a relative change"
        );
        let relative = with(dur.clone(), "attributes", json!([{"key": "direction", "value": "shorter"}]));
        assert!(run(&decision("tool", vec![relative]), &[]).is_ok());
        let too_long = with(dur, "duration_seconds", json!(7200));
        assert!(contract(&decision("tool", vec![too_long]), &[]).starts_with("duration 7200 s"));
        let far = with(step("addScene"), "insert_position", json!(4));
        assert_eq!(contract(&decision("tool", vec![far]), &[]), "insert position 4 is outside 0..=3");
        assert_eq!(contract(&decision("tool", vec![]), &[]), "a tool decision has 0 steps (1 expected)");
        assert_eq!(
            contract(&decision("tool", vec![step("addScene"), step("addScene")]), &[]),
            "a tool decision has 2 steps (1 expected)"
        );
        let thirteen = vec![step("addScene"); 13];
        assert_eq!(
            contract(&decision("workflow", thirteen), &[]),
            "a workflow decision has 13 steps (1 to 12 expected)"
        );
        assert_eq!(
            contract(&decision("workflow", vec![step("addScene"), edit("nope")]), &[]),
            "step 2: scene \"nope\" is not in the project"
        );
        let mut q = decision("clarification", vec![]);
        assert_eq!(contract(&q, &[]), "a clarification without a question");
        q["question"] = json!("Which?");
        q["candidate_scene_ids"] = json!(["s1", "zz"]);
        assert_eq!(contract(&q, &[]), "scene \"zz\" is not in the project");
        let mut bad = decision("tool", vec![step("addScene")]);
        bad["confidence"] = json!(1.5);
        assert_eq!(contract(&bad, &[]), "confidence 1.5 is not between 0 and 1");
        let dup = with(
            step("addScene"),
            "attributes",
            json!([{"key": "color", "value": "a"}, {"key": "COLOR", "value": "b"}]),
        );
        assert_eq!(contract(&decision("tool", vec![dup]), &[]), "attribute \"color\" is given twice");
    }

    #[test]
    fn off_schema_and_malformed_answers_are_told_apart() {
        for v in [
            decision("tool", vec![step("renderVideo")]),
            decision("maybe", vec![]),
            with(decision("tool", vec![step("addScene")]), "extra", json!(1)),
            json!({"kind": "tool", "steps": [], "confidence": 0.5}),
            with(decision("tool", vec![step("addScene")]), "confidence", json!("high")),
            decision("tool", vec![with(step("editScene"), "complexity", json!("huge"))]),
        ] {
            assert!(matches!(run(&v, &[]), Err(Reject::Schema(_))), "{v}");
        }
        let scenes = scenes();
        let input =
            DecisionInput { prompt: "p", scenes: &scenes, image_ids: &[], preferences: &[], enhanced_prompt: "" };
        for content in ["{\"kind\": \"tool\", ", "Sure! I'd add a scene.", "[1, 2"] {
            assert!(matches!(parse_decision(content, &input), Err(Reject::Malformed(_))), "{content}");
        }
    }

    #[test]
    fn chat_envelopes() {
        let ok = json!({"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "{}", "refusal": null}}], "usage": {"prompt_tokens": 7, "completion_tokens": 3}});
        let (content, usage) = message_content(ok.to_string().as_bytes()).unwrap();
        assert_eq!(content, "{}");
        assert_eq!(usage, Some(Usage { prompt_tokens: 7, completion_tokens: 3 }));
        for (body, why) in [
            (json!({"choices": []}), "the response has no choices"),
            (json!({"choices": [{"message": {"content": null, "refusal": "I can't"}}]}), "the model refused"),
            (
                json!({"choices": [{"finish_reason": "length", "message": {"content": "{\"ki"}}]}),
                "the answer was cut off at the token limit",
            ),
            (json!({"choices": [{"message": {"content": "  "}}]}), "the message has no content"),
            (json!({"error": {"message": "x"}}), "the body is not a chat-completions response"),
        ] {
            assert_eq!(message_content(body.to_string().as_bytes()), Err(Reject::Malformed(why.into())));
        }
    }

    #[test]
    fn the_schema_is_strict() {
        fn check(v: &Value) {
            if let Some(obj) = v.as_object() {
                if obj.get("type") == Some(&json!("object")) {
                    assert_eq!(obj.get("additionalProperties"), Some(&json!(false)), "{v}");
                    let props: Vec<&String> = obj["properties"].as_object().unwrap().keys().collect();
                    let required: Vec<&str> =
                        obj["required"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
                    assert_eq!(props.len(), required.len(), "{v}");
                    assert!(props.iter().all(|p| required.contains(&p.as_str())), "{v}");
                }
                obj.values().for_each(check);
            } else if let Some(items) = v.as_array() {
                items.iter().for_each(check);
            }
        }
        check(&decision_schema());
        assert_eq!(response_format()["json_schema"]["strict"], json!(true));
        let tools = decision_schema()["properties"]["steps"]["items"]["properties"]["tool"]["enum"].clone();
        assert_eq!(tools.as_array().unwrap().len(), Tool::ALL.len());
    }
}
